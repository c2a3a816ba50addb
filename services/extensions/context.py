"""What the bot hands a plugin at start: the means to do its work without reaching into the bot."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from services.pipelines import PipelineRuns
from services.store.db import Database


@dataclass(frozen=True)
class PluginContext:
    database: Database  # the bot's database (a notifier's outbox, say); add tables by migration
    clock: Callable[[], datetime]
    secrets: Mapping[str, SecretStr]  # by environment variable name, for every `*_env` in config
    pipelines: PipelineRuns | None = None  # Tekton runs of the configured pipelines (`tekton:` set)

    def secret(self, env_name: str | None) -> str | None:
        """The value of an environment variable named in config, or None when unset."""
        found = self.secrets.get(env_name) if env_name else None
        return found.get_secret_value() if found is not None else None
