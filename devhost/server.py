"""``python -m devhost`` / ``junction serve``: load settings, start Azurite if needed, import the app,
serve its HTTP triggers with uvicorn and run its queue and timer triggers, until SIGINT/SIGTERM.

The order matters and mirrors ``func start``: settings go into the environment *before* the app
module is imported, because apps (Junction included) read their settings at import or first use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from devhost.azurite import Azurite, ensure_development_storage
from devhost.config import ConfigError, HostConfig, load_host_config, load_local_settings, uses_development_storage
from devhost.functions import FunctionInfo, index_functions, load_app
from devhost.http import HttpHost
from devhost.ncrontab import CronError
from devhost.queues import QueueListener
from devhost.routing import RouteTemplateError
from devhost.timers import TimerRunner, timer_schedule

logger = logging.getLogger(__name__)

DEFAULT_APP = "function_app:app"
WORKER_THREADS = 32  # the Python worker's default for sync functions is min(32, cpu + 4)
SHUTDOWN_GRACE_SECONDS = 5.0
READY_LINE = "devhost ready at"


HEADER_TIMEOUT_SECONDS = 30.0  # Kestrel's KestrelServerLimits.RequestHeadersTimeout


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a limit on the time a client takes to send a request's headers.

    uvicorn has none: a client that connects and sends nothing, or trickles header bytes
    (slowloris), holds a connection for ever. Kestrel, which serves the Functions host, answers 408
    and closes when the request line and headers take longer than ``RequestHeadersTimeout`` (30 s
    by default); devhost does the same. The clock starts when a connection opens, and again with
    the first byte of each further request on a kept-alive connection (idle time between requests
    is uvicorn's ``timeout_keep_alive``). Bodies are not timed."""

    class HeaderTimeoutProtocol(H11Protocol):
        header_timeout = seconds
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:
                if self._header_timer is None:
                    self._arm_header_timer()
            else:
                self._cancel_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            logger.warning("closing a connection whose request headers took more than %g s", self.header_timeout)
            body = b'{"error": {"code": "RequestTimeout", "message": "the request headers took too long"}}'
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()

    return HeaderTimeoutProtocol


