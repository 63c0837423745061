"""CORS decisions (core.web.cors) and turning process results into responses (core.apiops.gateway)."""

from __future__ import annotations

import json

import pytest

from core.apiops.results import format_result, prefers_xml, to_xml
from core.kernel.errors import BadRequest
from core.web import cors


def test_origins_from_a_string_or_a_list() -> None:
    assert cors.parse_origins("https://a.example; https://B.example:443,http://c.example:8080") == [
        "https://a.example",
        "https://b.example",
        "http://c.example:8080",
    ]
    assert cors.parse_origins(["https://a.example", "*"]) == ["https://a.example", "*"]
    for bad in ("https://a.example/path", "ftp://x", "null", "https://"):
        with pytest.raises(BadRequest):
            cors.parse_origins(bad)


def test_star_is_never_combined_with_credentials() -> None:
    with pytest.raises(BadRequest):
        cors.normalise_cors({"allowedOrigins": "*", "allowCredentials": True})
    star = cors.normalise_cors({"allowedOrigins": "*; https://a.example"})
    assert star == {"allowedOrigins": ["*"], "allowCredentials": False}
    headers = cors.response_headers(star, "https://evil.example")
    assert headers == {"Vary": "Origin", "Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": cors.EXPOSED_HEADERS}


def test_allowed_and_refused_origins() -> None:
    binding = cors.normalise_cors({"allowedOrigins": ["https://app.example"], "allowCredentials": True})
    assert cors.response_headers(binding, "https://app.example") == {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": "https://app.example",
        "Access-Control-Expose-Headers": "Location, Retry-After, X-Run-Id, RateLimit, RateLimit-Policy",
        "Access-Control-Allow-Credentials": "true",
    }
    assert cors.response_headers(binding, "https://app.example.evil.com") == {"Vary": "Origin"}
    assert cors.response_headers(binding, "http://app.example") == {"Vary": "Origin"}
    assert cors.response_headers(binding, None) == {"Vary": "Origin"}
    assert cors.response_headers(None, "https://app.example") == {}


def test_preflight_headers() -> None:
    binding = cors.normalise_cors({"allowedOrigins": "https://app.example"})
    headers = cors.preflight_headers(binding, "https://app.example", "post", "Content-Type, X-Custom", ["POST", "GET"])
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type, X-Custom"
    assert "Origin" in headers["Vary"] and "Access-Control-Expose-Headers" not in headers  # actual responses only
    refused = cors.preflight_headers(binding, "https://other.example", "POST", None, ["POST"])
    assert "Access-Control-Allow-Origin" not in refused and "Access-Control-Allow-Methods" not in refused
    assert cors.is_preflight("OPTIONS", {"origin": "x", "access-control-request-method": "GET"})
    assert not cors.is_preflight("OPTIONS", {"origin": "x"})


def test_string_result_is_the_body() -> None:
    reply = format_result("héllo", None)
    assert reply.status == 200 and reply.body == "héllo".encode() and reply.headers["Content-Type"].startswith("text/plain")


def test_object_result_is_json_or_xml_by_accept() -> None:
    value = {"pet": {"name": "rex", "tags": ["a", "b"], "ok": True}}
    as_json = format_result(value, "application/json", {"Vary": "Origin"})
    assert json.loads(as_json.body) == value and as_json.headers["Vary"] == "Origin"
    as_xml = format_result(value, "application/xml")
    assert as_xml.headers["Content-Type"].startswith("application/xml")
    assert b"<pet><name>rex</name><tags>a</tags><tags>b</tags><ok>true</ok></pet>" in as_xml.body
    assert format_result([1, 2], "application/xml").body.endswith(b"<Root><Item>1</Item><Item>2</Item></Root>")
    assert b"<Root><a>1</a><b>2</b></Root>" in to_xml({"a": 1, "b": 2})
    assert b"<_1bad_key>x</_1bad_key>" in to_xml({"1bad key": "x"})


def test_accept_negotiation() -> None:
    assert prefers_xml("application/xml")
    assert prefers_xml("text/xml, application/json;q=0.5")
    assert not prefers_xml("application/json, application/xml")
    assert not prefers_xml("*/*")
    assert not prefers_xml(None)
    assert not prefers_xml("application/xml;q=0")


