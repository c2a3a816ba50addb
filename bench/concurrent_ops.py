"""Staying responsive while deployments run: statuses while 100 syncs are followed.

The bot runs as its own process (`gitops-bot run`, default configuration: 4 workers), against the
local fake Slack and a fake Argo CD whose syncs last 60 s, so its thread count and RSS are its own.
100 people each start a sync; while all 100 are being followed, 200 `status` commands on other
apps (20 at a time) and 50 identical `status` of one app whose Argo CD answers after 2 s arrive.

Targets: every status answered (its final message) within 1 s p99, the slow one within 2.5 s;
0 "busy"; all 100 sync messages end Succeeded; the bot's threads < 40 and RSS < 200 MB; the 50
identical statuses cost at most 2 Argo CD requests.

    .venv/bin/python bench/concurrent_ops.py [--syncs 100] [--statuses 200] [--identical 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.botproc import SECRET, argocd_config, spawn
from sandbox.argocd_fake import FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender

CHANNEL = "C0DEPLOYS"
# What the issue measured before the watcher (the old behaviour cannot be configured any more).
BEFORE = {"status final p99": "38 s (behind 8 syncs)", "busy": "132 of 200"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Sampler:
    """The bot process's thread count and peak RSS, from /proc, while the run lasts."""

    def __init__(self, pid: int) -> None:
        self.pid, self.threads, self.rss_kb = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                fields = dict(
                    line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                )
            except (OSError, ValueError):
                return
            self.threads = max(self.threads, int(fields["Threads"].strip()))
            self.rss_kb = max(self.rss_kb, int(fields["VmHWM"].split()[0]))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def start_bot(tmp: Path, slack: FakeSlack, argocd: FakeArgoCD) -> tuple[subprocess.Popen[str], int]:
    grants = "access: {grants: [{role: deployer, groups: [S0EVERYONE]}]}\n"
    proc = spawn(tmp, slack, argocd_config(tmp, argocd.base_url) + grants)
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "http server listening":
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
            return proc, int(record["port"])
    raise SystemExit("the bot did not start")


class Answers:
    """When each person got the answer containing `needle`: one thread scans Slack for everyone,
    so measuring does not load this process (it also runs both fakes)."""

    def __init__(self, slack: FakeSlack, needle: str) -> None:
        self.slack, self.needle = slack, needle
        self.sent: dict[str, float] = {}
        self.took: dict[str, float] = {}
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)
        self._thread.start()

    def asked(self, user: str) -> threading.Event:
        with self._lock:
            self.sent[user] = time.monotonic()
            return self._events.setdefault(user, threading.Event())

    def _scan(self) -> None:
        while not self._stop.wait(0.005):
            now = time.monotonic()
            answered = {m.visible_to for m in self.slack.ephemeral() if self.needle in m.text}
            with self._lock:
                for user in answered & self.sent.keys() - self.took.keys():
                    self.took[user] = now - self.sent[user]
                    self._events[user].set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--statuses", type=int, default=200)
    parser.add_argument("--identical", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each sync runs")
    args = parser.parse_args()
    users = [f"U0SYNC{i:04d}" for i in range(args.syncs)]
    users += [f"U0STAT{i:04d}" for i in range(args.statuses)] + [
        f"U0SAME{i:04d}" for i in range(args.identical)
    ]
    with tempfile.TemporaryDirectory() as tmp, FakeSlack().start() as slack:
        slack.add_usergroup("S0EVERYONE", "everyone", users)
        argocd = FakeArgoCD(operation_seconds=args.seconds, tick=0.2).start()
        argocd.bulk_add(args.syncs, prefix="sync-")
        argocd.bulk_add(args.statuses, prefix="app-")
        argocd.add_app("slow-app")
        argocd.set_latency(2.0, path="/api/v1/applications/slow-app")
        proc, port = start_bot(Path(tmp), slack, argocd)
        sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET, slack)
        try:
            with Sampler(proc.pid) as sampler:
                figures = run(args, slack, argocd, sender)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            argocd.stop()
        figures.update(bot_side(Path(tmp) / "audit.db"))
    report(figures, sampler)
    return 0


