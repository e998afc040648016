"""Ids made for a bulk write at once are what `ordered_uuid` makes one by one."""

import time
import uuid

from churnsaver.backend.core.ids import ordered_uuid_hexes


def test_a_batch_of_ids_are_distinct_uuid7s_of_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    hexes = ordered_uuid_hexes(10_000)
    after = time.time_ns() // 1_000_000

    ids = [uuid.UUID(text) for text in hexes]
    assert len(set(ids)) == 10_000
    assert [value.hex for value in ids] == hexes  # 32 lowercase hex digits, as SQLite stores them
    assert {(value.version, value.variant) for value in ids} == {(7, uuid.RFC_4122)}
    assert all(before <= value.int >> 80 <= after for value in ids)
    # Every random bit varies: none is stuck by the version and variant being set.
    random_bits = ((1 << 80) - 1) & ~(0xF << 76) & ~(0x3 << 62)
    varying = 0
    for value in ids:
        varying |= (value.int ^ ids[0].int) & random_bits
    assert varying == random_bits


def test_no_ids_for_an_empty_batch():
    assert ordered_uuid_hexes(0) == []
