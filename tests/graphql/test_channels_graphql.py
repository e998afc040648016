"""Channels through GraphQL: messages and their filters, Case.messages, a message by node id,
templates (save, typed errors with the line, preview), test sends, channel settings and their
secrets; every field and mutation tried across tenants and with a read-only key."""

from strawberry.relay import to_base64

from churnsaver.backend.channels.delivery import deliver
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.channels import schedule, stored_messages
from tests.fixtures.factories import create_api_key_for, create_customer
from tests.fixtures.graphql import graphql

MESSAGE_FIELDS = "id channel status reason template locale toAddress subject bodyText captured test history { status }"
MESSAGES = f"""
query($filter: MessageFilter, $first: Int, $after: String) {{
  messages(filter: $filter, first: $first, after: $after) {{
    totalCount edges {{ node {{ {MESSAGE_FIELDS} customer {{ externalId }} case {{ id }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
UPDATE_TEMPLATE = """
mutation($input: UpdateTemplateInput!) {
  updateTemplate(input: $input) {
    __typename
    ... on TemplateSaved { template { key channel locale subject bodyText custom } }
    ... on TemplateError { code message field line }
    ... on UserError { code message }
  }
}"""
RENDER = """
query($key: String!, $channel: MessageChannel!, $locale: String!, $draft: TemplateDraft) {
  renderTemplate(key: $key, channel: $channel, locale: $locale, draft: $draft) {
    __typename
    ... on RenderedTemplate { subject bodyText bodyHtml }
    ... on TemplateError { code message field line }
    ... on UserError { code message }
  }
}"""
SEND_TEST = """
mutation($customerId: ID!, $channel: MessageChannel!, $template: String!) {
  sendTestMessage(customerId: $customerId, channel: $channel, template: $template) {
    __typename
    ... on TestMessageSent { testMessage { status test toAddress } }
    ... on UserError { code message }
  }
}"""
SETTINGS = """
mutation($input: UpdateChannelSettingsInput!) {
  updateChannelSettings(input: $input) {
    __typename
    ... on ChannelSettingsUpdated { settings { fromName timezone quietHoursStart smsAuthTokenSet whopApiKeySet
      smsAccountSid capPerChannelPerDay } }
    ... on UserError { code message }
  }
}"""


def gid(type_name: str, row) -> str:
    return to_base64(type_name, row.id)


async def test_messages_list_filters_and_case_messages(settings, client, db, tenant) -> None:
    case = await open_payment_failed_case(db, tenant.id, "user_A")
    email = await schedule(db, tenant.id, case.customer_id, case_id=case.id)
    await deliver(db, settings, tenant.id, email.message_id)
    await schedule(db, tenant.id, case.customer_id, case_id=case.id, channel="whop")  # no Whop user? suppressed or not
    other = await create_customer(db, tenant.id, "cus_other", email="o@example.com")
    await schedule(db, tenant.id, other.id)

    everything = (await graphql(client, MESSAGES, headers=tenant.headers))["data"]["messages"]
    assert everything["totalCount"] == 3
    of_case = await graphql(client, MESSAGES, {"filter": {"caseId": gid("Case", case)}}, headers=tenant.headers)
    nodes = [edge["node"] for edge in of_case["data"]["messages"]["edges"]]
    assert len(nodes) == 2 and {node["case"]["id"] for node in nodes} == {gid("Case", case)}
    sent = await graphql(
        client, MESSAGES, {"filter": {"status": ["SENT"], "channel": ["EMAIL"]}}, headers=tenant.headers
    )
    [node] = [edge["node"] for edge in sent["data"]["messages"]["edges"]]
    assert (node["captured"], node["locale"], node["history"][-1]["status"]) == (True, "en", "SENT")
    paged = await graphql(client, MESSAGES, {"first": 2}, headers=tenant.headers)
    assert paged["data"]["messages"]["pageInfo"]["hasNextPage"] is True

    query = "query($id: ID!) { node(id: $id) { ... on Case { messages { totalCount edges { node { channel } } } } } }"
    body = await graphql(client, query, {"id": gid("Case", case)}, headers=tenant.headers)
    assert body["data"]["node"]["messages"]["totalCount"] == 2


async def test_another_tenant_reaches_none_of_the_messages(settings, client, db, tenant, other_tenant) -> None:
    case = await open_payment_failed_case(db, tenant.id, "user_A")
    outcome = await schedule(db, tenant.id, case.customer_id, case_id=case.id)
    [message] = await stored_messages(db, tenant.id)
    stranger = other_tenant.headers

    listed = await graphql(client, MESSAGES, headers=stranger)
    assert listed["data"]["messages"]["totalCount"] == 0
    by_case = await graphql(client, MESSAGES, {"filter": {"caseId": gid("Case", case)}}, headers=stranger)
    assert by_case["data"]["messages"]["totalCount"] == 0
    node = await graphql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid("Message", message)}, headers=stranger
    )
    assert node["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    case_node = await graphql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Case { messages { totalCount } } } }",
        {"id": gid("Case", case)},
        headers=stranger,
    )
    assert case_node["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    sent = await graphql(
        client,
        SEND_TEST,
        {"customerId": to_base64("Customer", case.customer_id), "channel": "EMAIL", "template": "winback"},
        headers=stranger,
    )
    assert sent["data"]["sendTestMessage"] == {
        "__typename": "UserError",
        "code": "NOT_FOUND",
        "message": "customer not found",
    }
    assert len(await stored_messages(db, tenant.id)) == 1 and await stored_messages(db, other_tenant.id) == []
    assert outcome.created


async def test_a_template_is_saved_refused_with_its_line_and_previewed(client, db, tenant, other_tenant) -> None:
    bad = {"key": "winback", "channel": "EMAIL", "locale": "en", "subject": "Hi", "bodyText": "Hi\n{{ customer_nam }}"}
    refused = (await graphql(client, UPDATE_TEMPLATE, {"input": bad}, headers=tenant.headers))["data"]["updateTemplate"]
    assert refused["__typename"] == "TemplateError"
    assert (refused["field"], refused["line"], refused["code"]) == ("bodyText", 2, "BAD_USER_INPUT")
    assert "customer_nam" in refused["message"]

    good = bad | {"subject": "Come back, {{ customer_name }}", "bodyText": "We miss you at {{ merchant_name }}."}
    saved = (await graphql(client, UPDATE_TEMPLATE, {"input": good}, headers=tenant.headers))["data"]["updateTemplate"]
    assert saved["template"]["custom"] is True
    preview = await graphql(
        client, RENDER, {"key": "winback", "channel": "EMAIL", "locale": "en"}, headers=tenant.headers
    )
    assert preview["data"]["renderTemplate"]["subject"] == "Come back, Alex Sample"
    theirs = await graphql(
        client, RENDER, {"key": "winback", "channel": "EMAIL", "locale": "en"}, headers=other_tenant.headers
    )
    assert theirs["data"]["renderTemplate"]["subject"] == "We miss you at " + other_tenant.tenant.name

    draft = {"bodyText": "line one\n{% for %}"}
    broken = await graphql(
        client, RENDER, {"key": "winback", "channel": "SMS", "locale": "en", "draft": draft}, headers=tenant.headers
    )
    assert broken["data"]["renderTemplate"]["__typename"] == "TemplateError"
    assert broken["data"]["renderTemplate"]["line"] == 2
    listed = await graphql(
        client, '{ templates(key: "winback", channel: EMAIL) { locale custom } }', headers=other_tenant.headers
    )
    assert {row["custom"] for row in listed["data"]["templates"]} == {False}


async def test_a_read_only_key_reads_but_cannot_change_channels(client, db, tenant) -> None:
    key = await create_api_key_for(db, tenant.id, scopes=["read"])
    headers = {"Authorization": f"Bearer {key}"}
    assert "errors" not in await graphql(client, MESSAGES, headers=headers)
    good = {"key": "winback", "channel": "EMAIL", "locale": "en", "subject": "x", "bodyText": "y"}
    for query, variables in ((UPDATE_TEMPLATE, {"input": good}), (SETTINGS, {"input": {"timezone": "UTC"}})):
        body = await graphql(client, query, variables, headers=headers)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_channel_settings_keep_secrets_sealed_and_say_what_is_wrong(client, db, tenant, other_tenant) -> None:
    changes = {
        "fromName": "Acme Billing",
        "timezone": "America/New_York",
        "smsAccountSid": "AC" + "0" * 32,
        "smsAuthToken": "secret-token",
        "capPerChannelPerDay": 2,
    }
    body = await graphql(client, SETTINGS, {"input": changes}, headers=tenant.headers)
    settings = body["data"]["updateChannelSettings"]["settings"]
    assert settings["smsAuthTokenSet"] is True and settings["whopApiKeySet"] is False
    assert (settings["fromName"], settings["timezone"], settings["capPerChannelPerDay"]) == (
        "Acme Billing",
        "America/New_York",
        2,
    )
    assert "secret-token" not in str(body)
    theirs = await graphql(
        client, "{ channelSettings { fromName smsAuthTokenSet timezone } }", headers=other_tenant.headers
    )
    assert theirs["data"]["channelSettings"] == {"fromName": None, "smsAuthTokenSet": False, "timezone": "UTC"}
    for bad, message in (({"timezone": "Nowhere/City"}, "IANA"), ({"quietHoursStart": "9pm"}, "HH:MM")):
        refused = (await graphql(client, SETTINGS, {"input": bad}, headers=tenant.headers))["data"][
            "updateChannelSettings"
        ]
        assert refused["__typename"] == "UserError" and message in refused["message"]
    cleared = await graphql(client, SETTINGS, {"input": {"smsAuthToken": ""}}, headers=tenant.headers)
    assert cleared["data"]["updateChannelSettings"]["settings"]["smsAuthTokenSet"] is False


async def test_a_test_message_is_sent_as_a_test(client, db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    variables = {"customerId": to_base64("Customer", customer.id), "channel": "EMAIL", "template": "winback"}
    body = await graphql(client, SEND_TEST, variables, headers=tenant.headers)
    assert body["data"]["sendTestMessage"]["testMessage"] == {
        "status": "SCHEDULED",
        "test": True,
        "toAddress": "ana@example.com",
    }
    bad = await graphql(client, SEND_TEST, variables | {"customerId": "nope"}, headers=tenant.headers)
    assert bad["data"]["sendTestMessage"]["code"] == "NOT_FOUND"


async def test_a_bad_filter_id_is_a_user_input_error(client, tenant) -> None:
    body = await graphql(client, MESSAGES, {"filter": {"caseId": "garbage"}}, headers=tenant.headers)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