def test_status_and_header_mapping() -> None:
    reply = format_result(
        {
            "HttpStatusCode": 201,
            "Content": "<ok/>",
            "ContentType": "application/xml",
            "ContentEncoding": "utf-8",
            "HttpHeaders": [
                {"Key": "X-Run", "Value": "1"},
                {"Key": "Content-Length", "Value": "999"},
                {"Key": "Transfer-Encoding", "Value": "chunked"},
                {"Key": "Access-Control-Allow-Origin", "Value": "*"},
            ],
        },
        None,
    )
    assert reply.status == 201 and reply.body == b"<ok/>"
    assert reply.headers == {"X-Run": "1", "Content-Type": "application/xml; charset=utf-8"}


@pytest.mark.parametrize(
    "header",
    [{"Key": "X-Evil", "Value": "a\r\nSet-Cookie: x=1"}, {"Key": "Bad Name", "Value": "v"}, {"Key": "X-Name\n", "Value": "v"},
     *({"Key": "X-C", "Value": f"a{c}b"} for c in "\x00\x01\x0b\x0c\x1b\x7f\x85\u2028\u00e9\ud800"),
     {"Key": "X-Lead", "Value": " a"}, {"Key": "X-Trail", "Value": "a\t"}],
)  # fmt: skip
def test_headers_a_response_cannot_carry_are_the_process_fault(header: dict[str, str]) -> None:
    reply = format_result({"HttpStatusCode": 200, "Content": "x", "HttpHeaders": [header]}, None, {"Vary": "Origin"})
    assert reply.status == 500 and json.loads(reply.body)["error"]["code"] == "InvalidProcessResult"
    assert reply.headers["Vary"] == "Origin" and header["Key"] not in reply.headers


@pytest.mark.parametrize(
    "result",
    [*({"HttpStatusCode": 200, "Content": "x", "ContentEncoding": e} for e in ("rot13", "base64", "hex", "zlib", "utf\r\n8", "utf 8", "idna", "undefined", 5)),
     {"HttpStatusCode": "\u00b2", "Content": "x"}, {"HttpStatusCode": "２００", "Content": "x"}, {"HttpStatusCode": 200, "Content": "\ud800"},
     "\ud800", {"a": "\ud800"}, {"HttpStatusCode": 200, "Content": "x", "ContentType": "text/plain\x0b"}],
)  # fmt: skip
def test_unusable_results_are_invalid_process_results_not_internal_errors(result: object) -> None:
    for accept in (None, "application/xml"):
        reply = format_result(result, accept)
        if reply.status != 500:  # a value that can be written (JSON escapes a lone surrogate)
            assert reply.status == 200 and reply.body.decode("utf-8")
            continue
        assert json.loads(reply.body)["error"]["code"] == "InvalidProcessResult"


def test_mapping_with_encoding_and_object_content() -> None:
    latin = format_result({"HttpStatusCode": 200, "Content": "é", "ContentType": "text/plain", "ContentEncoding": "iso-8859-1"}, None)
    assert latin.body == b"\xe9" and latin.headers["Content-Type"] == "text/plain; charset=iso-8859-1"
    obj = format_result({"HttpStatusCode": 400, "Content": {"error": "x"}}, None)
    assert obj.status == 400 and json.loads(obj.body) == {"error": "x"}
    empty = format_result({"HttpStatusCode": 204, "Content": "ignored"}, None)
    assert empty.status == 204 and empty.body == b""


@pytest.mark.parametrize("status", [99, 100, 600, "abc", True, None])
def test_invalid_status_is_the_process_fault(status: object) -> None:
    reply = format_result({"HttpStatusCode": status, "Content": "x"}, None)
    assert reply.status == 500 and b"InvalidProcessResult" in reply.body


def test_unknown_encoding_is_the_process_fault() -> None:
    assert format_result({"HttpStatusCode": 200, "Content": "x", "ContentEncoding": "klingon"}, None).status == 500


def test_none_is_no_content() -> None:
    assert format_result(None, None).status == 204
