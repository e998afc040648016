"""The widget API's door: `POST /widgets/v1/session` answers only a call with the tenant's
publishable key, a signature of the customer's id by the tenant's widget secret, and an origin
the tenant allows; CORS is granted to allowed origins only; a signed customer sees the in-app
messages of their open cases, in their language, with the tenant's branding and survey."""

import httpx

from churnsaver.backend.app import create_app
from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.embeds import service
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.channels import schedule
from tests.fixtures.embeds import FOREIGN, MERCHANT, create_embedding

SESSION = "/widgets/v1/session"


async def test_a_signed_customer_gets_the_in_app_messages_of_open_cases_branded_and_localized(
    settings, db, tenant, widget_client
) -> None:
    embedding = await create_embedding(
        db, settings.resolved_secret_key, tenant.id, MERCHANT, brand_name="Acme Fitness", brand_color="#0E9F6E"
    )
    case = await open_payment_failed_case(db, tenant.id, "user_widget_1")
    outcome = await schedule(
        db, tenant.id, case.customer_id, case_id=case.id, channel="in_app", variables={"amount_due": "€19.00"}
    )
    await deliver(db, settings, tenant.id, outcome.message_id)

    response = await widget_client.post(
        SESSION, json=embedding.body("user_widget_1", locale="de-DE"), headers=embedding.headers()
    )

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == MERCHANT
    body = response.json()
    assert body["customer"] == {"known": True, "caseId": str(case.id)}
    assert body["locale"] == "de"
    assert body["brand"] == {"name": "Acme Fitness", "logoUrl": None, "color": "#0e9f6e"}
    [message] = body["messages"]
    assert "your payment of €19.00 failed" in message["text"]  # rendered in the language it was sent in
    reasons = body["survey"]["reasons"]
    assert reasons[0] == {"code": "too_expensive", "label": "Es ist zu teuer"}
    assert body["cancelHandling"] == "billing"


async def test_an_unknown_customer_with_a_good_signature_gets_an_empty_session(
    settings, db, tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    response = await widget_client.post(SESSION, json=embedding.body("not_yet_seen"), headers=embedding.headers())
    assert response.status_code == 200, response.text
    assert response.json()["customer"] == {"known": False, "caseId": None}
    assert response.json()["messages"] == []


async def test_a_forged_signature_or_another_customers_signature_is_refused(
    settings, db, tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    await open_payment_failed_case(db, tenant.id, "user_victim")
    forged = {"customer": "user_victim", "signature": "0" * 64}
    borrowed = {"customer": "user_victim", "signature": embedding.sign("user_attacker")}
    for body in (forged, borrowed):
        response = await widget_client.post(SESSION, json=body, headers=embedding.headers())
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "the signature does not match this customer"
        assert "messages" not in response.json()


async def test_a_rotated_secret_stops_the_old_signatures(settings, db, tenant, widget_client) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await service.rotate_widget_secret(
            session, AuthSubject.system(tenant.id), secret_key=settings.resolved_secret_key
        )
    response = await widget_client.post(SESSION, json=embedding.body("cus_1"), headers=embedding.headers())
    assert response.status_code == 401


async def test_a_foreign_origin_is_refused_and_may_not_read_the_answer(settings, db, tenant, widget_client) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    response = await widget_client.post(SESSION, json=embedding.body("cus_1"), headers=embedding.headers(FOREIGN))
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers

    no_origin = {"X-Churnsaver-Key": embedding.publishable_key}
    response = await widget_client.post(SESSION, json=embedding.body("cus_1"), headers=no_origin)
    assert response.status_code == 403


async def test_an_origin_another_tenant_allows_is_still_foreign_to_this_tenant(
    settings, db, tenant, other_tenant, widget_client
) -> None:
    ours = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    await create_embedding(db, settings.resolved_secret_key, other_tenant.id, "https://other-shop.example.org")
    response = await widget_client.post(
        SESSION, json=ours.body("cus_1"), headers=ours.headers("https://other-shop.example.org")
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_is_answered_for_allowed_origins_only(settings, db, tenant, widget_client) -> None:
    await create_embedding(db, settings.resolved_secret_key, tenant.id, "https://preflight.example.com")
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-churnsaver-key"}
    allowed = await widget_client.options(SESSION, headers=ask | {"Origin": "https://preflight.example.com"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://preflight.example.com"
    assert "X-Churnsaver-Key" in allowed.headers["access-control-allow-headers"]

    foreign = await widget_client.options(SESSION, headers=ask | {"Origin": FOREIGN})
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers


async def test_a_missing_or_unknown_key_and_bad_bodies_are_4xx_with_a_reason(
    settings, db, tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    cases = [
        ({"Origin": MERCHANT}, embedding.body("cus_1"), 401),
        ({"Origin": MERCHANT, "X-Churnsaver-Key": "pk_nope"}, embedding.body("cus_1"), 401),
        ({"Origin": MERCHANT, "X-Churnsaver-Key": "cs_an_api_key"}, embedding.body("cus_1"), 401),
        (embedding.headers(), ["not", "an", "object"], 400),
        (embedding.headers(), {"customer": 42, "signature": embedding.sign("42")}, 400),
        (embedding.headers(), {"customer": "x" * 300, "signature": "0" * 64}, 400),
        (embedding.headers(), {"customer": "cus_1", "signature": "short"}, 401),
        (embedding.headers(), {"customer": "cus_1"}, 401),
    ]
    for headers, body, status in cases:
        response = await widget_client.post(SESSION, json=body, headers=headers)
        assert response.status_code == status, (headers, body, response.text)
        assert response.json()["error"]["message"]
    garbage = await widget_client.post(SESSION, content=b"\xff{", headers=embedding.headers())
    assert garbage.status_code == 400


async def test_a_tenant_without_a_widget_secret_refuses_every_call(settings, db, tenant, widget_client) -> None:
    async with db.tenant_unit_of_work(tenant.id) as session:
        subject = AuthSubject.system(tenant.id)
        await service.update_widget_settings(session, subject, allowed_origins=[MERCHANT])
        key = await service.publishable_key(session, subject)
    headers = {"X-Churnsaver-Key": key, "Origin": MERCHANT}
    response = await widget_client.post(SESSION, json={"customer": "c", "signature": "0" * 64}, headers=headers)
    assert response.status_code == 401
    assert "rotate" in response.json()["error"]["message"]


async def test_calls_are_limited_per_customer_and_per_address(settings, db, tenant) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    limited = settings.model_copy(update={"widget_limit_per_customer": "3/minute", "widget_limit_per_ip": "5/minute"})
    application = create_app(limited, run_jobs=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            statuses = [
                (await http.post(SESSION, json=embedding.body("cus_a"), headers=embedding.headers())).status_code
                for _ in range(4)
            ]
            assert statuses == [200, 200, 200, 429]
            other = await http.post(SESSION, json=embedding.body("cus_b"), headers=embedding.headers())
            assert other.status_code == 200  # another customer has counts of their own
            by_address = await http.post(SESSION, json=embedding.body("cus_c"), headers=embedding.headers())
            assert by_address.status_code == 429  # the sixth call from this address
            assert int(by_address.headers["retry-after"]) >= 1


async def test_the_widget_script_is_served_for_any_page_to_load(widget_client) -> None:
    response = await widget_client.get("/widgets/v1/churnsaver.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.text.startswith("/* Churn Saver widget v1")
