"""The seen-signature store and signed links on Azurite: replays at the window's edges, races,
removal of expired entries, and the link key made once and shared."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from core.identity import links, replays
from core.identity.signatures import Verified
from core.kernel.errors import Gone, NotFound
from core.kernel.ids import new_id
from core.store import tables
from core.store.storage import Storage

NOW = 1_800_000_000.0


def seen(digest: str = "ab" * 32, until: float = NOW + 300) -> Verified:
    return Verified("stripe", digest, until)


def test_a_signature_is_a_replay_up_to_and_at_the_end_of_its_window(storage: Storage) -> None:
    scope = new_id()
    replays.claim(storage, scope, seen(), NOW)
    for moment in (NOW, NOW + 1, NOW + 299.999, NOW + 300):  # the last instant of the window included
        with pytest.raises(replays.Replayed):
            replays.claim(storage, scope, seen(), moment)


def test_after_its_window_the_entry_is_taken_over_once(storage: Storage) -> None:
    scope = new_id()
    replays.claim(storage, scope, seen(until=NOW + 300), NOW)
    later = NOW + 300.001
    replays.claim(storage, scope, seen(until=later + 300), later)  # an untimestamped scheme's next use
    with pytest.raises(replays.Replayed):
        replays.claim(storage, scope, seen(until=later + 300), later + 1)


def test_scopes_and_digests_are_separate(storage: Storage) -> None:
    scope, other = new_id(), new_id()
    replays.claim(storage, scope, seen("aa" * 32), NOW)
    replays.claim(storage, scope, seen("bb" * 32), NOW)
    replays.claim(storage, other, seen("aa" * 32), NOW)
    replays.claim(storage, scope, Verified("github", "aa" * 32, NOW + 300), NOW)  # another scheme


def test_of_concurrent_identical_requests_exactly_one_gets_in(storage: Storage) -> None:
    scope = new_id()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            replays.claim(storage, scope, seen(), NOW)
            outcomes.append("in")
        except replays.Replayed:
            outcomes.append("replayed")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["in"] + ["replayed"] * 7


def test_a_released_claim_may_be_used_again(storage: Storage) -> None:
    scope = new_id()
    replays.claim(storage, scope, seen(), NOW)
    replays.release(storage, scope, seen())
    replays.claim(storage, scope, seen(), NOW)


def test_remove_expired_removes_only_entries_past_their_window(storage: Storage) -> None:
    scope = new_id()
    replays.claim(storage, scope, seen("01" * 32, until=NOW - 10), NOW - 300)
    replays.claim(storage, scope, seen("02" * 32, until=NOW + 10), NOW)
    assert replays.remove_expired(storage, scope, datetime.fromtimestamp(NOW, UTC)) == 1
    left = list(storage.table(tables.SIGNATURES).query_entities("PartitionKey eq @pk", parameters={"pk": scope}))
    assert len(left) == 1 and left[0]["ExpiresAt"] > "2027"


def test_links_open_until_they_expire_and_not_when_altered(storage: Storage) -> None:
    token = links.sign(storage, "run-status", {"s": "a", "r": "b"}, NOW + 60)
    assert links.open_token(storage, "run-status", token, NOW + 60) == {"s": "a", "r": "b", "exp": int(NOW + 60)}
    with pytest.raises(Gone):
        links.open_token(storage, "run-status", token, NOW + 61)
    with pytest.raises(NotFound):
        links.open_token(storage, "another-purpose", token, NOW)
    payload, mac = token.split(".")
    for bad in (payload + "." + mac[::-1], payload[:-1] + "." + mac, token + "=", "", "." * 2, "é." + mac):
        with pytest.raises(NotFound):
            links.open_token(storage, "run-status", bad, NOW)


def test_the_link_key_is_made_once_and_read_by_every_instance(storage: Storage) -> None:
    links.forget_keys()
    first = links.link_key(storage)
    links.forget_keys()  # another instance: it reads the key the first one stored
    assert links.link_key(storage) == first and len(first) == 32
    token = links.sign(storage, "run-status", {"r": 1}, time.time() + 60)
    links.forget_keys()
    assert links.open_token(storage, "run-status", token, time.time())["r"] == 1


def test_the_daily_retention_removes_seen_signatures_past_their_window(storage: Storage) -> None:
    from core.runs.retention import remove_old_runs
    from core.scenarios.repository import create_scenario

    scenario = create_scenario(storage, {"name": "signed", "process": {"steps": []}})
    now = time.time()
    replays.claim(storage, scenario.id, seen("0a" * 32, until=now - 1), now - 301)  # its window is over
    replays.claim(storage, scenario.id, seen("0b" * 32, until=now + 300), now)  # still in its window
    remove_old_runs(storage, 30)
    left = [e["RowKey"] for e in storage.table(tables.SIGNATURES).query_entities("PartitionKey eq @pk", parameters={"pk": scenario.id})]
    assert len(left) == 1
    with pytest.raises(replays.Replayed):  # the live one still refuses its replay
        replays.claim(storage, scenario.id, seen("0b" * 32, until=now + 300), now)
