"""Route templates and route order as the Azure Functions host applies them.

The Functions host hands a function's ``route`` to ASP.NET Core routing, so a template such as
``ExternalData/Accept/{scenarioId}`` or ``{*path}`` is *parsed and matched* by ASP.NET's rules, not
by a regular expression:

* literal segments match case-insensitively;
* parameters may carry constraints (``{id:int}``, ``{id:guid}``, ``{n:range(1,5)}`` ...), may be
  optional (``{name?}``), have a default (``{name=x}``), or catch everything that is left
  (``{*rest}`` / ``{**rest}``);
* routing sees the path as Kestrel hands it to ASP.NET: percent-decoded once, except ``%2F``,
  which stays the three characters ``%2F`` inside its segment (so ``..%2F`` never climbs into
  another route, and a route value may contain ``%2F``); dot segments are resolved after decoding.
  ``decode_path`` does that, and ``to_uri_component`` rebuilds the URL the worker is given from it,
  as the host does (``%2520`` arrives as ``%20``).

But the *order* in which routes are tried is the host's own, not ASP.NET's specificity: the host
registers one route per HTTP function in the order of the function names (its function metadata
is sorted with ``StringComparer.OrdinalIgnoreCase``) and the first route whose template and
methods match wins (azure-functions-host #9876, #6062, #3153). A catch-all whose function name
sorts first therefore takes every request, literal paths included. ``RouteTable.shadowed`` finds
such cases so devhost can warn at start-up; the host itself says nothing.

The host also refuses, at start-up, routes in its own reserved space (beginning with ``admin`` or
``runtime``) and two functions with the same route template and an overlapping method.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote, unquote

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Precedence ranks of one segment: lower is more specific (ASP.NET RoutePrecedence, inbound).
RANK_LITERAL = 1
RANK_COMPLEX = 2
RANK_CONSTRAINED = 3
RANK_PARAMETER = 4
RANK_OPTIONAL = 5
RANK_CATCH_ALL = 6

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DOUBLE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_ALPHA = re.compile(r"^[A-Za-z]+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RouteTemplateError(ValueError):
    """A template the Functions host would refuse at start-up (the app must be fixed)."""


def _integer_in(value: str, bounds: tuple[int, int]) -> bool:
    return bool(_INTEGER.match(value)) and bounds[0] <= int(value) <= bounds[1]


def _is_double(value: str) -> bool:
    return bool(_DOUBLE.match(value)) and math.isfinite(float(value))


def _is_guid(value: str) -> bool:
    # .NET Guid.TryParse accepts the 32-digit forms with or without hyphens and with braces.
    text = value.strip()
    if text.startswith("{") and text.endswith("}") or text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    if not re.fullmatch(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", text):
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_args(name: str, args: str, count: int) -> list[int]:
    parts = [p.strip() for p in args.split(",")] if args else []
    if len(parts) != count or not all(_INTEGER.match(p) for p in parts):
        raise RouteTemplateError(f"constraint {name}({args}) needs {count} integer argument(s)")
    return [int(p) for p in parts]


def make_constraint(text: str) -> Callable[[str], bool]:
    """Turn one inline constraint (``int``, ``range(1,5)``, ``regex(^a+$)`` ...) into a predicate."""
    match = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", text, flags=re.DOTALL)
    if not match:
        raise RouteTemplateError(f"unknown route constraint {text!r}")
    name, args = match.group(1).lower(), match.group(2)
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _integer_in(v, INT32),
        "long": lambda v: _integer_in(v, INT64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "alpha": lambda v: bool(_ALPHA.match(v)),
        "double": _is_double,
        "float": _is_double,
        "decimal": lambda v: bool(re.fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", v)),
        "guid": _is_guid,
        "datetime": _is_datetime,
        "required": lambda v: v != "",
        "nonfile": lambda v: "." not in v.rsplit("/", 1)[-1],
        "file": lambda v: "." in v.rsplit("/", 1)[-1],
    }
    if name in simple:
        if args is not None:
            raise RouteTemplateError(f"constraint {name} takes no arguments")
        return simple[name]
    if name == "minlength":
        (low,) = _int_args(name, args or "", 1)
        return lambda v: len(v) >= low
    if name == "maxlength":
        (high,) = _int_args(name, args or "", 1)
        return lambda v: len(v) <= high
    if name == "length":
        bounds = _int_args(name, args or "", 2 if args and "," in args else 1)
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if name == "min":
        (low,) = _int_args(name, args or "", 1)
        return lambda v: _integer_in(v, INT64) and int(v) >= low
    if name == "max":
        (high,) = _int_args(name, args or "", 1)
        return lambda v: _integer_in(v, INT64) and int(v) <= high
    if name == "range":
        low, high = _int_args(name, args or "", 2)
        return lambda v: _integer_in(v, INT64) and low <= int(v) <= high
    if name == "regex":
        if not args:
            raise RouteTemplateError("constraint regex() needs a pattern")
        # ASP.NET regex constraints are case-insensitive and not anchored unless the pattern is.
        pattern = re.compile(args, flags=re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    raise RouteTemplateError(f"unknown route constraint {text!r}")


@dataclass(frozen=True)
class Parameter:
    """One ``{...}`` of a template."""

    name: str
    constraints: tuple[str, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = field(default=(), compare=False, repr=False)

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


@dataclass(frozen=True)
class Segment:
    """One ``/``-separated part of a template: a literal, a parameter, or literal/parameter parts."""

    parts: tuple[str | Parameter, ...]

    @property
    def literal(self) -> str | None:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        return None

    @property
    def parameter(self) -> Parameter | None:
        if len(self.parts) == 1 and isinstance(self.parts[0], Parameter):
            return self.parts[0]
        return None

    @property
    def rank(self) -> int:
        if self.literal is not None:
            return RANK_LITERAL
        parameter = self.parameter
        if parameter is None:
            return RANK_COMPLEX
        if parameter.catch_all:
            return RANK_CATCH_ALL
        if parameter.optional or parameter.default is not None:
            return RANK_OPTIONAL
        if parameter.constraints:
            return RANK_CONSTRAINED
        return RANK_PARAMETER


def _parse_parameter(body: str, template: str) -> Parameter:
    text = body
    catch_all = False
    if text.startswith("**"):
        catch_all, text = True, text[2:]
    elif text.startswith("*"):
        catch_all, text = True, text[1:]
    default: str | None = None
    # Constraints may contain '=' and '?' (regex), so split name and constraints first.
    name_end = len(text)
    for index, char in enumerate(text):
        if char in ":=?":
            name_end = index
            break
    name, rest = text[:name_end], text[name_end:]
    optional = False
    constraints: list[str] = []
    while rest:
        if rest.startswith(":"):
            rest = rest[1:]
            depth, end = 0, len(rest)
            for index, char in enumerate(rest):
                if char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                elif depth == 0 and char in ":=" or depth == 0 and char == "?" and index == len(rest) - 1:
                    end = index
                    break
            # Braces inside a constraint are doubled in a template (``{{2}}``), as in ASP.NET.
            constraints.append(rest[:end].replace("{{", "{").replace("}}", "}"))
            rest = rest[end:]
        elif rest.startswith("="):
            default, rest = rest[1:], ""
        elif rest == "?":
            optional, rest = True, ""
        else:
            raise RouteTemplateError(f"cannot parse parameter {{{body}}} in route {template!r}")
    if not _NAME.match(name):
        raise RouteTemplateError(f"bad parameter name {name!r} in route {template!r}")
    if catch_all and optional:
        raise RouteTemplateError(f"a catch-all parameter cannot be optional in route {template!r}")
    checks = tuple(make_constraint(c) for c in constraints)
    return Parameter(name, tuple(constraints), optional, default, catch_all, checks)


def _parse_segment(text: str, template: str) -> Segment:
    parts: list[str | Parameter] = []
    literal = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "{":
            if text.startswith("{{", index):
                literal.append("{")
                index += 2
                continue
            depth, end = 0, -1
            for cursor in range(index, len(text)):
                if text[cursor] == "{":
                    depth += 1
                elif text[cursor] == "}":
                    depth -= 1
                    if depth == 0:
                        end = cursor
                        break
            if end < 0:
                raise RouteTemplateError(f"unclosed '{{' in route {template!r}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_parameter(text[index + 1 : end], template))
            index = end + 1
        elif char == "}":
            if text.startswith("}}", index):
                literal.append("}")
                index += 2
                continue
            raise RouteTemplateError(f"unmatched '}}' in route {template!r}")
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    if not parts:
        raise RouteTemplateError(f"empty segment in route {template!r}")
    for left, right in zip(parts, parts[1:], strict=False):
        if isinstance(left, Parameter) and isinstance(right, Parameter):
            raise RouteTemplateError(f"two parameters need a literal between them in route {template!r}")
    if len(parts) > 1 and any(isinstance(p, Parameter) and (p.catch_all or p.optional) for p in parts):
        raise RouteTemplateError(f"optional and catch-all parameters must fill their segment in route {template!r}")
    return Segment(tuple(parts))


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route template; ``match`` turns raw path segments into route values or ``None``."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        stripped = text.strip().strip("/")
        if stripped.startswith("~"):
            stripped = stripped.lstrip("~").strip("/")
        segments = tuple(_parse_segment(s, text) for s in stripped.split("/")) if stripped else ()
        names: set[str] = set()
        for position, segment in enumerate(segments):
            for part in segment.parts:
                if isinstance(part, Parameter):
                    if part.name.lower() in names:
                        raise RouteTemplateError(f"parameter {part.name!r} appears twice in route {text!r}")
                    names.add(part.name.lower())
                    last = position == len(segments) - 1
                    if part.catch_all and not last:
                        raise RouteTemplateError(f"a catch-all parameter must be the last segment of route {text!r}")
                    if part.optional and not last:
                        raise RouteTemplateError(f"an optional parameter must be the last segment of route {text!r}")
        return cls(text, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Lower sorts first: compare segment ranks from the left, like ASP.NET's inbound precedence."""
        return tuple(segment.rank for segment in self.segments)

    @property
    def parameters(self) -> list[Parameter]:
        return [p for s in self.segments for p in s.parts if isinstance(p, Parameter)]

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """Route values for a path already split on ``/`` (``split_path``), or None.

        Segments are matched as they are (decoded by ``decode_path``): nothing is decoded again,
        as in ASP.NET, where a route value is a piece of the decoded path."""
        values: dict[str, str] = {}
        count = len(segments)
        for position, segment in enumerate(self.segments):
            parameter = segment.parameter
            if parameter is not None and parameter.catch_all:
                value = "/".join(segments[position:])
                if value == "" and parameter.default is not None:
                    value = parameter.default
                if value and not parameter.accepts(value):
                    return None
                if value:
                    values[parameter.name] = value
                return values
            if position >= count:
                # Only an optional (or defaulted) parameter may be missing, and only at the end.
                if parameter is not None and (parameter.optional or parameter.default is not None):
                    if parameter.default is not None:
                        values[parameter.name] = parameter.default
                    continue
                return None
            if not _match_segment(segment, segments[position], values):
                return None
        if count > len(self.segments):
            return None
        return values


