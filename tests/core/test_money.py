"""Money in and out: major units to integer minor units by the currency's exponent, and back."""

import pytest

from churnsaver.backend.core.money import format_money, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [(19.99, "USD", 1999), ("12.5", "EUR", 1250), (1000, "JPY", 1000), ("1.2345", "KWD", 1235), (0.005, "USD", 1)],
)
def test_major_units_become_minor_units_by_the_currencys_exponent(amount, currency, minor) -> None:
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize("amount", [True, None, "ten", "nan", float("inf"), 1e30])
def test_what_is_not_an_amount_is_refused(amount) -> None:
    with pytest.raises(ValueError):
        to_minor_units(amount, "USD")


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (19900, "USD", "199.00 USD"),
        (123456789, "EUR", "1,234,567.89 EUR"),
        (1000, "JPY", "1,000 JPY"),
        (1235, "KWD", "1.235 KWD"),
        (1990.4, "USD", "19.90 USD"),
        (5, None, "5"),
    ],
)
def test_minor_units_are_shown_in_major_units(minor, currency, shown) -> None:
    assert format_money(minor, currency) == shown


def test_an_amount_that_rounds_past_the_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        to_minor_units("9223372036854775807.5", "JPY")
