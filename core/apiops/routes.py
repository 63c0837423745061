"""The route table of bound API operations: a segment trie, and the conflict rules it relies on.

Why a trie: the catch-all trigger serves every bound operation, so the cost of finding one must
not grow with how many are bound. Each request path is split into segments once and walked down
the trie; at every node the children are tried in a fixed precedence order:

1. literal segments (a dict lookup),
2. typed parameters: ``boolean``, then ``integer``, then ``number`` (a value only enters a typed
   child when it has that type, so ``/api/pet/{id}`` (integer) and ``/api/pet/getStatus``
   coexist),
3. template segments with text around parameters (``{name}.{ext}``, ``report-{year}``),
4. string parameters (anything).

Because two bound operations that could match the same request are refused at import and bind
time (``find_conflict``), at most one operation can match a request for a given method; the
precedence therefore decides nothing between bound operations and only keeps the walk short.

A template segment is matched without regular expressions, in time linear in its length: the
text before the first parameter and after the last must match exactly, and each parameter but
the last ends at the first occurrence of the text that follows it (``{a}-{b}.json`` reads
``x-y-z.json`` as ``a=x``, ``b=y-z``); then every value must have its parameter's type. A
backtracking regex took 17 s of CPU for one 2,500-character segment (issue 13).

Request paths are read as segments by ``core.web.paths.split_path`` (an encoded slash stays
inside its segment; dot segments and NUL are refused). Literal segments compare
case-sensitively, as OpenAPI paths do.

Loading (``RouteCache``): the table is built from every binding in storage and kept in memory
per process. A version marker (one small entity) changes with every import, bind, unbind and
delete. Each request reads the marker with one point read (``select=Version``); only when it
differs from the version the table was built from is the table rebuilt. So a bind made on
another instance is seen by the very next request everywhere, at the cost of one cheap read.
Writers change data first and the marker last; a reader records the marker it read *before*
loading, so a change racing with a load is picked up by the next request.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.kernel.errors import BadRequest, MethodNotAllowed, NotFound
from core.web.paths import split_path

logger = logging.getLogger(__name__)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_INTEGER_DIGITS = 20  # int64 has 19 digits; anything longer is not one (and int() of it is costly)

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_BOOLEAN = re.compile(r"true|false")
_PARAM = re.compile(r"\{([^{}/]+)\}")
TYPED_ORDER = ("boolean", "integer", "number")
# Characters a value of each type can contain: used to decide whether a template segment's
# literal text can ever occur in a typed parameter's value (for conflicts).
_TYPE_CHARS = {"integer": set("-0123456789"), "number": set("-+.0123456789eE"), "boolean": set("truefals")}


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def value_has_type(value: str, kind: str) -> bool:
    """Does a decoded path value have parameter type ``kind``? (integers within int64)."""
    if kind == "integer":
        return len(value) <= MAX_INTEGER_DIGITS and _INTEGER.fullmatch(value) is not None and INT64_MIN <= int(value) <= INT64_MAX
    if kind == "number":
        return _NUMBER.fullmatch(value) is not None
    if kind == "boolean":
        return _BOOLEAN.fullmatch(value) is not None
    return value != ""


# --------------------------------------------------------------------------------------------
# Templates and conflicts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One segment of a path template.

    ``kind`` is ``literal`` (``text``), ``param`` (a whole-segment parameter of type
    ``ptype``) or ``template`` (literal ``parts`` around parameters ``names`` of ``types``).
    """

    kind: str
    text: str = ""
    name: str = ""
    ptype: str = "string"
    parts: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @property
    def key(self) -> Any:
        """What makes two segments the same trie child (parameter names do not)."""
        if self.kind == "literal":
            return ("L", self.text)
        if self.kind == "param":
            return ("P", self.ptype)
        return ("T", self.parts, self.types)

    def match(self, value: str) -> tuple[str, ...] | None:
        """The parameter values of a template segment in ``value``, or None (see the module
        docstring: linear in ``len(value)``, no backtracking)."""
        parts, types = self.parts, self.types
        first, last = parts[0], parts[-1]
        if not value.startswith(first) or not value.endswith(last) or len(value) < len(first) + len(last) + len(types):
            return None
        end = len(value) - len(last)
        pos = len(first)
        values: list[str] = []
        for index, kind in enumerate(types):
            if index == len(types) - 1:
                found = value[pos:end]
            else:
                separator = parts[index + 1]
                at = value.find(separator, pos + 1, end)  # a value has at least one character
                if at < 0:
                    return None
                found, pos = value[pos:at], at + len(separator)
            if not value_has_type(found, kind):
                return None
            values.append(found)
        return tuple(values)

    def describe(self) -> str:
        if self.kind == "literal":
            return self.text
        if self.kind == "param":
            return "{" + self.name + "}"
        return "".join(p + ("{" + n + "}" if i < len(self.names) else "") for i, (p, n) in enumerate(zip(self.parts, (*self.names, ""), strict=True)))


