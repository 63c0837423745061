"""``make run``: serve Junction on devhost with a demo scenario and show how to call it.

Starts ``junction serve`` (devhost, which starts Azurite when
``AzureWebJobsStorage=UseDevelopmentStorage=true``), creates an admin token straight in storage,
creates (or reuses) a demo scenario whose process caches what it receives, and prints the
console's URL (docs/console.md) and copy-paste curl lines. Ctrl-C stops everything; so does the end of the process that started it
(``make`` killed by a signal does not pass the signal on, and nothing should keep serving then).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cli.http import HttpClient
from cli.main import load_local_settings

DEMO_NAME = "Junction demo: cache what you send"
DEMO_SCENARIO: dict[str, Any] = {
    "name": DEMO_NAME,
    "description": "Created by make run. Caches each request body under the key \"last\".",
    "externalTriggers": {"enabled": True, "allowAnonymous": False},
    "process": {
        "steps": [
            {"type": "transform", "id": "received", "expression": "data[0].Body"},
            {"type": "cache", "key": "last", "value": "#steps.received"},
            {"type": "return", "value": {"jmespath": "{stored: steps.received}"}},
        ]
    },
}


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"devhost exited with code {process.returncode}; see its output above")
        try:
            with urllib.request.urlopen(f"{url}/management/openapi.json", timeout=2):  # noqa: S310 - local URL
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit(f"devhost did not answer on {url} within {timeout:.0f} s")


def _demo_scenario(client: HttpClient) -> dict[str, Any]:
    listing = client.request("GET", "/management/scenarios?top=1000")
    for scenario in listing["value"]:
        if scenario.get("name") == DEMO_NAME:
            return dict(scenario)
    return dict(client.request("POST", "/management/scenarios", json_body=DEMO_SCENARIO))


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)  # stop devhost (and its Azurite) on TERM as on Ctrl-C
    signal.signal(signal.SIGINT, _stop)
    root = Path.cwd()
    load_local_settings(root)
    port = int(os.environ.get("JUNCTION_PORT", "7071"))
    url = f"http://127.0.0.1:{port}"
    parent = os.getppid()
    devhost = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--root", str(root), "--port", str(port)])
    try:
        _wait_until_up(url, devhost)
        from core.identity.tokens import create_token
        from core.kernel.settings import get_settings
        from core.store.storage import Storage

        token = create_token(Storage.from_settings(get_settings()), name="make run", scopes=["admin"]).token
        scenario = _demo_scenario(HttpClient(url, token))
        sid = scenario["id"]
        auth = f'-H "Authorization: Bearer {token}"'
        print(
            f"""
Junction is running on {url} (storage: Azurite). Ctrl-C stops it.

Admin token (shown once): {token}
Demo scenario: {sid}  ({DEMO_NAME})

Open the console in a browser and sign in with the admin token:
  {url}/console/

Start a run with a JSON body (the process caches it under the key "last"):
  curl -i -X POST {auth} -H "Content-Type: application/json" -d '{{"orderId": 42}}' {url}/ExternalData/Accept/{sid}

Read what it cached:
  curl {auth} '{url}/ExternalData/GetCacheData/{sid}?keyJson=%22last%22'

See the run:
  curl {auth} {url}/management/scenarios/{sid}/runs

Or with the CLI:  export JUNCTION_TOKEN={token}
  .venv/bin/junction trigger {sid} --data some.json
  .venv/bin/junction cache get {sid} --key '"last"'
""",
            flush=True,
        )
        while True:
            try:
                return devhost.wait(timeout=1)
            except subprocess.TimeoutExpired:
                if os.getppid() != parent:  # orphaned: whoever started us is gone
                    print("make run: the parent process ended; stopping", file=sys.stderr, flush=True)
                    return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if devhost.poll() is None:
            devhost.send_signal(signal.SIGTERM)
            try:
                devhost.wait(timeout=15)
            except subprocess.TimeoutExpired:
                devhost.kill()


if __name__ == "__main__":
    raise SystemExit(main())
