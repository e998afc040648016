"""The edge's one definition of acceptable JSON and timestamps."""

import json
from datetime import UTC, datetime

import pytest

from churnsaver.backend.core.accepted_json import (
    MAX_DEPTH,
    UnacceptableInput,
    check_json_value,
    loads_accepted,
    loads_unchecked,
    parse_timestamp,
    parse_unix_timestamp,
)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('{"properties":{"note":"\\ud800"}}', "properties.note", "lone surrogate"),
        ('{"traits":{"plan":"\\u0000"}}', "traits.plan", "NUL"),
        ('{"v":1e400}', "v", "finite"),
        ('{"a":[1,{"b":-1e999}]}', "a[1].b", "finite"),
        ('{"\\ud800":1}', "\\ud800", "lone surrogate"),
        ('{"a":NaN}', "", "NaN is not JSON"),
        ('{"a":Infinity}', "", "Infinity is not JSON"),
        ('{"a":' + "1" * 400 + "}", "a", "double's range"),
        ("{\"a\": 'x'}", "", "malformed JSON"),
    ],
)
def test_refusals_name_the_field_and_the_reason(text: str, field: str, reason: str) -> None:
    with pytest.raises(UnacceptableInput) as refusal:
        loads_accepted(text.encode())
    assert refusal.value.field == field
    assert reason in refusal.value.reason


def test_a_field_prefix_is_carried_into_the_path() -> None:
    with pytest.raises(UnacceptableInput) as refusal:
        loads_accepted(b'{"a":"\\u0000"}', "batch[2]")
    assert refusal.value.field == "batch[2].a"
    assert str(refusal.value).startswith("batch[2].a: ")


def test_nesting_is_limited_without_a_recursion_error() -> None:
    for depth in (MAX_DEPTH + 1, 100_000):
        text = "[" * depth + "]" * depth
        with pytest.raises(UnacceptableInput, match="nested deeper"):
            loads_accepted(text)
    deep = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(UnacceptableInput, match="nested deeper"):
        check_json_value(deep)


def test_acceptable_values_read_back_unchanged() -> None:
    value = {"a": [1, 2.5, "é", None, True, {"b": "x" * 10}], "big": 10**30, "nested": [[[]]]}
    assert loads_accepted(json.dumps(value)) == {**value, "big": float(10**30)}
    edge = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_accepted(edge) == json.loads(edge)
    # Many sibling containers are not depth: the fast check falls back to the walk, which accepts.
    wide = json.dumps({"items": [{"k": [i]} for i in range(200)]})
    assert loads_accepted(wide) == json.loads(wide)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_timestamps_outside_years_1_to_9999_in_utc_are_refused(value: str) -> None:
    with pytest.raises(UnacceptableInput, match="outside years 1 to 9999") as refusal:
        parse_timestamp(value, "timestamp")
    assert refusal.value.field == "timestamp"


def test_timestamps_are_utc_and_need_a_zone_unless_told() -> None:
    assert parse_timestamp("2026-01-02T03:04:05+02:00", "t") == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    with pytest.raises(UnacceptableInput, match="needs a timezone"):
        parse_timestamp("2026-01-02T03:04:05", "t")
    assert parse_timestamp("2026-01-02", "t", naive_is_utc=True) == datetime(2026, 1, 2, tzinfo=UTC)
    for bad in (1700000000, "yesterday", "2026-01-02\x00"):
        with pytest.raises(UnacceptableInput):
            parse_timestamp(bad, "t")


@pytest.mark.parametrize(
    ("text", "field"),
    [('{"a":{"\\ud800":1}}', "a.\\ud800"), ('{"\\u0000k":"\\u0000"}', "\\u0000k"), ('{"é\\udfff":[]}', "é\\udfff")],
)
def test_a_refusal_names_a_key_no_store_can_hold_by_its_escape(text: str, field: str) -> None:
    with pytest.raises(UnacceptableInput) as refusal:
        loads_accepted(text)

    assert refusal.value.field == field
    str(refusal.value).encode("utf-8")  # a refusal can itself be sent and stored
    assert "\x00" not in str(refusal.value)


def test_unix_timestamps_are_utc_within_years_1_to_9999() -> None:
    assert parse_unix_timestamp(1_700_000_000, "created") == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert parse_unix_timestamp(0.5, "t") == datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    for bad in (10**30, -(10**12), 1e300, float("nan"), 253402300800):
        with pytest.raises(UnacceptableInput, match="outside years 1 to 9999") as refusal:
            parse_unix_timestamp(bad, "created")
        assert refusal.value.field == "created"
    for bad in (True, "1700000000", None):
        with pytest.raises(UnacceptableInput, match="Unix timestamp"):
            parse_unix_timestamp(bad, "created")


def test_an_unchecked_load_says_whether_the_value_still_needs_the_check() -> None:
    assert loads_unchecked(b'{"a": [1, "x"]}') == ({"a": [1, "x"]}, True)
    assert loads_unchecked(b'{"a": "\\u0000"}') == ({"a": "\x00"}, False)
    value, acceptable = loads_unchecked(b'{"a": 1e400}')
    assert value == {"a": float("inf")} and not acceptable
    with pytest.raises(UnacceptableInput, match="malformed JSON"):
        loads_unchecked(b'{"a": ')
    many = json.dumps([{"k": [i]} for i in range(100)] + ["{" * 100])
    assert loads_unchecked(many)[1]
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert not loads_unchecked(deep)[1]
    assert loads_unchecked(json.dumps("[" * 100)) == ("[" * 100, True)
