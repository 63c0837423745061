"""Request bodies: every format IntegrationHub accepts, and hostile ones refused with 4xx."""

from __future__ import annotations

import pytest

from core.kernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.web.bodies import media_type, parse_body

LIMIT = 1024 * 1024


def test_json_body_is_returned_as_is() -> None:
    assert parse_body(b'{"a": [1, 2, {"b": null}]}', "application/json", LIMIT) == {"a": [1, 2, {"b": None}]}


def test_json_with_charset_and_bom() -> None:
    assert parse_body('\ufeff{"x": "é"}'.encode(), "application/json; charset=UTF-8", LIMIT) == {"x": "é"}


def test_xml_body_becomes_an_object() -> None:
    body = b'<order id="7"><line sku="a">2</line><line sku="b">3</line><note>hi</note></order>'
    parsed = parse_body(body, "application/xml", LIMIT)
    assert parsed["order"]["@id"] == "7"
    assert [line["@sku"] for line in parsed["order"]["line"]] == ["a", "b"]
    assert parsed["order"]["note"] == "hi"


def test_text_xml_is_accepted() -> None:
    assert parse_body(b"<a>1</a>", "text/xml", LIMIT) == {"a": "1"}


def test_form_body_becomes_an_object() -> None:
    parsed = parse_body(b"name=J%C3%BCrgen&tag=a&tag=b&empty=", "application/x-www-form-urlencoded", LIMIT)
    assert parsed == {"name": "Jürgen", "tag": ["a", "b"], "empty": ""}


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"a": 1} trailing',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": [-1.8e308]}',
        b'{"a": 1, "a": 2}',
        b"\xff\xfe{}",
    ],
)
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(body, "application/json", LIMIT)
    assert info.value.code == "InvalidJson"


def test_json_nested_100000_deep_is_400_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_body(body, "application/json", LIMIT)


def test_json_nested_past_the_depth_limit_is_400() -> None:
    body = b'{"a":' * 70 + b"1" + b"}" * 70
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_body(body, "application/json", LIMIT)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://127.0.0.1:1/evil.dtd">
<foo>x</foo>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_xml_with_a_dtd_is_refused(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(body, "application/xml", LIMIT)
    assert info.value.code == "InvalidXml"
    assert "DTD" in info.value.message


def test_malformed_xml_is_400() -> None:
    with pytest.raises(BadRequest, match="well-formed"):
        parse_body(b"<a><b></a>", "application/xml", LIMIT)


@pytest.mark.parametrize("declaration", ['encoding="ebcdic"', 'encoding="no-such-codec"', 'encoding="utf-32"'])
def test_xml_declaring_an_unreadable_encoding_is_400(declaration: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(f'<?xml version="1.0" {declaration}?><a>1</a>'.encode(), "application/xml", LIMIT)
    assert info.value.code == "InvalidXml"


def test_xml_declaring_latin1_is_read_as_declared() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>'.encode("latin-1")
    assert parse_body(body, "application/xml", LIMIT) == {"a": "é"}


def test_deep_xml_is_400() -> None:
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_body(b"<a>" * 200 + b"x" + b"</a>" * 200, "application/xml", LIMIT)


@pytest.mark.parametrize("body", [b"name=%FF%FE", b"name=\xff"])
def test_form_with_invalid_utf8_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_body(body, "application/x-www-form-urlencoded", LIMIT)
    assert info.value.code == "InvalidForm"


def test_body_over_the_limit_is_413_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_body(b"{" * 101, "application/json", 100)  # malformed too: size wins


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None, "multipart/form-data; boundary=x"])
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_body(b'{"a": 1}', content_type, LIMIT)


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "identity, gzip", "x-custom"])
def test_a_compressed_body_is_415_naming_identity(coding: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_body(b'{"a": 1}', "application/json", LIMIT, coding)
    assert info.value.code == "UnsupportedContentEncoding"
    assert info.value.headers == {"Accept-Encoding": "identity"}


@pytest.mark.parametrize("coding", [None, "", "identity", " Identity "])
def test_identity_content_encoding_is_the_plain_body(coding: str | None) -> None:
    assert parse_body(b'{"a": 1}', "application/json", LIMIT, coding) == {"a": 1}


def test_non_utf8_charset_is_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_body(b'{"a": 1}', "application/json; charset=latin-1", LIMIT)


def test_media_type_parsing() -> None:
    assert media_type('Application/JSON; Charset="utf-8"') == ("application/json", {"charset": "utf-8"})
    assert media_type(None) == ("", {})


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udfff": 1}', '["a\\udc00\\ud800b"]', '"\\ud83d"', '"\ud800"'])
def test_lone_surrogates_are_400(text: str) -> None:
    from core.kernel.jsonvalue import parse_json

    with pytest.raises(BadRequest, match="surrogate"):
        parse_json(text)


def test_paired_surrogate_escapes_and_escaped_backslashes_are_fine() -> None:
    from core.kernel.jsonvalue import parse_json

    assert parse_json('"\\ud83d\\ude00"') == "\U0001f600"
    assert parse_json('"\\\\ud800"') == "\\ud800"
    assert parse_json('"\\ud800"', allow_lone_surrogates=True) == "\ud800"


def test_dumps_always_writes_utf8_encodable_json() -> None:
    import json

    from core.kernel.jsonvalue import dumps

    value = {"k\ud800": ["\udfff", "é"]}
    text = dumps(value)
    assert text.encode("utf-8") and json.loads(text) == value
    assert dumps({"é": 1}) == '{"é":1}'  # characters as themselves when they can be
