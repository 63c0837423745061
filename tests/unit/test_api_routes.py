"""The route trie and the conflict rules (core.apiops.routes), without storage."""

from __future__ import annotations

from typing import Any

import pytest

from core.apiops.routes import BoundOperation, RouteCache, RouteTable, find_conflict, parse_template
from core.kernel.errors import BadRequest, MethodNotAllowed, NotFound
from core.web.paths import split_path


def op(method: str, path: str, types: dict[str, str] | None = None, op_id: str | None = None, api: str = "pets") -> BoundOperation:
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": t}} for n, t in (types or {}).items()]
    operation: dict[str, Any] = {"operationId": op_id or f"{method.lower()}{path}", "method": method, "path": path, "parameters": params}
    return BoundOperation.from_parts(api, operation, {"scenarioId": "x"})


def routes(*ops: BoundOperation) -> list[tuple[str, str, Any]]:
    return [(o.label, o.method, o.segments) for o in ops]


def test_integer_parameter_beside_literal() -> None:
    table = RouteTable([op("GET", "/api/pet/{id}", {"id": "integer"}, "byId"), op("GET", "/api/pet/getStatus", op_id="status")])
    found = table.match("GET", "/api/pet/42")
    assert found.operation.operation_id == "byId" and found.path_params == {"id": "42"}
    assert table.match("GET", "/api/pet/getStatus").operation.operation_id == "status"
    with pytest.raises(NotFound):
        table.match("GET", "/api/pet/fido")  # not an integer: the integer route does not match


def test_typed_parameters_only_match_their_type() -> None:
    table = RouteTable(
        [
            op("GET", "/n/{x}", {"x": "number"}, "num"),
            op("GET", "/b/{x}", {"x": "boolean"}, "bool"),
            op("GET", "/i/{x}", {"x": "integer"}, "int"),
        ]
    )
    assert table.match("GET", "/n/-1.5e3").operation.operation_id == "num"
    assert table.match("GET", "/b/true").operation.operation_id == "bool"
    for path in ("/n/abc", "/b/yes", "/b/True", "/i/1.5", "/i/9223372036854775808", "/i/"):
        with pytest.raises(NotFound):
            table.match("GET", path)
    assert table.match("GET", "/i/-9223372036854775808").path_params == {"x": "-9223372036854775808"}


def test_405_lists_the_methods_of_a_known_path() -> None:
    table = RouteTable([op("GET", "/api/pet/{id}", {"id": "integer"}), op("DELETE", "/api/pet/{petId}", {"petId": "integer"})])
    with pytest.raises(MethodNotAllowed) as caught:
        table.match("PUT", "/api/pet/7")
    assert caught.value.allow == ["DELETE", "GET"]
    assert table.match("DELETE", "/api/pet/7").path_params == {"petId": "7"}
    assert table.allowed_methods("/api/pet/7") == ["DELETE", "GET"]
    with pytest.raises(NotFound):
        table.match("GET", "/api/nothing")


def test_methods_with_different_parameter_types_at_one_position() -> None:
    table = RouteTable([op("GET", "/a/{id}", {"id": "integer"}, "get"), op("POST", "/a/{name}", {"name": "string"}, "post")])
    assert table.match("GET", "/a/5").operation.operation_id == "get"
    with pytest.raises(MethodNotAllowed) as caught:
        table.match("GET", "/a/xyz")
    assert caught.value.allow == ["POST"]


def test_literal_wins_over_parameter() -> None:
    table = RouteTable([op("GET", "/a/{x}", {"x": "string"}, "param"), op("POST", "/a/me", op_id="literal")])
    assert table.match("POST", "/a/me").operation.operation_id == "literal"
    assert table.match("GET", "/a/me").operation.operation_id == "param"


def test_template_segments() -> None:
    table = RouteTable([op("GET", "/files/{name}.{ext}", {"name": "string", "ext": "string"}, "file"), op("GET", "/report-{year}", {"year": "integer"}, "report")])
    assert table.match("GET", "/files/a.b.json").path_params == {"name": "a", "ext": "b.json"}
    assert table.match("GET", "/report-2024").path_params == {"year": "2024"}
    with pytest.raises(NotFound):
        table.match("GET", "/report-x")


def test_encoded_slash_stays_in_its_segment_and_dot_segments_are_refused() -> None:
    table = RouteTable([op("GET", "/f/{name}", {"name": "string"}, "f")])
    assert table.match("GET", "/f/a%2Fb").path_params == {"name": "a/b"}
    with pytest.raises(NotFound):
        table.match("GET", "/f/a/b")
    for path in ("/f/..", "/f/%2e%2e", "/f/.", "/f/a%00", "/f/%ff", "f/x"):
        with pytest.raises(BadRequest):
            table.match("GET", path)
    assert table.match("GET", "/f/x/").path_params == {"name": "x"}  # one trailing slash is ignored
    with pytest.raises(NotFound):
        table.match("GET", "/f//")


