"""One version, from pyproject.toml, everywhere the project names it.

`gitops-bot --version`, `/readyz`, `whoami`, the image tags in the docs and manifests, the
Dockerfile and the CHANGELOG's newest release all agree with `[project].version`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

from bot.app import version
from sandbox.slack_api import FakeSlack
from tests.conftest import BotFactory

ROOT = Path(__file__).resolve().parent.parent
SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"
# The ways a file can name the bot's version: an image reference, the bot's kustomize `images:`
# entry (other apps' `newTag:` lines, as in the README's promotion demo, are not the bot's), a label.
MENTIONS = (
    re.compile(rf"gitops-bot:({SEMVER})"),
    re.compile(rf"name: gitops-bot\s*\n(?:\s*newName:[^\n]*\n)?\s*newTag:\s*\"?({SEMVER})\"?"),
    re.compile(rf"org\.opencontainers\.image\.version=\"?({SEMVER})\"?"),
)


def _declared() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project.get("dynamic", []), "the version is written in pyproject.toml"
    return str(project["version"])


def _files() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    deploy = sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())
    return [ROOT / "README.md", ROOT / "Dockerfile", *docs, *deploy]


def test_every_file_names_the_pyproject_version() -> None:
    declared = _declared()
    found: dict[str, list[str]] = {}
    for path in _files():
        text = path.read_text()
        for pattern in MENTIONS:
            for mention in pattern.findall(text):
                found.setdefault(str(path.relative_to(ROOT)), []).append(mention)
    wrong = {path: v for path, v in found.items() if set(v) != {declared}}
    assert not wrong, f"pyproject.toml says {declared}; these files disagree: {wrong}"
    # The places an operator copies the tag from must name it at all.
    for needed in ("docs/deploy.md", "Dockerfile", *(f"deploy/overlays/{o}/kustomization.yaml"
                                                      for o in ("socket-mode", "http-mode"))):  # fmt: skip
        assert needed in found, f"{needed} names no image tag"


def test_the_changelog_has_the_release_below_unreleased() -> None:
    declared = _declared()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    names = [name for name, _ in headings]
    assert names[:1] == ["Unreleased"], "Keep a Changelog: [Unreleased] comes first"
    assert declared in names, f"CHANGELOG.md has no ## [{declared}] release"
    releases = [(name, rest) for name, rest in headings if name != "Unreleased"]
    assert releases[0][0] == declared, "the newest release is the one pyproject.toml names"
    for name, rest in releases:
        assert re.fullmatch(SEMVER, name), name
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}] needs ' - YYYY-MM-DD'"


def test_the_installed_package_reports_the_pyproject_version() -> None:
    # A stale install (pyproject edited, package not reinstalled) shows here: `make run` / `make test`
    # reinstall whenever pyproject.toml changes.
    assert version() == _declared()
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"gitops-bot {_declared()}"


def test_readyz_and_whoami_report_the_pyproject_version(bot: BotFactory, fake_slack: FakeSlack) -> None:
    runtime, sender = bot()
    with urllib.request.urlopen(f"http://127.0.0.1:{runtime.server.port}/readyz", timeout=15) as r:
        assert json.loads(r.read())["version"] == _declared()
    sender.slash("whoami", user_id="U0ALICE")
    wanted = f"gitops-bot {_declared()}"
    fake_slack.wait_for(lambda f: any(wanted in json.dumps(m.blocks) for m in f.ephemeral("U0ALICE")))
