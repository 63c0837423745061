"""The shell examples of the README and docs/, run as a reader would paste them (issue 14, point 4).

Each test takes its example from the document (``tests.support.doc_examples``) and runs it in
bash with ``set -euo pipefail``: against the app on devhost (the local URL in the text becomes
devhost's), the local HTTPS identity provider for the Azure AD examples, and, for the deployment
guide, stand-ins for ``az``/``azd``/``func``/``make`` that check each command against the
repository (``tests.support.fake_azure_cli``). Where the text says what a command answers, the
test checks that it does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.azurite import Azurite, free_port, is_listening
from tests.e2e.conftest import ROOT, Junction, aad_env, serve_junction
from tests.support.doc_examples import Block, block, blocks
from tests.support.idp import (
    DeviceUser,
    LocalIdentityProvider,
    make_self_signed_certificate,
    write_certificate_pem,
)

LOCAL = "http://127.0.0.1:7071"
SCENARIO = {"name": "Docs", "externalTriggers": {"enabled": True}, "process": {"steps": [
    {"type": "transform", "id": "order", "expression": "data[0].Body"},
    {"type": "cache", "key": "last", "value": "#steps.order"},
]}}  # fmt: skip


def bash(script: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUNCTION_", "AzureWebJobs"))}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def docs_app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    with serve_junction(azurite, "docs", tmp_path_factory.mktemp("devhost-docs")) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder like a checkout: ``.venv`` and the repository's files, for relative paths."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def _local(example: Block, url: str) -> str:
    return example.text.replace(LOCAL, url)


# -- README ------------------------------------------------------------------------------------


def test_quick_start_targets_exist_and_do_what_the_readme_says() -> None:
    """``make run`` and ``make test`` cannot run inside the suite (``make test`` is the suite, and
    tests/e2e/test_make_run.py runs what ``make run`` runs); a dry run checks both targets and
    what they start."""
    example = block("README.md: make run")
    commands = [line.split("#")[0].strip() for line in example.text.splitlines() if line.strip().startswith("make")]
    assert commands == ["make run", "make test"]
    for command, expected in zip(commands, ("-m cli.demo", "-m pytest"), strict=True):
        dry = subprocess.run([*command.split(), "-n"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0 and expected in dry.stdout, dry.stdout + dry.stderr


def test_the_api_walk_through_answers_what_its_comments_say(docs_app: Junction, workdir: Path) -> None:
    example = block("README.md: cat > pets.yaml")
    script = _local(example, docs_app.url)
    done = bash(script, workdir, _env(JUNCTION_URL=docs_app.url, JUNCTION_TOKEN=docs_app.admin_token, **docs_app.env))
    assert done.returncode == 0, done.stderr
    assert '{"id":42,"caller":"partner"}' in done.stdout  # the comment's answer
    assert re.search(r"HTTP/1\.1 404 ", done.stdout)  # 404: {id} only matches integers
    assert "<?xml" in done.stdout and "<caller>partner</caller>" in done.stdout  # Accept: application/xml


def test_the_cli_session_runs_from_the_first_token_to_an_api_key(docs_app: Junction, workdir: Path) -> None:
    example = block("README.md: export JUNCTION_TOKEN=$(junction token create")
    (workdir / "scenario.json").write_text(json.dumps(SCENARIO))
    (workdir / "order.json").write_text('{"orderId": 42}')
    (workdir / "pets.yaml").write_text(block("README.md: cat > pets.yaml").text.split("<<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0] + "\n")
    env = _env(JUNCTION_USER_PASSWORD="correct horse battery", **docs_app.env)
    # the run the session triggers must have cached its order before `cache get`: wait for it there
    script = _local(example, docs_app.url).replace(
        "junction cache get", 'until junction runs "$SID" | grep -q succeeded; do sleep 0.2; done\njunction cache get'
    )
    done = bash(script, workdir, env)
    assert done.returncode == 0, done.stderr
    assert '"orderId": 42' in done.stdout  # cache get
    assert '"name": "partner"' in done.stdout and '"key": "jak_' in done.stdout  # apikey create
    assert '"username": "alice"' in done.stdout  # user create
    shown = json.loads((workdir / "s.json").read_text())
    assert shown["name"] == "Docs" and shown["etag"]  # what update sent back, read-only fields and all


# -- Azure AD (README and docs/azure-ad.md) ------------------------------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp-docs")) as provider:
        yield provider


@pytest.fixture(scope="module")
def aad_app(azurite: Azurite, idp: LocalIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = aad_env(idp, JUNCTION_AAD_ADMIN_ROLE="Junction.Admin")
    with serve_junction(azurite, "docsaad", tmp_path_factory.mktemp("devhost-docs-aad"), extra_env=extra) as server:
        yield server


@pytest.mark.parametrize("key", ["README.md: junction --aad", "docs/azure-ad.md: # a service, client secret"])
def test_the_azure_ad_cli_examples_sign_in_and_call(aad_app: Junction, idp: LocalIdentityProvider, workdir: Path, key: str) -> None:
    """A service (client secret, and certificate) and a person (device code, approved at once)."""
    secret = "docs-" + uuid.uuid4().hex
    key_pair = make_self_signed_certificate("docs-caller")
    write_certificate_pem(workdir / "caller.pem", *key_pair)
    caller = idp.register_client(secret=secret, certificate=key_pair[1], roles=("Junction.Trigger",))
    person = idp.register_client()
    idp.device_user = DeviceUser(claims={"roles": ["Junction.Admin"]})
    scenario = aad_app.create_scenario(process={"steps": [{"type": "cache", "key": {"jmespath": "{id: data[0].Body.id}"}, "value": "#data[0].Body"}]})
    with aad_app.admin() as admin:  # what the certificate example reads
        admin.put(f"/management/scenarios/{scenario['id']}/cache", params={"keyJson": '{"id": 1}'}, json={"id": 1, "cached": True})
    (workdir / "payload.json").write_text('{"id": 1}')
    env = _env(
        HOME=str(workdir), JUNCTION_URL=aad_app.url, JUNCTION_AAD_AUTHORITY_HOST=idp.base_url, **idp.env(),
        TENANT=idp.tenant_id, CALLER_ID=caller.client_id, SECRET=secret, PUBLIC_CLIENT_ID=person.client_id,
        SCENARIO_ID=scenario["id"],
    )  # fmt: skip
    try:
        done = bash(block(key).text, workdir, env)
    finally:
        idp.device_user = None
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]  # the trigger prints the run id
    assert aad_app.wait_for_run(scenario["id"], run_id)["status"] == "succeeded"
    assert scenario["id"] in done.stdout  # scenario list, as the person
    if "certificate" in block(key).text:  # cache get: what was cached under {"id": 1} (by us, or by the run just started)
        cached = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])[0]
        assert cached in ({"id": 1}, {"id": 1, "cached": True}), done.stdout


# -- docs/api-operations.md: the trigger data a process sees -------------------------------------


def test_the_trigger_data_example_is_what_a_process_sees(docs_app: Junction) -> None:
    example = json.loads(block("docs/api-operations.md: {\"type\": \"api\"").text)
    pets = block("README.md: cat > pets.yaml").text.split("<<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    scenario = docs_app.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "trigger"}}]})
    with docs_app.admin() as admin:
        assert admin.put("/management/apis/pets", content=pets, headers={"Content-Type": "application/yaml"}).status_code in (200, 201)
        bound = admin.put("/management/apis/pets/operations/getPetById", json={"scenarioId": scenario["id"]})
        assert bound.status_code == 200, bound.text
    headers = {name: value for name, value in example["data"]["header"].items()}
    with httpx.Client(base_url=docs_app.url, timeout=30, headers={"Cookie": "session=s1", **headers}) as client:
        seen = client.get("/api/pet/7", params={"x": "1"}).json()
    assert set(seen) == set(example) and set(seen["data"]) == set(example["data"])
    for name in ("httpCookies", "httpMethod", "username", "body", "path", "query"):
        assert seen["data"][name] == example["data"][name], name
    assert seen["data"]["httpBody"] == example["data"]["httpBody"]
    assert seen["data"]["httpRequestUri"].endswith("/api/pet/7?x=1")
    assert example["data"]["header"].items() <= seen["data"]["header"].items()
    assert seen["claims"] == example["claims"] and seen["operation"] == example["operation"] and seen["type"] == "api"


# -- docs/devhost.md -----------------------------------------------------------------------------


def test_the_devhost_command_lines_start_a_host(azurite: Azurite) -> None:
    """Each line starts devhost (the app of the current folder, the sample app, ``junction
    serve``); it is run until it says it is ready, then stopped as Ctrl-C would."""
    lines = [line.split("#")[0].strip() for line in block("docs/devhost.md: python -m devhost").text.splitlines() if line.strip()]
    assert len(lines) == 3
    env = _env(AzureWebJobsStorage=azurite.connection_string, JUNCTION_TABLE_PREFIX="docsdevhost")
    for line in lines:
        port = re.search(r"--port (\d+)", line)
        if (port and is_listening(int(port[1]))) or (not port and is_listening(7071)):  # someone's own devhost: use another port
            line = re.sub(r" --port \d+", "", line) + f" --port {free_port()}"
        process = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output = ""
            deadline = time.monotonic() + 60
            while "devhost ready at" not in output and process.poll() is None and time.monotonic() < deadline:
                output += process.stdout.readline() if process.stdout else ""
            assert "devhost ready at" in output, f"{line}:\n{output}"
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(30)
        assert process.returncode == 0, f"{line} exited {process.returncode}"


# -- docs/deploy.md ------------------------------------------------------------------------------


def test_the_deployment_guide_runs_end_to_end_against_stand_ins(docs_app: Junction, azurite: Azurite, tmp_path: Path) -> None:
    """Every shell block of the guide, in order, in one shell (as a reader follows it), with
    ``az``/``azd``/``func``/``make`` replaced by checking stand-ins. Step 4 creates a real admin
    token in Azurite and the next block uses it against the app; the rest is checked against the
    templates and the Makefile."""
    repo, state, tools = tmp_path / "repo", tmp_path / "state", tmp_path / "bin"
    for folder in (repo, state, tools):
        folder.mkdir()
    for name in ("infra", "Makefile", "azure.yaml", "requirements.txt", "function_app.py", "host.json"):
        (repo / name).symlink_to(ROOT / name)
    (repo / ".venv" / "bin").mkdir(parents=True)
    fake = ROOT / "tests" / "support" / "fake_azure_cli.py"
    for tool in ("az", "azd", "func", "make"):
        (tools / tool).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" {tool} "$@"\n')
        (tools / tool).chmod(0o755)
    # The junction command of step 4: identity-based storage as the guide sets it up, then the
    # real CLI against Azurite (which has no Entra ID), so the token it makes is real.
    (repo / ".venv" / "bin" / "junction").write_text(
        "#!/bin/sh\nset -e\n"
        'test -n "$AzureWebJobsStorage__tableServiceUri" -a -n "$AzureWebJobsStorage__queueServiceUri" '
        '-a -n "$AzureWebJobsStorage__blobServiceUri" -a -n "$JUNCTION_TABLE_PREFIX" '
        '|| { echo "step 4 did not export the storage endpoints" >&2; exit 3; }\n'
        'test -z "${AzureWebJobsStorage:-}" || { echo "AzureWebJobsStorage is still set" >&2; exit 3; }\n'
        f'AzureWebJobsStorage="$FAKE_AZURE_STORAGE" exec "{sys.executable}" -m cli.main "$@"\n'
    )
    (repo / ".venv" / "bin" / "junction").chmod(0o755)
    outputs = {
        "JUNCTION_URL": docs_app.url,
        "JUNCTION_TABLE_PREFIX": docs_app.settings.table_prefix,
        "AZURE_FUNCTION_APP_NAME": "func-junction-test",
        "AZURE_STORAGE_ACCOUNT_NAME": "sttest",
        **{f"AzureWebJobsStorage__{kind}ServiceUri": f"http://127.0.0.1:{port}/devstoreaccount1" for kind, port in (("blob", azurite.ports[0]), ("queue", azurite.ports[1]), ("table", azurite.ports[2]))},
    }
    (state / "outputs.json").write_text(json.dumps(outputs))
    env = _env(FAKE_AZURE_STATE=str(state), FAKE_AZURE_STORAGE=azurite.connection_string, PYTHONPATH=str(ROOT), HOME=str(tmp_path))
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    examples = [b for b in blocks("docs/deploy.md") if b.lang == "sh"]
    script = "\n".join(f"echo '::block {b.line}' >&2\n{b.text}" for b in examples)
    done = bash(script, repo, env)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    assert ["func", "azure", "functionapp", "publish", "func-junction-test"] in calls
    assert any(call[:3] == ["az", "deployment", "sub"] and "create" in call for call in calls)
    listing = re.search(r'\{"value":.*?"nextLink":[^}]*\}', done.stdout)  # the curl of "Then use it"
    assert listing is not None, done.stdout[-2000:]
    assert isinstance(json.loads(listing[0])["value"], list)
