"""Campaign steps carry offers: the default playbooks name the tenant's default offers; a
dispatched step's message gets the offer the customer may have now (the step's own, else the best
eligible), its description in the customer's locale and a one-click `/o/` link that reads back
to the tenant, customer, case and offer; the choice is an `offer_shown` case event with its reason."""

from churnsaver.backend.campaigns import service
from churnsaver.backend.campaigns.dispatch import dispatch_due
from churnsaver.backend.cases.models import CaseEventType
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.offers.links import read_offer_token
from churnsaver.tenants.auth import Scope
from tests.fixtures.campaigns import enroll, messages, no_quiet_hours, only_campaign, set_traits
from tests.fixtures.cases import stored_case_events
from tests.fixtures.factories import scoped_subject
from tests.fixtures.offers import cancellation_case, default_offer, update_offer

STEP = {"delay": "PT0S", "channel": "email", "template": "cancellation_offer"}


async def test_default_playbooks_name_the_tenants_default_offers(db, tenant) -> None:
    async with db.tenant_unit_of_work(tenant.id) as session:
        campaigns = (await service.list_campaigns(session, scoped_subject(tenant.id, Scope.read), first=20)).rows
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    card = await default_offer(db, tenant.id, "update_payment")
    cancel = next(c for c in campaigns if c.playbook == "cancellation_scheduled")
    assert [step["offer_id"] for step in cancel.variants[0]["steps"]][:2] == [str(discount.id)] * 2
    hard = next(c for c in campaigns if c.playbook == "payment_failed_hard")
    assert hard.variants[0]["steps"][0]["offer_id"] == str(card.id)


async def test_a_dispatched_step_carries_its_offer_link_and_localized_description(db, tenant) -> None:
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    await no_quiet_hours(db, tenant.id)
    await only_campaign(db, tenant.id, kinds=["cancellation_scheduled"], steps=[STEP | {"offer_id": str(discount.id)}])
    case = await cancellation_case(db, tenant.id, "user_camp1")
    await set_traits(db, tenant.id, case.customer_id, locale="de")
    await enroll(db, tenant.id)
    assert (await dispatch_due(db, tenant.id)).sent == 1
    [message] = await messages(db, tenant.id)
    variables = message.variables
    assert variables["offer_id"] == str(discount.id)
    assert variables["offer_description"] == "30 % Rabatt auf Ihre nächsten 3 Zahlungen."
    base, token = variables["offer_url"].rsplit("/o/", 1)
    assert base.startswith("http")
    claims = read_offer_token(db.settings, token, utcnow())
    assert (claims.tenant_id, claims.customer_id, claims.case_id, claims.offer_id) == (
        tenant.id,
        case.customer_id,
        case.id,
        discount.id,
    )
    [shown] = [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]
    assert shown.data["reason"].startswith("the campaign step's offer; rules: score")


async def test_a_step_whose_offer_the_budget_cannot_cover_carries_the_best_eligible_one(db, tenant) -> None:
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    uncancel = await default_offer(db, tenant.id, "uncancel")
    await update_offer(db, tenant.id, discount.id, monthly_budget=0)
    await no_quiet_hours(db, tenant.id)
    await only_campaign(db, tenant.id, kinds=["cancellation_scheduled"], steps=[STEP | {"offer_id": str(discount.id)}])
    case = await cancellation_case(db, tenant.id, "user_camp2")
    await enroll(db, tenant.id)
    await dispatch_due(db, tenant.id)
    [message] = await messages(db, tenant.id)
    assert message.variables["offer_id"] == str(uncancel.id)
    [shown] = [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]
    assert (shown.case_id, shown.data["kind"]) == (case.id, "UNCANCEL")
    assert shown.data["reason"].startswith("the campaign step's offer is not available now")
