"""The cache algebra: the pure write rules of one VIF row (hotport.store.base)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hotport.store.base import VifRow, put_verdict, tombstone_verdict


def row(revision: int, deleted: bool = False) -> VifRow:
    return VifRow("p", "i", 1, {}, revision, deleted, 0.0, 0.0)


def test_live_writes() -> None:
    assert put_verdict(None, 1) == "applied"
    assert put_verdict(row(5), 4) == "stale"  # never an older revision over a newer one
    assert put_verdict(row(5), 5) == "applied"  # same port state, refreshed details
    assert put_verdict(row(5), 6) == "applied"


def test_a_tombstone_is_the_last_word_on_its_revision() -> None:
    assert put_verdict(row(5, deleted=True), 5) == "stale"
    assert put_verdict(row(5, deleted=True), 4) == "stale"
    assert put_verdict(row(5, deleted=True), 6) == "applied"


def test_tombstones() -> None:
    assert tombstone_verdict(None, 3) == "missing"
    assert tombstone_verdict(row(5), 4) == "stale"
    assert tombstone_verdict(row(5), 5) == "applied"
    assert tombstone_verdict(row(5, deleted=True), 5) == "applied"


def test_compare_and_swap() -> None:
    assert put_verdict(row(5), 7, expect=5) == "applied"
    assert put_verdict(row(6), 7, expect=5) == "conflict"
    assert put_verdict(None, 7, expect=5) == "conflict"
    assert put_verdict(row(5, deleted=True), 7, expect=5, expect_deleted=False) == "conflict"
    assert put_verdict(row(5), 4, expect=5) == "stale"  # CAS passed, the revision rule did not
    assert tombstone_verdict(row(6), 6, expect=5) == "conflict"


ops = st.lists(st.tuples(st.sampled_from(["put", "tombstone"]), st.integers(0, 20)), max_size=40)


@given(ops)
def test_the_recorded_revision_never_goes_back_and_tombstones_stay_buried(
    sequence: list[tuple[str, int]],
) -> None:
    current: VifRow | None = None
    for op, revision in sequence:
        verdict = (put_verdict if op == "put" else tombstone_verdict)(current, revision)
        if verdict != "applied":
            continue
        if current is not None:
            assert revision >= current.revision
            if current.deleted and op == "put":
                assert revision > current.revision  # only a newer state resurrects
        current = row(revision, deleted=(op == "tombstone"))
