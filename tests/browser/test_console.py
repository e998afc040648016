"""The GraphiQL console in a real browser: it renders from our own assets and runs a query offline."""

from urllib.parse import urlsplit

from playwright.async_api import expect


async def test_the_console_runs_a_query_with_a_pasted_key_without_leaving_the_machine(
    base_url, browser, tenant, repo_root
):
    page = await browser.new_page(viewport={"width": 1400, "height": 800})
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.goto(f"{base_url}/graphql")
    headers_editor = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)")
    await expect(headers_editor).to_contain_text('"Authorization": "Bearer "')

    # Paste the key where a merchant would: inside the prefilled value, right after "Bearer ".
    await headers_editor.locator(".CodeMirror-lines").click()
    for key in ("Control+Home", "ArrowDown", "End", "ArrowLeft"):
        await page.keyboard.press(key)
    await page.keyboard.insert_text(tenant.api_key)
    await expect(headers_editor).to_contain_text(f'"Bearer {tenant.api_key}"')

    await page.locator(".graphiql-query-editor .CodeMirror-lines").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text("{ viewer { tenant { slug } } }")
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()

    await expect(page.locator(".result-window")).to_contain_text(f'"slug": "{tenant.tenant.slug}"')
    screenshots = repo_root / "var" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=screenshots / "console.png")
    here = urlsplit(base_url).netloc
    assert [url for url in requested if urlsplit(url).netloc != here] == []
    assert errors == []
