"""Widget settings through GraphQL: the publishable key (made once, stable), the widget secret
(returned once, never readable, sealed to its tenant), origins, branding, survey reasons and
cancel handling validated with a reason; read-only keys and other tenants refused."""

from sqlalchemy import select

from churnsaver.backend.embeds.models import EmbedSettingsRow
from churnsaver.backend.embeds.settings import normalized_origin
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql

SETTINGS_FIELDS = (
    "allowedOrigins brandName logoUrl brandColor surveyReasons { code label customLabel } "
    "cancelHandling widgetSecretSet"
)
READ = f"{{ publishableKey widgetSettings {{ {SETTINGS_FIELDS} }} }}"
UPDATE = f"""
mutation($input: UpdateWidgetSettingsInput!) {{
  updateWidgetSettings(input: $input) {{
    __typename
    ... on WidgetSettingsUpdated {{ settings {{ {SETTINGS_FIELDS} }} }}
    ... on UserError {{ code message }}
  }}
}}"""
ROTATE = (
    """mutation { rotateWidgetSecret { __typename ... on WidgetSecretRotated { secret } ... on UserError { code } } }"""
)


async def test_the_publishable_key_is_made_once_and_the_defaults_are_shown(client, tenant) -> None:
    first = (await graphql(client, READ, headers=tenant.headers))["data"]
    second = (await graphql(client, READ, headers=tenant.headers))["data"]
    assert first["publishableKey"].startswith("pk_") and first["publishableKey"] == second["publishableKey"]
    settings = first["widgetSettings"]
    assert settings["allowedOrigins"] == [] and settings["widgetSecretSet"] is False
    assert settings["brandColor"] == "#2f6fed" and settings["cancelHandling"] == "BILLING"
    assert settings["surveyReasons"][0] == {
        "code": "too_expensive",
        "label": "It's too expensive",
        "customLabel": False,
    }


async def test_settings_change_and_are_validated(client, tenant) -> None:
    changes = {
        "allowedOrigins": ["https://App.Example.com:443/", "http://localhost:3000", "https://app.example.com"],
        "brandName": "Acme",
        "logoUrl": "https://cdn.example.com/logo.png",
        "brandColor": "#AA3300",
        "surveyReasons": [{"code": "too_expensive"}, {"code": "moving_abroad", "label": "I'm moving abroad"}],
        "cancelHandling": "MERCHANT_EVENT",
    }
    result = (await graphql(client, UPDATE, {"input": changes}, headers=tenant.headers))["data"]["updateWidgetSettings"]
    settings = result["settings"]
    assert settings["allowedOrigins"] == ["https://app.example.com", "http://localhost:3000"]
    assert (settings["brandName"], settings["brandColor"], settings["cancelHandling"]) == (
        "Acme",
        "#aa3300",
        "MERCHANT_EVENT",
    )
    assert settings["surveyReasons"] == [
        {"code": "too_expensive", "label": "It's too expensive", "customLabel": False},
        {"code": "moving_abroad", "label": "I'm moving abroad", "customLabel": True},
    ]
    only_name = (await graphql(client, UPDATE, {"input": {"brandName": ""}}, headers=tenant.headers))["data"]
    kept = only_name["updateWidgetSettings"]["settings"]
    assert kept["brandName"] is None and kept["allowedOrigins"] == settings["allowedOrigins"]

    for bad in (
        {"allowedOrigins": ["https://*.example.com"]},
        {"allowedOrigins": ["https://example.com/path"]},
        {"allowedOrigins": ["javascript:alert(1)"]},
        {"logoUrl": "http://insecure.example.com/logo.png"},
        {"logoUrl": 'https://x.example.com/"><script>'},
        {"brandColor": "red"},
        {"surveyReasons": [{"code": "Bad Code", "label": "x"}]},
        {"surveyReasons": [{"code": "custom_without_label"}]},
        {"surveyReasons": [{"code": "other"}, {"code": "other"}]},
        {"brandName": "x" * 500},
    ):
        answer = (await graphql(client, UPDATE, {"input": bad}, headers=tenant.headers))["data"]["updateWidgetSettings"]
        assert answer["__typename"] == "UserError", bad
        assert answer["code"] == "BAD_USER_INPUT" and answer["message"]
    final = (await graphql(client, READ, headers=tenant.headers))["data"]["widgetSettings"]
    assert final["allowedOrigins"] == settings["allowedOrigins"] and final["brandColor"] == "#aa3300"


async def test_the_widget_secret_is_returned_once_and_stored_sealed(client, db, tenant) -> None:
    rotated = (await graphql(client, ROTATE, headers=tenant.headers))["data"]["rotateWidgetSecret"]
    secret = rotated["secret"]
    assert secret.startswith("ws_") and len(secret) > 40
    read = (await graphql(client, READ, headers=tenant.headers))["data"]["widgetSettings"]
    assert read["widgetSecretSet"] is True
    async with db.tenant_session(tenant.id) as session:
        row = (
            await session.execute(select(EmbedSettingsRow).where(EmbedSettingsRow.tenant_id == tenant.id))
        ).scalar_one()
    assert row.widget_secret_sealed is not None and secret.encode() not in row.widget_secret_sealed
    again = (await graphql(client, ROTATE, headers=tenant.headers))["data"]["rotateWidgetSecret"]["secret"]
    assert again != secret


async def test_a_read_only_key_reads_but_cannot_change_or_rotate(client, db, tenant) -> None:
    reader = {"Authorization": f"Bearer {await create_api_key_for(db, tenant.id, scopes=['read'])}"}
    assert (await graphql(client, READ, headers=reader))["data"]["publishableKey"].startswith("pk_")
    for document, variables in ((UPDATE, {"input": {"brandName": "x"}}), (ROTATE, None)):
        answer = await graphql(client, document, variables, headers=reader)
        assert answer["data"] is None
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_each_tenant_has_its_own_key_and_settings(client, tenant, other_tenant) -> None:
    await graphql(client, UPDATE, {"input": {"allowedOrigins": ["https://ours.example.com"]}}, headers=tenant.headers)
    ours = (await graphql(client, READ, headers=tenant.headers))["data"]
    theirs = (await graphql(client, READ, headers=other_tenant.headers))["data"]
    assert ours["publishableKey"] != theirs["publishableKey"]
    assert theirs["widgetSettings"]["allowedOrigins"] == []


def test_origins_are_normalized_as_browsers_send_them() -> None:
    assert normalized_origin("HTTPS://Shop.Example.COM") == "https://shop.example.com"
    assert normalized_origin("http://localhost:8080/") == "http://localhost:8080"
    assert normalized_origin("http://example.com:80") == "http://example.com"
    assert normalized_origin("http://[::1]:3000") == "http://[::1]:3000"
    for bad in ("", "null", "ftp://x.example", "https://user@x.example", "https://x.example?q", "https://x:99999"):
        assert normalized_origin(bad) is None, bad
