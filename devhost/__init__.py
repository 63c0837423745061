"""devhost: the local stand-in for the Azure Functions host (docs/devhost.md).

It serves a Python v2 ``FunctionApp`` the way ``func start`` would: HTTP triggers with ASP.NET-style
routing over uvicorn, queue triggers polled from Azure Storage (Azurite), timer triggers on their
NCRONTAB schedule. It only uses ``azure.functions`` and the app's registrations; it never imports
the app's own packages. ``python -m devhost --help`` lists the options; docs/devhost.md explains
the behaviour and where it differs from Azure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["main", "serve"]

if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (imported lazily so ``devhost.azurite`` stays light for tests)."""
    from devhost.server import main as _main

    return _main(argv)


def serve(*args: Any, **kwargs: Any) -> int:
    """See :func:`devhost.server.serve`."""
    from devhost.server import serve as _serve

    return _serve(*args, **kwargs)
