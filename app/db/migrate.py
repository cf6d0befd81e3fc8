"""Running Alembic from code: an explicit release step, never on app boot."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.settings import ROOT, Settings


def alembic_config(settings: Settings) -> Config:
    config = Config(toml_file=str(ROOT / "pyproject.toml"))
    config.attributes["sqlalchemy_url"] = settings.sqlalchemy_url
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)
