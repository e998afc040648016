"""The auth subject's own checks, and API key services refusing a subject without the scope."""

import pytest

from churnsaver.backend.core.errors import PermissionDenied
from churnsaver.tenants.api_keys import create_api_key, list_api_keys, revoke_api_key
from churnsaver.tenants.auth import AuthSubject, Scope, SubjectKind
from churnsaver.tenants.repository import ApiKeyRepository
from tests.fixtures.factories import scoped_subject


def test_the_system_subject_holds_every_scope_and_is_logged_as_the_system(tenant):
    system = AuthSubject.system(tenant.id)

    system.require_read()
    system.require_write()
    assert (system.tenant_id, system.kind, system.log_label) == (tenant.id, SubjectKind.system, "system")


def test_a_missing_scope_is_refused_with_the_scope_named(tenant):
    read_only = scoped_subject(tenant.id, Scope.read)

    read_only.require_read()
    with pytest.raises(PermissionDenied, match="this requires the 'write' scope") as refused:
        read_only.require_write()
    assert refused.value.code == "FORBIDDEN"


async def test_a_read_only_subject_cannot_create_or_revoke_keys(db, tenant):
    read_only = scoped_subject(tenant.id, Scope.read)
    async with db.tenant_session(tenant.id) as session:
        [existing] = await list_api_keys(session, read_only)

    async with db.tenant_unit_of_work(tenant.id) as session:
        with pytest.raises(PermissionDenied):
            await create_api_key(session, read_only, name="sneaky")
        with pytest.raises(PermissionDenied):
            await revoke_api_key(session, read_only, existing.id)

    async with db.tenant_session(tenant.id) as session:
        [unchanged] = (await session.execute(ApiKeyRepository(session, tenant.id).select_readable())).scalars()
    assert (unchanged.id, unchanged.revoked_at) == (existing.id, None)


async def test_a_write_only_subject_cannot_list_keys(db, tenant):
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'read' scope"):
            await list_api_keys(session, scoped_subject(tenant.id, Scope.write))
