"""A tenant's widget settings: allowed origins, branding, exit-survey reasons and cancel handling.

A tenant without an `embed_settings` row, or a row without a setting, uses the defaults here. The
row's JSON stores only what the tenant changed; origins live in `embed_origins` (models.py). The
built-in survey reasons are labelled in each widget language; a tenant's own reasons carry the one
label the tenant gave them.
"""

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from churnsaver.backend.core.errors import InvalidInput

LOCALES = ("en", "es", "de")
MAX_ORIGINS = 20
MAX_REASONS = 12
MAX_NAME = 120
MAX_LABEL = 80
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_COLOR = "#2f6fed"


class CancelHandling(StrEnum):
    billing = "billing"  # Churn Saver cancels through the billing adapter
    merchant_event = "merchant_event"  # the widget hands the cancel back to the page as an event


# code -> locale -> label
DEFAULT_REASON_LABELS: dict[str, dict[str, str]] = {
    "too_expensive": {"en": "It's too expensive", "es": "Es demasiado caro", "de": "Es ist zu teuer"},
    "not_using": {"en": "I don't use it enough", "es": "No lo uso lo suficiente", "de": "Ich nutze es zu selten"},
    "missing_features": {
        "en": "It's missing something I need",
        "es": "Le falta algo que necesito",
        "de": "Mir fehlt eine Funktion",
    },
    "switching": {
        "en": "I'm switching to another product",
        "es": "Me cambio a otro producto",
        "de": "Ich wechsle zu einem anderen Produkt",
    },
    "technical_issues": {"en": "Technical problems", "es": "Problemas técnicos", "de": "Technische Probleme"},
    "other": {"en": "Something else", "es": "Otro motivo", "de": "Etwas anderes"},
}


@dataclass(frozen=True, slots=True)
class SurveyReason:
    code: str
    label: str | None = None  # None: a built-in reason, labelled in the customer's language

    def label_in(self, locale: str) -> str:
        if self.label is not None:
            return self.label
        labels = DEFAULT_REASON_LABELS.get(self.code, {})
        return labels.get(locale) or labels.get("en") or self.code


DEFAULT_REASONS = tuple(SurveyReason(code) for code in DEFAULT_REASON_LABELS)


@dataclass(frozen=True, slots=True)
class WidgetSettings:
    brand_name: str | None = None  # None: the tenant's name
    logo_url: str | None = None
    brand_color: str = DEFAULT_COLOR
    survey_reasons: tuple[SurveyReason, ...] = DEFAULT_REASONS
    cancel_handling: CancelHandling = CancelHandling.billing
    # Set from the row and the origins table when loaded; never in the JSON.
    allowed_origins: tuple[str, ...] = field(default=())
    widget_secret_set: bool = False

    def stored(self) -> dict[str, Any]:
        """The JSON of the row: only what differs from the defaults."""
        stored: dict[str, Any] = {}
        if self.brand_name is not None:
            stored["brand_name"] = self.brand_name
        if self.logo_url is not None:
            stored["logo_url"] = self.logo_url
        if self.brand_color != DEFAULT_COLOR:
            stored["brand_color"] = self.brand_color
        if self.survey_reasons != DEFAULT_REASONS:
            stored["survey_reasons"] = [{"code": r.code, "label": r.label} for r in self.survey_reasons]
        if self.cancel_handling is not CancelHandling.billing:
            stored["cancel_handling"] = self.cancel_handling.value
        return stored

    @classmethod
    def from_stored(cls, stored: dict[str, Any], *, origins: list[str], secret_set: bool) -> "WidgetSettings":
        reasons = stored.get("survey_reasons")
        return cls(
            brand_name=stored.get("brand_name"),
            logo_url=stored.get("logo_url"),
            brand_color=stored.get("brand_color", DEFAULT_COLOR),
            survey_reasons=(
                tuple(SurveyReason(r["code"], r.get("label")) for r in reasons) if reasons else DEFAULT_REASONS
            ),
            cancel_handling=CancelHandling(stored.get("cancel_handling", CancelHandling.billing.value)),
            allowed_origins=tuple(origins),
            widget_secret_set=secret_set,
        )

    def reason(self, code: str) -> SurveyReason | None:
        return next((reason for reason in self.survey_reasons if reason.code == code), None)

    def updated(
        self,
        *,
        brand_name: str | None = None,
        logo_url: str | None = None,
        brand_color: str | None = None,
        survey_reasons: list[tuple[str, str | None]] | None = None,
        cancel_handling: CancelHandling | None = None,
        allowed_origins: list[str] | None = None,
    ) -> "WidgetSettings":
        """These settings with the changes given (None: unchanged), validated: InvalidInput says what
        is wrong. An empty string clears the brand name or the logo; an empty list of reasons
        restores the built-in ones."""
        changes: dict[str, Any] = {}
        if brand_name is not None:
            changes["brand_name"] = _text(brand_name, "brandName", MAX_NAME) or None
        if logo_url is not None:
            changes["logo_url"] = _logo_url(logo_url)
        if brand_color is not None:
            if not COLOR.match(brand_color.strip()):
                raise InvalidInput("brandColor is a colour as #RRGGBB, e.g. #2f6fed")
            changes["brand_color"] = brand_color.strip().lower()
        if survey_reasons is not None:
            changes["survey_reasons"] = _reasons(survey_reasons)
        if cancel_handling is not None:
            changes["cancel_handling"] = cancel_handling
        if allowed_origins is not None:
            changes["allowed_origins"] = _origins(allowed_origins)
        return replace(self, **changes)


def normalized_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case, the way a browser sends `Origin`; None if `value` is
    not an http(s) origin (a path, a query, credentials or a wildcard make it none)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "*" in text:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


def _origins(values: list[str]) -> tuple[str, ...]:
    origins: list[str] = []
    for value in values:
        origin = normalized_origin(value)
        if origin is None:
            raise InvalidInput(f"{value!r} is not an origin such as https://app.example.com (no path, no wildcard)")
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} allowed origins")
    return tuple(origins)


def _text(value: str, name: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"{name} is at most {limit} printable characters")
    return text


def _logo_url(value: str) -> str | None:
    url = value.strip()
    if not url:
        return None
    # https only: the one-click page and the widget never load anything over plain http.
    if not url.startswith("https://") or len(url) > 2000 or any(c.isspace() or c in "\"'<>" for c in url):
        raise InvalidInput("logoUrl must be an https URL")
    return url


def _reasons(values: list[tuple[str, str | None]]) -> tuple[SurveyReason, ...]:
    if not values:
        return DEFAULT_REASONS
    if len(values) > MAX_REASONS:
        raise InvalidInput(f"at most {MAX_REASONS} survey reasons")
    reasons: list[SurveyReason] = []
    for code, label in values:
        if not REASON_CODE.match(code):
            raise InvalidInput(f"a reason code is lower-case letters, digits and underscores, not {code!r}")
        if any(reason.code == code for reason in reasons):
            raise InvalidInput(f"survey reason {code!r} is listed twice")
        text = _text(label, "a reason's label", MAX_LABEL) if label is not None else None
        if not text and code not in DEFAULT_REASON_LABELS:
            raise InvalidInput(f"survey reason {code!r} needs a label (only built-in reasons have their own)")
        reasons.append(SurveyReason(code, text or None))
    return tuple(reasons)
