"""A page of each customer's risk score history, newest first."""

from churnsaver.backend.risk.models import RiskScoreHistory
from churnsaver.backend.risk.repository import RiskScoreHistoryRepository
from churnsaver.graphql.dataloaders.customer_pages import CustomerPagesLoader


class RiskHistoryLoader(CustomerPagesLoader[RiskScoreHistory]):
    repository = RiskScoreHistoryRepository
