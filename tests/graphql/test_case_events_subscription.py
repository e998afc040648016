"""The caseEvents subscription over graphql-transport-ws, through the real app on a real socket:
authenticated in connection_init, the caller's tenant only, filtered by kind; and scaled out, an
event recorded by another process reaches the client through Redis."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import websockets

from churnsaver.backend.billing import service as billing
from churnsaver.backend.cases.publishing import case_event_message, case_events_channel
from churnsaver.backend.cases.repository import CaseEventRepository
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pubsub import IN_PROCESS, REDIS_CHANNEL_PREFIX, publish_after_commit
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.databases import REDIS_URL, skip_or_fail
from tests.fixtures.offers import cancellation_case, choices, default_offer
from tests.fixtures.server import running_server

PROTOCOL = ["graphql-transport-ws"]
TIMEOUT = 20
CASE_EVENTS = """subscription($kinds: [CaseKind!]) {
  caseEvents(kinds: $kinds) { id type kind occurredAt actor case { id status customer { externalId } } }
}"""


@pytest.fixture(scope="module")
def server_url(settings: Settings) -> Iterator[str]:
    with running_server(settings) as url:
        yield url.replace("http://", "ws://") + "/graphql"


async def connect(url: str, api_key: str) -> websockets.ClientConnection:
    socket = await websockets.connect(url, subprotocols=PROTOCOL)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {api_key}"}}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


async def subscribe(socket: websockets.ClientConnection, operation_id: str, kinds: list[str] | None = None) -> None:
    payload = {"query": CASE_EVENTS, "variables": {"kinds": kinds}}
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def next_event(socket: websockets.ClientConnection) -> tuple[str, dict]:
    message = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["id"], message["payload"]["data"]["caseEvents"]


async def subscribed_in_process(tenant_id: uuid.UUID, count: int) -> None:
    """Until the server has `count` subscribers on the tenant's channel (a subscribe is not acknowledged)."""
    deadline = time.monotonic() + TIMEOUT
    while IN_PROCESS.subscriber_count(case_events_channel(tenant_id)) < count:
        assert time.monotonic() < deadline, "the subscription never reached the broker"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer cs_nope"}])
async def test_a_subscription_without_a_valid_key_is_refused(server_url, payload):
    async with websockets.connect(server_url, subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CASE_EVENTS}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()

    assert closed.value.rcvd.code == 4403


async def test_only_the_callers_tenants_events_arrive(server_url, db: Database, tenant, other_tenant):
    socket = await connect(server_url, tenant.api_key)
    try:
        await subscribe(socket, "mine")
        await subscribed_in_process(tenant.id, 1)

        await open_payment_failed_case(db, other_tenant.id, "user_Theirs")
        mine = await open_payment_failed_case(db, tenant.id, "user_Mine")
        operation, event = await next_event(socket)
    finally:
        await socket.close()

    assert operation == "mine"
    assert event["type"] == "OPENED" and event["kind"] == "PAYMENT_FAILED"
    assert event["actor"].startswith("event:whop:")  # the failed payment opened it
    assert event["case"]["status"] == "OPEN"
    assert event["case"]["customer"]["externalId"]
    assert str(mine.customer_id) not in json.dumps(event)  # ids are opaque


async def publish_as_kind(db: Database, tenant_id: uuid.UUID, case, kind: str) -> None:
    """A case event message as the cases domain publishes it, said to be of `kind`."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        [opened] = (await CaseEventRepository(session, tenant_id).page_of_case(case.id, first=1, after=None)).rows
        publish_after_commit(session, case_events_channel(tenant_id), case_event_message(case, opened) | {"kind": kind})


async def test_events_of_other_kinds_are_left_out(server_url, db: Database, tenant):
    socket = await connect(server_url, tenant.api_key)
    try:
        await subscribe(socket, "canceled", ["CANCELED"])
        await subscribe(socket, "failed", ["PAYMENT_FAILED", "USAGE_DROP"])
        await subscribed_in_process(tenant.id, 2)

        case = await open_payment_failed_case(db, tenant.id, "user_Kinds")
        first = await next_event(socket)
        await publish_as_kind(db, tenant.id, case, "canceled")
        second = await next_event(socket)
    finally:
        await socket.close()

    # The payment failure reached the PAYMENT_FAILED subscription only: the CANCELED one's first
    # event is the one published after it.
    assert (first[0], first[1]["kind"]) == ("failed", "PAYMENT_FAILED")
    assert (second[0], second[1]["kind"]) == ("canceled", "CANCELED")


async def test_a_client_that_leaves_is_unsubscribed(server_url, tenant):
    socket = await connect(server_url, tenant.api_key)
    await subscribe(socket, "1")
    await subscribed_in_process(tenant.id, 1)
    await socket.send(json.dumps({"id": "1", "type": "complete"}))
    deadline = time.monotonic() + TIMEOUT
    while IN_PROCESS.subscriber_count(case_events_channel(tenant.id)) > 0:
        assert time.monotonic() < deadline, "the subscription outlived its operation"
        await asyncio.sleep(0.01)
    await socket.close()


OPEN_CASE_IN_ANOTHER_PROCESS = """
import asyncio, sys, uuid
import churnsaver.backend.models  # every table, as a worker has them: foreign keys take their types
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pubsub import broker_for, publishing_through
from tests.fixtures.cases import open_payment_failed_case

