"""The `churnsaver` command line, run as a real subprocess against the test database."""

import json
import os
import subprocess
import sys

import pytest

from churnsaver.backend.core.config import Settings


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    # `model train` fits CatBoost's default 1000 trees on an imported table: a minute or more on a busy 2-core machine.
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(settings.data_dir), "CHURNSAVER_ENV": "test"}
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "churnsaver.backend.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def slug(request) -> str:
    return f"cli-{os.urandom(4).hex()}"


def test_tenant_create_json_has_the_tenant_and_a_working_key_shape(settings, slug):
    result = run_cli(settings, "tenant", "create", "CLI Corp", "--slug", slug, "--json")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"tenant", "api_key"}
    assert set(payload["tenant"]) == {"id", "slug", "name"}
    assert payload["tenant"]["slug"] == slug
    assert payload["tenant"]["name"] == "CLI Corp"
    assert payload["api_key"].startswith("cs_")


def test_tenant_list_shows_created_tenants(settings, slug):
    run_cli(settings, "tenant", "create", "Listed", "--slug", slug)

    result = run_cli(settings, "tenant", "list", "--json")

    assert result.returncode == 0, result.stderr
    assert slug in {tenant["slug"] for tenant in json.loads(result.stdout)}


def test_a_duplicate_slug_is_one_clear_line_and_exit_1(settings, slug):
    run_cli(settings, "tenant", "create", "First", "--slug", slug)

    result = run_cli(settings, "tenant", "create", "Second", "--slug", slug)

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: a tenant with slug '{slug}' already exists"


def test_an_invalid_slug_is_refused(settings):
    result = run_cli(settings, "tenant", "create", "Bad", "--slug", "Not A Slug!")

    assert result.returncode == 1
    assert "slug" in result.stderr
    assert "Traceback" not in result.stderr


def test_apikey_create_for_a_tenant(settings, slug):
    run_cli(settings, "tenant", "create", "Keys", "--slug", slug)

    result = run_cli(settings, "apikey", "create", "--tenant", slug, "--scope", "read", "--json")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["scopes"] == ["read"]
    assert payload["api_key"].startswith("cs_")


def test_apikey_create_for_an_unknown_tenant_fails_clearly(settings):
    result = run_cli(settings, "apikey", "create", "--tenant", "no-such-tenant")

    assert result.returncode == 1
    assert result.stderr.strip() == "error: tenant 'no-such-tenant' not found"


def test_apikey_create_with_an_unknown_scope_fails_clearly(settings, slug):
    run_cli(settings, "tenant", "create", "Scopes", "--slug", slug)

    result = run_cli(settings, "apikey", "create", "--tenant", slug, "--scope", "root")

    assert result.returncode == 1
    assert "unknown scope" in result.stderr


def test_migrate_is_idempotent(settings):
    result = run_cli(settings, "migrate")

    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")

    result = run_cli(settings, "tenant", "list")

    assert result.returncode == 1
    assert result.stderr.startswith("error: database unavailable")
    assert "Traceback" not in result.stderr


def test_worker_without_redis_explains_itself(settings):
    result = run_cli(settings, "worker")

    assert result.returncode == 1
    assert "CHURNSAVER_REDIS_URL is not set" in result.stderr
