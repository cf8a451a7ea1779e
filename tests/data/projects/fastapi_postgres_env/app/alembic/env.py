"""Alembic environment: the URL comes from the POSTGRES_* settings, never sqlalchemy.url."""

import json
import os
import sys

from alembic import context
from sqlalchemy import create_engine, pool

# the tests' witness: what each run of the tool saw
_witness = os.environ.get("READYCTL_TEST_WITNESS")
if _witness:
    with open(_witness, "a", encoding="utf-8") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}) + "\n")

from app.core.config import settings  # noqa: E402


def get_url() -> str:
    """The template's get_url(): the settings' URL, password included."""
    return settings.SQLALCHEMY_DATABASE_URI.render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    """Emit SQL without a database connection."""
    context.configure(url=get_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against the database the settings name."""
    engine = create_engine(get_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
