"""A client for GitLab's REST API v4 (gitlab.com or self-managed `/api/v4`), one project.

Contract: `contracts/gitlab/` (doc examples and endpoint table) and githost-api.md §1-§3, §6-§10.
The project is addressed by numeric id or URL-encoded path (`group%2Fsub%2Fproject`), MRs by
their per-project `iid`. Auth is `PRIVATE-TOKEN`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar
from urllib.parse import quote

from pydantic import SecretStr

from services.githost import gitlab_convert as convert
from services.githost import readiness as ready
from services.githost.client import HostClient
from services.githost.errors import (
    TWO_IDENTITIES_HINT,
    ApprovalRefused,
    DuplicateChangeRequest,
    HeadMoved,
    HostError,
    HostNotFound,
    HostPermissionDenied,
    HostRejected,
    HostUnauthorized,
    HostUserError,
    NotMergeable,
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
)
from services.githost.raw import num, obj, objs, text

log = logging.getLogger(__name__)

_PER_PAGE = ("per_page", "100")
TITLE_LIMIT = 255  # as Image Updater truncates


def _seg(value: str) -> str:
    # GitLab wants `/` inside a path segment encoded (project paths, branch names).
    return quote(value, safe="")


class GitLabClient(HostClient):
    """GitLab merge requests of one project, as the bot's identity (`approve_token`: see §7 —
    the author may not approve its own MR when `merge_requests_author_approval` is off)."""

    kind: HostKind = "gitlab"
    _headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}

    def _bind(self, project: str | int) -> str:
        name = str(project).strip("/")
        if not name:
            raise ValueError("GitLab project must be a numeric id or a `group/project` path")
        self._path = f"/projects/{_seg(name)}"
        return name

    @staticmethod
    def _auth(token: SecretStr) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token.get_secret_value()}

    def _mr(self, iid: int) -> str:
        return f"{self._path}/merge_requests/{iid}"

    # -- protection (§4.1) ----------------------------------------------------------------------

    def get_protected_branch(self, name: str) -> BranchProtection | None:
        """The protection named exactly `name` (which may itself be a wildcard), or None (404)."""
        try:
            data = self._t.get("get protected branch", f"{self._path}/protected_branches/{_seg(name)}").data
        except HostNotFound:
            return None
        return convert.protected_branch(name, data)

    def protection(self, branch: str) -> BranchProtection:
        """Exact protection first, then wildcard rules (`release/*`) from the list."""
        exact = self.get_protected_branch(branch)
        if exact is not None:
            return exact
        rules = self._t.get_all(
            "list protected branches", f"{self._path}/protected_branches", [_PER_PAGE], missing="repo"
        )
        for rule in objs(rules):
            pattern = text(rule, "name")
            if pattern and fnmatch.fnmatchcase(branch, pattern):
                return convert.protected_branch(branch, rule)
        return BranchProtection(branch=branch, protected=False)

    # -- merge requests (§6) --------------------------------------------------------------------

    def find_open(self, head_branch: str, base_branch: str) -> ChangeRequest | None:
        params = [
            ("state", "opened"),
            ("source_branch", head_branch),
            ("target_branch", base_branch),
            _PER_PAGE,
        ]
        listed = self._t.get_all(
            "list merge requests", f"{self._path}/merge_requests", params, missing="repo"
        )
        found = [mr for mr in map(convert.merge_request, listed) if mr.head_branch == head_branch]
        return self.get(min(mr.number for mr in found)) if found else None

    def create(
        self,
        head_branch: str,
        base_branch: str,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        reviewers: Sequence[str] = (),
        remove_source_branch: bool = True,
    ) -> ChangeRequest:
        """Open the MR (labels in the same call; unknown ones are created), or adopt the open one
        for the same source branch (409, or an unknown outcome that a re-read resolves).

        `reviewers` must be numeric GitLab user ids (`reviewer_ids`): usernames would need the
        users API, which is outside the contract.
        """
        payload: dict[str, object] = {
            "source_branch": head_branch,
            "target_branch": base_branch,
            "title": title[:TITLE_LIMIT],
            "description": body,
            "remove_source_branch": remove_source_branch,
        }
        if labels:
            payload["labels"] = ",".join(labels)
        if reviewers:
            if not all(r.isdigit() for r in reviewers):
                raise HostUserError(
                    "gitlab",
                    self.project,
                    "GitLab reviewers must be numeric user ids",
                    operation="create merge request",
                    hint="Use the user ids shown on each GitLab profile page.",
                )
            payload["reviewer_ids"] = [int(r) for r in reviewers]
        try:
            answer = self._t.write(
                "create merge request", "POST", f"{self._path}/merge_requests", payload, missing="repo"
            )
        except HostRejected as exc:
            if exc.status != 409:  # the text may be localised: key on the status (§6.3)
                raise
            adopted = self.find_open(head_branch, base_branch)
            if adopted is None:
                raise DuplicateChangeRequest(
                    "gitlab",
                    self.project,
                    f"GitLab says an MR from `{head_branch}` already exists, "
                    f"but none is open into `{base_branch}`",
                    operation="create merge request",
                    status=409,
                ) from None
            log.info("gitlab %s: adopted open MR !%s for %s", self.project, adopted.number, head_branch)
            return adopted
        except WriteOutcomeUnknown:
            adopted = self.find_open(head_branch, base_branch)
            if adopted is None:
                raise
            return adopted
        return convert.merge_request(answer.data)

    def get(self, number: int) -> ChangeRequest:
        """The MR; a GET is also what makes GitLab recheck mergeability (§6.4)."""
        return convert.merge_request(self._t.get("get merge request", self._mr(number)).data)

    def comment(self, number: int, body: str) -> str:
        """A note on the MR; its URL. (The notes API was not re-read for the contract.)"""
        answer = self._t.write("comment", "POST", f"{self._mr(number)}/notes", {"body": body})
        note = num(obj(answer.data), "id")
        return f"{self.get(number).url}#note_{note}" if note is not None else ""

    def approvals(self, number: int) -> Approvals:
        return convert.approvals(self._t.get("get approvals", f"{self._mr(number)}/approvals").data)

    def approve(self, number: int, head_sha: str, body: str = "") -> None:
        """Approve as the approver identity, bound to `head_sha`; `body` becomes a note.

        Call it only once `Readiness` is not `wait`: an approval given while GitLab is still
        `checking` or `approvals_syncing` can be reset by the commit being processed (§6.5).
        """
        try:
            self._approver.write("approve", "POST", f"{self._mr(number)}/approve", {"sha": head_sha})
        except HostRejected as exc:
            if exc.status == 409:
                moved = f"MR !{number} moved since {head_sha[:12]} was shown; not approved"
                raise HeadMoved("gitlab", self.project, moved, operation="approve", status=409) from None
            raise
        except (HostUnauthorized, HostPermissionDenied) as exc:
            # 401 here comes from the approval service (not an eligible approver, the author…).
            raise ApprovalRefused(
                "gitlab",
                self.project,
                f"GitLab refused the approval of MR !{number} (HTTP {exc.status})",
                operation="approve",
                status=exc.status,
                hint=TWO_IDENTITIES_HINT,
            ) from None
        if body:
            try:
                self.comment(number, body)
            except HostError as exc:
                log.warning("gitlab %s: MR !%s approved; the note failed: %s", self.project, number, exc)

    def pipelines(self, number: int) -> tuple[Check, ...]:
        listed = self._t.get_all("list pipelines", f"{self._mr(number)}/pipelines", [_PER_PAGE])
        return tuple(check for check in map(convert.pipeline, listed) if check is not None)

    def head_pipeline(self, number: int) -> Check | None:
        return convert.head_pipeline(self._t.get("get merge request", self._mr(number)).data)

    def checks(self, cr: ChangeRequest) -> tuple[Check, ...]:
        """The head pipeline (the MR's own), else the newest of the MR's pipelines."""
        head = self.head_pipeline(cr.number)
        if head is not None:
            return (head,)
        return self.pipelines(cr.number)[:1]

    def readiness(self, cr: ChangeRequest) -> Readiness:
        """§6.4; reads the approvals or the pipeline only to say what is missing."""
        if cr.state != "open":
            return ready.gitlab(cr)
        if cr.merge_state == "not_approved":
            return ready.gitlab(cr, approvals=self.approvals(cr.number))
        if cr.merge_state == "ci_must_pass":
            return ready.gitlab(cr, pipeline=self.head_pipeline(cr.number))
        return ready.gitlab(cr)

    def update_branch(self, cr: ChangeRequest) -> None:
        """Rebase the source branch (202; runs in the background): the head moves."""
        self._t.write("rebase", "PUT", f"{self._mr(cr.number)}/rebase")

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
        """Merge with `sha` as precondition (§6.7); GitLab only knows merge commits and squash.

        `title` and `message` become the commit message (GitLab has one field).
        """
        if method == "rebase":
            raise HostUserError(
                "gitlab",
                self.project,
                "GitLab's merge API only supports `merge` and `squash`",
                operation="merge",
                hint="Set `merge_method` to merge or squash for this repository.",
            )
        payload: dict[str, object] = {
            "sha": sha,
            "should_remove_source_branch": remove_branch,
            "squash": method == "squash",
        }
        commit_message = "\n\n".join(part for part in (title, message) if part)
        if commit_message:
            payload["squash_commit_message" if method == "squash" else "merge_commit_message"] = (
                commit_message
            )
        try:
            mr = convert.merge_request(
                self._t.write("merge", "PUT", f"{self._mr(number)}/merge", payload).data
            )
        except (HostRejected, HostUnauthorized) as exc:
            raise self._merge_refusal(number, sha, exc) from None
        except WriteOutcomeUnknown:
            mr = self.get(number)
            if mr.state != "merged":
                raise
        said = "merged" if mr.state == "merged" else f"accepted, MR is {mr.state} ({mr.merge_state})"
        return MergeResult(merged=mr.state == "merged", sha=mr.merge_commit_sha, message=said)

    def _merge_refusal(self, number: int, sha: str, exc: HostError) -> HostError:
        where = f"MR !{number}"
        if isinstance(exc, HostUnauthorized):
            denied = f"the bot's token may not merge {where} in `{self.project}`"
            return HostPermissionDenied("gitlab", self.project, denied, operation="merge", status=401)
        if exc.status == 409:
            moved = f"{where}: its head moved since {sha[:12]} was approved; not merged"
            return HeadMoved("gitlab", self.project, moved, operation="merge", status=409)
        if exc.status in (405, 406):
            refused = f"GitLab cannot merge {where} now (HTTP {exc.status})"
            return NotMergeable("gitlab", self.project, refused, reason="not_ready", status=exc.status)
        if exc.status == 422:
            refused = f"GitLab tried to merge {where} and failed (Branch cannot be merged)"
            return NotMergeable("gitlab", self.project, refused, reason="failed", status=422)
        return exc

    def close(self, number: int) -> ChangeRequest:
        answer = self._t.write("close merge request", "PUT", self._mr(number), {"state_event": "close"})
        return convert.merge_request(answer.data)

    def delete_branch(self, name: str) -> bool:
        """Delete a branch (204); False when already gone. Outside the contract's endpoint table."""
        try:
            self._t.write("delete branch", "DELETE", f"{self._path}/repository/branches/{_seg(name)}")
        except HostNotFound:
            return False
        return True
