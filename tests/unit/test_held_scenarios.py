"""The in-memory holders of scenarios stay within their bounds and never answer past their time."""

from __future__ import annotations

from dataclasses import dataclass

from core.scenarios.held import HeldVersions, RecentReads


@dataclass(frozen=True)
class Doc:
    id: str
    etag: str = "e1"
    stored_bytes: int = 100


def test_a_recent_read_is_answered_until_its_time_and_not_after() -> None:
    held: RecentReads[Doc] = RecentReads()
    held.keep(("t", "a"), 10.0, Doc("a"), held.generation())
    assert held.get(("t", "a"), 9.999) == Doc("a")
    assert held.get(("t", "a"), 10.0) is None
    assert held.get(("other table", "a"), 5.0) is None  # another account or prefix holds its own


def test_forget_drops_what_is_held_and_its_bytes() -> None:
    held: RecentReads[Doc] = RecentReads()
    held.keep(("t", "a"), 10.0, Doc("a", stored_bytes=700), held.generation())
    held.keep(("t", "a"), 10.0, Doc("a", stored_bytes=300), held.generation())  # read again: replaced, not counted twice
    assert held.held_bytes() == (1, 300)
    held.forget(("t", "a"))
    assert held.get(("t", "a"), 1.0) is None and held.held_bytes() == (0, 0)


def test_the_least_recently_read_go_first_when_count_or_size_is_full() -> None:
    held: RecentReads[Doc] = RecentReads()
    held.SIZE, held.MAX_BYTES = 3, 1000  # type: ignore[misc]
    for name in "abc":
        held.keep(("t", name), 10.0, Doc(name), held.generation())
    assert held.get(("t", "a"), 1.0) is not None  # a is now the most recently read
    held.keep(("t", "d"), 10.0, Doc("d"), held.generation())
    assert held.get(("t", "b"), 1.0) is None and held.held_bytes() == (3, 300)
    held.keep(("t", "e"), 10.0, Doc("e", stored_bytes=900), held.generation())  # over count, then bytes: c and a go
    assert held.held_bytes() == (2, 1000)
    assert held.get(("t", "c"), 1.0) is None and held.get(("t", "a"), 1.0) is None
    assert held.get(("t", "d"), 1.0) is not None and held.get(("t", "e"), 1.0) is not None


def test_a_read_that_raced_a_write_is_not_held() -> None:
    """A read started before this process wrote the scenario may have the replaced version."""
    held: RecentReads[Doc] = RecentReads()
    generation = held.generation()  # a read starts
    held.forget(("t", "a"))  # this process writes the scenario meanwhile
    held.keep(("t", "a"), 10.0, Doc("a", etag="old"), generation)  # the read ends with the old version
    assert held.get(("t", "a"), 1.0) is None
    held.keep(("t", "a"), 10.0, Doc("a", etag="new"), held.generation())
    assert held.get(("t", "a"), 1.0) == Doc("a", etag="new")


def test_a_document_larger_than_one_mebibyte_is_never_held() -> None:
    held: RecentReads[Doc] = RecentReads()
    held.keep(("t", "big"), 10.0, Doc("big", stored_bytes=RecentReads.MAX_ONE + 1), held.generation())
    assert held.get(("t", "big"), 1.0) is None and held.held_bytes() == (0, 0)


def test_versions_are_held_by_etag_the_last_64() -> None:
    versions: HeldVersions[Doc] = HeldVersions()
    for n in range(65):
        versions.keep(Doc("a", etag=f"e{n}"))
    assert versions.get("a", "e0") is None and versions.get("a", "e64") == Doc("a", etag="e64")
