"""`churnsaver ingest retry`, run as a real subprocess: failed or quarantined deliveries go back to
pending and are processed; one that still fails stays quarantined, with its reason."""

import json
import uuid
from collections import Counter

from churnsaver.backend.core.db import Database
from churnsaver.backend.ingest.inbox import Delivery
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.ingest.repository import InboxEventRepository
from tests.cli.test_cli import run_cli
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.ingest_state import ingest_state
from tests.fixtures.poison_deliveries import POISONS, inbox, run_job, store_one, valid

POISON = POISONS[1]  # numbers beyond what either store holds


async def quarantined_rows(db: Database, settings, tenant: TenantWithKey) -> tuple[uuid.UUID, uuid.UUID]:
    """A poison delivery, quarantined by its job, and a delivery quarantined by a bug since fixed."""
    poison = await store_one(db, tenant.id, POISON.source, Delivery(POISON.external_id, "poison", POISON.body))
    await run_job(db, settings, tenant.id, [poison])
    fixed = await store_one(db, tenant.id, "api", valid("acct_fixed"))
    async with db.tenant_unit_of_work(tenant.id) as session:
        await InboxEventRepository(session, tenant.id).mark([fixed], InboxStatus.quarantined, "a bug since fixed")
    return poison, fixed


async def applied_events(db: Database, tenant: TenantWithKey) -> Counter[str]:
    state = await ingest_state(db, tenant.id)
    return Counter({key[0]: count for key, count in state.timeline.items()})


def retry(settings, tenant: TenantWithKey, *args: str) -> dict:
    result = run_cli(settings, "ingest", "retry", "--tenant", tenant.tenant.slug, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_retry_processes_the_fixed_rows_and_reports_the_ones_still_failing(
    settings, db: Database, tenant: TenantWithKey
) -> None:
    poison, _fixed = await quarantined_rows(db, settings, tenant)

    first = retry(settings, tenant)
    text = run_cli(settings, "ingest", "retry", "--tenant", tenant.tenant.slug)

    reason = POISON.reasons[db.engine.dialect.name]
    assert (first["requeued"], first["processed"]) == (2, 1)
    [still] = first["still_failing"]
    assert still["id"] == str(poison) and reason in still["reason"]
    rows = await inbox(db, tenant.id)
    assert (rows["m_acct_fixed"].status, rows["m_acct_fixed"].error) == (InboxStatus.processed, None)
    assert rows[POISON.external_id].status == POISON.status and reason in rows[POISON.external_id].error
    assert text.returncode == 0, text.stderr
    assert "requeued 1, processed 0, still failing 1" in text.stdout
    assert f"{poison}: " in text.stdout
    assert (await applied_events(db, tenant))["acct_fixed"] == 1  # applied once, over both runs


async def test_retry_of_chosen_ids_leaves_the_others_alone(settings, db: Database, tenant: TenantWithKey) -> None:
    _poison, fixed = await quarantined_rows(db, settings, tenant)

    report = retry(settings, tenant, "--id", str(fixed))

    assert (report["requeued"], report["processed"], report["still_failing"]) == (1, 1, [])
    rows = await inbox(db, tenant.id)
    assert (rows["m_acct_fixed"].status, rows[POISON.external_id].status) == (
        InboxStatus.processed,
        POISON.status,
    )


async def test_bad_input_is_one_clear_line_and_exit_1(
    settings, db: Database, tenant: TenantWithKey, other_tenant: TenantWithKey
) -> None:
    poison, _fixed = await quarantined_rows(db, settings, other_tenant)
    slug = tenant.tenant.slug

    malformed = run_cli(settings, "ingest", "retry", "--tenant", slug, "--id", "nope")
    theirs = run_cli(settings, "ingest", "retry", "--tenant", slug, "--id", str(poison))
    no_tenant = run_cli(settings, "ingest", "retry", "--tenant", "no-such-tenant")

    assert malformed.returncode == theirs.returncode == no_tenant.returncode == 1
    assert "'nope' is not an inbox id or a failedEvents id" in malformed.stderr
    assert f"no failed or quarantined event with id {poison}" in theirs.stderr
    assert "tenant 'no-such-tenant' not found" in no_tenant.stderr
    assert "Traceback" not in malformed.stderr + theirs.stderr + no_tenant.stderr
    assert (await inbox(db, other_tenant.id))[POISON.external_id].status == POISON.status
