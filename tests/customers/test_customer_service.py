"""The customers service checks the subject itself: reads need the read scope, whoever calls."""

import pytest

from churnsaver.backend.core.errors import PermissionDenied
from churnsaver.backend.customers import service
from churnsaver.tenants.auth import Scope
from tests.fixtures.factories import create_customers, scoped_subject


async def test_a_read_subject_finds_its_customers(db, tenant):
    [customer] = await create_customers(db, tenant.id, 1)
    reader = scoped_subject(tenant.id, Scope.read)

    async with db.tenant_session(tenant.id) as session:
        by_id = await service.get_customer(session, reader, customer.id)
        by_external_id = await service.get_customer_by_external_id(session, reader, customer.external_id)
        listed = (await session.execute(service.customers_statement(session, reader))).scalars().all()

    assert by_id.id == by_external_id.id == customer.id
    assert [row.id for row in listed] == [customer.id]


async def test_a_write_only_subject_is_refused_every_read(db, tenant):
    [customer] = await create_customers(db, tenant.id, 1)
    write_only = scoped_subject(tenant.id, Scope.write)

    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'read' scope"):
            await service.get_customer(session, write_only, customer.id)
        with pytest.raises(PermissionDenied):
            await service.get_customer_by_external_id(session, write_only, customer.external_id)
        with pytest.raises(PermissionDenied):
            service.customers_statement(session, write_only)
