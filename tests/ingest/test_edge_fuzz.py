"""Generated input at the ingest edges: the events API, the webhook receivers (validly signed) and
the events import. Whatever arrives: never a 5xx or a traceback; a refusal stores nothing; what is
accepted is processed (not failed); and a valid item sent after it is processed."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from churnsaver.backend.core.accepted_json import MAX_DEPTH
from churnsaver.backend.customers.events import Source
from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.backend.ingest.imports import import_events
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.backend.ingest.tasks import process_inbox
from tests.fixtures.billing_payloads import stripe_subscription_event, whop_membership_deactivated
from tests.fixtures.senders import (
    SignedDelivery,
    WebhookTarget,
    deliver,
    stripe_delivery,
    whop_v1_delivery,
)

pytestmark = pytest.mark.fuzz

# Written into the JSON text in place of its quoted marker: Python cannot hold the number itself.
INFINITY_MARKER = "__1e400__"
PROCESSED = {InboxStatus.processed, InboxStatus.ignored}

awkward_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "nul\x00", "\u2028", "é", "", " "]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**30, -(10**30), 10**308, 10**400, 2**63, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(INFINITY_MARKER),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, awkward_text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(awkward_text, children, max_size=4)),
    max_leaves=12,
)
deep_values = st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 3).map(lambda depth: _nested(depth))
values = st.one_of(json_values, deep_values)
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-01:00", "+14:00", "-12:00", ""])
timestamps = st.one_of(
    st.builds(lambda moment, offset: moment.isoformat() + offset, st.datetimes(), offsets),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-13-01T00:00:00Z"]),
    values,
)
unix_times = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64), st.sampled_from([253402300799, 253402300800, -62135596800])
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"n": value}
    return value


def json_text(value: Any) -> str:
    """`value` as JSON text, lone surrogates and NULs escaped, the marker written as 1e400."""
    return json.dumps(value).replace(f'"{INFINITY_MARKER}"', "1e400")


async def inbox_count(db, tenant_id: uuid.UUID) -> int:
    async with db.tenant_session(tenant_id) as session:
        statement = select(func.count()).select_from(InboxEvent).where(InboxEvent.tenant_id == tenant_id)
        return (await session.execute(statement)).scalar_one()


async def process(db, tenant_id: uuid.UUID, source: str, external_ids: list[str]) -> list[str]:
    """Process the tenant's rows with these ids, as the job does; their statuses after."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        statement = select(InboxEvent.id).where(
            InboxEvent.tenant_id == tenant_id, InboxEvent.source == source, InboxEvent.external_id.in_(external_ids)
        )
        ids = list((await session.execute(statement)).scalars())
        await process_inbox(session, tenant_id, ids)
    async with db.tenant_session(tenant_id) as session:
        statement = select(InboxEvent.status, InboxEvent.error).where(InboxEvent.id.in_(ids))
        rows = list(await session.execute(statement))
    assert all(status in PROCESSED for status, _error in rows), rows
    return [status for status, _error in rows]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# --- the events API ----------------------------------------------------------------------------

item_fields = st.fixed_dictionaries(
    {},
    optional={
        "properties": values,
        "traits": values,
        "timestamp": timestamps,
        "customerId": st.one_of(awkward_text, values),
        "event": st.one_of(st.sampled_from(["report.exported", "subscription.started", "payment.failed"]), values),
        "extra": values,
    },
)
period_end = st.fixed_dictionaries({"currentPeriodEnd": timestamps, "note": values})


@given(fields=item_fields, subscription=st.one_of(st.none(), period_end))
async def test_the_events_api_answers_any_item_and_processes_what_it_accepts(client, db, tenant, fields, subscription):
    message_id = new_id("m")
    item = {"type": "track", "messageId": message_id, "customerId": "cus_fuzz", "event": "report.exported", **fields}
    if subscription is not None:
        item |= {"event": "subscription.started", "properties": subscription}
    before = await inbox_count(db, tenant.id)

    body = '{"batch": [' + json_text(item) + "]}"
    response = await client.post(
        "/v1/events", content=body.encode(), headers={**tenant.headers, "content-type": "application/json"}
    )

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert await inbox_count(db, tenant.id) == before
    else:
        assert response.json()["accepted"] == 1
        assert await process(db, tenant.id, Source.api, [message_id]) == [InboxStatus.processed]
    valid = {"type": "track", "messageId": new_id("ok"), "customerId": "cus_fuzz", "event": "report.exported"}
    assert (await client.post("/v1/events", json={"batch": [valid]}, headers=tenant.headers)).status_code == 200
    assert await process(db, tenant.id, Source.api, [valid["messageId"]]) == [InboxStatus.processed]


