"""Regular expressions that imported OpenAPI documents apply to callers' values, in linear time.

A document's ``pattern`` and ``patternProperties`` run over text a caller sends: with Python's
backtracking ``re``, a pattern such as ``^(a+)+$`` takes exponential time on ``"aaaa…!"``, so
one anonymous request could hold a worker for minutes. Junction matches them with RE2
(google-re2), whose time grows linearly with the text, and refuses at import a pattern RE2
cannot run (lookaround, backreferences): those are the features that need backtracking.

RE2 reads ``\\d``, ``\\w`` and ``\\s`` as ASCII classes, as ECMA-262 (the dialect JSON Schema
names) does, and ``$`` as the end of the text only.

``unevaluatedProperties`` next to ``patternProperties`` is refused at import too: the validator
library evaluates it with Python's ``re`` and offers no way to pass another engine.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

# Keys under which a schema holds data rather than keywords: a "pattern" there is not a regex.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot run in linear time (or cannot parse at all)."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of ``pattern``; UnsupportedPattern when RE2 refuses it."""
    import re2  # imported with the first API operation that has a pattern (cold start)

    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's 400, not a line on stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedPattern(detail[:200]) from None


def search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


def pattern_problems(document: Any, path: str = "#") -> Iterator[str]:
    """Where a document holds a pattern Junction will not run, each with the reason."""
    stack: list[tuple[Any, str]] = [(document, path)]
    seen: set[int] = set()
    while stack:
        item, where = stack.pop()
        if isinstance(item, list):
            if id(item) not in seen:
                seen.add(id(item))
                stack.extend((value, f"{where}/{i}") for i, value in enumerate(item))
            continue
        if not isinstance(item, dict) or id(item) in seen:
            continue
        seen.add(id(item))
        pattern = item.get("pattern")
        if isinstance(pattern, str):
            yield from _problem(pattern, f"{where}/pattern")
        by_pattern = item.get("patternProperties")
        if isinstance(by_pattern, Mapping):
            for key in by_pattern:
                yield from _problem(str(key), f"{where}/patternProperties")
            if "unevaluatedProperties" in item:
                yield f"{where}: 'unevaluatedProperties' beside 'patternProperties' is not supported"
        stack.extend((value, f"{where}/{key}") for key, value in item.items() if key not in _DATA_KEYS)


def _problem(pattern: str, where: str) -> Iterator[str]:
    try:
        compile_pattern(pattern)
    except UnsupportedPattern as exc:
        yield f"{where}: {pattern[:80]!r} cannot be matched in linear time ({exc}); lookaround and backreferences are not supported"


def linear_validator(base: Any) -> Any:
    """``base`` (a jsonschema validator class) with every regex keyword matched by RE2."""
    # cold start: jsonschema loads with the first schema that needs RE2
    from jsonschema import validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not search(value, instance):
            yield ValidationError(f"{instance!r} does not match {value!r}")

    def pattern_properties(validator: Any, value: Mapping[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        for regex, subschema in value.items():
            for key, item in instance.items():
                if search(regex, key):
                    yield from validator.descend(item, subschema, path=key, schema_path=regex)

    def additional_properties(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        known = schema.get("properties", {})
        regexes = list(schema.get("patternProperties", {}))
        extras = [key for key in instance if key not in known and not any(search(r, key) for r in regexes)]
        if validator.is_type(value, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], value, path=extra)
        elif value is False and extras:
            listed = ", ".join(repr(each) for each in sorted(extras)[:20])
            yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")

    keywords = {"pattern": pattern, "additionalProperties": additional_properties}
    if "patternProperties" in base.VALIDATORS:
        keywords["patternProperties"] = pattern_properties
    return validators.extend(base, keywords)