def _match_segment(segment: Segment, decoded: str, values: dict[str, str]) -> bool:
    literal = segment.literal
    if literal is not None:
        return decoded.lower() == literal.lower()
    parameter = segment.parameter
    if parameter is not None:
        if decoded == "" or not parameter.accepts(decoded):
            return False
        values[parameter.name] = decoded
        return True
    # Complex segment: literals and parameters alternate; parameters take at least one character.
    pattern = []
    params: list[Parameter] = []
    for part in segment.parts:
        if isinstance(part, str):
            pattern.append(re.escape(part))
        else:
            pattern.append("(.+)")
            params.append(part)
    # ASP.NET matches complex segments from the right, so the last parameter takes the shortest
    # tail: make every group but the first lazy to mimic that ("{a}.{b}" on "x.y.z" -> a=x.y, b=z).
    found = re.fullmatch(
        "".join(pattern).replace("(.+)", "(.+?)").replace("(.+?)", "(.+)", 1), decoded, re.IGNORECASE | re.DOTALL
    )
    if not found:
        return False
    for parameter, value in zip(params, found.groups(), strict=True):
        if not parameter.accepts(value):
            return False
        values[parameter.name] = value
    return True


_ENCODED_SLASH = re.compile(r"(%2[Ff])")
# What PathString.ToUriComponent leaves as it is: RFC 3986 pchar without pct-encoded, plus "/".
_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/")
_HEX = frozenset("0123456789ABCDEFabcdef")


