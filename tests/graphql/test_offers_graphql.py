"""Offers through GraphQL: the default offers on first use, create/update/archive with UserErrors,
scopes, redemptions, budgets, Case.offers and Case.redemptions, connectBilling (the key never
readable), and tenant isolation on every new field and mutation."""

from strawberry.relay import to_base64

from churnsaver.backend.billing import service as billing
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql
from tests.fixtures.offers import cancellation_case, default_offer

FIELDS = "id key name kind status value eligibility texts title description monthlyBudget currency priority"
LIST = f"query {{ offers(first: 50) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
RESULT = f"__typename ... on OfferChanged {{ offer {{ {FIELDS} }} }} ... on UserError {{ code message }}"
CREATE = f"mutation($input: CreateOfferInput!) {{ createOffer(input: $input) {{ {RESULT} }} }}"
UPDATE = f"mutation($id: ID!, $input: UpdateOfferInput!) {{ updateOffer(id: $id, input: $input) {{ {RESULT} }} }}"
ARCHIVE = f"mutation($id: ID!) {{ archiveOffer(id: $id) {{ {RESULT} }} }}"
REDEMPTION = "id status reason kind source cost { amount currency } provider offer { key } case { id } customer { id }"
REDEMPTIONS = f"""query($filter: RedemptionFilterInput) {{
  redemptions(first: 50, filter: $filter) {{ edges {{ node {{ {REDEMPTION} }} }} }}
}}"""
CASE = f"""query($id: ID!) {{ node(id: $id) {{ ... on Case {{
  offers {{ kind title reason cost {{ amount currency }} offer {{ key }} }}
  redemptions {{ {REDEMPTION} }}
}} }} }}"""
BUDGETS = "query { budgets { month offer { key } limit { amount currency } reserved { amount } spent { amount } } }"
CONNECT = """mutation($input: ConnectBillingInput!) { connectBilling(input: $input) {
  __typename ... on BillingConnected { billingConnection { provider keyHint account } }
  ... on UserError { code message }
} }"""
CONNECTION = "query { billingConnection { provider keyHint account checkedAt } }"
NEW = {"name": "Two weeks free", "kind": "FREE_DAYS", "value": {"days": 14}, "monthlyBudget": 10000}


