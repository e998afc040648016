"""The channels pages a customer or a developer sees, in a real Chromium: the captured mailbox, the
unsubscribe page and its button, and the page of a link that cannot be used. Screenshots are saved
under var/screenshots/."""

import re
from pathlib import Path

from playwright.async_api import expect

from churnsaver.backend.channels import service
from churnsaver.backend.channels.delivery import deliver
from tests.fixtures.channels import schedule, stored_message
from tests.fixtures.factories import create_customer

UNSUBSCRIBE = re.compile(r"Unsubscribe: (\S+)")


def screenshot_path(repo_root: Path, settings, name: str) -> str:
    folder = repo_root / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    backend = "postgres" if settings.database_url else "sqlite"
    return str(folder / f"channels-{name}-{backend}.png")


async def test_a_customer_unsubscribes_from_a_captured_email_in_the_browser(
    settings, db, tenant, base_url, browser, repo_root
) -> None:
    customer = await create_customer(db, tenant.id, "cus_browser", email="maria@example.com", name="María")
    outcome = await schedule(db, tenant.id, customer.id, variables={"amount_due": "€19.00", "plan": "Plus"})
    await deliver(db, settings.model_copy(update={"public_url": base_url}), tenant.id, outcome.message_id)
    message = await stored_message(db, tenant.id, outcome.message_id)
    page = await browser.new_page(viewport={"width": 1100, "height": 800})

    await page.goto(f"{base_url}/dev/mailbox")
    await expect(page.get_by_role("heading", name="Captured mailbox")).to_be_visible()
    await expect(page.get_by_text("maria@example.com")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "mailbox"), full_page=True)
    await page.get_by_role("link", name="Your payment for Plus did not go through").click()
    frame = page.frame_locator("iframe")
    await expect(frame.get_by_text("Hi María, we could not charge €19.00 for Plus.")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "mailbox-message"), full_page=True)

    unsubscribe = UNSUBSCRIBE.search(message.body_text or "")
    assert unsubscribe is not None and unsubscribe.group(1).startswith(f"{base_url}/l/")
    await page.goto(unsubscribe.group(1))
    await expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "unsubscribe"))
    await page.get_by_role("button", name="Unsubscribe").click()
    await expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "unsubscribed"))
    async with db.tenant_session(tenant.id) as session:
        assert await service.opted_out(session, tenant.id, customer.id, "email")

    response = await page.goto(unsubscribe.group(1)[:-3] + "xyz")
    assert response is not None and response.status == 400
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await page.screenshot(path=screenshot_path(repo_root, settings, "link-error"))
