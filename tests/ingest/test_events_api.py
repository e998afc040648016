"""The events API: `POST /v1/events` stores good items once per messageId, queues them for processing
and reports bad ones by index; `normalize_item` turns items into canonical events."""

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from churnsaver.backend.core.accepted_json import MAX_DEPTH
from churnsaver.backend.customers.events import DeclineClass, EventType, Source
from churnsaver.backend.customers.models import Customer, CustomerEvent
from churnsaver.backend.ingest.events_api import MAX_BODY_BYTES, RECEIVED_AT, normalize_item
from churnsaver.backend.ingest.models import InboxEvent
from churnsaver.backend.ingest.tasks import process_inbox
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.ingest_state import ingest_counters

RECEIVED = "2025-03-01T12:00:00+00:00"


def track(message_id: str, customer_id: str = "cus_1", event: str = "report.exported", **fields) -> dict:
    return {"type": "track", "messageId": message_id, "customerId": customer_id, "event": event, **fields}


def identify(message_id: str, customer_id: str = "cus_1", **traits) -> dict:
    return {"type": "identify", "messageId": message_id, "customerId": customer_id, "traits": traits}


async def post_batch(client, tenant, items: list, **kwargs):
    return await client.post("/v1/events", json={"batch": items}, headers=tenant.headers, **kwargs)


async def inbox(db, tenant_id: uuid.UUID) -> list[InboxEvent]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(InboxEvent).where(InboxEvent.tenant_id == tenant_id).order_by(InboxEvent.external_id)
        return list((await session.execute(statement)).scalars())


