"""Bulk ids for appended scores are UUIDv7s like `db.ordered_uuid`'s."""

import time
import uuid

from churnsaver.backend.risk.score_store import ordered_ids


def test_ordered_ids_are_distinct_version_7_uuids_of_this_millisecond():
    before = time.time_ns() // 1_000_000
    ids = [uuid.UUID(hex=value) for value in ordered_ids(1000)]
    after = time.time_ns() // 1_000_000

    assert len(set(ids)) == 1000
    assert {(value.version, value.variant) for value in ids} == {(7, uuid.RFC_4122)}
    assert all(before <= value.int >> 80 <= after for value in ids)
    assert ordered_ids(0) == []
