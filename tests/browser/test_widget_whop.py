"""The widget's cancel flow against Whop, end to end in a real Chromium: the merchant page (one
origin) embeds the widget from the app (another origin), whose billing is a local server speaking
Whop's API. Accepting the offer makes exactly one change on Whop; the case is RECOVERED once
Whop's webhook confirms. An offer Whop refuses shows Whop's reason, and nothing is accepted.
Screenshots are saved under var/screenshots/."""

from pathlib import Path

from playwright.async_api import expect

from churnsaver.backend.core.db import Database, utcnow
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile
from tests.fixtures.embeds import create_embedding
from tests.fixtures.merchant import MerchantSite
from tests.fixtures.offers import cancellation_case, case_now, connect, redemptions
from tests.fixtures.providers import WhopServer, whop_api
from tests.fixtures.server import running_server

__all__ = ["whop_api"]
KEY = "whop_key_for_the_widget_test"


def screenshot_path(repo_root: Path, settings, name: str) -> str:
    folder = repo_root / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    backend = "postgres" if settings.database_url else "sqlite"
    return str(folder / f"widget-whop-{name}-{backend}.png")


async def open_cancel_flow(page, url: str, reason: str):
    await page.goto(url)
    await page.evaluate("window.ChurnSaver.ready")
    await page.get_by_role("button", name="Cancel my subscription").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("radio", name=reason).check()
    await dialog.get_by_role("button", name="Continue").click()
    await expect(dialog.get_by_role("heading", name="Before you go")).to_be_visible()
    return dialog


async def test_accepting_in_the_widget_is_one_whop_change_and_the_webhook_recovers_the_case(
    settings, db, tenant, browser, merchant_site: MerchantSite, whop_api: WhopServer, repo_root
) -> None:
    whop_settings = settings.model_copy(update={"whop_api_url": whop_api.url})
    whop_api.api_keys.add(KEY)
    with running_server(whop_settings) as app_url:
        whop_db = Database(whop_settings)  # connecting checks the key against the Whop server
        try:
            await connect(whop_db, tenant.id, "WHOP", KEY)
        finally:
            await whop_db.dispose()
        embedding = await create_embedding(
            db, settings.resolved_secret_key, tenant.id, merchant_site.url, brand_name="Acme Trading"
        )
        case = await cancellation_case(db, tenant.id, "user_wbrowser")
        whop_api.add_membership("mem_user_wbrowser", cancel_at_period_end=True)
        refused_case = await cancellation_case(db, tenant.id, "user_wrefuse")
        whop_api.add_membership("mem_user_wrefuse", cancel_at_period_end=True)
        pages = {
            user: merchant_site.add_page(
                f"/whop-{user}",
                app=app_url,
                key=embedding.publishable_key,
                customer=user,
                signature=embedding.sign(user),
            )
            for user in ("user_wbrowser", "user_wrefuse")
        }
        page = await browser.new_page(viewport={"width": 1100, "height": 760})

        dialog = await open_cancel_flow(page, pages["user_wbrowser"], "Something else")
        await expect(dialog.locator(".offer strong")).to_have_text("Keep my subscription")
        await dialog.get_by_role("button", name="Accept offer").click()
        await expect(dialog.get_by_role("heading", name="Done: your offer is applied")).to_be_visible()
        await page.screenshot(path=screenshot_path(repo_root, settings, "accepted"))
        assert [(action, target) for action, target, _ in whop_api.applied] == [("update", "mem_user_wbrowser")]
        assert whop_api.memberships["mem_user_wbrowser"]["cancel_at_period_end"] is False
        assert (await case_now(db, tenant.id, case.id)).status == "open"  # accepted is not yet recovered
        await apply_and_reconcile(
            db,
            tenant.id,
            payloads.whop_membership_cancel_at_period_end_changed(
                user_id="user_wbrowser", membership_id="mem_user_wbrowser", at=utcnow(), cancel_at_period_end=False
            ),
        )
        assert (await case_now(db, tenant.id, case.id)).status == "recovered"

        refused = await browser.new_page(viewport={"width": 1100, "height": 760})
        dialog = await open_cancel_flow(refused, pages["user_wrefuse"], "It's too expensive")
        await expect(dialog.locator(".offer strong")).to_have_text("30% off")
        await dialog.get_by_role("button", name="Accept offer").click()
        await expect(dialog.get_by_role("alert")).to_contain_text("This membership cannot be changed")
        await expect(dialog.get_by_role("heading", name="Before you go")).to_be_visible()
        await refused.screenshot(path=screenshot_path(repo_root, settings, "refused"))
        statuses = {r.case_id: r.status for r in await redemptions(db, tenant.id)}
        assert statuses == {case.id: "APPLIED", refused_case.id: "FAILED"}
        assert (await case_now(db, tenant.id, refused_case.id)).status == "open"
        assert len([call for call in whop_api.applied if call[0] == "update"]) == 1
