"""Cases through GraphQL: the prioritised list, its filters, orders and pages, one case by node id,
a customer's cases, a case's timeline, every mutation and its UserError, and the case settings."""

from datetime import timedelta

import pytest
from strawberry.relay import to_base64

from churnsaver.backend.core.db import utcnow
from tests.fixtures.cases import open_payment_failed_case, open_payment_failed_cases
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql
from tests.fixtures.sql import counting_statements

CASE_FIELDS = """
  id kind status priority revenueAtRisk { amount currency } openedAt firstTouchDueAt firstTouchAt overdue
  resolvedAt verifiedAt resolutionReason assignee customer { id externalId } trigger { type occurredAt }
"""
CASES = f"""
query($first: Int, $after: String, $filter: CaseFilter, $orderBy: CaseOrder) {{
  cases(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{
    edges {{ cursor node {{ {CASE_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
NODE = f"""query($id: ID!) {{
  node(id: $id) {{ ... on Case {{ {CASE_FIELDS} events {{ edges {{ node {{ type actor }} }} }} }} }}
}}"""
RESULT = f"""
  __typename
  ... on CaseChanged {{ case {{ {CASE_FIELDS} events(first: 100) {{ edges {{ node {{ type actor data }} }} }} }} }}
  ... on UserError {{ code message }}
