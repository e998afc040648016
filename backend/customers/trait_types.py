"""The trait types of CSV columns, inferred from a sample of rows, and the JSON encoders they give.

A column's type is the narrowest of boolean, integer, number, date and text that fits every
non-blank cell of the sample. Past the sample, a cell that does not fit its column's type is
kept as text rather than rejected: an attribute is context for scoring, not worth losing a
customer over. Blank cells (and the usual "NA"/"null" markers) are missing: the trait is left out.
"""

import json
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache

TraitValue = bool | int | float | str
Converter = Callable[[str], TraitValue]
TraitEncoder = Callable[[str], str]  # a raw cell -> its JSON object member, or ""

# Exact spellings, so the hot loop does one set look-up per cell instead of lower-casing it.
MISSING = frozenset({"", "NA", "N/A", "na", "n/a", "NULL", "null", "Null", "NaN", "nan", "NAN", "None"})
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False}
CONVERTED_CELLS_KEPT = 16_384  # per column


class TraitType(StrEnum):
    boolean = "boolean"
    integer = "integer"
    number = "number"
    date = "date"
    text = "text"


def is_missing(cell: str) -> bool:
    return cell in MISSING


def parse_boolean(cell: str) -> bool:
    try:
        return BOOLEAN_WORDS[cell.lower()]
    except KeyError:
        raise ValueError(cell) from None


def _is_code(cell: str) -> bool:
    """Leading zeros mean a code (zip, account number), not a quantity: "02134" stays text.
    Underscores ("1_000") are Python's digit separators, not a spreadsheet's."""
    digits = cell.lstrip("+-")
    return "_" in cell or (len(digits) > 1 and digits[0] == "0" and digits[1].isdigit())


def parse_integer(cell: str) -> int:
    if _is_code(cell):
        raise ValueError(cell)
    return int(cell)


def parse_number(cell: str) -> float:
    value = float(cell)
    if _is_code(cell) or not math.isfinite(value):
        raise ValueError(cell)
    return value


def parse_date(cell: str) -> str:
    """An ISO 8601 date or date-time, normalized; JSON has no dates, so it stays a string."""
    if len(cell) == 10:
        return date.fromisoformat(cell).isoformat()
    if len(cell) < 16:  # shorter forms (20240131, 2024-W05) are more likely codes than dates
        raise ValueError(cell)
    return datetime.fromisoformat(cell).isoformat()


def parse_text(cell: str) -> str:
    return cell


PARSERS: dict[TraitType, Converter] = {
    TraitType.boolean: parse_boolean,
    TraitType.integer: parse_integer,
    TraitType.number: parse_number,
    TraitType.date: parse_date,
    TraitType.text: parse_text,
}


def infer_type(cells: Iterable[str]) -> TraitType:
    """The narrowest type every non-missing cell fits; text when there are none."""
    candidates = [kind for kind in TraitType if kind is not TraitType.text]
    seen_any = False
    for cell in cells:
        if is_missing(cell):
            continue
        seen_any = True
        candidates = [kind for kind in candidates if _fits(PARSERS[kind], cell)]
        if not candidates:
            return TraitType.text
    return candidates[0] if seen_any and candidates else TraitType.text


def _fits(parse: Converter, cell: str) -> bool:
    try:
        parse(cell)
    except ValueError:
        return False
    return True


def trait_encoder(name: str, kind: TraitType) -> TraitEncoder:
    """The trait a raw cell of column `name` gives, as the `"name":value` member of a JSON object;
    "" when the cell is missing. Surrounding blanks are dropped; a cell that does not fit `kind`
    is kept as text.

    Encoding straight to JSON text leaves nothing to encode per customer: a row's traits are its
    members joined. Each encoder remembers its recent cells: export columns repeat their values
    (plans, counts, dates), and a look-up costs a fraction of parsing and encoding. The cache is
    bounded, so memory stays flat.
    """
    parse = PARSERS[kind]
    key = json.dumps(name, ensure_ascii=False) + ":"

    @lru_cache(maxsize=CONVERTED_CELLS_KEPT)
    def encode(raw: str) -> str:
        cell = raw.strip()
        if cell in MISSING:
            return ""
        try:
            value = parse(cell)
        except ValueError:
            value = cell
        return key + json.dumps(value, ensure_ascii=False)

    return encode
