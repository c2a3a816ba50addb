"""Docs are tested: every subcommand appears in help, the README and the Slack manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from handlers.grammar.spec import SUBCOMMANDS
from handlers.help import help_reply

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_subcommand_is_in_help(name: str) -> None:
    assert f"/gitops {name}" in json.dumps(list(help_reply(None).blocks))


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_subcommand_is_in_readme(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"/gitops {name}" in readme


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_subcommand_is_in_manifest(name: str) -> None:
    manifest = YAML(typ="safe").load((ROOT / "manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/gitops"
    assert name in command["usage_hint"].split("]")[0]
    assert name in command["description"]


def test_manifest_has_the_required_scopes_and_socket_mode() -> None:
    manifest = YAML(typ="safe").load((ROOT / "manifest.yml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "usergroups:read", "users:read", "files:write"} <= scopes
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:15]
    assert any("make run" in line for line in head)
    assert any("make test" in line for line in head)


def test_changelog_is_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text or "## [0.1.0]" in text