class _Server(uvicorn.Server):
    """uvicorn, minus its habit of re-raising the signal after shutdown: devhost still has to
    drain its queues and stop Azurite after the HTTP server has stopped."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # embedded in a thread (tests, tools): the owner stops it with should_exit
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl+C: stop waiting for open connections
        self.should_exit = True


class Devhost:
    """One running host: the indexed app, its HTTP server, queue listeners and timers."""

    def __init__(
        self,
        app: Any,
        *,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 7071,
        config: HostConfig | None = None,
        queues: bool = True,
        timers: bool = True,
        trust_forwarded_client_cert: bool = False,
        message_lease: float | None = None,
        allowed_hosts: Sequence[str] = (),
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
    ) -> None:
        self.root = Path(root)
        self.header_timeout = header_timeout
        self.message_lease = message_lease
        self.host = host
        self.port = port
        self.config = config or load_host_config(self.root)
        self.functions: list[FunctionInfo] = index_functions(app, str(self.root.resolve()))
        for function in self.functions:
            function.timeout = self.config.function_timeout
            if function.trigger_type == "timerTrigger":
                timer_schedule(function)  # an invalid schedule stops the start, even with --no-timers
        self.executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="devhost-worker")
        self.http = HttpHost(
            self.functions,
            route_prefix=self.config.route_prefix,
            executor=self.executor,
            trust_forwarded=trust_forwarded_client_cert,
            allowed_hosts=served_hosts(host, port, allowed_hosts),
        )
        self.queue_functions = [f for f in self.functions if f.trigger_type == "queueTrigger"] if queues else []
        self.timer_functions = [f for f in self.functions if f.trigger_type == "timerTrigger"] if timers else []
        self.stop_event: asyncio.Event | None = None
        self.server: _Server | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def banner(self) -> str:
        lines = ["", "Functions:", ""]
        lines += [f"  {line}" for line in self.http.describe(self.base_url)]
        for function in self.functions:
            if function.trigger_type == "queueTrigger":
                state = "" if function in self.queue_functions else " (not polled: --no-queues)"
                lines.append(f"  {function.name}: queueTrigger {function.trigger.get('queueName')}{state}")
            elif function.trigger_type == "timerTrigger":
                state = "" if function in self.timer_functions else " (not scheduled)"
                lines.append(f"  {function.name}: timerTrigger {function.trigger.get('schedule')}{state}")
            elif function.trigger_type != "httpTrigger":
                lines.append(f"  {function.name}: {function.trigger_type} (not supported by devhost)")
        return "\n".join(lines) + "\n"

    async def run(self) -> None:
        """Serve until a signal (or ``stop()``), then drain the background work briefly."""
        self.stop_event = asyncio.Event()
        background: list[asyncio.Task[None]] = []
        for function in self.queue_functions:
            lease = {} if self.message_lease is None else {"lease": self.message_lease}
            listener = QueueListener(function, self.config.queues, self.executor, **lease)
            background.append(asyncio.create_task(listener.run(self.stop_event, SHUTDOWN_GRACE_SECONDS)))
        for function in self.timer_functions:
            background.append(asyncio.create_task(TimerRunner(function, self.executor).run(self.stop_event)))
        config = uvicorn.Config(
            self.http,
            host=self.host,
            port=self.port,
            http=header_timeout_protocol(self.header_timeout),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # devhost is the front end: X-Forwarded-For is appended to, not trusted
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        )
        self.server = _Server(config)
        print(self.banner(), flush=True)
        announcer = asyncio.create_task(self._announce_ready())
        try:
            await self.server.serve()
        finally:
            logger.info("devhost stopping")
            announcer.cancel()
            self.stop_event.set()
            if background:
                done, pending = await asyncio.wait(background, timeout=SHUTDOWN_GRACE_SECONDS + 1)
                for task in pending:
                    task.cancel()
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        logger.error("background task failed: %r", task.exception())
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def _announce_ready(self) -> None:
        """Print one line once the socket accepts requests, so scripts and tests can wait for it
        without sending a probe request that some catch-all function would have to answer."""
        while self.server is not None and not self.server.started:
            await asyncio.sleep(0.05)
        print(f"{READY_LINE} {self.base_url}", flush=True)

    def stop(self) -> None:
        """Ask a running host to stop (thread-safe enough: uvicorn polls ``should_exit``)."""
        if self.server is not None:
            self.server.should_exit = True


def served_hosts(host: str, port: int, extra: Sequence[str] = ()) -> frozenset[str]:
    """The ``Host`` values devhost answers to: the loopback names and the address it listens on,
    at its port (any port when it picks one), plus ``--allowed-host`` entries (``name``,
    ``name:port`` or ``*``). As App Service's front end serves only the site's bound host names,
    a request cannot make the app build links (``nextLink``, ``Location``, ``servers``) to a host
    of the caller's choosing."""
    names = {"localhost", "127.0.0.1", "[::1]", f"[{host}]" if ":" in host else host}
    served = {name if port == 0 else f"{name}:{port}" for name in names}
    return frozenset({*served, *(entry.lower() for entry in extra)})


def _configure_logging(level: str) -> None:
    if logging.getLogger().handlers:
        return
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The storage SDK logs every request at INFO; that drowns the host's own lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING if level.upper() == "INFO" else level.upper())


