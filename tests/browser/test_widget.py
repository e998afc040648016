"""The widget on a merchant's page, in a real Chromium: the page is served from one origin
(http://localhost:PORT) and loads the widget from the app on another (http://127.0.0.1:PORT).
It shows the in-app messages of the customer's open cases, walks the cancel flow with the
keyboard, and refuses to act for a forged signature, another customer or a foreign site.
Screenshots are saved under var/screenshots/."""

from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.embeds.settings import CancelHandling
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.channels import schedule
from tests.fixtures.embeds import create_embedding
from tests.fixtures.merchant import MerchantSite
from tests.fixtures.offers import billing_calls, cancellation_case, case_now, redemptions

VIEWPORT = {"width": 1100, "height": 760}


def screenshot_path(repo_root: Path, settings, name: str) -> str:
    folder = repo_root / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    backend = "postgres" if settings.database_url else "sqlite"
    return str(folder / f"widget-{name}-{backend}.png")


def watch(page: Page) -> tuple[list[str], list[str]]:
    """Every URL the page requests, and every error it logs."""
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return requested, errors


async def test_the_widget_shows_messages_and_hands_a_cancel_back_to_the_merchant(
    settings, db, tenant, base_url, browser, merchant_site: MerchantSite, repo_root
) -> None:
    embedding = await create_embedding(
        db,
        settings.resolved_secret_key,
        tenant.id,
        merchant_site.url,
        brand_name="Acme Fitness",
        brand_color="#7a2e0e",
        cancel_handling=CancelHandling.merchant_event,
    )
    case = await open_payment_failed_case(db, tenant.id, "user_browser_1")
    outcome = await schedule(
        db, tenant.id, case.customer_id, case_id=case.id, channel="in_app", variables={"amount_due": "$40.00"}
    )
    await deliver(db, settings.model_copy(update={"public_url": base_url}), tenant.id, outcome.message_id)
    url = merchant_site.add_page(
        "/account",
        app=base_url,
        key=embedding.publishable_key,
        customer="user_browser_1",
        signature=embedding.sign("user_browser_1"),
    )
    page = await browser.new_page(viewport=VIEWPORT)
    requested, errors = watch(page)

    await page.goto(url)
    card = page.get_by_role("region", name="Messages from Acme Fitness")
    await expect(card).to_contain_text("your payment of $40.00 failed")
    href = await card.get_by_role("link", name="Open link").get_attribute("href")
    assert href is not None and href.startswith(f"{base_url}/l/")
    await page.screenshot(path=screenshot_path(repo_root, settings, "messages"))

    await page.get_by_role("button", name="Cancel my subscription").click()
    dialog = page.get_by_role("dialog", name="Why are you canceling?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("radio", name="It's too expensive")).to_be_focused()
    await page.screenshot(path=screenshot_path(repo_root, settings, "survey"))

    # Escape closes the dialog, gives the focus back, and tells the page.
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("button", name="Cancel my subscription")).to_be_focused()
    await expect(page.locator("#events")).to_contain_text("churnsaver:closed")

    # Tab never leaves the dialog.
    await page.get_by_role("button", name="Cancel my subscription").click()
    for _ in range(15):
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.tagName") == "CHURNSAVER-WIDGET"
    await dialog.get_by_role("button", name="Continue").click()
    await expect(dialog.get_by_role("alert")).to_have_text("Choose a reason to continue.")
    await dialog.get_by_role("radio", name="I don't use it enough").check()
    await dialog.get_by_role("textbox", name="Anything else? (optional)").fill("Busy season")
    await dialog.get_by_role("button", name="Continue").click()
    offer = page.get_by_role("dialog", name="Before you go")
    await expect(offer).to_contain_text("Update")  # the failed payment's card update leads
    await offer.get_by_role("button", name="No thanks, cancel").click()
    confirm = page.get_by_role("dialog", name="Cancel your subscription?")
    await expect(confirm).to_be_visible()
    await confirm.get_by_role("button", name="Cancel subscription").click()
    await expect(confirm).to_be_hidden()
    await expect(page.locator("#events")).to_contain_text(
        'churnsaver:canceled {"reason":"not_using","comment":"Busy season","handledBy":"merchant"}'
    )

    # Dismissed, the card stays away for the rest of the browser session.
    await card.get_by_role("button", name="Dismiss").click()
    await expect(card).to_have_count(0)
    await page.reload()
    await page.evaluate("window.ChurnSaver.ready")
    await expect(page.get_by_role("region", name="Messages from Acme Fitness")).to_have_count(0)

    app_host, merchant_host = urlsplit(base_url).netloc, urlsplit(merchant_site.url).netloc
    assert {urlsplit(u).netloc for u in requested} <= {app_host, merchant_host}
    assert errors == []


