"""Reading promotion files at a commit, and the diff a promotion shows, on a real repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.errors import UserError
from services.promotion.snapshot import digest, head, read_files, unified_diff
from tests.git_support import sh


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    repo = tmp_path / "clone"
    repo.mkdir()
    sh(repo, "init", "-q", "--initial-branch=main")
    (repo / "a.yaml").write_bytes(b"tag: 1\r\nname: a\r\n")  # CRLF kept as is
    (repo / "same.yaml").write_bytes(b"tag: 1\r\nname: a\r\n")  # same blob as a.yaml
    (repo / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (repo / "dir").mkdir()
    (repo / "dir" / "x.yaml").write_text("x: 1\n")
    os.symlink("a.yaml", repo / "link.yaml")
    sh(repo, "add", "-A")
    sh(repo, "commit", "-q", "-m", "files")
    return repo


def test_read_files_batches_and_reports_missing(clone: Path) -> None:
    sha = head(clone, "HEAD")
    found = read_files(clone, sha, ["a.yaml", "same.yaml", "dir/x.yaml", "dir/missing.yaml", "a.yaml"])
    assert found == {
        "a.yaml": "tag: 1\r\nname: a\r\n",
        "same.yaml": "tag: 1\r\nname: a\r\n",
        "dir/x.yaml": "x: 1\n",
        "dir/missing.yaml": None,
    }
    assert read_files(clone, sha, ["nothing/here.yaml"]) == {"nothing/here.yaml": None}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("link.yaml", "not a regular file"),
        ("dir", "not a regular file"),
        ("latin1.yaml", "not UTF-8"),
        ("../etc/passwd", "Invalid path"),
        ("--output=/tmp/x", "Invalid path"),
    ],
)
def test_read_files_refuses(clone: Path, path: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_files(clone, head(clone, "HEAD"), [path])


def test_read_files_takes_only_a_full_sha(clone: Path) -> None:
    with pytest.raises(ValueError, match="full SHA"):
        read_files(clone, "HEAD", ["a.yaml"])


def test_unified_diff_applies_with_git(clone: Path) -> None:
    before = "a: 1\nb: 2\r\nc: 3"  # a CR inside a line, no final newline
    after = "a: 1\nb: 2\r\nc: 4"
    (clone / "f.yaml").write_text(before, newline="")
    sh(clone, "add", "f.yaml")
    sh(clone, "commit", "-q", "-m", "f")
    diff = unified_diff("f.yaml", before, after)
    assert diff.endswith("-c: 3\n\\ No newline at end of file\n+c: 4\n\\ No newline at end of file\n")
    assert diff.startswith("diff --git a/f.yaml b/f.yaml\n--- a/f.yaml\n+++ b/f.yaml\n@@ -1,3 +1,3 @@\n")
    subprocess.run(["git", "apply", "-"], cwd=clone, input=diff.encode(), check=True)
    assert (clone / "f.yaml").read_bytes() == after.encode()
    assert unified_diff("f.yaml", before, before) == ""
    assert digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