async def main(settings, tenant_id):
    db = Database(settings)
    try:
        await open_payment_failed_case(db, tenant_id, "user_Elsewhere")
    finally:
        await db.dispose()

settings = Settings()
broker = broker_for(settings)
with publishing_through(broker):
    asyncio.run(main(settings, uuid.UUID(sys.argv[1])))
broker.close()
"""


def redis_subscribers(tenant_id: uuid.UUID) -> int:
    assert REDIS_URL is not None
    client = redis.Redis.from_url(REDIS_URL)
    try:
        [(_channel, count)] = client.pubsub_numsub(REDIS_CHANNEL_PREFIX + case_events_channel(tenant_id))
        return int(count)
    finally:
        client.close()


async def test_with_redis_a_case_opened_by_another_process_reaches_the_client(settings: Settings, tenant, repo_root):
    if not REDIS_URL:
        skip_or_fail("Redis tests need CHURNSAVER_TEST_REDIS_URL")
    redis_settings = settings.model_copy(update={"redis_url": REDIS_URL})
    with running_server(redis_settings) as url:
        socket = await connect(url.replace("http://", "ws://") + "/graphql", tenant.api_key)
        try:
            await subscribe(socket, "1")
            deadline = time.monotonic() + TIMEOUT
            while redis_subscribers(tenant.id) < 1:
                assert time.monotonic() < deadline, "the subscription never reached Redis"
                await asyncio.sleep(0.02)

            environment = os.environ | {
                "CHURNSAVER_DATABASE_URL": redis_settings.database_url or redis_settings.resolved_database_url,
                "CHURNSAVER_DATA_DIR": str(redis_settings.data_dir),
                "CHURNSAVER_REDIS_URL": REDIS_URL,
                "CHURNSAVER_ENV": "test",
            }
            command = [sys.executable, "-c", OPEN_CASE_IN_ANOTHER_PROCESS, str(tenant.id)]
            await asyncio.to_thread(subprocess.run, command, check=True, timeout=120, env=environment, cwd=repo_root)
            _operation, event = await next_event(socket)
        finally:
            await socket.close()

    assert event["type"] == "OPENED" and event["kind"] == "PAYMENT_FAILED"
    assert event["case"]["customer"]["externalId"]


async def test_offer_shown_accepted_and_failed_reach_the_subscription(server_url, db: Database, tenant, other_tenant):
    case = await cancellation_case(db, tenant.id, "user_OfferEvents")
    uncancel = await default_offer(db, tenant.id, "uncancel")
    socket = await connect(server_url, tenant.api_key)
    try:
        await subscribe(socket, "offers", kinds=["CANCELLATION_SCHEDULED"])
        await subscribed_in_process(tenant.id, 1)
        await choices(db, tenant.id, case.customer_id, case_id=case.id, surface="email")
        theirs = await cancellation_case(db, other_tenant.id, "user_OfferEventsTheirs")
        await choices(db, other_tenant.id, theirs.customer_id, case_id=theirs.id, surface="email")
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=uncancel.id,
            customer_id=case.customer_id,
            case_id=case.id,
            source="email",
            idempotency_key="subscribed-accept",
        )
        types = [(await next_event(socket))[1]["type"] for _ in range(4)]
    finally:
        await socket.close()
    assert types[:3] == ["OFFER_SHOWN", "OFFER_SHOWN", "OFFER_ACCEPTED"]
    assert types[3] == "STATUS_CHANGED"  # the sandbox's billing event recovered it
