"""Keeps the fake Argo CD in step with the demo's deploy repository.

The fake Argo CD renders each app from its own in-memory Git, not from a repository on disk. The
bridge feeds that Git the deploy repository's real commits, so Argo CD reports the same SHAs,
authors, dates and messages as `git log`: `upstream` gives the commits an app starts with, and a
`reference-transaction` hook in the bare repository hands every branch update to the bridge and
waits until it has been applied: a change to `apps/web/overlays/<env>/kustomization.yaml` on the
branch web's `env` deploys from becomes a new revision of the Argo CD app `web-<env>` (same image
tag and replica count), named by the commit that made it. That hook (unlike `post-receive`) also
runs for the fake GitHub's merges, which move the branch with `git update-ref`. Because the push
or the merge only returns once the bridge is done, the sync the bot starts right after a promotion
commit or merge sees the new revision.
"""

from __future__ import annotations

import logging
import stat
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.demo.config import ENVIRONMENTS, WEB_IMAGE, web_branch, web_path
from sandbox.argocd_fake import FakeArgoCD, Upstream
from sandbox.flux_git import GitError, git

log = logging.getLogger(__name__)
POLL_SECONDS = 0.02
HOOK_WAIT_SECONDS = 10
ZERO_SHA = "0" * 40

# The hook: drop the updated refs into the inbox, wait for the bridge's `.done` (or give up).
_HOOK = """\
import os, sys, time, uuid
inbox = {inbox!r}
name = os.path.join(inbox, uuid.uuid4().hex)
with open(name + ".tmp", "w") as out:
    out.write(sys.stdin.read())
os.replace(name + ".tmp", name + ".push")
deadline = time.monotonic() + {wait}
while time.monotonic() < deadline and not os.path.exists(name + ".done"):
    time.sleep(0.01)
"""


class ArgoBridge:
    def __init__(self, bare: Path, inbox: Path, argocd: FakeArgoCD) -> None:
        self.bare = bare
        self.inbox = inbox
        self.argocd = argocd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ArgoBridge:
        self.inbox.mkdir(parents=True, exist_ok=True)
        script = self.inbox / "ref-update.py"
        script.write_text(_HOOK.format(inbox=str(self.inbox), wait=HOOK_WAIT_SECONDS), encoding="utf-8")
        hook = self.bare / "hooks" / "reference-transaction"
        # Only committed updates of branches matter; the fake GitHub's `refs/pull/*` (written on every
        # mergeability check) and the "prepared" phase skip Python altogether.
        hook.write_text(
            "#!/bin/sh\n"
            '[ "$1" = committed ] || { cat >/dev/null; exit 0; }\n'
            "refs=$(cat)\n"
            'case "$refs" in *" refs/heads/"*) ;; *) exit 0 ;; esac\n'
            f'printf "%s\\n" "$refs" | exec {_quote(sys.executable)} {_quote(str(script))}\n',
            encoding="utf-8",
        )
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._thread = threading.Thread(target=self._loop, name="demo-argo-bridge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for push in sorted(self.inbox.glob("*.push")):
                try:
                    self.apply(push.read_text(encoding="utf-8"))
                except Exception:  # a bad push must not stop the bridge (the hook times out instead)
                    log.exception("the demo's Argo CD bridge could not apply a push")
                finally:
                    push.with_suffix(".done").touch()
                    push.unlink(missing_ok=True)

    def apply(self, refs: str) -> list[str]:
        """Apply `old new ref` lines from the hook; returns the Argo CD apps that got a revision."""
        updated: list[str] = []
        for line in refs.splitlines():
            parts = line.split()
            if len(parts) != 3 or not parts[2].startswith("refs/heads/") or parts[1] == ZERO_SHA:
                continue
            old, new, ref = parts
            branch = ref.removeprefix("refs/heads/")
            for env in self._changed_envs(old, new):
                if web_branch(env) != branch:
                    continue
                # Argo CD deploys the branch's head: after a merge that is the merge commit, which
                # `git log -- path` would skip (it changes nothing against the PR's head).
                found = self._commits(env, new, limit=1, path_only=False)
                if not found or found[0].image is None:
                    continue
                commit = found[0]
                self.argocd.push_revision(
                    f"web-{env}",
                    image=commit.image,
                    replicas=commit.replicas,
                    message=commit.message,
                    author=commit.author,
                    sha=commit.sha,
                    date=commit.date,
                )
                updated.append(f"web-{env}")
        return updated

    def upstream(self, env: str) -> list[Upstream]:
        """The commits that changed web's overlay for `env`, oldest first, for `add_app(commits=…)`."""
        return [c for c in reversed(self._commits(env, web_branch(env))) if c.image is not None]

    def _commits(
        self, env: str, rev: str, *, limit: int | None = None, path_only: bool = True
    ) -> list[Upstream]:
        """Commits up to `rev` that touched web's overlay for `env` (or any, without `path_only`),
        newest first."""
        fmt = "--format=%H%x1f%an <%ae>%x1f%aI%x1f%B%x1e"
        more = [f"-{limit}"] if limit else []
        paths = ["--", f"{web_path(env)}/kustomization.yaml"] if path_only else []
        out = self._git("log", fmt, *more, rev, *paths)
        found: list[Upstream] = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) != 4:
                continue
            sha, author, date, message = fields
            overlay = self._overlay(sha, env)
            found.append(
                Upstream(
                    sha=sha,
                    author=author,
                    date=_rfc3339(date),
                    message=message.strip() or "update",
                    image=f"{WEB_IMAGE}:{overlay[0]}" if overlay else None,
                    replicas=overlay[1] if overlay else None,
                )
            )
        return found

    def _changed_envs(self, old: str, new: str) -> list[str]:
        if old == ZERO_SHA:
            return list(ENVIRONMENTS)
        names = set(self._git("diff", "--name-only", old, new).splitlines())
        return [env for env in ENVIRONMENTS if f"{web_path(env)}/kustomization.yaml" in names]

    def _overlay(self, sha: str, env: str) -> tuple[str, int] | None:
        text = self._git("show", f"{sha}:{web_path(env)}/kustomization.yaml")
        data: Any = YAML(typ="safe").load(text) if text else None
        if not isinstance(data, Mapping):
            return None
        tag = next(
            (str(i.get("newTag")) for i in data.get("images") or [] if _named(i, WEB_IMAGE)),
            None,
        )
        replicas = next((int(r.get("count", 2)) for r in data.get("replicas") or [] if _named(r, "web")), 2)
        return (tag, replicas) if tag else None

    def _git(self, *args: str) -> str:
        try:
            return git("--git-dir", str(self.bare), *args)
        except GitError:
            return ""


def _rfc3339(iso: str) -> str:
    """Git's strict ISO date as Argo CD writes times: UTC, seconds, `Z`."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _named(item: Any, name: str) -> bool:
    return isinstance(item, Mapping) and item.get("name") == name


def _quote(text: str) -> str:
    """Single-quoted for /bin/sh (a path with spaces or quotes still works)."""
    return "'" + text.replace("'", "'\\''") + "'"
