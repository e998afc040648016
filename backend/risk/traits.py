"""Customer traits as model features: each trait numeric or categorical, blanks missing.

Traits come from CSV imports (already typed per column, with a stray cell kept as text), from
identify events (any JSON) and from CRM exports with mixed columns. A trait is numeric when
nearly all of its present values are numbers (numbers in text included); the few that are not
become missing rather than turning the whole column into text. Otherwise it is categorical, every
value in one canonical text form (3, 3.0 and "3" are the same category).
"""

import json
import math
from collections.abc import Iterable
from typing import Any

from churnsaver.backend.customers.trait_types import is_missing, parse_number

MISSING_CATEGORY = "(missing)"  # what a missing categorical feature holds (CatBoost takes no None)

NUMERIC_SHARE = 0.9  # of a trait's present values that must be numbers for it to be numeric
# A text trait different for every customer (an email, an account id) names them, it says nothing
# about them: past this many present values, all distinct means an identifier.
IDENTIFIER_MIN_VALUES = 50


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return is_missing(value.strip())
    return isinstance(value, (dict, list)) and not value


def trait_number(value: Any) -> float:
    """The trait as a number, NaN when blank or not a number (booleans are categories)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else math.nan
    if isinstance(value, str):
        try:
            return parse_number(value.strip().replace(",", ""))
        except ValueError:
            return math.nan
    return math.nan


def trait_category(value: Any) -> str:
    """The trait as a category: one text per value, MISSING_CATEGORY when blank."""
    if is_blank(value):
        return MISSING_CATEGORY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True)


def is_numeric_trait(values: Iterable[Any]) -> bool | None:
    """Whether a trait with these values is numeric; None when it has no present value at all."""
    present = numbers = 0
    for value in values:
        if is_blank(value):
            continue
        present += 1
        numbers += not math.isnan(trait_number(value))
    if not present:
        return None
    return numbers >= NUMERIC_SHARE * present


def is_identifier(values: Iterable[Any]) -> bool:
    """Whether a categorical trait with these values is an identifier rather than a trait."""
    present = [trait_category(value) for value in values if not is_blank(value)]
    return len(present) >= IDENTIFIER_MIN_VALUES and len(set(present)) == len(present)
