"""Where a message goes: a customer's email address, E.164 phone number or Whop user, checked."""

import re

import phonenumbers

EMAIL_PATTERN = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$")


def email_address(value: str | None) -> str | None:
    """The address, trimmed, when it looks deliverable; None otherwise."""
    if not value:
        return None
    address = value.strip()
    return address if EMAIL_PATTERN.match(address) and len(address) <= 320 else None


def e164(value: str | None, region: str | None = None) -> str | None:
    """The number in E.164 (+14155550100) when it is a valid phone number; None otherwise.
    Without a leading +, `region` (an ISO country code) says which country it is dialled in."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
