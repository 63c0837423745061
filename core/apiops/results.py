"""A process result as the HTTP response of an API call, as Frends turns it into one.

``format_result`` says the mapping (docs/api-operations.md, "Responses"): a string is text, an
object with ``HttpStatusCode`` and ``Content`` says its own status, body and headers, anything
else is JSON, or XML when ``Accept`` prefers it. A result that cannot be a response is the
scenario's mistake: a 500 ``InvalidProcessResult``, never the caller's 4xx.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Mapping
from typing import Any

from core.kernel.jsonvalue import dumps
from core.web.bodies import media_type
from core.web.exchange import Reply, error_body

logger = logging.getLogger(__name__)

RESERVED_RESPONSE_HEADERS = frozenset(
    {
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "proxy-connection", "proxy-authenticate", "host", "date", "server", "content-type", "vary",
    }
)  # fmt: skip

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# RFC 9110 5.5 field-value: visible ASCII, with spaces and tabs inside (not at either end). obs-text
# (bytes 0x80-0xFF) is obsolete and would be sent as whatever encoding a server picks: refused too.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?")
_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _q_values(accept: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (accept or "").split(",")[:50]:
        mtype, params = media_type(item)
        if not mtype:
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        out[mtype] = max(out.get(mtype, 0.0), q)
    return out


def prefers_xml(accept: str | None) -> bool:
    """Does ``Accept`` rank application/xml (or text/xml) above JSON? Ties go to JSON."""
    q = _q_values(accept)
    xml = max(q.get("application/xml", 0.0), q.get("text/xml", 0.0))
    json_q = max(q.get("application/json", 0.0), q.get("text/json", 0.0))
    return xml > 0 and xml > json_q


def _xml_name(key: str) -> str:
    prefix = ""
    if key.startswith("@"):
        prefix, key = "@", key[1:]
    elif key == "#text":
        return key
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "_"
    if not _XML_NAME.match(name) or name.lower().startswith("xml"):
        name = "_" + name
    return prefix + name


def _xml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {_xml_name(str(k)): _xml_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [{"Item": _xml_ready(v)} if isinstance(v, list) else _xml_ready(v) for v in value]
    if isinstance(value, str):
        return _XML_BAD_CHARS.sub("", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_xml(value: Any) -> bytes:
    """XML for a process result (xmltodict convention: ``@name`` attributes, ``#text`` text).

    An object with one key whose value is not a list is the document element itself
    (``{"Pet": {...}}`` → ``<Pet>...</Pet>``); anything else is wrapped in ``<Root>``, a list
    as ``<Root><Item>...</Item>...</Root>``.
    """
    import xmltodict  # cold start: with the first XML response

    ready = _xml_ready(value)
    if isinstance(ready, dict) and len(ready) == 1:
        (key, inner), = ready.items()
        document = ready if not key.startswith(("@", "#")) and not isinstance(inner, list) else {"Root": ready}
    elif isinstance(ready, list):
        document = {"Root": {"Item": ready}}
    else:
        document = {"Root": ready}
    return xmltodict.unparse(document, encoding="utf-8").encode("utf-8")


class _Unusable(Exception):
    """The process result cannot be a response; the message says why (safe to show)."""


def _invalid_result(message: str, extra: Mapping[str, str] | None = None) -> Reply:
    logger.error("the process result cannot be a response: %s", message)
    body = dumps(error_body("InvalidProcessResult", message)).encode()
    return Reply(500, body, {"Content-Type": "application/json; charset=utf-8", **(extra or {})})


def _serialise(value: Any, accept: str | None) -> tuple[bytes, str]:
    if prefers_xml(accept):
        return to_xml(value), "application/xml; charset=utf-8"
    return dumps(value).encode("utf-8"), "application/json; charset=utf-8"


def _custom_headers(raw: Any) -> dict[str, str]:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                pairs.append((item.get("Key", item.get("key")), item.get("Value", item.get("value"))))
    elif isinstance(raw, dict):
        pairs.extend(raw.items())
    headers: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise _Unusable(f"HttpHeaders: {str(key)[:60]!r} is not a header name")
        text = value if isinstance(value, str) else dumps(value) if value is not None else ""
        if not _FIELD_VALUE.fullmatch(text):
            raise _Unusable(f"HttpHeaders: the value of {key} holds characters a header cannot carry (only visible ASCII, inner spaces and tabs)")
        lowered = key.lower()
        if lowered in RESERVED_RESPONSE_HEADERS or lowered.startswith("access-control-"):
            logger.warning("dropping response header %s: it is set by Junction, not by processes", key)
            continue
        headers[key] = text
    return headers


def format_result(result: Any, accept_header: str | None, extra_headers: Mapping[str, str] | None = None) -> Reply:
    """A process result as Frends turns it into a response (docs/api-operations.md, "Responses").

    - None → 204; a string → the body, ``text/plain; charset=utf-8``;
    - an object with ``HttpStatusCode`` and ``Content`` → status, body, ``ContentType``,
      ``ContentEncoding`` (a charset), ``HttpHeaders`` (``[{Key, Value}]``);
    - any other value → JSON, or XML when ``Accept`` prefers application/xml.

    ``extra_headers`` (CORS) are added last. A result that cannot be a response (status
    outside 200-599, an encoding that is no charset, a header value with control characters,
    text that is not Unicode) is a 500 with code InvalidProcessResult: it is the scenario's
    mistake, not the caller's. That holds for every failure while turning the result into a
    response, not only the ones foreseen here.
    """
    extra = dict(extra_headers or {})
    try:
        if isinstance(result, dict) and "HttpStatusCode" in result and "Content" in result:
            return _mapped(result, accept_header, extra)
        if result is None:
            return Reply(204, b"", extra)
        if isinstance(result, str):
            return Reply(200, _utf8(result, "the result"), {"Content-Type": "text/plain; charset=utf-8", **extra})
        body, ctype = _serialise(result, accept_header)
        return Reply(200, body, {"Content-Type": ctype, **extra})
    except _Unusable as exc:
        return _invalid_result(str(exc), extra)
    except Exception as exc:  # noqa: BLE001 - anything else about the result is unusable too
        logger.exception("the process result could not be turned into a response")
        return _invalid_result(f"the result cannot be a response ({type(exc).__name__})", extra)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unusable(f"{what} holds a lone surrogate, which is not a Unicode character") from None


def _status(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        # 1xx are interim responses and cannot end a call.
        raise _Unusable(f"HttpStatusCode must be a whole number from 200 to 599, got {str(value)[:20]!r}")
    return value


def _charset(value: Any) -> tuple[str, str]:
    """``(name as sent in the header, Python codec)`` of ContentEncoding: a text charset only."""
    name = str(value)
    try:
        info = codecs.lookup(name) if _CHARSET.fullmatch(name) else None
    except LookupError:
        info = None
    if info is None or not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise _Unusable(f"ContentEncoding {name[:40]!r} is not a character encoding (such as utf-8 or iso-8859-1)")
    return name, info.name


def _mapped(result: Mapping[str, Any], accept: str | None, extra: dict[str, str]) -> Reply:
    status = _status(result.get("HttpStatusCode"))
    charset, codec = _charset(result.get("ContentEncoding") or "utf-8")
    content = result.get("Content")
    content_type = result.get("ContentType")
    if content_type is not None and (not isinstance(content_type, str) or not _FIELD_VALUE.fullmatch(content_type)):
        raise _Unusable("ContentType must be a single-line string of visible ASCII")
    if isinstance(content, str):
        try:
            body = content.encode(codec)
        except UnicodeEncodeError:
            raise _Unusable(f"Content cannot be encoded as {codec}") from None
        ctype = content_type or "text/plain"
    elif content is None:
        body, ctype = b"", content_type or ""
    else:
        body, default_type = _serialise(content, accept if not content_type else ("application/xml" if "xml" in content_type else "application/json"))
        ctype = content_type or default_type
    if ctype and "charset=" not in ctype.lower() and (ctype.startswith("text/") or "json" in ctype or "xml" in ctype) and body:
        ctype = f"{ctype}; charset={charset}"
    headers = _custom_headers(result.get("HttpHeaders"))
    if ctype:
        headers["Content-Type"] = ctype
    if status in (204, 304):
        body = b""
        headers.pop("Content-Type", None)
    headers.update(extra)
    return Reply(status, body, headers)
