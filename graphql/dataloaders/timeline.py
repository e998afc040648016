"""A page of each customer's timeline, newest first."""

from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.backend.customers.repository import CustomerEventRepository
from churnsaver.graphql.dataloaders.customer_pages import CustomerPagesLoader


class TimelineLoader(CustomerPagesLoader[CustomerEvent]):
    repository = CustomerEventRepository
