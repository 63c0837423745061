"""Domain errors become statuses in one place (triggers/http.py), by their class hierarchy."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from core.identity.users import SignInsBusy, TooManyFailures
from core.kernel import errors
from core.kernel.settings import get_settings
from core.store.limits import EntityTooLarge


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    get_settings.cache_clear()
    return importlib.import_module("triggers.http")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadRequest("x"), 400),
        (errors.Unauthorized("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.MethodNotAllowed("x", ["GET"]), 405),
        (errors.Conflict("x"), 409),
        (errors.LengthRequired("x"), 411),
        (errors.PreconditionFailed("x"), 412),
        (errors.PayloadTooLarge("x"), 413),
        (EntityTooLarge("x"), 413),
        (errors.UnsupportedMediaType("x"), 415),
        (errors.TooManyRequests("x", retry_after=3), 429),
        (TooManyFailures(3), 429),
        (SignInsBusy(), 429),
        (errors.StorageBusy("x", throttled=True), 429),
        (errors.StorageBusy("x", throttled=False), 503),
        (errors.GatewayTimeout("x"), 504),
    ],
)
def test_each_error_has_its_status(http: ModuleType, error: errors.JunctionError, status: int) -> None:
    response = http.error_response(error)
    assert response.status_code == status
    if status in (429, 503):
        assert response.headers["Retry-After"]


def test_the_nearest_ancestor_decides_not_the_order_of_the_mapping(http: ModuleType) -> None:
    """An error with two mapped ancestors means its nearest one (as Starlette's exception handlers
    look an exception up along its MRO); looking the ancestors up in the mapping's order would
    answer 400 for both, since BadRequest comes first there."""

    class GoneAndBad(errors.NotFound, errors.BadRequest):
        pass

    class BadAndGone(errors.BadRequest, errors.NotFound):
        pass

    assert http.error_response(GoneAndBad("x")).status_code == 404
    assert http.error_response(BadAndGone("x")).status_code == 400


def test_an_error_without_a_status_of_its_own_is_a_plain_500(http: ModuleType) -> None:
    class Unmapped(errors.JunctionError):
        pass

    response = http.error_response(Unmapped("x", "Odd"))
    assert response.status_code == 500
    assert response.get_body() == b'{"error":{"code":"Odd","message":"x"}}'