# --- the webhook receivers ---------------------------------------------------------------------


async def assert_answered(client, db, target: WebhookTarget, delivery: SignedDelivery, event_id: str) -> None:
    before = await inbox_count(db, target.tenant_id)

    response = await deliver(client, target.path, delivery)

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert await inbox_count(db, target.tenant_id) == before
    else:
        await process(db, target.tenant_id, target.source, [event_id])


whop_fields = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": timestamps,
        "extra": values,
        "data.cancellation_reason": values,
        "data.renewal_period_end": st.one_of(timestamps, unix_times),
        "data.manage_url": values,
    },
)


@given(fields=whop_fields)
async def test_a_signed_whop_delivery_is_answered_and_processed_when_accepted(client, db, whop, fields):
    envelope = whop_membership_deactivated(event_id=new_id("msg"), user_id=new_id("user"))
    for name, value in fields.items():
        record = envelope["data"] if name.startswith("data.") else envelope
        record[name.removeprefix("data.")] = value
    body = json_text(envelope).encode()

    await assert_answered(client, db, whop, whop_v1_delivery(whop.secret, {}, body=body), envelope["id"])

    valid = whop_membership_deactivated(event_id=new_id("msg"))
    assert (await deliver(client, whop.path, whop_v1_delivery(whop.secret, valid))).status_code == 200
    assert await process(db, whop.tenant_id, Source.whop, [valid["id"]]) == [InboxStatus.processed]


stripe_fields = st.fixed_dictionaries(
    {},
    optional={
        "created": unix_times,
        "extra": values,
        "data.object.current_period_end": unix_times,
        "data.object.metadata": values,
        "data.object.pause_collection": st.one_of(values, st.fixed_dictionaries({"resumes_at": unix_times})),
    },
)


@given(fields=stripe_fields)
async def test_a_signed_stripe_event_is_answered_and_processed_when_accepted(client, db, stripe, fields):
    event = stripe_subscription_event(event_id=new_id("evt"), customer_id=new_id("cus"))
    for name, value in fields.items():
        record = event["data"]["object"] if name.startswith("data.object.") else event
        record[name.removeprefix("data.object.")] = value
    body = json_text(event).encode()

    await assert_answered(client, db, stripe, stripe_delivery(stripe.secret, {}, body=body), event["id"])

    valid = stripe_subscription_event(event_id=new_id("evt"))
    assert (await deliver(client, stripe.path, stripe_delivery(stripe.secret, valid))).status_code == 200
    assert await process(db, stripe.tenant_id, Source.stripe, [valid["id"]]) == [InboxStatus.processed]


# --- the events import -------------------------------------------------------------------------


@given(fields=item_fields)
async def test_an_events_import_rejects_a_bad_line_alone_and_imports_the_rest(db, tenant, tmp_path, fields):
    message_id, valid_id = new_id("m"), new_id("ok")
    item = {"type": "track", "messageId": message_id, "customerId": "cus_fuzz", "event": "report.exported", **fields}
    valid = {"type": "track", "messageId": valid_id, "customerId": "cus_fuzz", "event": "report.exported"}
    path = Path(tmp_path) / f"{message_id}.jsonl"
    path.write_text(json_text(item) + "\n" + json.dumps(valid) + "\n", encoding="utf-8")

    report = await import_events(db, tenant.id, path, on_progress=lambda _done: None)

    assert report.imported + report.rejected == 2
    assert [rejection.line for rejection in report.rejections] in ([], [1])
    imported = [valid_id] if report.rejections else [message_id, valid_id]
    async with db.tenant_session(tenant.id) as session:
        statement = select(CustomerEvent.dedupe_key).where(CustomerEvent.dedupe_key.in_([message_id, valid_id]))
        assert sorted((await session.execute(statement)).scalars()) == sorted(imported)
