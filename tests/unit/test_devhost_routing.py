"""Route templates as the Functions host matches them (constraints, optional and catch-all
parameters, case and percent-decoding) and the host's route order: by function name, first match
wins, no specificity."""

from __future__ import annotations

import pytest

from devhost.routing import (
    RouteTable,
    RouteTemplate,
    RouteTemplateError,
    decode_path,
    host_order_key,
    overlap_example,
    split_path,
    to_uri_component,
)


def table(*routes: tuple[str, str, list[str] | None], prefix: str = "") -> RouteTable[str]:
    """Routes as (function name, template, methods); a match reports its template."""
    result: RouteTable[str] = RouteTable(prefix)
    for name, route, methods in routes:
        result.add(route, methods, route, name=name)
    return result


def found(routes: RouteTable[str], path: str, method: str = "GET") -> tuple[str, dict[str, str]] | None:
    """The route for a raw request path, decoded first as the host decodes it."""
    match = routes.find(method, decode_path(path))
    return None if match is None else (match.route.target, match.values)


# Junction's routes with its catch-all named to sort last (triggers/api_operations.py).
JUNCTION_LIKE = table(
    ("zzApiOperations", "{*path}", None),
    ("accept", "ExternalData/Accept/{scenarioId}", ["GET", "POST"]),
    ("getCacheData", "ExternalData/GetCacheData/{scenarioId}", ["GET"]),
    ("managementScenario", "management/scenarios/{scenarioId}", ["GET", "PUT", "PATCH", "DELETE"]),
    ("managementRun", "management/scenarios/{scenarioId}/runs/{runId}", ["GET"]),
    ("managementOpenApi", "management/openapi.json", ["GET"]),
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
def test_a_catch_all_named_to_sort_last_gets_only_the_rest(path: str, expected: tuple[str, dict[str, str]]) -> None:
    assert found(JUNCTION_LIKE, path) == expected
    assert JUNCTION_LIKE.shadowed() == []


def test_routes_are_tried_in_function_name_order_first_match_wins() -> None:
    # The host sorts its functions by name and takes the first route that matches: no specificity.
    routes = table(("alpha", "{*path}", ["GET"]), ("beta", "a/b", ["GET"]), ("gamma", "a/{id}", ["GET"]))
    assert found(routes, "/a/b") == ("{*path}", {"path": "a/b"})
    assert found(routes, "/a/c") == ("{*path}", {"path": "a/c"})
    # Registration order does not matter, only the names.
    reordered = table(("gamma", "a/{id}", ["GET"]), ("beta", "a/b", ["GET"]), ("alpha", "{*path}", ["GET"]))
    assert [r.name for r in reordered.routes] == ["alpha", "beta", "gamma"]
    assert found(reordered, "/a/b") == ("{*path}", {"path": "a/b"})
    # Named the other way round, the same templates behave as specificity would.
    last = table(("zeta", "{*path}", ["GET"]), ("beta", "a/b", ["GET"]), ("gamma", "a/{id}", ["GET"]))
    assert found(last, "/a/b") == ("a/b", {})
    assert found(last, "/a/c") == ("a/{id}", {"id": "c"})
    assert found(last, "/a/b/c") == ("{*path}", {"path": "a/b/c"})


def test_a_parameter_sorted_first_takes_a_literal_and_a_constrained_route() -> None:
    routes = table(
        ("a1", "x/{name}", ["GET"]),
        ("a2", "x/{id:int}", ["GET"]),
        ("a3", "x/fixed", ["GET"]),
    )
    assert found(routes, "/x/fixed") == ("x/{name}", {"name": "fixed"})
    assert found(routes, "/x/42") == ("x/{name}", {"name": "42"})
    shadowed = {(s.earlier.name, s.later.name) for s in routes.shadowed()}
    assert shadowed == {("a1", "a2"), ("a1", "a3")}
    # The constrained route sorted first only takes what it accepts.
    constrained_first = table(("a1", "x/{id:int}", ["GET"]), ("a2", "x/{name}", ["GET"]))
    assert found(constrained_first, "/x/42") == ("x/{id:int}", {"id": "42"})
    assert found(constrained_first, "/x/abc") == ("x/{name}", {"name": "abc"})


def test_name_order_is_ordinal_on_upper_case() -> None:
    # StringComparer.OrdinalIgnoreCase compares upper-cased characters: "_" (0x5F) after "Z" (0x5A).
    assert sorted(["b_x", "bz", "Ba", "bA_"], key=host_order_key) == ["Ba", "bA_", "bz", "b_x"]
    routes = table(("b_x", "{*path}", ["GET"]), ("bz", "z", ["GET"]))
    assert found(routes, "/z") == ("z", {})


def test_shadowing_is_reported_where_name_order_and_specificity_disagree() -> None:
    routes = table(
        ("alpha", "{*path}", ["GET", "POST"]),
        ("beta", "items/{id}", ["GET"]),
        ("delta", "other", ["DELETE"]),  # no method in common with alpha
        ("epsilon", "items/new", ["GET"]),  # shadowed by alpha and by beta
        ("zeta", "items/{id}/parts", ["POST"]),
    )
    report = {(s.earlier.name, s.later.name): s for s in routes.shadowed()}
    assert set(report) == {("alpha", "beta"), ("alpha", "epsilon"), ("beta", "epsilon"), ("alpha", "zeta")}
    assert report[("alpha", "beta")].example == "/items/x"
    assert report[("beta", "epsilon")].example == "/items/new"
    text = report[("alpha", "zeta")].describe()
    assert "'zeta'" in text and "'alpha'" in text and "POST /items/x/parts" in text
    # A literal sorted before a parameter is what specificity picks too: not reported.
    assert table(("a", "items/new", ["GET"]), ("b", "items/{id}", ["GET"])).shadowed() == []


def test_overlap_examples_respect_constraints_and_lengths() -> None:
    parse = RouteTemplate.parse
    assert overlap_example(parse("n/{a:int}"), parse("n/{b:alpha}")) is None
    assert overlap_example(parse("n/{a:int}"), parse("n/{b:range(5,9)}")) == "/n/5"
    assert overlap_example(parse("a/{x?}"), parse("a")) == "/a"
    assert overlap_example(parse("a/b"), parse("a/b/c")) is None
    assert overlap_example(parse("f/{name}.{ext}"), parse("f/{all}")) == "/f/x.x"
    assert overlap_example(parse("{*p}"), parse("q/{x}/{y}")) == "/q/x/x"


def test_the_host_refuses_reserved_and_conflicting_routes() -> None:
    for reserved in ("admin/things", "/Admin", "administrator", "runtime/x", "runtimes"):
        with pytest.raises(RouteTemplateError, match="built in routes"):
            table(("f", reserved, None))
    # The prefix is not part of the check: api/admin is fine, as on the host.
    assert found(table(("f", "x/admin", None)), "/x/admin") == ("x/admin", {})
    with pytest.raises(RouteTemplateError, match="conflicts with the route defined by function 'a'"):
        table(("a", "items/{id}", ["GET", "PUT"]), ("b", "/Items/{id}/", ["put"]))
    with pytest.raises(RouteTemplateError, match="conflicts"):
        table(("a", "items", None), ("b", "items", ["DELETE"]))
    # Same template, no method in common: both load.
    both = table(("a", "items/{id}", ["GET"]), ("b", "items/{id}", ["DELETE"]))
    assert [r.name for r in both.routes] == ["a", "b"]
    # A different template text is no conflict for the host, even when it matches the same paths.
    assert len(table(("a", "items/{id}", ["GET"]), ("b", "items/{key}", ["GET"])).shadowed()) == 1


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


def test_encoded_slash_stays_encoded_inside_its_segment() -> None:
    # Kestrel decodes everything but %2F, and route values are pieces of that path: on Azure a
    # value keeps "%2F" as three characters.
    assert split_path(decode_path("/ExternalData/Accept/a%2Fb")) == ["ExternalData", "Accept", "a%2Fb"]
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/a%2Fb") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "a%2Fb"},
    )
    # "..%2F" is a value, never a step up into /management.
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/..%2F..%2Fmanagement%2Fopenapi.json") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "..%2F..%2Fmanagement%2Fopenapi.json"},
    )


