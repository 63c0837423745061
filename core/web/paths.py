"""Request paths as segments: the one reading of a path that routes and API-key rulesets share.

Paths are split on "/" *before* percent-decoding, so an encoded slash (``%2F``) stays inside
its segment and never creates a new one. ``.``/``..`` segments (raw or decoded), NUL and
invalid UTF-8 are refused; one trailing slash is ignored (``/api/pet/`` is ``/api/pet``); an
empty segment in the middle (``//``) is kept, and matches nothing. Both the route table
(``core.apiops.routes``) and API keys' rulesets (``core.identity.apikeys``) match these segments,
so a path cannot mean one thing to a ruleset and another to the route it reaches.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from core.kernel.errors import BadRequest

METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
MAX_PATH_LENGTH = 4096
MAX_SEGMENTS = 64
MAX_SEGMENT_LENGTH = 1024


def split_path(raw_path: str) -> list[str]:
    """The decoded segments of a raw (still percent-encoded) request path.

    Raises BadRequest for what no route may ever see: dot segments, NUL, invalid UTF-8, a path
    that does not start with "/" or is absurdly long.
    """
    if not raw_path.startswith("/") or len(raw_path) > MAX_PATH_LENGTH:
        raise BadRequest("the request path is not valid", "InvalidPath")
    raw = raw_path[1:].split("/")
    if len(raw) > 1 and raw[-1] == "":
        raw.pop()  # one trailing slash is ignored
    if len(raw) > MAX_SEGMENTS:
        raise BadRequest("the request path has too many segments", "InvalidPath")
    segments: list[str] = []
    for part in raw:
        try:
            decoded = unquote_to_bytes(part).decode("utf-8") if "%" in part else part
        except UnicodeDecodeError:
            raise BadRequest("the request path is not valid UTF-8", "InvalidPath") from None
        if decoded in (".", "..") or part in (".", "..") or "\x00" in decoded:
            raise BadRequest("the request path may not contain '.', '..' or NUL segments", "InvalidPath")
        if len(decoded) > MAX_SEGMENT_LENGTH:
            raise BadRequest(f"a segment of the request path is longer than {MAX_SEGMENT_LENGTH} characters", "InvalidPath")
        segments.append(decoded)
    return segments


def normalised_path(raw_path: str) -> str:
    """The request path as API key rulesets see it: decoded segments joined by "/"."""
    return "/" + "/".join(split_path(raw_path))
