"""Start and stop Azurite, the Azure Storage emulator from npm.

Used by devhost (when ``AzureWebJobsStorage`` is ``UseDevelopmentStorage=true`` and nothing
listens on the well-known ports) and by the test run (on free ports, in a temporary folder).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT};"
    )


def azurite_command() -> list[str]:
    """The Azurite executable: the repository's node_modules first, then PATH."""
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite")
    if found:
        return [found]
    raise FileNotFoundError(
        "Azurite is not installed: run `npm install` in the repository (make does this for you)"
    )


class Azurite:
    """One Azurite process serving blob, queue and table on the given ports."""

    def __init__(
        self,
        location: Path,
        ports: tuple[int, int, int] | None = None,
        *,
        log_path: Path | None = None,
    ) -> None:
        self.location = Path(location)
        self.ports = ports or (free_port(), free_port(), free_port())
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    def start(self, timeout: float = 30.0) -> Azurite:
        self.location.mkdir(parents=True, exist_ok=True)
        blob, queue, table = self.ports
        command = azurite_command() + [
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--location", str(self.location),
            "--blobHost", "127.0.0.1", "--blobPort", str(blob),
            "--queueHost", "127.0.0.1", "--queuePort", str(queue),
            "--tableHost", "127.0.0.1", "--tablePort", str(table),
        ]  # fmt: skip
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not all(is_listening(p) for p in self.ports):
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Azurite did not listen on {self.ports} within {timeout} s")
            time.sleep(0.1)
        logger.info("Azurite listening on %s (data in %s)", self.ports, self.location)
        return self

    def stop(self) -> None:
        """SIGINT (Azurite closes its services cleanly on it), then SIGKILL after a few seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_development_storage(location: Path) -> Azurite | None:
    """Start Azurite on its well-known ports unless something already listens there."""
    if all(is_listening(p) for p in DEFAULT_PORTS):
        logger.info("Azurite (or another emulator) already listens on %s", DEFAULT_PORTS)
        return None
    if any(is_listening(p) for p in DEFAULT_PORTS):
        raise RuntimeError(
            f"some of the Azurite ports {DEFAULT_PORTS} are taken by something else; free them"
        )
    return Azurite(location, DEFAULT_PORTS).start()
