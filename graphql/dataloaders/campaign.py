"""Campaigns by id."""

from churnsaver.backend.campaigns.models import Campaign
from churnsaver.backend.campaigns.repository import CampaignRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class CampaignLoader(RowsById[Campaign]):
    repository = CampaignRepository
