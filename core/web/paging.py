"""Pages of table queries as ``{"value": [...], "nextLink": ...}`` lists.

The continuation token Table Storage returns is handed to the caller as an opaque base64url
``skiptoken``. It comes back from outside, so it is decoded strictly: a JSON object of short
strings, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlencode

from core.kernel.errors import BadRequest


class Pages(Protocol):
    """A table query's results, page by page (what the storage SDK's ``query_entities`` returns)."""

    def by_page(self, continuation_token: Any = None) -> Iterator[Iterator[Any]]: ...


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


# Requests one page may take to fill itself when storage answers with short or empty pages.
MAX_FILL_REQUESTS = 10


def page(
    query: Callable[[int], Pages],
    *,
    top: int,
    skiptoken: str | None,
    convert: Callable[[Any], dict[str, Any]],
    link: Callable[[dict[str, str]], str],
) -> dict[str, Any]:
    """One page of up to ``top`` items as a list response; ``query(n)`` runs the table query
    asking for at most ``n`` items per storage page (``results_per_page``).

    Azure Table Storage may answer with fewer items than asked for, or none at all, and still
    return a continuation token (at partition boundaries, after five seconds of work, or
    1,000 items). A page is filled from further requests, each asking only for the items still
    missing, so the continuation token always points just after the last item returned and the
    page holds ``top`` items unless it is the last one (``nextLink`` null). After
    ``MAX_FILL_REQUESTS`` requests a short page is answered as it is, with its ``nextLink``.
    """
    token: Any = decode_skiptoken(skiptoken)
    items: list[Any] = []
    for _ in range(MAX_FILL_REQUESTS):
        pages = query(top - len(items)).by_page(continuation_token=token)
        items.extend(next(pages, []))
        token = pages.continuation_token  # type: ignore[attr-defined]
        if not token or len(items) >= top:
            break
    value = [convert(item) for item in items]
    encoded = encode_skiptoken(token)
    return {"value": value, "nextLink": link({"skiptoken": encoded}) if encoded else None}


def next_link(base: str, params: dict[str, str]) -> str:
    return f"{base}?{urlencode(params)}"