"""


def case_id(case) -> str:
    return to_base64("Case", case.id)


async def list_cases(client, tenant, **variables) -> list[dict]:
    body = await graphql(client, CASES, variables, headers=tenant.headers)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["cases"]["edges"]]


async def mutate(client, tenant, mutation: str, arguments: str, variables: dict) -> dict:
    text_type = "String!" if mutation in ("addCaseNote", "dismissCase") else "String"
    declared = f"$id: ID!, $text: {text_type}" if "$text" in arguments else "$id: ID!"
    query = f"mutation({declared}) {{ {mutation}({arguments}) {{ {RESULT} }} }}"
    body = await graphql(client, query, variables, headers=tenant.headers)
    assert "errors" not in body, body
    return body["data"][mutation]


async def test_a_case_shows_what_opened_it_and_what_is_at_stake(client, db, tenant):
    opened_at = utcnow() - timedelta(minutes=10)
    await open_payment_failed_case(db, tenant.id, "user_Shown", at=opened_at, total=49.0)

    [case] = await list_cases(client, tenant)

    assert case["kind"] == "PAYMENT_FAILED"
    assert case["status"] == "OPEN"
    assert case["revenueAtRisk"] == {"amount": 4900, "currency": "USD"}
    assert case["priority"] > 0
    assert case["trigger"]["type"] == "payment_failed"
    assert case["customer"]["externalId"]
    assert case["overdue"] is False  # a one-hour SLA, ten minutes in
    assert case["assignee"] is None and case["resolvedAt"] is None


async def test_the_list_is_sorted_by_priority_or_by_opening(client, db, tenant):
    now = utcnow()
    small = await open_payment_failed_case(db, tenant.id, "user_Small", at=now - timedelta(hours=3), total=10.0)
    large = await open_payment_failed_case(db, tenant.id, "user_Large", at=now - timedelta(hours=5), total=500.0)
    middle = await open_payment_failed_case(db, tenant.id, "user_Middle", at=now - timedelta(hours=1), total=99.0)

    by_priority = await list_cases(client, tenant)
    by_opening = await list_cases(client, tenant, orderBy="OPENED_AT_DESC")

    assert [case["id"] for case in by_priority] == [case_id(large), case_id(middle), case_id(small)]
    assert [case["id"] for case in by_opening] == [case_id(middle), case_id(small), case_id(large)]


@pytest.mark.parametrize("order_by", ["PRIORITY_DESC", "OPENED_AT_DESC"])
async def test_pages_follow_one_another_without_gaps_or_repeats(client, db, tenant, order_by):
    await open_payment_failed_cases(db, tenant.id, [f"user_Page{n}" for n in range(5)])
    everything = [case["id"] for case in await list_cases(client, tenant, orderBy=order_by)]

    seen, after = [], None
    while True:
        body = await graphql(client, CASES, {"first": 2, "after": after, "orderBy": order_by}, headers=tenant.headers)
        connection = body["data"]["cases"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert len(everything) == 5
    assert seen == everything


@pytest.mark.parametrize("order_by", ["PRIORITY_DESC", "OPENED_AT_DESC"])
async def test_the_total_counts_every_matching_case_on_every_page(client, db, tenant, order_by):
    cases = await open_payment_failed_cases(db, tenant.id, [f"user_Count{n}" for n in range(3)])
    await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", {"id": case_id(cases[0]), "text": "dup"})
    query = """query($after: String, $orderBy: CaseOrder!, $filter: CaseFilter) {
      cases(first: 1, after: $after, orderBy: $orderBy, filter: $filter) { totalCount pageInfo { endCursor } } }"""

    async def total(**variables) -> int:
        body = await graphql(client, query, {"orderBy": order_by, **variables}, headers=tenant.headers)
        return body["data"]["cases"]["totalCount"]

    first_page = await graphql(client, query, {"orderBy": order_by}, headers=tenant.headers)
    after = first_page["data"]["cases"]["pageInfo"]["endCursor"]
    assert first_page["data"]["cases"]["totalCount"] == 3
    assert await total(after=after) == 3
    assert await total(filter={"status": ["OPEN"]}) == 2


async def test_a_bad_cursor_is_bad_input(client, tenant):
    body = await graphql(client, CASES, {"after": "not-a-cursor"}, headers=tenant.headers)

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_filters_narrow_the_list(client, db, tenant):
    now = utcnow()
    overdue = await open_payment_failed_case(db, tenant.id, "user_Overdue", at=now - timedelta(hours=3))
    fresh = await open_payment_failed_case(db, tenant.id, "user_Fresh", at=now - timedelta(minutes=5))
    await mutate(client, tenant, "assignCase", "id: $id, assignee: $text", {"id": case_id(fresh), "text": "ana"})
    await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", {"id": case_id(overdue), "text": "dup"})
    customer_of_fresh = (await list_cases(client, tenant, filter={"assignee": "ana"}))[0]["customer"]["id"]

    def ids(cases: list[dict]) -> list[str]:
        return [case["id"] for case in cases]

    assert ids(await list_cases(client, tenant, filter={"status": ["OPEN"]})) == [case_id(fresh)]
    assert ids(await list_cases(client, tenant, filter={"status": ["DISMISSED", "LOST"]})) == [case_id(overdue)]
    assert ids(await list_cases(client, tenant, filter={"kind": ["CANCELED"]})) == []
    assert len(await list_cases(client, tenant, filter={"kind": ["PAYMENT_FAILED"]})) == 2
    assert ids(await list_cases(client, tenant, filter={"customerId": customer_of_fresh})) == [case_id(fresh)]
    assert ids(await list_cases(client, tenant, filter={"assignee": "ana"})) == [case_id(fresh)]
    assert ids(await list_cases(client, tenant, filter={"overdue": False, "status": ["OPEN"]})) == [case_id(fresh)]
    # Dismissed, so no longer overdue, though it was never touched.
    assert ids(await list_cases(client, tenant, filter={"overdue": True})) == []


async def test_an_open_untouched_case_past_its_deadline_is_overdue(client, db, tenant):
    late = await open_payment_failed_case(db, tenant.id, "user_Late", at=utcnow() - timedelta(hours=2))

    [case] = await list_cases(client, tenant, filter={"overdue": True})

    assert case["id"] == case_id(late)
    assert case["overdue"] is True


async def test_a_customer_id_that_is_not_a_customers_is_bad_input(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Wrong")

    body = await graphql(client, CASES, {"filter": {"customerId": case_id(case)}}, headers=tenant.headers)

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_case_by_node_id_with_its_timeline(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Node")

    body = await graphql(client, NODE, {"id": case_id(case)}, headers=tenant.headers)

    node = body["data"]["node"]
    assert node["id"] == case_id(case)
    assert [edge["node"]["type"] for edge in node["events"]["edges"]] == ["OPENED"]


async def test_a_customer_lists_its_cases(client, db, tenant):
    await open_payment_failed_case(db, tenant.id, "user_Other")
    case = await open_payment_failed_case(db, tenant.id, "user_Mine")
    query = "query($id: ID!) { customer(id: $id) { cases { edges { node { id kind } } totalCount } } }"
    customer_id = next(c["customer"]["id"] for c in await list_cases(client, tenant) if c["id"] == case_id(case))

    body = await graphql(client, query, {"id": customer_id}, headers=tenant.headers)

    cases = body["data"]["customer"]["cases"]
    assert cases["edges"] == [{"node": {"id": case_id(case), "kind": "PAYMENT_FAILED"}}]
    assert cases["totalCount"] == 1


async def test_a_note_is_added_to_the_timeline_and_an_empty_one_refused(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Note")

    added = await mutate(client, tenant, "addCaseNote", "id: $id, text: $text", {"id": case_id(case), "text": "Hi"})
    empty = await mutate(client, tenant, "addCaseNote", "id: $id, text: $text", {"id": case_id(case), "text": "  "})
    too_long = await mutate(
        client, tenant, "addCaseNote", "id: $id, text: $text", {"id": case_id(case), "text": "x" * 10_001}
    )

    events = [edge["node"] for edge in added["case"]["events"]["edges"]]
    assert events[-1]["type"] == "NOTE" and events[-1]["data"]["text"] == "Hi"
    assert events[-1]["actor"].startswith("api_key:")
    assert empty == {"__typename": "UserError", "code": "BAD_USER_INPUT", "message": "a note needs some text"}
    assert too_long["code"] == "BAD_USER_INPUT" and "10,000" in too_long["message"]


async def test_a_case_is_assigned_and_unassigned(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Assign")

    assign = "id: $id, assignee: $text"
    assigned = await mutate(client, tenant, "assignCase", assign, {"id": case_id(case), "text": "bo"})
    unassigned = await mutate(client, tenant, "assignCase", "id: $id", {"id": case_id(case)})
    blank = await mutate(client, tenant, "assignCase", assign, {"id": case_id(case), "text": " "})

    assert assigned["case"]["assignee"] == "bo"
    assert unassigned["case"]["assignee"] is None
    assert [edge["node"]["type"] for edge in unassigned["case"]["events"]["edges"]][-2:] == ["ASSIGNED", "ASSIGNED"]
    assert blank["__typename"] == "UserError" and blank["code"] == "BAD_USER_INPUT"


async def test_dismissing_needs_a_reason_and_an_open_case(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Dismiss")
    variables = {"id": case_id(case)}

    no_reason = await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", variables | {"text": ""})
    dismissed = await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", variables | {"text": "test"})
    again = await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", variables | {"text": "test"})

    assert no_reason["code"] == "BAD_USER_INPUT"
    assert dismissed["case"]["status"] == "DISMISSED"
    assert dismissed["case"]["resolutionReason"] == "test"
    assert again["code"] == "CONFLICT"


async def test_a_dismissed_case_is_reopened_and_an_open_one_cannot_be(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Reopen")
    variables = {"id": case_id(case)}

    still_open = await mutate(client, tenant, "reopenCase", "id: $id", variables)
    await mutate(client, tenant, "dismissCase", "id: $id, reason: $text", variables | {"text": "oops"})
    reopened = await mutate(client, tenant, "reopenCase", "id: $id", variables)

    assert still_open["code"] == "CONFLICT"
    assert reopened["case"]["status"] == "OPEN"
    assert reopened["case"]["resolvedAt"] is None


async def test_a_case_is_marked_lost_once(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_Lost")
    variables = {"id": case_id(case)}

    lost = await mutate(client, tenant, "markCaseLost", "id: $id, reason: $text", variables | {"text": "gone"})
    again = await mutate(client, tenant, "markCaseLost", "id: $id", variables)

    assert lost["case"]["status"] == "LOST"
    assert lost["case"]["resolvedAt"] is not None
    assert again["code"] == "CONFLICT"


@pytest.mark.parametrize(
    ("mutation", "arguments"),
    [
        ("addCaseNote", "id: $id, text: $text"),
        ("assignCase", "id: $id, assignee: $text"),
        ("dismissCase", "id: $id, reason: $text"),
        ("reopenCase", "id: $id"),
        ("markCaseLost", "id: $id"),
    ],
)
@pytest.mark.parametrize("bad_id", ["garbage", to_base64("Customer", "00000000-0000-0000-0000-000000000001")])
async def test_a_mutation_on_no_case_is_not_found(client, tenant, mutation, arguments, bad_id):
    result = await mutate(client, tenant, mutation, arguments, {"id": bad_id, "text": "x"})

    assert result == {"__typename": "UserError", "code": "NOT_FOUND", "message": "case not found"}


async def test_a_read_only_key_cannot_change_a_case(client, db, tenant):
    case = await open_payment_failed_case(db, tenant.id, "user_ReadOnly")
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])
    query = "mutation($id: ID!) { reopenCase(id: $id) { __typename } }"

    body = await graphql(client, query, {"id": case_id(case)}, headers={"Authorization": f"Bearer {read_only}"})

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


SETTINGS = """
  windowDays { kind days } slaMinutes { kind minutes } usageDropRatio usageDropMinActiveDays caseTiers verifyDays
