"""failedEvents lists the tenant's deliveries that were not processed, newest first, with the
reason; ingestStats counts them; retryFailedEvents (write scope) requeues them for processing."""

from typing import Any

from sqlalchemy import select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.ingest.inbox import Delivery
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.ingest.repository import InboxEventRepository
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.factories import TenantWithKey, create_api_key_for
from tests.fixtures.graphql import graphql
from tests.fixtures.jobs import clear_job_tables
from tests.fixtures.poison_deliveries import POISONS, inbox, run_job, store_one, valid

FAILED_EVENTS = """
query($first: Int, $after: String) {
  failedEvents(first: $first, after: $after) {
    totalCount
    edges { cursor node { id source eventType externalId status reason receivedAt payload payloadTruncated } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RETRY = """
mutation($ids: [ID!]) {
  retryFailedEvents(ids: $ids) {
    __typename
    ... on FailedEventsRetried { requeuedIds }
    ... on UserError { code message }
  }
}
"""
POISON = POISONS[1]  # numbers beyond what either store holds


async def quarantine_one(db: Database, settings: Any, tenant: TenantWithKey, external_id: str) -> None:
    """A poison delivery processed by its job: set aside (failed) with its reason."""
    delivery = Delivery(external_id, "poison", POISON.body.replace(POISON.external_id, external_id))
    await run_job(db, settings, tenant.id, [await store_one(db, tenant.id, POISON.source, delivery)])


async def query(client: Any, tenant: TenantWithKey, text: str, **variables: Any) -> dict[str, Any]:
    body = await graphql(client, text, variables, headers=tenant.headers)
    assert "errors" not in body, body["errors"]
    return body["data"]


async def test_failed_events_lists_the_tenants_quarantined_deliveries_newest_first_with_the_reason(
    settings, db: Database, client, tenant: TenantWithKey, other_tenant: TenantWithKey
) -> None:
    await run_job(db, settings, tenant.id, [await store_one(db, tenant.id, "api", valid("acct_fine"))])
    for number in range(3):
        await quarantine_one(db, settings, tenant, f"m_poison_{number}")
    await quarantine_one(db, settings, other_tenant, "m_theirs")

    first = (await query(client, tenant, FAILED_EVENTS, first=2))["failedEvents"]
    rest = (await query(client, tenant, FAILED_EVENTS, first=2, after=first["pageInfo"]["endCursor"]))["failedEvents"]

    nodes = [edge["node"] for edge in first["edges"] + rest["edges"]]
    assert [node["externalId"] for node in nodes] == ["m_poison_2", "m_poison_1", "m_poison_0"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (3, True, False)
    node = nodes[0]
    assert (node["source"], node["eventType"], node["status"]) == ("api", "poison", POISON.status.upper())
    assert POISON.reasons[db.engine.dialect.name] in node["reason"]
    assert "1e400" in node["payload"] and node["payloadTruncated"] is False


async def test_ingest_stats_counts_the_days_failed_deliveries(
    settings, db: Database, client, tenant: TenantWithKey
) -> None:
    await run_job(db, settings, tenant.id, [await store_one(db, tenant.id, "api", valid("acct_fine"))])
    await quarantine_one(db, settings, tenant, "m_poison")

    data = await query(client, tenant, "{ ingestStats { source day accepted failed } }")

    assert data["ingestStats"] == [{"source": "api", "day": str(utcnow().date()), "accepted": 2, "failed": 1}]


async def test_retry_failed_events_requeues_them_for_the_processing_job(
    settings, db: Database, client, tenant: TenantWithKey
) -> None:
    await clear_job_tables(db)
    await quarantine_one(db, settings, tenant, "m_poison")
    # A delivery quarantined earlier whose cause has since been fixed.
    fixed = await store_one(db, tenant.id, "api", valid("acct_fixed"))
    async with db.tenant_unit_of_work(tenant.id) as session:
        await InboxEventRepository(session, tenant.id).mark([fixed], InboxStatus.quarantined, "a bug since fixed")
    listed = (await query(client, tenant, FAILED_EVENTS))["failedEvents"]["edges"]
    ids = [edge["node"]["id"] for edge in listed]

    retried = (await query(client, tenant, RETRY, ids=ids))["retryFailedEvents"]

    assert retried["__typename"] == "FailedEventsRetried"
    assert sorted(retried["requeuedIds"]) == sorted(ids)
    rows = await inbox(db, tenant.id)
    assert {rows["m_poison"].status, rows["m_acct_fixed"].status} == {InboxStatus.pending}
    async with db.system_session() as session:
        [job] = (await session.execute(select(OutboxJob).where(OutboxJob.tenant_id == tenant.id))).scalars()
    await run_job(db, settings, tenant.id, job.kwargs["inbox_ids"])
    rows = await inbox(db, tenant.id)
    assert (rows["m_acct_fixed"].status, rows["m_acct_fixed"].error) == (InboxStatus.processed, None)
    assert rows["m_poison"].status == POISON.status
    assert POISON.reasons[db.engine.dialect.name] in rows["m_poison"].error


async def test_retry_failed_events_refuses_an_unknown_id_and_needs_write_scope(
    settings, db: Database, client, tenant: TenantWithKey, other_tenant: TenantWithKey
) -> None:
    await quarantine_one(db, settings, other_tenant, "m_theirs")
    [theirs] = (await query(client, other_tenant, FAILED_EVENTS))["failedEvents"]["edges"]

    refused = (await query(client, tenant, RETRY, ids=[theirs["node"]["id"]]))["retryFailedEvents"]
    malformed = (await query(client, tenant, RETRY, ids=["nope"]))["retryFailedEvents"]
    read_only = TenantWithKey(other_tenant.tenant, await create_api_key_for(db, other_tenant.id, scopes=["read"]))
    denied = await graphql(client, RETRY, {"ids": None}, headers=read_only.headers)

    assert (refused["__typename"], refused["code"]) == ("UserError", "BAD_USER_INPUT")
    assert (malformed["__typename"], malformed["code"]) == ("UserError", "NOT_FOUND")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await inbox(db, other_tenant.id))["m_theirs"].status == POISON.status
