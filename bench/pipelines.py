"""Tekton at scale: `/gitops pipelines` over 2,000 PipelineRuns, and 50 runs followed at once.

Against the sandbox Tekton on the fake Kubernetes API server, through the bot's own client and
facade (services/pipelines), in one process:

1. 2,000 PipelineRuns in 10 namespaces (4 pipelines each; succeeded, failed, cancelled, timed out,
   and 50 running): `PipelineRuns.latest(every configured pipeline)` — what `/gitops pipelines`
   asks — timed, with its list requests counted (target: one per namespace, median <= 1 s),
   beside the floor: the same 10 lists through the client, JSON parsed, nothing else.
2. 50 runs started at once and followed through the shared watcher (services/watcher, the bot's
   default options; poll = `PipelineRuns.read` every 2 s as handlers/pipelines/follow does, backing
   off while nothing moves; finished = status.done): threads alive while
   following (1 run vs 50: no thread per run), polls per second, and the time from a run's
   completion in the fake controller to its `on_done` (median / p99).

Prints medians over several repetitions; about a minute on 2 cores.

    .venv/bin/python bench/pipelines.py [--runs 2000] [--namespaces 10] [--repeat 7] [--follow 50]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import parse_config_text
from bot.wiring import build_pipelines
from handlers.pipelines.follow import POLL_SECONDS, progress_key
from handlers.pipelines.views import runs_list
from sandbox.flux_fake import FakeKubernetes
from sandbox.k8s_store import Entry
from sandbox.tekton_fake import FakeTekton, SeedRun
from sandbox.tekton_webhook import is_done
from services.metrics import Metrics
from services.pipelines import PipelineRuns, RunRef
from services.tekton.model import PipelineRunDetail
from services.tekton.runs import StartedBy
from services.watcher import Watcher, WatchOptions

PIPELINES = ("build", "test", "scan", "release")
TASKS = {"fetch": ["clone"], "test": ["lint", "unit"], "build": ["build"]}
OUTCOMES = (("Succeeded", 80), ("Failed", 12), ("Cancelled", 5), ("PipelineRunTimeout", 3))  # percent
RUNNING = 50  # of the runs listed: held at their first task
STEP_SECONDS = 1.0  # a followed run: four steps, about six seconds
BOT = ("watcher", "watch-poll", "backend-read")  # the watcher's threads, by name prefix
FAKE_CONNECTION = "process_request_thread"  # the fake API server's thread per open connection


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def config(kubeconfig: Path, namespaces: list[str]) -> str:
    apps = "\n".join(
        f"""  - name: team-{i:02d}
    environments:
      prod: {{backend: argocd, name: team-{i:02d}-prod}}
    pipelines:
{chr(10).join(f"      - {{name: {p}, namespace: {ns}, revision_param: revision}}" for p in PIPELINES)}"""
        for i, ns in enumerate(namespaces)
    )
    return f"""
