"""Offers by id."""

from churnsaver.backend.offers.models import Offer
from churnsaver.backend.offers.repository import OfferRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class OfferLoader(RowsById[Offer]):
    repository = OfferRepository
