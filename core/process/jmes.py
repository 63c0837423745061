"""JMESPath evaluation with bounded work (issue 13.12).

An expression is tenant text run over caller data, and JMESPath can amplify: ``[@,@]`` builds a
list holding its input twice (by reference, so it is cheap to build), and twenty of them in a
132-character expression made a 12.5 MB output, which is expensive to store, compare or turn into
text; a projection or ``map`` multiplies the work of what it applies. So every evaluation counts:

- **steps**: every node the interpreter visits, including those inside projections, filters and
  functions' expression arguments, at most ``MAX_STEPS`` per expression;
- **size**: every value the expression *builds* (lists, objects and strings made by
  multi-selects, projections, flattening, slices and functions) is weighed as JSON text, at most
  ``MAX_VALUE_BYTES``: a part placed once counts lightly (a lookup), a part placed again counts
  its full size, so ``[@,@]`` doubling is caught after a few steps while a projection over a
  large input costs one lookup per element (``Bounded.weigh``).

Going past either, or nesting deeper than the interpreter's stack, is ``ExpressionTooCostly``, a ``ValueError``: the engine fails the step with
that message (a final failure; running it again would cost the same).
"""

from __future__ import annotations

import functools
from typing import Any

MAX_STEPS = 1_000_000
MAX_VALUE_BYTES = 16 * 1024 * 1024
_BUILDERS = frozenset(
    {"multi_select_list", "multi_select_dict", "projection", "value_projection", "filter_projection", "flatten", "function_expression", "slice"}
)


class ExpressionTooCostly(ValueError):
    """An expression went past MAX_STEPS or built a value larger than MAX_VALUE_BYTES."""


def _interpreter_class() -> type:
    from jmespath.visitor import TreeInterpreter  # cold start: with the first evaluation

    class Bounded(TreeInterpreter):  # type: ignore[misc]
        """Counts steps; weighs what builder nodes return (see ``weigh``)."""

        def __init__(self) -> None:
            super().__init__()
            self.steps = 0
            self.weights: dict[int, tuple[Any, int]] = {}  # built containers (object kept alive)
            self.exact: dict[int, tuple[Any, int]] = {}
            self.placed: set[int] = set()
            table: dict[str, tuple[Any, bool]] = {}
            steps = 0

            def visit(node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
                nonlocal steps
                steps += 1
                if steps > MAX_STEPS:
                    raise ExpressionTooCostly(f"the expression took more than {MAX_STEPS:,} steps")
                kind = node["type"]
                entry = table.get(kind)
                if entry is None:
                    entry = table[kind] = (getattr(self, f"visit_{kind}", self.default_visit), kind in _BUILDERS)
                result = entry[0](node, *args, **kwargs)
                if entry[1]:
                    kind_of = type(result)
                    if kind_of is str:
                        if len(result) > MAX_VALUE_BYTES:
                            raise ExpressionTooCostly(_TOO_BIG)
                    elif (kind_of is list or kind_of is dict) and id(result) not in self.weights:
                        self.weigh(result)
                return result

            self.visit = visit  # an instance attribute: one call per node, not two

        def weigh(self, value: list[Any] | dict[str, Any]) -> int:
            """The first time an object is placed in a built value it counts by its own weight
            (a built value: its weight; anything read from the input: its length as text, or 1);
            every further placement of the same object counts its full size as JSON. So building
            from distinct parts costs a lookup per part, and only repetition (``[@,@]``) is
            measured, which is where a value's size can outgrow the work that made it."""
            total = 2
            children = value.values() if isinstance(value, dict) else value
            if isinstance(value, dict):
                total += sum(len(k) + 3 for k in value)
            placed, weights = self.placed, self.weights
            for child in children:
                kind_of = type(child)
                if kind_of is str:
                    total += len(child) + 3
                elif kind_of is list or kind_of is dict:
                    key = id(child)
                    if key in placed:
                        total += self.full_size(child)
                    else:
                        placed.add(key)
                        known = weights.get(key)
                        total += known[1] if known is not None and known[0] is child else 1
                else:
                    total += 8
                if total > MAX_VALUE_BYTES:
                    raise ExpressionTooCostly(_TOO_BIG)
            self.weights[id(value)] = (value, total)
            return total

        def full_size(self, value: Any) -> int:
            """``value``'s length as JSON (roughly), every reference counted; memoised per object,
            without recursion, stopping past the limit."""
            known = self.exact.get(id(value))
            if known is not None and known[0] is value:
                return known[1]
            stack: list[tuple[Any, bool]] = [(value, False)]
            while stack:
                item, children_done = stack.pop()
                seen = self.exact.get(id(item))
                if seen is not None and seen[0] is item:
                    continue
                children = list(item.values()) if isinstance(item, dict) else item
                if not children_done:
                    stack.append((item, True))
                    stack.extend((c, False) for c in children if isinstance(c, list | dict))
                    continue
                total = 2 + sum(len(k) + 3 for k in item) if isinstance(item, dict) else 2
                for child in children:
                    if isinstance(child, list | dict):
                        total += self.exact[id(child)][1] + 1
                    elif isinstance(child, str):
                        total += len(child) + 3
                    else:
                        total += 8
                    if total > MAX_VALUE_BYTES:
                        raise ExpressionTooCostly(_TOO_BIG)
                self.exact[id(item)] = (item, total)
            return self.exact[id(value)][1]

    return Bounded


_TOO_BIG = f"the expression built a value larger than {MAX_VALUE_BYTES // (1024 * 1024)} MiB as JSON"
_BOUNDED: type | None = None


def evaluate(compiled: Any, scope: Any) -> Any:
    """``compiled.search(scope)`` (a ``jmespath`` ParsedResult) within the bounds above."""
    global _BOUNDED
    if _BOUNDED is None:
        _BOUNDED = _interpreter_class()
    try:
        return _BOUNDED().visit(compiled.parsed, scope)
    except RecursionError:  # ``|[@]`` a thousand times: the interpreter recurses per level
        raise ExpressionTooCostly("the expression is nested too deeply to evaluate") from None


@functools.lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Any:
    """``expression`` parsed once per process (a ``jmespath`` ParsedResult for ``evaluate``)."""
    import jmespath  # cold start: imported on first use, which matters less than the app's start

    return jmespath.compile(expression)
