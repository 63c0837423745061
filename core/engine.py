"""The process engine: runs a scenario's steps over the run's input.

Tenants describe processes as data, never as code: a value in a step is a JSON literal, a
reference (``"#trigger.data.body.x"``, ``"#steps.<id>"``, ``"#result"``) or ``{"jmespath": ...}``
evaluated over ``{"data": [{"Body": <input>}], "trigger": ..., "steps": ..., "result": ...}``, so
``data[0].Body`` means what it means in IntegrationHub source scripts. Nothing is ``eval``-ed.

Step types in this version: ``transform``, ``cache`` and ``return``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import BadRequest

STEP_TYPES = ("transform", "cache", "return")
_STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_REFERENCE = re.compile(r"#(trigger|steps|result|data)((?:\.[A-Za-z0-9_$@-]+|\[\d+\])*)")
_SEGMENT = re.compile(r"\.([A-Za-z0-9_$@-]+)|\[(\d+)\]")


class ProcessFailed(Exception):
    """A step failed for a reason retrying will not fix (bad expression for this input...)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step {step}: {message}")
        self.step = step
        self.message = message


class CacheWriter(Protocol):
    def set(self, key: Any, value: Any) -> None: ...
    def delete(self, key: Any) -> None: ...


@functools.lru_cache(maxsize=4096)
def _compiled(expression: str) -> Any:
    import jmespath  # imported on first use: cold start matters more than the first run

    return jmespath.compile(expression)


def _compile_or_fail(expression: Any, where: str) -> Any:
    if not isinstance(expression, str) or not expression or len(expression) > 4096:
        raise BadRequest(f"{where}: a JMESPath expression is a non-empty string of at most 4096 characters", "InvalidProcess")
    from jmespath.exceptions import JMESPathError

    try:
        return _compiled(expression)
    except JMESPathError as exc:
        raise BadRequest(f"{where}: the JMESPath expression does not compile: {exc}", "InvalidProcess") from None


def _check_value(value: Any, where: str, step_ids: set[str]) -> None:
    """A value is valid when its expression compiles and its references name known steps."""
    if isinstance(value, Mapping) and set(value) == {"jmespath"}:
        _compile_or_fail(value["jmespath"], where)
    elif isinstance(value, str) and value.startswith("#"):
        match = _REFERENCE.fullmatch(value)
        if match is None:
            raise BadRequest(f"{where}: {value!r} is not a reference (#trigger..., #steps.<id>, #result)", "InvalidProcess")
        if match.group(1) == "steps" and match.group(2):
            first = _SEGMENT.match(match.group(2))
            if first and first.group(1) and first.group(1) not in step_ids:
                raise BadRequest(f"{where}: {value!r} names no earlier step", "InvalidProcess")


def validate_process(process: Mapping[str, Any]) -> None:
    """Refuse a process the engine could not run: unknown steps, bad expressions, bad references."""
    steps = process.get("steps")
    if not isinstance(steps, list):
        raise BadRequest("process.steps must be a list", "InvalidProcess")
    seen: set[str] = set()
    for index, step in enumerate(steps):
        where = f"process.steps[{index}]"
        if not isinstance(step, Mapping):
            raise BadRequest(f"{where} must be an object", "InvalidProcess")
        kind = step.get("type")
        if kind not in STEP_TYPES:
            raise BadRequest(f"{where}: unknown step type {kind!r}; known: {', '.join(STEP_TYPES)}", "InvalidProcess")
        step_id = step.get("id")
        if step_id is not None:
            if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
                raise BadRequest(f"{where}: id must be a letter or _ then up to 63 letters, digits or _", "InvalidProcess")
            if step_id in seen:
                raise BadRequest(f"{where}: id {step_id!r} is used twice", "InvalidProcess")
        allowed = {"type", "id", *_STEP_FIELDS[kind]}
        extra = set(step) - allowed
        if extra:
            raise BadRequest(f"{where}: unknown field(s) {', '.join(sorted(extra))} for a {kind} step", "InvalidProcess")
        for name in _STEP_REQUIRED[kind]:
            if name not in step:
                raise BadRequest(f"{where}: a {kind} step needs {name!r}", "InvalidProcess")
        if kind == "transform":
            _compile_or_fail(step["expression"], f"{where}.expression")
        if kind == "cache" and "delete" in step and not isinstance(step["delete"], bool):
            raise BadRequest(f"{where}.delete must be true or false", "InvalidProcess")
        if kind == "cache" and not step.get("delete") and "value" not in step:
            raise BadRequest(f"{where}: a cache step needs 'value' (or 'delete': true)", "InvalidProcess")
        for name in ("key", "value"):
            if name in step:
                _check_value(step[name], f"{where}.{name}", seen)
        if step_id is not None:
            seen.add(step_id)


_STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "transform": ("expression",),
    "cache": ("key", "value", "delete"),
    "return": ("value",),
}
_STEP_REQUIRED: dict[str, tuple[str, ...]] = {
    "transform": ("expression",),
    "cache": ("key",),
    "return": (),
}


@dataclass
class RunContext:
    """What expressions see; ``steps`` fills as the process advances."""

    input: Any
    trigger: Mapping[str, Any]
    steps: dict[str, Any] = field(default_factory=dict)
    result: Any = None

    def scope(self) -> dict[str, Any]:
        return {
            "data": [{"Body": self.input}],
            "trigger": self.trigger,
            "steps": self.steps,
            "result": self.result,
        }


def resolve(value: Any, context: RunContext) -> Any:
    """A step value: literal, reference or JMESPath. Missing references are null, not errors."""
    if isinstance(value, Mapping) and set(value) == {"jmespath"}:
        return _compiled(value["jmespath"]).search(context.scope())
    if isinstance(value, str) and value.startswith("#"):
        match = _REFERENCE.fullmatch(value)
        if match is None:
            return value
        current: Any = context.scope()[match.group(1)]
        for name, index in _SEGMENT.findall(match.group(2)):
            if name and isinstance(current, Mapping):
                current = current.get(name)
            elif index and isinstance(current, list) and int(index) < len(current):
                current = current[int(index)]
            else:
                return None
        return current
    return value


@dataclass(frozen=True)
class ProcessResult:
    result: Any
    steps: dict[str, Any]


def run_process(
    process: Mapping[str, Any],
    context: RunContext,
    cache: CacheWriter,
    *,
    on_step: Callable[[int, Mapping[str, Any]], None] | None = None,
) -> ProcessResult:
    """Run the steps in order; ``return`` ends the process with its value."""
    from jmespath.exceptions import JMESPathError

    for index, step in enumerate(process.get("steps", [])):
        name = step.get("id") or f"#{index}"
        if on_step is not None:
            on_step(index, step)
        try:
            kind = step["type"]
            if kind == "transform":
                output = _compiled(step["expression"]).search(context.scope())
            elif kind == "cache":
                key = resolve(step["key"], context)
                if step.get("delete"):
                    cache.delete(key)
                    output = None
                else:
                    output = resolve(step["value"], context)
                    cache.set(key, output)
            elif kind == "return":
                context.result = resolve(step.get("value"), context)
                return ProcessResult(context.result, context.steps)
            else:  # validated on save; a stored process from a newer version ends here
                raise ProcessFailed(name, f"unknown step type {kind!r}")
        except (JMESPathError, TypeError, ValueError) as exc:
            raise ProcessFailed(name, str(exc)) from exc
        except BadRequest as exc:  # e.g. a cache key or value the cache refuses
            raise ProcessFailed(name, exc.message) from exc
        context.result = output
        if step.get("id"):
            context.steps[step["id"]] = output
    return ProcessResult(context.result, context.steps)
