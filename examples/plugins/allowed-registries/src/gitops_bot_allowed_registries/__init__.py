"""Refuse promotions of images from outside an allowed list of registries.

Configure it in the bot's file:

    plugins: [allowed-registries]
    plugin_settings:
      allowed-registries:
        registries: [registry.example.com, ghcr.io/acme]
        environments: [prod]          # empty or absent: every environment

A registry entry is a host (`registry.example.com`, `localhost:5000`) or a host and a path prefix
(`ghcr.io/acme`). Images without a host are Docker Hub's (`docker.io`), as docker reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy
from pydantic import BaseModel, ConfigDict, Field

from services.extensions.model import Finding, PlannedChange
from services.settings.model import Settings

hookimpl = pluggy.HookimplMarker("gitops_bot")  # the bot's project name: no import of its internals needed


class AllowedRegistries(BaseModel):
    """This plugin's settings (`plugin_settings.allowed-registries`), checked by `check-config`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registries: tuple[str, ...] = Field(min_length=1)
    environments: tuple[str, ...] = ()


_settings: AllowedRegistries | None = None


@hookimpl
def gitops_bot_settings_model() -> type[BaseModel]:
    return AllowedRegistries


@hookimpl
def gitops_bot_configure(settings: Settings, plugin_settings: BaseModel | None) -> None:
    global _settings
    _settings = plugin_settings if isinstance(plugin_settings, AllowedRegistries) else None


@hookimpl
def gitops_bot_validate(change: PlannedChange) -> Sequence[Finding]:
    config = _settings
    if config is None or change.action != "promote":
        return []
    if config.environments and change.env not in config.environments:
        return []
    findings = []
    for item in change.changes:
        if item.kind != "image":
            continue
        where = registry_of(item.name)
        if not any(
            where == allowed or where.startswith(allowed.rstrip("/") + "/") for allowed in config.registries
        ):
            allowed_list = ", ".join(config.registries)
            findings.append(
                Finding(
                    "allowed-registries",
                    "block",
                    f"{item.name} is not from an allowed registry ({allowed_list}): push it there first",
                )
            )
    return findings


def registry_of(image: str) -> str:
    """`host/path` of an image name as docker reads it (no host: Docker Hub)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image if rest else 'library/' + image}"
