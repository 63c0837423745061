"""The health check on Azurite: GET /health answers from one storage check per 30 s, 503 when that
check failed; the admin details read the queues, the last schedule tick and the key caches."""

from __future__ import annotations

import re

import pytest

from core.app import health as app_health
from core.kernel.errors import StorageBusy
from core.kernel.settings import Settings, load_settings
from core.runs import health
from core.runs.messages import RunMessage, enqueue
from core.store.storage import Storage
from devhost.azurite import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _dead_storage(settings: Settings) -> Storage:
    """The same account and prefix behind a port nobody listens on."""
    dead = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{free_port()}", str(settings.storage.connection_string))
    assert dead != settings.storage.connection_string
    return Storage.from_settings(load_settings({"AzureWebJobsStorage": dead, "JUNCTION_TABLE_PREFIX": settings.table_prefix}))


def test_the_check_is_made_once_per_period_whatever_the_requests(storage: Storage) -> None:
    clock = Clock()
    check = health.StorageCheck(monotonic=clock)
    for _ in range(50):
        assert check.result(storage).healthy
    assert check.checks == 1, "GET /health makes no storage call per request"
    clock.now += health.CHECK_SECONDS - 1
    check.result(storage)
    assert check.checks == 1
    clock.now += 1
    check.result(storage)
    assert check.checks == 2


def test_unreachable_storage_is_503_until_the_next_check(settings: Settings, storage: Storage) -> None:
    clock = Clock()
    check = health.StorageCheck(monotonic=clock)
    dead = _dead_storage(settings)
    failed = check.result(dead)
    assert not failed.healthy and failed.error
    assert check.result(storage) is failed, "the cached answer stands for the period"
    clock.now += health.CHECK_SECONDS
    assert check.result(storage).healthy


def test_public_health_says_ok_or_raises_storage_busy(settings: Settings, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_storage_check", health.StorageCheck())
    reply = app_health.public_health(storage)
    assert reply.status == 200 and reply.body == {"status": "ok"} and reply.headers["Cache-Control"] == "no-store"
    monkeypatch.setattr(health, "_storage_check", health.StorageCheck())
    with pytest.raises(StorageBusy) as refused:
        app_health.public_health(_dead_storage(settings))
    assert refused.value.retry_after == int(health.CHECK_SECONDS) and not refused.value.throttled


def test_the_details_read_queues_and_the_last_schedule_tick(settings: Settings, storage: Storage) -> None:
    details = app_health.details(storage, settings)
    assert details["status"] == "ok" and details["storage"]["reachable"]
    assert details["runQueue"] == {"depth": 0, "oldestMessageAgeSeconds": None}
    assert details["poisonQueue"] == {"depth": 0} and details["schedules"] == {"lastTick": None}
    assert details["signingKeys"] == []  # no Azure AD and no issuer in these settings
    enqueue(storage, RunMessage("s", "r", None, False, {}))
    enqueue(storage, RunMessage("s", "r2", None, False, {}))
    storage.queue(storage.run_queue_name + "-poison").send_message("{}")
    clock = Clock()
    assert health.record_schedule_tick(storage, monotonic=clock)
    assert not health.record_schedule_tick(storage, monotonic=clock), "at most once a minute per process"
    details = app_health.details(storage, settings)
    assert details["runQueue"]["depth"] == 2 and details["runQueue"]["oldestMessageAgeSeconds"] >= 0
    assert details["poisonQueue"] == {"depth": 1} and details["status"] == "degraded"
    assert details["schedules"]["lastTick"].endswith("Z") or "+" in details["schedules"]["lastTick"]


def test_the_details_of_unreachable_storage(settings: Settings) -> None:
    details = app_health.details(_dead_storage(settings), settings)
    assert details["status"] == "unhealthy" and details["storage"]["reachable"] is False and details["storage"]["error"]
    assert details["runQueue"] is None and details["poisonQueue"] is None
