"""The deployment feed under load: 5,000 Argo CD apps, 200 auto-sync deploys a minute for 10 minutes.

The bot runs as its own process (`gitops-bot run`) with `feed.routes` sending each app to one of 10
team channels by its `team` label (`feed.pace` stays at its default, 1 s per channel); the fake
Slack and the fake Argo CD (5,000 auto-sync apps) run in this process. A timer thread pushes a new
revision to one app every 60/rate seconds, teams in turn; the fake's controller auto-syncs it and
the bot learns of it only through `GET /api/v1/stream/applications`.

Figures, side by side: deploys made vs messages posted, duplicates (one app and revision posted
twice), missing; post latency from the moment the fake finished the operation (taken inside the fake
as it happens, not from Argo CD's one-second timestamps) to the moment the fake Slack stored the
message (its ts); the bot's RSS (peak, end) and threads from /proc; stream connections opened; the
bot's CPU seconds.

Targets: every deploy posted exactly once, p99 <= 5 s, RSS <= 200 MB, one stream connection.
Exits 1 when one is missed.

    .venv/bin/python bench/feed.py [--apps 5000] [--rate 200] [--minutes 10] [--teams 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.botproc import argocd_config, spawn
from sandbox.argocd_fake import FakeArgoCD
from sandbox.argocd_state import AppRecord
from sandbox.slack_api import FakeSlack

STREAM_PATH = "/api/v1/stream/applications"
TERMINAL = frozenset({"Succeeded", "Failed", "Error"})
# The feed message's fallback text (handlers/feed/views.entry_card): "<app>[ → <env>]: deployed <sha7>".
POSTED = re.compile(r"^(?P<app>[^\s:]+)(?: → \S+)?: deployed (?P<sha>[0-9a-f]+)$")
TARGETS = "exactly once in the team's channel, post p99 <= 5 s, RSS <= 200 MB, 1 stream connection"


@dataclass(frozen=True)
class Options:
    apps: int = 5000
    rate: float = 200.0  # deploys per minute
    minutes: float = 10.0
    teams: int = 10  # feed channels, one per `team` label
    operation_seconds: float = 2.0  # how long the fake's sync runs
    drain: float = 60.0  # how long to wait for the last posts after the last deploy finished
    ready_timeout: float = 300.0  # the bot started and the initial snapshot read


def channel_of(team: int) -> str:
    return f"C0FEEDT{team:02d}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


class Finishes:
    """When each operation finished, seen inside the fake: a listener on its store, called with the
    store's lock held on every change (the watch streams' own feed), so it costs one dict look-up."""

    def __init__(self, argocd: FakeArgoCD) -> None:
        self.at: dict[tuple[str, str], tuple[float, str]] = {}  # (app, revision) → (time, phase)
        argocd.on_change(self._changed)

    def _changed(self, kind: str, record: AppRecord) -> None:
        if record.run is not None:
            return  # running (or queued): not finished
        state = record.app["status"].get("operationState") or {}
        phase = state.get("phase")
        if phase in TERMINAL and state.get("finishedAt"):
            revision = str((state.get("syncResult") or {}).get("revision") or "")
            self.at.setdefault((record.name, revision), (time.time(), str(phase)))


class Deployer:
    """Pushes one revision every 60/rate s from a timer thread (due times, not sleeps, so a slow
    push does not stretch the run), teams in turn, each app at most once while apps last."""

    def __init__(self, argocd: FakeArgoCD, order: list[str], *, rate: float, count: int) -> None:
        self.argocd, self.order, self.rate, self.count = argocd, order, rate, count
        self.pushed: dict[tuple[str, str], float] = {}  # (app, sha) → when pushed
        self.late = 0.0  # the most a push fell behind its due time
        self._thread = threading.Thread(target=self._run, name="bench-deployer", daemon=True)

    def start(self) -> Deployer:
        self._thread.start()
        return self

    def _run(self) -> None:
        start, interval = time.monotonic(), 60.0 / self.rate
        for k in range(self.count):
            due = start + k * interval
            time.sleep(max(0.0, due - time.monotonic()))
            self.late = max(self.late, time.monotonic() - due)
            app = self.order[k % len(self.order)]
            sha = self.argocd.push_revision(
                app, image=f"registry.example.com/{app}:2.{k // len(self.order)}.{k}", message=f"deploy {k}"
            )
            self.pushed[(app, sha)] = time.time()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


@dataclass
class ProcStats:
    rss_peak_kb: int = 0
    rss_kb: int = 0
    threads_peak: int = 0
    threads: int = 0
    cpu_seconds: float = 0.0


class Sampler:
    """The bot process's RSS, threads and CPU time from /proc, twice a second."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval, self.stats = pid, interval, ProcStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        s = self.stats
        s.rss_kb = int(fields["VmRSS"].split()[0])
        s.rss_peak_kb = max(s.rss_peak_kb, int(fields["VmHWM"].split()[0]))
        s.threads = int(fields["Threads"])
        s.threads_peak = max(s.threads_peak, s.threads)
        ticks = stat.rpartition(")")[2].split()  # after the command name: fields 3… (state is [0])
        s.cpu_seconds = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def close(self) -> ProcStats:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sample()  # the figures at the end, before the process is stopped
        return self.stats


