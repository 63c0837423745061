"""Strict JSON for bytes from outside, and the canonical form used for cache keys.

Python's json module accepts things an attacker can use: NaN/Infinity (not JSON), duplicate
keys (two parsers may disagree on which wins), numbers too big for a float (they become
infinity), and nesting deep enough to exhaust the stack later on. Every JSON value Junction accepts from a caller goes through ``parse_json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from core.errors import BadRequest

MAX_DEPTH = 64


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


def parse_json(text: str | bytes, *, what: str = "body", code: str = "InvalidJson") -> Any:
    """Parse caller-supplied JSON strictly; raise BadRequest naming ``what`` on any problem."""
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
    return value


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def canonical(value: Any) -> str:
    """One spelling per value: sorted keys, no insignificant white space, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON for responses and storage."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
