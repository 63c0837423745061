"""Request bodies: size limit, content negotiation and safe parsing of JSON, XML and forms.

IntegrationHub accepts a submitted form or a body with a content type of JSON or XML; the parsed
value becomes the run's ``data[0].Body``. Everything here treats the bytes as hostile: the size is
checked before parsing, XML may not declare a DTD (no entity expansion, no external entities), and
form fields must be UTF-8.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from core.kernel.errors import BadRequest, LengthRequired, PayloadTooLarge, UnsupportedMediaType
from core.kernel.jsonvalue import MAX_DEPTH, parse_json

JSON_TYPES = frozenset({"application/json", "text/json"})
XML_TYPES = frozenset({"application/xml", "text/xml"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})
MAX_FORM_FIELDS = 1000


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; k=v`` into the lower-case media type and its parameters."""
    if not content_type:
        return "", {}
    head, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return head.strip().lower(), params


def is_json_type(mtype: str) -> bool:
    return mtype in JSON_TYPES or (mtype.startswith("application/") and mtype.endswith("+json"))


def is_xml_type(mtype: str) -> bool:
    return mtype in XML_TYPES or (mtype.startswith("application/") and mtype.endswith("+xml"))


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {limit}", "BodyTooLarge")


def refuse_unframed_body(body: bytes, transfer_encoding: str | None, content_length: str | None) -> None:
    """411 for a body sent chunked (``Transfer-Encoding`` without ``Content-Length``) that arrived
    empty: the Functions host forwards a request body only when it has a Content-Length
    (azure-functions-host #4926), so on Azure such a body never reaches the app. Taking the call
    as one without a body would run a process on nothing; the caller must send a Content-Length."""
    if not body and content_length is None and "chunked" in (transfer_encoding or "").lower():
        raise LengthRequired(
            "a body sent with Transfer-Encoding: chunked does not reach Azure Functions; send it with a Content-Length",
            "LengthRequired",
        )


def check_content_encoding(content_encoding: str | None) -> None:
    """Refuse a compressed body (RFC 7694: 415 with ``Accept-Encoding: identity``).

    Neither the Functions host nor Junction decompresses request bodies. Reading gzip bytes as
    JSON would be a confusing 400, and reading a body labelled gzip as plain text would store
    something other than what the caller meant; decompressing here would also let a small body
    expand past ``JUNCTION_MAX_BODY_BYTES``.
    """
    codings = [item.strip().lower() for item in (content_encoding or "").split(",") if item.strip()]
    if any(coding != "identity" for coding in codings):
        error = UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; send the body uncompressed",
            "UnsupportedContentEncoding",
        )
        error.headers["Accept-Encoding"] = "identity"
        raise error


def parse_body(body: bytes, content_type: str | None, limit: int, content_encoding: str | None = None) -> Any:
    """The parsed body of an Accept POST, as the run will see it in ``data[0].Body``."""
    check_size(body, limit)
    check_content_encoding(content_encoding)
    mtype, params = media_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; send UTF-8", "UnsupportedCharset")
    if is_json_type(mtype):
        return parse_json(body)
    if is_xml_type(mtype):
        return parse_xml(body)
    if mtype in FORM_TYPES:
        return parse_form(body)
    raise UnsupportedMediaType(
        "send application/json, application/xml, text/xml or application/x-www-form-urlencoded"
        + (f", not {mtype}" if mtype else " (the Content-Type header is missing)"),
        "UnsupportedContentType",
    )


def parse_form(body: bytes) -> dict[str, Any]:
    """A form as an object: a field sent once is a string, a repeated field a list."""
    return {name: values[0] if len(values) == 1 else values for name, values in parse_form_fields(body).items()}


def parse_form_fields(body: bytes) -> dict[str, list[str]]:
    """A form's fields, each with every value it was sent with, in order."""
    try:
        text = body.decode("ascii")  # a urlencoded form is ASCII; its escapes decode as UTF-8
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, encoding="utf-8",
            errors="strict", max_num_fields=MAX_FORM_FIELDS,
        )  # fmt: skip
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8", "InvalidForm") from None
    except ValueError as exc:
        raise BadRequest(f"the form is not valid: {exc}", "InvalidForm") from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    return fields


class _NoDtdExpat:
    """The ``expat`` module as xmltodict sees it, with document type declarations refused.

    Refusing the DTD outright stops entity expansion (billion laughs), external entities and
    external DTD fetches in one place; integration payloads have no need for a DTD.
    """

    def __init__(self) -> None:
        from xml.parsers import expat  # cold start: with the first XML body

        self._expat = expat
        self.ExpatError = expat.ExpatError

    def ParserCreate(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - expat's name
        parser = self._expat.ParserCreate(*args, **kwargs)

        def refuse(*_args: Any) -> None:
            raise ValueError("XML with a document type declaration (DTD) is not accepted")

        parser.StartDoctypeDeclHandler = refuse
        parser.EntityDeclHandler = refuse
        parser.ExternalEntityRefHandler = refuse
        parser.SetParamEntityParsing(self._expat.XML_PARAM_ENTITY_PARSING_NEVER)
        return parser


def parse_xml(body: bytes) -> Any:
    """XML as an object in xmltodict's convention (attributes as ``@name``, text as ``#text``)."""
    from xml.parsers.expat import ExpatError  # cold start: with the first XML body

    import xmltodict  # cold start: imported on the first XML body; most callers send JSON

    try:
        value = xmltodict.parse(body, expat=_NoDtdExpat(), disable_entities=True)
    except ValueError as exc:
        raise BadRequest(str(exc), "InvalidXml") from None
    except LookupError as exc:  # an encoding declaration naming a codec Python does not have
        raise BadRequest(f"the XML declares an encoding that cannot be read: {exc}; send UTF-8", "InvalidXml") from None
    except ExpatError as exc:
        raise BadRequest(f"the body is not well-formed XML: {exc}", "InvalidXml") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the XML is nested too deeply (at most {MAX_DEPTH} levels)", "InvalidXml")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return value
