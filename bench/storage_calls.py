"""Storage calls per Accept and per complete run on a warm instance, counted at the SDK's request hook.

Each Accept is counted twice: with its scenario read (the first call for it in a second on an
instance, ``JUNCTION_SCENARIO_HOLD_SECONDS``) and without (the scenario held, every later call).

A complete run: its Accept, the worker's calls (``core.runs.worker.execute_run``) for a
transform -> cache -> return process, and the host's own two per message (the receive, shared by
up to ``batchSize`` messages, and the delete after success), made here as the host makes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
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
RUN_PROCESS = {
    "steps": [
        {"type": "transform", "id": "got", "expression": "data[0].Body"},
        {"type": "cache", "key": {"jmespath": "steps.got.n"}, "value": {"jmespath": "steps.got.n"}},
        {"type": "return", "value": {"jmespath": "steps.got.n"}},
    ]
}
BATCH = 16  # host.json extensions.queues.batchSize: one receive serves up to this many messages


def count(storage: Storage, settings: Settings, request: AcceptRequest, warm: AcceptRequest | None = None) -> list[str]:
    """``warm`` (default: the same request) goes first: it creates tables and the queue."""
    accept(storage, settings, warm or request)
    storage.counter.reset(keep_log=True)
    accept(storage, settings, request)
    return list(storage.counter.log)


def count_run(storage: Storage, settings: Settings, request: AcceptRequest) -> dict[str, list[str]]:
    """The calls of one complete run, by who makes them; the first run warms up (tables, queue,
    the scenario version the worker holds)."""
    from core.runs.worker import execute_run  # cold start: as in the queue trigger

    calls: dict[str, list[str]] = {}
    storage.queue().clear_messages()  # the Accepts counted before left their messages
    for _ in range(2):
        storage.counter.reset(keep_log=True)
        accept(storage, settings, request)
        calls["accept"] = list(storage.counter.log)
        storage.counter.reset(keep_log=True)
        message = storage.queue().receive_message()
        calls["host: receive (one per batch of up to 16)"] = list(storage.counter.log)
        storage.counter.reset(keep_log=True)
        execute_run(storage, settings, message.content, int(message.dequeue_count or 1))
        calls["worker"] = list(storage.counter.log)
        storage.counter.reset(keep_log=True)
        storage.queue().delete_message(message)
        calls["host: delete"] = list(storage.counter.log)
    return calls


def run(connection_string: str) -> dict[str, Any]:
    """Each count with the scenario read (``read``: hold 0) and held (``held``: a hold longer than
    the count takes); the complete run with the scenario held, as under load."""
    base = load_settings({"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchcalls"})
    read, held = dataclasses.replace(base, scenario_hold_seconds=0), dataclasses.replace(base, scenario_hold_seconds=60)
    storage = Storage.from_settings(base)
    document = {"name": "bench", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": PROCESS}
    sid = scenarios.create_scenario(storage, document).id
    token = tokens.create_token(storage, name="bench", scopes=["trigger"]).token
    body = b'{"a": 1}'
    anonymous = AcceptRequest(sid, "POST", body, "application/json", None)
    with_token = AcceptRequest(sid, "POST", body, "application/json", f"Bearer {token}")
    # A GitHub-signed scenario: the signature is checked in memory, and its claim is one insert.
    os.environ.setdefault("JUNCTION_SECRET_BENCH_CALLS", "bench-calls-secret")
    secret = os.environ["JUNCTION_SECRET_BENCH_CALLS"]
    signature = {"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_BENCH_CALLS"}}
    signed_sid = scenarios.create_scenario(storage, {**document, "externalTriggers": {**document["externalTriggers"], "signature": signature}}).id
    def signed_request(data: bytes) -> AcceptRequest:  # each its own body: a repeated signature is a replay
        header = {"x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()}
        return AcceptRequest(signed_sid, "POST", data, "application/json", None, headers=header)

    counts: dict[str, Any] = {}
    for name, settings in (("read", read), ("held", held)):
        counts[name] = {
            "anonymous": count(storage, settings, anonymous),
            "token": count(storage, settings, with_token),
            "signed": count(storage, settings, signed_request(f'{{"a": 1, "{name}": 1}}'.encode()), warm=signed_request(f'{{"{name}": 0}}'.encode())),
        }
    run_sid = scenarios.create_scenario(storage, {**document, "process": RUN_PROCESS}).id
    complete = count_run(storage, held, AcceptRequest(run_sid, "POST", b'{"n": 1}', "application/json", None))
    return {**counts, "run": complete}


def report(result: dict[str, Any]) -> str:
    lines = []
    for kind, target in (("anonymous", 3), ("token", 4), ("signed", 4)):
        for case, minus, said in (("read", 0, "scenario read"), ("held", 1, "scenario held")):
            calls = result[case][kind]
            repeated = len(calls) - len(set(calls))
            lines.append(f"storage calls per Accept ({kind}, {said}): {len(calls)} (target {target - minus}), repeated: {repeated}")
            lines.extend(f"    {call}" for call in calls)
    run_calls = result["run"]
    receives = len(run_calls["host: receive (one per batch of up to 16)"])
    whole = sum(len(v) for k, v in run_calls.items() if not k.startswith("host: receive"))
    lines.append(f"storage calls per complete run (transform -> cache -> return), scenario held: {whole} + {receives}/{BATCH} receive"
                 f" (floor 6: Accept's 3, cache write, final record, message delete)")
    for who, calls in run_calls.items():
        lines.extend(f"    {who}: {call}" for call in calls)
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string)))
