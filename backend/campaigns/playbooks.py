"""Campaign definitions as data: steps and variants validated from what a client sends, ISO 8601
durations, and the default playbooks every tenant starts with (created on first use, editable).

A step is `{delay, channel, template, offer_id, condition}`. `delay` is an ISO 8601 duration after
the case opened (`PT0S` at once, `P1D`, `PT90S`); with the condition `before_access_ends` it is how
long before the customer's access ends instead; with `after_next_retry` the step waits at least
until the provider's next retry of a soft decline (the case closes, and the step stops, if the
retry succeeds).
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from churnsaver.backend.cases.models import CaseKind
from churnsaver.backend.core.errors import InvalidInput

CHANNELS = ("email", "sms", "in_app", "whop")
MAX_STEPS = 20
MAX_VARIANTS = 10
MAX_NAME = 200
MAX_DELAY = timedelta(days=365)
TEMPLATE_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
AUDIENCE_KEYS = ("tiers", "plans", "mrr_min", "mrr_max", "decline_classes", "countries")
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class StepCondition(StrEnum):
    before_access_ends = "before_access_ends"
    after_next_retry = "after_next_retry"


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (no years or months: their
    length depends on the date); InvalidInput says why it is not one."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"delay {text!r} is not an ISO 8601 duration such as PT0S, PT90S, P1D or P1DT12H")
    parts = {name: float(value) for name, value in match.groupdict().items() if value is not None}
    delay = timedelta(**parts)
    if delay > MAX_DELAY:
        raise InvalidInput(f"delay {text!r} is longer than {MAX_DELAY.days} days")
    return delay


@dataclass(frozen=True, slots=True)
class Step:
    delay: str
    channel: str
    template: str
    offer_id: uuid.UUID | None = None
    condition: str | None = None
    offer_key: str | None = None  # a default playbook's step names a default offer; its id is per tenant

    @property
    def wait(self) -> timedelta:
        return parse_duration(self.delay)

    def stored(self) -> dict[str, Any]:
        return {
            "delay": self.delay,
            "channel": self.channel,
            "template": self.template,
            "offer_id": str(self.offer_id) if self.offer_id else None,
            "condition": self.condition,
        }


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    steps: list[Step]
    weight: int = 1

    def stored(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "steps": [step.stored() for step in self.steps]}


def step_from(raw: dict[str, Any], where: str) -> Step:
    """A step validated from its stored or submitted form; InvalidInput names the step."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object")
    delay = raw.get("delay")
    try:
        parse_duration(delay)  # type: ignore[arg-type]
    except InvalidInput as error:
        raise InvalidInput(f"{where}: {error}") from None
    channel = raw.get("channel")
    if channel not in CHANNELS:
        raise InvalidInput(f"{where}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
    template = raw.get("template")
    if not isinstance(template, str) or not TEMPLATE_KEY.match(template):
        raise InvalidInput(f"{where}: template {template!r} is not a template key")
    condition = raw.get("condition")
    if condition is not None and condition not in StepCondition.__members__:
        names = ", ".join(StepCondition.__members__)
        raise InvalidInput(f"{where}: condition {condition!r} is not one of {names}")
    offer = raw.get("offer_id")
    try:
        offer_id = uuid.UUID(str(offer)) if offer else None
    except ValueError:
        raise InvalidInput(f"{where}: offer_id {offer!r} is not an id") from None
    return Step(
        delay=str(delay).strip().upper(), channel=channel, template=template, offer_id=offer_id, condition=condition
    )


def variants_from(raw: Any) -> list[Variant]:
    """Variants validated from their stored or submitted form: at least one, names unique, each
    with 1 to MAX_STEPS steps and a positive weight."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("a campaign needs at least one variant with steps")
    if len(raw) > MAX_VARIANTS:
        raise InvalidInput(f"a campaign has at most {MAX_VARIANTS} variants")
    variants: list[Variant] = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"variant {number} must be an object")
        name = str(item.get("name") or "").strip()
        if not name or len(name) > 64:
            raise InvalidInput(f"variant {number} needs a name of 1 to 64 characters")
        weight = item.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1000:
            raise InvalidInput(f"variant {name!r}: weight must be a whole number from 1 to 1000")
        steps = item.get("steps")
        if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
            raise InvalidInput(f"variant {name!r} needs 1 to {MAX_STEPS} steps")
        variants.append(
            Variant(name, [step_from(step, f"variant {name!r} step {i}") for i, step in enumerate(steps, 1)], weight)
        )
    if len({variant.name for variant in variants}) != len(variants):
        raise InvalidInput("variant names must be unique")
    return variants


def case_kinds_from(raw: Any) -> list[str]:
    kinds = [str(kind) for kind in raw or []]
    unknown = [kind for kind in kinds if kind not in CaseKind.__members__]
    if not kinds or unknown:
        raise InvalidInput(f"case kinds must be some of {', '.join(CaseKind.__members__)}")
    return sorted(set(kinds))


def audience_from(raw: Any) -> dict[str, Any]:
    """The audience filter validated: lists of text, and an MRR range in minor units."""
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - set(AUDIENCE_KEYS):
        raise InvalidInput(f"the audience filter takes {', '.join(AUDIENCE_KEYS)}")
    audience: dict[str, Any] = {}
    for name in ("tiers", "plans", "decline_classes", "countries"):
        values = raw.get(name)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise InvalidInput(f"audience {name} must be a list of text")
        audience[name] = [value.upper() if name == "countries" else value for value in values]
    for name in ("mrr_min", "mrr_max"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInput(f"audience {name} must be a whole number of minor units, 0 or more")
        audience[name] = value
    if audience.get("mrr_min", 0) > audience.get("mrr_max", audience.get("mrr_min", 0)):
        raise InvalidInput("audience mrr_min is above mrr_max")
    return audience


def holdout_share_from(raw: Any) -> float:
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0.0 <= float(raw) <= 0.9:
        raise InvalidInput("the holdout share must be from 0 to 0.9")
    return float(raw)


@dataclass(frozen=True, slots=True)
class Playbook:
    key: str
    name: str
    case_kinds: list[str]
    variants: list[Variant]
    audience: dict[str, Any] = field(default_factory=dict)


def _steps(*steps: tuple[str, ...]) -> list[Step]:
    """Steps as (delay, channel, template[, offer key[, condition]]) (an offer key of "" is none)."""
    return [
        Step(
            step[0],
            step[1],
            step[2],
            offer_key=step[3] if len(step) > 3 and step[3] else None,
            condition=step[4] if len(step) > 4 else None,
        )
        for step in steps
    ]


BEFORE_END = StepCondition.before_access_ends.value
AFTER_RETRY = StepCondition.after_next_retry.value
# The default offers (offers/catalog.py) the default playbooks use.
CARD, DISCOUNT, KEEP = "update_payment", "percent_30_x3", "uncancel"

# The playbooks every tenant starts with. Template keys are channels' built-in templates.
DEFAULT_PLAYBOOKS = (
    Playbook(
        "payment_failed_hard",
        "Failed payment: hard decline",
        [CaseKind.payment_failed.value],
        [
            Variant(
                "default",
                _steps(
                    ("PT0S", "email", "payment_failed_update_card", CARD),
                    ("PT0S", "in_app", "payment_failed_update_card", CARD),
                    ("P1D", "sms", "payment_failed_update_card", CARD),
                    ("P3D", "email", "payment_failed_offer", DISCOUNT),
                    ("P1D", "email", "payment_failed_final_notice", CARD, BEFORE_END),
                ),
            )
        ],
        {"decline_classes": ["hard"]},
    ),
    Playbook(
        "payment_failed_soft",
        "Failed payment: soft decline",
        [CaseKind.payment_failed.value],
        [
            Variant(
                "default",
                _steps(
                    ("PT0S", "email", "payment_failed_update_card", CARD, AFTER_RETRY),
                    ("PT0S", "in_app", "payment_failed_update_card", CARD, AFTER_RETRY),
                    ("P3D", "email", "payment_failed_offer", DISCOUNT),
                    ("P1D", "email", "payment_failed_final_notice", CARD, BEFORE_END),
                ),
            )
        ],
        {"decline_classes": ["soft"]},
    ),
    Playbook(
        "cancellation_scheduled",
        "Cancellation scheduled",
        [CaseKind.cancellation_scheduled.value],
        [
            Variant(
                "default",
                _steps(
                    ("PT0S", "in_app", "cancellation_offer", DISCOUNT),
                    ("PT0S", "email", "cancellation_offer", DISCOUNT),
                    ("P3D", "email", "cancellation_reminder", KEEP, BEFORE_END),
                ),
            )
        ],
    ),
    Playbook(
        "canceled",
        "Win-back after cancellation",
        [CaseKind.canceled.value],
        [Variant("default", _steps(("P3D", "email", "winback"), ("P14D", "email", "winback")))],
    ),
    Playbook(
        "downgraded",
        "Downgrade check-in",
        [CaseKind.downgraded.value],
        [Variant("default", _steps(("P1D", "email", "downgrade_followup")))],
    ),
    Playbook(
        "usage_drop",
        "Usage drop nudge",
        [CaseKind.usage_drop.value],
        [
            Variant(
                "default",
                _steps(("PT0S", "in_app", "usage_drop_checkin"), ("PT0S", "email", "usage_drop_checkin", DISCOUNT)),
            )
        ],
    ),
    Playbook(
        "high_risk",
        "High risk check-in",
        [CaseKind.high_risk.value],
        [Variant("default", _steps(("PT0S", "email", "high_risk_checkin", DISCOUNT)))],
    ),
)
