"""Diff, history and rollback of a Kustomization, read from and written to Git (docs §7, §8).

Flux keeps no deployment history and has no rollback verb: the Git history of the
Kustomization's `spec.path` is its history, and a rollback is a commit (revert or restore)
pushed to the branch the GitRepository tracks, followed by a reconcile with source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from services.backend import AppDiff, AppRef, HistoryEntry, RollbackPlan
from services.errors import UserError
from services.flux import convert as cv
from services.flux.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, FluxKind
from services.flux.translate import object_path
from services.git import Commit, PushResult, RepoCache
from services.git.errors import RevisionNotFound
from services.settings.model import GitRepository

HISTORY_LIMIT = 20


@dataclass(frozen=True)
class GitSource:
    """Where a Kustomization's manifests live in a configured repository."""

    repository: GitRepository
    path: str | None  # repository-relative; None when the Kustomization applies the whole tree
    branch: str | None  # what the GitRepository tracks (None: its default)
    applied: str | None  # full SHA of lastAppliedRevision
    artifact: str | None  # full SHA of the source's artifact revision


def repo_path(spec_path: str | None) -> str | None:
    """`./apps/prod/` → `apps/prod`; `./` or empty → None (the whole repository)."""
    path = (spec_path or "").strip()
    while path.startswith("./"):
        path = path[2:]
    path = path.strip("/")
    return None if path in ("", ".") else path


def helm_refusal(what: str, ref: AppRef) -> UserError:
    return UserError(
        f"{object_path(ref)} is a HelmRelease: the bot {what} Kustomizations only.",
        hint="Change the chart version or values in Git; helm-controller's remediation rolls back "
        "failed upgrades by itself (see the Remediated condition).",
    )


def git_source(
    repos: RepoCache | None,
    ref: AppRef,
    obj: Mapping[str, object],
    kind: FluxKind,
    source: Mapping[str, object] | None,
    what: str,
) -> GitSource:
    """The configured repository behind a Kustomization's GitRepository, or a UserError saying why not."""
    if kind is HELM_RELEASE:
        raise helm_refusal(what, ref)
    found = cv.source_ref(obj, KUSTOMIZATION)
    if found is None or found[0] is not GIT_REPOSITORY or source is None:
        described = f"{found[0].kind} {found[1]}/{found[2]}" if found else "no source"
        raise UserError(
            f"The bot {what} only Kustomizations built from a GitRepository; "
            f"{object_path(ref)} uses {described}."
        )
    url = cv.text(cv.spec(source).get("url"))
    if repos is None:
        raise UserError(
            f"No Git repositories are configured, so the bot cannot read `{url}` for {object_path(ref)}.",
            hint="Add the repository under `repositories[]` in the bot's configuration.",
        )
    repository = repos.repository_for_url(url)
    if repository is None:
        raise UserError(
            f"No configured repository matches `{url}`, the source of {object_path(ref)}.",
            hint="`repositories[]` in the bot's configuration needs an entry with that URL.",
        )
    return GitSource(
        repository=repository,
        path=repo_path(cv.opt_text(cv.spec(obj).get("path"))),
        branch=cv.opt_text(cv.mapping(cv.spec(source).get("ref")).get("branch")),
        applied=cv.revision_hex(cv.applied_revision(obj, KUSTOMIZATION)),
        artifact=cv.revision_hex(cv.artifact_revision(source)),
    )


def diff(repos: RepoCache, ref: AppRef, src: GitSource, revision: str | None) -> AppDiff:
    """Git changes under the path not yet applied: applied revision → artifact (or `revision`)."""
    name = src.repository.name
    if src.applied is None:
        raise UserError(
            f"{object_path(ref)} has not applied any revision yet; there is nothing to compare with."
        )
    target = repos.resolve(name, revision) if revision else src.artifact
    if target is None:
        raise UserError(f"The source of {object_path(ref)} has no artifact yet; reconcile it first.")
    applied = repos.resolve(name, src.applied)
    if cv.same_revision(applied, target):
        return AppDiff(ref=ref, text="", from_revision=applied, to_revision=target)
    text = repos.diff(name, applied, target, path=src.path)
    return AppDiff(ref=ref, text=text, from_revision=applied, to_revision=target)


def commit_entry(repos: RepoCache, src: GitSource, sha: str) -> HistoryEntry | None:
    """One commit of the source's repository, wherever it changed things (the feed's author, date)."""
    commits = repos.log(src.repository.name, ref=sha, limit=1)
    return _entry(commits[0], False) if commits and commits[0].sha.startswith(sha) else None


