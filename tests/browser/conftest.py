"""What every browser test uses: Debian's Chromium, headless, and the app served for real."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.fixtures.databases import skip_or_fail
from tests.fixtures.merchant import merchant_site
from tests.fixtures.server import running_server

__all__ = ["merchant_site"]

CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: no sandbox (tests may run as root), no GPU, none of Chromium's own traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def base_url(settings) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        skip_or_fail(f"browser tests need Debian's chromium at {CHROMIUM} (`make test` installs it when run as root)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
