"""Through the real job machinery (outbox, relay, Dramatiq workers): a hard decline becomes a case,
the case.changed consumer enrolls it, and its first steps become messages once, however many
dispatch jobs run."""

from sqlalchemy import select

from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.campaigns import messages, no_quiet_hours, only_campaign, open_failed_payment, steps
from tests.fixtures.jobs import eventually


async def test_a_hard_decline_reaches_the_customer_once_through_the_jobs(settings, db, tenant) -> None:
    await no_quiet_hours(db, tenant.id)
    step_list = [
        {"delay": "PT0S", "channel": "email", "template": "payment_failed_update_card"},
        {"delay": "PT0S", "channel": "in_app", "template": "payment_failed_update_card"},
    ]
    await only_campaign(db, tenant.id, kinds=["payment_failed"], steps=step_list)
    async with running_jobs(settings, db, consume=True, worker_threads=3):
        case = await open_failed_payment(db, tenant.id, "user_jobs")

        async def both_sent() -> bool:
            return sorted(m.channel for m in await messages(db, tenant.id)) == ["email", "in_app"]

        await eventually(both_sent, timeout=30)
        async with db.tenant_unit_of_work(tenant.id) as session:
            for _ in range(5):  # duplicates of the dispatch job, as a redelivery would make
                enqueue(session, DISPATCH_DUE, tenant_id=tenant.id)

        async def none_queued() -> bool:
            # This tenant's only: on a shared database the sweep queues one for every tenant.
            async with db.system_session() as session:
                statement = select(OutboxJob.kwargs).where(OutboxJob.actor_name == DISPATCH_DUE)
                queued = (await session.execute(statement)).scalars()
                return not any(kwargs.get("tenant_id") == str(tenant.id) for kwargs in queued)

        await eventually(none_queued, timeout=30)
    sent = await messages(db, tenant.id)
    assert len(sent) == 2 and {m.case_id for m in sent} == {case.id}
    assert {s.status for s in await steps(db, tenant.id)} == {"sent"}
