"""`make run` installs the package alone; `make test` and `make check` add the dev extras.

Dry runs (`make -n`) of the real Makefile in a scratch directory, with the stamp files a fresh
clone, a `make run` and a `make test` leave behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ".venv/bin/pip install --quiet -e ."
DEV = ".venv/bin/pip install --quiet -e '.[dev]'"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _installs(workdir: Path, target: str) -> list[str]:
    """The `pip install` lines (other than pip's own upgrade) `make TARGET` would run."""
    done = subprocess.run(
        ["make", "-n", target], cwd=workdir, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return [
        line.strip()
        for line in done.stdout.splitlines()
        if "pip install" in line and "--upgrade pip" not in line
    ]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    os.utime(tmp_path / "pyproject.toml", (1_000_000, 1_000_000))
    return tmp_path


def _leave(clone: Path, *stamps: str) -> None:
    """What an earlier make left: the virtualenv and these stamps, newer than pyproject.toml."""
    (clone / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("bin/python", *stamps):
        (clone / ".venv" / name).touch()
        os.utime(clone / ".venv" / name, (2_000_000, 2_000_000))


def test_on_a_fresh_clone_run_installs_the_package_alone_and_test_the_extras(clone: Path) -> None:
    assert _installs(clone, "run") == [RUNTIME]
    assert _installs(clone, "test") == [DEV]
    assert _installs(clone, "check") == [DEV]


def test_test_after_run_still_installs_the_extras(clone: Path) -> None:
    _leave(clone, ".installed-run")
    assert _installs(clone, "run") == []
    assert _installs(clone, "test") == [DEV]


def test_run_after_test_installs_nothing_more(clone: Path) -> None:
    _leave(clone, ".installed-run", ".installed-dev")
    assert _installs(clone, "run") == []
    assert _installs(clone, "test") == []


def test_an_edited_pyproject_reinstalls(clone: Path) -> None:
    _leave(clone, ".installed-run", ".installed-dev")
    os.utime(clone / "pyproject.toml", (3_000_000, 3_000_000))  # a new dependency, a new version
    assert _installs(clone, "run") == [RUNTIME]
    assert _installs(clone, "test") == [DEV]