async def queued_inbox_ids(db, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.system_session() as session:
        statement = select(OutboxJob).where(
            OutboxJob.tenant_id == tenant_id, OutboxJob.actor_name == "ingest.process_inbox"
        )
        jobs = (await session.execute(statement)).scalars()
        return {uuid.UUID(inbox_id) for job in jobs for inbox_id in job.kwargs["inbox_ids"]}


# --- the HTTP endpoint -------------------------------------------------------------------------


async def test_a_batch_is_stored_and_queued_for_processing(client, db, tenant):
    response = await post_batch(client, tenant, [track("m1"), identify("m2", email="ada@example.com")])

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = await inbox(db, tenant.id)
    assert [(row.source, row.external_id, row.event_type) for row in rows] == [
        ("api", "m1", "report.exported"),
        ("api", "m2", "identify"),
    ]
    assert await queued_inbox_ids(db, tenant.id) == {row.id for row in rows}
    assert await ingest_counters(db, tenant.id, Source.api) == (2, 0, 0)


async def test_concurrent_batches_sharing_message_ids_store_and_count_each_id_once(client, db, tenant):
    # Eight batches at once, each repeating half of the one before: every id is accepted by
    # exactly one of them, whichever commits first, and queued for processing once.
    batches = [[track(f"m{number}") for number in range(start, start + 40)] for start in range(0, 160, 20)]

    responses = await asyncio.gather(*(post_batch(client, tenant, batch) for batch in batches))

    assert [response.status_code for response in responses] == [200] * len(batches)
    answers = [response.json() for response in responses]
    assert [answer["accepted"] + answer["duplicates"] for answer in answers] == [40] * len(batches)
    distinct = {item["messageId"] for batch in batches for item in batch}
    assert sum(answer["accepted"] for answer in answers) == len(distinct) == 180
    rows = await inbox(db, tenant.id)
    assert {row.external_id for row in rows} == distinct and len(rows) == len(distinct)
    assert await queued_inbox_ids(db, tenant.id) == {row.id for row in rows}
    assert await ingest_counters(db, tenant.id, Source.api) == (180, 40 * len(batches) - 180, 0)


async def test_the_stored_item_carries_its_receive_time_so_processing_is_deterministic(client, db, tenant):
    await post_batch(client, tenant, [track("m1")])

    (row,) = await inbox(db, tenant.id)
    stored = json.loads(row.payload)
    received_at = datetime.fromisoformat(stored[RECEIVED_AT])
    assert abs((received_at - row.received_at).total_seconds()) < 5
    (event,) = normalize_item(stored)
    assert event.occurred_at == received_at


async def test_a_client_cannot_choose_its_receive_time(client, db, tenant):
    await post_batch(client, tenant, [track("m1", receivedAt="2001-01-01T00:00:00Z")])

    (row,) = await inbox(db, tenant.id)
    assert not json.loads(row.payload)[RECEIVED_AT].startswith("2001")


async def test_the_stored_item_reads_back_as_the_values_sent(client, db, tenant):
    big = (
        '{"type": "track", "messageId": "m1", "customerId": "cus_1", "event": "report.exported", "properties": '
        '{"big": 123456789012345678901234567890, "none": null}}'
    )
    plain = (
        '{"type": "track", "messageId": "m2", "customerId": "cus_1", "event": "report.exported", "properties": '
        '{"text": "caf\\u00e9 \\u2028", "ratio": 1e-7, "nested": [1, 2.5, {"ok": true}]}}'
    )

    response = await client.post(
        "/v1/events",
        content=f'{{"batch": [{big}, {plain}]}}'.encode(),
        headers={**tenant.headers, "content-type": "application/json"},
    )

    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    for row, sent in zip(await inbox(db, tenant.id), [big, plain], strict=True):
        stored = json.loads(row.payload)
        del stored[RECEIVED_AT]
        # An integer beyond 64 bits is read as the double both stores read it as.
        assert stored == json.loads(sent, parse_int=lambda digits: int(digits) if len(digits) < 19 else float(digits))


async def test_a_repeated_message_id_is_a_duplicate_across_requests_and_within_one(client, db, tenant):
    await post_batch(client, tenant, [track("m1"), track("m2")])

    response = await post_batch(client, tenant, [track("m2"), track("m3"), track("m3")])

    assert response.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert [row.external_id for row in await inbox(db, tenant.id)] == ["m1", "m2", "m3"]
    assert len(await queued_inbox_ids(db, tenant.id)) == 3
    assert await ingest_counters(db, tenant.id, Source.api) == (3, 2, 0)


async def test_a_partial_batch_keeps_the_good_items_and_reports_each_bad_one(client, db, tenant):
    items = [
        track("m1"),
        {"type": "page", "messageId": "m2", "customerId": "cus_1"},
        track("m3", customerId=""),
        "not an object",
        track("m5", event="payment.failed", properties={"amount": 12.5, "currency": "usd"}),
        identify("m6"),
    ]

    response = await post_batch(client, tenant, items)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(entry["index"], entry["reason"]) for entry in body["rejected"]] == [
        (1, "type must be 'track' or 'identify'"),
        (2, "customerId must be a non-empty string of printable characters"),
        (3, "an item must be a JSON object"),
        (4, "properties.amount must be a non-negative integer amount in minor units (cents)"),
    ]
    assert [row.external_id for row in await inbox(db, tenant.id)] == ["m1", "m6"]
    assert await ingest_counters(db, tenant.id, Source.api) == (2, 0, 4)