class BotLog:
    """Drains the bot's stdout (JSON lines); keeps its warnings and errors for the report."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.port: int | None = None
        self.problems: list[str] = []
        self.ready_at = 0  # problems before this index were logged while starting (config notices)
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-botlog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.port is None or '"WARNING"' in line or '"ERROR"' in line:
                self._read(line)
        self._listening.set()  # the process ended

    def _read(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if record.get("message") == "http server listening":
            self.port = int(record["port"])
            self._listening.set()
        elif record.get("level") in ("WARNING", "ERROR"):
            self.problems.append(f"{record.get('level')} {record.get('message')} {record.get('error', '')}")

    def wait_listening(self, timeout: float) -> None:
        if not self._listening.wait(timeout) or self.port is None:
            raise SystemExit("the bot did not start")


def start_bot(
    tmp: Path, slack: FakeSlack, argocd: FakeArgoCD, teams: int
) -> tuple[subprocess.Popen[str], BotLog]:
    routes = ", ".join(f"{{channel: {channel_of(t)}, labels: ['team=team-{t}']}}" for t in range(teams))
    # feed.pace: the default (1 s per channel)
    proc = spawn(tmp, slack, argocd_config(tmp, argocd.base_url) + f"feed: {{routes: [{routes}]}}\n")
    log = BotLog(proc)
    log.wait_listening(60)
    return proc, log


def wait_ready(db: Path, argocd: FakeArgoCD, apps: int, timeout: float) -> float:
    """Until the bot has its stream open and a cursor for every app (the snapshot replay read and
    stored): deploys made before that would be a baseline, not news. Seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if argocd.open_streams() and db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    count = int(conn.execute("SELECT COUNT(*) FROM feed_cursors").fetchone()[0])
            except sqlite3.Error:
                count = 0
            if count >= apps:
                return time.monotonic() - start
        time.sleep(0.25)
    raise SystemExit(f"the bot did not read the {apps} apps within {timeout:.0f} s")