def parse_template(path: str, param_types: Mapping[str, str]) -> tuple[Segment, ...]:
    """Segments of an OpenAPI path template; ``param_types`` maps path parameter names to types.

    Types other than integer/number/boolean (arrays, objects, strings) match as strings.
    """
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")
    raw = path[1:].split("/")
    if len(raw) > 1 and raw[-1] == "":
        raw.pop()
    segments: list[Segment] = []
    for part in raw:
        names = _PARAM.findall(part)
        if not names:
            if "{" in part or "}" in part:
                raise ValueError(f"path {path!r} has an unbalanced brace")
            if part in (".", "..") or (part == "" and len(raw) > 1):
                raise ValueError(f"path {path!r} has an empty or dot segment")
            segments.append(Segment("literal", text=part))
            continue
        types = tuple(_route_type(param_types.get(n)) for n in names)
        if part == "{" + names[0] + "}":
            segments.append(Segment("param", name=names[0], ptype=types[0]))
            continue
        literal_parts = tuple(_PARAM.split(part)[0::2])
        if any("{" in p or "}" in p for p in literal_parts):
            raise ValueError(f"path {path!r} has an unbalanced brace")
        if any(p == "" for p in literal_parts[1:-1]):
            raise ValueError(f"path {path!r} has two parameters without text between them")
        segments.append(Segment("template", parts=literal_parts, names=tuple(names), types=types))
    return tuple(segments)


def _route_type(kind: str | None) -> str:
    return kind if kind in ("integer", "number", "boolean") else "string"


def _types_overlap(a: str, b: str) -> bool:
    if "string" in (a, b):
        return True
    if a == b:
        return True
    return {a, b} == {"integer", "number"}


def _template_could_be(seg: Segment, ptype: str) -> bool:
    """Could a value of type ``ptype`` match the template segment ``seg``? (conservative)"""
    if ptype == "string":
        return True
    allowed = _TYPE_CHARS[ptype]
    return all(set(part) <= allowed for part in seg.parts)


def segments_overlap(a: Segment, b: Segment) -> bool:
    """Could one request segment match both ``a`` and ``b``? Errs on the side of "yes"."""
    if a.kind == "literal" and b.kind == "literal":
        return a.text == b.text
    if a.kind == "literal" or b.kind == "literal":
        lit, other = (a, b) if a.kind == "literal" else (b, a)
        if other.kind == "param":
            return value_has_type(lit.text, other.ptype)
        return other.match(lit.text) is not None
    if a.kind == "param" and b.kind == "param":
        return _types_overlap(a.ptype, b.ptype)
    if a.kind == "param" or b.kind == "param":
        par, tpl = (a, b) if a.kind == "param" else (b, a)
        return _template_could_be(tpl, par.ptype)
    if a.key == b.key:
        return True
    # Two different templates: disjoint when their leading or trailing texts differ.
    pa, pb = a.parts[0], b.parts[0]
    if not (pa.startswith(pb) or pb.startswith(pa)):
        return False
    sa, sb = a.parts[-1], b.parts[-1]
    return sa.endswith(sb) or sb.endswith(sa)


