"""Offer kinds as data: each kind's value validated, what it costs (its value to the customer),
its built-in wording per locale, and the default offers every tenant starts with.

The cost of an offer is money the merchant gives up: 30% off a 40.00 plan for 3 cycles costs
36.00; free days cost the days' share of the monthly price; a pause, a plan switch and the
one-click actions cost nothing (nothing is given away).
"""

from dataclasses import dataclass, field
from typing import Any

from churnsaver.backend.cases.models import CaseKind
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.money import currency_code, format_money
from churnsaver.backend.offers.models import OfferKind

FALLBACK_LOCALE = "en"
MAX_CYCLES = 24
MAX_DAYS = 365
MAX_TEXT = 500


def value_from(kind: str, raw: Any) -> dict[str, Any]:
    """A kind's value validated from what a client sends; InvalidInput says what is wrong."""
    if kind not in OfferKind.__members__:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(OfferKind.__members__)}")
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidInput("an offer's value is an object")
    match OfferKind(kind):
        case OfferKind.PERCENT_OFF:
            return {"percent": _whole(raw, "percent", 1, 100), "cycles": _whole(raw, "cycles", 1, MAX_CYCLES)}
        case OfferKind.AMOUNT_OFF:
            try:
                currency = currency_code(raw.get("currency"))
            except ValueError as error:
                raise InvalidInput(str(error)) from None
            return {
                "amount": _whole(raw, "amount", 1, 10**12),
                "currency": currency,
                "cycles": _whole(raw, "cycles", 1, MAX_CYCLES),
            }
        case OfferKind.FREE_DAYS:
            return {"days": _whole(raw, "days", 1, MAX_DAYS)}
        case OfferKind.PAUSE:
            return {"cycles": _whole(raw, "cycles", 1, 12)}
        case OfferKind.PLAN_SWITCH:
            plan = raw.get("plan")
            if not isinstance(plan, str) or not plan.strip() or len(plan) > 255:
                raise InvalidInput("a plan switch names the provider's plan id (1 to 255 characters)")
            name = raw.get("plan_name") or plan
            return {"plan": plan.strip(), "plan_name": str(name)[:255]}
        case _:
            if raw:
                raise InvalidInput(f"a {kind} offer takes no value")
            return {}


def _whole(raw: dict[str, Any], name: str, low: int, high: int) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{name} is a whole number from {low} to {high}")
    return value


def cost_of(kind: str, value: dict[str, Any], mrr: int | None, currency: str | None) -> int:
    """The offer's value to the customer in minor units of `currency`, for a plan of `mrr` a month."""
    monthly = mrr or 0
    match kind:
        case OfferKind.PERCENT_OFF:
            return monthly * int(value["percent"]) * int(value["cycles"]) // 100
        case OfferKind.AMOUNT_OFF:
            if currency != value["currency"]:
                return int(value["amount"]) * int(value["cycles"])
            return min(int(value["amount"]), monthly) * int(value["cycles"])
        case OfferKind.FREE_DAYS:
            return monthly * int(value["days"]) // 30
        case _:
            return 0


# Built-in wording per kind and locale; `{...}` filled from the value.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        OfferKind.PERCENT_OFF: ("{percent}% off", "{percent}% off your next {cycles} payments."),
        OfferKind.AMOUNT_OFF: ("{amount} off", "{amount} off each of your next {cycles} payments."),
        OfferKind.FREE_DAYS: ("{days} free days", "{days} days free, added to your subscription."),
        OfferKind.PAUSE: ("Pause instead", "Pause your subscription for {cycles} billing cycles instead."),
        OfferKind.PLAN_SWITCH: ("Switch to {plan_name}", "Move to the {plan_name} plan instead of leaving."),
        OfferKind.UNCANCEL: ("Keep my subscription", "Withdraw the cancellation and keep your subscription."),
        OfferKind.RESUME: ("Resume my subscription", "Resume your paused subscription now."),
        OfferKind.UPDATE_PAYMENT: ("Update my card", "Update your payment method to keep your subscription."),
        OfferKind.RETRY_PAYMENT: ("Retry my payment", "Try the open payment again now."),
    },
    "es": {
        OfferKind.PERCENT_OFF: ("{percent}% de descuento", "{percent}% de descuento en tus próximos {cycles} pagos."),
        OfferKind.AMOUNT_OFF: (
            "{amount} de descuento",
            "{amount} de descuento en cada uno de tus próximos {cycles} pagos.",
        ),
        OfferKind.FREE_DAYS: ("{days} días gratis", "{days} días gratis añadidos a tu suscripción."),
        OfferKind.PAUSE: ("Pausar en su lugar", "Pausa tu suscripción durante {cycles} ciclos de facturación."),
        OfferKind.PLAN_SWITCH: ("Cambiar a {plan_name}", "Cámbiate al plan {plan_name} en lugar de irte."),
        OfferKind.UNCANCEL: ("Mantener mi suscripción", "Retira la cancelación y conserva tu suscripción."),
        OfferKind.RESUME: ("Reanudar mi suscripción", "Reanuda ahora tu suscripción pausada."),
        OfferKind.UPDATE_PAYMENT: (
            "Actualizar mi tarjeta",
            "Actualiza tu método de pago para conservar tu suscripción.",
        ),
        OfferKind.RETRY_PAYMENT: ("Reintentar el pago", "Vuelve a intentar ahora el pago pendiente."),
    },
    "de": {
        OfferKind.PERCENT_OFF: ("{percent} % Rabatt", "{percent} % Rabatt auf Ihre nächsten {cycles} Zahlungen."),
        OfferKind.AMOUNT_OFF: ("{amount} Rabatt", "{amount} Rabatt auf jede Ihrer nächsten {cycles} Zahlungen."),
        OfferKind.FREE_DAYS: ("{days} Tage gratis", "{days} kostenlose Tage für Ihr Abonnement."),
        OfferKind.PAUSE: ("Stattdessen pausieren", "Pausieren Sie Ihr Abonnement für {cycles} Abrechnungszeiträume."),
        OfferKind.PLAN_SWITCH: ("Zu {plan_name} wechseln", "Wechseln Sie zum Tarif {plan_name}, statt zu kündigen."),
        OfferKind.UNCANCEL: ("Abonnement behalten", "Ziehen Sie die Kündigung zurück und behalten Sie Ihr Abonnement."),
        OfferKind.RESUME: ("Abonnement fortsetzen", "Setzen Sie Ihr pausiertes Abonnement jetzt fort."),
        OfferKind.UPDATE_PAYMENT: ("Karte aktualisieren", "Aktualisieren Sie Ihre Zahlungsmethode."),
        OfferKind.RETRY_PAYMENT: ("Zahlung erneut versuchen", "Versuchen Sie die offene Zahlung jetzt erneut."),
    },
}


