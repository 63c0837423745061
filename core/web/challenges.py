"""``WWW-Authenticate``: the one builder of the challenges Junction answers 401 and 403 with.

``Bearer`` follows RFC 6750: ``realm``, the ``scope`` an operation needs, and for a refused
token the ``error`` code (``invalid_request``, ``invalid_token``, ``insufficient_scope``) with a
description. ``Basic`` follows RFC 7617, asking for UTF-8. A description is a quoted string, so
its quotes and backslashes are replaced rather than left to end or escape it.
"""

from __future__ import annotations

from collections.abc import Sequence

REALM = "junction"


def bearer(*, scopes: Sequence[str] = (), error: str | None = None, description: str | None = None) -> str:
    parts = [f'Bearer realm="{REALM}"']
    if scopes:
        parts.append(f'scope="{" ".join(scopes)}"')
    if error:
        parts.append(f'error="{error}"')
        if description:
            parts.append('error_description="' + description.replace('"', "'").replace("\\", "/") + '"')
    return ", ".join(parts)


def basic() -> str:
    return f'Basic realm="{REALM}", charset="UTF-8"'
