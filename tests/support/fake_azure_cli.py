"""Stand-ins for ``az``, ``azd``, ``func`` and ``make`` that docs/deploy.md's commands run against.

Azure cannot be reached from the tests, so the deployment guide's shell examples run with these
on ``PATH`` instead. They do not pretend much: each records its arguments (``calls.jsonl``) and
checks what can be checked offline against the repository itself, failing (exit 2, with the
reason) where the guide has rotted:

- ``azd env set NAME`` needs ``${NAME}`` in ``infra/main.parameters.json``;
- ``azd env get-value NAME`` / ``az deployment sub show --query properties.outputs.NAME.value``
  need an ``output NAME`` in ``infra/main.bicep`` (answered from ``outputs.json``, which the test
  writes: the local devhost's URL, Azurite's endpoints, ...);
- ``az deployment sub create|what-if`` needs its template and parameter files, and every
  parameter it names declared in ``infra/main.bicep``;
- JSON arguments (``--app-roles @file``, ``--set x=[...]``, ``--body``) must be JSON;
- ``make TARGET`` needs the target in the Makefile; ``func azure functionapp publish NAME``
  needs the app's name.

Queries the guide reads a value from (``--query appId -o tsv``...) get a made-up GUID.
Usage (from a wrapper script): ``python fake_azure_cli.py az|azd|func|make ARGS...``; the folder
with ``calls.jsonl`` and ``outputs.json`` is ``FAKE_AZURE_STATE``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("FAKE_AZURE_STATE", "."))


def fail(reason: str) -> None:
    print(f"fake {sys.argv[1]}: {reason}", file=sys.stderr)
    sys.exit(2)


def bicep_params() -> set[str]:
    return set(re.findall(r"^param (\w+)", (ROOT / "infra" / "main.bicep").read_text(), re.M))


def bicep_outputs() -> dict[str, str]:
    declared = re.findall(r"^output (\w+)", (ROOT / "infra" / "main.bicep").read_text(), re.M)
    values = json.loads((STATE / "outputs.json").read_text()) if (STATE / "outputs.json").exists() else {}
    return {name: str(values.get(name, f"{name.lower()}-value")) for name in declared}


def azd_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+)", (ROOT / "infra" / "main.parameters.json").read_text()))


def option(args: list[str], *names: str) -> list[str]:
    """Every value given to one of ``names`` (``--x v`` or ``--x=v``)."""
    values = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(name + "="):
                values.append(arg[len(name) + 1 :])
    return values


def must_be_json(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{what} is not JSON ({exc}): {text[:200]}")
        raise


def az(args: list[str]) -> None:
    words = [a for a in args if not a.startswith("-")][:3]
    query = (option(args, "--query") or [""])[0]
    for value in option(args, "--set"):
        _, _, right = value.partition("=")
        if right.startswith(("[", "{")):
            must_be_json(right, f"--set {value.split('=')[0]}")
    for value in option(args, "--app-roles"):
        roles = must_be_json(Path(value.removeprefix("@")).read_text(), "--app-roles")
        for role in roles if isinstance(roles, list) else [None]:
            if not isinstance(role, dict) or not {"allowedMemberTypes", "value", "id", "isEnabled", "displayName", "description"} <= set(role):
                fail(f"an app role lacks fields Microsoft Graph requires: {role}")
            uuid.UUID(role["id"])
    for body in option(args, "--body"):
        must_be_json(body, "--body")
    if words[:2] == ["deployment", "sub"] and len(words) > 2 and words[2] in ("create", "what-if"):
        template = (option(args, "--template-file") or [""])[0]
        if not Path(template).is_file():
            fail(f"no template {template!r}")
        params = bicep_params()
        for given in option(args, "--parameters", "-p"):
            if given.startswith("@"):
                document = must_be_json(Path(given[1:]).read_text(), given)
                unknown = set(document.get("parameters", {})) - params  # type: ignore[union-attr]
            else:
                unknown = {given.split("=", 1)[0]} - params
            if unknown:
                fail(f"main.bicep has no parameter(s) {sorted(unknown)}")
    if words[:3] == ["deployment", "sub", "show"]:
        outputs = bicep_outputs()
        if query == "properties.outputs":
            print(json.dumps({name: {"type": "String", "value": value} for name, value in outputs.items()}))
            return
        match = re.fullmatch(r"properties\.outputs\.(\w+)\.value", query)
        if match is None or match[1] not in outputs:
            fail(f"main.bicep has no output for --query {query!r}")
        print(outputs[match[1]])  # type: ignore[index]
        return
    if query == "id" and words[:3] == ["storage", "account", "show"]:
        print(f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{option(args, '-n', '--name')[0]}")
        return
    if query:
        print(uuid.uuid4())


def azd(args: list[str]) -> None:
    if args[:2] == ["env", "set"]:
        if len(args) != 4:
            fail(f"azd env set NAME VALUE, got {args}")
        if args[2] not in azd_variables():
            fail(f"{args[2]} is not a variable of infra/main.parameters.json")
    elif args[:2] == ["env", "get-value"]:
        outputs = bicep_outputs()
        if args[2] not in outputs:
            fail(f"{args[2]} is not an output of infra/main.bicep")
        print(outputs[args[2]])
    elif args[:2] == ["env", "get-values"]:
        for name, value in bicep_outputs().items():
            print(f"{name}={json.dumps(value)}")
    elif args[:1] not in (["auth"], ["env"], ["up"], ["provision"], ["deploy"], ["down"]):
        fail(f"unexpected azd command {args}")


def func(args: list[str]) -> None:
    if args[:3] != ["azure", "functionapp", "publish"] or len(args) < 4 or not args[3]:
        fail(f"expected: func azure functionapp publish <app name>, got {args}")
    if args[3] != bicep_outputs()["AZURE_FUNCTION_APP_NAME"]:
        fail(f"{args[3]!r} is not the function app's name")


def make(args: list[str]) -> None:
    targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), re.M))
    for target in args:
        if target not in targets:
            fail(f"the Makefile has no target {target!r}")


def main() -> None:
    tool, args = sys.argv[1], sys.argv[2:]
    with (STATE / "calls.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    {"az": az, "azd": azd, "func": func, "make": make}[tool](args)


if __name__ == "__main__":
    main()
