"""Alembic environment: the URL comes from the caller (app.db.migrate) or from the settings' environment."""

from alembic import context
from sqlalchemy import create_engine, pool

from app.db.models import Base
from app.settings import Settings

config = context.config
url = config.attributes.get("sqlalchemy_url") or Settings.from_env().sqlalchemy_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
