"""Pages of table queries as ``{"value": [...], "nextLink": ...}`` lists.

The continuation token Table Storage returns is handed to the caller as an opaque base64url
``skiptoken``. It comes back from outside, so it is decoded strictly: a JSON object of short
strings, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from azure.core.paging import ItemPaged

from core.errors import BadRequest

DEFAULT_TOP = 50
MAX_TOP = 1000


def parse_top(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_TOP
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise BadRequest(f"top must be a whole number from 1 to {MAX_TOP}", "InvalidTop")
    return int(raw)


def decode_skiptoken(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        if len(raw) > 2048:
            raise ValueError("too long")
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) < 1024 for k, v in value.items()
        ):
            raise ValueError("not a token")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("skiptoken is not one Junction issued", "InvalidSkipToken") from None
    return value


def encode_skiptoken(token: dict[str, str] | None) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def page(
    pager: ItemPaged[Any],
    *,
    skiptoken: str | None,
    convert: Callable[[Any], dict[str, Any]],
    link: Callable[[dict[str, str]], str],
) -> dict[str, Any]:
    """One page of ``pager`` (built with ``results_per_page``) as a list response."""
    pages = pager.by_page(continuation_token=decode_skiptoken(skiptoken))
    items: Iterable[Any] = next(pages, [])
    value = [convert(item) for item in items]
    token = encode_skiptoken(pages.continuation_token)  # type: ignore[attr-defined]
    return {"value": value, "nextLink": link({"skiptoken": token}) if token else None}


def next_link(base: str, params: dict[str, str]) -> str:
    return f"{base}?{urlencode(params)}"