async def run(client, tenant, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
    body = await graphql(client, query, variables or {}, headers=headers or tenant.headers)
    assert "errors" not in body, body
    return body["data"]


def case_id(case) -> str:
    return to_base64("Case", case.id)


async def accepted(db, tenant, case, key: str = "uncancel") -> None:
    offer = await default_offer(db, tenant.id, key)
    outcome = await billing.redeem(
        db,
        tenant_id=tenant.id,
        offer_id=offer.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="email",
        idempotency_key=f"gql-{case.id}",
    )
    assert outcome.status == "APPLIED"


async def test_a_tenant_starts_with_the_default_offers(client, tenant):
    offers = [edge["node"] for edge in (await run(client, tenant, LIST))["offers"]["edges"]]
    assert [(o["key"], o["kind"]) for o in offers] == [
        ("uncancel", "UNCANCEL"),
        ("update_payment", "UPDATE_PAYMENT"),
        ("percent_30_x3", "PERCENT_OFF"),
    ]
    discount = offers[2]
    assert (discount["value"], discount["monthlyBudget"], discount["title"]) == (
        {"percent": 30, "cycles": 3},
        30000,
        "30% off",
    )


async def test_create_update_archive_with_user_errors(client, tenant):
    created = (await run(client, tenant, CREATE, {"input": NEW}))["createOffer"]
    assert created["__typename"] == "OfferChanged"
    assert (created["offer"]["kind"], created["offer"]["description"]) == (
        "FREE_DAYS",
        "14 days free, added to your subscription.",
    )
    offer_id = created["offer"]["id"]
    bad = (await run(client, tenant, CREATE, {"input": NEW | {"value": {"days": 0}}}))["createOffer"]
    assert (bad["code"], bad["message"]) == ("BAD_USER_INPUT", "days is a whole number from 1 to 365")
    bad = (await run(client, tenant, CREATE, {"input": NEW | {"eligibility": {"bogus": 1}}}))["createOffer"]
    assert bad["code"] == "BAD_USER_INPUT"
    texts = {"de": {"title": "Zwei Wochen gratis", "description": "Bleiben Sie."}}
    updated = await run(client, tenant, UPDATE, {"id": offer_id, "input": {"texts": texts, "priority": 5}})
    assert (updated["updateOffer"]["offer"]["texts"], updated["updateOffer"]["offer"]["priority"]) == (texts, 5)
    nothing = (await run(client, tenant, UPDATE, {"id": offer_id, "input": {}}))["updateOffer"]
    assert nothing["code"] == "BAD_USER_INPUT"
    archived = (await run(client, tenant, ARCHIVE, {"id": offer_id}))["archiveOffer"]
    assert archived["offer"]["status"] == "ARCHIVED"
    again = (await run(client, tenant, UPDATE, {"id": offer_id, "input": {"name": "x"}}))["updateOffer"]
    assert again["code"] == "CONFLICT"


async def test_a_read_only_key_reads_offers_but_cannot_change_them_or_billing(client, db, tenant):
    key = await create_api_key_for(db, tenant.id, scopes=["read"])
    headers = {"Authorization": f"Bearer {key}"}
    assert len((await run(client, tenant, LIST, headers=headers))["offers"]["edges"]) == 3
    for query, variables in (
        (CREATE, {"input": NEW}),
        (CONNECT, {"input": {"provider": "SANDBOX"}}),
    ):
        body = await graphql(client, query, variables, headers=headers)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_redemptions_budgets_and_a_cases_offers(client, db, tenant):
    case = await cancellation_case(db, tenant.id, "user_gql1")
    await run(client, tenant, LIST)  # the default offers exist (campaign enrollment creates them too)
    before = (await run(client, tenant, CASE, {"id": case_id(case)}))["node"]
    assert [(o["kind"], o["offer"]["key"]) for o in before["offers"]] == [
        ("UNCANCEL", "uncancel"),
        ("PERCENT_OFF", "percent_30_x3"),
    ]
    assert before["offers"][1]["cost"] == {"amount": 3600, "currency": "USD"}
    assert before["offers"][0]["reason"].startswith("rules: score")
    await accepted(db, tenant, case)
    after = (await run(client, tenant, CASE, {"id": case_id(case)}))["node"]
    [redemption] = after["redemptions"]
    assert (redemption["status"], redemption["provider"], redemption["offer"]["key"]) == (
        "APPLIED",
        "SANDBOX",
        "uncancel",
    )
    assert after["offers"] == []  # recovered: nothing more to offer
    listed = (await run(client, tenant, REDEMPTIONS, {"filter": {"status": ["APPLIED"]}}))["redemptions"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [redemption["id"]]
    failed = (await run(client, tenant, REDEMPTIONS, {"filter": {"status": ["FAILED"]}}))["redemptions"]["edges"]
    assert failed == []
    budgets = (await run(client, tenant, BUDGETS))["budgets"]
    assert budgets[0]["offer"] is None and budgets[0]["limit"] == {"amount": 50000, "currency": "USD"}
    assert [b["offer"]["key"] for b in budgets[1:]] == ["percent_30_x3"]


async def test_connecting_the_sandbox_and_the_key_is_never_readable(client, tenant):
    assert (await run(client, tenant, CONNECTION))["billingConnection"] is None
    connected = (await run(client, tenant, CONNECT, {"input": {"provider": "SANDBOX"}}))["connectBilling"]
    assert connected["billingConnection"] == {"provider": "SANDBOX", "keyHint": None, "account": "sandbox"}
    missing = (await run(client, tenant, CONNECT, {"input": {"provider": "WHOP"}}))["connectBilling"]
    assert (missing["code"], missing["message"]) == ("BAD_USER_INPUT", "WHOP needs an API key")
    body = await graphql(client, "query { billingConnection { apiKey } }", headers=tenant.headers)
    assert "errors" in body


async def test_another_tenants_offers_redemptions_and_cases_are_out_of_reach(client, db, tenant, other_tenant):
    theirs = (await run(client, other_tenant, CREATE, {"input": NEW}))["createOffer"]["offer"]
    their_case = await cancellation_case(db, other_tenant.id, "user_gql2")
    await accepted(db, other_tenant, their_case)
    names = [e["node"]["name"] for e in (await run(client, tenant, LIST))["offers"]["edges"]]
    assert "Two weeks free" not in names
    for query, variables, field in (
        (UPDATE, {"id": theirs["id"], "input": {"name": "Hijacked"}}, "updateOffer"),
        (ARCHIVE, {"id": theirs["id"]}, "archiveOffer"),
    ):
        assert (await run(client, tenant, query, variables))[field]["code"] == "NOT_FOUND"
    node = await graphql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]}, headers=tenant.headers
    )
    assert node["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await run(client, tenant, REDEMPTIONS))["redemptions"]["edges"] == []
    by_case = await run(client, tenant, REDEMPTIONS, {"filter": {"caseId": case_id(their_case)}})
    assert by_case["redemptions"]["edges"] == []
    foreign = await graphql(client, CASE, {"id": case_id(their_case)}, headers=tenant.headers)
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert all(b["reserved"]["amount"] == 0 for b in (await run(client, tenant, BUDGETS))["budgets"])
    assert (await run(client, tenant, CONNECTION))["billingConnection"] is None
    still = [e["node"] for e in (await run(client, other_tenant, LIST))["offers"]["edges"]]
    assert any(o["name"] == "Two weeks free" and o["status"] == "ACTIVE" for o in still)


CREATE_CAMPAIGN = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) {
  __typename ... on CampaignChanged { campaign { variants { steps { offerId } } } }
  ... on UserError { code message }
} }"""


def campaign_with(offer_id: str) -> dict:
    step = {"delay": "P1D", "channel": "email", "template": "winback", "offerId": offer_id}
    return {"input": {"name": "With an offer", "caseKinds": ["CANCELED"], "variants": [{"name": "a", "steps": [step]}]}}


async def test_a_campaign_step_takes_the_tenants_own_offer_ids_only(client, tenant, other_tenant):
    mine = (await run(client, tenant, CREATE, {"input": NEW}))["createOffer"]["offer"]["id"]
    theirs = (await run(client, other_tenant, CREATE, {"input": NEW}))["createOffer"]["offer"]["id"]
    created = (await run(client, tenant, CREATE_CAMPAIGN, campaign_with(mine)))["createCampaign"]
    assert created["campaign"]["variants"][0]["steps"][0]["offerId"] == mine
    refused = (await run(client, tenant, CREATE_CAMPAIGN, campaign_with(theirs)))["createCampaign"]
    assert refused["code"] == "BAD_USER_INPUT" and "no active offer" in refused["message"]
    malformed = (await run(client, tenant, CREATE_CAMPAIGN, campaign_with("nope")))["createCampaign"]
    assert malformed["code"] == "BAD_USER_INPUT"


async def test_bad_arguments_are_coded_errors_never_a_500(client, tenant):
    month = await graphql(client, 'query { budgets(month: "2026-13-01") { month } }', headers=tenant.headers)
    assert month["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_id = await graphql(client, REDEMPTIONS, {"filter": {"offerId": "not-an-id"}}, headers=tenant.headers)
    assert bad_id["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    not_an_object = (await run(client, tenant, CREATE, {"input": NEW | {"value": [1, 2]}}))["createOffer"]
    assert (not_an_object["code"], not_an_object["message"]) == ("BAD_USER_INPUT", "an offer's value is an object")
    no_key = (await run(client, tenant, CONNECT, {"input": {"provider": "STRIPE", "apiKey": ""}}))["connectBilling"]
    assert no_key["code"] == "BAD_USER_INPUT"


SETTINGS = "query { offerSettings { monthlyBudget { amount currency } policy controlShare cooldownDays } }"
UPDATE_SETTINGS = """mutation($input: UpdateOfferSettingsInput!) { updateOfferSettings(input: $input) {
  __typename ... on OfferSettingsUpdated { settings { monthlyBudget { amount } policy controlShare cooldownDays } }
  ... on UserError { code message }
} }"""


async def test_offer_settings_turn_on_the_learning_policy_with_a_control_share(client, tenant, other_tenant):
    assert (await run(client, tenant, SETTINGS))["offerSettings"] == {
        "monthlyBudget": {"amount": 50000, "currency": "USD"},
        "policy": "RULES",
        "controlShare": 0.2,
        "cooldownDays": 180,
    }
    changes = {"policy": "THOMPSON", "controlShare": 0.3, "noMonthlyBudget": True}
    updated = (await run(client, tenant, UPDATE_SETTINGS, {"input": changes}))["updateOfferSettings"]
    assert updated["settings"] == {
        "monthlyBudget": None,
        "policy": "THOMPSON",
        "controlShare": 0.3,
        "cooldownDays": 180,
    }
    bad = (await run(client, tenant, UPDATE_SETTINGS, {"input": {"controlShare": 1.5}}))["updateOfferSettings"]
    assert (bad["code"], bad["message"]) == ("BAD_USER_INPUT", "the control share is from 0 to 1")
    assert (await run(client, other_tenant, SETTINGS))["offerSettings"]["policy"] == "RULES"
