"""Amounts in major units (12.99 USD, as Whop sends them) to integer minor units (1299).

The number of minor units per major unit is the currency's ISO 4217 exponent: 2 for most,
0 for currencies without subunits (JPY, KRW, ...), 3 for a few dinars.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
MAX_MINOR_UNITS = 2**63 - 1  # what a BIGINT column holds


def currency_code(value: object) -> str:
    """An ISO 4217 code, upper case; ValueError for anything else."""
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValueError(f"currency {value!r} is not a three-letter ISO 4217 code")
    return value.upper()


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(amount: object, currency: str) -> int:
    """`amount` in major units of `currency` as integer minor units, rounded half up."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise ValueError(f"amount {amount!r} is not a number")
    try:
        # Through str: 19.99 as a float is 19.989999…, and must still become 1999.
        major = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount {amount!r} is not a number") from None
    if not major.is_finite():
        raise ValueError(f"amount {amount!r} is not a number")
    scaled = major.scaleb(exponent(currency))
    # Checked before rounding: quantizing a number wider than Decimal's precision raises.
    if abs(scaled) > MAX_MINOR_UNITS:
        raise ValueError(f"amount {amount!r} is out of range")
    minor = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if abs(minor) > MAX_MINOR_UNITS:  # rounded up past the limit
        raise ValueError(f"amount {amount!r} is out of range")
    return minor


def format_money(minor: int | float, currency: str | None) -> str:
    """Minor units as a person reads them: 19900 USD -> "199.00 USD" (no currency: the bare number)."""
    if currency is None:
        return f"{minor:,.0f}"
    digits = exponent(currency)
    return f"{Decimal(str(minor)).scaleb(-digits):,.{digits}f} {currency}"