def serve(
    root: str | os.PathLike[str] = ".",
    app: str = DEFAULT_APP,
    host: str = "127.0.0.1",
    port: int = 7071,
    *,
    queues: bool = True,
    timers: bool = True,
    trust_forwarded_client_cert: bool = False,
    start_azurite: bool = True,
    log_level: str = "info",
    message_lease: float | None = None,
    allowed_hosts: Sequence[str] = (),
    header_timeout: float = HEADER_TIMEOUT_SECONDS,
) -> int:
    """Run the app in ``root`` until interrupted; returns the process exit code.

    ``junction serve`` calls this. Azurite is started (data in ``root/.azurite``) only when
    ``AzureWebJobsStorage`` is ``UseDevelopmentStorage=true`` and nothing listens on its ports,
    and it is stopped again on the way out.
    """
    _configure_logging(log_level)
    root_path = Path(root).resolve()
    azurite: Azurite | None = None
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        # Until uvicorn takes over, SIGTERM must still unwind through ``finally`` (Azurite).
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 1
    try:
        load_local_settings(root_path)
        config = load_host_config(root_path)
        if start_azurite and uses_development_storage(os.environ.get("AzureWebJobsStorage")):
            azurite = ensure_development_storage(root_path / ".azurite")
        application = load_app(root_path, app)
        devhost = Devhost(
            application,
            root=root_path,
            host=host,
            port=port,
            config=config,
            queues=queues,
            timers=timers,
            trust_forwarded_client_cert=trust_forwarded_client_cert,
            message_lease=message_lease,
            allowed_hosts=allowed_hosts,
            header_timeout=header_timeout,
        )
        asyncio.run(devhost.run())
        code = 0
    except (ConfigError, ValueError, LookupError, ImportError, TypeError, RuntimeError, OSError) as exc:
        # A broken app module deserves its traceback; a bad setting only its message.
        logger.error(
            "devhost cannot start: %s", exc, exc_info=not isinstance(exc, ConfigError | RouteTemplateError | CronError)
        )
        print(f"devhost: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        if azurite is not None:
            logger.info("stopping the Azurite devhost started")
            azurite.stop()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    stuck = [t.name for t in threading.enumerate() if t.name.startswith("devhost-worker") and t.is_alive()]
    if stuck:
        # A sync function cannot be interrupted, and Python would wait for it forever at exit.
        logger.warning("abandoning %d function invocation(s) still running after the grace period", len(stuck))
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code


def _raise_interrupt(sig: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Serve an Azure Functions Python (v2) app locally, in place of `func start`.",
    )
    parser.add_argument("--root", default=".", help="app folder with host.json and local.settings.json (default: .)")
    parser.add_argument(
        "--app", default=DEFAULT_APP, help=f"module:attribute of the FunctionApp (default: {DEFAULT_APP})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7071, help="port to listen on (default: 7071)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll queues for queue triggers")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument(
        "--no-azurite", action="store_true", help="never start Azurite, even for UseDevelopmentStorage=true"
    )
    parser.add_argument(
        "--trust-forwarded-client-cert",
        action="store_true",
        help="keep X-ARR-ClientCert, X-Forwarded-Proto and the other front-end headers a client sends "
        "(only for testing certificate authentication; never expose devhost with this on)",
    )
    parser.add_argument(
        "--message-lease",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a received queue message stays invisible, renewed while its function runs "
        "(default 600, the host's 10 minutes); a shorter lease brings a crashed host's messages back sooner",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also answer requests whose Host is NAME (any port), NAME:PORT, or anything ('*'); by default only "
        "localhost, 127.0.0.1, [::1] and the --host address at the --port",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=HEADER_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"close a connection (408) whose request headers take longer (default {HEADER_TIMEOUT_SECONDS:g}, Kestrel's)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    return serve(
        args.root,
        args.app,
        args.host,
        args.port,
        queues=not args.no_queues,
        timers=not args.no_timers,
        trust_forwarded_client_cert=args.trust_forwarded_client_cert,
        start_azurite=not args.no_azurite,
        log_level=args.log_level,
        message_lease=args.message_lease,
        allowed_hosts=args.allowed_host,
        header_timeout=args.header_timeout,
    )
