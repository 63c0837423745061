"""Storage calls per Accept on a warm instance, counted at the SDK's request hook."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from core.app.external import AcceptRequest, accept
from core.identity import tokens
from core.kernel.settings import Settings, load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite

PROCESS = {"steps": [{"type": "return", "value": "#trigger.data.body"}]}


def count(storage: Storage, settings: Settings, request: AcceptRequest) -> list[str]:
    accept(storage, settings, request)  # warm-up: creates tables and the queue on first use
    storage.counter.reset(keep_log=True)
    accept(storage, settings, request)
    return list(storage.counter.log)


def run(connection_string: str) -> dict[str, Any]:
    settings = load_settings({"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchcalls"})
    storage = Storage.from_settings(settings)
    document = {"name": "bench", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": PROCESS}
    sid = scenarios.create_scenario(storage, document).id
    token = tokens.create_token(storage, name="bench", scopes=["trigger"]).token
    body = b'{"a": 1}'
    anonymous = count(storage, settings, AcceptRequest(sid, "POST", body, "application/json", None))
    with_token = count(storage, settings, AcceptRequest(sid, "POST", body, "application/json", f"Bearer {token}"))
    return {"anonymous": anonymous, "token": with_token}


def report(result: dict[str, Any]) -> str:
    lines = []
    for kind, target in (("anonymous", 3), ("token", 4)):
        calls = result[kind]
        repeated = len(calls) - len(set(calls))
        lines.append(f"storage calls per Accept ({kind}): {len(calls)} (target {target}), repeated: {repeated}")
        lines.extend(f"    {call}" for call in calls)
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string)))