@pytest.mark.parametrize(
    ("raw", "decoded", "url"),
    [
        ("/a%20b", "/a b", "/a%20b"),
        ("/a%2520b", "/a%20b", "/a%20b"),  # decoded once by the host, so it arrives as %20
        ("/a%2Fb", "/a%2Fb", "/a%2Fb"),
        ("/a%2fb", "/a%2fb", "/a%2fb"),
        ("/a%25b", "/a%b", "/a%25b"),
        ("/a%2541", "/a%41", "/a%41"),
        ("/%41pi", "/Api", "/Api"),
        ("/caf%C3%A9", "/café", "/caf%C3%A9"),
        ("/x%FFy", "/x%FFy", "/x%FFy"),  # not UTF-8: left encoded
        ("/a%zz", "/a%zz", "/a%25zz"),
        ("/q%3Fx%23y", "/q?x#y", "/q%3Fx%23y"),
        ("/a:b@c/(d)", "/a:b@c/(d)", "/a:b@c/(d)"),
    ],
)
def test_the_path_is_decoded_once_except_slashes_and_rebuilt_for_the_url(raw: str, decoded: str, url: str) -> None:
    assert decode_path(raw) == decoded
    assert to_uri_component(decode_path(raw)) == url


def test_values_are_decoded_exactly_once() -> None:
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/a%2520b") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "a%20b"},
    )
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/caf%C3%A9") == (
        "ExternalData/Accept/{scenarioId}",
        {"scenarioId": "café"},
    )
    assert found(JUNCTION_LIKE, "/%45xternalData/Accept/x") == ("ExternalData/Accept/{scenarioId}", {"scenarioId": "x"})


def test_dot_segments_are_resolved_before_routing() -> None:
    assert split_path("/a/./b/../c") == ["a", "c"]
    assert split_path(decode_path("/a/%2E%2E/c")) == ["c"]
    assert split_path("/..") is None
    assert found(JUNCTION_LIKE, "/ExternalData/Accept/../../management/openapi.json") == ("management/openapi.json", {})


def test_literals_are_case_insensitive_values_keep_their_case() -> None:
    routes = table(("items", "Items/{Name}", ["GET"]))
    assert found(routes, "/ITEMS/MiXeD") == ("Items/{Name}", {"Name": "MiXeD"})


def test_methods_filter_candidates_and_nothing_is_404() -> None:
    routes = table(("things", "things/{id}", ["POST"]), ("zRest", "{*rest}", ["GET"]))
    assert found(routes, "/things/1", "POST") == ("things/{id}", {"id": "1"})
    assert found(routes, "/things/1", "post") == ("things/{id}", {"id": "1"})
    # GET is not allowed on things/{id}: the catch-all (which allows GET) answers instead.
    assert found(routes, "/things/1", "GET") == ("{*rest}", {"rest": "things/1"})
    assert found(routes, "/things/1", "DELETE") is None


def test_no_methods_means_every_method() -> None:
    routes = table(("any", "any", None))
    for method in ("GET", "POST", "PATCH", "OPTIONS"):
        assert found(routes, "/any", method) == ("any", {})


def test_route_prefix() -> None:
    routes = table(("items", "items/{id}", ["GET"]), prefix="api")
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
