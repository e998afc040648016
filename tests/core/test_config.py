"""Settings from CHURNSAVER_* variables."""

import pytest

from churnsaver.backend.core.config import ConfigurationError, Environment, Settings


def test_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("CHURNSAVER_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHURNSAVER_REDIS_URL", raising=False)
    monkeypatch.setenv("CHURNSAVER_DATA_DIR", str(tmp_path))

    settings = Settings()

    assert settings.env is Environment.development
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'churnsaver.db'}"
    assert settings.embedded_jobs


def test_redis_url_switches_jobs_out_of_process(monkeypatch):
    monkeypatch.setenv("CHURNSAVER_REDIS_URL", "redis://127.0.0.1:6379/0")

    assert not Settings().embedded_jobs


def test_generated_secret_key_is_kept_in_the_data_dir(tmp_path):
    first = Settings(data_dir=tmp_path).resolved_secret_key
    second = Settings(data_dir=tmp_path).resolved_secret_key

    assert first == second
    assert len(first) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_requires_a_secret_key(monkeypatch):
    monkeypatch.delenv("CHURNSAVER_SECRET_KEY", raising=False)

    with pytest.raises(ConfigurationError, match="CHURNSAVER_SECRET_KEY"):
        Settings(env="production", database_url="postgresql+asyncpg://db/churnsaver")


def test_production_requires_a_database_url(monkeypatch):
    monkeypatch.delenv("CHURNSAVER_DATABASE_URL", raising=False)

    with pytest.raises(ConfigurationError, match="CHURNSAVER_DATABASE_URL"):
        Settings(env="production", secret_key="x" * 48)
