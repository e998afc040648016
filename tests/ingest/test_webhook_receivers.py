"""The webhook receivers over HTTP: deliveries signed as Whop and Stripe sign them are stored once
and queued for processing; every bad one gets its status, stores nothing and is counted."""

import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest import service as endpoints
from churnsaver.backend.ingest.models import InboxEvent, WebhookEndpoint
from churnsaver.backend.ingest.tasks import process_inbox
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.billing_payloads import (
    stripe_invoice_payment_failed,
    stripe_subscription_event,
    whop_membership_deactivated,
    whop_payment_failed,
    whop_test_delivery,
    whop_v5_membership,
)
from tests.fixtures.ingest_state import ingest_counters
from tests.fixtures.jobs import WAIT_SECONDS, clear_job_tables, eventually
from tests.fixtures.senders import (
    SignedDelivery,
    WebhookTarget,
    create_webhook_target,
    deliver,
    stripe_delivery,
    whop_body,
    whop_legacy_delivery,
    whop_v1_delivery,
)
from tests.fixtures.server import running_server

PROCESS_JOB = "ingest.process_inbox"


async def inbox(db, tenant_id: uuid.UUID) -> list[InboxEvent]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(InboxEvent).where(InboxEvent.tenant_id == tenant_id).order_by(InboxEvent.received_at)
        return list((await session.execute(statement)).scalars())


async def queued_inbox_ids(db, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    async with db.system_session() as session:
        statement = select(OutboxJob).where(OutboxJob.tenant_id == tenant_id, OutboxJob.actor_name == PROCESS_JOB)
        jobs = (await session.execute(statement)).scalars()
        return [uuid.UUID(inbox_id) for job in jobs for inbox_id in job.kwargs["inbox_ids"]]


async def expire_previous_secret(db, target: WebhookTarget) -> None:
    async with db.tenant_unit_of_work(target.tenant_id) as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == target.endpoint_id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )


async def rotate(db, settings, target: WebhookTarget) -> WebhookTarget:
    async with db.tenant_unit_of_work(target.tenant_id) as session:
        rotated = await endpoints.rotate_secret(
            session,
            AuthSubject.system(target.tenant_id),
            target.endpoint_id,
            signing_secret=None,
            secret_key=settings.resolved_secret_key,
        )
    return WebhookTarget(target.endpoint_id, target.tenant_id, target.source, rotated.signing_secret)


async def assert_refused(response, db, target: WebhookTarget, status: int, reason_part: str) -> None:
    assert response.status_code == status, response.text
    assert reason_part in response.json()["error"]["message"]
    assert await inbox(db, target.tenant_id) == []
    assert await queued_inbox_ids(db, target.tenant_id) == []


# Accepted deliveries


async def test_a_whop_v1_delivery_is_stored_as_sent_and_queued(client, db, whop):
    envelope = whop_payment_failed(event_id="evt_whop_1")
    delivery = whop_v1_delivery(whop.secret, envelope)

    response = await deliver(client, whop.path, delivery)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    [row] = await inbox(db, whop.tenant_id)
    assert (row.source, row.external_id, row.event_type, row.status) == (
        "whop",
        "evt_whop_1",
        "payment.failed",
        "pending",
    )
    assert row.payload == delivery.body.decode()
    assert await queued_inbox_ids(db, whop.tenant_id) == [row.id]
    assert await ingest_counters(db, whop.tenant_id, "whop") == (1, 0, 0)


async def test_a_duplicate_is_acknowledged_and_changes_nothing(client, db, whop):
    envelope = whop_payment_failed(event_id="evt_twice")

    first = await deliver(client, whop.path, whop_v1_delivery(whop.secret, envelope))
    # A retry: same event, a fresh signature and timestamp.
    second = await deliver(client, whop.path, whop_v1_delivery(whop.secret, envelope, timestamp=int(time.time()) - 60))

    assert first.json() == {"received": True, "duplicate": False}
    assert second.status_code == 200 and second.json() == {"received": True, "duplicate": True}
    assert len(await inbox(db, whop.tenant_id)) == 1
    assert len(await queued_inbox_ids(db, whop.tenant_id)) == 1
    assert await ingest_counters(db, whop.tenant_id, "whop") == (1, 1, 0)


async def test_a_plain_whop_dashboard_secret_verifies_as_utf8_bytes(client, db, settings, tenant):
    target = await create_webhook_target(db, settings, tenant.id, Source.whop, secret="ws_dashboardIssuedPlainSecret42")

    response = await deliver(client, target.path, whop_v1_delivery(target.secret, whop_payment_failed()))

    assert response.status_code == 200


