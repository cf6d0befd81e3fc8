"""The migrations are the schema: they must build exactly what the models describe, and unwind cleanly."""

from __future__ import annotations

import warnings

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from app.db import embedded
from app.db.migrate import alembic_config, upgrade
from app.db.models import Base
from app.settings import Settings


def test_migrations_match_the_models_and_downgrade_cleanly(pg_admin_url):
    url = embedded.ensure_database(pg_admin_url, "fairshelf_migrations", fresh=True)
    settings = Settings(mode="test", database_url=url)
    upgrade(settings)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not recognize type 'ltree'": a known extension type
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == [], "models and migrations disagree; write a migration"
        command.downgrade(alembic_config(settings), "base")
        with engine.connect() as connection:
            left = connection.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            ).scalars().all()
        assert left == []
        upgrade(settings)
    finally:
        engine.dispose()
