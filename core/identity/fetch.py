"""Outbound identity calls: metadata, keys and Graph, time-boxed, size-limited and shared.

Plain ``urllib`` from the standard library, so ``SSL_CERT_FILE`` / the system store decides what
is trusted; https only and no redirects. ``SharedCall`` makes one call for all the callers that
need the same thing at the same time, so a slow identity provider cannot hold one worker thread
per request.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

HTTP_TIMEOUT_SECONDS = 5.0
"""Every outbound identity call is time-boxed once (a caller waits at most this long, however many
requests it takes), so that a dead or slow IdP or Graph gives a quick 401/403."""

MAX_DOCUMENT_BYTES = 1 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Metadata and Graph calls must not be bounced elsewhere (for instance to plain http)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        return None


def open_url(request: urllib.request.Request, timeout: float) -> bytes:
    # A fresh default context per call: calls are rare (key refreshes, Graph misses), and it
    # honours SSL_CERT_FILE / SSL_CERT_DIR as they are when the call is made.
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()), _NoRedirect()
    )
    with opener.open(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"response from {request.full_url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return body


def require_https(url: Any, what: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme != "https" or not urlsplit(url).netloc:
        raise ValueError(f"{what} must be an https URL")
    return url


def fetch_json(url: str, timeout: float = HTTP_TIMEOUT_SECONDS) -> Any:
    """GET a JSON document over https, time-boxed and size-limited."""
    require_https(url, "metadata URL")
    # https only (checked above), so no file: or custom schemes.
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "junction"})  # noqa: S310
    return json.loads(open_url(request, timeout))


class SharedCall:
    """Outbound identity calls made once for all the callers that need them at the same time.

    A slow identity provider must not hold one worker thread per request, one after another: the
    first caller starts the call (in a thread of its own) and every caller that needs the same
    thing meanwhile waits for that one call; nobody waits past its deadline (``timeout`` after it
    started), so all of them fail closed together and quickly. A call that failed is remembered
    for ``retry_after`` (longer than the time-out): callers in that window fail at once instead of
    starting a call each. A call still running past its deadline (a socket that never answers)
    is joined, not repeated: its late callers fail at once.
    """

    def __init__(self, *, timeout: float, retry_after: float = 0.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._retry_after = retry_after
        self._monotonic = monotonic  # for the failure window; waits use real time
        self._lock = threading.Lock()
        self._flights: dict[Any, _Flight] = {}
        self._failures: dict[Any, tuple[float, BaseException]] = {}
        self.started = 0
        """How many calls were started (for tests and diagnostics)."""

    def run(self, key: Any, work: Callable[[float], Any]) -> Any:
        """``work(deadline)``'s result, shared with concurrent callers of the same ``key``.

        ``deadline`` is a ``time.monotonic()`` value the work should pass to its own I/O.
        Raises the work's exception, or ``TimeoutError`` when the deadline passes first.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                failed = self._failures.get(key)
                if failed is not None and self._monotonic() - failed[0] < self._retry_after:
                    raise failed[1]
                flight = self._start(key, work)
        return flight.wait()

    def start_or_join(self, key: Any, work: Callable[[float], Any], may_start: Callable[[], bool]) -> _Flight | None:
        """The flight for ``key``: the one in the air, or a new one when ``may_start()`` says so
        (checked under the lock, so throttles see one decision at a time); None otherwise."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is None and may_start():
                flight = self._start(key, work)
            return flight

    def _start(self, key: Any, work: Callable[[float], Any]) -> _Flight:
        flight = _Flight(time.monotonic() + self._timeout)
        self._flights[key] = flight
        self.started += 1

        def fly() -> None:
            try:
                flight.value = work(flight.deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                flight.error = exc
            with self._lock:
                self._flights.pop(key, None)
                if flight.error is not None:
                    self._failures[key] = (self._monotonic(), flight.error)
                else:
                    self._failures.pop(key, None)
            flight.done.set()

        threading.Thread(target=fly, name="junction-identity-call", daemon=True).start()
        return flight


class _Flight:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        if not self.done.wait(max(0.0, self.deadline - time.monotonic())):
            raise TimeoutError("the identity provider did not answer in time")
        if self.error is not None:
            raise self.error
        return self.value


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value); at least a sliver, so a
    socket call made at the last moment still fails by itself rather than blocking."""
    return max(0.05, deadline - time.monotonic())
