"""The demo's Git host: a fake GitHub (Enterprise-style, under /api/v3) serving the deploy repository,
whose `prod` branch is protected, and a made-up CI that reports the required check on every pull
request's head.

Pushes to `prod` are refused with GitHub's GH006 text; a pull request into it needs one approving
review (from `reviewer`, the bot's second identity: GitHub refuses an author's own approval) and the
check `ci/web` passing. The CI marks each new head `in_progress` at once and, with `auto` on, passes
it CHECK_SECONDS later; `check-pass` / `check-fail` in the console decide at once instead.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bot.demo.config import GITHUB_PROJECT, PROD_BRANCH, REQUIRED_CHECK
from sandbox.github_fake import BOT_TOKEN, REVIEWER_TOKEN, FakeGitHub

log = logging.getLogger(__name__)
CHECK_SECONDS = 5.0  # how long the made-up CI "runs" on a new head when `auto` is on
POLL_SECONDS = 0.1

__all__ = ["BOT_TOKEN", "CHECK_SECONDS", "REVIEWER_TOKEN", "DemoGitHub", "PullView"]


@dataclass(frozen=True)
class PullView:
    """One pull request as the console lists it."""

    number: int
    title: str
    head_ref: str
    head_sha: str
    state: str  # open, closed, merged
    url: str


class DemoGitHub:
    def __init__(self, bare: Path) -> None:
        self.bare = bare
        self.fake = FakeGitHub(prefix="/api/v3")
        self.auto = True  # the CI passes each new head after CHECK_SECONDS
        self._seen: dict[str, float] = {}  # head SHA → when the CI started on it
        self._decided: dict[str, str] = {}  # head SHA → the check's conclusion, once completed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DemoGitHub:
        self.fake.start()
        self.fake.add_repo(GITHUB_PROJECT, self.bare, delete_branch_on_merge=False)
        self.fake.protect(
            GITHUB_PROJECT, PROD_BRANCH, required_checks=(REQUIRED_CHECK,), required_approving_review_count=1
        )
        self._thread = threading.Thread(target=self._loop, name="demo-github-ci", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.fake.stop()

    @property
    def api_url(self) -> str:
        return self.fake.api_url

    # -- the made-up CI ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.tick()
            except Exception:  # the CI thread must survive one bad read
                log.exception("the demo's CI could not report a check")

    def tick(self, now: float | None = None) -> None:
        """Start the check on heads not seen yet; with `auto`, pass those that ran long enough."""
        now = time.monotonic() if now is None else now
        for pull in self.pulls(only_open=True):
            with self._lock:
                started = self._seen.get(pull.head_sha)
                if started is None:
                    self._seen[pull.head_sha] = now
                    new = True
                else:
                    new = False
                due = self.auto and started is not None and now - started >= CHECK_SECONDS
            if new:
                self.fake.set_check(GITHUB_PROJECT, pull.head_sha, REQUIRED_CHECK, "in_progress", None)
            elif due:
                self._finish(pull.head_sha, "success")

    def _finish(self, sha: str, conclusion: str) -> bool:
        with self._lock:
            if sha in self._decided:
                return False
            self._decided[sha] = conclusion
            self._seen.setdefault(sha, time.monotonic())
        self.fake.set_check(GITHUB_PROJECT, sha, REQUIRED_CHECK, "completed", conclusion)
        return True

    def decide(self, number: int | None, conclusion: str) -> PullView:
        """`ci/web` completes now on the head of PR `number` (default: the newest open one)."""
        pull = self.pick(number)
        with self._lock:
            self._decided.pop(pull.head_sha, None)  # a re-run: the latest run counts on GitHub
        self._finish(pull.head_sha, conclusion)
        return pull

    # -- pull requests ---------------------------------------------------------------------------------

    def pulls(self, *, only_open: bool = False) -> list[PullView]:
        found = []
        for pull in self.fake.pulls(GITHUB_PROJECT):
            state = "merged" if pull.merged else pull.state
            if only_open and state != "open":
                continue
            url = f"{self.fake.base_url}/{GITHUB_PROJECT}/pull/{pull.number}"
            found.append(PullView(pull.number, pull.title, pull.head_ref, pull.head_sha, state, url))
        return found

    def pick(self, number: int | None) -> PullView:
        """PR `number`, or the newest open one; LookupError saying what there is otherwise."""
        pulls = self.pulls()
        if number is not None:
            for pull in pulls:
                if pull.number == number:
                    return pull
            raise LookupError(f"there is no PR #{number}" + _listed(pulls))
        open_ones = [p for p in pulls if p.state == "open"]
        if not open_ones:
            raise LookupError("no pull request is open (promote web to prod to open one)")
        return open_ones[-1]

    def close(self, number: int | None) -> PullView:
        """Closed on the website without merging, as a person would."""
        pull = self.pick(number)
        if pull.state != "open":
            raise LookupError(f"PR #{pull.number} is already {pull.state}")
        self.fake.close(GITHUB_PROJECT, pull.number)
        return pull

    def check_state(self, sha: str) -> str:
        """What `ci/web` says on `sha`: success, failure, running or not started."""
        with self._lock:
            if sha in self._decided:
                return self._decided[sha]
            return "running" if sha in self._seen else "not started"


def _listed(pulls: list[PullView]) -> str:
    if not pulls:
        return " (none was opened yet)"
    return " (there are " + ", ".join(f"#{p.number}" for p in pulls) + ")"
