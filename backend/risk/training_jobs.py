"""The training job: `risk.train` runs the training of a version row queued by `queue_training`.

The row exists before the job does (its progress is visible at once), and the job only runs a
row that is still queued: a retry or a second copy of a finished run does nothing.

Every process that enqueues a job loads the job modules (the outbox checks the name), the API
and the CLI included: training (pandas, scipy, CatBoost: seconds to import) is imported inside
the functions, so only a process that trains pays for it.
"""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.risk.models import RiskModel
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime

TRAIN = "risk.train"


async def queue_training(
    session: AsyncSession, tenant_id: uuid.UUID, *, as_of: datetime | None = None, force: bool = False
) -> RiskModel:
    """A queued version and its training job, in the caller's transaction."""
    from churnsaver.backend.risk.training import create_version

    row = await create_version(session, tenant_id, as_of=as_of)
    enqueue(session, TRAIN, tenant_id=tenant_id, model_id=str(row.id), force=force)
    return row


# Training fails the same way when retried (the run is marked failed, not raised): few retries,
# only for a job that could not start (the database unreachable, say).
@job(TRAIN, max_retries=3)
async def train(tenant_id: str, model_id: str, force: bool = False) -> None:
    from churnsaver.backend.risk.training import train_model

    await train_model(runtime().db, uuid.UUID(tenant_id), force=force, model_id=uuid.UUID(model_id))