async def test_a_batch_with_no_valid_item_is_400_with_the_reasons_and_stores_nothing(client, db, tenant):
    response = await post_batch(client, tenant, [{"type": "track"}, track("m2", timestamp="yesterday")])

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["message"] == "no item in the batch is valid"
    assert [entry["index"] for entry in body["rejected"]] == [0, 1]
    assert "timestamp: 'yesterday' is not ISO 8601" in body["rejected"][1]["reason"]
    assert await inbox(db, tenant.id) == []
    assert await queued_inbox_ids(db, tenant.id) == set()
    assert await ingest_counters(db, tenant.id, Source.api) == (0, 0, 2)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"batch": [', "the body is not valid JSON (malformed JSON: Expecting value at line 1 column 12)"),
        (b"\xff\xfe\x00garbage", "the body is not valid JSON (malformed JSON: Expecting value at line 1 column 1)"),
        (b'{"batch": [{"type": "track", "value": NaN}]}', "the body is not valid JSON (NaN is not JSON)"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not valid JSON (nested deeper than 64 levels)"),
        (b'[{"type": "track"}]', 'the body must be {"batch": [...]}'),
        (b'{"events": []}', 'the body must be {"batch": [...]}'),
        (b'{"batch": {"type": "track"}}', 'the body must be {"batch": [...]}'),
        (b'{"batch": []}', "a batch holds 1 to 1000 items, not 0"),
    ],
)
async def test_a_malformed_body_is_400_with_a_reason_and_stores_nothing(client, db, tenant, body, reason):
    response = await client.post(
        "/v1/events", content=body, headers={**tenant.headers, "content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == reason
    assert await inbox(db, tenant.id) == []
    assert await ingest_counters(db, tenant.id, Source.api) == (0, 0, 1)


async def test_more_than_1000_items_is_400(client, db, tenant):
    response = await post_batch(client, tenant, [track(f"m{n}") for n in range(1001)])

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "a batch holds 1 to 1000 items, not 1001"
    assert await inbox(db, tenant.id) == []


async def test_1000_items_are_accepted_in_one_request(client, db, tenant):
    response = await post_batch(client, tenant, [track(f"m{n:04d}") for n in range(1000)])

    assert response.json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert len(await inbox(db, tenant.id)) == 1000


async def test_a_body_over_the_limit_is_413_and_stores_nothing(client, db, tenant):
    padding = "x" * (MAX_BODY_BYTES + 1)

    response = await post_batch(client, tenant, [track("m1", properties={"padding": padding})])

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await inbox(db, tenant.id) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_is_415_and_stores_nothing(client, db, tenant, content_type):
    headers = {**tenant.headers, **({"content-type": content_type} if content_type else {})}

    response = await client.post("/v1/events", content=json.dumps({"batch": [track("m1")]}), headers=headers)

    assert response.status_code == 415
    assert await inbox(db, tenant.id) == []
    assert await ingest_counters(db, tenant.id, Source.api) == (0, 0, 1)


async def test_a_json_media_type_with_a_charset_is_json(client, tenant):
    headers = {**tenant.headers, "content-type": "application/json; charset=utf-8"}

    response = await client.post("/v1/events", content=json.dumps({"batch": [track("m1")]}), headers=headers)

    assert response.status_code == 200


async def test_without_an_api_key_it_is_401(client, db, tenant):
    response = await client.post("/v1/events", json={"batch": [track("m1")]})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert await inbox(db, tenant.id) == []


async def test_a_read_only_key_is_403_and_stores_nothing(client, db, tenant):
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])

    response = await client.post(
        "/v1/events", json={"batch": [track("m1")]}, headers={"Authorization": f"Bearer {read_only}"}
    )

    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "FORBIDDEN",
        "message": "the events API needs an API key with the write scope",
    }
    assert await inbox(db, tenant.id) == []


async def test_a_write_only_key_may_send_events(client, db, tenant):
    write_only = await create_api_key_for(db, tenant.id, scopes=["write"])

    response = await client.post(
        "/v1/events", json={"batch": [track("m1")]}, headers={"Authorization": f"Bearer {write_only}"}
    )

    assert response.status_code == 200


async def test_only_post_is_allowed(client, tenant):
    response = await client.get("/v1/events", headers=tenant.headers)

    assert response.status_code == 405


async def test_the_same_message_id_in_two_tenants_is_two_independent_events(client, db, tenant, other_tenant):
    await post_batch(client, tenant, [track("shared", customer_id="cus_a")])

    response = await post_batch(client, other_tenant, [track("shared", customer_id="cus_a")])

    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    (mine,) = await inbox(db, tenant.id)
    (theirs,) = await inbox(db, other_tenant.id)
    assert mine.id != theirs.id
    assert await queued_inbox_ids(db, other_tenant.id) == {theirs.id}
    assert await ingest_counters(db, tenant.id, Source.api) == (1, 0, 0)
    assert await ingest_counters(db, other_tenant.id, Source.api) == (1, 0, 0)