async def test_a_legacy_v5_delivery_gets_a_digest_id_and_dedupes_on_the_same_bytes(client, db, whop):
    delivery = whop_legacy_delivery(whop.secret, whop_v5_membership("membership.went_invalid"))

    first = await deliver(client, whop.path, delivery)
    again = await deliver(client, whop.path, whop_legacy_delivery(whop.secret, {}, body=delivery.body))

    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    [row] = await inbox(db, whop.tenant_id)
    assert row.external_id.startswith("sha256:") and row.event_type == "membership.went_invalid"
    assert row.status == "pending"


async def test_a_legacy_v5_delivery_with_an_id_keeps_it(client, db, whop):
    payload = {**whop_v5_membership("membership.went_invalid"), "id": "evt_legacy_7"}

    await deliver(client, whop.path, whop_legacy_delivery(whop.secret, payload))

    [row] = await inbox(db, whop.tenant_id)
    assert row.external_id == "evt_legacy_7"


async def test_a_stripe_delivery_is_stored_byte_for_byte(client, db, stripe):
    event = stripe_invoice_payment_failed(event_id="evt_stripe_1")
    delivery = stripe_delivery(stripe.secret, event)

    response = await deliver(client, stripe.path, delivery)

    assert response.json() == {"received": True, "duplicate": False}
    [row] = await inbox(db, stripe.tenant_id)
    assert (row.source, row.external_id, row.event_type) == ("stripe", "evt_stripe_1", "invoice.payment_failed")
    assert row.payload == delivery.body.decode() and "\n  " in row.payload
    assert await queued_inbox_ids(db, stripe.tenant_id) == [row.id]


@pytest.mark.parametrize(
    "envelope",
    [
        {**whop_payment_failed(), "type": "course.lesson.completed"},
        whop_test_delivery("payment.failed"),
    ],
    ids=["unknown type", "dashboard test"],
)
async def test_unknown_types_and_dashboard_tests_are_stored_ignored_and_not_queued(client, db, whop, envelope):
    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, envelope))

    assert response.json() == {"received": True, "duplicate": False}
    [row] = await inbox(db, whop.tenant_id)
    assert row.status == "ignored"
    assert await queued_inbox_ids(db, whop.tenant_id) == []


async def test_an_unknown_stripe_type_is_stored_ignored(client, db, stripe):
    event = {**stripe_invoice_payment_failed(), "type": "charge.succeeded"}

    await deliver(client, stripe.path, stripe_delivery(stripe.secret, event))

    [row] = await inbox(db, stripe.tenant_id)
    assert row.status == "ignored"


# Rotation


async def test_after_rotation_both_secrets_verify_until_the_old_one_expires(client, db, settings, whop):
    rotated = await rotate(db, settings, whop)

    with_new = await deliver(client, whop.path, whop_v1_delivery(rotated.secret, whop_payment_failed()))
    with_old = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))
    await expire_previous_secret(db, whop)
    old_after_expiry = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))
    new_after_expiry = await deliver(client, whop.path, whop_v1_delivery(rotated.secret, whop_payment_failed()))

    assert [with_new.status_code, with_old.status_code] == [200, 200]
    assert old_after_expiry.status_code == 401
    assert new_after_expiry.status_code == 200
    assert await ingest_counters(db, whop.tenant_id, "whop") == (3, 0, 1)


async def test_a_provider_signing_with_both_secrets_during_a_roll_is_accepted(client, db, settings, stripe):
    rotated = await rotate(db, settings, stripe)

    response = await deliver(
        client, stripe.path, stripe_delivery([stripe.secret, rotated.secret], stripe_invoice_payment_failed())
    )

    assert response.status_code == 200


async def test_an_answer_carries_the_request_id_and_the_security_headers(client, whop):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())

    response = await client.post(
        whop.path, content=delivery.body, headers={**delivery.headers, "x-request-id": "provider-retry-7"}
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "provider-retry-7"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["content-type"] == "application/json"


# Refused deliveries: nothing stored, the rejection counted


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_method_other_than_post_is_405_and_stores_nothing(client, db, whop, method):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())

    response = await client.request(method, whop.path, content=delivery.body, headers=delivery.headers)

    await assert_refused(response, db, whop, 405, "Method Not Allowed")
    assert response.headers["allow"] == "POST"


async def test_a_path_below_an_endpoint_is_404(client, db, whop):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())

    response = await deliver(client, f"{whop.path}/extra", delivery)

    assert response.status_code == 404
    assert await inbox(db, whop.tenant_id) == []


