"""/metrics is served to a caller with the metrics token or on an allowed network; with neither
configured, to loopback outside production and to no one in production."""

from pathlib import Path

import httpx

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from tests.fixtures.databases import test_settings as development_settings

TOKEN = "metrics-token-0123456789"


async def get_metrics(settings: Settings, address: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(settings, run_jobs=False), client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/metrics", headers=headers)


def production(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        env="production", secret_key="k" * 48, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db", **overrides
    )


async def test_unconfigured_metrics_are_served_to_loopback_only_outside_production(tmp_path):
    settings = development_settings(tmp_path)

    assert (await get_metrics(settings, "127.0.0.1")).status_code == 200
    assert (await get_metrics(settings, "::1")).status_code == 200
    refused = await get_metrics(settings, "203.0.113.5")
    assert refused.status_code == 403
    assert "CHURNSAVER_METRICS_TOKEN" in refused.json()["error"]["message"]


async def test_unconfigured_metrics_are_refused_in_production_even_on_loopback(tmp_path):
    response = await get_metrics(production(tmp_path), "127.0.0.1")

    assert response.status_code == 403
    assert "churnsaver_http_requests_total" not in response.text


async def test_metrics_need_the_token_when_one_is_configured(tmp_path):
    settings = production(tmp_path, metrics_token=TOKEN)

    missing = await get_metrics(settings, "203.0.113.5")
    wrong = await get_metrics(settings, "203.0.113.5", {"Authorization": "Bearer not-the-token"})
    loopback_without = await get_metrics(settings, "127.0.0.1")
    served = await get_metrics(settings, "203.0.113.5", {"Authorization": f"Bearer {TOKEN}"})

    assert [missing.status_code, wrong.status_code, loopback_without.status_code] == [401, 401, 401]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert served.status_code == 200
    assert "churnsaver_http_requests_total" in served.text


async def test_metrics_are_served_to_the_allowed_networks(tmp_path):
    settings = production(tmp_path, metrics_allow="10.0.0.0/8, 2001:db8::/32")

    assert (await get_metrics(settings, "10.20.30.40")).status_code == 200
    assert (await get_metrics(settings, "2001:db8::7")).status_code == 200
    assert (await get_metrics(settings, "192.0.2.1")).status_code == 403
    assert (await get_metrics(settings, "127.0.0.1")).status_code == 403
