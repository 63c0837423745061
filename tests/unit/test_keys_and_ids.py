"""Canonical cache keys, ids and the strict JSON parser."""

from __future__ import annotations

import time

import pytest

from core.kernel.errors import BadRequest
from core.kernel.ids import key_hash, new_run_id, parse_guid
from core.kernel.jsonvalue import canonical
from core.scenarios.cache import parse_key


def test_equal_keys_in_any_spelling_are_one_key() -> None:
    a = canonical(parse_key('{"a":1,"b":2}'))
    b = canonical(parse_key('{ "b": 2,\n "a": 1 }'))
    assert a == b == '{"a":1,"b":2}'
    assert key_hash(a) == key_hash(b)


def test_different_keys_stay_different() -> None:
    assert canonical(parse_key('"1"')) != canonical(parse_key("1"))
    assert canonical(parse_key('{"a":[1,2]}')) != canonical(parse_key('{"a":[2,1]}'))


def test_large_integers_keep_their_value() -> None:
    assert canonical(parse_key(str(2**63 + 1))) == str(2**63 + 1)


@pytest.mark.parametrize("raw", [None, "", "not json", "{'a': 1}", '{"a":1,"a":2}', "NaN", "x" * 3000])
def test_bad_keys_are_400(raw: str | None) -> None:
    with pytest.raises(BadRequest):
        parse_key(raw)


def test_odata_injection_in_a_key_is_just_a_key() -> None:
    key = parse_key('"x\' or PartitionKey ne \'"')
    assert key == "x' or PartitionKey ne '"
    assert len(key_hash(canonical(key))) == 64  # becomes a hash, never part of a filter


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "1a990d32-1299-4c6e-9ac7-aa1800cde08", "1a990d32/1299-4c6e-9ac7-aa1800cde08d",
     "1a990d32-1299-4c6e-9ac7-aa1800cde08d\n", "..\\1299", "1a990d32-1299-4c6e-9ac7-aa1800cde08d#", "%00"],
)  # fmt: skip
def test_scenario_ids_must_be_guids(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_guid(raw, "the scenario id", "InvalidScenarioId")


def test_guids_are_lower_cased() -> None:
    assert parse_guid("1A990D32-1299-4C6E-9AC7-AA1800CDE08D", "x", "y") == "1a990d32-1299-4c6e-9ac7-aa1800cde08d"


def test_run_ids_are_guids_that_sort_newest_first() -> None:
    now = time.time()
    older, newer = new_run_id(now), new_run_id(now + 1)
    assert parse_guid(older, "run", "x") == older
    assert newer < older
