"""Protected branches in the sandbox's bare repositories: pushes refused with the texts real hosts print.

`install(bare)` once, then `protect(bare, "main", style=…)` / `unprotect(bare, "main")` whenever a
test likes: the rules live in a JSON file next to the repository that the hooks read on every push.
Server-side writes (the fake hosts' merges, `git update-ref` in the bare repository) run no receive
hooks, so they bypass the protection exactly as a host's own merge button does.

What a push refused here looks like, and how close it is to the real thing:

- `gitlab`: a `pre-receive` hook prints `GitLab: You are not allowed to push code to protected
  branches on this project.` (or the force-push / delete sibling from gitlabhq
  `lib/gitlab/checks/branch_check.rb`); git prints it as `remote: GitLab: …` and the ref status
  `! [remote rejected] main -> main (pre-receive hook declined)`. GitLab refuses from a pre-receive
  hook too, so this is byte for byte what a GitLab push prints (bar the `To <url>` line).
- `github` (classic protection, GH006) and `github-ruleset` (GH013): a stock pre-receive hook can
  only make git print `(pre-receive hook declined)`. GitHub's ref status reasons (`protected branch
  hook declined`, `push declined due to repository rule violations`) come from its own server, in
  the report-status packet (`ng refs/heads/main protected branch hook declined`). git's
  `proc-receive` hook (git >= 2.29) answers exactly that packet, so these rules are enforced by a
  `proc-receive` hook, enabled through `receive.procReceiveRefs` only while the repository has a
  GitHub-style rule; pushes it allows are handed back to receive-pack (`option fall-through`). The
  client then prints GitHub's `remote: error: GH006: …` lines and its ref status verbatim.
- `hook`: any other pre-receive refusal (a custom hook with its own message): git prints
  `(pre-receive hook declined)` with no host text, which a classifier must treat as "rejected,
  reason unknown", not as protection.

Not reproduced: GitHub's `remote: Resolving deltas` progress, the `Bypassed rule violations` notice
admins get, rules that depend on who pushes (every pusher is refused alike), and required-status
checks evaluated per commit (the reason lines are whatever the rule says).

This module is also the hook: the installed scripts run it with the standard library only.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, get_args

Style = Literal["github", "github-ruleset", "gitlab", "hook"]
STYLES: tuple[str, ...] = get_args(Style)
RULES_FILE = "sandbox-protection.json"
ZERO = "0" * 40

# The reason each style makes git print after `! [remote rejected] <src> -> <dst>`.
REF_REASONS: Mapping[str, str] = {
    "github": "protected branch hook declined",
    "github-ruleset": "push declined due to repository rule violations",
    "gitlab": "pre-receive hook declined",
    "hook": "pre-receive hook declined",
}
_DEFAULT_REASONS: Mapping[str, tuple[str, ...]] = {
    "github": ("Changes must be made through a pull request.",),
    "github-ruleset": ("Changes must be made through a pull request.",),
    "gitlab": ("You are not allowed to push code to protected branches on this project.",),
    "hook": ("Push refused by a custom pre-receive hook.",),
}
# What each host says instead when the update is a force push or a deletion.
_FORCE = {
    "github": "Cannot force-push to a protected branch.",
    "github-ruleset": "Cannot force-push to this branch",
    "gitlab": "You are not allowed to force push code to a protected branch on this project.",
}
_DELETE = {
    "github": "Cannot delete this protected branch",
    "github-ruleset": "Cannot delete this branch",
    "gitlab": "You can only delete protected branches using the web interface.",
}
_PROC_RECEIVE_KEY = "receive.procReceiveRefs"


@dataclass(frozen=True)
class Protection:
    """One rule: branches matching `pattern` (fnmatch, like GitLab's `release/*`) refuse pushes.

    `reasons`: the lines after the headline (GitHub: `- …` items; GitLab: the message itself);
    empty means the style's usual "through a pull request" text. `force_push_only`: ordinary
    fast-forward pushes pass, only force pushes and deletions are refused. `html_url`: the
    repository's web address, for GH013's "Review all repository rules at …" line."""

    pattern: str
    style: Style = "github"
    reasons: tuple[str, ...] = ()
    force_push_only: bool = False
    html_url: str = "https://github.com/sandbox/deploy"

    def lines(self, ref: str, *, force: bool, delete: bool) -> list[str]:
        """What the host prints (before git's `remote: ` prefix) when it refuses `ref`."""
        special = _DELETE if delete else _FORCE if force else {}
        reasons = [special[self.style]] if self.style in special else list(self.reasons)
        reasons = reasons or list(_DEFAULT_REASONS[self.style])
        if self.style == "gitlab":
            return [f"GitLab: {reasons[0]}"]
        if self.style == "hook":
            return reasons
        if self.style == "github":
            head = [f"error: GH006: Protected branch update failed for {ref}."]
        else:
            quoted = ref.replace("/", "%2F")
            head = [
                f"error: GH013: Repository rule violations found for {ref}.",
                f"Review all repository rules at {self.html_url}/rules?ref={quoted}",
            ]
        body: list[str] = []
        for reason in reasons:
            body += ["", f"- {reason}"]
        return [*head, *body, ""]


# -- the test side: install, protect, unprotect --------------------------------------------------------


def _git(bare: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(
        ["git", "--git-dir", str(bare), *args], env=env, capture_output=True, text=True, check=check
    )


def _script(bare: Path, mode: str) -> str:
    me, rules = Path(__file__).resolve(), (bare / RULES_FILE).resolve()
    # -I: no user site or PYTHON* variables; the hook needs nothing but the standard library.
    return f'#!/bin/sh\nexec "{sys.executable}" -I "{me}" {mode} "{rules}"\n'


def install(bare: Path) -> None:
    """Put the hooks into the bare repository `bare` (no rule yet: every push passes)."""
    hooks = bare / "hooks"
    hooks.mkdir(exist_ok=True)
    for mode in ("pre-receive", "proc-receive"):
        hook = hooks / mode
        hook.write_text(_script(bare, mode))
        hook.chmod(0o755)
    if not (bare / RULES_FILE).exists():
        _save(bare, {})


def protections(bare: Path) -> dict[str, Protection]:
    """The rules in force, by pattern."""
    return _load(bare / RULES_FILE)


def protect(
    bare: Path,
    pattern: str,
    *,
    style: Style = "github",
    reasons: Sequence[str] = (),
    force_push_only: bool = False,
    html_url: str = "https://github.com/sandbox/deploy",
) -> Protection:
    """Refuse pushes to branches matching `pattern` from now on (installs the hooks if needed)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}")
    if not (bare / "hooks" / "proc-receive").exists():
        install(bare)
    rule = Protection(pattern, style, tuple(reasons), force_push_only, html_url)
    rules = protections(bare)
    rules[pattern] = rule
    _save(bare, rules)
    return rule


def unprotect(bare: Path, pattern: str) -> None:
    """Drop the rule for `pattern` (nothing happens if there is none)."""
    rules = protections(bare)
    rules.pop(pattern, None)
    _save(bare, rules)


def _save(bare: Path, rules: Mapping[str, Protection]) -> None:
    path = bare / RULES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({p: asdict(r) for p, r in rules.items()}, indent=1))
    tmp.replace(path)  # a push reading the file mid-write sees the old rules or the new, whole
    # The proc-receive hook only sees branch pushes while a GitHub-style rule exists, so a repository
    # without one behaves exactly like plain git.
    wanted = any(r.style.startswith("github") for r in rules.values())
    have = _git(bare, "config", "--get-all", _PROC_RECEIVE_KEY, check=False).stdout.split()
    if wanted and have != ["refs/heads/"]:
        _git(bare, "config", "--replace-all", _PROC_RECEIVE_KEY, "refs/heads/")
    elif not wanted and have:
        _git(bare, "config", "--unset-all", _PROC_RECEIVE_KEY)


def _load(path: Path) -> dict[str, Protection]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {p: Protection(**{**r, "reasons": tuple(r.get("reasons", ()))}) for p, r in raw.items()}


# -- the hook side ---------------------------------------------------------------------------------


@dataclass
class _Update:
    old: str
    new: str
    ref: str
    lines: list[str] = field(default_factory=list)

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/") :] if self.ref.startswith("refs/heads/") else None


def _refusal(rules: Mapping[str, Protection], update: _Update, styles: Sequence[str]) -> Protection | None:
    """The rule (of `styles`) that refuses `update`, if any."""
    branch = update.branch
    if branch is None:
        return None
    for rule in rules.values():
        if rule.style not in styles or not fnmatch.fnmatchcase(branch, rule.pattern):
            continue
        if not rule.force_push_only or _forced(update) or update.new == ZERO:
            return rule
    return None


def _forced(update: _Update) -> bool:
    if update.old == ZERO or update.new == ZERO:
        return False
    # The hook's environment points git at the pushed objects (quarantine included).
    done = subprocess.run(["git", "merge-base", "--is-ancestor", update.old, update.new], check=False)
    return done.returncode != 0


def _lines_for(rule: Protection, update: _Update) -> list[str]:
    forced = update.new != ZERO and _forced(update)
    return rule.lines(update.ref, force=forced, delete=update.new == ZERO)


def _pre_receive(rules: Mapping[str, Protection]) -> int:
    for line in sys.stdin:
        old, new, ref = line.split()
        update = _Update(old, new, ref)
        rule = _refusal(rules, update, ("gitlab", "hook"))
        if rule is not None:
            # Like GitLab: the first violation ends the check; every ref of the push is declined.
            sys.stderr.write("".join(f"{text}\n" for text in _lines_for(rule, update)))
            return 1
    return 0


def _read_pkt(stream: BinaryIO) -> bytes | None:
    """One pkt-line payload; None at a flush packet or the end of input."""
    size = stream.read(4)
    if len(size) < 4 or size == b"0000":
        return None
    return stream.read(int(size, 16) - 4)


def _write_pkt(stream: BinaryIO, text: str) -> None:
    data = text.encode()
    stream.write(b"%04x" % (len(data) + 4) + data)


def _proc_receive(rules: Mapping[str, Protection]) -> int:
    """git's proc-receive protocol (githooks(5)): version, then commands, then one result each."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while _read_pkt(stdin) is not None:  # version=1 and the server's features
        pass
    _write_pkt(stdout, "version=1\0")  # no features: no push options follow the commands
    stdout.write(b"0000")
    stdout.flush()
    updates: list[_Update] = []
    while (payload := _read_pkt(stdin)) is not None:
        old, new, ref = payload.decode().split()
        updates.append(_Update(old, new, ref))
    for update in updates:
        rule = _refusal(rules, update, ("github", "github-ruleset"))
        if rule is None:
            _write_pkt(stdout, f"ok {update.ref}")
            _write_pkt(stdout, "option fall-through")  # receive-pack updates the ref as usual
            continue
        sys.stderr.write("".join(f"{text}\n" for text in _lines_for(rule, update)))
        _write_pkt(stdout, f"ng {update.ref} {REF_REASONS[rule.style]}")
    stdout.write(b"0000")
    stdout.flush()
    return 0


def main(argv: Sequence[str]) -> int:
    mode, rules_file = argv[0], Path(argv[1])
    rules = _load(rules_file)
    if mode == "pre-receive":
        return _pre_receive(rules)
    if mode == "proc-receive":
        return _proc_receive(rules)
    sys.stderr.write(f"git_protect: unknown hook {mode}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
