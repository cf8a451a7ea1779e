"""Settings from the environment, like full-stack-fastapi-template's app/core/config.py."""

from __future__ import annotations

import os

from sqlalchemy.engine import URL


class Settings:
    """POSTGRES_SERVER and POSTGRES_USER are required, as in the template."""

    def __init__(self) -> None:
        self.POSTGRES_SERVER = os.environ["POSTGRES_SERVER"]
        self.POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "5432"))
        self.POSTGRES_USER = os.environ["POSTGRES_USER"]
        self.POSTGRES_PASSWORD = os.environ.get("POSTGRES_PASSWORD", "")
        self.POSTGRES_DB = os.environ.get("POSTGRES_DB", "")

    @property
    def SQLALCHEMY_DATABASE_URI(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=self.POSTGRES_USER,
            password=self.POSTGRES_PASSWORD,
            host=self.POSTGRES_SERVER,
            port=self.POSTGRES_PORT,
            database=self.POSTGRES_DB,
        )


settings = Settings()
