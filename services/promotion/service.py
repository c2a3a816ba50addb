"""Promotions: take the versions an app runs in one environment to the next, through Git.

`plan` reads the promotion file (`<path>/<promotion.file>`) of both environments at the head of
the branch in the cached clone, writes the source's versions into the target's text (only the
version values change; comments and layout stay) and shows the result as a diff. A request is
stored by `PromotionStore`; once approved, `still_current` makes sure the diff is still the one
people approved, and `commit` pushes exactly that diff, re-checking it on the branch head inside
the push (a race with someone else's change to the same file is a GitConflict, never a silent
merge of something nobody saw).
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from services.apps import AppResolver
from services.backend import AppRef
from services.errors import UserError
from services.git import GitConflict, RepoCache
from services.git.safety import repo_path, trailer_lines
from services.promotion.model import STATUSES, Promotion, PromotionPlan, PromotionStatus
from services.promotion.snapshot import digest, head, read_files, snapshot, unified_diff
from services.promotion.store import PromotionStore
from services.promotion.yaml_edit import (
    VersionDelta,
    apply_versions,
    describe_changes,
    read_versions,
    version_deltas,
)
from services.settings.model import App, CommitIdentity, GitRepository, Settings
from services.validation import display_value

__all__ = [
    "STATUSES",
    "Promotion",
    "PromotionPlan",
    "PromotionService",
    "PromotionStatus",
    "PromotionStore",
]

AUTO_APPROVAL = "auto (no approval policy)"


@dataclass(frozen=True)
class _Route:
    """A promotion's configuration, checked: where the source and target files live."""

    app: App
    from_env: str
    to_env: str
    source_repo: GitRepository
    target_repo: GitRepository
    source_file: str
    target_file: str

    @property
    def one_repository(self) -> bool:
        return self.source_repo.name == self.target_repo.name


