"""What POST and GET /graphql answer for a request that is not acceptable JSON: a 400 with a reason,
never a 500, and the connection stays usable (issue 18, finding 3)."""

import pytest

VIEWER = "{ viewer { kind } }"
EXTERNAL_ID = "query($s: String) { customer(externalId: $s) { id } }"


async def post_raw(client, tenant, body: bytes | str):
    return await client.post("/graphql", content=body, headers=tenant.headers | {"content-type": "application/json"})


async def assert_still_answers(client, tenant) -> None:
    follow_up = await client.post("/graphql", json={"query": VIEWER}, headers=tenant.headers)
    assert follow_up.json() == {"data": {"viewer": {"kind": "api_key"}}}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("null", "must be a JSON object"),
        ('"a string"', "must be a JSON object"),
        ("123", "must be a JSON object"),
        ("true", "must be a JSON object"),
        ("[]", "Batching is not enabled"),
    ],
)
async def test_a_json_body_that_is_not_an_object_is_refused_with_a_reason(client, tenant, body, reason):
    response = await post_raw(client, tenant, body)

    assert response.status_code == 400
    assert reason in response.text
    await assert_still_answers(client, tenant)


@pytest.mark.parametrize("undecodable", [b"\xff\xfe", b"\xc3\x28", b"\xc0\xaf"])
@pytest.mark.parametrize("where", ["bare", "in a variable"])
async def test_a_body_that_is_not_utf8_is_refused(client, tenant, undecodable, where):
    body = (
        undecodable
        if where == "bare"
        else b'{"query":"' + EXTERNAL_ID.encode() + b'","variables":{"s":"' + undecodable + b'"}}'
    )

    response = await post_raw(client, tenant, body)

    assert response.status_code == 400
    assert "not UTF-8" in response.text or "malformed JSON" in response.text
    await assert_still_answers(client, tenant)


@pytest.mark.parametrize("opener", ['{"a":', "["])
async def test_variables_nested_a_thousand_deep_are_refused(client, tenant, opener):
    closer = "}" if opener.startswith("{") else "]"
    deep = opener * 1000 + "1" + closer * 1000
    body = '{"query":"' + EXTERNAL_ID + '","variables":{"s":"x","deep":' + deep + "}}"

    response = await post_raw(client, tenant, body)

    assert response.status_code == 400
    assert "variables.deep" in response.text
    assert "nested deeper than 64 levels" in response.text
    await assert_still_answers(client, tenant)


@pytest.mark.parametrize(
    ("value", "reason"),
    [('"\\ud800"', "lone surrogates"), ('"a\\u0000b"', "NUL characters"), ("1e400", "numbers must be finite")],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_variable_no_store_can_hold_is_refused_naming_it(client, tenant, value, reason, method):
    variables = '{"s":' + value + "}"
    if method == "POST":
        response = await post_raw(client, tenant, f'{{"query":"{EXTERNAL_ID}","variables":{variables}}}')
    else:
        response = await client.get(
            "/graphql", params={"query": EXTERNAL_ID, "variables": variables}, headers=tenant.headers
        )

    assert response.status_code == 400
    assert f"variables.s: {reason}" in response.text
    await assert_still_answers(client, tenant)


async def test_a_variable_key_no_store_can_hold_is_refused_by_its_escape(client, tenant):
    query = "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }"

    response = await post_raw(client, tenant, '{"query":"' + query + '","variables":{"f":{"\\ud800":null}}}')

    assert response.status_code == 400
    assert response.text == "variables.f.\\ud800: lone surrogates (e.g. \\ud800) are not accepted"
    await assert_still_answers(client, tenant)


@pytest.mark.parametrize("undecodable", ["%FF%FE", "%C3%28", "%C0%AF"])
async def test_a_get_with_bytes_that_are_not_utf8_reads_them_as_replacement_characters(client, tenant, undecodable):
    query = "query($s:String){customer(externalId:$s){id}}"
    url = f"/graphql?query={query}&variables=%7B%22s%22%3A%22{undecodable}%22%7D"

    response = await client.get(url, headers=tenant.headers)

    assert response.status_code == 200
    assert response.json() == {"data": {"customer": None}}
