"""The process engine: values, references, steps, and validation on save."""

from __future__ import annotations

from typing import Any

import pytest

from core.kernel.errors import BadRequest
from core.process.engine import RunContext, resolve, run_process
from core.process.errors import ProcessFailed
from core.process.validation import validate_process
from tests.support.memory_cache import DictCache


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
        ([{"type": "transform", "id": "a", "expression": "steps.later.x"}, {"type": "transform", "id": "later", "expression": "a"}], "steps.later names no earlier step"),
        ([{"type": "return", "value": {"jmespath": "{n: length(steps.missing[0])}"}}], "steps.missing names no earlier step"),
        ([{"type": "decision", "if": "steps.typo == `1`", "then": []}], "steps.typo names no earlier step"),
        ([{"type": "transform", "id": "self", "expression": "steps.self"}], "steps.self names no earlier step"),
    ],
)
def test_invalid_processes_are_refused_naming_the_step(steps: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_process({"steps": steps})
    assert fragment in info.value.message
    assert "process.steps[" in info.value.message


def test_decision_takes_the_branch_its_condition_chooses() -> None:
    steps = [
        {
            "type": "decision",
            "if": "data[0].Body.qty > `10`",
            "then": [{"type": "transform", "id": "size", "expression": "'bulk'"}],
            "else": [{"type": "transform", "id": "size", "expression": "'single'"}],
        },
        {"type": "return", "value": "#steps.size"},
    ]
    assert _run(steps, {"qty": 50})[0] == "bulk"
    assert _run(steps, {"qty": 1})[0] == "single"
    assert _run(steps, {})[0] == "single"  # null comparison is false


def test_empty_values_are_false_in_decisions() -> None:
    steps = [{"type": "decision", "if": "data[0].Body", "then": [{"type": "return", "value": "yes"}], "else": [{"type": "return", "value": "no"}]}]
    assert [_run(steps, body)[0] for body in ([], {}, "", None, 0, [0], "x")] == ["no", "no", "no", "no", "yes", "yes", "yes"]


def test_nested_decisions_and_references_to_branch_steps() -> None:
    steps = [
        {"type": "decision", "if": "`true`", "then": [
            {"type": "decision", "if": "`false`", "then": [], "else": [{"type": "transform", "id": "deep", "expression": "'here'"}]},
        ]},
        {"type": "return", "value": "#steps.deep"},
    ]  # fmt: skip
    assert _run(steps)[0] == "here"


def test_throw_fails_the_run_with_its_message_and_response() -> None:
    with pytest.raises(ProcessFailed) as info:
        _run([{"type": "throw", "id": "stop", "message": {"jmespath": "join(' ', ['bad', data[0].Body])"}, "response": {"HttpStatusCode": 409, "Content": "no"}}], "order")
    assert info.value.step == "stop"
    assert info.value.message == "bad order"
    assert info.value.response == {"HttpStatusCode": 409, "Content": "no"}
    assert info.value.records[-1]["status"] == "failed"


def test_literal_values_escape_references() -> None:
    assert _run([{"type": "return", "value": {"literal": "#steps.x"}}])[0] == "#steps.x"
    assert _run([{"type": "return", "value": {"literal": {"jmespath": "a"}}}])[0] == {"jmespath": "a"}


def test_intermediate_return_stops_for_a_waiting_caller_and_resumes_after_it() -> None:
    process = {
        "steps": [
            {"type": "transform", "id": "got", "expression": "data[0].Body"},
            {"type": "decision", "if": "`true`", "then": [
                {"type": "intermediateReturn", "value": "accepted"},
                {"type": "cache", "key": "k", "value": "#steps.got"},
            ]},
            {"type": "return", "value": "done"},
        ]
    }  # fmt: skip
    validate_process(process)
    cache = DictCache()
    first = run_process(process, RunContext(input=7, trigger={}), cache, stop_at_intermediate=True)
    assert (first.kind, first.result, first.position) == ("intermediate", "accepted", [1, "then", 1])
    assert cache.values == {}
    rest = run_process(process, RunContext(input=7, trigger={}, steps=first.steps), cache, start=first.position)
    assert (rest.kind, rest.result) == ("returned", "done")
    assert cache.values == {'"k"': 7}
    assert [r["type"] for r in rest.records] == ["cache", "return"]


def test_intermediate_return_on_the_queue_path_just_continues() -> None:
    result, cache = _run([{"type": "intermediateReturn", "value": 1}, {"type": "cache", "key": "k", "value": 2}, {"type": "return", "value": 3}])
    assert result == 3 and cache.values == {'"k"': 2}


def test_every_step_is_recorded() -> None:
    cache = DictCache()
    process = {"steps": [{"type": "transform", "id": "a", "expression": "`1`"}, {"type": "return", "value": "#steps.a"}]}
    outcome = run_process(process, RunContext(input=None, trigger={}), cache)
    assert [(r["path"], r["id"], r["type"], r["status"]) for r in outcome.records] == [("0", "a", "transform", "succeeded"), ("1", None, "return", "succeeded")]
    assert all(r["startedAt"] <= r["endedAt"] for r in outcome.records)


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"type": "http", "url": "https://evil.example/x"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({"type": "http", "url": "file:///etc/passwd"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({"type": "http", "url": "https://api.example.com:8443/x"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({"type": "http", "url": "https://api.example.com/x", "method": "TRACE"}, "method"),
        ({"type": "http", "url": "https://api.example.com/x", "timeout": 0}, "timeout"),
        ({"type": "http", "url": "https://api.example.com/x", "retries": 11}, "retries"),
        ({"type": "http", "url": "https://api.example.com/x", "headers": {"X": {"secret": "AzureWebJobsStorage"}}}, "JUNCTION_SECRET_"),
        ({"type": "http", "url": "https://api.example.com/x", "headers": {"Bad Name": "x"}}, "header name"),
        ({"type": "return", "value": {"secret": "JUNCTION_SECRET_X"}}, "only be used in http step headers"),
        ({"type": "decision", "if": "a", "then": [{"type": "nope"}]}, "process.steps[0].then[0]"),
        ({"type": "decision", "if": "a ||"}, "does not compile"),
    ],
)
def test_invalid_http_and_decision_steps_are_refused(step: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_process({"steps": [step]}, allowed_hosts=("api.example.com", "*.partner.example"))
    assert fragment in info.value.message


def test_allowed_http_steps_pass_validation() -> None:
    validate_process(
        {"steps": [
            {"type": "http", "id": "a", "url": "https://api.example.com/x", "headers": {"Authorization": {"secret": "JUNCTION_SECRET_API"}}},
            {"type": "http", "url": "https://eu.partner.example/y", "method": "POST", "body": "#steps.a.body"},
            {"type": "http", "url": "#steps.a.body.next"},
        ]},
        allowed_hosts=("api.example.com", "*.partner.example"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "references"),
    [
        ("steps.a.b", {"a"}),
        ("steps.a[0].b", {"a"}),
        ("{x: steps.a, y: not_null(steps.b, `1`)}", {"a", "b"}),
        ("steps.a | steps.not_root", {"a"}),  # after a pipe, steps is a field of the result
        ("orders[*].steps.not_root", set()),  # inside a projection: a field of each order
        ("items[?steps.not_root > `1`]", set()),
        ("steps", set()),
        ("steps.*", set()),
        ("sort_by(items, &steps.not_root)", set()),
    ],
)
def test_step_references_in_jmespath_are_those_read_from_the_root(expression: str, references: set[str]) -> None:
    import jmespath

    from core.process.validation import step_references

    assert step_references(jmespath.compile(expression).parsed) == references


def test_jmespath_may_read_earlier_steps_and_either_branch() -> None:
    validate_process({"steps": [
        {"type": "transform", "id": "order", "expression": "data[0].Body"},
        {"type": "decision", "if": "steps.order.total > `100`", "then": [{"type": "transform", "id": "big", "expression": "steps.order"}]},
        {"type": "return", "value": {"jmespath": "{order: steps.order, big: steps.big, lines: steps.order.lines[*].steps}"}},
    ]})  # fmt: skip