def locales_to_try(locale: str | None) -> list[str]:
    """The locale, its language alone, then English."""
    chosen: list[str] = []
    for candidate in (locale, (locale or "").split("-")[0].split("_")[0].lower(), FALLBACK_LOCALE):
        if candidate and candidate not in chosen:
            chosen.append(candidate)
    return chosen


def wording(kind: str, value: dict[str, Any], texts: dict[str, Any], locale: str | None) -> tuple[str, str]:
    """(title, description) in the first locale the tenant's own texts or the built-in ones have."""
    fill = {name: item for name, item in value.items()}
    if "amount" in value:
        fill["amount"] = format_money(int(value["amount"]), value.get("currency"))
    for candidate in locales_to_try(locale):
        own = texts.get(candidate)
        if isinstance(own, dict) and own.get("title"):
            return str(own["title"]), str(own.get("description") or "")
        if candidate in TEXTS:
            title, description = TEXTS[candidate][OfferKind(kind)]
            return title.format(**fill), description.format(**fill)
    raise AssertionError("English wording exists for every kind")


def texts_from(raw: Any) -> dict[str, Any]:
    """The tenant's own wording validated: {locale: {title, description}}."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidInput("texts are an object of locale -> {title, description}")
    texts: dict[str, Any] = {}
    for locale, entry in raw.items():
        if not isinstance(locale, str) or not 2 <= len(locale) <= 16 or not isinstance(entry, dict):
            raise InvalidInput("texts are an object of locale -> {title, description}")
        title, description = entry.get("title"), entry.get("description", "")
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TEXT:
            raise InvalidInput(f"texts {locale}: a title of 1 to {MAX_TEXT} characters")
        if not isinstance(description, str) or len(description) > MAX_TEXT:
            raise InvalidInput(f"texts {locale}: a description of at most {MAX_TEXT} characters")
        texts[locale] = {"title": title.strip(), "description": description.strip()}
    return texts


@dataclass(frozen=True, slots=True)
class DefaultOffer:
    key: str
    name: str
    kind: OfferKind
    value: dict[str, Any] = field(default_factory=dict)
    eligibility: dict[str, Any] = field(default_factory=dict)
    monthly_budget: int | None = None
    priority: int = 0


DEFAULT_OFFER_BUDGET = 30_000  # 300.00 a month in the tenant's currency

# The offers every tenant starts with (created on first use, editable); the default playbooks use them.
DEFAULT_OFFERS = (
    DefaultOffer(
        "uncancel",
        "Keep the subscription",
        OfferKind.UNCANCEL,
        eligibility={"case_kinds": [CaseKind.cancellation_scheduled.value]},
        priority=10,
    ),
    DefaultOffer(
        "update_payment",
        "Update the payment method",
        OfferKind.UPDATE_PAYMENT,
        eligibility={"case_kinds": [CaseKind.payment_failed.value]},
        priority=10,
    ),
    DefaultOffer(
        "percent_30_x3",
        "30% off for 3 months",
        OfferKind.PERCENT_OFF,
        value={"percent": 30, "cycles": 3},
        eligibility={
            "case_kinds": [
                CaseKind.cancellation_scheduled.value,
                CaseKind.payment_failed.value,
                CaseKind.canceled.value,
                CaseKind.high_risk.value,
                CaseKind.usage_drop.value,
            ]
        },
        monthly_budget=DEFAULT_OFFER_BUDGET,
    ),
)
