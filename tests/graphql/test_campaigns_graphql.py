"""Campaigns through GraphQL: the default playbooks on first use, one campaign, every mutation with
its UserError (bad durations, channels, templates; wrong status), scopes, and tenant isolation on
every field and mutation."""

import pytest

from tests.fixtures.campaigns import enroll, open_failed_payment
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql

FIELDS = """
  id name playbook caseKinds status holdoutShare
  audience { tiers plans mrrMin mrrMax declineClasses countries }
  variants { name weight steps { delay channel template offerId condition } }
  stats { enrolled heldOut stepsPending stepsSent stepsSkipped stepsStopped }
"""
LIST = f"""query($status: [CampaignStatus!]) {{
  campaigns(first: 50, status: $status) {{ totalCount edges {{ node {{ {FIELDS} }} }} }}
}}"""
ONE = f"query($id: ID!) {{ campaign(id: $id) {{ {FIELDS} }} }}"
RESULT = f"__typename ... on CampaignChanged {{ campaign {{ {FIELDS} }} }} ... on UserError {{ code message }}"
CREATE = f"mutation($input: CreateCampaignInput!) {{ createCampaign(input: $input) {{ {RESULT} }} }}"
UPDATE = f"mutation($id: ID!, $input: UpdateCampaignInput!) {{ updateCampaign(id: $id, input: $input) {{ {RESULT} }} }}"
STEP = {"delay": "P1D", "channel": "email", "template": "winback"}
NEW = {"name": "Win them back", "caseKinds": ["CANCELED"], "variants": [{"name": "a", "steps": [STEP]}]}


def status_mutation(name: str) -> str:
    return f"mutation($id: ID!) {{ {name}(id: $id) {{ {RESULT} }} }}"


async def run(client, tenant, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
    body = await graphql(client, query, variables or {}, headers=headers or tenant.headers)
    assert "errors" not in body, body
    return body["data"]


async def create(client, tenant, **changes) -> dict:
    return (await run(client, tenant, CREATE, {"input": NEW | changes}))["createCampaign"]


async def test_a_tenant_starts_with_the_default_playbooks(client, tenant):
    data = await run(client, tenant, LIST)
    campaigns = [edge["node"] for edge in data["campaigns"]["edges"]]
    assert data["campaigns"]["totalCount"] == 7
    hard = next(c for c in campaigns if c["playbook"] == "payment_failed_hard")
    assert hard["status"] == "ACTIVE" and hard["holdoutShare"] == 0.1
    assert hard["audience"]["declineClasses"] == ["hard"]
    assert [(s["delay"], s["channel"]) for s in hard["variants"][0]["steps"]][:3] == [
        ("PT0S", "email"),
        ("PT0S", "in_app"),
        ("P1D", "sms"),
    ]
    again = await run(client, tenant, LIST)
    assert [e["node"]["id"] for e in again["campaigns"]["edges"]] == [c["id"] for c in campaigns]


async def test_create_update_pause_resume_archive(client, tenant):
    created = await create(client, tenant, audience={"countries": ["de"], "mrrMin": 1000}, holdoutShare=0.2)
    assert created["__typename"] == "CampaignChanged"
    campaign = created["campaign"]
    assert (campaign["status"], campaign["holdoutShare"], campaign["audience"]["countries"]) == ("ACTIVE", 0.2, ["DE"])
    updated = (await run(client, tenant, UPDATE, {"id": campaign["id"], "input": {"name": "Renamed"}}))[
        "updateCampaign"
    ]
    assert updated["campaign"]["name"] == "Renamed" and updated["campaign"]["variants"] == campaign["variants"]
    for mutation, status in (
        ("pauseCampaign", "PAUSED"),
        ("resumeCampaign", "ACTIVE"),
        ("archiveCampaign", "ARCHIVED"),
    ):
        result = (await run(client, tenant, status_mutation(mutation), {"id": campaign["id"]}))[mutation]
        assert result["campaign"]["status"] == status
    again = (await run(client, tenant, status_mutation("resumeCampaign"), {"id": campaign["id"]}))["resumeCampaign"]
    assert again == {
        "__typename": "UserError",
        "code": "CONFLICT",
        "message": "a campaign that is archived cannot be active",
    }
    archived = await run(client, tenant, LIST, {"status": ["ARCHIVED"]})
    assert [e["node"]["id"] for e in archived["campaigns"]["edges"]] == [campaign["id"]]
    assert (await run(client, tenant, ONE, {"id": campaign["id"]}))["campaign"]["name"] == "Renamed"


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ({"delay": "tomorrow"}, "is not an ISO 8601 duration"),
        ({"delay": "P2Y"}, "is not an ISO 8601 duration"),
        ({"channel": "fax"}, "channel 'fax' is not one of"),
        ({"template": "no_such_template"}, "no email template 'no_such_template'"),
        ({"condition": "sometimes"}, "condition 'sometimes'"),
    ],
)
async def test_a_bad_definition_is_a_user_error_with_the_reason_and_stores_nothing(client, tenant, step, reason):
    result = await create(client, tenant, variants=[{"name": "a", "steps": [STEP | step]}])
    assert result["__typename"] == "UserError" and result["code"] == "BAD_USER_INPUT"
    assert reason in result["message"]
    data = await run(client, tenant, LIST)
    assert "Win them back" not in [e["node"]["name"] for e in data["campaigns"]["edges"]]


