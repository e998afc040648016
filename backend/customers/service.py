"""Customer queries for the API. Ingestion (a later capability) writes customers."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.pagination import Page, keyset_page


async def list_customers(
    session: AsyncSession, tenant_id: uuid.UUID, *, first: int | None, after: str | None, with_total: bool = True
) -> Page[Customer]:
    repository = CustomerRepository(session, tenant_id)
    statement = repository.select_readable()
    return await keyset_page(session, statement, Customer, first=first, after=after, with_total=with_total)
