"""A tenant's case settings: attribution windows, first-touch SLAs, usage-drop thresholds, the risk
tiers that open cases, and how long a recovery must hold before it is verified.

A tenant without a `case_settings` row uses the defaults below. The row stores only what the
tenant changed, so a default changed later reaches every tenant that kept it.
"""

import math
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import CaseKind, CaseSettingsRow
from churnsaver.backend.cases.repository import CaseSettingsRepository
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.risk.models import TIERS

DEFAULT_WINDOW_DAYS = 30
DEFAULT_SLA_MINUTES = 24 * 60
URGENT_SLA_MINUTES = 60  # a failed payment and a scheduled cancellation are worked within the hour
URGENT_KINDS = (CaseKind.payment_failed, CaseKind.cancellation_scheduled)
MAX_DAYS = 365
MAX_SLA_MINUTES = 30 * 24 * 60


def _default_windows() -> dict[str, int]:
    return {kind.value: DEFAULT_WINDOW_DAYS for kind in CaseKind}


def _default_slas() -> dict[str, int]:
    return {kind.value: URGENT_SLA_MINUTES if kind in URGENT_KINDS else DEFAULT_SLA_MINUTES for kind in CaseKind}


@dataclass(frozen=True, slots=True)
class CaseSettings:
    window_days: dict[str, int] = field(default_factory=_default_windows)  # attribution window per kind
    sla_minutes: dict[str, int] = field(default_factory=_default_slas)  # first-touch deadline per kind
    # USAGE_DROP: the last 7 days below `usage_drop_ratio` of the previous 28 days' rate, for a
    # customer with at least `usage_drop_min_active_days` active days in those 28.
    usage_drop_ratio: float = 0.3
    usage_drop_min_active_days: int = 5
    case_tiers: tuple[str, ...] = ("critical", "high")  # entering one of these opens HIGH_RISK
    verify_days: int = 14

    def window(self, kind: str) -> timedelta:
        return timedelta(days=self.window_days[kind])

    def sla(self, kind: str) -> timedelta:
        return timedelta(minutes=self.sla_minutes[kind])

    @property
    def verify_after(self) -> timedelta:
        return timedelta(days=self.verify_days)

    def stored(self) -> dict[str, Any]:
        """What differs from the defaults, as JSON."""
        values, defaults = asdict(self), asdict(CaseSettings())
        values["case_tiers"], defaults["case_tiers"] = list(self.case_tiers), list(defaults["case_tiers"])
        return {name: value for name, value in values.items() if value != defaults[name]}

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "CaseSettings":
        return cls().updated(**stored)

    def updated(self, **changes: Any) -> "CaseSettings":
        """These settings with `changes` (None: unchanged), validated: InvalidInput says what is wrong.
        `window_days` and `sla_minutes` change only the kinds they name."""
        changes = {name: value for name, value in changes.items() if value is not None}
        unknown = set(changes) - set(CaseSettings.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown case settings: {', '.join(sorted(unknown))}")
        if "window_days" in changes:
            changes["window_days"] = self.window_days | _per_kind(changes["window_days"], "window_days", 1, MAX_DAYS)
        if "sla_minutes" in changes:
            sla = _per_kind(changes["sla_minutes"], "sla_minutes", 1, MAX_SLA_MINUTES)
            changes["sla_minutes"] = self.sla_minutes | sla
        if "usage_drop_ratio" in changes:
            ratio = changes["usage_drop_ratio"]
            if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not math.isfinite(ratio):
                raise InvalidInput("usage_drop_ratio must be a number")
            if not 0 < ratio < 1:
                raise InvalidInput(f"usage_drop_ratio must be between 0 and 1 (exclusive), not {ratio}")
            changes["usage_drop_ratio"] = float(ratio)
        if "usage_drop_min_active_days" in changes:
            _check_int(changes["usage_drop_min_active_days"], "usage_drop_min_active_days", 1, 28)
        if "verify_days" in changes:
            _check_int(changes["verify_days"], "verify_days", 1, MAX_DAYS)
        if "case_tiers" in changes:
            changes["case_tiers"] = _tiers(changes["case_tiers"])
        return replace(self, **changes)


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, not {value}")
    return value


def _per_kind(values: Any, name: str, low: int, high: int) -> dict[str, int]:
    if not isinstance(values, dict):
        raise InvalidInput(f"{name} must map case kinds to whole numbers")
    kinds = {kind.value for kind in CaseKind}
    checked = {}
    for kind, value in values.items():
        if kind not in kinds:
            raise InvalidInput(f"{name}: {kind!r} is not a case kind")
        checked[kind] = _check_int(value, f"{name}[{kind}]", low, high)
    return checked


def _tiers(values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not all(isinstance(value, str) for value in values):
        raise InvalidInput("case_tiers must be a list of risk tiers")
    unknown = set(values) - set(TIERS)
    if unknown:
        raise InvalidInput(f"case_tiers: unknown tiers {', '.join(sorted(unknown))} (tiers: {', '.join(TIERS)})")
    if "low" in values:
        raise InvalidInput("case_tiers: the low tier cannot open cases")
    return tuple(tier for tier in TIERS if tier in values)


async def load_settings(session: AsyncSession, tenant_id: uuid.UUID) -> CaseSettings:
    row = await CaseSettingsRepository(session, tenant_id).find()
    return CaseSettings() if row is None else CaseSettings.from_stored(row.settings)


async def store_settings(session: AsyncSession, tenant_id: uuid.UUID, settings: CaseSettings) -> None:
    values = {"settings": settings.stored(), "updated_at": utcnow()}
    insert = insert_for(session)(CaseSettingsRow).values(tenant_id=tenant_id, **values)
    await session.execute(insert.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
