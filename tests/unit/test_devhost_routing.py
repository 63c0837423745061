"""Route templates as the Functions host matches them: constraints, optional and catch-all
parameters, precedence between functions, case and percent-decoding."""

from __future__ import annotations

import pytest

from devhost.routing import RouteTable, RouteTemplate, RouteTemplateError, split_path


def table(*routes: tuple[str, list[str] | None], prefix: str = "") -> RouteTable[str]:
    result: RouteTable[str] = RouteTable(prefix)
    for route, methods in routes:
        result.add(route, methods, route)
    return result


def found(routes: RouteTable[str], path: str, method: str = "GET") -> tuple[str, dict[str, str]] | None:
    match = routes.find(method, path)
    return None if match is None else (match.route.target, match.values)


JUNCTION_LIKE = table(
    ("{*path}", None),
    ("ExternalData/Accept/{scenarioId}", ["GET", "POST"]),
    ("ExternalData/GetCacheData/{scenarioId}", ["GET"]),
    ("management/scenarios/{scenarioId}", ["GET", "PUT", "PATCH", "DELETE"]),
    ("management/scenarios/{scenarioId}/runs/{runId}", ["GET"]),
    ("management/openapi.json", ["GET"]),
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ExternalData/Accept/abc", ("ExternalData/Accept/{scenarioId}", {"scenarioId": "abc"})),
        ("/externaldata/ACCEPT/abc", ("ExternalData/Accept/{scenarioId}", {"scenarioId": "abc"})),
        ("/ExternalData/Accept/abc/", ("ExternalData/Accept/{scenarioId}", {"scenarioId": "abc"})),
        ("/management/openapi.json", ("management/openapi.json", {})),
        ("/management/scenarios/openapi.json", ("management/scenarios/{scenarioId}", {"scenarioId": "openapi.json"})),
        (
            "/management/scenarios/s1/runs/r1",
            ("management/scenarios/{scenarioId}/runs/{runId}", {"scenarioId": "s1", "runId": "r1"}),
        ),
        ("/api/pet/1", ("{*path}", {"path": "api/pet/1"})),
        ("/ExternalData/Accept/abc/more", ("{*path}", {"path": "ExternalData/Accept/abc/more"})),
        ("/", ("{*path}", {})),
    ],
)
def test_catch_all_never_steals_a_more_specific_route(path: str, expected: tuple[str, dict[str, str]]) -> None:
    assert found(JUNCTION_LIKE, path) == expected


def test_registration_order_does_not_matter_for_precedence() -> None:
    first = table(("{*path}", ["GET"]), ("a/{id}", ["GET"]), ("a/b", ["GET"]))
    last = table(("a/b", ["GET"]), ("a/{id}", ["GET"]), ("{*path}", ["GET"]))
    for routes in (first, last):
        assert found(routes, "/a/b") == ("a/b", {})
        assert found(routes, "/a/c") == ("a/{id}", {"id": "c"})
        assert found(routes, "/a/b/c") == ("{*path}", {"path": "a/b/c"})


def test_precedence_literal_constrained_plain_optional_catch_all() -> None:
    routes = table(
        ("x/{*rest}", ["GET"]),
        ("x/{name?}", ["GET"]),
        ("x/{name}", ["GET"]),
        ("x/{id:int}", ["GET"]),
        ("x/fixed", ["GET"]),
    )
    assert found(routes, "/x/fixed") == ("x/fixed", {})
    assert found(routes, "/x/42") == ("x/{id:int}", {"id": "42"})
    assert found(routes, "/x/abc") == ("x/{name}", {"name": "abc"})
    assert found(routes, "/x") == ("x/{name?}", {})
    assert found(routes, "/x/a/b") == ("x/{*rest}", {"rest": "a/b"})
    assert RouteTemplate.parse("x/fixed").precedence < RouteTemplate.parse("x/{id:int}").precedence
    assert RouteTemplate.parse("x/{id:int}").precedence < RouteTemplate.parse("x/{name}").precedence
    assert RouteTemplate.parse("x/{name}").precedence < RouteTemplate.parse("x/{name?}").precedence
    assert RouteTemplate.parse("x/{name?}").precedence < RouteTemplate.parse("x/{*rest}").precedence


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        ("int", ["0", "-5", "2147483647"], ["2147483648", "1.5", "abc", "1e3"]),
        ("long", ["9223372036854775807", "-1"], ["9223372036854775808", "x"]),
        (
            "guid",
            ["6f9619ff-8b86-d011-b42d-00c04fc964ff", "6F9619FF8B86D011B42D00C04FC964FF"],
            ["6f9619ff-8b86", "zzzz"],
        ),
        ("bool", ["true", "False"], ["yes", "1"]),
        ("alpha", ["abcXYZ"], ["abc1", "a-b"]),
        ("double", ["1.5", "-2", "1e3"], ["nan", "inf", "1,5", "x"]),
        ("minlength(3)", ["abc"], ["ab"]),
        ("range(1,5)", ["1", "5"], ["0", "6", "a"]),
        ("regex(^[a-z]{{2}}$)", ["ab", "AB"], ["abc"]),
    ],
)
def test_constraints(constraint: str, good: list[str], bad: list[str]) -> None:
    template = RouteTemplate.parse(f"v/{{value:{constraint}}}")
    for value in good:
        assert template.match(["v", value]) == {"value": value}, value
    for value in bad:
        assert template.match(["v", value]) is None, value