"""
UPDATE_SETTINGS = f"""
mutation($input: UpdateCaseSettingsInput!) {{
  updateCaseSettings(input: $input) {{
    __typename ... on CaseSettingsUpdated {{ settings {{ {SETTINGS} }} }} ... on UserError {{ code message }}
  }}
}}"""


async def test_case_settings_start_from_the_defaults(client, tenant):
    body = await graphql(client, f"{{ caseSettings {{ {SETTINGS} }} }}", headers=tenant.headers)

    settings = body["data"]["caseSettings"]
    assert {item["kind"]: item["minutes"] for item in settings["slaMinutes"]}["PAYMENT_FAILED"] == 60
    assert {item["kind"]: item["minutes"] for item in settings["slaMinutes"]}["USAGE_DROP"] == 24 * 60
    assert {item["days"] for item in settings["windowDays"]} == {30}
    assert settings["usageDropRatio"] == 0.3
    assert settings["usageDropMinActiveDays"] == 5
    assert sorted(settings["caseTiers"]) == ["CRITICAL", "HIGH"]
    assert settings["verifyDays"] == 14


async def test_case_settings_change_what_is_given_only(client, tenant):
    changes = {
        "windowDays": [{"kind": "CANCELED", "days": 60}],
        "slaMinutes": [{"kind": "PAYMENT_FAILED", "minutes": 15}],
        "caseTiers": ["CRITICAL"],
        "verifyDays": 21,
    }

    body = await graphql(client, UPDATE_SETTINGS, {"input": changes}, headers=tenant.headers)
    read_back = await graphql(client, f"{{ caseSettings {{ {SETTINGS} }} }}", headers=tenant.headers)

    settings = body["data"]["updateCaseSettings"]["settings"]
    assert settings == read_back["data"]["caseSettings"]
    windows = {item["kind"]: item["days"] for item in settings["windowDays"]}
    assert windows["CANCELED"] == 60 and windows["PAYMENT_FAILED"] == 30
    assert {item["kind"]: item["minutes"] for item in settings["slaMinutes"]}["PAYMENT_FAILED"] == 15
    assert settings["caseTiers"] == ["CRITICAL"]
    assert settings["verifyDays"] == 21
    assert settings["usageDropRatio"] == 0.3


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"verifyDays": 0}, "verify_days must be between"),
        ({"usageDropRatio": 1.5}, "usage_drop_ratio must be between 0 and 1"),
        ({"usageDropMinActiveDays": 29}, "usage_drop_min_active_days must be between"),
        ({"windowDays": [{"kind": "CANCELED", "days": 0}]}, "window_days[canceled] must be between"),
        ({"slaMinutes": [{"kind": "HIGH_RISK", "minutes": -5}]}, "sla_minutes[high_risk] must be between"),
        ({"caseTiers": ["LOW"]}, "the low tier cannot open cases"),
    ],
)
async def test_invalid_case_settings_are_a_user_error_and_change_nothing(client, tenant, changes, says):
    before = await graphql(client, f"{{ caseSettings {{ {SETTINGS} }} }}", headers=tenant.headers)

    body = await graphql(client, UPDATE_SETTINGS, {"input": changes}, headers=tenant.headers)

    result = body["data"]["updateCaseSettings"]
    assert result["__typename"] == "UserError" and result["code"] == "BAD_USER_INPUT"
    assert says in result["message"]
    assert await graphql(client, f"{{ caseSettings {{ {SETTINGS} }} }}", headers=tenant.headers) == before


@pytest.mark.parametrize("page_size", [1, 10, 40])
async def test_statements_per_request_do_not_grow_with_page_size(client, app, db, tenant, page_size):
    await open_payment_failed_cases(db, tenant.id, [f"user_Count{n}" for n in range(40)])
    query = f"""query($first: Int) {{ cases(first: $first) {{ edges {{ node {{
      {CASE_FIELDS} events {{ edges {{ node {{ type }} }} }} customer {{ cases {{ edges {{ node {{ id }} }} }} }}
    }} }} }} }}"""
    await graphql(client, query, {"first": 1}, headers=tenant.headers)  # records the key's first use

    with counting_statements(app.state.db) as statements:
        body = await graphql(client, query, {"first": page_size}, headers=tenant.headers)

    assert len(body["data"]["cases"]["edges"]) == page_size
    # authenticate, then per session (the operation's and each loader's) the tenant (PostgreSQL
    # only) and one statement: the page, the customers, their cases, the cases' timelines.
    assert len(statements) <= 9, statements
