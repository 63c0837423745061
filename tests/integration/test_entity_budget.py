"""One size budget per entity, measured as Azure measures it, on Azurite.

Azurite stores what Azure refuses (a merge past 1 MiB, a 32,500-character string), so each test
checks what was stored with the tests' own estimate (tests/support/azure_limits.py), the check
the whole session ends with.
"""

from __future__ import annotations

import secrets

import pytest
from azure.data.tables import TableServiceClient

from core.kernel.ids import new_run_id
from core.runs import records as runs
from core.store.limits import EntityTooLarge, entity_size
from core.store.storage import CHUNK, ENTITY_BUDGET, Storage
from devhost.azurite import Azurite
from tests.support.azure_limits import account_violations, entity_violations

SID = "22222222-2222-2222-2222-222222222222"


def _run(storage: Storage) -> dict[str, object]:
    return runs.insert_run(storage, SID, new_run_id(), {"type": "test"})


def _stored(storage: Storage, entity: dict[str, object]) -> dict[str, object]:
    return dict(runs.read_run_entity(storage, SID, str(entity["RowKey"])))


def test_values_written_one_after_another_share_one_budget(storage: Storage) -> None:
    """Intermediate then output, each 700 KB: each alone fits inline, together they would be
    1.4 MB after the merge (Azure refuses it, Azurite stores it)."""
    entity = _run(storage)
    early, late = "i" * 700_000, "o" * 700_000
    runs.update_run(storage, entity, Status=runs.RUNNING, intermediate=early)
    runs.finish_run(storage, entity, runs.SUCCEEDED, output=late)
    stored = _stored(storage, entity)
    assert entity_violations(stored) == [] and entity_size(stored) <= ENTITY_BUDGET
    assert stored.get("OutputBlob") or stored.get("IntermediateBlob")
    run = runs.get_run(storage, SID, str(entity["RowKey"]))
    assert (run["status"], run["intermediate"], run["output"]) == ("succeeded", early, late)


def test_a_value_already_stored_inline_moves_to_a_blob_to_make_room(storage: Storage) -> None:
    entity = _run(storage)
    runs.update_run(storage, entity, steps=[{"n": "s" * 400_000}])
    runs.update_run(storage, entity, output="o" * 450_000)  # only one of the two fits
    runs.update_run(storage, entity, error="e" * 300_000)
    stored = _stored(storage, entity)
    assert entity_violations(stored) == [] and entity_size(stored) <= ENTITY_BUDGET
    run = runs.get_run(storage, SID, str(entity["RowKey"]))
    assert run["steps"] == [{"n": "s" * 400_000}] and run["output"] == "o" * 450_000 and run["error"] == "e" * 300_000


def test_a_shrinking_value_empties_the_chunks_it_no_longer_needs(storage: Storage) -> None:
    entity = _run(storage)
    runs.update_run(storage, entity, output="x" * (CHUNK * 5))
    runs.update_run(storage, entity, output="small")
    stored = _stored(storage, entity)
    assert stored["OutputParts"] == 1 and all(stored.get(f"Output{i}") in (b"", None) for i in range(1, 6))
    assert entity_size(stored) < 2000
    assert runs.get_run(storage, SID, str(entity["RowKey"]))["output"] == "small"


def test_a_run_updated_without_its_stored_entity_reads_it_first(storage: Storage) -> None:
    entity = _run(storage)
    runs.update_run(storage, entity, intermediate="i" * 700_000)
    runs.update_run(storage, {"PartitionKey": SID, "RowKey": entity["RowKey"]}, output="o" * 700_000)
    assert entity_violations(_stored(storage, entity)) == []


def test_junction_refuses_what_azure_would_refuse_before_sending_it(storage: Storage) -> None:
    table = storage.table("runs")
    with pytest.raises(EntityTooLarge) as caught:
        table.upsert_entity({"PartitionKey": SID, "RowKey": "x", "Text": "a" * 32_001})
    assert caught.value.code == "EntityTooLarge"
    with pytest.raises(EntityTooLarge):
        table.upsert_entity({"PartitionKey": SID, "RowKey": "x", **{f"C{i}": b"x" * 60_000 for i in range(18)}})
    assert not list(table.query_entities("PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": SID, "rk": "x"}))


def test_the_session_check_finds_what_azurite_stores_and_azure_refuses(azurite: Azurite) -> None:
    """The check that ends every test session can fail: two merges of 600 KB each, written
    without Junction's checks, are one 1.2 MB entity in Azurite."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "probe" + secrets.token_hex(4)
    table = service.create_table(name)
    try:
        table.create_entity({"PartitionKey": "p", "RowKey": "r", **{f"A{i}": b"a" * 60_000 for i in range(10)}})
        table.update_entity({"PartitionKey": "p", "RowKey": "r", **{f"B{i}": b"b" * 60_000 for i in range(10)}}, mode="merge")
        table.create_entity({"PartitionKey": "p", "RowKey": "s", "Text": "t" * 32_500})
        found = account_violations(azurite.connection_string, [name])
        assert any("p/r: EntityTooLarge" in f for f in found) and any("p/s: PropertyValueTooLarge" in f for f in found), found
    finally:
        service.delete_table(name)