def test_several_constraints_and_defaults() -> None:
    template = RouteTemplate.parse("p/{n:int:min(10)}")
    assert template.match(["p", "10"]) == {"n": "10"}
    assert template.match(["p", "9"]) is None
    defaulted = RouteTemplate.parse("d/{page:int=1}")
    assert defaulted.match(["d"]) == {"page": "1"}
    assert defaulted.match(["d", "7"]) == {"page": "7"}
    assert defaulted.match(["d", "x"]) is None


def test_optional_parameter_is_last_and_may_be_absent() -> None:
    template = RouteTemplate.parse("files/{name?}")
    assert template.match(["files"]) == {}
    assert template.match(["files", "a.txt"]) == {"name": "a.txt"}
    assert template.match(["files", "a", "b"]) is None
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse("files/{name?}/more")


def test_catch_all_takes_the_rest_and_must_be_last() -> None:
    template = RouteTemplate.parse("static/{**path}")
    assert template.match(["static"]) == {}
    assert template.match(["static", "css", "site.css"]) == {"path": "css/site.css"}
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse("{*path}/more")


@pytest.mark.parametrize(
    "bad",
    ["a/{id", "a/id}", "a/{id:nosuch}", "a/{x}/{x}", "a/{1x}", "a/{x}{y}", "a//b", "a/{x:int(3)}"],
)
def test_malformed_templates_are_refused(bad: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse(bad)


def test_encoded_slash_stays_inside_its_segment() -> None:
    assert split_path("/ExternalData/Accept/a%2Fb") == ["ExternalData", "Accept", "a%2Fb"]
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/a%2Fb") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "a/b"},
    )
    # "..%2F" is a value, never a step up into /management.
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/..%2F..%2Fmanagement%2Fopenapi.json") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "../../management/openapi.json"},
    )


def test_values_are_decoded_exactly_once() -> None:
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/a%2520b") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "a%20b"},
    )
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/caf%C3%A9") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "café"},
    )


def test_dot_segments_are_resolved_before_routing() -> None:
    assert split_path("/a/./b/../c") == ["a", "c"]
    assert split_path("/a/%2E%2E/c") == ["c"]
    assert split_path("/..") is None
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/../../management/openapi.json") == ("management/openapi.json", {})


def test_literals_are_case_insensitive_values_keep_their_case() -> None:
    routes = table(("Items/{Name}", ["GET"]))
    assert found(routes, "/ITEMS/MiXeD") == ("Items/{Name}", {"Name": "MiXeD"})


def test_methods_filter_candidates_and_nothing_is_404() -> None:
    routes = table(("things/{id}", ["POST"]), ("{*rest}", ["GET"]))
    assert found(routes, "/things/1", "POST") == ("things/{id}", {"id": "1"})
    assert found(routes, "/things/1", "post") == ("things/{id}", {"id": "1"})
    # GET is not allowed on things/{id}: the catch-all (which allows GET) answers instead.
    assert found(routes, "/things/1", "GET") == ("{*rest}", {"rest": "things/1"})
    assert found(routes, "/things/1", "DELETE") is None


def test_no_methods_means_every_method() -> None:
    routes = table(("any", None))
    for method in ("GET", "POST", "PATCH", "OPTIONS"):
        assert found(routes, "/any", method) == ("any", {})


def test_route_prefix() -> None:
    routes = table(("items/{id}", ["GET"]), prefix="api")
    assert found(routes, "/api/items/1") == ("items/{id}", {"id": "1"})
    assert found(routes, "/API/items/1") == ("items/{id}", {"id": "1"})
    assert found(routes, "/items/1") is None


def test_complex_segments() -> None:
    template = RouteTemplate.parse("files/{name}.{ext}")
    assert template.match(["files", "report.final.pdf"]) == {"name": "report.final", "ext": "pdf"}
    assert template.match(["files", "noext"]) is None
    assert (
        RouteTemplate.parse("files/a.b").precedence
        < template.precedence
        < RouteTemplate.parse("files/{x:int}").precedence
    )
