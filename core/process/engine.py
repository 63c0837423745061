"""The process engine: runs a scenario's steps over the run's input.

Tenants describe processes as data, never as code: a value in a step is a JSON literal, a
reference (``"#trigger.data.body.x"``, ``"#steps.<id>"``, ``"#result"``), ``{"jmespath": ...}``
evaluated over ``{"data": [{"Body": <input>}], "trigger": ..., "steps": ..., "result": ...}`` (so
``data[0].Body`` means what it means in IntegrationHub source scripts), ``{"literal": ...}`` for a
value that would otherwise be read as one of those, or ``{"secret": "JUNCTION_SECRET_..."}`` in an
``http`` step's headers. Nothing is ``eval``-ed.

Execution keeps a *position* (``[2, "then", 0]``: step 2's then-branch, step 0), so a process
that answered a caller early (``intermediateReturn``) can continue from the queue where it left
off, with the step results it had.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.kernel import clock, telemetry
from core.kernel.errors import BadRequest
from core.process.errors import ProcessFailed
from core.process.jmes import compile_expression, evaluate

# The reference syntax (``#trigger.data.body.x``, ``#steps.a[0]``), read here and checked by
# ``core.process.validation``.
REFERENCE = re.compile(r"#(trigger|steps|result|data)((?:\.[A-Za-z0-9_$@-]+|\[\d+\])*)")
SEGMENT = re.compile(r"\.([A-Za-z0-9_$@-]+)|\[(\d+)\]")
Position = list[int | str]


class CacheWriter(Protocol):
    def set(self, key: Any, value: Any) -> None: ...
    def delete(self, key: Any) -> None: ...


class HttpCaller(Protocol):
    def __call__(self, step: Mapping[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any]: ...


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
    if isinstance(value, Mapping) and len(value) == 1:
        (kind, inner), = value.items()
        if kind == "jmespath":
            return evaluate(compile_expression(inner), context.scope())
        if kind == "literal":
            return inner
    if isinstance(value, str) and value.startswith("#"):
        match = REFERENCE.fullmatch(value)
        if match is None:
            return value
        current: Any = context.scope()[match.group(1)]
        for name, index in SEGMENT.findall(match.group(2)):
            if name and isinstance(current, Mapping):
                current = current.get(name)
            elif index and isinstance(current, list) and int(index) < len(current):
                current = current[int(index)]
            else:
                return None
        return current
    return value


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, and empty strings, lists and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(value) == 0)


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended: ``returned`` (a return step), ``completed`` (ran out of steps) or
    ``intermediate`` (answered early; ``position`` is where to continue).

    ``intermediate`` is the value of an ``intermediateReturn`` this call passed without stopping
    (a queued run has no caller to answer, so the run record keeps it); ``answered_early`` says
    whether there was one, since its value may itself be null.
    """

    kind: str
    result: Any
    steps: dict[str, Any]
    records: list[dict[str, Any]]
    position: Position | None = None
    intermediate: Any = None
    answered_early: bool = False


@dataclass
class _Ended:
    kind: str
    value: Any
    position: Position | None = None