argocd:
  - {{name: main, url: https://argocd.example.com, token_env: ARGOCD_TOKEN}}
tekton:
  - {{name: ci, kubeconfig: {kubeconfig}, context: sandbox, namespaces: [{", ".join(namespaces)}]}}
environments:
  - name: prod
apps:
{apps}
"""


def seed(tekton: FakeTekton, namespaces: list[str], total: int) -> None:
    """`total` runs: all but RUNNING written finished, RUNNING started and held at their first task."""
    for ns in namespaces:
        for pipeline in PIPELINES:
            tekton.add_simple_pipeline(pipeline, TASKS, finally_={"report": ["notify"]}, namespace=ns)
    now = time.time()
    finished = total - RUNNING
    reasons = [r for r, share in OUTCOMES for _ in range(share)]
    tekton.seed_runs(
        SeedRun(
            PIPELINES[(i // len(namespaces)) % len(PIPELINES)],
            started=now - 3600 - 60 * i,
            reason=reasons[(i * 37) % len(reasons)],
            seconds=60 + i % 240,
            namespace=namespaces[i % len(namespaces)],
            params={"revision": f"{i:040x}"},
        )
        for i in range(finished)
    )
    tekton.hold(PIPELINES[0], "fetch")
    for i in range(RUNNING):
        tekton.start_run(PIPELINES[0], namespace=namespaces[i % len(namespaces)], params={"revision": "main"})


def bench_latest(
    kube: FakeKubernetes, pipelines: PipelineRuns, namespaces: list[str], repeat: int
) -> tuple[float, float, int, int, dict[str, int]]:
    """(latest median s, floor median s, list requests per latest, runs shown, kinds of status)."""
    targets = pipelines.targets.all
    client = pipelines.client("ci")
    latest = pipelines.latest(targets)  # discovery and connections, as a long-running bot has them
    timings, floor, requests = [], [], 0
    for _ in range(repeat):
        gc.collect()
        kube.clear_requests()
        begin = time.perf_counter()
        latest = pipelines.latest(targets)
        # What the command answers with: the same list rendered as its Block Kit message.
        runs_list(latest, now=datetime.now(UTC), title="Pipeline runs")
        timings.append(time.perf_counter() - begin)
        requests = sum(1 for r in kube.requests() if r.method == "GET" and r.path.endswith("/pipelineruns"))
        gc.collect()
        begin = time.perf_counter()
        listed = sum(len(client.list_pipelineruns(ns)) for ns in namespaces)
        floor.append(time.perf_counter() - begin)
    kinds: dict[str, int] = {}
    for _, run in latest.runs:
        kinds[run.status.kind] = kinds.get(run.status.kind, 0) + 1
    assert listed > 0
    return statistics.median(timings), statistics.median(floor), requests, len(latest.runs), kinds


@dataclass
class Follow:
    """One repetition of following runs: what the watcher did and when."""

    polls: int = 0
    done_at: dict[str, float] = field(default_factory=dict)  # run name → on_done (monotonic)
    completed_at: dict[str, float] = field(default_factory=dict)  # run name → the controller's done
    threads: int = 0  # the most threads alive at once, whole process
    bot_threads: int = 0  # the most watcher threads alive at once
    server_threads: int = 0  # the most fake API server connection threads alive at once
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _thread_counts() -> tuple[int, int, int]:
    alive = threading.enumerate()
    bot = sum(1 for t in alive if t.name.startswith(BOT))
    return len(alive), bot, sum(1 for t in alive if FAKE_CONNECTION in t.name)


def follow(tekton: FakeTekton, pipelines: PipelineRuns, namespaces: list[str], count: int) -> Follow:
    """Start `count` runs through the facade and follow each to its end through one Watcher."""
    watcher = Watcher(WatchOptions())
    result = Follow()
    lock = threading.Lock()
    all_done = threading.Event()
    targets = [t for t in pipelines.targets.all if t.pipeline == PIPELINES[1]]
    started = time.monotonic()
    refs: list[RunRef] = []
    for i in range(count):
        target = targets[i % len(targets)]
        detail = pipelines.start(target, [f"revision={i:040x}"], StartedBy("U0BENCH", "bench"))
        refs.append(RunRef("ci", target.namespace, detail.name))
    entries = {e.obj["metadata"]["name"]: e for e in tekton.entries("pipelineruns")}
    watched = {ref.name: entries[ref.name] for ref in refs}

    def poll_of(ref: RunRef) -> Callable[[], PipelineRunDetail]:
        def poll() -> PipelineRunDetail:
            with lock:
                result.polls += 1
            return pipelines.read(ref)

        return poll

    def done(name: str) -> Callable[[Any], None]:
        def on_done(_detail: Any) -> None:
            with lock:
                result.done_at[name] = time.monotonic()
                if len(result.done_at) + len(result.errors) == count:
                    all_done.set()

        return on_done

    def error(name: str) -> Callable[[BaseException], None]:
        def on_error(exc: BaseException) -> None:
            with lock:
                result.errors.append(f"{name}: {exc}")
                if len(result.done_at) + len(result.errors) == count:
                    all_done.set()

        return on_error

    for ref in refs:
        watcher.watch(
            watcher.reserve(), None, poll_of(ref), what="Tekton ci", interval=POLL_SECONDS, timeout=120,
            on_progress=lambda _d: None, on_done=done(ref.name), on_error=error(ref.name),
            finished=lambda d: bool(d.status.done), progress_key=progress_key, name=ref.name,
        )  # fmt: skip
    _observe(watched, result, all_done)
    result.seconds = time.monotonic() - started
    watcher.stop()
    return result


def _observe(watched: dict[str, Entry], result: Follow, all_done: threading.Event) -> None:
    """Until every run is followed to its end: when the controller finished each (read off the
    stored object every 2 ms, no request), and the threads alive."""
    pending = dict(watched)
    while not all_done.wait(0.002):
        now = time.monotonic()
        for name, entry in list(pending.items()):
            if is_done(entry.obj):
                result.completed_at[name] = now
                del pending[name]
        total, bot, server = _thread_counts()
        result.threads, result.bot_threads = max(result.threads, total), max(result.bot_threads, bot)
        result.server_threads = max(result.server_threads, server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7, help="repetitions of the list")
    parser.add_argument("--follow", type=int, default=50, help="runs followed at once")
    parser.add_argument("--follow-repeat", type=int, default=3)
    args = parser.parse_args()
    namespaces = [f"team-{i:02d}" for i in range(args.namespaces)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeKubernetes(tick=0.05) as kube,
        FakeTekton(kube, tick=0.05, step_seconds=STEP_SECONDS) as tekton,
    ):
        begin = time.perf_counter()
        seed(tekton, namespaces, args.runs)
        filled = time.perf_counter() - begin
        shape = f"{len(namespaces)} namespaces, {len(PIPELINES)} pipelines each, {RUNNING} running"
        print(f"fake filled in {filled:.2f} s: {args.runs:,} PipelineRuns in {shape}")
        text = config(kube.write_kubeconfig(Path(tmp) / "kubeconfig"), namespaces)
        loaded = parse_config_text(text, environ={"ARGOCD_TOKEN": "t", "SLACK_BOT_TOKEN": "xoxb-bench"})
        pipelines = build_pipelines(loaded, Metrics())
        assert pipelines is not None
        try:
            report_latest(kube, pipelines, namespaces, args.repeat)
            tekton.release(PIPELINES[0], "fetch")  # the held runs finish; the follows below run alone
            _wait_idle(tekton)
            report_follow(tekton, pipelines, namespaces, args.follow, args.follow_repeat)
        finally:
            pipelines.close()
    return 0


def _wait_idle(tekton: FakeTekton, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(not is_done(e.obj) for e in tekton.entries("pipelineruns")) and time.monotonic() < deadline:
        time.sleep(0.1)


def report_latest(kube: FakeKubernetes, pipelines: PipelineRuns, namespaces: list[str], repeat: int) -> None:
    latest, floor, requests, shown, kinds = bench_latest(kube, pipelines, namespaces, repeat)
    mix = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
    lists = len(namespaces)
    print(
        f"\n/gitops pipelines: the latest runs of {len(pipelines.targets.all)} pipelines (median of {repeat})"
    )
    print(f"  latest(all) + message      {latest * 1000:5.0f} ms   {requests:3d} list requests")
    print(f"  floor: {lists} lists + JSON     {floor * 1000:5.0f} ms   {lists:3d} list requests")
    print(f"  shown: {shown} runs ({mix})")
    met = latest <= 1.0 and requests == lists
    print(f"  target (one list per namespace, <= 1 s): {'met' if met else 'NOT met'}")


def _lags(follow: Follow) -> list[float]:
    return [follow.done_at[n] - follow.completed_at[n] for n in follow.done_at if n in follow.completed_at]


def report_follow(
    tekton: FakeTekton, pipelines: PipelineRuns, namespaces: list[str], count: int, repeat: int
) -> None:
    options = WatchOptions()
    one = follow(tekton, pipelines, namespaces, 1)
    rounds: list[Follow] = []
    for _ in range(repeat):
        _wait_idle(tekton)
        rounds.append(follow(tekton, pipelines, namespaces, count))
    lags = [lag for r in rounds for lag in _lags(r)]
    errors = sum(len(r.errors) for r in rounds)
    followed = sum(len(r.done_at) for r in rounds)

    def median(values: list[float] | list[int]) -> float:
        return statistics.median(values)

    threads = median([r.threads for r in rounds])
    watcher = median([r.bot_threads for r in rounds])
    server = median([r.server_threads for r in rounds])
    pool = f"(scheduler + <= {options.poll_threads} pollers)"
    budget = f"{options.poll_threads} poll threads, at most {options.polls_per_second:g} polls/s"
    print(f"\n{count} runs followed at once through the watcher (median of {repeat}; defaults: {budget})")
    print(f"  threads alive, whole process   1 run: {one.threads:3d}   {count} runs: {threads:3.0f}")
    print(
        f"    the watcher's                1 run: {one.bot_threads:3d}   {count} runs: {watcher:3.0f}  {pool}"
    )
    print(
        f"    the fake API server's        1 run: {one.server_threads:3d}   {count} runs: {server:3.0f}"
        "  (one per client connection)"
    )
    rate = median([r.polls / r.seconds for r in rounds])
    polls, seconds = median([r.polls for r in rounds]), median([r.seconds for r in rounds])
    print(f"  polls per second               {rate:.1f} ({polls:.0f} polls of 2 requests in {seconds:.1f} s)")
    alone = median(_lags(one) or [0.0]) * 1000
    print(
        f"  completion → on_done           median {median(lags) * 1000:.0f} ms, p99 "
        f"{percentile(lags, 99) * 1000:.0f} ms (1 run alone: {alone:.0f} ms)"
    )
    print(f"  followed to the end            {followed} of {count * repeat} ({errors} errors)")
    extra = threads - one.threads
    flat = max(r.bot_threads for r in rounds) <= 1 + options.poll_threads + options.read_threads
    met = flat and extra < count / 5 and errors == 0 and followed == count * repeat
    print(
        f"  target (no worker thread per run): {'met' if met else 'NOT met'} "
        f"({extra:+.0f} threads in the process for {count - 1} more runs)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