def test_split_path_decodes_per_segment() -> None:
    assert split_path("/api/%C3%A5sa/b%20c") == ["api", "åsa", "b c"]
    assert split_path("/") == [""]


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        (("/pet/{name}", {"name": "string"}), ("/pet/getStatus", {}), True),
        (("/pet/{id}", {"id": "integer"}), ("/pet/getStatus", {}), False),
        (("/pet/{id}", {"id": "integer"}), ("/pet/42", {}), True),
        (("/pet/{id}", {"id": "integer"}), ("/pet/{n}", {"n": "number"}), True),
        (("/pet/{id}", {"id": "integer"}), ("/pet/{s}", {"s": "string"}), True),
        (("/pet/{id}", {"id": "integer"}), ("/pet/{b}", {"b": "boolean"}), False),
        (("/pet/{b}", {"b": "boolean"}), ("/pet/true", {}), True),
        (("/pet/{b}", {"b": "boolean"}), ("/pet/yes", {}), False),
        (("/pet/{id}", {"id": "integer"}), ("/pet/{id}/x", {"id": "integer"}), False),
        (("/f/{n}.json", {"n": "string"}), ("/f/{n}.xml", {"n": "string"}), False),
        (("/f/{n}.json", {"n": "string"}), ("/f/a.json", {}), True),
        (("/f/{n}.json", {"n": "string"}), ("/f/{id}", {"id": "integer"}), False),
        (("/f/{n}.json", {"n": "string"}), ("/f/{s}", {"s": "string"}), True),
    ],
)
def test_conflicts(a: tuple[str, dict[str, str]], b: tuple[str, dict[str, str]], conflict: bool) -> None:
    first, second = op("GET", a[0], a[1], "first"), op("GET", b[0], b[1], "second")
    found = find_conflict(routes(first), routes(second))
    assert (found is not None) == conflict
    if conflict:
        assert "first" in found[1] and "second" in found[0]


def test_no_conflict_across_methods() -> None:
    assert find_conflict(routes(op("GET", "/pet/{name}", {"name": "string"}), op("POST", "/pet/getStatus"))) is None


def test_bad_templates_are_refused() -> None:
    for path in ("pet", "/pet/{id", "/pet/{a}{b}", "/pet/../x"):
        with pytest.raises(ValueError):
            parse_template(path, {})


def test_route_cache_reloads_only_when_the_marker_changes() -> None:
    version = {"v": "1"}
    loads: list[int] = []

    def load() -> list[BoundOperation]:
        loads.append(1)
        return [op("GET", "/x")]

    cache = RouteCache(lambda: version["v"], load)
    assert cache.get().match("GET", "/x")
    cache.get()
    assert len(loads) == 1
    version["v"] = "2"
    cache.get()
    assert len(loads) == 2 and cache.get().version == "2"


def _lazy_regex(template: str) -> Any:
    """What template segments were matched with before issue 13 (string parameters only)."""
    import re

    parts = re.split(r"\{[^{}/]+\}", template)
    return re.compile("(.+?)".join(re.escape(p) for p in parts))


@pytest.mark.parametrize("template", ["{a}-{b}-{c}.json", "{a}.{b}", "report-{y}-{m}", "{a}--{b}", "x{a}y{b}z"])
def test_template_segments_read_like_the_lazy_regex_did_for_strings(template: str) -> None:
    """Property over generated segments from the separators' alphabet (the hard cases): the
    linear matcher agrees with the backtracking regex on every string-only template."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    (segment,) = parse_template("/" + template, {})
    regex = _lazy_regex(template)

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.text(alphabet="-.xyzjson", max_size=40))
    def agree(value: str) -> None:
        found = regex.fullmatch(value)
        assert segment.match(value) == (found.groups() if found else None)

    agree()


def test_template_matching_is_linear_in_the_segment_length() -> None:
    """No timing: a 1,024-character segment is read by one left-to-right scan per separator."""
    (segment,) = parse_template("/{a}-{b}-{c}.json", {})
    assert segment.match("-" * 1024) is None
    assert segment.match("-" * 1019 + ".json") == ("-", "-", "-" * 1015)
    with pytest.raises(BadRequest):
        split_path("/" + "-" * 1025)


def test_typed_template_parameters_end_at_the_first_separator() -> None:
    (segment,) = parse_template("/{a}-{n}", {"n": "integer"})
    assert segment.match("x-5") == ("x", "5")
    assert segment.match("x-y-5") is None  # a = "x", then "y-5" is no integer (documented)
    assert segment.match("x-" + "9" * 30) is None
