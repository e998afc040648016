"""Cross-tenant attempts on cases: every read of a case (the list and its filters, node, a customer's
cases, the timeline), every mutation, and the caseEvents subscription reach the caller's own tenant
only; another tenant's case is "not found" and stays as it was."""

import json

import pytest
import websockets
from sqlalchemy import func, select
from strawberry.relay import to_base64

from churnsaver.backend.cases import service
from churnsaver.backend.cases.models import CaseEvent, RecoveryCase
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import NotFound
from churnsaver.graphql.dataloaders import Loaders
from churnsaver.tenants.auth import Scope
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.factories import scoped_subject
from tests.fixtures.graphql import graphql
from tests.fixtures.server import running_server
from tests.graphql.test_case_events_subscription import (
    CASE_EVENTS,
    PROTOCOL,
    connect,
    next_event,
    subscribe,
    subscribed_in_process,
)

EVERY_CASE_FIELD = """
  id kind status priority revenueAtRisk { amount currency } openedAt firstTouchDueAt firstTouchAt overdue
  resolvedAt verifiedAt resolutionReason assignee customer { id externalId } trigger { type occurredAt } details
  events(first: 100) { edges { node { id type kind occurredAt actor data case { id } } } }
"""


@pytest.fixture
async def their_case(db: Database, other_tenant) -> RecoveryCase:
    return await open_payment_failed_case(db, other_tenant.id, "user_TheirCase")


async def what_is_stored(db: Database, case: RecoveryCase) -> tuple:
    async with db.system_session() as session:
        row = await session.get(RecoveryCase, case.id)
        assert row is not None
        events = await session.scalar(select(func.count()).where(CaseEvent.case_id == case.id))
        return row.status, row.assignee, row.resolution_reason, row.manual_status, events


async def test_the_list_never_shows_another_tenants_cases(client, db, tenant, other_tenant, their_case):
    mine = await open_payment_failed_case(db, tenant.id, "user_MyCase")
    customer_id = to_base64("Customer", their_case.customer_id)
    query = f"""query($filter: CaseFilter) {{ cases(first: 100, filter: $filter) {{ edges {{ node {{
      {EVERY_CASE_FIELD} }} }} }} }}"""

    everything = await graphql(client, query, headers=tenant.headers)
    by_their_customer = await graphql(client, query, {"filter": {"customerId": customer_id}}, headers=tenant.headers)

    assert [edge["node"]["id"] for edge in everything["data"]["cases"]["edges"]] == [to_base64("Case", mine.id)]
    assert by_their_customer["data"]["cases"]["edges"] == []


async def test_another_tenants_case_by_node_id_is_not_found(client, tenant, their_case):
    query = f"query($id: ID!) {{ node(id: $id) {{ ... on Case {{ {EVERY_CASE_FIELD} }} }} }}"

    body = await graphql(client, query, {"id": to_base64("Case", their_case.id)}, headers=tenant.headers)

    assert body["data"]["node"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_another_tenants_customer_and_its_cases_are_not_found(client, tenant, their_case):
    query = "query($id: ID!) { customer(id: $id) { cases { edges { node { id } } } } }"

    body = await graphql(client, query, {"id": to_base64("Customer", their_case.customer_id)}, headers=tenant.headers)

    assert body["data"]["customer"] is None


@pytest.mark.parametrize(
    ("mutation", "arguments"),
    [
        ("addCaseNote", 'text: "smuggled"'),
        ("assignCase", 'assignee: "intruder"'),
        ("dismissCase", 'reason: "not yours"'),
        ("markCaseLost", 'reason: "not yours"'),
        ("reopenCase", ""),
    ],
)
async def test_every_mutation_on_another_tenants_case_is_not_found_and_changes_nothing(
    client, db, tenant, their_case, mutation, arguments
):
    before = await what_is_stored(db, their_case)
    query = f"""mutation($id: ID!) {{ {mutation}(id: $id{", " + arguments if arguments else ""}) {{
      __typename ... on UserError {{ code message }} ... on CaseChanged {{ case {{ id }} }} }} }}"""

    body = await graphql(client, query, {"id": to_base64("Case", their_case.id)}, headers=tenant.headers)

    assert body["data"][mutation] == {"__typename": "UserError", "code": "NOT_FOUND", "message": "case not found"}
    assert await what_is_stored(db, their_case) == before


async def test_case_settings_are_the_callers_own(client, tenant, other_tenant):
    update = "mutation { updateCaseSettings(input: {verifyDays: 30}) { __typename } }"
    read = "{ caseSettings { verifyDays } }"

    await graphql(client, update, headers=other_tenant.headers)

    assert (await graphql(client, read, headers=tenant.headers))["data"]["caseSettings"]["verifyDays"] == 14
    assert (await graphql(client, read, headers=other_tenant.headers))["data"]["caseSettings"]["verifyDays"] == 30


async def test_below_graphql_the_service_and_the_loaders_find_no_other_tenants_case(db, tenant, their_case):
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(NotFound):
            await service.get_case(session, subject, their_case.id)
        with pytest.raises(NotFound):
            await service.case_events(session, subject, their_case.id)
        with pytest.raises(NotFound):
            await service.add_note(session, subject, their_case.id, "smuggled")
    loaders = Loaders(db, tenant.id)

    assert await loaders.case.load(their_case.id) is None


@pytest.fixture(scope="module")
def server_url(settings):
    with running_server(settings) as url:
        yield url.replace("http://", "ws://") + "/graphql"


async def test_the_subscription_delivers_no_other_tenants_events(server_url, db, tenant, other_tenant):
    socket = await connect(server_url, tenant.api_key)
    try:
        await subscribe(socket, "mine")
        await subscribed_in_process(tenant.id, 1)
        await open_payment_failed_case(db, other_tenant.id, "user_NotForYou")
        mine = await open_payment_failed_case(db, tenant.id, "user_ForYou")

        _operation, event = await next_event(socket)
    finally:
        await socket.close()

    assert event["case"]["id"] == to_base64("Case", mine.id)


async def test_a_subscription_cannot_start_without_a_tenants_key(server_url):
    async with websockets.connect(server_url, subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CASE_EVENTS}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()

    assert closed.value.rcvd.code == 4403
