"""End-to-end: the real function app served by devhost, on Azurite, called over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.identity.tokens import create_token
from core.kernel.settings import Settings, load_settings
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess
from tests.support.idp import API_CLIENT_ID, AUDIENCE, LocalIdentityProvider

ROOT = Path(__file__).resolve().parents[2]
MAX_BODY = 256 * 1024
HOOK_SECRET_NAME = "JUNCTION_SECRET_E2E_HOOK"
HOOK_SECRET = "whsec_hostile_input_0123456789"  # noqa: S105 - a test webhook secret


@dataclasses.dataclass
class Junction:
    url: str
    settings: Settings
    storage: Storage
    admin_token: str
    env: dict[str, str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def create_scenario(self, **overrides: Any) -> dict[str, Any]:
        document = {
            "name": "e2e",
            "externalTriggers": {"enabled": True, "allowAnonymous": False},
            "process": {
                "steps": [
                    {"type": "transform", "id": "got", "expression": "data[0].Body"},
                    {"type": "cache", "key": "last", "value": "#steps.got"},
                    {"type": "return", "value": {"jmespath": "{echo: steps.got, caller: trigger.caller.kind}"}},
                ]
            },
            **overrides,
        }
        with self.admin() as admin:
            response = admin.post("/management/scenarios", json=document)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def wait_for_run(self, scenario_id: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.admin() as admin:
            while True:
                run = admin.get(f"/management/scenarios/{scenario_id}/runs/{run_id}").json()
                if run.get("status") in ("succeeded", "failed") or time.monotonic() > deadline:
                    return dict(run)
                time.sleep(0.1)

    def run_count(self, scenario_id: str) -> int:
        return len(list(self.storage.table("runs").query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id})))


def aad_env(idp: LocalIdentityProvider, **extra: str) -> dict[str, str]:
    """Settings that make Junction trust the local identity provider's tenant (and its CA)."""
    return {
        "JUNCTION_AAD_TENANT_ID": idp.tenant_id,
        "JUNCTION_AAD_AUDIENCE": f"{AUDIENCE},{API_CLIENT_ID}",
        "JUNCTION_AAD_AUTHORITY_HOST": idp.base_url,
        "JUNCTION_GRAPH_ENDPOINT": idp.base_url,
        **idp.env(),
        **extra,
    }


@contextlib.contextmanager
def serve_junction(
    azurite: Azurite,
    prefix: str,
    log_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    connection_string: str | None = None,
) -> Iterator[Junction]:
    """The real app on devhost, on its own table prefix, with an admin token made in storage.

    ``connection_string`` replaces Azurite's own (storage behind a proxy, say)."""
    env = {"AzureWebJobsStorage": connection_string or azurite.connection_string, "JUNCTION_TABLE_PREFIX": prefix, **(extra_env or {})}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    token = create_token(storage, name=f"{prefix} admin", scopes=["admin"]).token
    with DevhostProcess(ROOT, free_port(), env=env, args=list(args), log_path=log_dir / "devhost.log") as server:
        yield Junction(server.base_url, settings, storage, token, env)
    # SIGTERM is how the platform stops a host: it must drain and exit cleanly, not be killed.
    assert server.returncode == 0, f"devhost exited with {server.returncode}:\n{server.log_tail()}"


@pytest.fixture(scope="session")
def junction(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = {"JUNCTION_MAX_BODY_BYTES": str(MAX_BODY), HOOK_SECRET_NAME: HOOK_SECRET}
    with serve_junction(azurite, "e2e", tmp_path_factory.mktemp("devhost"), extra_env=extra) as server:
        yield server


@pytest.fixture
def scenario(junction: Junction) -> dict[str, Any]:
    return junction.create_scenario()


@pytest.fixture
def trigger_token(junction: Junction) -> str:
    return create_token(junction.storage, name="trigger", scopes=["trigger"]).token


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code
    return dict(error)


Poll = Callable[[], bool]


def eventually(check: Poll, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()
