"""Fixtures shared by every test layer.

Azurite is started once per test session on free ports in a temporary folder, so the tests never
touch a developer's own emulator data and can run beside ``make run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from tests.support.azure_limits import assert_stored_within_limits
from tests.support.upstream import Upstream


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """The session's Azurite. When the session ends, every entity any test wrote is read back
    and measured as Azure measures it: one that Azure Table Storage would have refused (Azurite
    is more lenient) fails the run (tests/support/azure_limits.py)."""
    folder: Path = tmp_path_factory.mktemp("azurite")
    with Azurite(folder / "data", log_path=folder / "azurite.log") as emulator:
        yield emulator
        assert_stored_within_limits(emulator.connection_string)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A local HTTP server that processes call out to (shared by the tests of one module)."""
    server = Upstream().start()
    yield server
    server.stop()