async def test_a_key_only_ever_writes_its_own_tenant(client, db, tenant, other_tenant):
    await post_batch(client, other_tenant, [track("m1"), track("m2")])

    assert await inbox(db, tenant.id) == []
    assert {row.tenant_id for row in await inbox(db, other_tenant.id)} == {other_tenant.id}


async def process_queued(db, tenant_id: uuid.UUID) -> None:
    """Run the processing the endpoint queued, as the job would."""
    inbox_ids = list(await queued_inbox_ids(db, tenant_id))
    async with db.tenant_unit_of_work(tenant_id) as session:
        await process_inbox(session, tenant_id, inbox_ids)


async def customer_of(db, tenant_id: uuid.UUID, external_id: str) -> Customer:
    async with db.tenant_session(tenant_id) as session:
        statement = select(Customer).where(Customer.tenant_id == tenant_id, Customer.external_id == external_id)
        return (await session.execute(statement)).scalar_one()


async def test_queued_items_are_processed_into_the_customer_and_the_timeline(client, db, tenant):
    await post_batch(
        client,
        tenant,
        [
            identify("m1", customer_id="cus_9", email="ada@example.com", plan="pro"),
            track("m2", customer_id="cus_9", event="report.exported", timestamp="2025-02-01T10:00:00Z"),
        ],
    )

    await process_queued(db, tenant.id)

    customer = await customer_of(db, tenant.id, "cus_9")
    assert customer.email == "ada@example.com"
    assert customer.traits["plan"] == "pro"
    async with db.tenant_session(tenant.id) as session:
        statement = select(CustomerEvent).where(CustomerEvent.tenant_id == tenant.id)
        timeline = {event.dedupe_key: event for event in (await session.execute(statement)).scalars()}
    assert timeline["m2"].type == "report.exported"
    assert timeline["m2"].customer_id == customer.id


async def test_one_tenants_customer_id_never_touches_another_tenants_customer(client, db, tenant, other_tenant):
    await post_batch(client, tenant, [identify("a1", customer_id="cus_shared", plan="pro")])
    await process_queued(db, tenant.id)

    await post_batch(client, other_tenant, [identify("b1", customer_id="cus_shared", plan="free", seats=1)])
    await process_queued(db, other_tenant.id)

    mine = await customer_of(db, tenant.id, "cus_shared")
    theirs = await customer_of(db, other_tenant.id, "cus_shared")
    assert mine.id != theirs.id
    assert mine.traits == {"plan": "pro"}
    assert theirs.traits == {"plan": "free", "seats": 1}


# --- what the edge accepts (core/accepted_json.py) ---------------------------------------------

VALID = '{"type": "track", "messageId": "ok", "customerId": "cus_1", "event": "report.exported"}'
REFUSED_ITEMS = [
    ('"properties": {"note": "\\ud800"}', "properties.note", "lone surrogate"),
    ('"properties": {"v": 1e400, "w": 1000000000000000000000000000000}', "properties.v", "finite"),
    ('"properties": {"v": 1e400}', "properties.v", "finite"),
    ('"properties": {"\\ud800": 1}', "properties.\\ud800", "lone surrogate"),
    ('"type": "identify", "traits": {"plan": "\\u0000"}', "traits.plan", "NUL"),
    ('"timestamp": "9999-12-31T23:59:59-01:00"', "timestamp", "outside years 1 to 9999"),
    ('"timestamp": "0001-01-01T00:00:00+01:00"', "timestamp", "outside years 1 to 9999"),
    (
        '"event": "subscription.started", "properties": {"currentPeriodEnd": "9999-12-31T23:59:59-01:00"}',
        "properties.currentPeriodEnd",
        "outside years 1 to 9999",
    ),
    (
        '"event": "subscription.started", "properties": {"currentPeriodEnd": "0001-01-01T00:00:00+01:00"}',
        "properties.currentPeriodEnd",
        "outside years 1 to 9999",
    ),
]


def refused_item(fields: str) -> str:
    """A track item with `fields` written over its own, as raw JSON text."""
    return '{"type": "track", "messageId": "bad", "customerId": "cus_1", "event": "report.exported", ' + fields + "}"


