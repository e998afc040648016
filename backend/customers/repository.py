"""Tenant-scoped reads of customers."""

from churnsaver.backend.customers.models import Customer
from churnsaver.backend.repository import TenantRepository


class CustomerRepository(TenantRepository[Customer]):
    model = Customer
