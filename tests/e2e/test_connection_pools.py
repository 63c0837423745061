"""Concurrent requests reuse storage connections: no "Connection pool is full" (issue 14, point 12).

requests keeps 10 connections per host by default; the worker runs up to 32 functions at once
(devhost's pool, the Python worker's maximum), so with more than 10 of them on storage every
extra connection was opened, used once and thrown away, with a warning each time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import eventually, serve_junction

CLIENTS = 16
PER_CLIENT = 8


def test_sixteen_concurrent_callers_log_no_full_pool(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> None:
    log_dir: Path = tmp_path_factory.mktemp("pools")
    with serve_junction(azurite, "pools", log_dir) as app:
        sid = app.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})["id"]

        def caller(_: int) -> list[int]:
            with httpx.Client(base_url=app.url, timeout=30) as client:
                return [client.post(f"/ExternalData/Accept/{sid}", json={"n": n}).status_code for n in range(PER_CLIENT)]

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [status for batch in pool.map(caller, range(CLIENTS)) for status in batch]
        assert statuses == [200] * CLIENTS * PER_CLIENT
        # the queue worker runs the runs concurrently too: wait until it has done them all
        done = lambda: sum(1 for e in app.storage.table("runs").query_entities("PartitionKey eq @pk and Status eq 'succeeded'", parameters={"pk": sid}))  # noqa: E731
        assert eventually(lambda: done() == CLIENTS * PER_CLIENT, timeout=120)
    log = (log_dir / "devhost.log").read_text(encoding="utf-8")
    assert "Connection pool is full" not in log
