"""Load, bounded: the checks of ``make load`` (bench/load.py) on fewer requests, under ``make test``.

16 clients with their own keep-alive connections send 300 Accepts (POST, 1 KiB JSON); every one
must be a 200 with a fresh ``X-Run-Id``, and afterwards every run must be recorded, succeed on its
first attempt and have made its one cache write, with nothing left in the queues.
"""

from __future__ import annotations

from bench.load import LOAD_PROCESS, check_exactly_once, hammer, wait_until_settled
from tests.e2e.conftest import Junction

REQUESTS = 300


def test_accepts_under_load_are_all_recorded_and_executed_once(reliable: Junction) -> None:
    scenario = reliable.create_scenario(
        name="load", externalTriggers={"enabled": True, "allowAnonymous": True}, process=LOAD_PROCESS
    )
    result = hammer(f"{reliable.url}/ExternalData/Accept/{scenario['id']}", REQUESTS, timeout=30)
    assert len(result.outcomes) == REQUESTS
    book = wait_until_settled(reliable.storage, scenario["id"], REQUESTS, timeout=120)
    assert check_exactly_once(result, book) == []
    assert len(book.runs) == REQUESTS and book.statuses() == {"succeeded": REQUESTS}