async def test_a_non_json_content_type_is_415(client, db, whop):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())
    headers = {**delivery.headers, "content-type": "text/plain"}

    response = await deliver(client, whop.path, SignedDelivery(delivery.body, headers))

    await assert_refused(response, db, whop, 415, "JSON")
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)


async def test_a_json_content_type_with_parameters_or_a_json_suffix_is_accepted(client, whop):
    for content_type in ("application/json; charset=utf-8", "application/vnd.whop+json"):
        delivery = whop_v1_delivery(whop.secret, whop_payment_failed())
        response = await deliver(
            client, whop.path, SignedDelivery(delivery.body, {**delivery.headers, "content-type": content_type})
        )

        assert response.status_code == 200


@pytest.mark.parametrize("path_id", ["not-a-uuid", str(uuid.uuid4()), "%00"], ids=["malformed", "unknown", "nul"])
async def test_an_unknown_endpoint_is_404(client, whop, path_id):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())

    response = await deliver(client, f"/webhooks/whop/{path_id}", delivery)

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "unknown endpoint"


async def test_an_endpoint_of_the_other_source_is_404(client, db, whop):
    response = await deliver(
        client, f"/webhooks/stripe/{whop.endpoint_id}", stripe_delivery(whop.secret, stripe_invoice_payment_failed())
    )

    await assert_refused(response, db, whop, 404, "unknown endpoint")


async def test_a_deleted_endpoint_is_404(client, db, whop):
    async with db.tenant_unit_of_work(whop.tenant_id) as session:
        await endpoints.delete_endpoint(session, AuthSubject.system(whop.tenant_id), whop.endpoint_id)

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))

    await assert_refused(response, db, whop, 404, "unknown endpoint")


async def test_a_body_over_256_kib_is_413(client, db, whop):
    envelope = {**whop_payment_failed(), "padding": "x" * (256 * 1024)}

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, envelope))

    await assert_refused(response, db, whop, 413, "over 262144 bytes")
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)


async def test_a_streamed_body_over_256_kib_is_413_and_counted(client, db, whop):
    delivery = whop_v1_delivery(whop.secret, {**whop_payment_failed(), "padding": "x" * (256 * 1024)})

    async def chunks():
        for start in range(0, len(delivery.body), 16 * 1024):
            yield delivery.body[start : start + 16 * 1024]

    response = await client.post(whop.path, content=chunks(), headers=delivery.headers)

    await assert_refused(response, db, whop, 413, "over 262144 bytes")
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)


async def test_a_body_just_under_256_kib_is_accepted(client, whop):
    envelope = whop_payment_failed()
    filler = 256 * 1024 - len(json.dumps({**envelope, "padding": ""}, separators=(",", ":")))

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, {**envelope, "padding": "x" * filler}))

    assert response.status_code == 200


async def test_a_missing_signature_is_401(client, db, whop):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())

    response = await deliver(client, whop.path, SignedDelivery(delivery.body, {"content-type": "application/json"}))

    await assert_refused(response, db, whop, 401, "webhook-signature")
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)


async def test_a_wrong_secret_is_401(client, db, whop):
    response = await deliver(client, whop.path, whop_v1_delivery("whsec_" + "A" * 32, whop_payment_failed()))

    await assert_refused(response, db, whop, 401, "no webhook-signature matches")


async def test_a_tampered_body_is_401(client, db, whop):
    delivery = whop_v1_delivery(whop.secret, whop_payment_failed())
    tampered = delivery.body.replace(b'"total":29.0', b'"total":0.01')
    assert tampered != delivery.body

    response = await deliver(client, whop.path, SignedDelivery(tampered, delivery.headers))

    await assert_refused(response, db, whop, 401, "no webhook-signature matches")


@pytest.mark.parametrize("offset", [-400, 400], ids=["stale", "future"])
async def test_a_timestamp_over_five_minutes_off_is_401(client, db, whop, stripe, offset):
    timestamp = int(time.time()) + offset

    whop_response = await deliver(
        client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed(), timestamp=timestamp)
    )
    legacy_response = await deliver(
        client,
        whop.path,
        whop_legacy_delivery(whop.secret, whop_v5_membership("membership.went_invalid"), timestamp=timestamp),
    )
    stripe_response = await deliver(
        client, stripe.path, stripe_delivery(stripe.secret, stripe_invoice_payment_failed(), timestamp=timestamp)
    )

    await assert_refused(whop_response, db, whop, 401, "5 minutes")
    await assert_refused(legacy_response, db, whop, 401, "5 minutes")
    await assert_refused(stripe_response, db, stripe, 401, "5 minutes")


