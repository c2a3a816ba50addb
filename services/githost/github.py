"""A client for GitHub's REST API (api.github.com or Enterprise `/api/v3`), one repository.

Contract: `contracts/github/api.github.com.trimmed.json` and githost-api.md §1-§5, §7-§10. Every
call sends `Authorization: Bearer`, `Accept: application/vnd.github+json` and the pinned
`X-GitHub-Api-Version: 2022-11-28` (under 2026-03-10 `merge_commit_sha` disappears).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import SecretStr

from services.githost import github_convert as convert
from services.githost import readiness as ready
from services.githost.client import HostClient
from services.githost.errors import (
    TWO_IDENTITIES_HINT,
    ApprovalRefused,
    DuplicateChangeRequest,
    HeadMoved,
    HostError,
    HostNotFound,
    HostRejected,
    NothingToPromote,
    NotMergeable,
    SelfApproval,
    WriteOutcomeUnknown,
)
from services.githost.model import (
    Approvals,
    BranchProtection,
    ChangeRequest,
    Check,
    HostKind,
    MergeMethod,
    MergeResult,
    Readiness,
    RepoInfo,
    Review,
)
from services.githost.raw import obj, text

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
GITHUB_API = "https://api.github.com"
_PER_PAGE = ("per_page", "100")
RULES_TTL = 300.0  # seconds a base branch's rules are reused by `readiness`


def _ref(name: str) -> str:
    # Branch names keep their slashes in GitHub paths (`git/refs/heads/gitops-bot/promote/…`).
    return quote(name, safe="/")


class GitHubClient(HostClient):
    """GitHub pull requests of one repository, as the bot's identity.

    `approve_token` is a second identity (a reviewer account): GitHub refuses an approving review
    from the PR's author (§7), and the PR is opened with `token`. Without it `approve` uses
    `token` and gets `SelfApproval`.
    """

    kind: HostKind = "github"
    _headers: ClassVar[Mapping[str, str]] = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }
    owner: str
    _rules: dict[str, tuple[float, BranchProtection]]

    def _bind(self, project: str | int) -> str:
        owner, _, name = str(project).partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"GitHub repository must be `owner/name`, got {project!r}")
        self.owner = owner
        self._path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._rules = {}
        return f"{owner}/{name}"

    @staticmethod
    def _auth(token: SecretStr) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    # -- repository and branches (§4.1, §8) ------------------------------------------------------

    def get_repo(self) -> RepoInfo:
        return convert.repo_info(self._t.get("get repository", self._path, missing="repo").data)

    def get_branch(self, name: str) -> BranchProtection:
        """The classic protection of `name` only (rulesets: `protection`)."""
        answer = self._t.get("get branch", f"{self._path}/branches/{_ref(name)}")
        return convert.protection(name, answer.data, [])

    def get_branch_rules(self, name: str) -> BranchProtection:
        """The ruleset rules that apply to `name` (the branch need not exist)."""
        rules = self._t.get_all("get branch rules", f"{self._path}/rules/branches/{_ref(name)}", [_PER_PAGE])
        return convert.protection(name, {}, rules)

    def protection(self, branch: str) -> BranchProtection:
        """Classic protection and rulesets together: a hint before pushing, never the last word."""
        data = self._t.get("get branch", f"{self._path}/branches/{_ref(branch)}").data
        rules = self._t.get_all(
            "get branch rules", f"{self._path}/rules/branches/{_ref(branch)}", [_PER_PAGE]
        )
        return convert.protection(branch, data, rules)

    # -- pull requests (§5) ---------------------------------------------------------------------

    def find_open(self, head_branch: str, base_branch: str) -> ChangeRequest | None:
        """The open PR from `head_branch` into `base_branch`, read in full, or None."""
        params = [
            ("state", "open"),
            ("head", f"{self.owner}:{head_branch}"),
            ("base", base_branch),
            _PER_PAGE,
        ]
        listed = self._t.get_all("list pull requests", f"{self._path}/pulls", params, missing="repo")
        found = [pr for pr in map(convert.pull_request, listed) if pr.head_branch == head_branch]
        return self.get(min(pr.number for pr in found)) if found else None

    def create(
        self,
        head_branch: str,
        base_branch: str,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        reviewers: Sequence[str] = (),
    ) -> ChangeRequest:
        """Open the PR, or adopt the open one for the same head (422 "already exists", or an
        unknown outcome that a re-read resolves). Labels and reviewers are then best effort."""
        payload = {
            "title": title,
            "head": head_branch,
            "base": base_branch,
            "body": body,
            "draft": False,
            "maintainer_can_modify": False,
        }
        try:
            created = convert.pull_request(
                self._t.write(
                    "create pull request", "POST", f"{self._path}/pulls", payload, missing="repo"
                ).data
            )
        except HostRejected as exc:
            if exc.status == 422 and exc.mentions_text("a pull request already exists"):
                return self._adopt(head_branch, base_branch, exc)
            if exc.status == 422 and exc.mentions_text("no commits between"):
                raise NothingToPromote(
                    "github",
                    self.project,
                    f"`{head_branch}` has nothing that `{base_branch}` lacks: already up to date",
                    operation="create pull request",
                    status=422,
                ) from None
            raise
        except WriteOutcomeUnknown:
            adopted = self.find_open(head_branch, base_branch)
            if adopted is None:
                raise
            return adopted
        self._decorate(created.number, labels, reviewers)
        return created

    def _adopt(self, head: str, base: str, exc: HostRejected) -> ChangeRequest:
        adopted = self.find_open(head, base)
        if adopted is None:
            raise DuplicateChangeRequest(
                "github",
                self.project,
                f"GitHub says a PR from `{head}` already exists, but none is open into `{base}`",
                operation="create pull request",
                status=exc.status,
            ) from None
        log.info("github %s: adopted open PR #%s for %s", self.project, adopted.number, head)
        return adopted

    def _decorate(self, number: int, labels: Sequence[str], reviewers: Sequence[str]) -> None:
        # A PR without its labels or reviewers still works (Image Updater treats these as warnings).
        try:
            if labels:
                self.add_labels(number, labels)
            if reviewers:
                self.request_reviewers(number, reviewers)
        except HostError as exc:
            log.warning(
                "github %s: PR #%s opened, but %s failed: %s", self.project, number, exc.operation, exc
            )

    def get(self, number: int) -> ChangeRequest:
        return convert.pull_request(self._t.get("get pull request", f"{self._path}/pulls/{number}").data)

    def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        answer = self._t.write(
            "add labels", "POST", f"{self._path}/issues/{number}/labels", {"labels": list(labels)}
        )
        return (
            tuple(text(obj(label), "name") for label in answer.data) if isinstance(answer.data, list) else ()
        )

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        """`user` or `org/team` names. Not in the trimmed contract (pulls/request-reviewers)."""
        users = [r for r in reviewers if "/" not in r]
        teams = [r.split("/", 1)[1] for r in reviewers if "/" in r]
        body = {"reviewers": users, "team_reviewers": teams}
        self._t.write("request reviewers", "POST", f"{self._path}/pulls/{number}/requested_reviewers", body)

    def comment(self, number: int, body: str) -> str:
        """Post a comment; its URL."""
        answer = self._t.write("comment", "POST", f"{self._path}/issues/{number}/comments", {"body": body})
        return text(obj(answer.data), "html_url")

    def list_reviews(self, number: int) -> tuple[Review, ...]:
        listed = self._t.get_all("list reviews", f"{self._path}/pulls/{number}/reviews", [_PER_PAGE])
        return convert.reviews(listed)

    def approvals(self, number: int, *, required: int | None = None) -> Approvals:
        return convert.approvals(self.list_reviews(number), required=required)

    def approve(self, number: int, head_sha: str, body: str = "") -> None:
        """An APPROVE review tied to `head_sha` (the commit the humans saw), as the approver."""
        payload = {"event": "APPROVE", "commit_id": head_sha, "body": body}
        try:
            self._approver.write("approve", "POST", f"{self._path}/pulls/{number}/reviews", payload)
        except HostRejected as exc:
            if exc.status == 422 and exc.mentions_text("approve your own pull request"):
                raise SelfApproval(
                    "github",
                    self.project,
                    f"GitHub refused the approval of PR #{number}: the approving identity is the PR's author",
                    operation="approve",
                    status=422,
                    hint=TWO_IDENTITIES_HINT,
                ) from None
            if exc.status == 422 and exc.mentions_text("not permitted to approve"):
                raise ApprovalRefused(
                    "github",
                    self.project,
                    f"GitHub refused the approval of PR #{number}: {exc.host_message}",
                    operation="approve",
                    status=422,
                    hint=TWO_IDENTITIES_HINT,
                ) from None
            raise

    def checks_for(self, sha: str) -> tuple[Check, ...]:
        """Check runs and commit statuses on `sha` (§5.7): newer CI posts the one, older the other."""
        runs = self._t.get_all(
            "list check runs", f"{self._path}/commits/{sha}/check-runs", [_PER_PAGE], key="check_runs"
        )
        combined = self._t.get("get combined status", f"{self._path}/commits/{sha}/status", [_PER_PAGE]).data
        return convert.check_runs(runs) + convert.statuses(combined)

    def checks(self, cr: ChangeRequest) -> tuple[Check, ...]:
        return self.checks_for(cr.head_sha)

    def readiness(self, cr: ChangeRequest) -> Readiness:
        """§5.5/§10; on `blocked` reads the base's rules, the reviews and the checks to say why."""
        first = ready.github(cr)
        if first.kind != "blocked" or cr.merge_state != "blocked":
            return first
        rules = self._rules_for(cr.base_branch)
        return ready.github(
            cr,
            protection=rules,
            approvals=self.approvals(cr.number, required=rules.required_approvals),
            checks=self.checks_for(cr.head_sha),
        )

    def _rules_for(self, branch: str) -> BranchProtection:
        # A blocked PR is polled for minutes; its base's rules rarely change meanwhile (two calls saved).
        now = self._clock()
        cached = self._rules.get(branch)
        if cached is not None and now - cached[0] < RULES_TTL:
            return cached[1]
        rules = self.protection(branch)
        self._rules[branch] = (now, rules)
        return rules

    def update_branch(self, cr: ChangeRequest) -> None:
        """Merge the base into a `behind` head (202): the head moves, approvals must be redone."""
        body = {"expected_head_sha": cr.head_sha}
        try:
            self._t.write("update branch", "PUT", f"{self._path}/pulls/{cr.number}/update-branch", body)
        except HostRejected as exc:
            if exc.status == 422:
                moved = f"{cr.ref} moved since {cr.head_sha[:12]}: {exc.host_message}"
                raise HeadMoved(
                    "github", self.project, moved, operation="update branch", status=422
                ) from None
            raise

    def merge(
        self,
        number: int,
        sha: str,
        *,
        method: MergeMethod = "merge",
        title: str | None = None,
        message: str | None = None,
        remove_branch: bool = False,
    ) -> MergeResult:
        """Merge with `sha` as precondition (§5.9). 409 → `HeadMoved`; 405 → `NotMergeable` with
        Kargo's reading. An unknown outcome is resolved by re-reading the PR."""
        payload: dict[str, object] = {"merge_method": method, "sha": sha}
        if title is not None:
            payload["commit_title"] = title
        if message is not None:
            payload["commit_message"] = message
        try:
            data = obj(self._t.write("merge", "PUT", f"{self._path}/pulls/{number}/merge", payload).data)
        except HostRejected as exc:
            raise self._merge_refusal(number, sha, exc) from None
        except WriteOutcomeUnknown:
            pr = self.get(number)
            if pr.state != "merged":
                raise
            data = {
                "merged": True,
                "sha": pr.merge_commit_sha,
                "message": "merged (confirmed by re-reading the PR)",
            }
        result = MergeResult(
            merged=data.get("merged") is True, sha=text(data, "sha") or None, message=text(data, "message")
        )
        if result.merged and remove_branch:
            self._remove_head(number)
        return result

    def _merge_refusal(self, number: int, sha: str, exc: HostRejected) -> HostError:
        where = f"PR #{number}"
        if exc.status == 409:
            moved = f"{where}: its head moved since {sha[:12]} was approved; not merged"
            return HeadMoved("github", self.project, moved, operation="merge", status=409)
        if exc.status == 405:
            said = exc.host_message or "not mergeable"
            reason: Literal["base_modified", "method_not_allowed", "not_ready"]
            if said.lower().startswith("base branch was modified"):
                reason = "base_modified"
            elif "not allowed" in said.lower():
                reason = "method_not_allowed"
            else:
                reason = "not_ready"
            hint = (
                "Pick a merge method the repository allows (`merge_method`)."
                if reason == "method_not_allowed"
                else None
            )
            refused = f"GitHub did not merge {where}: {said}"
            return NotMergeable("github", self.project, refused, reason=reason, status=405, hint=hint)
        return exc

    def _remove_head(self, number: int) -> None:
        try:
            pr = self.get(number)
            self.delete_branch(pr.head_branch)
        except HostError as exc:
            log.warning("github %s: PR #%s merged; deleting its branch failed: %s", self.project, number, exc)

    def close(self, number: int) -> ChangeRequest:
        """Close without merging (a promotion the bot abandons)."""
        answer = self._t.write(
            "close pull request", "PATCH", f"{self._path}/pulls/{number}", {"state": "closed"}
        )
        return convert.pull_request(answer.data)

    def delete_branch(self, name: str) -> bool:
        """Delete `refs/heads/<name>` (204). False when it is already gone (404/422): GitHub may
        have deleted it on merge (`delete_branch_on_merge`)."""
        try:
            self._t.write("delete branch", "DELETE", f"{self._path}/git/refs/heads/{_ref(name)}")
        except (HostNotFound, HostRejected) as exc:
            if exc.status in (404, 422):
                return False
            raise
        return True
