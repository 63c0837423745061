"""Every table, queue and container Junction uses, named in one place.

A table is ``<prefix><name>`` (``JUNCTION_TABLE_PREFIX``, default ``junction``), created on first
use by ``Storage.table``, which refuses a name that is not in ``TABLES``. The run queue is
``<prefix>-runs`` (the host moves messages it gives up on to ``<prefix>-runs-poison``), each
schedule's next due time waits on ``<prefix>-schedules`` (a message made visible when it falls
due) and large values go to the container ``<prefix>-payloads``: deployments that share a storage
account share nothing else. docs/architecture.md, "Storage layout", gives each one's keys and owner.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.kernel.settings import read_table_prefix

SCENARIOS = "scenarios"
CACHE = "cache"
RUNS = "runs"
IDEMPOTENCY = "idempotency"
SCHEDULES = "schedules"
TOKENS = "tokens"
USERS = "users"
APIKEYS = "apikeys"
APIS = "apis"
APIBINDINGS = "apibindings"
RATELIMITS = "ratelimits"
SIGNATURES = "signatures"
APPKEYS = "appkeys"
TABLES = (SCENARIOS, CACHE, RUNS, IDEMPOTENCY, SCHEDULES, TOKENS, USERS, APIKEYS, APIS, APIBINDINGS, RATELIMITS, SIGNATURES, APPKEYS)

POISON_SUFFIX = "-poison"
"""The Functions host's name for a queue's poison queue: ``<queue>-poison``."""


def run_queue(prefix: str) -> str:
    return f"{prefix}-runs"


def schedule_queue(prefix: str) -> str:
    return f"{prefix}-schedules"


def payload_container(prefix: str) -> str:
    return f"{prefix}-payloads"


def run_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The run queue of the environment's prefix (default: the process environment).

    The queue trigger names its queue when the app is imported, before anything else needs the
    settings, so this reads only the prefix.
    """
    return run_queue(read_table_prefix(env))


def schedule_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The schedule queue of the environment's prefix, for its queue trigger (as ``run_queue_name``)."""
    return schedule_queue(read_table_prefix(env))