def templates_overlap(a: Sequence[Segment], b: Sequence[Segment]) -> bool:
    """Could one request path match both templates?"""
    return len(a) == len(b) and all(segments_overlap(x, y) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------------------------
# Bound operations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundOperation:
    """What the gateway needs to serve one operation: the document's facts plus the binding.

    ``operation`` is the extracted operation (``core.apiops.operations.extract_operations``
    documents its shape) and ``binding`` the validated binding body with defaults applied.
    """

    api_name: str
    operation_id: str
    method: str
    path: str
    segments: tuple[Segment, ...]
    operation: Mapping[str, Any]
    binding: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.api_name}/{self.operation_id} ({self.method} {self.path})"

    @classmethod
    def from_parts(cls, api_name: str, operation: Mapping[str, Any], binding: Mapping[str, Any]) -> BoundOperation:
        return cls(
            api_name=api_name,
            operation_id=str(operation.get("operationId")),
            method=str(operation["method"]).upper(),
            path=str(operation["path"]),
            segments=parse_template(operation["path"], path_param_types(operation)),
            operation=operation,
            binding=binding,
        )


def path_param_types(operation: Mapping[str, Any]) -> dict[str, str]:
    """``{name: type}`` of an extracted operation's path parameters."""
    out: dict[str, str] = {}
    for param in operation.get("parameters") or ():
        if param.get("in") == "path":
            kind = (param.get("schema") or {}).get("type") or "string"
            if isinstance(kind, list):  # OpenAPI 3.1: ["integer", "null"]
                kinds = [k for k in kind if k != "null"]
                kind = kinds[0] if len(kinds) == 1 else "string"
            if param.get("style") in ("label", "matrix"):
                kind = "string"  # ".5" or ";id=5" in the URL: matched as text, cast by core.apiops.params
            out[param["name"]] = str(kind)
    return out


def find_conflict(
    candidates: Iterable[tuple[str, str, Sequence[Segment]]],
    others: Iterable[tuple[str, str, Sequence[Segment]]] = (),
) -> tuple[str, str] | None:
    """The labels of two routes that could match the same request, or None.

    Routes are ``(label, method, segments)``. Candidates are checked against each other and
    against ``others``; routes are grouped by method and segment count first, so a document
    of n operations costs far less than n² comparisons in practice.
    """
    groups: dict[tuple[str, int], list[tuple[str, Sequence[Segment]]]] = {}
    for label, method, segments in others:
        groups.setdefault((method, len(segments)), []).append((label, segments))
    for label, method, segments in candidates:
        group = groups.setdefault((method, len(segments)), [])
        for other_label, other_segments in group:
            if templates_overlap(segments, other_segments):
                return other_label, label
        group.append((label, segments))
    return None


# --------------------------------------------------------------------------------------------
# The trie
# --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    typed: dict[str, _Node] = field(default_factory=dict)
    templates: list[tuple[Any, Segment, _Node]] = field(default_factory=list)
    string: _Node | None = None
    ops: dict[str, BoundOperation] = field(default_factory=dict)

    def child(self, seg: Segment) -> _Node:
        if seg.kind == "literal":
            return self.literals.setdefault(seg.text, _Node())
        if seg.kind == "param":
            if seg.ptype == "string":
                if self.string is None:
                    self.string = _Node()
                return self.string
            return self.typed.setdefault(seg.ptype, _Node())
        for key, _, node in self.templates:
            if key == seg.key:
                return node
        node = _Node()
        self.templates.append((seg.key, seg, node))
        return node


@dataclass(frozen=True)
class Match:
    """A matched operation and its raw (decoded, not yet cast) path parameter values."""

    operation: BoundOperation
    path_params: dict[str, str]
    segments: tuple[str, ...]


