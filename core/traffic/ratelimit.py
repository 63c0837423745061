"""Rate limits of scenarios (``externalTriggers.rateLimit``) and bindings (``rateLimit``), held
across instances in one table entity per bucket.

The algorithm is GCRA, the generic cell rate algorithm (a token bucket kept as one number): the
bucket's entity holds ``Tat``, the theoretical arrival time of the next request. A request at
``now`` is admitted when ``max(Tat, now) + interval - now <= burst * interval`` (``interval`` is
``60 / requestsPerMinute`` seconds), and then ``Tat`` moves on by one interval. So at most
``burst`` requests pass at once after a quiet spell, and ``requestsPerMinute`` a minute after that.

Every instance reads the entity and writes it back conditionally on its ETag (optimistic
concurrency); a write that lost the race is retried with the fresh value, at most
``MAX_ATTEMPTS`` times, after which the request is refused (429) rather than admitted uncounted.
Costs, in storage calls: an admitted request 2 (read, conditional write), a refused one 1 (read),
each lost race 2 more. Accuracy: exact against the one stored value, given the instances' clocks;
clock skew between instances of ``d`` seconds can let ``d * requestsPerMinute / 60`` requests more
(or fewer) through. README, "Rate limits", says this to operators.

Removal: a bucket whose ``Tat`` has passed is *spent*: ``admit`` decides on it exactly as on no
bucket at all (it starts from ``now`` either way), so removing it changes no decision, whether
its scenario or binding is live or not. The daily retention (``core.runs.retention``) removes the
spent buckets of each deleted scenario (``remove_spent``; the scenario's tombstone waits until
its bucket is empty) and of each deleted binding: deleting a binding writes a tombstone here
(``retire``, partition ``retired``, row the binding's bucket) and ``remove_retired`` removes the
bucket's spent rows, then the tombstone once no row is left. docs/storage.md, "Retention".

Headers (draft-ietf-httpapi-ratelimit-headers-11): ``RateLimit-Policy: "<name>";q=<burst>;w=<s>``
(the bucket: ``burst`` requests per the ``w`` seconds it takes to refill) and
``RateLimit: "<name>";r=<left>;t=<s>`` (requests left now, and the seconds until one more accrues).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.kernel import clock as timestamps
from core.kernel.errors import TooManyRequests
from core.kernel.ids import key_hash
from core.store import tables
from core.store.errors import EntityChanged, EntityExists, EntityMissing
from core.store.storage import IF_UNCHANGED, Storage

logger = logging.getLogger(__name__)

MAX_RATE = 100_000
MAX_ATTEMPTS = 6
WHOLE = "all"
"""The row of a bucket shared by every caller (no ``perCredential``)."""
RETIRED = "retired"
"""The partition of the tombstones of deleted bindings' buckets (buckets are GUIDs or hashes)."""

RATE_LIMIT: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["requestsPerMinute"],
    "properties": {
        "requestsPerMinute": {"type": "integer", "minimum": 1, "maximum": MAX_RATE},
        "burst": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_RATE,
            "description": "requests admitted at once after a quiet spell (default: requestsPerMinute)",
        },
        "perCredential": {
            "type": "boolean",
            "description": "one bucket per credential (token, API key, user, certificate) instead of one for all callers",
        },
    },
    "description": "Over the limit: 429 RateLimited with Retry-After and RateLimit-Policy / RateLimit; nothing is recorded or started.",
    "examples": [{"requestsPerMinute": 600, "burst": 20}],
}


class RateLimited(TooManyRequests):
    """429 ``RateLimited``: the bucket is empty; carries ``Retry-After`` and the RateLimit fields."""

    default_code = "RateLimited"