class PromotionService:
    def __init__(
        self, settings: Settings, repos: RepoCache, resolver: AppResolver, store: PromotionStore
    ) -> None:
        self._settings = settings
        self._repos = repos
        self._resolver = resolver
        self.store = store

    def plan(self, app: str, to_env: str, from_env: str | None = None) -> PromotionPlan:
        """What promoting `app` to `to_env` (from `from_env`, by default the environment before
        it) would change now. UserError for unknown names or an app the bot cannot promote."""
        route = self._route(app, to_env, from_env)
        both = [route.target_file, route.source_file] if route.one_repository else [route.target_file]
        target = snapshot(self._repos, route.target_repo, both)
        source = (
            target if route.one_repository else snapshot(self._repos, route.source_repo, [route.source_file])
        )
        source_text = _present(source.files[route.source_file], route.source_file, route, route.from_env)
        target_text = _present(target.files[route.target_file], route.target_file, route, route.to_env)
        plan, _ = self._compute(route, source_text, target_text, target.sha, secrets.token_urlsafe(12))
        return plan

    def still_current(self, promotion: Promotion) -> PromotionPlan | None:
        """None while the promotion would still push the diff people approved (however far the
        branch moved meanwhile); otherwise the plan as it is now, for a new request."""
        fresh = self.plan(promotion.app, promotion.to_env, promotion.from_env)
        same_place = (fresh.repository, fresh.target_file) == (promotion.repository, promotion.target_file)
        # An unchanged base_sha implies an unchanged diff only when the source lives in the same
        # repository; comparing the diff itself covers both cases.
        return None if same_place and fresh.diff_hash == promotion.diff_hash else fresh

    def commit(
        self,
        promotion: Promotion,
        *,
        approvers: Sequence[str],
        author_name: str | None,
        author_email: str | None,
        to_branch: str | None = None,
    ) -> str:
        """Push the approved promotion; returns the pushed SHA.

        `to_branch`: the same commit, made on the branch head, pushed to that branch instead (the
        head of the promotion's pull request); allowed while the request is still pending too.

        The edit re-reads the source's versions and the target file at the branch head it runs on
        and refuses (GitConflict, nothing pushed) unless the diff there is the approved one.
        Concurrent pushes to other files are absorbed by RepoCache's retry. Marking the request
        committed or failed is the caller's job.
        """
        allowed = ("approved",) if to_branch is None else ("pending", "approved")
        if promotion.status not in allowed:
            raise UserError(f"This promotion is {promotion.status}, not approved; nothing was committed.")
        route = self._route(promotion.app, promotion.to_env, promotion.from_env)
        if (route.target_repo.name, route.target_file) != (promotion.repository, promotion.target_file):
            raise UserError(
                "The configuration of this app changed since the promotion was requested; "
                "nothing was committed.",
                hint="Run `promote` again to review the change as it is now.",
            )
        # A source in another repository is read first, outside this repository's lock: taking a
        # second repository's lock inside the first could deadlock with a promotion going the
        # other way. The diff check below still catches any change since approval.
        outside: str | None = None
        if not route.one_repository:
            snap = snapshot(self._repos, route.source_repo, [route.source_file])
            outside = _present(snap.files[route.source_file], route.source_file, route, route.from_env)

        def edit(worktree: Path) -> list[str]:
            sha = head(worktree, "HEAD")  # the fresh checkout of origin/<branch> this attempt uses
            wanted = [route.target_file] if outside is not None else [route.target_file, route.source_file]
            files = read_files(worktree, sha, wanted)
            target_text = _present(files[route.target_file], route.target_file, route, route.to_env)
            source_text = outside
            if source_text is None:
                source_text = _present(files[route.source_file], route.source_file, route, route.from_env)
            plan, new_text = self._compute(route, source_text, target_text, sha, promotion.id)
            if plan.diff_hash != promotion.diff_hash:
                raise GitConflict(
                    f"`{route.target_file}` or the versions in `{route.from_env}` changed on "
                    f"`{route.target_repo.branch}` since this promotion was approved, so the approved "
                    "diff no longer applies as shown; nothing was pushed.",
                    paths=[route.target_file],
                    hint="Run `promote` again to review and approve the change as it is now.",
                )
            (worktree / route.target_file).write_bytes(new_text.encode("utf-8"))
            return [route.target_file]

        result = self._repos.edit_and_push(
            route.target_repo.name,
            edit,
            author=_author(route.target_repo, author_name, author_email),
            message=_message(promotion, approvers, proposed=to_branch is not None),
            to_branch=to_branch,
        )
        return result.sha

    @staticmethod
    def merge_message(promotion: Promotion, approvers: Sequence[str]) -> tuple[str, str]:
        """(title, body) of the merge commit of a promotion's pull request: the body carries the
        trailers a pushed promotion's commit has (Requested-by, Approved-by, Audit-Id)."""
        subject, _, body = _message(promotion, approvers).partition("\n\n")
        return subject, body

    def target_ref(self, promotion: Promotion) -> AppRef:
        """The backend object the promotion deploys to (to follow its sync)."""
        return self._resolver.resolve(promotion.app, promotion.to_env)

    def source_ref(self, promotion: Promotion) -> AppRef:
        return self._resolver.resolve(promotion.app, promotion.from_env)

    # -- internals ------------------------------------------------------------------------------

    def _compute(
        self, route: _Route, source_text: str, target_text: str, base_sha: str, plan_id: str
    ) -> tuple[PromotionPlan, str]:
        """The plan for these two texts, and the target's new text."""
        spec = route.app.promotion
        wanted = read_versions(source_text, spec, filename=route.source_file)
        current = read_versions(target_text, spec, filename=route.target_file)
        new_text = apply_versions(target_text, spec, wanted, filename=route.target_file)
        diff = unified_diff(route.target_file, target_text, new_text)
        changes: tuple[VersionDelta, ...] = ()
        if diff:
            after = read_versions(new_text, spec, filename=route.target_file)
            summary, changes = describe_changes(current, after), version_deltas(current, after)
        else:
            summary = f"nothing to promote: {route.to_env} already runs what {route.from_env} runs"
        plan = PromotionPlan(
            id=plan_id,
            app=route.app.name,
            from_env=route.from_env,
            to_env=route.to_env,
            repository=route.target_repo.name,
            target_file=route.target_file,
            base_sha=base_sha,
            diff=diff,
            diff_hash=digest(diff),
            summary=" ".join(summary.split()),
            empty=not diff,
            source_ref=self._resolver.resolve(route.app.name, route.from_env),
            target_ref=self._resolver.resolve(route.app.name, route.to_env),
            changes=changes,
        )
        return plan, new_text

    def _route(self, name: str, to_env: str, from_env: str | None) -> _Route:
        settings = self._settings
        app = settings.app(name)
        if app is None:
            raise UserError(
                f"No app called {display_value(name)} is configured.",
                hint=_nearest(name, (a.name for a in settings.apps), "apps"),
            )
        order = settings.environment_names
        _known_env(to_env, order)
        if from_env is None:
            index = order.index(to_env)
            if index == 0:
                raise UserError(
                    f"`{to_env}` is the first environment: there is nothing before it to promote from.",
                    hint="Promotion order: " + " → ".join(order) + ". Name the source with `from ENV`.",
                )
            from_env = order[index - 1]
        else:
            _known_env(from_env, order)
        if from_env == to_env:
            raise UserError(f"Promoting `{to_env}` to itself changes nothing; name two environments.")
        source_repo, source_file = self._location(app, from_env)
        target_repo, target_file = self._location(app, to_env)
        return _Route(app, from_env, to_env, source_repo, target_repo, source_file, target_file)

    def _location(self, app: App, env: str) -> tuple[GitRepository, str]:
        target = app.target(env)
        if target is None:
            raise UserError(
                f"`{app.name}` is not deployed to `{env}`.",
                hint="Its environments: " + ", ".join(f"`{e}`" for e in app.env_names) + ".",
            )
        if target.repository is None or target.path is None:
            raise UserError(
                f"`{app.name}` in `{env}` has no Git `repository` and `path` configured, "
                "so the bot cannot promote it.",
                hint=f"Add `repository:` and `path:` to `{app.name}`'s `{env}` entry in the configuration.",
            )
        repo = self._settings.repository(target.repository)
        if repo is None:
            raise UserError(f"`{app.name}` in `{env}` names repository `{target.repository}`, "
                            "which is not configured.")  # fmt: skip
        # "." and empty segments are how people write "the repository root"; git wants neither.
        segments = [s for s in f"{target.path}/{app.promotion.file}".split("/") if s not in ("", ".")]
        return repo, repo_path("/".join(segments))


