"""Run the Alembic migrations from code (`churnsaver migrate`, and `serve` on the embedded database)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

import churnsaver.migrations
from churnsaver.backend.core.config import Settings


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(churnsaver.migrations.__file__).parent))
    config.attributes["settings"] = settings
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)
