"""Storage failures as the code above ``core.store`` names them, and what they mean to a caller.

Only ``core.store`` imports the Azure SDKs (docs/architecture.md, "Layers"). The repositories
still need to tell "not there" from "already taken" from "changed since it was read": those are
the SDK's own exception classes, named here in the repositories' terms, so what is caught is
exactly what the SDK raises while no module outside ``core.store`` names the SDK.

``as_domain_error`` turns the failures a caller can only wait out (throttled, unreachable, busy)
into ``StorageBusy``: 429 or 503 with ``Retry-After`` rather than a 500.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from core.kernel.errors import JunctionError, StorageBusy

EntityMissing = ResourceNotFoundError
"""A read, update or delete of an entity (or a blob) that is not there."""
EntityExists = ResourceExistsError
"""An insert of a key that is taken: the atomic claim that idempotency keys and schedules use."""
EntityChanged = ResourceModifiedError
"""A conditional write (``IF_UNCHANGED``) of an entity changed (or gone) since it was read."""
StorageError = HttpResponseError
"""Any error the storage service answered; ``status_code`` says which (the three above are kinds of it)."""
StorageFailure = AzureError
"""Anything the storage SDK raises, answered or not (a connection that failed)."""


def as_domain_error(exc: BaseException) -> JunctionError | None:
    """The domain error a storage failure means for the caller, or None if it is not one."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StorageBusy("storage is unreachable; try again shortly", throttled=False)
    if isinstance(exc, HttpResponseError) and exc.status_code in (429, 500, 503):
        throttled = exc.status_code == 429
        return StorageBusy(
            "storage is throttling requests; try again shortly" if throttled else "storage is busy; try again shortly",
            throttled=throttled,
        )
    return None
