"""Templates: checked when saved (the line of an error), the tenant's own over the built-in, locale
fallback, the sandbox, previews with a sample customer; scopes and tenants."""

import pytest

from churnsaver.backend.channels import service
from churnsaver.backend.channels.default_templates import DEFAULTS, KEYS, LOCALES
from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.channels.templates import TemplateError, check
from churnsaver.backend.core.errors import InvalidInput, NotFound, PermissionDenied
from churnsaver.tenants.auth import AuthSubject, Scope
from tests.fixtures.channels import schedule, stored_message
from tests.fixtures.factories import create_customer, scoped_subject

PUBLIC = "https://retain.example.com"


def writer(tenant_id):
    return scoped_subject(tenant_id, Scope.read, Scope.write)


async def save(db, tenant_id, subject=None, **fields):
    values = {"key": "payment_failed_update_card", "channel": "email", "locale": "en"} | fields
    values.setdefault("subject_text", "Hello {{ customer_name }}")
    values.setdefault("body_text", "Pay {{ amount_due }} here: {{ update_payment_link }}")
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await service.update_template(session, subject or writer(tenant_id), **values)


def test_every_built_in_template_compiles_in_every_locale_and_channel() -> None:
    for key in KEYS:
        for channel in ("email", "sms", "in_app", "whop"):
            for locale in LOCALES:
                template = DEFAULTS[(key, channel, locale)]
                check(template.subject, "subject")
                check(template.body_text, "bodyText")
                check(template.body_html, "bodyHtml", html=True)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("Hello\n{{ customer_name }\nbye", 2, "unexpected '}'"),
        ("Hello\n\n{% if plan %}open", 3, "Unexpected end of template"),
        ("Hello {{ customer_name }}\nYour {{ password }}", 2, "unknown variable 'password'"),
    ],
)
async def test_a_bad_template_is_refused_with_its_line(db, tenant, body, line, message) -> None:
    with pytest.raises(TemplateError, match=message) as refused:
        await save(db, tenant.id, body_text=body)
    assert refused.value.line == line and refused.value.field == "bodyText"
    assert f"(line {line})" in str(refused.value)
    async with db.tenant_session(tenant.id) as session:
        [view] = await service.list_templates(
            session, writer(tenant.id), key="payment_failed_update_card", channel="email", locale="en"
        )
    assert not view.custom  # nothing was stored


async def test_a_saved_template_replaces_the_built_in_one_when_sending(settings, db, tenant) -> None:
    await save(db, tenant.id, subject_text="Card trouble, {{ customer_name }}", body_text="Owed: {{ amount_due }}")
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com", name="Ana")
    outcome = await schedule(db, tenant.id, customer.id, variables={"amount_due": "$5.00"})
    await deliver(db, settings, tenant.id, outcome.message_id)
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.subject, message.body_text, message.body_html) == ("Card trouble, Ana", "Owed: $5.00", None)


async def test_a_tenants_template_never_reaches_another_tenant(settings, db, tenant, other_tenant) -> None:
    await save(db, tenant.id, subject_text="Mine", body_text="Mine")
    customer = await create_customer(db, other_tenant.id, "cus_1", email="bo@example.com", name="Bo")
    outcome = await schedule(db, other_tenant.id, customer.id)
    await deliver(db, settings, other_tenant.id, outcome.message_id)
    assert (await stored_message(db, other_tenant.id, outcome.message_id)).subject != "Mine"
    async with db.tenant_session(other_tenant.id) as session:
        views = await service.list_templates(session, writer(other_tenant.id), key="payment_failed_update_card")
    assert not any(view.custom for view in views)


async def test_a_template_in_the_customers_language_wins_and_falls_back_by_language(settings, db, tenant) -> None:
    await save(db, tenant.id, locale="pt", subject_text="Olá {{ customer_name }}", body_text="Pague {{ amount_due }}")
    customer = await create_customer(
        db, tenant.id, "cus_1", email="a@example.com", name="Rui", traits={"locale": "pt-BR"}
    )
    outcome = await schedule(db, tenant.id, customer.id)
    await deliver(db, settings, tenant.id, outcome.message_id)
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.locale, message.subject) == ("pt", "Olá Rui")


async def test_the_sandbox_refuses_unsafe_attribute_access_as_a_user_error(db, tenant) -> None:
    draft = "{{ customer_name.__class__.__mro__ }}"
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(InvalidInput, match="unsafe"):
            await service.render_template(
                session,
                writer(tenant.id),
                key="winback",
                channel="sms",
                locale="en",
                public_url=PUBLIC,
                body_text=draft,
            )


async def test_render_template_previews_with_a_sample_customer(db, tenant) -> None:
    async with db.tenant_session(tenant.id) as session:
        preview = await service.render_template(
            session,
            writer(tenant.id),
            key="payment_failed_update_card",
            channel="email",
            locale="es",
            public_url=PUBLIC,
        )
    assert preview.subject == "Tu pago de Pro no se completó"
    assert preview.body_text.startswith("Hola Alex Sample, no pudimos cobrar $29.00 por Pro.")
    assert f'href="{PUBLIC}/l/preview"' in preview.body_html


async def test_an_unknown_template_or_bad_ids_are_user_errors(db, tenant) -> None:
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(NotFound):
            await service.render_template(
                session, writer(tenant.id), key="nope", channel="email", locale="en", public_url=PUBLIC
            )
    for fields, error in (
        ({"key": "Bad Key!"}, "template key"),
        ({"channel": "fax"}, "unknown channel"),
        ({"locale": "english"}, "locale"),
        ({"subject_text": ""}, "needs a subject"),
        ({"body_text": "  "}, "needs a body"),
    ):
        with pytest.raises(InvalidInput, match=error):
            await save(db, tenant.id, **fields)


async def test_a_read_only_key_reads_templates_but_cannot_change_them(db, tenant) -> None:
    reader: AuthSubject = scoped_subject(tenant.id, Scope.read)
    with pytest.raises(PermissionDenied):
        await save(db, tenant.id, subject=reader)
    async with db.tenant_session(tenant.id) as session:
        assert len(await service.list_templates(session, reader, channel="sms", locale="de")) == len(KEYS)


async def test_a_template_cannot_keep_a_worker_busy(db, tenant) -> None:
    with pytest.raises(TemplateError, match="loops nest at most 2 deep") as refused:
        await save(
            db,
            tenant.id,
            body_text="a\n{% for a in plan %}{% for b in plan %}\n{% for c in plan %}x\n"
            "{% endfor %}{% endfor %}{% endfor %}",
        )
    assert refused.value.line == 3  # the innermost loop's
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(InvalidInput, match="range"):
            await service.render_template(
                session,
                writer(tenant.id),
                key="winback",
                channel="sms",
                locale="en",
                public_url=PUBLIC,
                body_text="{% for i in range(1000000) %}x{% endfor %}",
            )
