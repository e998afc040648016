"""Settings, read once from `CHURNSAVER_*` environment variables."""

import secrets
from enum import StrEnum
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated

from limits import parse as parse_limit
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class ConfigurationError(Exception):
    """The settings cannot run the service; the message says which variable to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURNSAVER_", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; unset means a SQLite file under DATA_DIR."
    )
    # On PostgreSQL the app's connections switch to this non-owner role, so row-level security
    # applies to every query; migrations run as the URL's own user, which owns the tables.
    database_role: str = "churnsaver_app"
    redis_url: str | None = None
    secret_key: str | None = None
    demo: bool = False
    log_level: str = "INFO"
    graphql_max_body_bytes: int = 1024 * 1024
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    # Failed authentications (wrong or unknown API keys), in the `limits` notation.
    auth_failure_limit_per_ip: str = "20/minute"
    auth_failure_limit_per_key: str = "10/minute"
    # Widget API calls (/widgets/v1/*), per customer and per client address.
    widget_limit_per_customer: str = "30/minute"
    widget_limit_per_ip: str = "120/minute"
    # /metrics: a bearer token, and/or the client networks (CIDRs, comma-separated) that may read it.
    metrics_token: str | None = None
    metrics_allow: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    # After SIGTERM, requests in flight and then running jobs each get this long before the
    # process exits anyway; what a job left undone is sent again (jobs/worker.py).
    shutdown_timeout_seconds: int = Field(default=5, gt=0)
    # Channels: unset SMTP/SMS means messages are captured (stored, shown on /dev/mailbox), not sent.
    smtp_url: str | None = Field(default=None, description="smtp://[user:pass@]host:port (STARTTLS) or smtps://")
    sms_api_url: str | None = Field(default=None, description="Base URL of a Twilio-compatible Messages API.")
    whop_api_url: str = "https://api.whop.com"
    stripe_api_url: str = "https://api.stripe.com"
    # Links in messages are absolute on this URL; unset: the address `serve` listens on.
    public_url: str | None = None

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "auth_failure_limit_per_ip", "auth_failure_limit_per_key", "widget_limit_per_customer", "widget_limit_per_ip"
    )
    @classmethod
    def _is_a_rate_limit(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '20/minute'") from None
        return value

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> "Settings":
        if self.env is Environment.production:
            if not self.secret_key:
                raise ConfigurationError("CHURNSAVER_SECRET_KEY is required in production")
            if not self.database_url:
                raise ConfigurationError("CHURNSAVER_DATABASE_URL is required in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'churnsaver.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def embedded_jobs(self) -> bool:
        """Without Redis, jobs run in-process and subscriptions publish in-process."""
        return self.redis_url is None

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, or (outside production) one generated once and kept in DATA_DIR."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key
