"""A tenant's channel settings: the From of its email, its SMS account, its Whop API key, quiet hours,
its time zone and frequency caps.

Campaigns enforces quiet hours and caps (it chooses when a step is due); channels stores them and
sends. A tenant without a `channel_settings` row uses the defaults; the row stores only what the
tenant changed. The SMS auth token and the Whop API key are sealed (core/crypto), bound to the
tenant, and never read back through the API: only whether they are set.
"""

import re
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.channels.addresses import e164, email_address
from churnsaver.backend.channels.models import ChannelSettingsRow
from churnsaver.backend.core.crypto import SecretBox
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.repository import owned_by

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
LOCALE_PATTERN = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
MAX_NAME = 200
MAX_CAP = 100


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    from_name: str | None = None  # None: the tenant's name
    from_address: str = "no-reply@churnsaver.invalid"
    sms_account_sid: str | None = None
    sms_from_number: str | None = None
    quiet_hours_start: str = "21:00"  # HH:MM in the customer's local time
    quiet_hours_end: str = "08:00"
    timezone: str = "UTC"  # the tenant's, for customers whose own is unknown
    default_locale: str = "en"
    cap_per_customer_per_week: int = 3  # messages per customer in any 7 days, across campaigns
    cap_per_channel_per_day: int = 1  # messages per customer and channel in any 24 hours
    # Set from the sealed columns when loaded; never stored in the JSON.
    sms_auth_token_set: bool = False
    whop_api_key_set: bool = False

    @property
    def quiet_start(self) -> time:
        return time.fromisoformat(self.quiet_hours_start)

    @property
    def quiet_end(self) -> time:
        return time.fromisoformat(self.quiet_hours_end)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stored(self) -> dict[str, Any]:
        values, defaults = asdict(self), asdict(ChannelSettings())
        return {
            name: value
            for name, value in values.items()
            if value != defaults[name] and name not in ("sms_auth_token_set", "whop_api_key_set")
        }

    def updated(self, **changes: Any) -> "ChannelSettings":
        """These settings with `changes` (None: unchanged), validated: InvalidInput says what is wrong.
        An empty string clears an optional setting."""
        changes = {name: value for name, value in changes.items() if value is not None}
        unknown = set(changes) - set(ChannelSettings.__dataclass_fields__) | (
            set(changes) & {"sms_auth_token_set", "whop_api_key_set"}
        )
        if unknown:
            raise InvalidInput(f"unknown channel settings: {', '.join(sorted(unknown))}")
        for name in ("from_name", "sms_account_sid", "sms_from_number"):
            if name in changes:
                changes[name] = _optional_text(changes[name], name)
        if "from_address" in changes:
            address = email_address(str(changes["from_address"]))
            if address is None:
                raise InvalidInput(f"from_address {changes['from_address']!r} is not an email address")
            changes["from_address"] = address
        if changes.get("sms_account_sid") and not re.fullmatch(r"AC[0-9a-fA-F]{32}", changes["sms_account_sid"]):
            raise InvalidInput("sms_account_sid is an account SID: AC followed by 32 hexadecimal digits")
        if changes.get("sms_from_number"):
            number = e164(changes["sms_from_number"])
            if number is None:
                raise InvalidInput("sms_from_number must be a phone number in international form, e.g. +14155550100")
            changes["sms_from_number"] = number
        for name in ("quiet_hours_start", "quiet_hours_end"):
            if name in changes and not HHMM.match(str(changes[name])):
                raise InvalidInput(f"{name} is a time of day as HH:MM (24-hour), not {changes[name]!r}")
        if "timezone" in changes:
            changes["timezone"] = _zone_name(changes["timezone"])
        if "default_locale" in changes and not LOCALE_PATTERN.match(str(changes["default_locale"])):
            raise InvalidInput(
                f"default_locale is a language code such as en or pt-BR, not {changes['default_locale']!r}"
            )
        for name in ("cap_per_customer_per_week", "cap_per_channel_per_day"):
            if name in changes:
                value = changes[name]
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CAP:
                    raise InvalidInput(f"{name} must be a whole number from 0 to {MAX_CAP}")
        return replace(self, **changes)


def _optional_text(value: Any, name: str) -> str | None:
    text = str(value).strip()
    if len(text) > MAX_NAME or not text.isprintable():
        raise InvalidInput(f"{name} is at most {MAX_NAME} printable characters")
    return text or None


def _zone_name(value: Any) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone {name!r} is not an IANA time zone such as Europe/Berlin") from None
    return name


@lru_cache(maxsize=4)
def _box(secret_key: str, purpose: str) -> SecretBox:
    return SecretBox(secret_key, purpose)


SMS_TOKEN = "channels-sms-token"
WHOP_KEY = "channels-whop-key"


def seal(secret_key: str, purpose: str, tenant_id: uuid.UUID, secret: str) -> bytes:
    return _box(secret_key, purpose).encrypt(secret, bound_to=str(tenant_id))


def unseal(secret_key: str, purpose: str, tenant_id: uuid.UUID, sealed: bytes | None) -> str | None:
    return None if sealed is None else _box(secret_key, purpose).decrypt(sealed, bound_to=str(tenant_id))


async def load_row(session: AsyncSession, tenant_id: uuid.UUID) -> ChannelSettingsRow | None:
    statement = select(ChannelSettingsRow).where(owned_by(tenant_id, ChannelSettingsRow))
    return (await session.execute(statement)).scalar_one_or_none()


async def load_settings(session: AsyncSession, tenant_id: uuid.UUID) -> ChannelSettings:
    row = await load_row(session, tenant_id)
    if row is None:
        return ChannelSettings()
    settings = ChannelSettings(**{k: v for k, v in row.settings.items() if k in ChannelSettings.__dataclass_fields__})
    return replace(
        settings,
        sms_auth_token_set=row.sms_auth_token_sealed is not None,
        whop_api_key_set=row.whop_api_key_sealed is not None,
    )


async def store_settings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    settings: ChannelSettings,
    *,
    sealed: dict[str, bytes | None] | None = None,
) -> None:
    """Store `settings`; `sealed` sets (bytes) or clears (None) the named sealed columns."""
    values: dict[str, Any] = {"settings": settings.stored(), "updated_at": utcnow()} | (sealed or {})
    insert = insert_for(session)(ChannelSettingsRow).values(tenant_id=tenant_id, **values)
    await session.execute(insert.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