async def post_text(client, tenant, items: list[str]):
    body = ('{"batch": [' + ", ".join(items) + "]}").encode()
    return await client.post("/v1/events", content=body, headers={**tenant.headers, "content-type": "application/json"})


@pytest.mark.parametrize(("fields", "field", "reason"), REFUSED_ITEMS)
async def test_an_item_no_store_can_hold_is_refused_by_index_naming_the_field(
    client, db, tenant, fields, field, reason
):
    response = await post_text(client, tenant, [refused_item(fields), VALID])

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    [rejection] = body["rejected"]
    assert rejection["index"] == 0
    assert rejection["reason"].startswith(f"{field}: ") and reason in rejection["reason"]
    assert [row.external_id for row in await inbox(db, tenant.id)] == ["ok"]
    await process_queued(db, tenant.id)
    assert [row.status for row in await inbox(db, tenant.id)] == ["processed"]


@pytest.mark.parametrize(("fields", "field", "reason"), REFUSED_ITEMS)
async def test_a_batch_of_only_such_items_is_400_and_stores_nothing(client, db, tenant, fields, field, reason):
    response = await post_text(client, tenant, [refused_item(fields)])

    assert response.status_code == 400
    [rejection] = response.json()["rejected"]
    assert rejection["reason"].startswith(f"{field}: ") and reason in rejection["reason"]
    assert await inbox(db, tenant.id) == []


async def test_an_item_nested_deeper_than_the_limit_is_refused_alone(client, db, tenant):
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)

    response = await post_text(client, tenant, [refused_item(f'"properties": {{"deep": {deep}}}'), VALID])

    [rejection] = response.json()["rejected"]
    assert rejection["index"] == 0 and "nested deeper than" in rejection["reason"]
    assert [row.external_id for row in await inbox(db, tenant.id)] == ["ok"]


# --- normalize_item ----------------------------------------------------------------------------


def stamped(item: dict) -> dict:
    return {**item, RECEIVED_AT: RECEIVED}


def test_a_usage_event_keeps_its_name_properties_and_timestamp():
    item = track("m1", event="report.exported", properties={"rows": 120}, timestamp="2025-02-01T09:30:00+01:00")

    (event,) = normalize_item(stamped(item))

    assert event.type == "report.exported"
    assert event.occurred_at == datetime(2025, 2, 1, 8, 30, tzinfo=UTC)
    assert event.source == Source.api
    assert event.dedupe_key == "m1"
    assert (event.customer.provider, event.customer.provider_id) == ("api", "cus_1")
    assert event.properties == {"rows": 120}
    assert event.subscription is None


def test_without_a_timestamp_the_event_happened_when_it_was_received():
    (event,) = normalize_item(stamped(track("m1")))

    assert event.occurred_at == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_normalizing_twice_gives_the_same_events():
    item = stamped(identify("m1", email="ada@example.com"))

    assert normalize_item(item) == normalize_item(json.loads(json.dumps(item)))


def test_identify_carries_traits_and_the_customer_profile():
    (event,) = normalize_item(
        stamped(identify("m1", email="ada@example.com", firstName="Ada", lastName="Lovelace", phone="+4420", seats=3))
    )

    assert event.type == EventType.identify
    assert event.traits == {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "phone": "+4420",
        "seats": 3,
    }
    assert (event.customer.email, event.customer.name, event.customer.phone) == (
        "ada@example.com",
        "Ada Lovelace",
        "+4420",
    )


@pytest.mark.parametrize(
    ("name", "event_type", "status"),
    [
        ("subscription.started", EventType.subscription_started, "active"),
        ("subscription.plan_changed", EventType.plan_changed, None),
        ("subscription.canceled", EventType.subscription_canceled, "canceled"),
        ("subscription.paused", EventType.subscription_paused, "paused"),
        ("subscription.resumed", EventType.subscription_resumed, "active"),
    ],
)
def test_reserved_subscription_events_become_canonical_with_their_state(name, event_type, status):
    properties = {"plan": "pro", "mrr": 4900, "currency": "eur", "subscriptionId": "sub_9"}

    (event,) = normalize_item(stamped(track("m1", event=name, properties=properties)))

    assert event.type == event_type
    assert event.subscription is not None
    assert event.subscription.external_id == "sub_9"
    assert event.subscription.status == status
    assert (event.subscription.plan, event.subscription.mrr, event.subscription.currency) == ("pro", 4900, "EUR")