def run(
    args: argparse.Namespace, slack: FakeSlack, argocd: FakeArgoCD, sender: SlackSender
) -> dict[str, float]:
    def say(user: str, text: str) -> str:
        sent = sender.slash(text, user_id=user, user_name=user.lower(), channel_id=CHANNEL)
        return str((sent.json_body or {}).get("text", ""))

    with ThreadPoolExecutor(20) as pool:
        acks = list(pool.map(lambda i: say(f"U0SYNC{i:04d}", f"sync sync-{i:05d}"), range(args.syncs)))

    def running(f: FakeSlack) -> int:
        return sum(1 for m in f.messages(CHANNEL) if m.text.startswith("Sync sync-"))

    slack.wait_for(lambda f: running(f) >= args.syncs, timeout=120)
    argocd.clear_requests()
    answers = Answers(slack, "Healthy")

    def ask(user: str, app: str) -> str:
        """One person: asks, then waits for the answer (20 of them at a time: 20 in flight)."""
        done = answers.asked(user)
        ack = say(user, f"status {app}")
        done.wait(30)
        return ack

    with ThreadPoolExecutor(args.identical) as burst, ThreadPoolExecutor(20) as pool:
        slow_acks = burst.map(lambda i: ask(f"U0SAME{i:04d}", "slow-app"), range(args.identical))
        acks += list(pool.map(lambda i: ask(f"U0STAT{i:04d}", f"app-{i:05d}"), range(args.statuses)))
        acks += list(slow_acks)
    answers.close()
    fast = {u: t for u, t in answers.took.items() if u.startswith("U0STAT")}
    slow = {u: t for u, t in answers.took.items() if u.startswith("U0SAME")}
    slow_requests = len(argocd.requests("/api/v1/applications/slow-app"))
    deadline = time.monotonic() + args.seconds + 60
    succeeded = 0
    while time.monotonic() < deadline:
        cards = [m for m in slack.messages(CHANNEL) if m.text.startswith("Sync sync-")]
        succeeded = sum("Succeeded" in m.text for m in cards)
        if succeeded >= args.syncs:
            break
        time.sleep(0.5)
    return {
        "status answered": len(fast), "status total": args.statuses,
        "status p50": statistics_median(list(fast.values())),
        "status p99": percentile(list(fast.values()), 99) if fast else float("inf"),
        "slow answered": len(slow), "slow max": max(slow.values(), default=float("nan")),
        "slow requests": slow_requests, "busy": sum("busy" in a for a in acks),
        "succeeded": succeeded, "syncs": args.syncs,
    }  # fmt: skip


def bot_side(db: Path) -> dict[str, float]:
    """The bot's own time per status (its audit rows: from arrival to the answer), to tell it apart
    from the time this process — the client and both fakes, on the same two cores — adds."""
    conn = sqlite3.connect(db)
    try:
        rows = [
            r[0] / 1000 for r in conn.execute("SELECT duration_ms FROM audit_events WHERE action = 'status'")
        ]
    finally:
        conn.close()
    return {"bot p50": statistics_median(rows), "bot p99": percentile(rows, 99) if rows else float("nan")}


def statistics_median(values: list[float]) -> float:
    return percentile(values, 50) if values else float("nan")


def report(f: dict[str, float], sampler: Sampler) -> None:
    print(f"syncs followed: {int(f['syncs'])}, each running 60 s; statuses: {int(f['status total'])} "
          f"(20 at a time) + {int(f['slow answered'])} identical of an app answering after 2 s")  # fmt: skip
    answered = f"{int(f['status answered'])}/{int(f['status total'])} answered"
    print(f"status final message p50: {f['status p50'] * 1000:.0f} ms, p99: {f['status p99'] * 1000:.0f} ms "
          f"({answered}; before: {BEFORE['status final p99']})")  # fmt: skip
    print(f"  of which inside the bot (arrival to answer, its audit rows): p50 {f['bot p50'] * 1000:.0f} ms, "
          f"p99 {f['bot p99'] * 1000:.0f} ms")  # fmt: skip
    print(f"identical slow status, slowest final message: {f['slow max'] * 1000:.0f} ms; "
          f"Argo CD requests for that app: {int(f['slow requests'])}")  # fmt: skip
    print(f"busy answers: {int(f['busy'])} (before: {BEFORE['busy']})")
    print(f"sync messages ending Succeeded: {int(f['succeeded'])}/{int(f['syncs'])}")
    print(f"bot process: peak threads {sampler.threads}, peak RSS {sampler.rss_kb / 1024:.0f} MB")
    met = (
        f["status p99"] <= 1.0 and f["slow max"] <= 2.5 and f["busy"] == 0 and f["succeeded"] >= f["syncs"]
        and sampler.threads < 40 and sampler.rss_kb < 200 * 1024 and f["slow requests"] <= 2
        and f["status answered"] == f["status total"]
    )  # fmt: skip
    print(f"targets (status p99 <= 1 s, slow <= 2.5 s, 0 busy, all Succeeded, threads < 40, RSS < 200 MB, "
          f"<= 2 requests): {'met' if met else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
