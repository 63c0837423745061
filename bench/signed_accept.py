"""What signature checking adds to an Accept: a Stripe-signed webhook next to the same Accept unsigned.

One client, through devhost on Azurite, alternating the two kinds of call so that drift on the
shared machine touches both alike: an anonymous Accept of a 1 KiB JSON body, and the same body
to a scenario with ``externalTriggers.signature`` (scheme ``stripe``), each signed request new
(its own body, so its own signature; signed before the clock starts). The signed call does the
HMAC over the raw body and one more storage call, the insert of its seen signature
(``core.identity.replays``). Also in-process: ``verify`` alone against a bare ``hmac`` of the
same bytes, to separate the check's CPU from its storage call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from core.identity.signatures import verify
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench_0123456789abcdef"  # noqa: S105 - a benchmark's webhook secret
PROCESS = {"steps": [{"type": "return", "value": "#trigger.data.body"}]}


def _body(i: int) -> bytes:
    return json.dumps({"n": i, "payload": "x" * (1000 - len(str(i)))}).encode()  # 1 KiB whatever i


def _stripe(body: bytes, t: int) -> str:
    return f"t={t},v1=" + hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def run(connection_string: str, calls: int = 300) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchsigned", "JUNCTION_SECRET_BENCH_HOOK": SECRET}
    storage = Storage.from_settings(load_settings(env))
    plain = scenarios.create_scenario(storage, {"name": "plain", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": PROCESS})
    signature = {"scheme": "stripe", "secret": {"secret": "JUNCTION_SECRET_BENCH_HOOK"}}
    os.environ["JUNCTION_SECRET_BENCH_HOOK"] = SECRET  # saving checks the setting exists
    signed = scenarios.create_scenario(
        storage, {"name": "signed", "externalTriggers": {"enabled": True, "allowAnonymous": True, "signature": signature}, "process": PROCESS}
    )
    with DevhostProcess(ROOT, free_port(), env=env, args=["--no-queues", "--no-timers"]) as server, httpx.Client(timeout=30) as client:
        plain_url = f"{server.base_url}/ExternalData/Accept/{plain.id}"
        signed_url = f"{server.base_url}/ExternalData/Accept/{signed.id}"
        total = calls + 50
        now = int(time.time())
        requests = [(_body(i), {"Content-Type": "application/json", "Stripe-Signature": _stripe(_body(i), now)}) for i in range(total)]
        times: dict[str, list[float]] = {"plain": [], "signed": []}
        errors = 0
        for i, (body, headers) in enumerate(requests):
            for kind, url, sent in (("plain", plain_url, {"Content-Type": "application/json"}), ("signed", signed_url, headers)):
                started = time.perf_counter()
                response = client.post(url, content=body, headers=sent)
                ok = response.status_code == 200
                elapsed = time.perf_counter() - started
                errors += 0 if ok else 1
                if i >= 50:  # the first 50 of each warm up connections, tables and caches
                    times[kind].append(elapsed)
    body = _body(0)
    config = {**signature, "header": "Stripe-Signature", "toleranceSeconds": 300}
    header = {"stripe-signature": _stripe(body, now)}
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        verify(config, body, header, now, env=env)
    verify_us = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        hmac.compare_digest(hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).digest(), b"\0" * 32)
    bare_us = (time.perf_counter() - started) / rounds * 1e6
    plain_p50 = statistics.median(times["plain"]) * 1000
    signed_p50 = statistics.median(times["signed"]) * 1000
    return {
        "calls": calls,
        "errors": errors,
        "plain_p50_ms": plain_p50,
        "signed_p50_ms": signed_p50,
        "added_ms": signed_p50 - plain_p50,
        "ratio_p50": signed_p50 / plain_p50,
        "verify_us": verify_us,
        "bare_hmac_us": bare_us,
        "ratio_verify": verify_us / bare_us,
    }


def report(result: dict[str, Any]) -> str:
    r = result
    return "\n".join(
        [
            f"Signed webhooks: Accept of 1 KiB JSON, one client, {r['calls']} calls of each kind alternated, errors {r['errors']}:",
            f"    Stripe-signed (HMAC + seen-signature insert): p50 {r['signed_p50_ms']:.1f} ms",
            f"    unsigned (floor, same run):                   p50 {r['plain_p50_ms']:.1f} ms",
            f"    added per Accept {r['added_ms']:.1f} ms, ratio {r['ratio_p50']:.2f}",
            f"    verify() alone {r['verify_us']:.1f} us next to a bare HMAC-SHA256 of the same bytes {r['bare_hmac_us']:.1f} us (ratio {r['ratio_verify']:.2f})",
        ]
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string)))
