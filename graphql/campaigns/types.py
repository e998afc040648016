"""Campaign types: the campaign, its audience, variants and steps, and what it has done so far."""

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.relay import to_base64

from churnsaver.backend.campaigns import models
from churnsaver.backend.campaigns.models import Campaign
from churnsaver.graphql.cases.types import CaseKind
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection


@strawberry.enum(name="CampaignStatus", description="Only ACTIVE campaigns enroll cases and send their steps.")
class CampaignStatus(Enum):
    ACTIVE = models.CampaignStatus.active.value
    PAUSED = models.CampaignStatus.paused.value
    ARCHIVED = models.CampaignStatus.archived.value


@strawberry.type(name="CampaignStep")
class CampaignStepType:
    delay: str = strawberry.field(
        description="An ISO 8601 duration after the case opened (PT0S, PT90S, P1D); with "
        "before_access_ends, how long before the customer's access ends."
    )
    channel: str = strawberry.field(description="email, sms, in_app or whop.")
    template: str = strawberry.field(description="A template key channels knows for that channel.")
    offer_id: strawberry.ID | None = strawberry.field(
        description="One of your offers; the message carries it, or the best one the customer may have when it is sent."
    )
    condition: str | None = strawberry.field(description="before_access_ends, after_next_retry, or null.")


@strawberry.type(name="CampaignVariant")
class CampaignVariantType:
    name: str
    weight: int = strawberry.field(description="Its share of the cases not held out, relative to the others.")
    steps: list[CampaignStepType]


@strawberry.type(name="CampaignAudience", description="Null criteria take everyone; MRR in minor units.")
class CampaignAudienceType:
    tiers: list[str] | None
    plans: list[str] | None
    mrr_min: int | None
    mrr_max: int | None
    decline_classes: list[str] | None
    countries: list[str] | None


@strawberry.type(name="CampaignStats")
class CampaignStatsType:
    enrolled: int = strawberry.field(description="Cases given a variant.")
    held_out: int = strawberry.field(description="Cases in the holdout: recorded, never contacted.")
    steps_pending: int
    steps_sent: int
    steps_skipped: int = strawberry.field(description="Suppressed by channels (opt-out, no address), with a reason.")
    steps_stopped: int = strawberry.field(description="A stop condition held: case closed, campaign paused, opt-out.")


@strawberry.type(name="Campaign")
class CampaignType(RowNode):
    row: strawberry.Private[Campaign]
    loader = "campaign"
    name: str
    playbook: str | None = strawberry.field(description="The default playbook it started as; null for your own.")
    case_kinds: list[CaseKind]
    audience: CampaignAudienceType
    status: CampaignStatus
    holdout_share: float = strawberry.field(description="The share of cases held out (0 to 0.9).")
    variants: list[CampaignVariantType]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Campaign) -> "CampaignType":
        audience = row.audience or {}
        return cls(
            row=row,
            id=cls.global_id(row),
            name=row.name,
            playbook=row.playbook,
            case_kinds=[CaseKind(kind) for kind in row.case_kinds],
            audience=CampaignAudienceType(
                tiers=audience.get("tiers"),
                plans=audience.get("plans"),
                mrr_min=audience.get("mrr_min"),
                mrr_max=audience.get("mrr_max"),
                decline_classes=audience.get("decline_classes"),
                countries=audience.get("countries"),
            ),
            status=CampaignStatus(row.status),
            holdout_share=row.holdout_share,
            variants=[
                CampaignVariantType(
                    name=variant["name"],
                    weight=variant.get("weight", 1),
                    steps=[
                        CampaignStepType(
                            delay=step["delay"],
                            channel=step["channel"],
                            template=step["template"],
                            offer_id=strawberry.ID(to_base64("Offer", step["offer_id"]))
                            if step.get("offer_id")
                            else None,
                            condition=step.get("condition"),
                        )
                        for step in variant["steps"]
                    ],
                )
                for variant in row.variants
            ],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="What the campaign has done so far.")
    async def stats(self, info: strawberry.Info) -> CampaignStatsType:
        found = await info.context.loaders.campaign_stats.load(self.row.id)
        steps = found.steps_by_status
        return CampaignStatsType(
            enrolled=found.enrolled,
            held_out=found.held_out,
            steps_pending=steps.get("pending", 0),
            steps_sent=steps.get("sent", 0),
            steps_skipped=steps.get("skipped", 0),
            steps_stopped=steps.get("stopped", 0),
        )


CampaignConnection = Connection[CampaignType]
