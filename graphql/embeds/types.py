"""Embeds types: widget settings and their survey reasons."""

from enum import Enum

import strawberry

from churnsaver.backend.embeds.settings import CancelHandling, SurveyReason, WidgetSettings


@strawberry.enum(name="CancelHandling", description="What confirming a cancellation in the widget does.")
class CancelHandlingType(Enum):
    BILLING = strawberry.enum_value(
        CancelHandling.billing.value, description="Churn Saver cancels through the billing connection."
    )
    MERCHANT_EVENT = strawberry.enum_value(
        CancelHandling.merchant_event.value,
        description="The widget fires `churnsaver:canceled` on the page; the merchant cancels.",
    )


@strawberry.type(name="SurveyReason", description="A reason offered in the widget's exit survey.")
class SurveyReasonType:
    code: str = strawberry.field(description="What offers' cancel-reason rules match.")
    label: str = strawberry.field(description="The label in English (built-in reasons are shown localized).")
    custom_label: bool = strawberry.field(description="The tenant gave this label; else it is built in.")

    @classmethod
    def from_reason(cls, reason: SurveyReason) -> "SurveyReasonType":
        return cls(code=reason.code, label=reason.label_in("en"), custom_label=reason.label is not None)


@strawberry.type(name="WidgetSettings", description="How the tenant's site embeds the widget.")
class WidgetSettingsType:
    allowed_origins: list[str] = strawberry.field(
        description="Origins (https://app.example.com) whose pages may embed the widget and call its API."
    )
    brand_name: str | None = strawberry.field(
        description="Shown in the widget and one-click pages; null: the tenant's name."
    )
    logo_url: str | None
    brand_color: str = strawberry.field(description="#RRGGBB.")
    survey_reasons: list[SurveyReasonType]
    cancel_handling: CancelHandlingType
    widget_secret_set: bool = strawberry.field(description="A widget secret exists (rotateWidgetSecret; never shown).")

    @classmethod
    def from_settings(cls, settings: WidgetSettings) -> "WidgetSettingsType":
        return cls(
            allowed_origins=list(settings.allowed_origins),
            brand_name=settings.brand_name,
            logo_url=settings.logo_url,
            brand_color=settings.brand_color,
            survey_reasons=[SurveyReasonType.from_reason(reason) for reason in settings.survey_reasons],
            cancel_handling=CancelHandlingType[settings.cancel_handling.name.upper()],
            widget_secret_set=settings.widget_secret_set,
        )