def normalise_rate_limit(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The limit as stored: ``burst`` filled in; None for no limit. The schema has been checked."""
    if value is None:
        return None
    rate = int(value["requestsPerMinute"])
    return {"requestsPerMinute": rate, "burst": int(value.get("burst", rate)), "perCredential": bool(value.get("perCredential", False))}


@dataclass(frozen=True)
class Decision:
    """An admitted request's headers (RateLimit-Policy and RateLimit)."""

    headers: dict[str, str]


def _headers(name: str, burst: int, interval: float, left: int, next_in: float) -> dict[str, str]:
    window = max(1, math.ceil(burst * interval))
    return {
        "RateLimit-Policy": f'"{name}";q={burst};w={window}',
        "RateLimit": f'"{name}";r={max(0, left)};t={max(0, math.ceil(next_in))}',
    }


def admit(
    storage: Storage,
    limit: Mapping[str, Any] | None,
    bucket: str,
    credential: str | None,
    *,
    name: str,
    clock: Callable[[], float] = time.time,
) -> Decision | None:
    """Take one request from the bucket, or raise ``RateLimited``; None when there is no limit.

    ``bucket`` is the partition (a scenario id, or a binding's row key: a GUID or a hash, never
    caller text); ``credential`` the caller's identity when the limit is ``perCredential``.
    """
    if not limit:
        return None
    rate = int(limit["requestsPerMinute"])
    burst = int(limit.get("burst") or rate)
    interval = 60.0 / rate
    capacity = burst * interval
    row = key_hash(credential or "anonymous") if limit.get("perCredential") else WHOLE
    table = storage.table(tables.RATELIMITS)
    for _ in range(MAX_ATTEMPTS):
        try:
            entity: Any = table.get_entity(bucket, row)
        except EntityMissing:
            entity = None
        now = clock()
        tat = max(float(entity["Tat"]) if entity is not None else now, now)
        new_tat = tat + interval
        if new_tat - now > capacity + 1e-9:
            wait = new_tat - now - capacity
            raise RateLimited(
                f"over this endpoint's rate limit of {rate} requests a minute (burst {burst}); retry after the time given",
                retry_after=max(1, math.ceil(wait)),
            ).with_headers(_headers(name, burst, interval, 0, wait))
        fresh = {"PartitionKey": bucket, "RowKey": row, "Tat": new_tat}
        try:
            if entity is None:
                table.create_entity(fresh)
            else:
                table.update_entity(fresh, mode="replace", etag=entity.metadata["etag"], match_condition=IF_UNCHANGED)
        except (EntityExists, EntityChanged, EntityMissing):
            continue  # another request took a token first: decide again on what it wrote
        left = math.floor((capacity - (new_tat - now)) / interval + 1e-9)
        next_in = (new_tat - now) - math.floor((new_tat - now) / interval + 1e-9) * interval or interval
        return Decision(_headers(name, burst, interval, left, next_in))
    logger.warning("rate limit of bucket %s: %d lost races in a row; refusing", bucket, MAX_ATTEMPTS)
    raise RateLimited("too many simultaneous requests for this endpoint's rate limit; retry", retry_after=1).with_headers(
        _headers(name, burst, interval, 0, 1)
    )


def retire(storage: Storage, bucket: str) -> None:
    """Mark the bucket's owner (a binding) as deleted, for ``remove_retired`` to clear its rows."""
    storage.table(tables.RATELIMITS).upsert_entity({"PartitionKey": RETIRED, "RowKey": bucket, "RetiredAt": timestamps.now_iso()})


def remove_spent(storage: Storage, bucket: str, now: float) -> int:
    """Remove the bucket's spent rows (``Tat`` at or before ``now``); returns how many.

    One query of the bucket's partition. Each delete is conditional on the ETag read: a row that
    a request moved on meanwhile is not spent any more and stays.
    """
    found = storage.table(tables.RATELIMITS).query_entities(
        "PartitionKey eq @pk and Tat le @now", parameters={"pk": bucket, "now": float(now)}, select=["PartitionKey", "RowKey"]
    )
    return storage.remove_each(tables.RATELIMITS, found, if_unchanged=True)


def remove_retired(storage: Storage, now: float) -> int:
    """Remove the spent rows of every retired bucket, and each tombstone whose bucket is empty.

    One query of the tombstones, then per tombstone one query of its bucket and one probe. A
    tombstone stays while a row is not yet spent (a request in the bucket's last ``burst``
    intervals, or the operation bound again); the next day tries again.
    """
    table = storage.table(tables.RATELIMITS)
    removed = 0
    for tombstone in table.query_entities("PartitionKey eq @pk", parameters={"pk": RETIRED}, select=["PartitionKey", "RowKey"]):
        bucket = tombstone["RowKey"]
        removed += remove_spent(storage, bucket, now)
        if not storage.partition_has_rows(tables.RATELIMITS, bucket):
            try:
                table.delete_entity(RETIRED, bucket, etag=tombstone.metadata["etag"], match_condition=IF_UNCHANGED)
            except (EntityChanged, EntityMissing):
                pass  # retired again meanwhile: the next run looks once more
    return removed
