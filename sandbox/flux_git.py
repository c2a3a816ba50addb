"""Real Git for the fake Flux: deploy repositories on disk, and what source-controller reads from them.

`make_deploy_repo` and `commit_file` build fixtures (a bare repository plus a work clone that pushes
to it); `ls_remote`, `commit_subject` and `read_manifests` are what the fake controllers do with a
GitRepository URL (`file:///abs/path.git` or an absolute path). The `git` binary runs with argument
lists and a config isolated from the user's.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML comes with the kubernetes client; no stubs

AUTHOR = ("Sandbox Bot", "sandbox@example.com")
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_KUSTOMIZE_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class GitError(RuntimeError):
    """A git command failed; the message is git's stderr."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_COMMITTER_NAME=AUTHOR[0],
        GIT_COMMITTER_EMAIL=AUTHOR[1],
    )
    return env


def git_bytes(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**_env(), **(env or {})},
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", errors="replace").strip()
        raise GitError(error or f"git {args[0]} exited with {done.returncode}")
    return done.stdout


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    return git_bytes(*args, cwd=cwd, env=env).decode("utf-8", errors="replace")


def local_path(url: str) -> Path | None:
    """The repository directory behind a GitRepository URL, or None for a (simulated) remote."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    return Path(url) if url.startswith("/") else None


# -- fixtures ----------------------------------------------------------------------------------------------


def _write(work: Path, files: Mapping[str, str]) -> None:
    for relative, content in files.items():
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def make_deploy_repo(
    root: Path,
    files: Mapping[str, str],
    *,
    name: str = "deploy",
    branch: str = "main",
    message: str = "Initial commit",
    date: str | None = None,
) -> tuple[Path, Path]:
    """`root/<name>.git` (bare) and `root/<name>` (a clone), with `files` in a first pushed commit
    (made `date`, when given, else now)."""
    bare, work = root / f"{name}.git", root / name
    git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(bare))
    git("clone", "--quiet", str(bare), str(work))
    git("checkout", "--quiet", "-B", branch, cwd=work)
    commit_files(work, files, message, date=date)
    return bare, work


def commit_files(
    work: Path, files: Mapping[str, str | None], message: str, *, date: str | None = None,
    author: str | None = None,
) -> str:  # fmt: skip
    """Write (or, for None, delete) files in the work clone, commit, push the branch; returns the SHA.
    `date` (any form git accepts, e.g. RFC 3339) dates the commit in the past; default now;
    `author` ("Name <email>") commits as someone else than the clone's identity."""
    for relative, content in files.items():
        if content is None:
            (work / relative).unlink(missing_ok=True)
        else:
            _write(work, {relative: content})
    git("add", "--all", cwd=work)
    dated = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
    who = [f"--author={author}"] if author else []
    git("commit", "--quiet", "--allow-empty", "--no-gpg-sign", *who, "-m", message, cwd=work, env=dated)
    branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=work).strip()
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def commit_file(work: Path, path: str, content: str, message: str, *, date: str | None = None) -> str:
    return commit_files(work, {path: content}, message, date=date)


# -- what source-controller and kustomize-controller read ---------------------------------------------------


def ls_remote(url: str, ref: str) -> str:
    """The commit `ref` (`refs/heads/main`, `refs/tags/v1`) points at; annotated tags are peeled."""
    out = git("ls-remote", url, ref, f"{ref}^{{}}")
    found: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    sha = found.get(f"{ref}^{{}}") or found.get(ref) or ""
    if not sha:
        raise GitError(f"couldn't find remote ref '{ref}'")
    return sha


def commit_subject(repo: Path, sha: str) -> str:
    try:
        return git("--git-dir", str(repo), "log", "-1", "--format=%s", sha).strip()
    except GitError:
        return ""


def _is_manifest(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(_MANIFEST_SUFFIXES) and base not in _KUSTOMIZE_FILES


def read_manifests(repo: Path, sha: str, path: str) -> list[dict[str, Any]] | None:
    """Every Kubernetes object in YAML/JSON files under `path` at `sha`; None when the path is absent.

    A stand-in for `kustomize build`: kustomization.yaml files are skipped, not interpreted. Raises
    ValueError for a file that does not parse.
    """
    prefix = path.strip().removeprefix("./").strip("/")
    git_dir = ("--git-dir", str(repo))
    if prefix:
        try:
            kind = git(*git_dir, "cat-file", "-t", f"{sha}:{prefix}").strip()
        except GitError:
            return None
        if kind != "tree":
            return None
    names = git(*git_dir, "ls-tree", "-r", "--name-only", sha, "--", prefix or ".").splitlines()
    wanted = [n for n in names if _is_manifest(n)]
    if not wanted:
        return []
    request = "".join(f"{sha}:{n}\n" for n in wanted).encode()
    blobs = git_bytes(*git_dir, "cat-file", "--batch", stdin=request)
    objects: list[dict[str, Any]] = []
    for name, text in zip(wanted, _split_batch(blobs), strict=True):
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ValueError(f"{name}: {exc}".replace("\n", " ")) from exc
        objects += [d for d in documents if isinstance(d, dict) and d.get("kind") and d.get("metadata")]
    return objects


def _split_batch(data: bytes) -> list[str]:
    """The contents out of `git cat-file --batch` output (`<sha> blob <size>\\n<content>\\n` records)."""
    texts: list[str] = []
    pos = 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        start = header_end + 1
        texts.append(data[start : start + size].decode("utf-8", errors="replace"))
        pos = start + size + 1
    return texts
