"""Fixtures shared by every test layer.

Azurite is started once per test session on free ports in a temporary folder, so the tests never
touch a developer's own emulator data and can run beside ``make run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder: Path = tmp_path_factory.mktemp("azurite")
    with Azurite(folder / "data", log_path=folder / "azurite.log") as emulator:
        yield emulator
