"""What the service accepts at its edge: JSON values and timestamps that every store can hold.

One definition serves the events API, the webhook receivers, the imports and GraphQL inputs, so
that whatever is acknowledged can be stored and processed on SQLite and on PostgreSQL alike:

- strings (values and keys) hold no lone surrogate, which neither UTF-8 nor a store can encode,
  and no NUL, which PostgreSQL text and jsonb refuse;
- numbers are finite doubles: `1e400` (infinity to Python's json) and integers beyond a double's
  range are refused; larger-than-64-bit integers within it are read as both stores read them;
- containers nest at most MAX_DEPTH deep;
- timestamps carry a timezone (or are Unix seconds) and fall within years 1 to 9999 once
  converted to UTC.

A refusal is an `UnacceptableInput` (a ValueError) naming the field, for a 4xx.
"""

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_DEPTH = 64
_LARGEST_DOUBLE_INTEGER = int(1.7976931348623157e308)


class UnacceptableInput(ValueError):
    """A value the edge refuses; `field` is where it sits (e.g. `batch[3].properties.note`)."""

    def __init__(self, field: str, reason: str) -> None:
        # A key may hold what is refused: named by its escapes, the refusal can be sent and stored.
        self.field = field.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
        self.reason = reason
        super().__init__(f"{self.field}: {reason}" if field else reason)


def check_text(value: str, field: str) -> None:
    """Refuse a string no store can hold: a lone surrogate or a NUL."""
    if "\x00" in value:
        raise UnacceptableInput(field, "NUL characters (\\u0000) are not accepted")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnacceptableInput(field, "lone surrogates (e.g. \\ud800) are not accepted") from None


def check_json_value(value: Any, field: str = "") -> None:
    """Refuse a decoded JSON value holding anything the stores cannot take (see the module)."""
    # Iterative: the depth a hostile value reaches must not be Python's recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        node, path, depth = stack.pop()
        kind = type(node)
        if kind is str:
            check_text(node, path)
        elif kind is dict or kind is list:
            if depth >= MAX_DEPTH:
                raise UnacceptableInput(path, f"nested deeper than {MAX_DEPTH} levels")
            if kind is dict:
                for key, item in node.items():
                    key_path = f"{path}.{key}" if path else str(key)
                    if type(key) is str:
                        check_text(key, key_path)
                    stack.append((item, key_path, depth + 1))
            else:
                stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(node))
        elif kind is float:
            if not math.isfinite(node):
                raise UnacceptableInput(path, "numbers must be finite and within a double's range")
        elif kind is int and not -_LARGEST_DOUBLE_INTEGER <= node <= _LARGEST_DOUBLE_INTEGER:
            raise UnacceptableInput(path, "numbers must be within a double's range")


def loads_accepted(data: bytes | str, field: str = "") -> Any:
    """Decode JSON text and check it as `check_json_value` does; UnacceptableInput says why not."""
    value, acceptable = loads_unchecked(data, field)
    if not acceptable:
        check_json_value(value, field)
    return value


def loads_unchecked(data: bytes | str, field: str = "") -> tuple[Any, bool]:
    """Decode JSON text, refusing only what is not JSON at all (malformed, NaN, not UTF-8): the
    value, and whether it is known to be acceptable already. When it is not, `check_json_value`
    decides, on the whole value or on each part accepted on its own (an events-API item).

    orjson decodes the usual body and already refuses lone surrogates, infinities and NaN; what
    remains (NUL escapes, depth) is known absent from the text when it plainly is. Anything else
    goes through Python's json, whose value is then left to the full check. Depth is measured on
    the value only when the text holds more containers than the limit."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads_stdlib(data, field), False
    raw = data.encode() if isinstance(data, str) else data
    # A backslash is found by memchr, the escape itself by a slower search: most bodies have none.
    if b"\\" in raw and b"\\u0000" in raw:
        return value, False
    return value, raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH or _nests_within(value, MAX_DEPTH)


def _nests_within(value: Any, limit: int) -> bool:
    """Whether `value`'s containers nest at most `limit` deep; only containers are visited."""
    stack = [(value, 0)] if type(value) is dict or type(value) is list else []
    while stack:
        node, depth = stack.pop()
        if depth >= limit:
            return False
        for item in node.values() if type(node) is dict else node:
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1))
    return True


def _loads_stdlib(data: bytes | str, field: str) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except UnacceptableInput as refusal:
        raise UnacceptableInput(field, refusal.reason) from None
    except json.JSONDecodeError as error:
        raise UnacceptableInput(
            field, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except UnicodeDecodeError:
        raise UnacceptableInput(field, "the body is not UTF-8") from None
    except RecursionError:
        raise UnacceptableInput(field, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # json's own refusals, e.g. an integer with too many digits
        raise UnacceptableInput(field, str(error)) from None


def _refuse_constant(name: str) -> None:
    raise UnacceptableInput("", f"{name} is not JSON")


def parse_unix_timestamp(value: Any, field: str) -> datetime:
    """Unix seconds (an integer or a finite number) as an aware UTC datetime within years 1 to 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnacceptableInput(field, "must be a Unix timestamp (seconds)")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        raise UnacceptableInput(field, f"{value!r} falls outside years 1 to 9999") from None


def parse_timestamp(value: Any, field: str, *, naive_is_utc: bool = False) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime within years 1 to 9999 after conversion."""
    if not isinstance(value, str):
        raise UnacceptableInput(field, "must be an ISO 8601 string")
    check_text(value, field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UnacceptableInput(field, f"{value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise UnacceptableInput(field, f"{value!r} needs a timezone, e.g. 'Z' or '+00:00'")
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise UnacceptableInput(field, f"{value!r} falls outside years 1 to 9999 in UTC") from None
