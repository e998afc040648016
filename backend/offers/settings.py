"""A tenant's offer settings: the tenant-wide monthly budget, the choice policy (rules, or Thompson
sampling with a share of choices kept on the rules as control) and the redemption cooldown.

A tenant without an `offer_settings` row uses the defaults; the row stores only what changed.
"""

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.money import currency_code
from churnsaver.backend.offers.models import OfferSettingsRow
from churnsaver.backend.offers.repository import OfferSettingsRepository

POLICIES = ("rules", "thompson")


@dataclass(frozen=True, slots=True)
class OfferSettings:
    monthly_budget: int | None = 50_000  # minor units of `currency` per month, all offers; None: unlimited
    currency: str = "USD"
    policy: str = "rules"
    control_share: float = 0.2  # with the learning policy, this share of choices follows the rules
    cooldown_days: int = 180  # at most one redemption per customer per offer in this many days

    def stored(self) -> dict[str, Any]:
        values, defaults = asdict(self), asdict(OfferSettings())
        return {name: value for name, value in values.items() if value != defaults[name]}

    def updated(self, **changes: Any) -> "OfferSettings":
        """These settings with `changes` (None: unchanged), validated."""
        changes = {name: value for name, value in changes.items() if value is not None}
        unknown = set(changes) - set(OfferSettings.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown offer settings: {', '.join(sorted(unknown))}")
        merged = asdict(self) | changes
        budget = merged["monthly_budget"]
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 0):
            raise InvalidInput("the monthly budget is a whole number of minor units, 0 or more")
        try:
            merged["currency"] = currency_code(merged["currency"])
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        if merged["policy"] not in POLICIES:
            raise InvalidInput(f"the policy is one of {', '.join(POLICIES)}")
        share = merged["control_share"]
        if not isinstance(share, int | float) or isinstance(share, bool) or not 0.0 <= float(share) <= 1.0:
            raise InvalidInput("the control share is from 0 to 1")
        days = merged["cooldown_days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
            raise InvalidInput("the cooldown is 0 to 3650 days")
        return OfferSettings(**merged)


async def load_settings(session: AsyncSession, tenant_id: uuid.UUID) -> OfferSettings:
    row = await OfferSettingsRepository(session, tenant_id).find()
    if row is None:
        return OfferSettings()
    return OfferSettings().updated(**row.settings)


async def store_settings(session: AsyncSession, tenant_id: uuid.UUID, settings: OfferSettings) -> None:
    values = {"tenant_id": tenant_id, "settings": settings.stored(), "updated_at": utcnow()}
    statement = insert_for(session)(OfferSettingsRow).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id"], set_={"settings": values["settings"], "updated_at": values["updated_at"]}
    )
    await session.execute(statement)