async def test_stripe_without_its_signature_header_is_401(client, db, stripe):
    delivery = stripe_delivery(stripe.secret, stripe_invoice_payment_failed())

    response = await deliver(client, stripe.path, SignedDelivery(delivery.body, {"content-type": "application/json"}))

    await assert_refused(response, db, stripe, 401, "stripe-signature")


async def test_another_tenants_secret_does_not_open_this_tenants_endpoint(client, db, settings, whop, other_tenant):
    theirs = await create_webhook_target(db, settings, other_tenant.id, Source.whop)

    response = await deliver(client, whop.path, whop_v1_delivery(theirs.secret, whop_payment_failed()))

    await assert_refused(response, db, whop, 401, "no webhook-signature matches")
    assert await inbox(db, other_tenant.id) == []
    assert await ingest_counters(db, other_tenant.id, "whop") == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": "evt_1", "type": ', "malformed JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2, 3]", "JSON object"),
        (b"[" * 50_000 + b"]" * 50_000, "nested deeper than 64 levels"),
        (b'{"type": "payment.failed", "data": {}}', "'id'"),
        (b'{"id": "evt_1", "data": {}}', "'type'"),
        (b'{"id": 7, "type": "payment.failed"}', "'id'"),
        (b'{"id": "evt_\\u0000", "type": "payment.failed"}', "id: NUL characters"),
        (b'{"id": "evt_1", "type": "payment.failed", "data": "x"}', "'data'"),
    ],
    ids=[
        "truncated",
        "not utf-8",
        "array",
        "deeply nested",
        "no id",
        "no type",
        "numeric id",
        "nul in id",
        "data not object",
    ],
)
async def test_a_whop_v1_payload_that_does_not_fit_is_400(client, db, whop, body, reason):
    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, {}, body=body))

    await assert_refused(response, db, whop, 400, reason)
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)


async def test_a_legacy_v5_payload_without_an_action_is_400(client, db, whop):
    response = await deliver(client, whop.path, whop_legacy_delivery(whop.secret, {"data": {"id": "mem_1"}}))

    await assert_refused(response, db, whop, 400, "'action'")


@pytest.mark.parametrize("missing", ["id", "type", "created"])
async def test_a_stripe_event_missing_a_required_field_is_400(client, db, stripe, missing):
    event = stripe_invoice_payment_failed()
    del event[missing]

    response = await deliver(client, stripe.path, stripe_delivery(stripe.secret, event))

    await assert_refused(response, db, stripe, 400, f"'{missing}'")


def whop_text_with(envelope: dict, field: str, raw_value: str) -> bytes:
    """The envelope as Whop writes it, with `data.<field>` set to raw JSON text (1e400, "\ud800")."""
    body = whop_body({**envelope, "data": {**envelope["data"], field: "__VALUE__"}})
    return body.replace(b'"__VALUE__"', raw_value.encode())


@pytest.mark.parametrize(
    ("raw_value", "reason"),
    [("1e400", "finite"), ('"\\ud800"', "lone surrogate"), ('"\\u0000"', "NUL")],
    ids=["infinity", "surrogate", "nul"],
)
async def test_a_signed_whop_delivery_holding_what_no_store_can_hold_is_400_naming_the_field(
    client, db, whop, raw_value, reason
):
    body = whop_text_with(whop_membership_deactivated(), "cancellation_reason", raw_value)

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, {}, body=body))

    await assert_refused(response, db, whop, 400, "data.cancellation_reason: ")
    assert reason in response.json()["error"]["message"]
    assert await ingest_counters(db, whop.tenant_id, "whop") == (0, 0, 1)
    await assert_a_valid_delivery_is_still_processed(client, db, whop)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp: "),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp: "),
        ({"data": {"renewal_period_end": "0001-01-01T00:00:00+01:00"}}, "data.renewal_period_end: "),
        ({"data": {"renewal_period_end": 2**62}}, "data.renewal_period_end: "),
    ],
    ids=["timestamp-late", "timestamp-early", "renewal-early", "renewal-unix"],
)
async def test_a_whop_timestamp_processing_could_not_read_is_400_when_it_arrives(client, db, whop, change, field):
    envelope = whop_membership_deactivated()
    envelope = {**envelope, **change, "data": {**envelope["data"], **change.get("data", {})}}

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, envelope))

    await assert_refused(response, db, whop, 400, field)
    assert "outside years 1 to 9999" in response.json()["error"]["message"]
    await assert_a_valid_delivery_is_still_processed(client, db, whop)