@dataclass
class Figures:
    pushed: int = 0
    made: int = 0  # operations the fake finished Succeeded at a revision this run pushed
    failed: int = 0
    posted: int = 0  # feed deploy messages posted
    duplicates: int = 0  # posts beyond the first for one app and revision
    missing: int = 0
    unexpected: int = 0  # posts naming no deploy of this run
    misrouted: int = 0  # posts not in the app's team channel
    latencies: list[float] = field(default_factory=list)
    streams: int = 0
    apps: int = 0
    ready_seconds: float = 0.0
    cpu_at_ready: float = 0.0  # the bot's CPU seconds to start and read the initial snapshot
    bench_cpu: float = 0.0  # this process: both fakes and the bench
    deploy_seconds: float = 0.0
    late: float = 0.0
    proc: ProcStats = field(default_factory=ProcStats)
    problems: list[str] = field(default_factory=list)  # the bot's warnings and errors once ready

    def missed(self) -> list[str]:
        missed = []
        if self.made < self.pushed or self.duplicates or self.missing or self.unexpected:
            missed.append("exactly once")
        if not self.latencies or percentile(self.latencies, 99) > 5.0:
            missed.append("post p99")
        if self.proc.rss_peak_kb > 200 * 1024:
            missed.append("RSS")
        if self.misrouted:
            missed.append("routing")
        if self.streams != 1:
            missed.append("stream connections")
        return missed


