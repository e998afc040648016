"""Hard or soft: the decline classes recovery relies on."""

import pytest

from churnsaver.backend.customers.declines import DECLINE_CLASSES, classify_decline, code_from_message


@pytest.mark.parametrize(
    ("code", "decline_class"),
    [
        ("stolen_card", "hard"),
        ("expired_card", "hard"),
        ("do_not_honor", "hard"),
        ("authentication_required", "hard"),
        ("insufficient_funds", "soft"),
        ("processing_error", "soft"),
        ("INSUFFICIENT_FUNDS ", "soft"),
        ("a_code_from_next_year", "soft"),
        (None, "soft"),
    ],
)
def test_codes_are_classified_and_unknown_ones_are_soft(code: str | None, decline_class: str) -> None:
    assert classify_decline(code) == decline_class


def test_every_code_in_the_table_is_a_lower_case_stripe_style_code() -> None:
    assert all(code == code.strip().lower() and " " not in code for code in DECLINE_CLASSES)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Your card has insufficient funds.", "insufficient_funds"),
        ("Your card has expired.", "expired_card"),
        ("Your card's security code is incorrect.", "incorrect_cvc"),
        ("The bank said: Do Not Honour", "do_not_honor"),
        ("Your card was declined.", "generic_decline"),
        ("Something else entirely", None),
        (None, None),
    ],
)
def test_processor_messages_are_read_as_codes(message: str | None, code: str | None) -> None:
    assert code_from_message(message) == code
