"""Domain errors.

Core code raises these; the HTTP status each one means is decided in exactly one place,
``triggers/http.py``, by the error's class hierarchy (docs/architecture.md, "Errors"). Every
error carries a stable ``code`` (for clients to branch on) and a message that is safe to show to
the caller: it never contains secrets or stack traces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self


class JunctionError(Exception):
    """Base class: an expected failure that becomes a JSON error response."""

    default_code = "Error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        # Headers the response must carry besides those its status implies (CORS, a challenge,
        # ``Accept-Encoding`` on a 415 for a compressed body).
        self.headers: dict[str, str] = {}

    def with_headers(self, headers: Mapping[str, str]) -> Self:
        """This error with ``headers`` added; a header it already carries wins."""
        self.headers = {**headers, **self.headers}
        return self


class BadRequest(JunctionError):
    default_code = "BadRequest"


class Unauthorized(JunctionError):
    """Missing or invalid credentials.

    ``error`` is the RFC 6750 error code for the ``WWW-Authenticate`` challenge
    (``invalid_request`` or ``invalid_token``); None means "no credentials were sent".
    """

    default_code = "Unauthorized"

    def __init__(self, message: str, code: str | None = None, *, error: str | None = None) -> None:
        super().__init__(message, code)
        self.error = error


class Forbidden(JunctionError):
    """Valid credentials without permission. ``error`` is e.g. RFC 6750 ``insufficient_scope``."""

    default_code = "Forbidden"

    def __init__(self, message: str, code: str | None = None, *, error: str | None = None) -> None:
        super().__init__(message, code)
        self.error = error


class NotFound(JunctionError):
    default_code = "NotFound"


class MethodNotAllowed(JunctionError):
    default_code = "MethodNotAllowed"

    def __init__(self, message: str, allow: list[str], code: str | None = None) -> None:
        super().__init__(message, code)
        self.allow = allow


class Conflict(JunctionError):
    default_code = "Conflict"


class Gone(JunctionError):
    """Something that existed and no longer answers (an expired signed link)."""

    default_code = "Gone"


class PreconditionFailed(JunctionError):
    default_code = "PreconditionFailed"


class PayloadTooLarge(JunctionError):
    default_code = "PayloadTooLarge"


class LengthRequired(JunctionError):
    default_code = "LengthRequired"


class UnsupportedMediaType(JunctionError):
    default_code = "UnsupportedMediaType"


class GatewayTimeout(JunctionError):
    """The work the caller waits for did not finish within its deadline (core/kernel/deadline.py)."""

    default_code = "ProcessTimedOut"


class TooManyRequests(JunctionError):
    """The caller is throttled (e.g. repeated failed sign-ins); retry after ``retry_after`` s."""

    default_code = "TooManyRequests"

    def __init__(self, message: str, code: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class ServiceUnavailable(JunctionError):
    """Junction refuses new work for now (the run queue is deeper than its bound); 503 with
    ``Retry-After``."""

    default_code = "ServiceUnavailable"

    def __init__(self, message: str, code: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class StorageBusy(JunctionError):
    """Storage throttled (429) or unreachable (503); the caller should retry after ``retry_after`` s."""

    default_code = "StorageUnavailable"

    def __init__(self, message: str, *, throttled: bool, retry_after: int = 5) -> None:
        super().__init__(message, "StorageThrottled" if throttled else "StorageUnavailable")
        self.throttled = throttled
        self.retry_after = retry_after


class ConfigurationError(Exception):
    """A setting is missing or malformed. Raised at start-up; names the setting."""