async def test_other_bad_input_is_a_user_error(client, tenant):
    assert (await create(client, tenant, holdoutShare=1.5))["code"] == "BAD_USER_INPUT"
    assert (await create(client, tenant, name=" "))["code"] == "BAD_USER_INPUT"
    assert (await create(client, tenant, variants=[]))["code"] == "BAD_USER_INPUT"
    assert (await create(client, tenant, audience={"mrrMin": 10, "mrrMax": 5}))["code"] == "BAD_USER_INPUT"
    bad_id = await run(client, tenant, UPDATE, {"id": "not-an-id", "input": {"name": "x"}})
    assert bad_id["updateCampaign"]["code"] == "NOT_FOUND"
    created = (await create(client, tenant))["campaign"]
    nothing = await run(client, tenant, UPDATE, {"id": created["id"], "input": {}})
    assert nothing["updateCampaign"] == {
        "__typename": "UserError",
        "code": "BAD_USER_INPUT",
        "message": "nothing to change",
    }


async def test_stats_count_enrolled_cases_and_steps(client, db, tenant):
    listed = await run(client, tenant, LIST)  # the defaults exist
    hard_id = next(
        e["node"]["id"] for e in listed["campaigns"]["edges"] if e["node"]["playbook"] == "payment_failed_hard"
    )
    await run(client, tenant, UPDATE, {"id": hard_id, "input": {"holdoutShare": 0.0}})
    await open_failed_payment(db, tenant.id, "user_a", hard=True)
    await enroll(db, tenant.id)
    stats = (await run(client, tenant, ONE, {"id": hard_id}))["campaign"]["stats"]
    assert stats == {
        "enrolled": 1,
        "heldOut": 0,
        "stepsPending": 5,
        "stepsSent": 0,
        "stepsSkipped": 0,
        "stepsStopped": 0,
    }


async def test_a_read_only_key_reads_but_cannot_change_campaigns(client, db, tenant):
    key = await create_api_key_for(db, tenant.id, scopes=["read"])
    headers = {"Authorization": f"Bearer {key}"}
    assert (await run(client, tenant, LIST, headers=headers))["campaigns"]["totalCount"] == 7
    body = await graphql(client, CREATE, {"input": NEW}, headers=headers)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_another_tenants_campaign_is_out_of_reach_of_every_field_and_mutation(client, tenant, other_tenant):
    theirs = (await create(client, other_tenant))["campaign"]
    assert (await run(client, tenant, ONE, {"id": theirs["id"]}))["campaign"] is None
    node = await graphql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]}, headers=tenant.headers
    )
    assert node["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    names = [e["node"]["name"] for e in (await run(client, tenant, LIST))["campaigns"]["edges"]]
    assert "Win them back" not in names
    changed = await run(client, tenant, UPDATE, {"id": theirs["id"], "input": {"name": "Hijacked"}})
    assert changed["updateCampaign"]["code"] == "NOT_FOUND"
    for mutation in ("pauseCampaign", "resumeCampaign", "archiveCampaign"):
        result = (await run(client, tenant, status_mutation(mutation), {"id": theirs["id"]}))[mutation]
        assert result["code"] == "NOT_FOUND"
    still = (await run(client, other_tenant, ONE, {"id": theirs["id"]}))["campaign"]
    assert (still["name"], still["status"]) == ("Win them back", "ACTIVE")
