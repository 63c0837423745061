"""Engine overhead: a 10-step transform/decision process on a 100 KiB input, next to the same
JMESPath expressions evaluated directly (compiled once, like the engine) in the same run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath

from bench.timing import best_per_call
from core.process.engine import RunContext, run_process
from core.process.validation import validate_process

TARGET = 1.5


class _NoCache:
    def set(self, key: Any, value: Any) -> None: ...
    def delete(self, key: Any) -> None: ...


def _input() -> dict[str, Any]:
    items = [{"id": i, "sku": f"SKU-{i:05d}", "qty": i % 7, "price": round(i * 1.37, 2), "tags": ["a", "b"]} for i in range(1300)]
    return {"order": {"id": 42, "customer": {"name": "Contoso", "tier": "gold"}, "items": items}}


PROCESS: dict[str, Any] = {
    "steps": [
        {"type": "transform", "id": "order", "expression": "data[0].Body.order"},
        {"type": "transform", "id": "items", "expression": "steps.order.items"},
        {"type": "transform", "id": "big", "expression": "steps.items[?qty > `3`]"},
        {"type": "transform", "id": "skus", "expression": "steps.big[].sku"},
        {"type": "transform", "id": "total", "expression": "sum(steps.items[].price)"},
        {"type": "decision", "if": "steps.total > `1000`", "then": [
            {"type": "transform", "id": "tier", "expression": "steps.order.customer.tier"},
        ], "else": [
            {"type": "transform", "id": "tier", "expression": "'none'"},
        ]},
        {"type": "transform", "id": "count", "expression": "length(steps.skus)"},
        {"type": "transform", "id": "first", "expression": "steps.skus[0]"},
        {"type": "return", "value": {"jmespath": "{id: steps.order.id, count: steps.count, tier: steps.tier, first: steps.first}"}},
    ]
}  # fmt: skip


def _direct(body: dict[str, Any]) -> Callable[[], Any]:
    compiled = {name: jmespath.compile(text) for name, text in [
        ("order", "data[0].Body.order"), ("items", "steps.order.items"), ("big", "steps.items[?qty > `3`]"),
        ("skus", "steps.big[].sku"), ("total", "sum(steps.items[].price)"), ("if", "steps.total > `1000`"),
        ("tier", "steps.order.customer.tier"), ("count", "length(steps.skus)"), ("first", "steps.skus[0]"),
        ("out", "{id: steps.order.id, count: steps.count, tier: steps.tier, first: steps.first}"),
    ]}  # fmt: skip

    def run() -> Any:
        steps: dict[str, Any] = {}
        scope = {"data": [{"Body": body}], "trigger": {}, "steps": steps, "result": None}
        for name in ("order", "items", "big", "skus", "total"):
            steps[name] = compiled[name].search(scope)
        steps["tier"] = compiled["tier"].search(scope) if compiled["if"].search(scope) else "none"
        for name in ("count", "first"):
            steps[name] = compiled[name].search(scope)
        return compiled["out"].search(scope)

    return run


def run() -> dict[str, Any]:
    body = _input()
    validate_process(PROCESS)
    direct = _direct(body)

    def engine() -> Any:
        return run_process(PROCESS, RunContext(input=body, trigger={}), _NoCache()).result

    assert engine() == direct()
    engine_s, direct_s = best_per_call(engine, 200, 5), best_per_call(direct, 200, 5)
    return {"engine_ms": engine_s * 1000, "direct_ms": direct_s * 1000, "ratio": engine_s / direct_s, "target": TARGET}


def report(result: dict[str, Any]) -> str:
    return (
        "Engine, 10-step transform/decision process on a 100 KiB input:\n"
        f"    engine {result['engine_ms']:.3f} ms per run, same JMESPath directly {result['direct_ms']:.3f} ms, "
        f"ratio {result['ratio']:.2f} (target <= {result['target']})"
    )


if __name__ == "__main__":
    print(report(run()))
