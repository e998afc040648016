"""Redemptions by id."""

from churnsaver.backend.offers.models import Redemption
from churnsaver.backend.offers.repository import RedemptionRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class RedemptionLoader(RowsById[Redemption]):
    repository = RedemptionRepository
