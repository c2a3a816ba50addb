"""`database:` — where the bot keeps its state.

`url` is a SQLite path (the default: `audit.database`, which keeps working) or
`postgresql://USER@HOST[:PORT]/DB` for a server several replicas share. The password is never part
of the URL: `password_env` names the environment variable that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.settings.base import Section
from services.settings.types import EnvVarName, WholeNumber

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: str) -> bool:
    return value.split("://", 1)[0].lower() in _SCHEMES and "://" in value


class DatabaseSettings(Section):
    url: str | None = None  # None: the SQLite file at audit.database
    password_env: EnvVarName | None = None
    sslmode: SslMode | None = None
    ssl_root_cert: Path | None = None  # CA bundle for verify-ca / verify-full
    pool_size: WholeNumber = Field(default=10, ge=2, le=100)  # connections per replica (PostgreSQL)
    connect_timeout: WholeNumber = Field(default=5, ge=1, le=120)  # seconds

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise PydanticCustomError("database_url", "is empty: give a SQLite path or a postgresql:// URL")
        if "://" not in value:
            return value  # a SQLite path
        parts = urlsplit(value)
        if parts.scheme.lower() not in _SCHEMES:
            raise PydanticCustomError(
                "database_url",
                "'{scheme}://' is not supported: give a SQLite path or postgresql://USER@HOST:5432/DB",
                {"scheme": parts.scheme},
            )
        if parts.password is not None:
            raise PydanticCustomError(
                "database_password_in_url",
                "contains a password: remove it from the URL and put it in the environment variable "
                "that database.password_env names",
            )
        if not parts.hostname or not parts.path.strip("/"):
            raise PydanticCustomError(
                "database_url", "needs a host and a database name: postgresql://USER@HOST:5432/DB"
            )
        if not parts.username:
            raise PydanticCustomError("database_url", "needs a user name: postgresql://USER@HOST:5432/DB")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise PydanticCustomError("database_url", "has an invalid port") from None
        return value

    @model_validator(mode="after")
    def _postgres_only(self) -> DatabaseSettings:
        if self.url is not None and is_postgres_url(self.url):
            return self
        for name in ("password_env", "sslmode", "ssl_root_cert"):
            if getattr(self, name) is not None:
                raise PydanticCustomError(
                    "database_sqlite", "{name} applies only to a postgresql:// url", {"name": name}
                )
        return self

    @property
    def postgres(self) -> bool:
        return self.url is not None and is_postgres_url(self.url)
