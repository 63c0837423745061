"""The process engine: values, references, steps, and validation on save."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.memory_cache import DictCache
from core.engine import ProcessFailed, RunContext, resolve, run_process, validate_process
from core.errors import BadRequest


def _run(steps: list[dict[str, Any]], body: Any = None, trigger: dict[str, Any] | None = None) -> tuple[Any, DictCache]:
    cache = DictCache()
    process = {"steps": steps}
    validate_process(process)
    result = run_process(process, RunContext(input=body, trigger=trigger or {"data": {"body": body}}), cache)
    return result.result, cache


def test_data0_body_means_the_input() -> None:
    result, _ = _run([{"type": "transform", "expression": "data[0].Body.items[?qty > `1`].sku"}], {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]})
    assert result == ["a"]


def test_references_read_trigger_steps_and_result() -> None:
    steps = [
        {"type": "transform", "id": "first", "expression": "data[0].Body.n"},
        {"type": "transform", "expression": "steps.first"},
        {"type": "return", "value": {"jmespath": "{n: steps.first, last: result, body: trigger.data.body.n}"}},
    ]
    result, _ = _run(steps, {"n": 5})
    assert result == {"n": 5, "last": 5, "body": 5}


def test_missing_references_are_null() -> None:
    context = RunContext(input={"a": 1}, trigger={"data": {"body": {"a": 1}}})
    assert resolve("#trigger.data.body.nope.deeper", context) is None
    assert resolve("#trigger.data.body.a[3]", context) is None
    assert resolve("#steps.unknown", context) is None
    assert resolve("#trigger.data.body.a", context) == 1


def test_literals_are_literal() -> None:
    context = RunContext(input=None, trigger={})
    assert resolve({"a": "#not-a-ref here"}, context) == {"a": "#not-a-ref here"}
    assert resolve(42, context) == 42


def test_cache_step_sets_and_deletes() -> None:
    result, cache = _run(
        [
            {"type": "cache", "key": {"jmespath": "data[0].Body.id"}, "value": "#trigger.data.body"},
            {"type": "cache", "key": "gone", "value": 1},
            {"type": "cache", "key": "gone", "delete": True},
        ],
        {"id": "k1", "v": 2},
    )
    assert cache.values == {'"k1"': {"id": "k1", "v": 2}}
    assert result is None


def test_return_ends_the_process() -> None:
    result, cache = _run([{"type": "return", "value": "done"}, {"type": "cache", "key": "never", "value": 1}])
    assert result == "done"
    assert cache.values == {}


def test_a_failing_expression_names_its_step() -> None:
    with pytest.raises(ProcessFailed) as info:
        _run([{"type": "transform", "id": "boom", "expression": "abs(data[0].Body)"}], "text")
    assert info.value.step == "boom"


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ([{"type": "exec", "code": "import os"}], "unknown step type"),
        ([{"type": "transform", "expression": "data[0"}], "does not compile"),
        ([{"type": "transform"}], "needs 'expression'"),
        ([{"type": "return", "value": "#steps.later"}, {"type": "transform", "id": "later", "expression": "a"}], "names no earlier step"),
        ([{"type": "transform", "id": "x", "expression": "a"}, {"type": "transform", "id": "x", "expression": "a"}], "used twice"),
        ([{"type": "cache", "key": "k"}], "needs 'value'"),
        ([{"type": "cache", "key": "k", "value": 1, "eval": "x"}], "unknown field"),
        ([{"type": "return", "value": "#bogus.path"}], "is not a reference"),
        ([{"type": "transform", "id": "1bad", "expression": "a"}], "id must be"),
    ],
)
def test_invalid_processes_are_refused_naming_the_step(steps: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_process({"steps": steps})
    assert fragment in info.value.message
    assert "process.steps[" in info.value.message
