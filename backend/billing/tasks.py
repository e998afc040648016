"""The billing domain's job: the fallback that settles a redemption whose first try did not (the
process died, or the provider gave no answer). It asks the provider again with the redemption's
own idempotency key, so the provider applies it once however often this runs."""

import uuid

import structlog

from churnsaver.backend.billing.service import APPLY_REDEMPTION, apply_redemption
from churnsaver.backend.offers.models import RedemptionStatus
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime

logger = structlog.get_logger(__name__)


class StillPending(Exception):
    """The provider gave no answer again: the job's retry (with backoff) asks once more."""


@job(APPLY_REDEMPTION, queue="default")
async def apply_pending_redemption(tenant_id: str, redemption_id: str) -> None:
    outcome = await apply_redemption(runtime().db, uuid.UUID(tenant_id), uuid.UUID(redemption_id))
    if outcome.status == RedemptionStatus.PENDING.value:
        raise StillPending(f"redemption {redemption_id} is still unanswered")
    logger.info("billing.settled", tenant_id=tenant_id, redemption_id=redemption_id, status=outcome.status)
