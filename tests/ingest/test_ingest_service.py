"""The ingest service checks the subject itself: a read-only subject cannot change webhook
endpoints, whoever calls the service, and a subject without read cannot see the counters."""

import pytest

from churnsaver.backend.core.errors import PermissionDenied
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest import service
from churnsaver.tenants.auth import AuthSubject, Scope
from tests.fixtures.factories import scoped_subject


async def test_a_read_only_subject_cannot_create_rotate_or_delete_endpoints(db, settings, tenant):
    secret_key = settings.resolved_secret_key
    async with db.tenant_unit_of_work(tenant.id) as session:
        created = await service.create_endpoint(
            session, AuthSubject.system(tenant.id), source=Source.whop, signing_secret=None, secret_key=secret_key
        )
    endpoint_id = created.endpoint.id
    read_only = scoped_subject(tenant.id, Scope.read)

    async with db.tenant_unit_of_work(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'write' scope"):
            await service.create_endpoint(
                session, read_only, source=Source.stripe, signing_secret=None, secret_key=secret_key
            )
        with pytest.raises(PermissionDenied):
            await service.rotate_secret(session, read_only, endpoint_id, signing_secret=None, secret_key=secret_key)
        with pytest.raises(PermissionDenied):
            await service.delete_endpoint(session, read_only, endpoint_id)

    async with db.tenant_session(tenant.id) as session:
        [endpoint] = await service.list_endpoints(session, read_only)
    assert (endpoint.id, endpoint.secret_ciphertext, endpoint.deleted_at) == (
        endpoint_id,
        created.endpoint.secret_ciphertext,
        None,
    )


async def test_a_write_only_subject_cannot_read_endpoints_or_counters(db, tenant):
    write_only = scoped_subject(tenant.id, Scope.write)
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'read' scope"):
            await service.list_endpoints(session, write_only)
        with pytest.raises(PermissionDenied, match="'read' scope"):
            await service.ingest_stats(session, write_only)
