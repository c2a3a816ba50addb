"""The plugin on its own: its settings model and its verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import gitops_bot_allowed_registries as plugin
import pytest
from pydantic import ValidationError

from services.backend import AppRef
from services.extensions.model import PlannedChange, VersionChange


def _change(*images: str, env: str = "prod", action: str = "promote") -> PlannedChange:
    changes = tuple(VersionChange("image", name, "1.0.0", "1.0.1", f"{name}:1.0.1") for name in images)
    ref = AppRef("argocd", "main", f"api-{env}")
    return PlannedChange(action, ref, "api", env, "U0ALICE", datetime.now(UTC), changes=changes)  # type: ignore[arg-type]


def _configure(**values: object) -> None:
    model = plugin.gitops_bot_settings_model()
    plugin.gitops_bot_configure(settings=None, plugin_settings=model.model_validate(values))  # type: ignore[arg-type]


def test_images_from_elsewhere_are_blocked_and_allowed_ones_pass() -> None:
    _configure(registries=["registry.example.com", "ghcr.io/acme"])
    found = plugin.gitops_bot_validate(
        _change("registry.example.com/api", "ghcr.io/acme/worker", "ghcr.io/evil/x")
    )
    assert [(f.severity, f.message.split()[0]) for f in found] == [("block", "ghcr.io/evil/x")]


def test_docker_hub_names_are_read_as_docker_does() -> None:
    assert plugin.registry_of("nginx") == "docker.io/library/nginx"
    assert plugin.registry_of("bitnami/redis") == "docker.io/bitnami/redis"
    assert plugin.registry_of("localhost:5000/api") == "localhost:5000/api"


def test_only_the_configured_environments_and_promotions_are_checked() -> None:
    _configure(registries=["registry.example.com"], environments=["prod"])
    assert plugin.gitops_bot_validate(_change("docker.io/x", env="staging")) == []
    assert plugin.gitops_bot_validate(_change("docker.io/x", action="sync")) == []
    assert plugin.gitops_bot_validate(_change("docker.io/x"))


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        plugin.AllowedRegistries.model_validate({"registries": []})
    with pytest.raises(ValidationError):
        plugin.AllowedRegistries.model_validate({"registries": ["a"], "typo": 1})