class _Runner:
    def __init__(self, context: RunContext, cache: CacheWriter, http: HttpCaller | None, stop_early: bool) -> None:
        self.context = context
        self.cache = cache
        self.http = http
        self.stop_early = stop_early
        self.records: list[dict[str, Any]] = []
        self.intermediate: Any = None
        self.answered_early = False

    def block(self, steps: Sequence[Mapping[str, Any]], prefix: Position, resume: Position | None) -> _Ended | None:
        index = int(resume[0]) if resume else 0
        tail = list(resume[1:]) if resume and len(resume) > 1 else None
        while index < len(steps):
            step = steps[index]
            path = [*prefix, index]
            ended = self.decision(step, path, tail) if step.get("type") == "decision" else self.step(step, path)
            tail = None
            if ended is not None:
                return ended
            index += 1
        return None

    def decision(self, step: Mapping[str, Any], path: Position, resume: Position | None) -> _Ended | None:
        if resume:  # continuing inside a branch chosen before the early answer
            branch, inner = str(resume[0]), list(resume[1:])
        else:
            record = self._start(step, path)
            with telemetry.span("step decision", step_id=step.get("id"), step_type="decision"):
                condition = self._guard(step, path, record, lambda: evaluate(compile_expression(step["if"]), self.context.scope()))
            branch = "then" if _truthy(condition) else "else"
            self._finish(record, "succeeded", branch=branch)
            inner = None
        return self.block(step.get(branch, []), [*path, branch], inner or None)

    def _start(self, step: Mapping[str, Any], path: Position) -> dict[str, Any]:
        record = {"path": ".".join(map(str, path)), "id": step.get("id"), "type": step.get("type"), "startedAt": clock.now_iso()}
        self.records.append(record)
        return record

    @staticmethod
    def _finish(record: dict[str, Any], status: str, **extra: Any) -> None:
        record.update(status=status, endedAt=clock.now_iso(), **extra)

    def _guard(self, step: Mapping[str, Any], path: Position, record: dict[str, Any], action: Callable[[], Any]) -> Any:
        from jmespath.exceptions import JMESPathError  # cold start: jmespath loads with the first expression

        name = step.get("id") or ".".join(map(str, path))
        try:
            return action()
        except ProcessFailed as exc:
            self._finish(record, "failed", error=exc.message)
            raise ProcessFailed(name, exc.message, exc.response, retryable=exc.retryable) from exc
        except (JMESPathError, TypeError, ValueError) as exc:
            self._finish(record, "failed", error=str(exc))
            raise ProcessFailed(name, str(exc)) from exc
        except BadRequest as exc:  # e.g. a cache key or value the cache refuses
            self._finish(record, "failed", error=exc.message)
            raise ProcessFailed(name, exc.message) from exc

    def step(self, step: Mapping[str, Any], path: Position) -> _Ended | None:
        record = self._start(step, path)
        kind = step["type"]
        context = self.context

        def run() -> _Ended | None:
            nonlocal output
            if kind == "transform":
                output = evaluate(compile_expression(step["expression"]), context.scope())
            elif kind == "cache":
                key = resolve(step["key"], context)
                if step.get("delete"):
                    self.cache.delete(key)
                else:
                    output = resolve(step["value"], context)
                    self.cache.set(key, output)
            elif kind == "http":
                if self.http is None:
                    raise ProcessFailed("http", "outbound calls are not available here")
                output = self.http(step, lambda value: resolve(value, context))
            elif kind == "return":
                return _Ended("returned", resolve(step.get("value"), context))
            elif kind == "intermediateReturn":
                output = resolve(step["value"], context)
                if self.stop_early and not self.answered_early:
                    return _Ended("intermediate", output, [*path[:-1], int(path[-1]) + 1])
                self.intermediate, self.answered_early = output, True
            elif kind == "throw":
                raise ProcessFailed(
                    "throw", str(resolve(step["message"], context)), resolve(step.get("response"), context)
                )
            else:  # validated on save; a process stored by a newer version ends here
                raise ProcessFailed(kind, f"unknown step type {kind!r}")
            return None

        output: Any = None
        with telemetry.span(f"step {kind}", step_id=step.get("id"), step_type=kind):
            ended = self._guard(step, path, record, run)
        self._finish(record, "succeeded")
        if ended is not None:
            return ended
        context.result = output
        if step.get("id"):
            context.steps[step["id"]] = output
        return None


def run_process(
    process: Mapping[str, Any],
    context: RunContext,
    cache: CacheWriter,
    *,
    http: HttpCaller | None = None,
    start: Position | None = None,
    stop_at_intermediate: bool = False,
) -> ProcessResult:
    """Run the steps in order from ``start``; ``return`` ends the process with its value.

    With ``stop_at_intermediate`` (a caller is waiting), the first ``intermediateReturn`` ends
    this call with its value and the position to continue from; otherwise its value is kept and
    the run goes on.
    """
    runner = _Runner(context, cache, http, stop_at_intermediate)
    try:
        ended = runner.block(process.get("steps", []), [], start)
    except ProcessFailed as exc:
        exc.records = runner.records  # the run record shows how far it got
        exc.intermediate, exc.answered_early = runner.intermediate, runner.answered_early
        raise
    early = {"intermediate": runner.intermediate, "answered_early": runner.answered_early}
    if ended is None:
        return ProcessResult("completed", context.result, context.steps, runner.records, **early)
    return ProcessResult(ended.kind, ended.value, context.steps, runner.records, ended.position, **early)
