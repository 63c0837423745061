"""What devhost reads from the app's folder before it imports the app: ``local.settings.json`` and
``host.json``, with the defaults the Functions host uses when a value is absent."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.azurite import DEFAULT_PORTS, connection_string

logger = logging.getLogger(__name__)

DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
MAX_REQUEST_BODY_BYTES = 104_857_600  # the Functions host's request limit, 100 MiB (HTTP 413 above it)
MAX_URL_BYTES = 4096  # the Functions host's documented URL limit


class ConfigError(ValueError):
    """A configuration file devhost cannot use; the message names the file and the value."""


def parse_timespan(text: str | int | float, what: str = "value") -> float:
    """Seconds in a .NET TimeSpan string (``hh:mm:ss``, ``d.hh:mm:ss``, ``hh:mm:ss.fff``).

    host.json states durations that way; a bare number is taken as seconds.
    """
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d+)?)?\s*", str(text))
    if not match:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{what}: {text!r} is not a TimeSpan like 00:00:30") from None
    days, hours, minutes, seconds, fraction = match.groups()
    return (
        int(days or 0) * 86400
        + int(hours) * 3600
        + int(minutes) * 60
        + int(seconds or 0)
        + (float(fraction) if fraction else 0.0)
    )


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` of host.json, with the host's defaults (``maxPollingInterval`` is 1 s
    locally instead of a minute, so a developer does not wait for messages)."""

    max_dequeue_count: int = 5
    batch_size: int = 16
    new_batch_threshold: int | None = None
    visibility_timeout: float = 0.0
    max_polling_interval: float = 1.0
    message_encoding: str = "base64"


# functionTimeout when host.json has none: the Flex Consumption default (30 minutes).
DEFAULT_FUNCTION_TIMEOUT = 1800.0
MAX_BATCH_SIZE = 32  # QueuesOptions.BatchSize refuses more


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT  # None: unbounded ("-1")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return value


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"host.json {what}: expected a positive integer, got {value!r}")
    return value


def load_host_config(root: Path) -> HostConfig:
    """Read ``host.json`` (absent file = all defaults, like the host)."""
    data = _read_json(Path(root) / "host.json")
    extensions = data.get("extensions") or {}
    http = extensions.get("http") or {}
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError(f"host.json extensions.http.routePrefix: expected a string, got {prefix!r}")
    queues = extensions.get("queues") or {}
    defaults = QueueOptions()
    encoding = str(queues.get("messageEncoding", defaults.message_encoding)).lower()
    if encoding not in ("base64", "none"):
        raise ConfigError(f"host.json extensions.queues.messageEncoding: expected base64 or none, got {encoding!r}")
    threshold = queues.get("newBatchThreshold")
    options = QueueOptions(
        max_dequeue_count=_positive_int(queues.get("maxDequeueCount", defaults.max_dequeue_count), "maxDequeueCount"),
        batch_size=_batch_size(queues.get("batchSize", defaults.batch_size)),
        new_batch_threshold=None if threshold is None else int(threshold),
        visibility_timeout=parse_timespan(queues.get("visibilityTimeout", "00:00:00"), "visibilityTimeout"),
        max_polling_interval=max(
            0.1, parse_timespan(queues.get("maxPollingInterval", defaults.max_polling_interval), "maxPollingInterval")
        ),
        message_encoding=encoding,
    )
    return HostConfig(route_prefix=prefix.strip("/"), queues=options, function_timeout=_function_timeout(data))


def _batch_size(value: Any) -> int:
    size = _positive_int(value, "batchSize")
    if size > MAX_BATCH_SIZE:
        # The host does not start with it either (QueuesOptions.BatchSize: at most 32).
        raise ConfigError(f"host.json extensions.queues.batchSize: at most {MAX_BATCH_SIZE}, got {size}")
    return size


def _function_timeout(data: dict[str, Any]) -> float | None:
    """``functionTimeout``: a TimeSpan of at least one second, or ``-1`` for no limit (Flex
    Consumption's default is 30 minutes, and it has no upper bound)."""
    raw = data.get("functionTimeout")
    if raw is None:
        return DEFAULT_FUNCTION_TIMEOUT
    if str(raw).strip() == "-1":
        return None
    seconds = parse_timespan(raw, "functionTimeout")
    if seconds < 1:
        raise ConfigError(f"host.json functionTimeout: at least 00:00:01, got {raw!r}")
    return seconds


def load_local_settings(root: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put ``Values`` of ``local.settings.json`` into the environment, as ``func start`` does.

    A variable that is already set wins, so a test or a shell can override one setting without
    editing the file. Returns the names that were set.
    """
    env = os.environ if environ is None else environ
    path = Path(root) / "local.settings.json"
    data = _read_json(path)
    if data.get("IsEncrypted"):
        raise ConfigError(f"{path}: encrypted settings are not supported by devhost; decrypt them first")
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: Values must be an object")
    applied = []
    for name, value in values.items():
        if name in env:
            continue
        env[name] = "" if value is None else str(value)
        applied.append(name)
    if applied:
        logger.info("loaded %d setting(s) from %s", len(applied), path)
    return applied


def uses_development_storage(value: str | None) -> bool:
    return bool(value) and value.replace(" ", "").lower().startswith(DEVELOPMENT_STORAGE.lower())


def expand_connection_string(value: str) -> str:
    """``UseDevelopmentStorage=true`` means Azurite on its well-known ports."""
    if uses_development_storage(value):
        return connection_string(*DEFAULT_PORTS)
    return value