class RouteTable:
    """Bound operations indexed by path segment; ``match`` costs O(path depth), not O(routes)."""

    def __init__(self, operations: Iterable[BoundOperation] = (), *, version: str | None = None) -> None:
        self.version = version
        self.operations: list[BoundOperation] = []
        """Every operation added, in order (the published OpenAPI document describes them)."""
        self._root = _Node()
        self._count = 0
        for operation in operations:
            self.add(operation)

    def __len__(self) -> int:
        return self._count

    def add(self, operation: BoundOperation) -> None:
        """Add a bound operation. Conflicts must have been refused before (``find_conflict``)."""
        node = self._root
        for seg in operation.segments:
            node = node.child(seg)
        if operation.method in node.ops:
            raise ValueError(f"{operation.label} is already bound as {node.ops[operation.method].label}")
        node.ops[operation.method] = operation
        self.operations.append(operation)
        self._count += 1

    def match(self, method: str, raw_path: str) -> Match:
        """The operation for ``method`` and ``raw_path``; NotFound or MethodNotAllowed otherwise."""
        segments = split_path(raw_path)
        return self.match_segments(method.upper(), segments)

    def match_segments(self, method: str, segments: Sequence[str]) -> Match:
        allow: set[str] = set()
        depth_total = len(segments)
        # Depth-first, children pushed in reverse precedence so literals are tried first.
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, depth = stack.pop()
            if depth == depth_total:
                if node.ops:
                    found = node.ops.get(method)
                    if found is not None:
                        return Match(found, _extract(found, segments), tuple(segments))
                    allow.update(node.ops)
                continue
            value = segments[depth]
            nxt = depth + 1
            if node.string is not None and value:
                stack.append((node.string, nxt))
            for _, template, child in reversed(node.templates):
                if template.match(value) is not None:
                    stack.append((child, nxt))
            for kind in reversed(TYPED_ORDER):
                child = node.typed.get(kind)
                if child is not None and value_has_type(value, kind):
                    stack.append((child, nxt))
            literal = node.literals.get(value)
            if literal is not None:
                stack.append((literal, nxt))
        if allow:
            methods = sorted(allow)
            raise MethodNotAllowed(f"this path accepts {', '.join(methods)}", allow=methods, code="MethodNotAllowed")
        raise NotFound("no API operation is bound at this path", "OperationNotFound")

    def allowed_methods(self, raw_path: str) -> list[str]:
        """Every method bound at ``raw_path`` (for preflights and ``Allow``); [] for none."""
        try:
            self.match(" ", raw_path)  # no method is " ": the walk collects every method
        except MethodNotAllowed as exc:
            return list(exc.allow)
        except (NotFound, BadRequest):
            return []
        return []  # pragma: no cover - " " never matches


def _extract(operation: BoundOperation, segments: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for seg, value in zip(operation.segments, segments, strict=True):
        if seg.kind == "param":
            params[seg.name] = value
        elif seg.kind == "template":
            found = seg.match(value)
            if found is not None:
                params.update(zip(seg.names, found, strict=True))
    return params


# --------------------------------------------------------------------------------------------
# Loading with a version marker
# --------------------------------------------------------------------------------------------


class RouteCache:
    """The process's route table, rebuilt when the version marker in storage changes.

    ``read_version`` is one point read of the marker; ``load`` reads every binding and returns
    ``BoundOperation`` objects. ``max_staleness`` (seconds, default 0) lets a very busy
    instance skip the marker read for a moment; 0 means every request sees every bind at once.
    """

    def __init__(
        self,
        read_version: Callable[[], str | None],
        load: Callable[[], list[BoundOperation]],
        *,
        max_staleness: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_version = read_version
        self._load = load
        self._max_staleness = max_staleness
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._table: RouteTable | None = None
        self._checked_at = float("-inf")
        self.loads = 0
        """How many times the table was rebuilt (tests and diagnostics)."""

    def get(self) -> RouteTable:
        table = self._table
        now = self._monotonic()
        if table is not None and now - self._checked_at < self._max_staleness:
            return table
        version = self._read_version()
        if table is not None and table.version == version:
            self._checked_at = now
            return table
        with self._lock:
            table = self._table
            if table is not None and table.version == version:
                return table
            operations = self._load()
            table = RouteTable(version=version)
            for operation in operations:
                try:
                    table.add(operation)
                except ValueError as exc:  # refused at bind time; never let one break them all
                    logger.error("skipping a conflicting binding: %s", exc)
            self._table = table
            self._checked_at = now
            self.loads += 1
            logger.info("route table loaded: %d bound operation(s), version %s", len(table), version)
            return table