async def test_the_widget_shows_nothing_for_a_forged_signature_another_customer_or_a_foreign_site(
    settings, db, tenant, base_url, browser, merchant_site: MerchantSite, repo_root
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, merchant_site.url)
    case = await open_payment_failed_case(db, tenant.id, "user_browser_victim")
    outcome = await schedule(db, tenant.id, case.customer_id, case_id=case.id, channel="in_app")
    await deliver(db, settings, tenant.id, outcome.message_id)
    victim = "user_browser_victim"
    pages = {
        "/forged": merchant_site.add_page(
            "/forged", app=base_url, key=embedding.publishable_key, customer=victim, signature="0" * 64
        ),
        "/other-customer": merchant_site.add_page(
            "/other-customer",
            app=base_url,
            key=embedding.publishable_key,
            customer=victim,
            signature=embedding.sign("user_browser_attacker"),
        ),
    }
    # The same site on another origin (127.0.0.1 rather than localhost): no tenant allows it.
    pages["/foreign"] = merchant_site.add_page(
        "/foreign", app=base_url, key=embedding.publishable_key, customer=victim, signature=embedding.sign(victim)
    ).replace("localhost", "127.0.0.1")

    for name, url in pages.items():
        page = await browser.new_page(viewport=VIEWPORT)
        answers: list[int] = []
        page.on("response", lambda r, answers=answers: answers.append(r.status) if "/session" in r.url else None)
        await page.goto(url)
        await page.evaluate("window.ChurnSaver.ready")
        await expect(page.get_by_role("region")).to_have_count(0)
        await page.get_by_role("button", name="Cancel my subscription").click()
        await expect(page.locator("#events")).to_contain_text("churnsaver:closed")
        await expect(page.get_by_role("dialog")).to_have_count(0)
        if name == "/foreign":
            assert answers == []  # the preflight was refused: the browser never sent the call
            await expect(page.locator("#events")).to_contain_text("the service cannot be reached")
            await page.screenshot(path=screenshot_path(repo_root, settings, "foreign-origin"))
        else:
            assert answers == [401], name
            await expect(page.locator("#events")).to_contain_text("the signature does not match this customer")
        await page.close()


async def test_the_cancel_flow_accepts_an_offer_once_and_a_replay_is_refused(
    settings, db, tenant, base_url, browser, merchant_site: MerchantSite, repo_root
) -> None:
    embedding = await create_embedding(
        db, settings.resolved_secret_key, tenant.id, merchant_site.url, brand_name="Acme Fitness", brand_color="#7a2e0e"
    )
    case = await cancellation_case(db, tenant.id, "user_browser_accept", total=40.0)
    url = merchant_site.add_page(
        "/account-accept",
        app=base_url,
        key=embedding.publishable_key,
        customer="user_browser_accept",
        signature=embedding.sign("user_browser_accept"),
    )
    page = await browser.new_page(viewport=VIEWPORT)
    requested, errors = watch(page)
    accepts: list[str] = []
    page.on(
        "request",
        lambda r: accepts.append(r.post_data or "") if r.url.endswith("/accept") and r.method == "POST" else None,
    )

    await page.goto(url)
    await page.evaluate("window.ChurnSaver.ready")
    await page.get_by_role("button", name="Cancel my subscription").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("radio", name="It's too expensive").check()
    await dialog.get_by_role("button", name="Continue").click()
    await expect(dialog.get_by_role("heading", name="Before you go")).to_be_visible()
    await expect(dialog.locator(".offer strong")).not_to_be_empty()
    offer_title = await dialog.locator(".offer strong").inner_text()
    await page.screenshot(path=screenshot_path(repo_root, settings, "offer"))
    await dialog.get_by_role("button", name="Accept offer").click()
    await expect(dialog.get_by_role("heading", name="Done: your offer is applied")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "accepted"))
    await expect(page.locator("#events")).to_contain_text('churnsaver:offer-accepted {"offerId"')
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await expect(page.get_by_role("dialog")).to_have_count(0)

    [redemption] = await redemptions(db, tenant.id)
    assert (redemption.source, redemption.status) == ("widget", "APPLIED")
    assert len(await billing_calls(db, tenant.id)) == 1
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"
    assert offer_title
    assert errors == []

    # The same accept sent again from the page (a replay) is refused, and nothing is charged twice.
    [sent] = accepts
    replay = await page.evaluate(
        """async ([url, key, body]) => {
            const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json",
              "X-Churnsaver-Key": key}, body});
            return [response.status, (await response.json()).error.code];
        }""",
        [f"{base_url}/widgets/v1/offers/{redemption.offer_id}/accept", embedding.publishable_key, sent],
    )
    assert replay == [409, "ALREADY_ACCEPTED"]
    assert len(await billing_calls(db, tenant.id)) == 1
    app_host, merchant_host = urlsplit(base_url).netloc, urlsplit(merchant_site.url).netloc
    assert {urlsplit(u).netloc for u in requested} <= {app_host, merchant_host}


async def test_the_widget_speaks_the_pages_language(
    settings, db, tenant, base_url, browser, merchant_site: MerchantSite, repo_root
) -> None:
    embedding = await create_embedding(db, settings.resolved_secret_key, tenant.id, merchant_site.url)
    url = merchant_site.add_page(
        "/konto", app=base_url, key=embedding.publishable_key, customer="kunde_1", signature=embedding.sign("kunde_1")
    )
    context = await browser.new_context(locale="de-DE", viewport=VIEWPORT)
    page = await context.new_page()
    await page.goto(url)
    await page.evaluate("window.ChurnSaver.ready")
    await page.get_by_role("button", name="Cancel my subscription").click()
    dialog = page.get_by_role("dialog", name="Warum möchten Sie kündigen?")
    await expect(dialog.get_by_role("radio", name="Es ist zu teuer")).to_be_visible()
    await expect(dialog.get_by_role("button", name="Abo behalten")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "survey-de"))
    await context.close()
