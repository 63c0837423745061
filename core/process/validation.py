"""Validating a process when its scenario is saved, so that a run never trips over its shape.

Refused, naming the step: unknown steps or fields, JMESPath that does not compile (or that can
only be null: ``!a.b``), references to steps not defined earlier, secrets outside ``http``
headers, ``http`` steps to hosts outside ``JUNCTION_OUTBOUND_ALLOWED_HOSTS``, and processes with
more than ``MAX_TOTAL_STEPS`` steps counting every branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.kernel.errors import BadRequest
from core.process.allowlist import check_url
from core.process.engine import REFERENCE, SEGMENT
from core.process.jmes import compile_expression

STEP_TYPES = ("transform", "decision", "cache", "http", "return", "intermediateReturn", "throw")
_STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SECRET_PREFIX = "JUNCTION_SECRET_"  # noqa: S105 - a setting-name prefix, not a secret
MAX_DEPTH = 16
MAX_TOTAL_STEPS = 500

_STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "transform": ("expression",),
    "decision": ("if", "then", "else"),
    "cache": ("key", "value", "delete"),
    "http": ("method", "url", "headers", "body", "bodyType", "timeout", "retries", "failOnError"),
    "return": ("value",),
    "intermediateReturn": ("value",),
    "throw": ("message", "response"),
}

_STEP_REQUIRED: dict[str, tuple[str, ...]] = {
    "transform": ("expression",),
    "decision": ("if",),
    "cache": ("key",),
    "http": ("url",),
    "return": (),
    "intermediateReturn": ("value",),
    "throw": ("message",),
}

# Nodes whose first child is evaluated against the current value and the rest against its result
# (or each element of it): only the first child can still be looking at the root ``steps``.
_CHAINS = frozenset({"subexpression", "pipe", "projection", "value_projection", "filter_projection", "flatten", "index_expression"})


def step_references(parsed: Mapping[str, Any]) -> set[str]:
    """Step ids an expression reads from the root as ``steps.<id>`` (``steps.x``, ``steps.x[0]``).

    Inside a projection or after a pipe, ``steps`` is a field of the current element, not of the
    root, so it is no reference; ``steps`` alone or ``steps.*`` names no particular step.
    """
    found: set[str] = set()

    def walk(node: Any, at_root: bool) -> None:
        if not isinstance(node, Mapping):
            return
        kind, children = node.get("type"), [c for c in node.get("children") or () if isinstance(c, Mapping)]
        if kind == "subexpression" and at_root and len(children) >= 2 and children[0] == {"type": "field", "children": [], "value": "steps"}:
            second = children[1]
            if second.get("type") == "index_expression":
                second = (second.get("children") or [{}])[0]
            if second.get("type") == "field" and isinstance(second.get("value"), str):
                found.add(second["value"])
        if kind in _CHAINS:
            for index, child in enumerate(children):
                walk(child, at_root and index == 0)
        else:
            for child in children:
                walk(child, at_root and kind != "expref")

    walk(parsed, True)
    return found


def _refuse_field_of_not(parsed: Any, expression: str, where: str) -> None:
    """Refuse ``!a.b``: JMESPath reads it as ``(!a).b``, a field of a boolean, which is null
    whatever the data. It is never what the author meant (``!(a.b)``, or ``a.b == null``), and a
    condition that is always null silently takes the ``else`` branch, so it is refused when the
    scenario is saved rather than discovered in production.
    """

    def walk(node: Any) -> bool:
        if not isinstance(node, Mapping):
            return False
        children = [c for c in node.get("children") or () if isinstance(c, Mapping)]
        if node.get("type") == "subexpression" and children and children[0].get("type") == "not_expression":
            return True
        return any(walk(child) for child in children)

    if walk(parsed):
        hint = f"; write {'!(' + expression[1:].strip() + ')'!r} to negate the whole path" if expression.startswith("!") else ""
        raise BadRequest(
            f"{where}: {expression!r} applies '!' before '.', so it reads as (!x).y, which is always null{hint}",
            "InvalidProcess",
        )


def _compile_or_fail(expression: Any, where: str, step_ids: set[str] | None = None) -> Any:
    if not isinstance(expression, str) or not expression or len(expression) > 4096:
        raise BadRequest(f"{where}: a JMESPath expression is a non-empty string of at most 4096 characters", "InvalidProcess")
    from jmespath.exceptions import JMESPathError  # cold start: jmespath loads with the first expression

    try:
        compiled = compile_expression(expression)
    except JMESPathError as exc:
        raise BadRequest(f"{where}: the JMESPath expression does not compile: {exc}", "InvalidProcess") from None
    _refuse_field_of_not(compiled.parsed, expression, where)
    if step_ids is not None:
        unknown = sorted(step_references(compiled.parsed) - step_ids)
        if unknown:
            raise BadRequest(f"{where}: steps.{unknown[0]} names no earlier step", "InvalidProcess")
    return compiled


def _check_value(value: Any, where: str, step_ids: set[str], *, allow_secret: bool = False) -> None:
    """A value is valid when its expression compiles and its references name earlier steps."""
    if isinstance(value, Mapping) and len(value) == 1:
        (kind, inner), = value.items()
        if kind == "jmespath":
            _compile_or_fail(inner, where, step_ids)
            return
        if kind == "literal":
            return
        if kind == "secret":
            if not allow_secret:
                raise BadRequest(f"{where}: secrets may only be used in http step headers", "InvalidProcess")
            if not isinstance(inner, str) or not inner.startswith(SECRET_PREFIX) or not inner.isidentifier():
                raise BadRequest(f"{where}: a secret names an app setting that starts with {SECRET_PREFIX}", "InvalidProcess")
            return
    if isinstance(value, str) and value.startswith("#"):
        match = REFERENCE.fullmatch(value)
        if match is None:
            raise BadRequest(f"{where}: {value!r} is not a reference (#trigger..., #steps.<id>, #result)", "InvalidProcess")
        if match.group(1) == "steps" and match.group(2):
            first = SEGMENT.match(match.group(2))
            if first and first.group(1) and first.group(1) not in step_ids:
                raise BadRequest(f"{where}: {value!r} names no earlier step", "InvalidProcess")


@dataclass
class _Validation:
    allowed_hosts: tuple[str, ...]
    seen: set[str] = field(default_factory=set)
    count: int = 0


def validate_process(process: Mapping[str, Any], allowed_hosts: Sequence[str] = ()) -> None:
    """Refuse a process the engine could not run, naming the step: unknown steps or fields, bad
    expressions, references to steps not defined earlier, ``http`` steps to hosts outside
    ``JUNCTION_OUTBOUND_ALLOWED_HOSTS``."""
    steps = process.get("steps")
    if not isinstance(steps, list):
        raise BadRequest("process.steps must be a list", "InvalidProcess")
    _validate_block(steps, "process.steps", _Validation(tuple(allowed_hosts)), depth=0)


def _validate_block(steps: Any, where: str, state: _Validation, depth: int) -> None:
    if not isinstance(steps, list):
        raise BadRequest(f"{where} must be a list of steps", "InvalidProcess")
    if depth > MAX_DEPTH:
        raise BadRequest(f"{where}: decisions are nested more than {MAX_DEPTH} deep", "InvalidProcess")
    for index, step in enumerate(steps):
        state.count += 1
        if state.count > MAX_TOTAL_STEPS:
            # The schema's 200 bounds the top level only; branches nest (issue 13: 80,200 steps).
            raise BadRequest(f"{where}: a process has at most {MAX_TOTAL_STEPS} steps, counting every branch", "InvalidProcess")
        _validate_step(step, f"{where}[{index}]", state, depth)


def _validate_step(step: Any, where: str, state: _Validation, depth: int) -> None:
    if not isinstance(step, Mapping):
        raise BadRequest(f"{where} must be an object", "InvalidProcess")
    kind = step.get("type")
    if kind not in STEP_TYPES:
        raise BadRequest(f"{where}: unknown step type {kind!r}; known: {', '.join(STEP_TYPES)}", "InvalidProcess")
    step_id = step.get("id")
    if step_id is not None:
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            raise BadRequest(f"{where}: id must be a letter or _ then up to 63 letters, digits or _", "InvalidProcess")
        if step_id in state.seen:
            raise BadRequest(f"{where}: id {step_id!r} is used twice", "InvalidProcess")
    extra = set(step) - {"type", "id", *_STEP_FIELDS[kind]}
    if extra:
        raise BadRequest(f"{where}: unknown field(s) {', '.join(sorted(extra))} for a {kind} step", "InvalidProcess")
    for name in _STEP_REQUIRED[kind]:
        if name not in step:
            raise BadRequest(f"{where}: a {kind} step needs {name!r}", "InvalidProcess")
    seen = state.seen
    if kind == "transform":
        _compile_or_fail(step["expression"], f"{where}.expression", seen)
    elif kind == "decision":
        _compile_or_fail(step["if"], f"{where}.if", seen)
        before = set(seen)
        _validate_block(step.get("then", []), f"{where}.then", state, depth + 1)
        then_ids = state.seen - before
        state.seen = set(before)
        _validate_block(step.get("else", []), f"{where}.else", state, depth + 1)
        state.seen |= then_ids  # later steps may name either branch's steps (null if not taken)
    elif kind == "cache":
        if "delete" in step and not isinstance(step["delete"], bool):
            raise BadRequest(f"{where}.delete must be true or false", "InvalidProcess")
        if not step.get("delete") and "value" not in step:
            raise BadRequest(f"{where}: a cache step needs 'value' (or 'delete': true)", "InvalidProcess")
    elif kind == "http":
        _validate_http(step, where, state)
    for name in ("key", "value", "message", "response", "body"):
        if name in step:
            _check_value(step[name], f"{where}.{name}", seen)
    if kind == "http":
        _check_value(step["url"], f"{where}.url", seen)
        if isinstance(step["url"], str) and not step["url"].startswith("#"):
            check_url(step["url"], state.allowed_hosts, where=f"{where}.url")
    if step_id is not None:
        state.seen.add(step_id)


def _validate_http(step: Mapping[str, Any], where: str, state: _Validation) -> None:
    method = step.get("method", "GET")
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        raise BadRequest(f"{where}.method must be GET, POST, PUT, PATCH, DELETE or HEAD", "InvalidProcess")
    headers = step.get("headers", {})
    if not isinstance(headers, Mapping) or len(headers) > 50:
        raise BadRequest(f"{where}.headers must be an object of at most 50 headers", "InvalidProcess")
    for name, value in headers.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}", name):
            raise BadRequest(f"{where}.headers: {name!r} is not a header name", "InvalidProcess")
        _check_value(value, f"{where}.headers.{name}", state.seen, allow_secret=True)
    if step.get("bodyType", "json") not in ("json", "xml", "text"):
        raise BadRequest(f"{where}.bodyType must be json, xml or text", "InvalidProcess")
    timeout = step.get("timeout", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
        raise BadRequest(f"{where}.timeout must be seconds from 1 to 300", "InvalidProcess")
    retries = step.get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise BadRequest(f"{where}.retries must be a whole number from 0 to 10", "InvalidProcess")
    if not isinstance(step.get("failOnError", True), bool):
        raise BadRequest(f"{where}.failOnError must be true or false", "InvalidProcess")