def test_a_subscription_without_its_own_id_is_the_customers_subscription():
    (event,) = normalize_item(stamped(track("m1", customer_id="cus_7", event="subscription.started")))

    assert event.subscription is not None
    assert event.subscription.external_id == "cus_7"
    assert event.subscription.mrr is None


def test_a_failed_payment_carries_its_amount_and_decline_class():
    properties = {"amount": 1999, "currency": "usd", "decline_code": "stolen_card", "invoice": "in_1"}

    (event,) = normalize_item(stamped(track("m1", event="payment.failed", properties=properties)))

    assert event.type == EventType.payment_failed
    assert event.properties == {
        "amount": 1999,
        "currency": "USD",
        "decline_code": "stolen_card",
        "decline_class": DeclineClass.hard,
        "invoice": "in_1",
    }


def test_a_failed_payment_without_a_decline_code_is_a_soft_decline():
    (event,) = normalize_item(stamped(track("m1", event="payment.failed", properties={"amount": 5, "currency": "usd"})))

    assert event.properties["decline_class"] == DeclineClass.soft


def test_a_succeeded_payment_is_canonical():
    (event,) = normalize_item(
        stamped(track("m1", event="payment.succeeded", properties={"amount": 1999, "currency": "usd"}))
    )

    assert event.type == EventType.payment_succeeded
    assert (event.properties["amount"], event.properties["currency"]) == (1999, "USD")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"type": "alias", "messageId": "m", "customerId": "c"}, "type must be 'track' or 'identify'"),
        ({"type": "track", "customerId": "c", "event": "e"}, "messageId must be a non-empty string"),
        (track("m", customer_id=42), "customerId must be a non-empty string"),
        (track("m", customer_id="a\x00b"), "customerId must be a non-empty string of printable characters"),
        (track("m" * 256), "messageId is longer than 255 characters"),
        ({"type": "track", "messageId": "m", "customerId": "c"}, "event must be a non-empty string"),
        (track("m", event="e" * 101), "event is longer than 100 characters"),
        (track("m", properties=[1]), "properties must be an object"),
        (identify("m", email=7), "traits.email must be a non-empty string"),
        (track("m", timestamp="2025-02-01T09:30:00"), "needs a timezone"),
        (track("m", timestamp=1738400000), "timestamp: must be an ISO 8601 string"),
        (track("m", event="subscription.renewed"), "event 'subscription.renewed' is not a reserved event"),
        (track("m", event="payment_failed"), "event name 'payment_failed' is reserved for billing events"),
        (
            track("m", event="subscription.started", properties={"mrr": 4900}),
            "properties.mrr needs properties.currency",
        ),
        (
            track("m", event="subscription.started", properties={"mrr": "49.00", "currency": "USD"}),
            "properties.mrr must be a non-negative integer amount in minor units",
        ),
        (
            track("m", event="payment.failed", properties={"amount": -1, "currency": "USD"}),
            "properties.amount must be a non-negative integer",
        ),
        (
            track("m", event="payment.failed", properties={"amount": True, "currency": "USD"}),
            "properties.amount must be a non-negative integer",
        ),
        (
            track("m", event="payment.failed", properties={"amount": 100, "currency": "dollars"}),
            "properties.currency must be a three-letter ISO 4217 code",
        ),
    ],
)
def test_an_invalid_item_says_why(item, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_item(stamped(item))


def test_an_item_with_neither_timestamp_nor_receive_time_cannot_be_normalized():
    with pytest.raises(ValueError, match="needs receivedAt"):
        normalize_item(track("m1"))