def posts(slack: FakeSlack) -> list[tuple[str, str, float, str]]:
    """(app, short revision, when Slack stored it, channel) of every feed deploy message."""
    found = []
    for call in slack.recorded("chat.postMessage"):
        matched = POSTED.match(str(call.args.get("text", ""))) if call.ok else None
        if matched is not None:
            found.append(
                (matched["app"], matched["sha"], float(call.response["ts"]), str(call.args["channel"]))
            )
    return found


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def run(options: Options, progress: Callable[[str], None] = lambda _: None) -> Figures:
    """The benchmark's core: the world, the bot, the deploys, the figures."""
    count = round(options.rate * options.minutes)
    per_team = max(1, options.apps // options.teams)
    with tempfile.TemporaryDirectory() as tmp, FakeSlack().start() as slack:
        argocd = FakeArgoCD(operation_seconds=options.operation_seconds, tick=0.1).start()
        teams = [
            argocd.bulk_add(per_team, prefix=f"t{t:02d}-", auto_sync=True, labels={"team": f"team-{t}"})
            for t in range(options.teams)
        ]
        order = [teams[t][i] for i in range(per_team) for t in range(options.teams)]  # teams in turn
        finishes = Finishes(argocd)
        db = Path(tmp) / "audit.db"
        proc, log = start_bot(Path(tmp), slack, argocd, options.teams)
        sampler = Sampler(proc.pid)
        figures = Figures()
        try:
            figures.ready_seconds = wait_ready(db, argocd, per_team * options.teams, options.ready_timeout)
            log.ready_at = len(log.problems)
            sampler.sample()
            figures.apps, figures.cpu_at_ready = per_team * options.teams, sampler.stats.cpu_seconds
            progress(f"bot ready: {per_team * options.teams} apps read in {figures.ready_seconds:.1f} s")
            started = time.monotonic()
            deployer = Deployer(argocd, order, rate=options.rate, count=count).start()
            while deployer.running:
                deployer.join(timeout=60)
                rss = sampler.stats.rss_kb / 1024
                progress(f"{time.monotonic() - started:5.0f} s: {len(deployer.pushed)} pushed, "
                         f"{len(posts(slack))} posted, bot RSS {rss:.0f} MB")  # fmt: skip
            figures.deploy_seconds, figures.late = time.monotonic() - started, deployer.late
            pushed = set(deployer.pushed)
            wait_until(lambda: pushed <= finishes.at.keys(), options.operation_seconds + 30)
            made = {k for k in pushed if finishes.at.get(k, (0.0, ""))[1] == "Succeeded"}
            wait_until(lambda: len({(a, s) for a, s, _, _ in posts(slack)}) >= len(made), options.drain)
            time.sleep(min(2.0, options.drain))  # a late duplicate still counts
            figures.streams = len(argocd.requests(STREAM_PATH))
        finally:
            figures.proc = sampler.close()
            proc.terminate()
            proc.wait(timeout=60)
            argocd.stop()
        figures.problems = log.problems[log.ready_at :]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures.bench_cpu = usage.ru_utime + usage.ru_stime
        tally(figures, deployer.pushed, made, finishes, posts(slack))
    return figures


def tally(
    figures: Figures,
    pushed: dict[tuple[str, str], float],
    made: set[tuple[str, str]],
    finishes: Finishes,
    found: list[tuple[str, str, float, str]],
) -> None:
    by_short = {(app, sha[:7]): (app, sha) for app, sha in made}
    times = Counter((app, sha) for app, sha, _, _ in found)
    first: dict[tuple[str, str], float] = {}
    for app, sha, at, channel in found:
        first[(app, sha)] = min(at, first.get((app, sha), at))
        figures.misrouted += channel != channel_of(int(app[1:3]))  # apps are named t<team>-<n>
    figures.pushed, figures.made = len(pushed), len(made)
    figures.failed = sum(1 for k in pushed if finishes.at.get(k, (0.0, ""))[1] not in ("", "Succeeded"))
    figures.posted = len(found)
    figures.duplicates = sum(n - 1 for n in times.values())
    figures.unexpected = sum(1 for key in times if key not in by_short)
    figures.missing = sum(1 for key in by_short if key not in times)
    figures.latencies = [at - finishes.at[by_short[key]][0] for key, at in first.items() if key in by_short]


def report(options: Options, f: Figures) -> None:
    lat = f.latencies
    print(f"world: {f.apps} Argo CD apps (auto-sync) in {options.teams} team channels, "
          f"{options.rate:.0f} deploys/min for {options.minutes:g} min, "
          f"syncs of {options.operation_seconds:g} s; "
          f"bot ready after {f.ready_seconds:.1f} s (initial snapshot read)")  # fmt: skip
    print(f"deploys pushed {f.pushed} in {f.deploy_seconds:.0f} s "
          f"(pushes at most {f.late * 1000:.0f} ms late), "
          f"made {f.made}, failed {f.failed}")  # fmt: skip
    print(f"deploy messages posted {f.posted}; duplicates {f.duplicates}; missing {f.missing}; "
          f"unexpected {f.unexpected}; in another team's channel {f.misrouted}")  # fmt: skip
    print(f"post latency after the deploy finished: p50 {percentile(lat, 50):.2f} s, "
          f"p99 {percentile(lat, 99):.2f} s, max {max(lat, default=math.nan):.2f} s")  # fmt: skip
    p = f.proc
    print(f"bot process: RSS peak {p.rss_peak_kb / 1024:.0f} MB, at the end {p.rss_kb / 1024:.0f} MB; "
          f"threads peak {p.threads_peak}, at the end {p.threads}; CPU {p.cpu_seconds:.1f} s "
          f"({f.cpu_at_ready:.1f} s of it to start and read the snapshot)")  # fmt: skip
    print(f"this process (both fakes and the bench): CPU {f.bench_cpu:.1f} s")
    print(f"stream connections opened: {f.streams}")
    for problem in f.problems[:10]:
        print(f"  bot log: {problem[:200]}")
    missed = f.missed()
    print(f"targets ({TARGETS}): {'met' if not missed else 'NOT met: ' + ', '.join(missed)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=Options.apps)
    parser.add_argument("--rate", type=float, default=Options.rate, help="deploys per minute")
    parser.add_argument("--minutes", type=float, default=Options.minutes)
    parser.add_argument("--teams", type=int, default=Options.teams, help="feed channels")
    parser.add_argument("--operation-seconds", type=float, default=Options.operation_seconds)
    args = parser.parse_args()
    options = Options(apps=args.apps, rate=args.rate, minutes=args.minutes, teams=args.teams,
                      operation_seconds=args.operation_seconds)  # fmt: skip
    figures = run(options, progress=lambda line: print(line, flush=True))
    report(options, figures)
    return 1 if figures.missed() else 0


if __name__ == "__main__":
    raise SystemExit(main())
