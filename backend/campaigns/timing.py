"""Pure decisions of a campaign, free of storage: who is held out and which variant a case gets,
whether a case is in a campaign's audience, when a step falls due, where quiet hours move it, and
whether the frequency caps let it go now.

Quiet hours are in the customer's local time: their `timezone` trait (an IANA name), else their
`country` trait (a representative zone of the country), else the tenant's time zone. A step due
inside them moves to the next allowed minute, computed with zoneinfo so that daylight saving
changes land on the right instant (a local end time that does not exist that day moves to the
first minute that does).
"""

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from churnsaver.backend.campaigns.playbooks import Step, StepCondition, Variant

# Without a known next retry, a soft decline's first message waits this long for the provider's retry.
DEFAULT_RETRY_WAIT = timedelta(days=1)
WEEK = timedelta(days=7)
DAY = timedelta(days=1)

# One representative zone per country (ISO 3166 alpha-2), for customers with a country but no zone.
COUNTRY_ZONES = {
    "AR": "America/Argentina/Buenos_Aires", "AT": "Europe/Vienna", "AU": "Australia/Sydney",
    "BE": "Europe/Brussels", "BR": "America/Sao_Paulo", "CA": "America/Toronto", "CH": "Europe/Zurich",
    "CL": "America/Santiago", "CN": "Asia/Shanghai", "CO": "America/Bogota", "CZ": "Europe/Prague",
    "DE": "Europe/Berlin", "DK": "Europe/Copenhagen", "EG": "Africa/Cairo", "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki", "FR": "Europe/Paris", "GB": "Europe/London", "GR": "Europe/Athens",
    "HK": "Asia/Hong_Kong", "HU": "Europe/Budapest", "ID": "Asia/Jakarta", "IE": "Europe/Dublin",
    "IL": "Asia/Jerusalem", "IN": "Asia/Kolkata", "IT": "Europe/Rome", "JP": "Asia/Tokyo",
    "KE": "Africa/Nairobi", "KR": "Asia/Seoul", "MX": "America/Mexico_City", "MY": "Asia/Kuala_Lumpur",
    "NG": "Africa/Lagos", "NL": "Europe/Amsterdam", "NO": "Europe/Oslo", "NZ": "Pacific/Auckland",
    "PE": "America/Lima", "PH": "Asia/Manila", "PK": "Asia/Karachi", "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon", "RO": "Europe/Bucharest", "SA": "Asia/Riyadh", "SE": "Europe/Stockholm",
    "SG": "Asia/Singapore", "TH": "Asia/Bangkok", "TR": "Europe/Istanbul", "TW": "Asia/Taipei",
    "UA": "Europe/Kyiv", "US": "America/New_York", "VN": "Asia/Ho_Chi_Minh", "ZA": "Africa/Johannesburg",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Assignment:
    holdout: bool
    variant: str | None  # None when held out


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts`: the same inputs give it on every machine, forever."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    campaign_id: uuid.UUID, customer_id: uuid.UUID, holdout_share: float, variants: Sequence[Variant]
) -> Assignment:
    """The holdout or a variant (by weight) for the customer in the campaign, from a hash of both
    ids: deterministic, and the variant split independent of the holdout split."""
    if _unit(campaign_id, customer_id, "holdout") < holdout_share:
        return Assignment(holdout=True, variant=None)
    point = _unit(campaign_id, customer_id, "variant") * sum(variant.weight for variant in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return Assignment(holdout=False, variant=variant.name)
    return Assignment(holdout=False, variant=variants[-1].name)


@dataclass(frozen=True, slots=True)
class AudienceFacts:
    tier: str | None
    plans: frozenset[str]
    mrr: int | None  # minor units per month
    decline_class: str | None
    country: str | None


def in_audience(audience: Mapping[str, Any], facts: AudienceFacts) -> bool:
    """Every criterion the audience names holds for the facts (a criterion not named: anyone)."""
    if "tiers" in audience and facts.tier not in audience["tiers"]:
        return False
    if "plans" in audience and not facts.plans & set(audience["plans"]):
        return False
    if "decline_classes" in audience and facts.decline_class not in audience["decline_classes"]:
        return False
    if "countries" in audience and (facts.country or "").upper() not in audience["countries"]:
        return False
    if "mrr_min" in audience and (facts.mrr is None or facts.mrr < audience["mrr_min"]):
        return False
    return not ("mrr_max" in audience and (facts.mrr is None or facts.mrr > audience["mrr_max"]))


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def step_due(
    step: Step, opened_at: datetime, details: Mapping[str, Any], access_ends_at: datetime | None
) -> datetime | None:
    """When `step` of a case opened at `opened_at` falls due, before quiet hours and caps; None when
    its condition cannot be met (a notice before access ends, with no known end)."""
    if step.condition == StepCondition.before_access_ends.value:
        ends = _moment(details.get("access_ends_at")) or access_ends_at
        return None if ends is None else max(opened_at, ends - step.wait)
    due = opened_at + step.wait
    if step.condition == StepCondition.after_next_retry.value:
        retry = _moment(details.get("next_payment_attempt")) or opened_at + DEFAULT_RETRY_WAIT
        due = max(due, retry)
    return due


def customer_zone(traits: Mapping[str, Any], tenant_zone: ZoneInfo) -> ZoneInfo:
    """The customer's zone: `timezone` trait, else `country` trait, else the tenant's."""
    name = traits.get("timezone")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    country = traits.get("country")
    if isinstance(country, str) and country.upper() in COUNTRY_ZONES:
        return ZoneInfo(COUNTRY_ZONES[country.upper()])
    return tenant_zone


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Quiet from `start` to `end` (a window may wrap past midnight); equal: never quiet."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def after_quiet_hours(due: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """`due` (UTC) if it is outside quiet hours in `zone`, else the first minute after they end."""
    local = due.astimezone(zone)
    if not in_quiet_hours(local.timetz().replace(tzinfo=None), start, end):
        return due
    day: date = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)  # quiet since this evening: they end tomorrow morning
    # fold=1: of two readings of a local time that does not exist (a spring-forward gap), the earlier instant.
    candidate = datetime.combine(day, end, tzinfo=zone).replace(fold=1).astimezone(UTC)
    if candidate < due:
        candidate = due
    # Inside a gap the wall clock jumps: walk to the first minute that is really outside quiet hours.
    candidate = candidate.replace(second=0, microsecond=0)
    while in_quiet_hours(candidate.astimezone(zone).time(), start, end):
        candidate += timedelta(minutes=1)
    return candidate


@dataclass(frozen=True, slots=True)
class Caps:
    per_customer_per_week: int = 3
    per_channel_per_day: int = 1


def cap_allows(caps: Caps, channel: str, week: Mapping[str, int], day: Mapping[str, int]) -> bool:
    """Whether one more message on `channel` stays within the caps, given the customer's messages
    per channel in the last 7 days (`week`) and the last 24 hours (`day`), across campaigns."""
    if sum(week.values()) >= caps.per_customer_per_week:
        return False
    return day.get(channel, 0) < caps.per_channel_per_day


def cap_allows_at(caps: Caps, channel: str, recent: Sequence[tuple[str, datetime]], now: datetime) -> datetime:
    """`now` if one more message on `channel` stays within the caps, else the first time it will:
    when the oldest message that fills a cap leaves its window. `recent`: the customer's counted
    messages of the last 7 days, as (channel, time), across campaigns; in-app ones never count."""
    if caps.per_customer_per_week == 0 or caps.per_channel_per_day == 0:
        return now + DAY  # a cap of 0 sends nothing: looked at again daily, until the case closes
    counted = sorted(at for kind, at in recent if kind != "in_app" and at > now - WEEK)
    today = sorted(at for kind, at in recent if kind == channel and at > now - DAY)
    if cap_allows(caps, channel, {"all": len(counted)}, {channel: len(today)}):
        return now
    frees = []
    if len(counted) >= caps.per_customer_per_week:
        frees.append(counted[len(counted) - caps.per_customer_per_week] + WEEK)
    if len(today) >= caps.per_channel_per_day:
        frees.append(today[len(today) - caps.per_channel_per_day] + DAY)
    return max(max(frees), now + timedelta(minutes=1))
