"""Alembic environment: the URL from sqlalchemy.url or DATABASE_URL, psycopg driver."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool


def database_url() -> str:
    """The SQLAlchemy URL with the psycopg (v3) driver."""
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
    if not url:
        raise RuntimeError("set sqlalchemy.url or DATABASE_URL")
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def run_migrations_online() -> None:
    """One transaction per revision."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
