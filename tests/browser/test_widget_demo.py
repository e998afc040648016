"""The demo's widget page (`/dev/widget-demo`, printed by `make run`) in a real Chromium: the demo
tenant seeded as `serve` seeds it, its widget allowed where the app listens, a demo customer's
account page with the widget, whose cancel flow opens and offers something. Screenshot under
var/screenshots/."""

import asyncio

from playwright.async_api import expect

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.demo import seed_demo_tenant
from churnsaver.backend.migrate import migrate
from tests.fixtures.server import running_server


async def test_the_demo_page_embeds_the_widget_for_a_demo_customer(tmp_path, browser, repo_root) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    with running_server(settings) as url:
        db = Database(settings.model_copy(update={"public_url": url}))
        try:
            await seed_demo_tenant(db, db.settings)
        finally:
            await db.dispose()
        page = await browser.new_page(viewport={"width": 1100, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{url}/dev/widget-demo")
        await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        await page.evaluate("window.ChurnSaver.ready")
        await page.get_by_role("button", name="Cancel my subscription").click()
        dialog = page.get_by_role("dialog", name="Why are you canceling?")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("radio", name="It's too expensive").check()
        await dialog.get_by_role("button", name="Continue").click()
        await expect(page.get_by_role("dialog").get_by_role("heading", level=2)).to_have_text(
            ["Before you go"], timeout=10_000
        )
        await page.screenshot(path=str(repo_root / "var" / "screenshots" / "widget-demo.png"))
        assert errors == []
