"""Offers through the widget API: the cancel flow's session answers offers chosen by the survey
reason; accepting runs billing once (the sandbox) and the case recovers; a replayed accept, an
accept for another customer, another tenant's offer, or a held-out customer is refused; the
cancel confirms through billing or is handed back to the merchant."""

import uuid

from churnsaver.backend.cases.models import CaseEventType
from churnsaver.backend.embeds.settings import CancelHandling
from tests.fixtures.cases import stored_case_events
from tests.fixtures.embeds import MERCHANT, create_embedding
from tests.fixtures.offers import billing_calls, cancellation_case, case_now, default_offer, redemptions

SESSION = "/widgets/v1/session"


def accept_path(offer_id) -> str:
    return f"/widgets/v1/offers/{offer_id}/accept"


async def test_the_cancel_flow_offers_by_reason_and_an_accept_recovers_the_case_once(
    settings, db, tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    case = await cancellation_case(db, tenant.id, "user_wo1", total=40.0)
    plain = await widget_client.post(SESSION, json=embedding.body("user_wo1"), headers=embedding.headers())
    assert [offer["kind"] for offer in plain.json()["offers"]] == ["UNCANCEL", "PERCENT_OFF"]
    shown = [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]
    assert shown == []  # a page view shows no offer: nothing is recorded as shown

    flow = await widget_client.post(
        SESSION, json=embedding.body("user_wo1", cancelReason="too_expensive", locale="es"), headers=embedding.headers()
    )
    assert flow.status_code == 200, flow.text
    offers = flow.json()["offers"]
    assert offers[0]["title"] and offers[0]["description"]
    assert any(offer["title"] == "30% de descuento" for offer in offers)
    shown = [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]
    assert {e.data["surface"] for e in shown} == {"widget"} and len(shown) == len(offers)

    uncancel = next(offer for offer in offers if offer["kind"] == "UNCANCEL")
    assert flow.json()["customer"]["caseId"] == str(case.id)
    body = embedding.body("user_wo1", attempt=str(uuid.uuid4()), reason="too_expensive", caseId=str(case.id))
    accepted = await widget_client.post(accept_path(uncancel["id"]), json=body, headers=embedding.headers())
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["access-control-allow-origin"] == MERCHANT
    assert accepted.json()["redemption"]["status"] == "APPLIED"

    replayed = await widget_client.post(accept_path(uncancel["id"]), json=body, headers=embedding.headers())
    assert replayed.status_code == 409
    assert replayed.json()["error"]["code"] == "ALREADY_ACCEPTED"
    assert replayed.json()["redemption"]["id"] == accepted.json()["redemption"]["id"]
    again = embedding.body("user_wo1", attempt=str(uuid.uuid4()))
    second_click = await widget_client.post(accept_path(uncancel["id"]), json=again, headers=embedding.headers())
    assert second_click.status_code == 409  # a new click after it worked: the case recovered, nothing to undo
    assert second_click.json()["error"]["code"] == "NOT_ELIGIBLE"

    [redemption] = await redemptions(db, tenant.id)
    assert (redemption.source, redemption.status) == ("widget", "APPLIED")
    assert len(await billing_calls(db, tenant.id)) == 1
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"


async def test_an_accept_for_another_customer_or_tenant_or_with_bad_input_is_refused(
    settings, db, tenant, other_tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    victims_case = await cancellation_case(db, tenant.id, "user_wo_victim")
    await cancellation_case(db, tenant.id, "user_wo_attacker")
    theirs = await default_offer(db, other_tenant.id, "uncancel")
    ours = await default_offer(db, tenant.id, "uncancel")
    attempt = str(uuid.uuid4())

    as_victim = {"customer": "user_wo_victim", "signature": embedding.sign("user_wo_attacker"), "attempt": attempt}
    refused = await widget_client.post(accept_path(ours.id), json=as_victim, headers=embedding.headers())
    assert refused.status_code == 401

    foreign_offer = embedding.body("user_wo_attacker", attempt=attempt)
    missing = await widget_client.post(accept_path(theirs.id), json=foreign_offer, headers=embedding.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    for path, body, status in (
        (accept_path("not-a-uuid"), embedding.body("user_wo_attacker", attempt=attempt), 404),
        (accept_path(ours.id), embedding.body("user_wo_attacker"), 400),
        (accept_path(ours.id), embedding.body("user_wo_attacker", attempt="1"), 400),
        (accept_path(ours.id), embedding.body("user_wo_attacker", attempt=attempt, reason="bogus"), 400),
        (accept_path(ours.id), embedding.body("nobody_known", attempt=attempt), 404),
        # The attacker's own signature, naming the victim's case: not one of the attacker's cases.
        (accept_path(ours.id), embedding.body("user_wo_attacker", attempt=attempt, caseId=str(victims_case.id)), 404),
        (accept_path(ours.id), embedding.body("user_wo_attacker", attempt=attempt, caseId=7), 404),
    ):
        response = await widget_client.post(path, json=body, headers=embedding.headers())
        assert response.status_code == status, (path, body, response.text)
    assert await redemptions(db, tenant.id) == []
    assert await billing_calls(db, tenant.id) == []


async def test_confirming_the_cancel_goes_through_billing_or_back_to_the_merchant(
    settings, db, tenant, other_tenant, widget_client
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, MERCHANT)
    await cancellation_case(db, tenant.id, "user_wo_cancel")
    body = embedding.body("user_wo_cancel", reason="not_using", comment="Too busy")
    through_billing = await widget_client.post("/widgets/v1/cancel", json=body, headers=embedding.headers())
    assert through_billing.status_code == 200, through_billing.text
    assert through_billing.json() == {"handledBy": "billing"}
    [call] = await billing_calls(db, tenant.id)
    assert call.action.lower() == "cancel"

    handed_back = await create_embedding(
        db, settings.resolved_secret_key, other_tenant.id, MERCHANT, cancel_handling=CancelHandling.merchant_event
    )
    back = await widget_client.post(
        "/widgets/v1/cancel", json=handed_back.body("anyone", reason="other"), headers=handed_back.headers()
    )
    assert back.json() == {"handledBy": "merchant"}
    assert await billing_calls(db, other_tenant.id) == []

    for bad in (
        embedding.body("user_wo_cancel", reason="not_a_survey_code"),
        embedding.body("user_wo_cancel"),
        embedding.body("user_wo_cancel", reason="other", comment="x" * 1001),
    ):
        response = await widget_client.post("/widgets/v1/cancel", json=bad, headers=embedding.headers())
        assert response.status_code == 400
    assert len(await billing_calls(db, tenant.id)) == 1
