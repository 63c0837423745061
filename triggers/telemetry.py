"""Telemetry for the deployed app: Azure Monitor's OpenTelemetry distro, only when configured.

With ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, ``configure_telemetry`` calls
``configure_azure_monitor`` once per process (traces, metrics and logs to Application Insights,
Entra ID authentication from ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``), turns on
``core.kernel.telemetry`` and registers the queue gauges. Without it nothing is imported, so the
cold start does not pay for the distro. Why the host's own OpenTelemetry mode is not used, and
which instrumentations are off: docs/operations.md, "How the app exports telemetry".
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core.kernel import telemetry
from core.kernel.settings import Settings
from core.store.storage import get_storage

logger = logging.getLogger(__name__)

INSTRUMENTATIONS_OFF = ("requests", "urllib", "urllib3", "httpx", "django", "fastapi", "flask", "psycopg2")
"""The distro's instrumentations Junction turns off. ``requests`` and ``urllib`` would record
every outbound URL whole, query string included, where a process may put a token; an ``http``
step is recorded by Junction's own client span instead, with the URL's path only. The web
frameworks are not used. ``azure_sdk`` stays on: the storage calls are child spans."""

_configured = False
_lock = threading.Lock()


def configure_telemetry(settings: Settings, **distro_options: Any) -> bool:
    """Export telemetry when the settings say so; returns whether it is on. ``distro_options``
    go to ``configure_azure_monitor`` (tests add an in-memory span processor)."""
    global _configured
    if not settings.telemetry:
        return False
    with _lock:
        if _configured:
            return telemetry.enabled()
        _configured = True
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor  # only when configured: cold start

            options = {name: {"enabled": False} for name in INSTRUMENTATIONS_OFF}
            configure_azure_monitor(instrumentation_options=options, **distro_options)
            telemetry.enable()
            _register_gauges()
        except Exception:  # noqa: BLE001 - telemetry never keeps the app from serving
            logger.exception("telemetry could not be configured; the app runs without it")
            telemetry.disable()
            return False
        logger.info("telemetry: exporting traces, metrics and logs to Application Insights")
    return True


def _register_gauges() -> None:
    """Queue depth and the age of the oldest run message, read when metrics are exported."""
    from core.runs.health import queue_gauges  # with telemetry only

    for name, read in queue_gauges(get_storage).items():
        telemetry.gauge(name, read)
