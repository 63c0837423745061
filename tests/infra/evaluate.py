"""Evaluate the few Bicep expressions whose logic matters offline (what pycep parsed), so a test
can run a template's own validation or switch on sample values instead of only reading its text.

It knows the functions and operators the templates use for that logic and raises
NotImplementedError on anything else, so a template change that it cannot follow fails loudly
rather than being skipped. ARM evaluates only the branch a condition takes (the logical
functions' documentation); so does this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.infra.bicep import get


class TemplateError(Exception):
    """What ARM would refuse: here, reading a property an object does not have."""


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")  # ${name} or ${name.property}


def _string(value: Any) -> str:
    # ARM's string() of a bool is "True"/"False".
    return str(value) if not isinstance(value, bool) else ("True" if value else "False")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": lambda container, item: item in container,
    "first": lambda value: value[0],
    "empty": lambda value: len(value) == 0,
    "length": len,
    "range": lambda start, count: list(range(start, start + count)),
    "substring": lambda text, start, length: text[start : start + length],
    "to_lower": str.lower,
    "to_upper": str.upper,
    "string": _string,
    "json": lambda text: __import__("json").loads(text),
    "replace": lambda text, old, new: text.replace(old, new),
    "split": lambda text, delimiter: text.split(delimiter),
}


class Evaluator:
    """``names``: parameter values; variables of ``template`` are evaluated on demand."""

    def __init__(self, template: Mapping[str, Any], names: Mapping[str, Any]) -> None:
        self.template = template
        self.names = dict(names)

    def name(self, name: str) -> Any:
        if name not in self.names:
            variable = get(self.template.get("variables") or {}, name, "value")
            if variable is None:
                raise NotImplementedError(f"unknown name {name!r}")
            self.names[name] = self(variable)
        return self.names[name]

    def __call__(self, expression: Any) -> Any:
        if isinstance(expression, bool | int | float) or expression is None:
            return expression
        if isinstance(expression, str):
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expression) and self._known(expression):
                return self.name(expression)
            return _INTERPOLATION.sub(self._interpolate, expression)
        if isinstance(expression, list):
            return [self(item) for item in expression]
        if not isinstance(expression, Mapping):
            raise NotImplementedError(f"cannot evaluate {expression!r}")
        if "loop_type" in expression:  # [for item in array: value], [for (item, i) in array: value]
            detail = expression["loop_type"]["detail"]
            items = self(detail["array_name"])
            out = []
            for index, item in enumerate(items):
                scope = {**self.names, detail["item_name"]: item}
                if detail.get("index_name"):
                    scope[detail["index_name"]] = index
                out.append(Evaluator(self.template, scope)(expression["config"]))
            return out
        # pycep's expression nodes; an object that merely has such a key (a log alert's
        # ``operator: 'GreaterThan'``) is a literal object.
        if isinstance(expression.get("operator"), Mapping) and len(expression) == 1:
            return self._operator(expression["operator"])
        if isinstance(expression.get("function"), Mapping) and len(expression) == 1:
            return self._function(expression["function"])
        return {key: self(value) for key, value in expression.items()}

    def _interpolate(self, match: re.Match[str]) -> str:
        value = self.name(match.group(1))
        for key in filter(None, match.group(2).split(".")):
            if not isinstance(value, Mapping) or key not in value:
                raise TemplateError(key)
            value = value[key]
        return _string(value)

    def _known(self, name: str) -> bool:
        return name in self.names or name in (self.template.get("variables") or {})

    def _operator(self, operator: Mapping[str, Any]) -> Any:
        kind, operands = operator["type"], operator["operands"]
        if kind == "conditional":
            return self(operands["true_value"]) if self(operands["condition"]) else self(operands["false_value"])
        if kind == "and":
            return all(self(value) for value in operands.values())
        if kind == "or":
            return any(self(value) for value in operands.values())
        if kind == "not":
            return not self(operands["bool_value"])
        if kind in ("equals", "not_equals"):
            left, right = (self(value) for value in operands.values())
            return (left == right) == (kind == "equals")
        if kind == "property_accessor":
            container, key = self(operands["operand_1"]), operands["operand_2"]
            if not isinstance(container, Mapping) or key not in container:
                raise TemplateError(str(key))
            return container[key]
        if kind == "index_accessor":
            container, key = self(operands["operand_1"]), self(operands["operand_2"])
            try:
                return container[key]
            except (KeyError, IndexError):
                raise TemplateError(str(key)) from None
        raise NotImplementedError(f"operator {kind}")

    def _function(self, function: Mapping[str, Any]) -> Any:
        kind, parameters = function["type"], function.get("parameters") or {}
        if kind == "filter":
            items = self(parameters["input_array"])
            lambda_ = parameters["expression"]["detail"]
            return [item for item in items if Evaluator(self.template, {**self.names, lambda_["var_1"]: item})(lambda_["expression"])]
        if kind not in FUNCTIONS:
            raise NotImplementedError(f"function {kind}")
        return FUNCTIONS[kind](*(self(value) for value in parameters.values()))


def evaluate(template: Mapping[str, Any], expression: Any, **names: Any) -> Any:
    return Evaluator(template, names)(expression)
