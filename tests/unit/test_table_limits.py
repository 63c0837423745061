"""Azure's entity-size estimate (core.store.limits), against the tests' own independent one."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.runs import records as runs
from core.store.limits import MAX_ENTITY_BYTES, EntityTooLarge, check_entity, check_request_body, entity_size, problems
from tests.support.azure_limits import estimate, sizes_of_stored, sizes_of_wire, violations

ENTITIES = [
    {"PartitionKey": "p", "RowKey": "r"},
    {"PartitionKey": "scenario", "RowKey": "0f" * 16, "Name": "Åsa 😀", "Count": 3, "Big": 2**40, "On": True, "Ratio": 0.5},
    {"PartitionKey": "p", "RowKey": "r", "Doc0": b"x" * 60_000, "DocParts": 1, "When": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
    {"PartitionKey": "é", "RowKey": "😀", "Text": "é" * 1000 + "\U0001f600" * 10},
]


@pytest.mark.parametrize("entity", ENTITIES)
def test_the_estimate_is_microsofts(entity: dict[str, object]) -> None:
    assert entity_size(entity) == estimate(entity["PartitionKey"], entity["RowKey"], sizes_of_stored(entity))  # type: ignore[arg-type]


def test_the_estimate_counts_utf16_not_characters_or_utf8() -> None:
    base = entity_size({"PartitionKey": "p", "RowKey": "r", "S": ""})
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "S": "a"}) - base == 2
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "S": "é"}) - base == 2
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "S": "\U0001f600"}) - base == 4  # a surrogate pair
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "B": b"ab"}) - entity_size({"PartitionKey": "p", "RowKey": "r", "B": b""}) == 2


def test_what_azure_refuses_is_found() -> None:
    def over(entity: dict[str, object]) -> list[str]:
        return problems(entity)

    assert over({"PartitionKey": "p", "RowKey": "r", "S": "a" * 32_000}) == []
    assert over({"PartitionKey": "p", "RowKey": "r", "S": "a" * 32_001})  # Azurite takes up to 32,768
    assert over({"PartitionKey": "p", "RowKey": "r", "B": b"x" * 65_537})
    assert over({"PartitionKey": "p", "RowKey": "r", **{f"P{i}": i for i in range(253)}})
    nine = {f"C{i}": b"x" * 60_000 for i in range(9)}
    assert over({"PartitionKey": "p", "RowKey": "r", **nine, "S": "a" * 16_000}) == []
    # 17 chunks: under 1 MiB as bytes, over it once the name/type overheads and a 32 KB string add up
    seventeen = {f"C{i}": b"x" * 60_000 for i in range(17)}
    seventeen["S"] = "a" * 16_000
    assert entity_size({"PartitionKey": "p", "RowKey": "r", **seventeen}) > MAX_ENTITY_BYTES
    assert over({"PartitionKey": "p", "RowKey": "r", **seventeen})
    for entity in ({"PartitionKey": "p", "RowKey": "r", **seventeen}, {"PartitionKey": "p", "RowKey": "r", "S": "a" * 32_001}):
        assert violations("p", "r", sizes_of_stored(entity))  # the tests' own check agrees
        with pytest.raises(EntityTooLarge):
            check_entity(entity)


def test_request_bodies_are_measured_as_sent() -> None:
    """The request hook reads the JSON the SDK sends: binary as base64, Int64 as a string."""
    from azure.data.tables import EdmType
    from azure.data.tables._serialize import _add_entity_properties

    entity = {"PartitionKey": "p", "RowKey": "r", "B": b"x" * 50_000, "N": (2**40, EdmType.INT64), "S": "é" * 100}
    wire = json.loads(json.dumps(_add_entity_properties(entity)))
    assert estimate("p", "r", sizes_of_wire(wire)) == entity_size(entity)
    check_request_body("PATCH", json.dumps(wire))
    wire["S"] = "a" * 32_001
    with pytest.raises(EntityTooLarge):
        check_request_body("PUT", json.dumps(wire))
    check_request_body("GET", json.dumps(wire))  # reads are not writes
    check_request_body("POST", '{"TableName": "t"}')


def test_caller_text_in_a_trigger_summary_is_bounded() -> None:
    trigger = {"type": "accept", "contentType": "application/json; x=" + "a" * 40_000, "caller": {"name": "n" * 5000}}
    stored = json.loads(runs.trigger_text(trigger))
    assert len(stored["contentType"]) == 1001 and stored["contentType"].startswith("application/json; x=a")
    assert len(stored["caller"]["name"]) == 1001
    many = {"type": "accept", "values": ["v" * 1000] * 100, "more": {str(i): "w" * 1000 for i in range(100)}}
    assert len(runs.trigger_text(many)) <= runs.TRIGGER_MAX_CHARS
    assert json.loads(runs.trigger_text(many)) == {"type": "accept", "truncated": True}


def test_a_step_record_keeps_an_excerpt_of_a_long_error_and_points_at_the_whole() -> None:
    error = "x" * 5000
    records = [{"path": "0", "status": "failed", "error": error}, {"path": "1", "status": "failed", "error": "other " * 500}, {"path": "2", "error": "short"}]
    stored = json.loads(runs.encode_value("steps", records, error))
    assert stored[0]["error"] == "x" * 1000 + "\u2026" and stored[0]["errorRef"] == "#/error" and stored[0]["errorChars"] == 5000
    assert "errorRef" not in stored[1] and stored[1]["errorChars"] == 3000
    assert stored[2] == records[2]


def test_values_without_a_json_form_are_refusals_not_retries() -> None:
    circular: dict[str, object] = {}
    circular["self"] = circular
    for bad in (circular, {1, 2}):
        with pytest.raises((ValueError, TypeError)) as caught:
            runs.encode_value("output", bad)
        assert runs.is_refusal(caught.value)
    assert runs.describe_refusal(ValueError("Circular reference detected")) == "a value refers to itself (a circular value)"
    assert runs.encode_value("error", "bad \ud800 text") == b"bad \\ud800 text"
    assert json.loads(runs.encode_value("output", {"s": "\ud800"})) == {"s": "\ud800"}
