"""Sibling root fields share the operation's one session: every query root field runs together in
one operation, twice over under aliases, on both backends."""

from strawberry.types import get_object_definition

from churnsaver.graphql.schema import Query
from tests.fixtures.factories import create_customers
from tests.fixtures.graphql import graphql

# Each query root field with a small selection; a new root field must be added here.
ROOT_FIELDS = {
    "node": 'node(id: "VGVuYW50OjA=") { id }',
    "viewer": "viewer { kind }",
    "apiKeys": "apiKeys { id }",
    "customers": "customers(first: 2) { totalCount edges { node { id } } }",
    "customer": 'customer(externalId: "none") { id }',
    "ingestStats": "ingestStats { source }",
    "failedEvents": "failedEvents(first: 2) { edges { node { id } } }",
    "webhookEndpoints": "webhookEndpoints { id }",
    "riskDistribution": "riskDistribution { unscored }",
    "riskThresholds": "riskThresholds { high }",
    "riskModels": "riskModels { version }",
    "cases": "cases(first: 2) { totalCount edges { node { id } } }",
    "caseSettings": "caseSettings { verifyDays }",
    "messages": "messages(first: 2) { totalCount edges { node { id } } }",
    "templates": 'templates(key: "winback", channel: EMAIL) { locale }',
    "renderTemplate": 'renderTemplate(key: "winback", channel: SMS) { ... on RenderedTemplate { bodyText } }',
    "channelSettings": "channelSettings { timezone }",
    "campaigns": "campaigns(first: 2) { totalCount edges { node { id name stats { enrolled } } } }",
    "campaign": 'campaign(id: "Q2FtcGFpZ246MA==") { id }',
    "offers": "offers(first: 2) { edges { node { id kind } } }",
    "redemptions": "redemptions(first: 2) { edges { node { id } } }",
    "budgets": "budgets { month spent { amount } }",
    "billingConnection": "billingConnection { provider }",
    "offerSettings": "offerSettings { policy }",
    "widgetSettings": "widgetSettings { allowedOrigins }",
    "publishableKey": "publishableKey",
}


def test_every_query_root_field_is_in_the_operation() -> None:
    names = {field.graphql_name or field.python_name for field in get_object_definition(Query, strict=True).fields}
    camel = {name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]) for name in names}
    assert camel == set(ROOT_FIELDS)


async def test_every_query_root_field_runs_together_in_one_operation(client, db, tenant):
    await create_customers(db, tenant.id, 3)
    # The first copy goes unaliased: the operation stays within the alias limit (30) as fields are added.
    selections = " ".join(f"{field} second_{name}: {field}" for name, field in ROOT_FIELDS.items())

    body = await graphql(client, f"{{ {selections} }}", headers=tenant.headers)

    # Only `node` (a made-up id) may fail, and only with its own NOT_FOUND.
    assert {error["extensions"]["code"] for error in body.get("errors", [])} <= {"NOT_FOUND"}
    assert {tuple(error["path"]) for error in body.get("errors", [])} <= {("node",), ("second_node",)}
    data = body["data"]
    assert data["customers"]["totalCount"] == data["second_customers"]["totalCount"] == 3
    assert data["viewer"] == data["second_viewer"] == {"kind": "api_key"}
    for name in ROOT_FIELDS:
        assert data[name] == data[f"second_{name}"]
