"""Customers by id."""

from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class CustomerLoader(RowsById[Customer]):
    repository = CustomerRepository
