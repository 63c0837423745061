"""Strict JSON for bytes from outside, and the canonical form used for cache keys.

Python's json module accepts things an attacker can use: NaN/Infinity (not JSON), duplicate
keys (two parsers may disagree on which wins), numbers too big for a float (they become
infinity), nesting deep enough to exhaust the stack later on, and ``"\\ud800"``: an escaped lone
surrogate, which is no Unicode character, so the string can never be written as UTF-8 (to a
response, a queue message or storage). Every JSON value Junction accepts from a caller goes
through ``parse_json``, which refuses all of these.

``dumps`` is the other side: whatever a value holds (a lone surrogate stored by an older version,
or made by a JMESPath literal), it writes JSON text that encodes as UTF-8, so no listing or read
can fail on a value that is already stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from core.kernel.errors import BadRequest

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _finite_float(text: str) -> float:
    # ``1e999`` parses to inf, which no JSON writer (the queue message, the run record) accepts.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:32]} is out of range")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_float=_finite_float)


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def has_lone_surrogate(value: Any) -> bool:
    """Does any string or key in ``value`` hold a surrogate code point (never valid Unicode)?"""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(text: str | bytes, *, what: str = "body", code: str = "InvalidJson", allow_lone_surrogates: bool = False) -> Any:
    """Parse caller-supplied JSON strictly; raise BadRequest naming ``what`` on any problem.

    ``allow_lone_surrogates`` is for reading back what Junction stored itself, never for input.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"the {what} is not valid UTF-8", code) from None
    text = text.removeprefix("\ufeff")
    try:
        value, end = _DECODER.raw_decode(text, _skip_ws(text, 0))
        if _skip_ws(text, end) != len(text):
            raise ValueError("extra data after the JSON value")
    except RecursionError:
        raise BadRequest(f"the {what} is nested too deeply (at most {MAX_DEPTH} levels)", code) from None
    except ValueError as exc:
        raise BadRequest(f"the {what} is not valid JSON: {exc}", code) from None
    if not _depth_ok(value, MAX_DEPTH):
        raise BadRequest(f"the {what} is nested too deeply (at most {MAX_DEPTH} levels)", code)
    # Python's decoder turns a paired escape into one character; what is left is a lone half.
    # Only text with a surrogate escape (or a raw surrogate in a str) needs the walk.
    suspect = _SURROGATE_ESCAPE.search(text) or (not text.isascii() and _SURROGATE.search(text))
    if suspect and not allow_lone_surrogates and has_lone_surrogate(value):
        raise BadRequest(
            f"the {what} is not valid: a string holds a lone surrogate (such as \\ud800), which is not a Unicode character",
            code,
        )
    return value


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def canonical(value: Any) -> str:
    """One spelling per value: sorted keys, no insignificant white space, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON for responses and storage, always encodable as UTF-8.

    Characters are written as themselves, except when a string holds a lone surrogate: then the
    whole text is written with ``\\u`` escapes (valid JSON that reads back as the same value)
    rather than failing the response or the write.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not text.isascii() and _SURROGATE.search(text):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text
