"""Time-ordered ids: UUIDv7 (RFC 9562), as objects or as the 32 hex digits SQLite stores."""

import os
import time
import uuid


def ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the millisecond first, then random bits (uuid.uuid7 arrives in 3.14).

    Rows written in bulk with time-ordered keys are appended to their indexes instead of landing
    on random pages (docs/performance.md).
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)


# A UUID's 17th hex digit starts with the variant's two bits (RFC 9562: binary 10): a random hex
# digit becomes the one of 8, 9, a, b that keeps its two low bits.
_VARIANT_DIGITS = {digit: "89ab"[int(digit, 16) % 4] for digit in "0123456789abcdef"}


def ordered_uuid_hexes(count: int) -> list[str]:
    """`count` UUIDv7s, like `ordered_uuid`'s, as 32 hex digits: how SQLite stores a UUID, and a
    form PostgreSQL reads. One clock reading and one read of random bytes serve the whole batch,
    cheaper than a `uuid.UUID` made and written out per row (docs/performance.md)."""
    prefix = f"{time.time_ns() // 1_000_000:012x}7"  # the millisecond, then the version
    digits = os.urandom(count * 10).hex()  # 74 random bits per UUID, from 80
    return [
        f"{prefix}{digits[i : i + 3]}{_VARIANT_DIGITS[digits[i + 3]]}{digits[i + 4 : i + 19]}"
        for i in range(0, count * 20, 20)
    ]
