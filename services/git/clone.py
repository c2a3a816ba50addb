"""`Clone`: one configured repository's cached clone as a GitPython `Repo`, and its network side.

The `Repo` is opened once and kept (with GitPython's persistent `cat-file` processes, so reading
commits and trees costs no new process), reopened when the directory changed under it. Clone,
fetch and push go through GitPython (`Repo.clone_from`, `Remote.fetch`, `Remote.push` and the
`PushInfo` flags); `mapped` turns every GitPython exception into the git family, with git's text
bounded and scrubbed: a GitPython exception never leaves services/git, and is never chained, since
its text holds the command line and git's unscrubbed stderr.
"""

from __future__ import annotations

import configparser
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

from git import PushInfo, RemoteProgress, Repo
from git.exc import (
    GitCommandError,
    GitCommandNotFound,
    InvalidGitRepositoryError,
    NoSuchPathError,
    ODBError,
)
from git.exc import GitError as GitPythonError
from git.refs import SymbolicReference
from git.repo.fun import is_git_dir
from pydantic import SecretStr

from services.errors import bound
from services.git.env import auth_env, base_env, secret_forms, summary
from services.git.errors import GitError, GitUnavailable, NonFastForward, ProtectedBranch, PushRejected
from services.git.refusal import classify_push_refusal
from services.git.runner import CommandTimedOut, Policy, SafeRepo, cause_of, stderr_of, subcommand
from services.metrics import Metrics
from services.redaction import Redactor
from services.settings.model import GitRepository

_RACE_MARKERS = ("(fetch first)", "(non-fast-forward)")
_REF_MOVED = re.compile(r"cannot lock ref '[^']+': is at [0-9a-f]+ but expected [0-9a-f]+")
_REFUSALS: dict[str, type[PushRejected]] = {"protected": ProtectedBranch, "non_fast_forward": NonFastForward}
_PUSH_FAILED = PushInfo.ERROR | PushInfo.REJECTED | PushInfo.REMOTE_REJECTED | PushInfo.REMOTE_FAILURE


