"""Reliability tests: faults, concurrency and load against the real app (devhost + Azurite).

``reliable`` is one devhost with its queue worker on the session Azurite, under its own table
prefix, shared by the concurrency and bounded-load tests. The fault tests start their own Azurite
and devhost (tests/reliability/test_faults.py) because they stop and restart them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.identity.tokens import create_token
from core.kernel.settings import load_settings
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess
from tests.e2e.conftest import ROOT, Junction


@pytest.fixture(scope="session")
def reliable(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    env = {"AzureWebJobsStorage": azurite.connection_string, "JUNCTION_TABLE_PREFIX": "rel"}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    token = create_token(storage, name="reliability admin", scopes=["admin"]).token
    log = tmp_path_factory.mktemp("reliability") / "devhost.log"
    with DevhostProcess(ROOT, free_port(), env=env, log_path=log) as server:
        yield Junction(server.base_url, settings, storage, token, env)
        assert "Traceback" not in server.log_text(), server.log_tail()