async def test_a_legacy_whop_body_with_a_time_beyond_the_calendar_is_400(client, db, whop):
    body = whop_v5_membership()
    body["data"]["updated_at"] = 2**62

    response = await deliver(client, whop.path, whop_legacy_delivery(whop.secret, body))

    await assert_refused(response, db, whop, 400, "data.updated_at: ")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (lambda: {**stripe_invoice_payment_failed(), "created": 2**62}, "created: "),
        (lambda: stripe_subscription_event_ending_at(2**62), "data.object.current_period_end: "),
    ],
    ids=["created", "current_period_end"],
)
async def test_a_stripe_time_beyond_the_calendar_is_400_when_it_arrives(client, db, stripe, event, field):
    response = await deliver(client, stripe.path, stripe_delivery(stripe.secret, event()))

    await assert_refused(response, db, stripe, 400, field)
    assert "outside years 1 to 9999" in response.json()["error"]["message"]


async def test_an_integer_beyond_64_bits_is_processed_as_it_was_accepted(client, db, stripe):
    # Accepted as the double it reads as; processing once read the exact integer, then failed on it.
    event = stripe_subscription_event(pause_collection={"behavior": "void", "resumes_at": -(2**63) - 1})

    response = await deliver(client, stripe.path, stripe_delivery(stripe.secret, event))

    assert response.status_code == 200
    async with db.tenant_unit_of_work(stripe.tenant_id) as session:
        await process_inbox(session, stripe.tenant_id, await queued_inbox_ids(db, stripe.tenant_id))
    assert [row.status for row in await inbox(db, stripe.tenant_id)] == ["processed"]


def stripe_subscription_event_ending_at(unix_seconds: int) -> dict:
    event = stripe_subscription_event()
    event["data"]["object"]["current_period_end"] = unix_seconds
    return event


async def assert_a_valid_delivery_is_still_processed(client, db, target: WebhookTarget) -> None:
    response = await deliver(client, target.path, whop_v1_delivery(target.secret, whop_membership_deactivated()))
    assert response.status_code == 200
    async with db.tenant_unit_of_work(target.tenant_id) as session:
        await process_inbox(session, target.tenant_id, await queued_inbox_ids(db, target.tenant_id))
    assert [row.status for row in await inbox(db, target.tenant_id)] == ["processed"]


async def test_the_signature_is_checked_before_the_payload(client, db, whop):
    unsigned_garbage = SignedDelivery(b"not json", {"content-type": "application/json"})

    response = await deliver(client, whop.path, unsigned_garbage)

    assert response.status_code == 401


async def test_an_unexpected_failure_is_a_json_500_that_stores_nothing(client, db, whop):
    # A secret that no longer decrypts (the secret key changed under it): the server's fault. The
    # receivers sit in front of the app's error handler, so they answer it themselves.
    async with db.tenant_unit_of_work(whop.tenant_id) as session:
        await session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == whop.endpoint_id).values(secret_ciphertext=bytes(40))
        )

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INTERNAL", "message": "internal server error"}}
    assert response.headers["x-request-id"] and response.headers["x-content-type-options"] == "nosniff"
    assert await inbox(db, whop.tenant_id) == []


async def test_deliveries_over_a_real_socket_are_stored_then_processed(db, settings, whop, stripe):
    await clear_job_tables(db)  # the relay starts from this test's jobs, not earlier tests' leftovers
    oversized = whop_v1_delivery(whop.secret, {**whop_payment_failed(), "padding": "x" * (256 * 1024)})

    with running_server(settings, run_jobs=True) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            from_whop = await deliver(http, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))
            from_stripe = await deliver(
                http, stripe.path, stripe_delivery(stripe.secret, stripe_invoice_payment_failed())
            )
            too_large = await deliver(http, whop.path, oversized)
            await eventually(lambda: _all_processed(db, whop.tenant_id, expected=2), timeout=WAIT_SECONDS)

    assert [from_whop.status_code, from_stripe.status_code, too_large.status_code] == [200, 200, 413]
    assert {row.source for row in await inbox(db, whop.tenant_id)} == {"whop", "stripe"}


async def _all_processed(db, tenant_id: uuid.UUID, *, expected: int) -> bool:
    rows = await inbox(db, tenant_id)
    return len(rows) == expected and all(row.status == "processed" for row in rows)