class Clone:
    """The cached clone of one repository: `repo` (a git.Repo) and clone/fetch/push."""

    def __init__(
        self,
        config: GitRepository,
        path: Path,
        token: SecretStr | None,
        *,
        metrics: Metrics | None,
        network_timeout: float,
        local_timeout: float = 120.0,
    ) -> None:
        self.config = config
        self.path = path
        # Never let git walk up from a broken clone into a repository above the cache root
        # (the bot's own checkout, say) and reset or clean that instead.
        self._policy = Policy(
            env={**base_env(), "GIT_CEILING_DIRECTORIES": str(path.parent)},
            network_env=auth_env(config, token),
            local_timeout=local_timeout,
            network_timeout=network_timeout,
        )
        self._scrub = Redactor(secret_forms(token))
        self._metrics = metrics
        self._repo: SafeRepo | None = None
        self._opened: tuple[int, int] | None = None  # (st_dev, st_ino) of the .git it opened

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def origin_ref(self) -> str:
        """The remote-tracking ref of the configured branch, as of the last fetch."""
        return f"refs/remotes/origin/{self.config.branch}"

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            raise GitError(f"the clone of {self.name} is not open")
        return self._repo

    def summary(self, text: str) -> str:
        return summary(text, self._scrub)

    # -- the clone itself -----------------------------------------------------------------------

    def sync(self) -> None:
        """Clone or fetch, so the remote-tracking refs are current."""
        if self._open():
            self.fetch()
        else:
            self._clone()
        if self.ref_sha(self.origin_ref) is None:
            raise GitUnavailable(self.name, f"branch `{self.config.branch}` does not exist on the remote")

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()  # ends its persistent cat-file processes
        self._repo, self._opened = None, None

    def _open(self) -> bool:
        """Whether `path` is our clone (its own .git, origin = the configured URL); opens it if so."""
        try:
            stat = (self.path / ".git").stat()
        except OSError:
            stat = None
        marker = (stat.st_dev, stat.st_ino) if stat is not None else None
        kept = self._repo
        if (
            kept is not None
            and marker == self._opened
            and self._alive(kept)
            and is_git_dir(self.path / ".git")
        ):
            return self._origin_url(kept) == self.config.url
        self.close()
        if marker is None:
            return False
        with self.mapped():
            try:
                repo = SafeRepo(self.path, policy=self._policy)
            except (InvalidGitRepositoryError, NoSuchPathError):
                return False
        if self._origin_url(repo) != self.config.url:
            repo.close()
            return False
        self._repo, self._opened = repo, marker
        return True

    @staticmethod
    def _alive(repo: Repo) -> bool:
        """False when a persistent cat-file process died (killed, say): then reopen."""
        running = [p for p in (repo.git.cat_file_all, repo.git.cat_file_header) if p is not None]
        return all(p.proc is not None and p.proc.poll() is None for p in running)

    @staticmethod
    def _origin_url(repo: Repo) -> str | None:
        try:
            with repo.config_reader("repository") as config:
                url = config.get_value('remote "origin"', "url", default="")
        except (configparser.Error, OSError):  # an unreadable config: not a clone we can use
            return None
        return str(url) or None

    def _clone(self) -> None:
        """Clone into a temporary directory, then move it into place: never a half clone."""
        self.close()
        root = self.path.parent
        root.mkdir(parents=True, exist_ok=True)
        for stale in [self.path, *root.glob(f".{self.name}.clone-*")]:  # broken, moved, or a crash's
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.clone-", dir=root))
        try:
            with self._network("clone"):
                # clone_from's Repo keeps `env` for all its commands: closed at once, never used.
                SafeRepo.clone_from(
                    self.config.url,
                    tmp,
                    env={**self._policy.network_env, "GIT_CEILING_DIRECTORIES": str(root)},
                    branch=self.config.branch,
                    origin="origin",
                    kill_after_timeout=self._policy.network_timeout,
                ).close()
            tmp.rename(self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not self._open():
            raise GitError(f"the new clone of {self.name} cannot be opened")

    # -- network --------------------------------------------------------------------------------

    def fetch(self) -> None:
        # force: tags moved on the remote are moved here too (git refuses by default).
        with self._network("fetch") as lines:
            self.repo.remote("origin").fetch(
                prune=True,
                tags=True,
                force=True,
                verbose=False,  # list only what changed: GitPython parses every line it gets
                progress=lines,
                kill_after_timeout=self._policy.network_timeout,
            )

    def push(self, to_branch: str | None = None) -> bool:
        """True when pushed, False when the remote moved (non-fast-forward); GitUnavailable otherwise.

        `to_branch`: push HEAD to that branch instead of the configured one, overwriting it (the
        bot's own proposal branch, re-pushed when a promotion is retried)."""
        branch = to_branch or self.config.branch
        refspec = f"{'+' if to_branch else ''}HEAD:refs/heads/{branch}"
        with self._network("push", failed=f"push to {branch} refused") as lines:
            infos = self.repo.remote("origin").push(
                refspec,
                progress=lines,
                kill_after_timeout=self._policy.network_timeout,
                no_verify=True,
            )
            if isinstance(infos.error, CommandTimedOut):
                raise infos.error
        failed = [i for i in infos if i.flags & _PUSH_FAILED]
        if not failed and infos.error is None:
            return True
        output = "\n".join([*lines.other_lines, *lines.error_lines])
        if failed and all(_is_race(i) or _lost_ref_lock(i, output) for i in failed):
            return False
        shown = [f"! {i.remote_ref_string} {i.summary}" for i in failed]
        raise self._refused(branch, "\n".join([*shown, *lines.other_lines, *lines.error_lines]))

    def _refused(self, branch: str, text: str) -> PushRejected:
        """The typed refusal for git's `text` (protected branch, race, other); what users see of it
        is scrubbed and bounded like every git message."""
        found = classify_push_refusal(text)
        refusal = replace(found, reasons=tuple(bound(self._scrub(r)) for r in found.reasons[:10]))
        message = f"push to {branch} refused: {self.summary(text)}"
        kind = _REFUSALS.get(refusal.kind, PushRejected)
        return kind(self.name, message, branch=branch, refusal=refusal)

    @contextmanager
    def _network(self, operation: str, *, failed: str | None = None) -> Iterator[RemoteProgress]:
        """Time `operation` and turn its failure into GitUnavailable ("<failed>: <git's text>").

        Yields a RemoteProgress to pass to GitPython: it collects git's stderr lines."""
        lines = RemoteProgress()
        timer = self._metrics.backend_call(f"git:{self.name}", operation) if self._metrics else nullcontext()
        with timer:
            try:
                yield lines
            except CommandTimedOut as exc:
                raise GitUnavailable(self.name, f"{operation} timed out after {exc.timeout:g}s") from None
            except GitCommandNotFound as exc:
                raise GitUnavailable(self.name, f"cannot run git: {cause_of(exc)}") from None
            except GitCommandError as exc:
                # For fetch and push GitPython puts the error lines in the exception's stderr.
                text = "\n".join([stderr_of(exc), *lines.other_lines])
                refused = self._refused(self.config.branch, text) if operation == "push" else None
                if refused is not None and (refused.refusal.kind != "rejected" or refused.refusal.ref_reason):
                    raise refused from None  # the remote said no (not a network or auth failure)
                raise GitUnavailable(
                    self.name, f"{failed or operation + ' failed'}: {self.summary(text)}"
                ) from None
            # Only GitPython runs in here: an unsafe URL or option, a broken repository, a clone
            # without a fetch refspec (AssertionError), a missing remote (ValueError).
            except (GitPythonError, ODBError, ValueError, AssertionError) as exc:
                text = f"{type(exc).__name__}: {exc}"
                raise GitUnavailable(
                    self.name, f"{failed or operation + ' failed'}: {self.summary(text)}"
                ) from None

    # -- local ----------------------------------------------------------------------------------

    @contextmanager
    def mapped(self) -> Iterator[None]:
        """GitPython's exceptions from local work on the clone as GitError, text bounded and scrubbed.

        Wrap only GitPython calls (and our own raises): GitPython also reports a missing object
        or a dead `cat-file` process as ValueError, which becomes GitError here too."""
        try:
            yield
        except CommandTimedOut as exc:
            raise GitError(f"git {subcommand(exc.command)} timed out in the clone of {self.name}") from None
        except GitCommandNotFound as exc:
            raise GitError(f"cannot run git: {cause_of(exc)}") from None
        except GitCommandError as exc:
            what = subcommand(exc.command)
            raise GitError(
                f"git {what} failed in the clone of {self.name}: {self.summary(stderr_of(exc))}"
            ) from None
        except (GitPythonError, ODBError, ValueError) as exc:
            raise GitError(
                f"git failed in the clone of {self.name}: {self.summary(f'{type(exc).__name__}: {exc}')}"
            ) from None

    def ref_sha(self, ref: str) -> str | None:
        """The SHA a full ref name of ours points at, read by GitPython (no process); None if none."""
        try:
            return SymbolicReference.dereference_recursive(self.repo, ref)
        except ValueError:
            return None

    def rev_parse(self, ref: str) -> str:
        """The commit SHA `ref` (one of our own refs, or HEAD) names; GitError if none."""
        with self.mapped():
            try:
                return self.repo.commit(ref).hexsha
            except ValueError:
                raise GitError(f"{ref} names no commit in the clone of {self.name}") from None


def _lost_ref_lock(info: PushInfo, output: str) -> bool:
    # Another writer (a second replica) updated the branch between our push's check and its ref
    # update: the remote says "cannot lock ref …: is at X but expected Y". Fetch and retry, as for
    # a non-fast-forward.
    return (
        bool(info.flags & PushInfo.REMOTE_REJECTED)
        and ("failed to update ref" in info.summary or "failed to lock" in info.summary)
        and _REF_MOVED.search(output) is not None
    )


def _is_race(info: PushInfo) -> bool:
    return bool(info.flags & PushInfo.REJECTED) and any(m in info.summary for m in _RACE_MARKERS)
