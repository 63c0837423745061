"""Where one Accept's CPU goes: the devhost process sampled by py-spy while 16 clients send Accepts.

``python -m bench.profile_accept [--requests 3000] [--py-spy PATH]`` needs py-spy (not a
dependency of Junction: ``pip install py-spy``). It samples only the thread holding the GIL
(``--gil``), so what it counts is Python CPU time, and sorts each sample by the deepest layer its
stack reached: the storage SDK (azure, requests, urllib3, http.client), else Junction
(``core/``, ``triggers/``, ``function_app``), else the server (devhost's HTTP host, uvicorn,
asyncio). The README quotes a run.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.accept import PROCESS
from bench.load import hammer
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
SDK = re.compile(r"/site-packages/(azure|requests|urllib3|charset_normalizer|idna|certifi)/|/http/client\.py|/email/|/socket\.py|/ssl\.py|/urllib/")
JUNCTION = re.compile(re.escape(str(ROOT)) + r"/(core|triggers)/|function_app\.py")
PARTS = (
    ("SDK: HTTP on the socket (urllib3, http.client)", re.compile(r"urllib3/|http/client\.py|socket\.py|email/")),
    ("SDK: requests' Session (preparing the request, cookies, hooks)", re.compile(r"requests/|urllib/request\.py|<frozen os>|genericpath")),
    ("SDK: azure-core pipeline and (de)serialisation", re.compile(r"/azure/")),
)

# A server sample by its innermost frame (the host's own work, where no Junction code is below it).
SERVER_PARTS = (
    (re.compile(r"site-packages/(uvicorn|h11)/"), "uvicorn and h11 (HTTP parsing)"),
    (re.compile(r"site-packages/azure/functions/"), "azure.functions request and response objects"),
    (re.compile(r"/devhost/"), "devhost (routing, the invocation)"),
    (re.compile(r"/asyncio/|selectors\.py"), "asyncio event loop"),
    (re.compile(r"concurrent/futures|threading\.py|queue\.py"), "thread pool hand-off"),
)


def classify(frames: list[str]) -> tuple[str, str]:
    """(layer, part) of one sample, frames root first."""
    if any(SDK.search(f) for f in frames):
        for frame in reversed(frames):  # the innermost frame of a part names the sample
            for name, pattern in PARTS:
                if pattern.search(frame):
                    return "storage SDK", name
        return "storage SDK", "SDK: other"
    junction = [f for f in frames if JUNCTION.search(f)]
    if junction:
        leaf = junction[-1]
        module = re.search(r"/(core/[a-z_]+/[a-z_]+|triggers/[a-z_]+)\.py", leaf)
        return "Junction", f"Junction: {module.group(1) if module else 'function_app'}"
    return "server", "server: " + next((name for pattern, name in SERVER_PARTS if pattern.search(frames[-1])), "other")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_accept", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples in this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder) / "azurite") as emulator:
        env = {"AzureWebJobsStorage": emulator.connection_string, "JUNCTION_TABLE_PREFIX": "profile"}
        storage = Storage.from_settings(load_settings(env))
        document = {"name": "profile", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": PROCESS}
        scenario = scenarios.create_scenario(storage, document)
        raw = Path(folder) / "samples.txt"
        with DevhostProcess(ROOT, free_port(), env=env, args=["--no-queues"]) as host:
            url = f"{host.base_url}/ExternalData/Accept/{scenario.id}"
            hammer(url, 300)
            assert host.process is not None
            spy = subprocess.Popen(
                [args.py_spy, "record", "--gil", "--full-filenames", "-r", "250", "-f", "raw", "-o", str(raw), "-p", str(host.process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            started = time.perf_counter()
            result = hammer(url, args.requests)
            seconds = time.perf_counter() - started
            spy.send_signal(2)
            spy.wait(timeout=60)
        if args.raw:
            shutil.copy(raw, args.raw)
        layers: collections.Counter[str] = collections.Counter()
        parts: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            layer, part = classify(stack.split(";"))
            layers[layer] += int(count)
            parts[part] += int(count)
    total = sum(layers.values())
    cpu_ms = total / 250 / len(result.accepted) * 1000 if result.accepted else 0.0
    print(f"{len(result.accepted)} Accepts in {seconds:.1f} s ({result.rps:.0f}/s); Python CPU (GIL held) {cpu_ms:.2f} ms per Accept")
    print("| layer | share of one Accept's CPU | ms |\n|---|---|---|")
    for layer, n in layers.most_common():
        print(f"| {layer} | {n / total:.0%} | {cpu_ms * n / total:.2f} |")
    print("| part | share | ms |\n|---|---|---|")
    for part, n in parts.most_common(12):
        print(f"| {part} | {n / total:.0%} | {cpu_ms * n / total:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
