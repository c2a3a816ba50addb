"""The documented path for a third-party plugin, proven: examples/plugins/allowed-registries is
installed (pip, from its own pyproject), found through its `gitops_bot` entry point only when config
names it, its settings checked by `check-config`, and its validator blocks a promotion end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_promote_commands import World, world

__all__ = ["world"]  # the fixture, shared
ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "plugins" / "allowed-registries"
CONFIG = """\
plugins: [allowed-registries]
plugin_settings:
  allowed-registries:
    registries: [ghcr.io/acme]
    environments: [prod]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed as a user would (pip from its directory), into a folder of its own so
    the test environment is left as it was; that folder goes on the path like site-packages."""
    target = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("build")  # setuptools writes its build files next to the source
    source = work / "allowed-registries"
    subprocess.run(["cp", "-r", str(PLUGIN), str(source)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(p.name.startswith("gitops_bot_allowed_registries-1.0.0") for p in target.iterdir())
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    return installed


def _cli(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=_env(installed), cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _env(installed: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": os.pathsep.join((str(installed), str(ROOT)))}  # fmt: skip


def test_check_config_loads_it_by_name_lists_its_version_and_checks_its_settings(
    installed: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG)
    done = _cli(installed, tmp_path, "-m", "bot.cli", "check-config", "--config", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Plugins: allowed-registries 1.0.0" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("registries: [ghcr.io/acme]", "registries: []\n    colour: red"))
    done = _cli(installed, tmp_path, "-m", "bot.cli", "check-config", "--config", str(bad))
    assert done.returncode == 1
    assert "plugin_settings.allowed-registries.registries" in done.stdout + done.stderr
    assert "plugin_settings.allowed-registries.colour" in done.stdout + done.stderr


def test_installed_but_not_named_it_is_not_loaded(installed: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("plugins: []\n")
    done = _cli(installed, tmp_path, "-m", "bot.cli", "check-config", "--config", str(plain))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "allowed-registries" not in done.stdout
    assert "Plugins: none" in done.stdout


def test_its_own_tests_pass(installed: Path) -> None:
    done = _cli(installed, PLUGIN, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN / "tests"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_it_blocks_a_promotion_of_an_image_from_elsewhere(world: World, on_path: Path) -> None:
    with world.bot(top_extra=CONFIG) as w:
        assert w.runtime is not None
        assert [p.label for p in w.runtime.deps.extensions.plugins if not p.builtin] == [  # type: ignore[union-attr]
            "allowed-registries 1.0.0"
        ]
        w.say("promote api --to prod --from dev", user="U0BOSS")
        card = w.card("allowed-registries")
        shown = card.text + json.dumps(card.blocks)
        assert "registry.example.com/api is not from an allowed registry (ghcr.io/acme)" in shown
        assert "promotion_approve" not in shown
        w.say("promote api --to staging --from dev")  # not an environment it checks
        w.card("Deploy: *Succeeded*")
        ready = httpx.get(f"http://127.0.0.1:{w.runtime.server.port}/readyz", timeout=10).json()
        assert ready["plugins"] == {"allowed-registries": "1.0.0"}
        w.say("whoami")
        w.slack.wait_for(
            lambda f: any(
                "plugin allowed-registries 1.0.0" in json.dumps(m.blocks) for m in f.ephemeral("U0ALICE")
            ),
            timeout=20,
        )
