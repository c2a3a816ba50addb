"""Why the remote refused a push, read from what git printed (docs: githost-api.md §4.2).

- protected: the branch only takes changes through a pull/merge request. GitHub's classic
  protection (`GH006`, ref status `protected branch hook declined`), GitHub's rulesets (`GH013`,
  `push declined due to repository rule violations`), GitLab (`GitLab: You are not allowed to push
  code to protected branches on this project.` with `pre-receive hook declined`).
- non_fast_forward: `! [rejected] … (fetch first)` / `(non-fast-forward)`: the branch moved; refetch
  and re-apply, never the PR route.
- rejected: anything else, including `pre-receive hook declined` without GitLab's text (any custom
  hook says that).

Only git's own words and the hosts' fixed texts are matched; they are stable because the git
service runs git with LC_ALL=C (env.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

RefusalKind = Literal["protected", "non_fast_forward", "rejected"]
Host = Literal["github", "gitlab"]

_GITHUB_CODE = re.compile(r"\b(GH006|GH013)\b")
_GITLAB_PROTECTED = re.compile(
    r"not allowed to (?:force )?push code to (?:a )?protected branch"
    r"|not allowed to merge code into protected branches"
    r"|only delete protected branches using the web interface"
    r"|not allowed to delete protected branches"
)
# The "(reason)" at the end of git's ref status line ("! [remote rejected] main -> main (…)"),
# or of the porcelain line GitPython reports ("[remote rejected] (…)").
_REMOTE_REJECTED = re.compile(r"\[remote rejected\][^(\n]*\(([^)\n]+)\)")
_RACE = re.compile(r"\[rejected\][^(\n]*\((fetch first|non-fast-forward)\)")
# Two pushes of the same branch at once: the remote's ref moved under the loser's update.
_REF_MOVED = re.compile(r"cannot lock ref '[^']+': is at [0-9a-f]+ but expected [0-9a-f]+")
_GITHUB_REASONS = {
    "protected branch hook declined": "GH006",
    "push declined due to repository rule violations": "GH013",
}
_REMOTE = re.compile(r"^\s*remote:\s?", re.IGNORECASE)


@dataclass(frozen=True)
class PushRefusal:
    """What a refused push means. `host` and `code` when the text names them (`GH006`, `GH013`);
    `reasons`: the host's own explanation lines ("Changes must be made through a pull request.");
    `ref_reason`: git's parenthesised ref status ("protected branch hook declined")."""

    kind: RefusalKind
    host: Host | None = None
    code: str | None = None
    reasons: tuple[str, ...] = ()
    ref_reason: str | None = None

    @property
    def protected(self) -> bool:
        return self.kind == "protected"


def _remote_lines(text: str) -> list[str]:
    """The host's lines (git prefixes them with `remote:`), unprefixed and stripped."""
    return [_REMOTE.sub("", line).strip() for line in text.splitlines() if _REMOTE.match(line)]


def _reasons(lines: list[str], host: Host | None) -> tuple[str, ...]:
    found: list[str] = []
    for line in lines:
        if host == "gitlab" and line.startswith("GitLab:"):
            found.append(line.removeprefix("GitLab:").strip())
        elif host == "github" and line.startswith("- "):
            found.append(line[2:].strip())  # today's layout: "- Changes must be made through a pull request."
        elif host == "github" and line.startswith("error:") and not _GITHUB_CODE.search(line):
            found.append(line.removeprefix("error:").strip())  # the older layout: "error: Changes must …"
    return tuple(r for r in found if r)


def classify_push_refusal(text: str) -> PushRefusal:
    """Classify git push's output (stderr, or GitPython's porcelain summary plus stderr lines)."""
    lines = _remote_lines(text)
    remote = "\n".join(lines)
    statuses = [m.group(1).strip() for m in _REMOTE_REJECTED.finditer(text)]
    ref_reason = statuses[0] if statuses else None
    code_match = _GITHUB_CODE.search(remote) or _GITHUB_CODE.search(text)
    github_status = next((s for s in statuses if s in _GITHUB_REASONS), None)
    if code_match is not None or github_status is not None:
        code = code_match.group(1) if code_match is not None else _GITHUB_REASONS[str(github_status)]
        return PushRefusal("protected", "github", code, _reasons(lines, "github"), ref_reason)
    if _GITLAB_PROTECTED.search(remote or text):
        return PushRefusal("protected", "gitlab", None, _reasons(lines, "gitlab"), ref_reason)
    if (_RACE.search(text) and not statuses) or _REF_MOVED.search(text):
        return PushRefusal("non_fast_forward", ref_reason=None)
    # `pre-receive hook declined` alone: any custom hook says it; not a reason to open a PR.
    return PushRefusal("rejected", None, None, tuple(line for line in lines if line), ref_reason)