def _present(text: str | None, path: str, route: _Route, env: str) -> str:
    if text is None:
        repo = route.source_repo if env == route.from_env else route.target_repo
        raise UserError(
            f"`{path}` does not exist on `{repo.branch}` of repository `{repo.name}` "
            f"(the promotion file of `{route.app.name}` in `{env}`).",
            hint="Check `path` and `promotion.file` in the configuration.",
        )
    return text


def _known_env(env: str, order: Sequence[str]) -> None:
    if env not in order:
        raise UserError(
            f"Unknown environment {display_value(env)}.", hint=_nearest(env, order, "environments")
        )


def _nearest(name: str, candidates: Iterable[str], what: str) -> str | None:
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
    if close:
        return "Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return f"Known {what}: " + ", ".join(f"`{c}`" for c in pool) if pool and len(pool) <= 12 else None


def _author(repo: GitRepository, name: str | None, email: str | None) -> CommitIdentity:
    """The requester as the commit's author when we know them; else the bot."""
    bot = repo.commit_identity
    flat = " ".join((name or "").replace("<", "").replace(">", "").split())
    if not flat and not email:
        return bot
    try:
        return CommitIdentity(name=flat or bot.name, email=email or bot.email)
    except ValidationError:  # an email git would not take; keep the name, the bot's address
        return CommitIdentity(name=flat or bot.name, email=bot.email)


def _message(promotion: Promotion, approvers: Sequence[str], *, proposed: bool = False) -> str:
    """Subject and trailers. Approved-by repeats, which a Mapping of trailers cannot hold.
    A proposal (a pull request's commit) has no approvals yet: the merge commit carries them."""
    subject = " ".join(f"promote {promotion.app} to {promotion.to_env}: {promotion.summary}".split())
    name = " ".join(promotion.requester_name.split())
    lines = trailer_lines(
        {"Requested-by": f"{name} <{promotion.requester}>" if name else promotion.requester}
    )
    for approver in dict.fromkeys(approvers) or ([] if proposed else [AUTO_APPROVAL]):
        lines += trailer_lines({"Approved-by": approver})
    lines += trailer_lines({"Audit-Id": promotion.audit_id})
    return subject + "\n\n" + "\n".join(lines)
