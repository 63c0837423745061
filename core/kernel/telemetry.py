"""Traces and metrics: OpenTelemetry when the app is configured for it, nothing at all otherwise.

Every span and instrument of Junction goes through this module, so the names of
docs/operations.md ("Telemetry names") are written in one place and the telemetry-off path costs a
flag test: until ``enable`` is called (``triggers/telemetry.py`` calls it when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set), ``span`` returns one shared no-op object and the
counters return at once, and the OpenTelemetry API is never imported (cold start).

Attributes are limited to the names in ``ATTRIBUTES`` (anything else is dropped), and values are
ids, types, methods and status codes: never secrets, tokens, bodies or cache values.
A span started inside another inherits its ``junction.*`` attributes, so a step's span names its
run and scenario, and an ``http`` step's client span names its step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

SCENARIO_ID = "junction.scenario.id"
RUN_ID = "junction.run.id"
STEP_ID = "junction.step.id"
STEP_TYPE = "junction.step.type"
TRIGGER_TYPE = "junction.trigger.type"
RUN_STATUS = "junction.run.status"
QUEUE = "junction.queue"
FUNCTION = "junction.function"
IDENTITY_KIND = "junction.identity.kind"
STATUS_CODE = "http.response.status_code"
METHOD = "http.request.method"
URL = "url.full"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

SPAN_ATTRIBUTES = frozenset({SCENARIO_ID, RUN_ID, STEP_ID, STEP_TYPE})
"""The attributes of docs/operations.md's contract; a child span inherits them from its parent."""
ATTRIBUTES = SPAN_ATTRIBUTES | {TRIGGER_TYPE, RUN_STATUS, QUEUE, FUNCTION, IDENTITY_KIND, STATUS_CODE, METHOD, URL, SERVER_ADDRESS, SERVER_PORT}
"""Every attribute Junction may set on a span or a measurement; others are dropped."""

RUNS_STARTED = "junction.runs.started"
RUNS_ENDED = "junction.runs.ended"
RUN_DURATION = "junction.run.duration"
QUEUE_DEPTH = "junction.queue.depth"
QUEUE_OLDEST_AGE = "junction.queue.oldest_age"
HTTP_REFUSED = "junction.http.refused"
IDENTITY_FAILURES = "junction.identity.failures"

TRACER_NAME = "junction"
SERVER, CONSUMER, CLIENT, INTERNAL = "server", "consumer", "client", "internal"


class _NoSpan:
    """What ``span`` returns while telemetry is off: enters, records and leaves without a trace."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, **_: Any) -> None:
        return None

    def fail(self, _: str) -> None:
        return None


_NO_SPAN = _NoSpan()
_tracer: Any = None
_meter: Any = None
_instruments: dict[str, Any] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return _tracer is not None


def enable(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send spans and measurements to these providers (default: OpenTelemetry's global ones,
    which ``configure_azure_monitor`` sets). Tests pass the SDK's with in-memory exporters."""
    global _tracer, _meter
    from opentelemetry import metrics, trace  # cold start: only when telemetry is configured

    _tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)
    _meter = (meter_provider or metrics.get_meter_provider()).get_meter(TRACER_NAME)
    _instruments.clear()


def disable() -> None:
    """Back to no-ops (tests)."""
    global _tracer, _meter
    _tracer = _meter = None
    _instruments.clear()


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if k in ATTRIBUTES and v is not None}


class _Span:
    """A started span as Junction uses it: a context manager that records an escaping exception
    by its type only (an exception's message may quote input), with ``set`` for attributes."""

    def __init__(self, name: str, kind: str, attributes: Mapping[str, Any], traceparent: str | None) -> None:
        from opentelemetry import trace  # cold start: only when telemetry is configured
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = trace.get_current_span()
        inherited = {k: v for k, v in (getattr(parent, "attributes", None) or {}).items() if k in SPAN_ATTRIBUTES}
        context = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
        self._manager = _tracer.start_as_current_span(
            name,
            context=context,
            kind=getattr(trace.SpanKind, kind.upper()),
            attributes={**inherited, **_clean(attributes)},
            record_exception=False,
            set_status_on_exception=False,
        )
        self._span: Any = None

    def __enter__(self) -> _Span:
        self._span = self._manager.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if kind is not None:
            self.fail(kind.__name__)
        self._manager.__exit__(kind, exc, tb)

    def set(self, **attributes: Any) -> None:
        """Attributes by their Python names: ``run_id=...`` sets ``junction.run.id``."""
        for key, value in _clean({_PYTHON_NAMES.get(k, k): v for k, v in attributes.items()}).items():
            self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode  # cold start: only when telemetry is configured

        self._span.set_status(Status(StatusCode.ERROR, description))


