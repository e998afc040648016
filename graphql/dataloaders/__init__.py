"""Per-request dataloaders, one per relation (one per file beside this one).

The context builds a fresh set for each request: a loader caches what it loaded, and a cache must
not outlive the request that filled it.
"""

import uuid

from churnsaver.backend.core.db import Database
from churnsaver.graphql.dataloaders.api_key import ApiKeyLoader
from churnsaver.graphql.dataloaders.campaign import CampaignLoader
from churnsaver.graphql.dataloaders.campaign_stats import CampaignStatsLoader
from churnsaver.graphql.dataloaders.case import CaseLoader
from churnsaver.graphql.dataloaders.case_events import CaseEventsLoader
from churnsaver.graphql.dataloaders.case_messages import CaseMessagesLoader
from churnsaver.graphql.dataloaders.case_offers import CaseOffersLoader
from churnsaver.graphql.dataloaders.case_redemptions import CaseRedemptionsLoader
from churnsaver.graphql.dataloaders.customer import CustomerLoader
from churnsaver.graphql.dataloaders.customer_cases import CustomerCasesLoader
from churnsaver.graphql.dataloaders.identities import IdentitiesLoader
from churnsaver.graphql.dataloaders.message import MessageLoader
from churnsaver.graphql.dataloaders.offer import OfferLoader
from churnsaver.graphql.dataloaders.redemption import RedemptionLoader
from churnsaver.graphql.dataloaders.risk_history import RiskHistoryLoader
from churnsaver.graphql.dataloaders.risk_score import RiskScoreLoader
from churnsaver.graphql.dataloaders.subscription import SubscriptionLoader
from churnsaver.graphql.dataloaders.tenant import TenantLoader
from churnsaver.graphql.dataloaders.timeline import TimelineLoader
from churnsaver.graphql.dataloaders.webhook_endpoint import WebhookEndpointLoader


class Loaders:
    """Attributes are named as node types name them (`RowNode.loader`)."""

    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        self.tenant = TenantLoader(db, tenant_id)
        self.customer = CustomerLoader(db, tenant_id)
        self.api_key = ApiKeyLoader(db, tenant_id)
        self.webhook_endpoint = WebhookEndpointLoader(db, tenant_id)
        self.subscription = SubscriptionLoader(db, tenant_id)
        self.identities = IdentitiesLoader(db, tenant_id)
        self.timeline = TimelineLoader(db, tenant_id)
        self.risk_score = RiskScoreLoader(db, tenant_id)
        self.risk_history = RiskHistoryLoader(db, tenant_id)
        self.case = CaseLoader(db, tenant_id)
        self.case_events = CaseEventsLoader(db, tenant_id)
        self.customer_cases = CustomerCasesLoader(db, tenant_id)
        self.message = MessageLoader(db, tenant_id)
        self.case_messages = CaseMessagesLoader(db, tenant_id)
        self.campaign = CampaignLoader(db, tenant_id)
        self.campaign_stats = CampaignStatsLoader(db, tenant_id)
        self.offer = OfferLoader(db, tenant_id)
        self.redemption = RedemptionLoader(db, tenant_id)
        self.case_offers = CaseOffersLoader(db, tenant_id)
        self.case_redemptions = CaseRedemptionsLoader(db, tenant_id)
