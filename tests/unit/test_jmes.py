"""Bounded JMESPath evaluation (core.process.jmes, issue 13.12): the same answers, bounded work."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from core.process.jmes import MAX_VALUE_BYTES, ExpressionTooCostly, evaluate

DATA = {"order": {"id": 7, "items": [{"sku": f"S{i}", "qty": i % 5, "tags": ["a"]} for i in range(300)]}, "n": None}


@pytest.mark.parametrize(
    "expression",
    ["order.items[?qty > `2`].sku", "order.items[*].[sku, qty]", "{a: order.id, b: order, c: order}", "sort_by(order.items, &sku)[0]",
     "map(&qty, order.items)", "order.items[].tags[]", "join(',', order.items[].sku)", "to_string(order.items[:3])",
     "merge(order, {id: `8`})", "values(order)", "length(order.items)", "[order, order.items, order.items[0]]"],
)  # fmt: skip
def test_the_same_answers_as_jmespath(expression: str) -> None:
    assert evaluate(jmespath.compile(expression), DATA) == jmespath.search(expression, DATA)


@pytest.mark.parametrize(
    "expression",
    ["@" + "|[@,@]" * 30, "{a: @, b: @}" + "|{a: @, b: @}" * 30, "[order, order]" + "|[@,@]" * 20,
     "join('', [order.items[0].sku, order.items[0].sku])" + "|join('', [@,@,@,@])" * 16, "to_array(@)" + "|[@,@]" * 30],
)  # fmt: skip
def test_values_built_by_repetition_are_refused_early(expression: str) -> None:
    with pytest.raises(ExpressionTooCostly, match="larger than 16 MiB"):
        evaluate(jmespath.compile(expression), DATA)


def test_steps_are_counted_inside_projections_and_functions() -> None:
    hundred = "`[" + ",".join("1" for _ in range(100)) + "]`"
    with pytest.raises(ExpressionTooCostly, match="steps"):
        evaluate(jmespath.compile(f"map(&map(&map(&@, {hundred}), {hundred}), {hundred})"), None)


def test_a_large_input_read_or_wrapped_once_is_fine() -> None:
    big: Any = {"text": "x" * (MAX_VALUE_BYTES // 2), "rows": list(range(10_000))}
    assert evaluate(jmespath.compile("{all: @, rows: rows[?@ > `5`]}"), big)["all"] is big
    with pytest.raises(ExpressionTooCostly):
        evaluate(jmespath.compile("[@, @, @]"), big)


def test_deeply_nested_expressions_are_measured_or_refused_cleanly() -> None:
    assert isinstance(evaluate(jmespath.compile("@" + "|[@]" * 200 + "|[@,@]"), DATA), list)
    with pytest.raises(ExpressionTooCostly, match="nested too deeply"):  # a RecursionError would be retried by the queue
        evaluate(jmespath.compile("@" + "|[@]" * 1000), DATA)
