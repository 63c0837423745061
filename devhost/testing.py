"""Run devhost as a real subprocess in tests: start it, wait until it answers HTTP, stop it.

Used by devhost's own integration tests and by the end-to-end tests of the real app::

    with DevhostProcess(root, env={"AzureWebJobsStorage": azurite.connection_string}) as host:
        httpx.get(f"{host.base_url}/ExternalData/Accept/...")

Environment variables given here win over ``local.settings.json`` (devhost never overrides a set
variable). If the process dies or never answers, ``DevhostStartError`` carries the tail of its log,
so a failing test says why instead of timing out silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from devhost.azurite import free_port, is_listening
from devhost.server import READY_LINE

REPO_ROOT = Path(__file__).resolve().parent.parent


class DevhostStartError(RuntimeError):
    """devhost exited or did not answer in time; the message ends with its log tail."""


class DevhostProcess:
    """A ``python -m devhost`` subprocess on a free port (context manager).

    ``root``: the app folder; ``port``: default a free one; ``env``: extra environment (wins over
    local.settings.json); ``args``: extra command-line arguments (``--no-queues``,
    ``--trust-forwarded-client-cert`` ...); ``log_path``: where stdout and stderr go (default a
    temporary file); ``startup_timeout``: seconds to wait for the first HTTP answer.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        *,
        args: Sequence[str] = (),
        app: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
        inherit_env: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.port = port or free_port()
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.app = app
        self.startup_timeout = startup_timeout
        self.python = python
        self.inherit_env = inherit_env
        self._own_log = log_path is None
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="devhost-", suffix=".log")
            os.close(handle)
            log_path = name
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [
            self.python,
            "-m",
            "devhost",
            "--root",
            str(self.root),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.app:
            command += ["--app", self.app]
        return command + self.args

    def _log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> DevhostProcess:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"devhost is already running on {self.base_url} (pid {self.process.pid})")
        environment = dict(os.environ) if self.inherit_env else {}
        environment.update(self.extra_env)
        # devhost must be importable even when the root is another folder.
        python_path = [str(REPO_ROOT)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])
        environment["PYTHONPATH"] = os.pathsep.join(python_path)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()  # a restart appends: only its own lines say it is ready
            self.process = subprocess.Popen(
                self.command(),
                cwd=str(self.root),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self.process is not None
        while True:
            code = self.process.poll()
            if code is not None:
                raise DevhostStartError(
                    f"devhost exited with code {code} before answering; log {self.log_path}:\n{self.log_tail()}"
                )
            # devhost prints a ready line once uvicorn accepts connections; no probe request is
            # sent, so no function (a catch-all, say) is invoked just to find out.
            if f"{READY_LINE} http://127.0.0.1:{self.port}" in self._log_since_start() and is_listening(self.port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DevhostStartError(
                    f"devhost did not answer within {self.startup_timeout} s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful: queues drain, Azurite stops), then SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        return self.process.returncode

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def __enter__(self) -> DevhostProcess:
        # ``with DevhostProcess(...).start() as host`` must not start a second process: it would
        # find the first one's ready line, fail to bind, and leave the first one running.
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
