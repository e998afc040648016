"""Hard or soft: whether retrying a declined payment can succeed without the customer acting.

Recovery depends on it. A *soft* decline (insufficient funds, an issuer outage, a velocity
limit) may pass on a later retry, so dunning keeps retrying. A *hard* decline (stolen or
expired card, closed account, a fraud block, a card that needs the customer to authenticate
or fix a detail) fails the same way every time, so the customer is asked for a new card at once.

Codes are Stripe's decline codes (https://docs.stripe.com/declines/codes), which Whop's
failure messages and the events API's `decline_code` also speak. A code not in the table is
soft: the cost of one more retry is small, the cost of giving up on a good card is a lost customer.
"""

import re

from churnsaver.backend.customers.events import DeclineClass

HARD = DeclineClass.hard
SOFT = DeclineClass.soft

DECLINE_CLASSES: dict[str, DeclineClass] = {
    # The card or account can never be charged again.
    "account_closed": HARD,
    "card_not_supported": HARD,
    "currency_not_supported": HARD,
    "expired_card": HARD,
    "fraudulent": HARD,
    "invalid_account": HARD,
    "lost_card": HARD,
    "new_account_information_available": HARD,
    "pickup_card": HARD,
    "restricted_card": HARD,
    "stolen_card": HARD,
    # The issuer refuses and says not to try again.
    "do_not_honor": HARD,
    "do_not_try_again": HARD,
    "merchant_blacklist": HARD,
    "not_permitted": HARD,
    "revocation_of_all_authorizations": HARD,
    "revocation_of_authorization": HARD,
    "security_violation": HARD,
    "service_not_allowed": HARD,
    "stop_payment_order": HARD,
    "transaction_not_allowed": HARD,
    # Radar blocked it; the same charge is blocked again.
    "highest_risk_level": HARD,
    "elevated_risk_level": HARD,
    # Only the customer can fix these: a wrong detail, a PIN, an authentication.
    "authentication_required": HARD,
    "incorrect_address": HARD,
    "incorrect_cvc": HARD,
    "incorrect_number": HARD,
    "incorrect_pin": HARD,
    "incorrect_zip": HARD,
    "invalid_cvc": HARD,
    "invalid_expiry_month": HARD,
    "invalid_expiry_year": HARD,
    "invalid_number": HARD,
    "invalid_pin": HARD,
    "offline_pin_required": HARD,
    "online_or_offline_pin_required": HARD,
    "pin_try_exceeded": HARD,
    # Temporary: funds, limits, outages. A later retry may pass.
    "approve_with_id": SOFT,
    "call_issuer": SOFT,
    "card_velocity_exceeded": SOFT,
    "duplicate_transaction": SOFT,
    "generic_decline": SOFT,
    "insufficient_funds": SOFT,
    "invalid_amount": SOFT,
    "issuer_not_available": SOFT,
    "no_action_taken": SOFT,
    "processing_error": SOFT,
    "reenter_transaction": SOFT,
    "testmode_decline": SOFT,
    "try_again_later": SOFT,
    "withdrawal_count_limit_exceeded": SOFT,
    # Whop invoices: overdue is still collectable; uncollectible is the provider giving up.
    "invoice_past_due": SOFT,
    "invoice_uncollectible": HARD,
}

# Free-text failure messages (Whop sends the processor's message, not a code), first match wins.
_MESSAGE_CODES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.IGNORECASE), code)
    for pattern, code in [
        (r"insufficient funds", "insufficient_funds"),
        (r"stolen", "stolen_card"),
        (r"\blost\b", "lost_card"),
        (r"fraud", "fraudulent"),
        (r"expired", "expired_card"),
        (r"do not honou?r", "do_not_honor"),
        (r"security code|cvc|cvv", "incorrect_cvc"),
        (r"card number", "incorrect_number"),
        (r"zip|postal code", "incorrect_zip"),
        (r"authenticat|3d ?secure", "authentication_required"),
        (r"not support", "card_not_supported"),
        (r"limit|velocity", "card_velocity_exceeded"),
        (r"processing error", "processing_error"),
        (r"try again", "try_again_later"),
        (r"declined", "generic_decline"),
    ]
]


def classify_decline(decline_code: str | None) -> DeclineClass:
    """The class of `decline_code`; unknown or missing codes are soft (see the module docstring)."""
    if not decline_code:
        return SOFT
    return DECLINE_CLASSES.get(decline_code.strip().lower(), SOFT)


def code_from_message(message: str | None) -> str | None:
    """A decline code read from a processor's message, or None when it names no reason."""
    if not message:
        return None
    for pattern, code in _MESSAGE_CODES:
        if pattern.search(message):
            return code
    return None
