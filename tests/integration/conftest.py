"""Core against a real Azurite: each test gets its own table prefix, so tests never share data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from core.kernel.settings import Settings, load_settings
from core.store.storage import Storage
from devhost.azurite import Azurite


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    prefix = "t" + secrets.token_hex(6)
    return load_settings({"AzureWebJobsStorage": azurite.connection_string, "JUNCTION_TABLE_PREFIX": prefix})


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    yield Storage.from_settings(settings)