_PYTHON_NAMES = {
    "scenario_id": SCENARIO_ID,
    "run_id": RUN_ID,
    "step_id": STEP_ID,
    "step_type": STEP_TYPE,
    "status_code": STATUS_CODE,
    "method": METHOD,
}


def span(name: str, *, kind: str = INTERNAL, traceparent: str | None = None, **attributes: Any) -> Any:
    """A span around a ``with`` block: a child of the current span, or of ``traceparent`` (a W3C
    header value) when given. Attributes by Python name (``run_id``, ``step_type``...) or by
    their OpenTelemetry names through ``attributes={...}``."""
    if _tracer is None:
        return _NO_SPAN
    given = dict(attributes.pop("attributes", None) or {})
    given.update({_PYTHON_NAMES.get(k, k): v for k, v in attributes.items()})
    return _Span(name, kind, given, traceparent)


def annotate(**attributes: Any) -> None:
    """Add attributes to the current span (a function's span learns its run id as it goes)."""
    if _tracer is None:
        return
    from opentelemetry import trace  # cold start: only when telemetry is configured

    current = trace.get_current_span()
    for key, value in _clean({_PYTHON_NAMES.get(k, k): v for k, v in attributes.items()}).items():
        current.set_attribute(key, value)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry in a run message; None when off."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # cold start: as above

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def url_attributes(url: str) -> dict[str, Any]:
    """A URL as a client span's attributes: scheme, host, port and path only. The query, the
    fragment and any user:password are left out, since a process may put a token there."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    return {
        URL: f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}",
        SERVER_ADDRESS: host or None,
        SERVER_PORT: port,
    }


def _instrument(name: str, make: Callable[[Any], Any]) -> Any:
    found = _instruments.get(name)
    if found is None:
        with _lock:
            found = _instruments.get(name)
            if found is None:
                found = _instruments[name] = make(_meter)
    return found


_UNITS = {RUN_DURATION: "s", QUEUE_OLDEST_AGE: "s"}


def count(name: str, value: int = 1, **attributes: Any) -> None:
    """Add to a counter (``junction.runs.started`` and the like)."""
    if _meter is None:
        return
    counter = _instrument(name, lambda meter: meter.create_counter(name, unit="1"))
    counter.add(value, _clean(attributes.pop("attributes", {}) | {_PYTHON_NAMES.get(k, k): v for k, v in attributes.items()}))


def record(name: str, value: float, **attributes: Any) -> None:
    """Record a value in a histogram (``junction.run.duration``, seconds)."""
    if _meter is None:
        return
    histogram = _instrument(name, lambda meter: meter.create_histogram(name, unit=_UNITS.get(name, "1")))
    histogram.record(value, _clean(attributes.pop("attributes", {}) | {_PYTHON_NAMES.get(k, k): v for k, v in attributes.items()}))


def gauge(name: str, read: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]) -> None:
    """A gauge read when metrics are exported (every minute): ``read`` returns (value,
    attributes) pairs, and may return none when it cannot tell (storage unreachable)."""
    if _meter is None:
        return
    from opentelemetry.metrics import Observation  # cold start: only when telemetry is configured

    def observe(_: Any) -> list[Any]:
        return [Observation(value, _clean(attributes)) for value, attributes in read()]

    _instrument(name, lambda meter: meter.create_observable_gauge(name, callbacks=[observe], unit=_UNITS.get(name, "1")))
