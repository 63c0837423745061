"""A run whose queue message could not be sent leaves no record behind, even when the table
service fails too (the storage outage of tests/reliability/test_faults.py, made deterministic).

Tables go through the table proxy, which answers 503 to the record's delete while the test
says the table service is down; the queue is a port nothing listens on, so every send fails.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from core.kernel.errors import NotFound
from core.kernel.settings import load_settings
from core.runs import records as runs
from core.runs.starter import start_run
from core.store.storage import Storage
from devhost.azurite import Azurite, connection_string, free_port
from tests.support.table_proxy import TableProxy

SID = "33333333-3333-3333-3333-333333333333"


@pytest.fixture
def proxy(azurite: Azurite) -> Iterator[TableProxy]:
    with TableProxy(azurite.ports) as server:
        yield server


def _storage(conn: str, prefix: str) -> Storage:
    return Storage.from_settings(load_settings({"AzureWebJobsStorage": conn, "JUNCTION_TABLE_PREFIX": prefix}))


def _status(storage: Storage, run_id: str) -> str | None:
    try:
        return str(runs.read_run_entity(storage, SID, run_id)["Status"])
    except NotFound:
        return None


def _wait(check, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("worker_started_meanwhile", [False, True], ids=["unsent", "sent-after-all"])
def test_the_record_of_an_unsent_run_is_removed_once_the_table_service_is_back(
    proxy: TableProxy, worker_started_meanwhile: bool
) -> None:
    prefix = "u" + secrets.token_hex(5)
    direct = _storage(proxy.direct_connection_string, prefix)
    dead_queue = connection_string(proxy.blob_port, free_port(), proxy.port)
    accepting = _storage(dead_queue, prefix)
    tables_down = [True]
    proxy.unavailable_if = lambda method, path: tables_down[0] and method == "DELETE"

    run_id = "fe000000-0000-0000-0000-" + secrets.token_hex(6)
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a refused connection
        start_run(accepting, SID, {"type": "accept"}, body=None, has_body=False, principal=None, run_id=run_id)
    assert _status(direct, run_id) == runs.QUEUED, "the outage should have kept the delete from happening"
    assert runs.unstarted_runs.pending() >= 1

    if worker_started_meanwhile:  # the send reached the queue after all and a worker took the run
        entity = runs.read_run_entity(direct, SID, run_id)
        runs.update_run(direct, entity, Status=runs.RUNNING, Attempts=1)
    tables_down[0] = False
    _wait(lambda: runs.unstarted_runs.pending() == 0)
    assert runs.unstarted_runs.pending() == 0
    if worker_started_meanwhile:
        assert _status(direct, run_id) == runs.RUNNING, "a record a worker has taken is the worker's"
    else:
        assert _status(direct, run_id) is None, "the caller was told the run was not accepted"