def decode_path(raw_path: str) -> str:
    """The request path as Kestrel gives it to ASP.NET (``HttpRequest.Path``): percent-decoded once
    as UTF-8, except ``%2F``, which is kept as it was sent. Bytes that are not valid UTF-8 keep
    their percent-encoding. ``raw_path`` is the request target's path, without the query."""
    parts = _ENCODED_SLASH.split(raw_path.split("?", 1)[0])
    decoded = []
    for index, part in enumerate(parts):
        if index % 2:  # a %2F separator
            decoded.append(part)
            continue
        text = unquote(part, encoding="utf-8", errors="surrogateescape")
        # surrogateescape keeps undecodable bytes as U+DC80..U+DCFF: put their %XX back.
        decoded.append("".join(f"%{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else c for c in text))
    return "".join(decoded)


def to_uri_component(path: str) -> str:
    """``PathString.ToUriComponent``: the decoded path re-escaped for a URL, leaving valid path
    characters and well-formed ``%XX`` triples as they are. The host builds the URL the worker sees
    this way, so ``%2520`` sent arrives as ``%20`` and ``%20`` sent arrives as ``%20`` too."""
    out = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == "%" and index + 2 < len(path) and path[index + 1] in _HEX and path[index + 2] in _HEX:
            out.append(path[index : index + 3])
            index += 3
            continue
        out.append(char if char in _PATH_CHARS else quote(char, safe="", errors="surrogateescape"))
        index += 1
    return "".join(out)


def split_path(path: str) -> list[str] | None:
    """Split a decoded path (``decode_path``) into segments.

    Dot segments (``.``/``..``, also when sent as ``%2E``) are resolved the way Kestrel normalises
    a path before routing; ``None`` means the path tries to climb above the root. A trailing slash
    is ignored, as in ASP.NET routing. A ``%2F`` stays inside its segment.
    """
    if not path.startswith("/"):
        path = "/" + path
    segments: list[str] = []
    parts = path[1:].split("/")
    for index, part in enumerate(parts):
        if part == ".":
            continue
        if part == "..":
            if not segments:
                return None
            segments.pop()
            continue
        if part == "" and index == len(parts) - 1:
            continue  # trailing slash
        segments.append(part)
    return segments


def normalise_methods(methods: Iterable[object] | None) -> frozenset[str] | None:
    """Upper-case method names from a binding (``None`` = every method, like the host)."""
    if not methods:
        return None
    names = set()
    for method in methods:
        value = getattr(method, "value", method)
        names.add(str(value).upper())
    return frozenset(names)


def host_order_key(name: str) -> str:
    """Sort key of a function name as the host orders its functions: ``StringComparer.OrdinalIgnoreCase``
    compares the upper-cased characters ordinally (so ``_`` sorts after every letter). Function
    names are ASCII (``index_functions`` refuses others, as the host does), so ``str.upper`` is exact."""
    return name.upper()


RESERVED_ROUTE_PREFIXES = ("admin", "runtime")


@dataclass(frozen=True)
class Route(Generic[T]):
    """A template bound to the methods it answers, the function ``name`` that orders it, and
    whatever the caller routes to (``target``)."""

    template: RouteTemplate
    methods: frozenset[str] | None
    target: T
    name: str
    route: str = ""
    order: int = 0

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods

    def common_methods(self, other: Route[object]) -> frozenset[str] | None:
        """Methods both routes answer (``None`` = every method); empty when they share none."""
        if self.methods is None:
            return other.methods
        if other.methods is None:
            return self.methods
        return self.methods & other.methods


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    route: Route[T]
    values: dict[str, str]


@dataclass(frozen=True)
class Shadowing(Generic[T]):
    """``earlier`` (sorted before ``later``) takes requests ``later`` matches, e.g. ``example``."""

    earlier: Route[T]
    later: Route[T]
    methods: frozenset[str] | None
    example: str

    def describe(self) -> str:
        methods = ",".join(sorted(self.methods)) if self.methods else "any method"
        return (
            f"function {self.later.name!r} (route {self.later.template.text!r}) is shadowed by "
            f"{self.earlier.name!r} (route {self.earlier.template.text!r}), whose name sorts first: the host "
            f"sends {methods} {self.example} to {self.earlier.name!r}"
        )


class RouteTable(Generic[T]):
    """All HTTP routes of an app in the host's order; ``find`` returns the first that matches."""

    def __init__(self, prefix: str = "api") -> None:
        self.prefix = prefix.strip("/")
        self.routes: list[Route[T]] = []

    def full_template(self, route: str) -> str:
        route = route.strip().strip("/")
        if self.prefix and route:
            return f"{self.prefix}/{route}"
        return self.prefix or route

    def add(self, route: str, methods: Iterable[object] | None, target: T, *, name: str) -> Route[T]:
        """Register function ``name``'s route; refused (``RouteTemplateError``) where the host
        refuses it at start-up: a malformed template, a route in the host's reserved space, or the
        same template as another function with a method in common."""
        text = route.strip("/")
        if text.lower().startswith(RESERVED_ROUTE_PREFIXES):
            raise RouteTemplateError(
                f"function {name!r}: the specified route {route!r} conflicts with one or more built in routes "
                "(a route may not begin with 'admin' or 'runtime'); the host refuses it too"
            )
        template = RouteTemplate.parse(self.full_template(route))
        entry = Route(template, normalise_methods(methods), target, name, text, order=len(self.routes))
        for other in self.routes:
            if other.route.lower() == text.lower() and entry.common_methods(other) != frozenset():
                raise RouteTemplateError(
                    f"function {name!r}: the route specified ({route!r}) conflicts with the route defined by "
                    f"function {other.name!r} (same template, a method in common); the host refuses it too"
                )
        self.routes.append(entry)
        self.routes.sort(key=lambda r: (host_order_key(r.name), r.order))
        return entry

    def find(self, method: str, path: str) -> RouteMatch[T] | None:
        """The route the host picks for this request, or None (the host answers 404 then, also for
        a method that a matching path does not allow). ``path`` is decoded (``decode_path``)."""
        segments = split_path(path)
        if segments is None:
            return None
        for route in self.routes:  # in the host's order: by function name
            if not route.allows(method):
                continue
            values = route.template.match(segments)
            if values is not None:
                return RouteMatch(route, values)
        return None

    def shadowed(self) -> list[Shadowing[T]]:
        """Every pair where a route sorted earlier takes requests that a later one matches, with
        an example request.

        Not reported: an earlier route that is strictly more specific than the later one by
        ASP.NET's precedence (a literal before a parameter, say) - ASP.NET specificity would pick
        it too, so nothing surprises. What is reported is where name order and specificity
        disagree, typically a catch-all whose name sorts first. Constraints are honoured through
        sample values, so the check may miss an overlap that only exotic values (a ``regex``) reach.
        """
        found: list[Shadowing[T]] = []
        for index, later in enumerate(self.routes):
            for earlier in self.routes[:index]:
                methods = earlier.common_methods(later)
                if methods == frozenset():
                    continue
                if earlier.template.precedence < later.template.precedence:
                    continue
                example = overlap_example(earlier.template, later.template)
                if example is not None:
                    found.append(Shadowing(earlier, later, methods, example))
        return found


# Values tried for parameters when looking for a path two templates both match.
_SAMPLE_VALUES = (
    "x",
    "1",
    "a.b",
    "true",
    "6f9619ff-8b86-d011-b42d-00c04fc964ff",
    "2000-01-01",
    "abc",
    "0",
)


def _parameter_samples(parameter: Parameter) -> list[str]:
    samples = list(_SAMPLE_VALUES)
    for constraint in parameter.constraints:
        for number in re.findall(r"-?[0-9]+", constraint):
            samples += [number, "a" * max(0, min(int(number), 64))]
    if parameter.default:
        samples.append(parameter.default)
    return [s for s in samples if s and parameter.accepts(s)]


def _segment_samples(segment: Segment) -> list[str]:
    """Decoded values that ``segment`` matches (a few; possibly none when constraints are exotic)."""
    if segment.literal is not None:
        return [segment.literal]
    parameter = segment.parameter
    if parameter is not None:
        return _parameter_samples(parameter)
    text = []
    for part in segment.parts:
        if isinstance(part, str):
            text.append(part)
        else:
            samples = _parameter_samples(part)
            if not samples:
                return []
            text.append(samples[0])
    return ["".join(text)]


def _length_range(template: RouteTemplate) -> tuple[int, float]:
    """Fewest and most path segments the template matches (``inf`` with a catch-all)."""
    segments = template.segments
    if segments and segments[-1].parameter is not None:
        last = segments[-1].parameter
        if last.catch_all:
            return len(segments) - 1, math.inf
        if last.optional or last.default is not None:
            return len(segments) - 1, len(segments)
    return len(segments), len(segments)


def _segment_at(template: RouteTemplate, position: int) -> Segment | None:
    """The template segment that matches path segment ``position`` (None: a catch-all takes it)."""
    if position < len(template.segments):
        segment = template.segments[position]
        parameter = segment.parameter
        return None if parameter is not None and parameter.catch_all else segment
    return None


def _accepts(segment: Segment | None, decoded: str) -> bool:
    return segment is None or _match_segment(segment, decoded, {})


def overlap_example(first: RouteTemplate, second: RouteTemplate) -> str | None:
    """A path both templates match (``/a/b``), or None when none was found.

    Path segments are independent in a template, so a value is chosen for each position that
    both segments accept, from the literals of either template and sample parameter values; the
    full path is then checked with ``match`` (a catch-all's constraint sees the joined value).
    """
    low1, high1 = _length_range(first)
    low2, high2 = _length_range(second)
    low, high = max(low1, low2), min(high1, high2)
    finite = [n for n in (low1, high1, low2, high2) if n != math.inf]
    high = min(high, max(finite) + 1)
    for count in range(int(low), int(high) + 1):
        chosen: list[str] = []
        for position in range(count):
            segments = (_segment_at(first, position), _segment_at(second, position))
            candidates = [v for s in segments if s is not None for v in _segment_samples(s)] + list(_SAMPLE_VALUES)
            value = next((c for c in candidates if _accepts(segments[0], c) and _accepts(segments[1], c)), None)
            if value is None:
                break
            chosen.append(value)
        else:
            if first.match(chosen) is not None and second.match(chosen) is not None:
                return to_uri_component("/" + "/".join(chosen))
    return None
