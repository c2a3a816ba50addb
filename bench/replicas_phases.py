"""The three phases of bench/replicas.py that drive both bot processes: approvals, audited
commands, leader takeover. Each returns its figures; none asserts (the caller prints PASS / FAIL)."""

from __future__ import annotations

import itertools
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.replicas_world import APPROVERS, DEPLOYS, DRIFT, PASSWORD_ENV, REQUESTER, Replica, app_name
from sandbox.argocd_fake import FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_models import Message

APPROVE = "promotion_approve"
FINAL = ("committed", "failed", "rejected", "expired", "redundant", "superseded")
# What the losing click of a pair may be told (services/promotion/store.py `_why_not`, `approve`).
ALREADY = ("already approved", "already committed", "You already approved")


def _connect(url: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, password=password, autocommit=True)


def _wait(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def git_commits(bare: Path) -> int:
    done = subprocess.run(["git", "--git-dir", str(bare), "rev-list", "--count", "main"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


# -- 1. approvals, each clicked twice at once --------------------------------------------------------


@dataclass
class Approvals:
    requested: int = 0
    commits: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)  # promotions by final status
    outcomes: Counter[str] = field(default_factory=Counter)  # promotion_approve audit rows by outcome
    http: Counter[int] = field(default_factory=Counter)  # the clicks' HTTP statuses
    already: int = 0  # "already approved / committed" replies to the losing click
    errors: list[str] = field(default_factory=list)  # any other reply to an approver, or a stuck step

    @property
    def ok(self) -> bool:
        n = self.requested
        return (self.commits == n and self.outcomes["ok"] == n and self.statuses["committed"] == n
                and not self.errors and set(self.http) == {200})  # fmt: skip


def approvals(
    replicas: Sequence[Replica],
    slack: FakeSlack,
    url: str,
    password: str,
    bare: Path,
    count: int,
    workers: int,
) -> Approvals:
    """`count` prod promotions, one app each: requested on one replica (alternating), then the card's
    approve button pressed on both replicas at the same moment (a barrier), by the same approver for
    even apps and by both approvers for odd ones; each worker waits for the promotion to settle."""
    figures = Approvals(requested=count)
    before = git_commits(bare)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(count):
        todo.put(i)
    lock = threading.Lock()

    def worker() -> None:
        with _connect(url, password) as conn:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                problem = one_promotion(replicas, slack, conn, i, figures, lock)
                if problem:
                    with lock:
                        figures.errors.append(problem)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
    figures.seconds = time.perf_counter() - started
    figures.commits = git_commits(bare) - before
    with _connect(url, password) as conn:
        # A click's result row lands once its deploy is followed to the end: wait for the last ones.
        _wait(lambda: _unfinished(conn) == 0, 60, step=0.2)
        figures.statuses.update(dict(conn.execute("SELECT status, count(*) FROM promotions GROUP BY status")))
        failed = conn.execute("SELECT app, reason FROM promotions WHERE status <> 'committed' ORDER BY app")
        figures.errors.extend(f"{app}: promotion not committed: {reason}" for app, reason in failed)
        rows = conn.execute("SELECT outcome, count(*) FROM audit_events WHERE action = %s GROUP BY outcome",
                            [APPROVE])  # fmt: skip
        figures.outcomes.update(dict(rows))
    for message in slack.ephemeral():
        if message.visible_to in APPROVERS:
            if any(phrase in message.text for phrase in ALREADY):
                figures.already += 1
            else:
                figures.errors.append(f"to {message.visible_to}: {message.text[:160]}")
    return figures


def _unfinished(conn: psycopg.Connection[Any]) -> int:
    """`promotion_approve` requests whose `started` row has no result row yet."""
    row = conn.execute(
        "SELECT count(*) FROM audit_events s WHERE s.action = %s AND s.outcome = 'started' AND NOT EXISTS "
        "(SELECT 1 FROM audit_events r WHERE r.request_id = s.id)",
        [APPROVE],
    ).fetchone()
    return int(row[0]) if row else 0


def one_promotion(
    replicas: Sequence[Replica], slack: FakeSlack, conn: psycopg.Connection[Any], i: int, figures: Approvals,
    lock: threading.Lock,
) -> str | None:  # fmt: skip
    app = app_name(i)
    first, second = replicas[i % 2], replicas[(i + 1) % 2]
    assert first.sender is not None
    sent = first.sender.slash(f"promote {app} --to prod --from dev", user_id=REQUESTER, user_name="alice",
                              channel_id=DEPLOYS)  # fmt: skip
    if sent.status != 200:
        return f"{app}: promote answered HTTP {sent.status}"
    card: Message | None = None

    def card_posted() -> bool:
        nonlocal card
        row = conn.execute("SELECT message_ts FROM promotions WHERE app = %s AND message_ts IS NOT NULL",
                           [app]).fetchone()  # fmt: skip
        found = slack.find_message(DEPLOYS, str(row[0])) if row else None
        if found is not None and APPROVE in str(found.blocks):
            card = found
        return card is not None

    if not _wait(card_posted, 60):
        return f"{app}: no approval card within 60 s"
    assert card is not None
    users = (APPROVERS[0], APPROVERS[0]) if i % 2 == 0 else APPROVERS
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def click(replica: Replica, user: str) -> None:
        assert replica.sender is not None
        assert card is not None
        barrier.wait(timeout=30)
        codes.append(replica.sender.click(card, APPROVE, user_id=user, user_name=user.lower()[2:]).status)

    pair = [threading.Thread(target=click, args=(r, u)) for r, u in zip((first, second), users, strict=True)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    with lock:
        figures.http.update(codes)

    def settled() -> bool:
        row = conn.execute("SELECT status FROM promotions WHERE app = %s", [app]).fetchone()
        return row is not None and row[0] in FINAL

    return None if _wait(settled, 60, step=0.05) else f"{app}: not committed within 60 s of the clicks"


# -- 2. audited commands, one chain ------------------------------------------------------------------


@dataclass
class Commands:
    sent: int = 0
    seconds: float = 0.0
    answered: int = 0
    http_errors: int = 0
    busy: int = 0
    rows: int = 0  # audit rows in the database afterwards (all phases)
    verify_ok: bool = False
    verify_output: str = ""

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return self.verify_ok and self.rows >= self.sent and self.answered == self.sent and not self.busy


def commands(
    replicas: Sequence[Replica], url: str, password: str, users: Sequence[str], count: int, apps: int
) -> Commands:
    """`count` `/gitops status <app>` from len(users) concurrent senders, alternating replicas; each
    sender waits for its answer's audit row before the next (what a person does), so the bots'
    queues stay bounded and the rate measured is the pair's, not how fast requests can be queued."""
    figures = Commands(sent=count)
    per_user = [count // len(users) + (1 if k < count % len(users) else 0) for k in range(len(users))]
    lock = threading.Lock()
    turn = itertools.count()

    def sender(k: int) -> None:
        user = users[k]
        with _connect(url, password) as conn:
            for n in range(per_user[k]):
                replica = replicas[next(turn) % 2]
                assert replica.sender is not None
                sent = replica.sender.slash(f"status {app_name((k * 7 + n) % apps)}", user_id=user,
                                            user_name=user.lower(), channel_id=DEPLOYS)  # fmt: skip
                body = str((sent.json_body or {}).get("text", ""))
                if sent.status != 200 or "busy" in body.lower():
                    with lock:
                        figures.http_errors += sent.status != 200
                        figures.busy += "busy" in body.lower()
                    continue

                def answered(n: int = n) -> bool:
                    row = conn.execute("SELECT count(*) FROM audit_events WHERE user_id = %s AND action = %s",
                                       [user, "status"]).fetchone()  # fmt: skip
                    return row is not None and int(row[0]) > n

                if _wait(answered, 30, step=0.005):
                    with lock:
                        figures.answered += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(len(users)) as pool:
        for future in [pool.submit(sender, k) for k in range(len(users))]:
            future.result()
    figures.seconds = time.perf_counter() - started
    return figures


def verify_chain(figures: Commands, replica: Replica, env: dict[str, str], url: str, password: str) -> None:
    """`gitops-bot audit verify` as an operator runs it: the replica's config, the password in env."""
    done = subprocess.run(
        [*_cli(), "audit", "verify", "--config", "gitops-bot.yaml"], cwd=replica.workdir,
        env={**env, "HOME": str(replica.workdir), PASSWORD_ENV: password}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    figures.verify_ok = done.returncode == 0
    figures.verify_output = (done.stdout + done.stderr).strip()
    with _connect(url, password) as conn:
        row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        figures.rows = int(row[0]) if row else 0


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "bot.cli"]


# -- 3. leader takeover during drift scans -----------------------------------------------------------


@dataclass
class Takeover:
    drifting: int = 0
    posted_before: int = 0  # incident posts when the leader was killed
    posted_after: int = 0  # after the survivor's scans
    takeover: float = float("nan")  # seconds from kill -9 to the other replica saying leader: true
    scans_after: int = 0  # Argo CD list calls after the takeover (each scan makes one)
    leaders_before: int = 0
    limit: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.leaders_before == 1 and self.posted_before == self.drifting
                and self.posted_after == self.drifting and self.takeover <= self.limit)  # fmt: skip


def drift_posts(slack: FakeSlack) -> int:
    """New top-level messages in the drift channel (edits and thread replies are not posts)."""
    return sum(1 for c in slack.recorded("chat.postMessage")
               if c.ok and c.args.get("channel") == DRIFT and not c.args.get("thread_ts"))  # fmt: skip


def _scans(argocd: FakeArgoCD) -> int:
    return sum(1 for r in argocd.requests("/api/v1/applications") if r.path == "/api/v1/applications")


def takeover(
    replicas: Sequence[Replica], slack: FakeSlack, argocd: FakeArgoCD, drifting: int, limit: float,
    scans_after: int, post_timeout: float,
) -> tuple[Takeover, Replica | None]:  # fmt: skip
    """Wait for the leader's `drifting` incident posts, kill -9 it, time the other's takeover (its
    /readyz every 100 ms), let it scan `scans_after` times, count the posts again. Returns the
    figures and the survivor."""
    figures = Takeover(drifting=drifting, limit=limit)
    _wait(lambda: drift_posts(slack) >= drifting, post_timeout, step=0.5)
    leaders = [r for r in replicas if r.is_leader()]
    figures.leaders_before = len(leaders)
    figures.posted_before = drift_posts(slack)
    if len(leaders) != 1:
        return figures, None
    leader = leaders[0]
    survivor = next(r for r in replicas if r is not leader)
    killed = time.monotonic()
    leader.kill()
    while time.monotonic() - killed < limit + 30:
        if survivor.is_leader():
            figures.takeover = time.monotonic() - killed
            break
        time.sleep(0.1)
    scans = _scans(argocd)
    _wait(lambda: _scans(argocd) >= scans + scans_after, scans_after * 15 + 10, step=0.5)
    figures.scans_after = _scans(argocd) - scans
    time.sleep(1.0)  # the last scan's posts (if any) land
    figures.posted_after = drift_posts(slack)
    return figures, survivor