def _entry(commit: Commit, current: bool) -> HistoryEntry:
    return HistoryEntry(
        id=commit.short,
        revision=commit.sha,
        deployed_at=commit.date,
        author=commit.author_name,
        message=commit.message,
        current=current,
    )


def _current_sha(repos: RepoCache, src: GitSource, commits: list[Commit]) -> str | None:
    """The commit under the path that the applied revision contains: the applied commit itself,
    or (when it touched other paths only) the newest earlier commit that touched the path."""
    if src.applied is None:
        return None
    for commit in commits:
        if commit.sha.startswith(src.applied):
            return commit.sha
    try:
        older = repos.log(src.repository.name, path=src.path, ref=src.applied, limit=1)
    except RevisionNotFound:
        return None
    return older[0].sha if older else None


def history(repos: RepoCache, src: GitSource) -> list[HistoryEntry]:
    commits = repos.log(src.repository.name, path=src.path, limit=HISTORY_LIMIT)
    current = _current_sha(repos, src, commits)
    return [_entry(c, c.sha == current) for c in commits]


def plan(repos: RepoCache, ref: AppRef, src: GitSource, to: str | None) -> RollbackPlan:
    """`to` None, or the commit deployed now: revert that commit. Another revision: restore the
    path to its state at that commit. `plan(..., plan.to.id)` gives the same plan again, which is
    how a confirm button re-plans."""
    entries = history(repos, src)
    current = next((e for e in entries if e.current), None)
    sha = repos.resolve(src.repository.name, to) if to is not None else None
    if sha is None or (current is not None and sha == current.revision):
        if current is None:
            raise UserError(
                f"No commit under `{src.path or '/'}` matches what {object_path(ref)} has applied, "
                "so there is nothing to revert.",
                hint=(
                    f"Name the commit to restore with `--to`, e.g. "
                    f"`/gitops rollback {ref.display} --to {entries[0].revision[:12]}`."
                    if entries
                    else "Name the commit to restore with `--to`."
                ),
            )
        return RollbackPlan(ref=ref, to=current, current=current, auto_sync=False, path=src.path)
    if src.path is None:
        raise UserError(
            f"{object_path(ref)} applies the whole repository; the bot restores paths only.",
            hint="Roll back without a revision to revert the deployed commit.",
        )
    chosen = next((e for e in entries if e.revision == sha), None)
    if chosen is None:
        found = repos.log(src.repository.name, path=src.path, ref=sha, limit=1)
        if not found:
            raise UserError(f"Commit `{sha[:8]}` has no files under `{src.path}`.")
        if current is not None and found[0].sha == current.revision:
            raise UserError(f"At `{sha[:8]}`, `{src.path}` is as it is now; there is nothing to roll back.")
        # The path's state at `sha` is what its newest commit at or before `sha` left there.
        chosen = replace(_entry(found[0], False), id=sha[:8], revision=sha)
    return RollbackPlan(ref=ref, to=chosen, current=current, auto_sync=False, path=src.path)


def push_rollback(
    repos: RepoCache,
    ref: AppRef,
    src: GitSource,
    rollback: RollbackPlan,
    initiated_by: str | None,
    *,
    to_branch: str | None = None,
) -> PushResult:
    """Revert (the plan targets the current commit) or restore the path, and push (`to_branch`:
    to that branch instead, the head of a pull request the caller opens; the tracked branch is
    not touched)."""
    repository = src.repository
    if src.branch and src.branch != repository.branch:
        raise UserError(
            f"{object_path(ref)} follows branch `{src.branch}` but the bot pushes to "
            f"`{repository.branch}` of `{repository.name}`; roll back in Git by hand."
        )
    to = rollback.to
    subject = (to.message or "").strip().splitlines()[0] if to.message else ""
    trailers = {
        "Rolled-back-from": src.applied or (rollback.current.revision if rollback.current else to.revision)
    }
    if initiated_by:
        trailers = {"Requested-by": initiated_by, **trailers}
    where = f"{ref.namespace}/{ref.name}"
    if rollback.current is not None and rollback.current.revision == to.revision:
        message = f"rollback {where}: revert {to.revision[:8]} ({subject})"
        return repos.revert(
            repository.name,
            to.revision,
            author=repository.commit_identity,
            message=message,
            trailers=trailers,
            to_branch=to_branch,
        )
    message = f"rollback {where}: restore {src.path} to {to.revision[:8]} ({subject})"
    return repos.restore(
        repository.name,
        src.path or "",
        to.revision,
        author=repository.commit_identity,
        message=message,
        trailers=trailers,
        to_branch=to_branch,
    )
