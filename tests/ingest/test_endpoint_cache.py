"""The receivers' endpoint cache: read once, shared by concurrent misses, dropped at once when
this process changes an endpoint, and never wrong for long when another process does."""

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import delete, select, update

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest import service as endpoints
from churnsaver.backend.ingest import webhook_secrets
from churnsaver.backend.ingest.endpoint_cache import EndpointCache
from churnsaver.backend.ingest.models import InboxEvent, WebhookEndpoint
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.models import Tenant
from tests.fixtures.billing_payloads import whop_payment_failed
from tests.fixtures.senders import WebhookTarget, deliver, whop_v1_delivery
from tests.fixtures.sql import counting_statements


async def rotate_elsewhere(db, settings, target: WebhookTarget, new_secret: str) -> None:
    """A rotation committed by another process: a plain statement, which this process's sessions never see."""
    sealed = webhook_secrets.secret_box(settings.resolved_secret_key).encrypt(
        new_secret, bound_to=str(target.endpoint_id)
    )
    async with db.system_engine.begin() as connection:
        await connection.execute(
            update(WebhookEndpoint.__table__)
            .where(WebhookEndpoint.id == target.endpoint_id)
            .values(secret_ciphertext=sealed, previous_secret_ciphertext=None, previous_secret_expires_at=None)
        )


async def delete_elsewhere(db, target: WebhookTarget) -> None:
    async with db.system_engine.begin() as connection:
        await connection.execute(
            update(WebhookEndpoint.__table__)
            .where(WebhookEndpoint.id == target.endpoint_id)
            .values(deleted_at=utcnow())
        )


async def test_an_endpoint_is_read_once_and_then_served_from_memory(db, whop):
    cache = EndpointCache(db)

    with counting_statements(db) as statements:
        first = await cache.get(whop.endpoint_id, Source.whop)
        again = await cache.get(whop.endpoint_id, Source.whop)

    assert len(statements) == 1
    assert (first.tenant_id, first.cached, again.cached) == (whop.tenant_id, False, True)
    assert again.verifying_secrets() == [whop.secret]


async def test_concurrent_misses_share_one_read(db, whop):
    cache = EndpointCache(db)

    with counting_statements(db) as statements:
        found = await asyncio.gather(*(cache.get(whop.endpoint_id, Source.whop) for _ in range(20)))

    assert len(statements) == 1
    assert {entry.tenant_id for entry in found} == {whop.tenant_id}


async def test_an_endpoint_is_not_found_under_the_other_source(db, whop):
    cache = EndpointCache(db)
    await cache.get(whop.endpoint_id, Source.whop)

    assert await cache.get(whop.endpoint_id, Source.stripe) is None


async def test_a_rotation_in_this_process_is_seen_at_once(db, settings, whop):
    cache = EndpointCache(db)
    await cache.get(whop.endpoint_id, Source.whop)

    async with db.tenant_unit_of_work(whop.tenant_id) as session:
        rotated = await endpoints.rotate_secret(
            session,
            AuthSubject.system(whop.tenant_id),
            whop.endpoint_id,
            signing_secret=None,
            secret_key=settings.resolved_secret_key,
        )

    entry = await cache.get(whop.endpoint_id, Source.whop)
    assert not entry.cached
    assert entry.verifying_secrets() == [rotated.signing_secret, whop.secret]


async def test_a_deletion_in_this_process_stops_deliveries_at_once(db, whop):
    cache = EndpointCache(db)
    await cache.get(whop.endpoint_id, Source.whop)

    async with db.tenant_unit_of_work(whop.tenant_id) as session:
        await endpoints.delete_endpoint(session, AuthSubject.system(whop.tenant_id), whop.endpoint_id)

    assert await cache.get(whop.endpoint_id, Source.whop) is None


async def test_a_change_that_rolls_back_keeps_the_entry(db, settings, whop):
    cache = EndpointCache(db)
    await cache.get(whop.endpoint_id, Source.whop)

    with pytest.raises(RuntimeError):
        async with db.tenant_unit_of_work(whop.tenant_id) as session:
            await endpoints.delete_endpoint(session, AuthSubject.system(whop.tenant_id), whop.endpoint_id)
            raise RuntimeError("rolled back")

    assert (await cache.get(whop.endpoint_id, Source.whop)).cached


async def test_a_deletion_elsewhere_stops_deliveries_within_the_ttl(db, whop):
    cache = EndpointCache(db, ttl_seconds=0.2)
    await cache.get(whop.endpoint_id, Source.whop)

    await delete_elsewhere(db, whop)

    assert await cache.get(whop.endpoint_id, Source.whop) is not None  # still cached: within the TTL
    await asyncio.sleep(0.25)
    assert await cache.get(whop.endpoint_id, Source.whop) is None


async def test_a_rotation_elsewhere_takes_effect_at_the_first_delivery_signed_with_the_new_secret(
    client, db, settings, whop
):
    before = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))
    new_secret = webhook_secrets.generate_secret()
    await rotate_elsewhere(db, settings, whop, new_secret)

    with_new = await deliver(client, whop.path, whop_v1_delivery(new_secret, whop_payment_failed()))
    with_old = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))

    assert [before.status_code, with_new.status_code, with_old.status_code] == [200, 200, 401]


async def test_a_deletion_elsewhere_found_on_a_signature_failure_is_unknown_endpoint(client, db, whop):
    assert (await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))).status_code == 200
    await delete_elsewhere(db, whop)

    response = await deliver(client, whop.path, whop_v1_delivery("whsec_" + "B" * 32, whop_payment_failed()))

    assert response.status_code == 404


async def test_a_delivery_whose_transaction_fails_is_answered_503_and_stores_nothing(client, db, whop):
    assert (await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed()))).status_code == 200
    # The tenant is deleted (its endpoint with it, by the foreign key) while the endpoint is still
    # cached: the delivery verifies, and its transaction fails on the missing tenant.
    async with db.system_unit_of_work() as session:
        await session.execute(delete(Tenant).where(Tenant.id == whop.tenant_id))

    response = await deliver(client, whop.path, whop_v1_delivery(whop.secret, whop_payment_failed(event_id="evt_503")))

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "try again" in response.json()["error"]["message"]
    async with db.system_session() as session:
        stored = (await session.execute(select(InboxEvent).where(InboxEvent.external_id == "evt_503"))).first()
    assert stored is None


async def test_the_previous_secret_stops_verifying_when_its_grace_ends_even_while_cached(db, settings, whop):
    cache = EndpointCache(db)
    async with db.tenant_unit_of_work(whop.tenant_id) as session:
        rotated = await endpoints.rotate_secret(
            session,
            AuthSubject.system(whop.tenant_id),
            whop.endpoint_id,
            signing_secret=None,
            secret_key=settings.resolved_secret_key,
        )
    entry = await cache.get(whop.endpoint_id, Source.whop)
    assert entry.verifying_secrets() == [rotated.signing_secret, whop.secret]

    grace_over = replace(entry, previous_secret_expires_at=utcnow())

    assert grace_over.verifying_secrets() == [rotated.signing_secret]
