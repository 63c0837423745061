"""The benchmarks' HTTP client: one keep-alive connection per thread, on the standard library.

The load generator shares the machine's two cores with devhost and Azurite, and a floor made of
SDK calls has no client at all, so what the client spends is taken from what is measured. httpx
spent 0.8 ms of CPU per POST here; ``http.client`` on a kept connection spends a fraction of it
(``python -m bench.client`` prints both). The benchmarks only need status, two headers and the
body of an error, which is all this gives.
"""

from __future__ import annotations

import http.client
import sys
import time
from urllib.parse import urlsplit

from cli.http import RawResponse


class KeepAliveClient:
    """POSTs to one origin over one connection, opened again after an error (one per thread)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the benchmark client speaks plain http to a local host, not {url!r}")
        self._host, self._port, self._timeout = parts.hostname, parts.port or 80, timeout
        self._connection: http.client.HTTPConnection | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> RawResponse:
        """Header names of the answer in lower case. Raises ``OSError`` or ``http.client.HTTPException`` when no answer came (timeout included)."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            self._connection.request("POST", target, body=body, headers=headers)
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return RawResponse(response.status, {name.lower(): value for name, value in response.getheaders()}, data)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> KeepAliveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> int:
    """CPU per POST of this client and of httpx against devhost on Azurite (Accept, --no-queues)."""
    import tempfile
    from pathlib import Path

    import httpx

    from bench.load import LOAD_PROCESS, body
    from core.kernel.settings import load_settings
    from core.scenarios import repository as scenarios
    from core.store.storage import Storage
    from devhost.azurite import Azurite, free_port
    from devhost.testing import DevhostProcess

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder) / "azurite") as emulator:
        env = {"AzureWebJobsStorage": emulator.connection_string, "JUNCTION_TABLE_PREFIX": "benchclient"}
        storage = Storage.from_settings(load_settings(env))
        document = {"name": "client", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
        scenario = scenarios.create_scenario(storage, document)
        with DevhostProcess(root, free_port(), env=env, args=["--no-queues"]) as host:
            url = f"{host.base_url}/ExternalData/Accept/{scenario.id}"
            headers = {"Content-Type": "application/json"}
            with KeepAliveClient(url) as lean, httpx.Client(timeout=30) as rich:
                clients = {
                    "http.client, kept connection": lambda n: lean.post(url, body(n), headers).status,
                    "httpx.Client": lambda n: rich.post(url, content=body(n), headers=headers).status_code,
                }
                for name, post in clients.items():
                    for n in range(100):
                        post(n)
                    started = time.process_time()
                    statuses = {post(n) for n in range(1000)}
                    cpu = (time.process_time() - started) / 1000 * 1000
                    print(f"{name:32s} {cpu:.2f} ms of client CPU per POST (statuses {sorted(statuses)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
