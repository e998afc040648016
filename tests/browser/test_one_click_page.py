"""The one-click offer page in a real Chromium, with JavaScript off as a plain mail client's
browser might have it: the offer in the merchant's branding, accepted with the keyboard alone,
the confirmation, and the clear page of a link already used. Nothing is requested from any other
host. Screenshots are saved under var/screenshots/."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import expect

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.offers.links import offer_token
from tests.fixtures.embeds import MERCHANT, create_embedding
from tests.fixtures.offers import billing_calls, cancellation_case, case_now, default_offer


def screenshot_path(repo_root: Path, settings, name: str) -> str:
    folder = repo_root / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    backend = "postgres" if settings.database_url else "sqlite"
    return str(folder / f"one-click-{name}-{backend}.png")


async def test_a_customer_accepts_an_offer_with_one_keyboard_press_and_no_javascript(
    settings, db, tenant, base_url, browser, repo_root
) -> None:
    await create_embedding(
        db, settings.resolved_secret_key, tenant.id, MERCHANT, brand_name="Acme Fitness", brand_color="#0e7490"
    )
    case = await cancellation_case(db, tenant.id, "user_oc_browser")
    offer = await default_offer(db, tenant.id, "uncancel")
    token = offer_token(
        settings,
        tenant_id=tenant.id,
        customer_id=case.customer_id,
        case_id=case.id,
        offer_id=offer.id,
        expires_at=utcnow() + timedelta(days=3),
    )
    context = await browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 640})
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    await page.goto(f"{base_url}/o/{token}")
    await expect(page.get_by_role("heading", name="An offer for you")).to_be_visible()
    await expect(page.get_by_text("Acme Fitness")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "offer"))
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Accept offer")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Done: your offer is applied")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "applied"))
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"

    await page.goto(f"{base_url}/o/{token}")
    await expect(page.get_by_role("heading", name="This offer was already accepted")).to_be_visible()
    await page.goto(f"{base_url}/o/{token[:-6]}abcdef")
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "unusable"))
    assert len(await billing_calls(db, tenant.id)) == 1
    assert {urlsplit(url).netloc for url in requested} == {urlsplit(base_url).netloc}
    await context.close()
