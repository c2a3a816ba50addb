"""Drift scans at scale: the bot's memory and time over many scans, 100 objects drifting.

Every fake (Argo CD, Kubernetes + Flux, Slack) runs in a child process, so the bot's process holds
the bot alone: FakeSlack records every call it answers, and in the bot's process that record would
grow with every post and update. Each size runs in a fresh bot process, so its idle and peak RSS
are its own. Prints, side by side: idle RSS before the first scan, peak RSS, RSS after the 10th and
after the last scan, scan median / worst, Slack posts and duplicate posts.

Targets at 5,000 Argo CD + 2,000 Flux: peak RSS <= 120 MB, scan median <= 1 s, 0 duplicate posts;
with `--soak` (1,000 scans): RSS after the last scan within 5 % of RSS after the 10th.

    .venv/bin/python bench/drift_scan.py [--scans 20] [--sizes 5000+2000,20000+5000] [--drifting 100]
    .venv/bin/python bench/drift_scan.py --soak                  # 1,000 scans at the first size
    .venv/bin/python bench/drift_scan.py --trace growth|peak     # tracemalloc: what grows / peaks
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ALERTS = "C0ALERTS"


def fakes(conn: Connection, tmp: str, argocd_apps: int, flux_objects: int, drifting: int) -> None:
    """The world the bot scans, and the Slack it posts to; answers the bot's questions on `conn`."""
    sys.path.insert(0, str(ROOT))
    from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
    from sandbox.flux_fake import FakeKubernetes
    from sandbox.slack_api import FakeSlack

    argocd = FakeArgoCD().start()
    argocd.bulk_add(argocd_apps, prefix="app-")
    k8s = FakeKubernetes().start()
    k8s.bulk_add(kustomizations=flux_objects, helm_releases=0, namespaces=20)
    for i in range(drifting // 2):
        argocd.set_health(f"app-{i * 7:05d}", "Degraded", "CrashLoopBackOff")
    for i in range(drifting - drifting // 2):  # bulk names: app-NNNN in team-(N % 20)
        k8s.stall(
            "Kustomization", f"app-{i:04d}", namespace=f"team-{i % 20:02d}", reason="InvalidCELExpression"
        )
    slack = FakeSlack().start()
    conn.send(
        {
            "argocd_url": argocd.base_url,
            "argocd_token": JWT_TOKEN,
            "kubeconfig": str(k8s.write_kubeconfig(Path(tmp) / "kubeconfig")),
            "slack_url": slack.base_url,
            "slack_token": slack.bot_token,
        }
    )
    while conn.recv() == "count":
        posts = [c for c in slack.recorded("chat.postMessage") if c.args.get("channel") == ALERTS]
        titles = Counter(str(c.args.get("text")) for c in posts)
        conn.send(
            {
                "posts": len(posts),
                "duplicates": sum(n - 1 for n in titles.values() if n > 1),
                "updates": len(slack.recorded("chat.update")),
            }
        )
    slack.stop()
    argocd.stop()
    k8s.stop()


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set of this process, in MB (Linux)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def bot(conn: Connection, argocd_apps: int, flux_objects: int, drifting: int, scans: int, trace: str) -> None:
    """The bot's side of one size: build the runtime, scan `scans` times, send the figures back."""
    sys.path.insert(0, str(ROOT))
    from bot.app import build_runtime
    from bot.config import parse_config_text
    from services.argocd import build_argocd_backends
    from services.backend import GitOpsBackend
    from services.flux import build_flux_backends
    from services.git import RepoCache

    with tempfile.TemporaryDirectory() as tmp:
        world, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(
            target=fakes, args=(child, tmp, argocd_apps, flux_objects, drifting), daemon=True
        )
        proc.start()
        urls = world.recv()
        yaml = f"""
slack: {{alerts_channel: {ALERTS}}}
argocd: [{{name: main, url: "{urls["argocd_url"]}", token_env: ARGOCD_TOKEN}}]
flux: [{{name: prod, kubeconfig: "{urls["kubeconfig"]}", context: sandbox}}]
drift: {{digest_threshold: 1000}}
audit: {{database: "{Path(tmp) / "audit.db"}"}}
"""
        env = {"SLACK_BOT_TOKEN": urls["slack_token"], "SLACK_SIGNING_SECRET": "s" * 32,
               "SLACK_API_URL": urls["slack_url"], "ARGOCD_TOKEN": urls["argocd_token"]}  # fmt: skip
        loaded = parse_config_text(yaml, environ=env)
        repos = RepoCache(Path(tmp) / "git", (), {})
        argocd = build_argocd_backends(loaded.settings, loaded.secrets)
        flux = build_flux_backends(loaded.settings, loaded.secrets, repos)
        backends: dict[str, GitOpsBackend] = {
            **{f"argocd:{n}": b for n, b in argocd.items()},
            **{f"flux:{n}": b for n, b in flux.items()},
        }
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends)
        assert runtime.drift is not None
        runtime.drift.pace = 0.0
        gc.collect()
        idle, _ = rss_mb()
        timings: list[float] = []
        after: dict[int, float] = {}
        report: list[str] = []
        try:
            if trace == "peak":
                report = trace_peak(runtime.drift, backends)
            for n in range(1, scans + 1):
                if trace == "growth" and n == 11:
                    tracemalloc.start(12)
                    before = tracemalloc.take_snapshot()
                started = time.perf_counter()
                runtime.drift.run()
                timings.append(time.perf_counter() - started)
                if n in (1, 10, scans) or n % 100 == 0:
                    after[n] = rss_mb()[0]
            if trace == "growth" and scans > 10:
                report = grown(before, tracemalloc.take_snapshot(), scans - 10)
            world.send("count")
            slack = world.recv()
            open_incidents = len(runtime.drift.store.open_incidents())
        finally:
            runtime.stop()
            world.send("done")
            proc.join(timeout=30)
    conn.send(
        {"idle": idle, "peak": rss_mb()[1], "after": after, "timings": timings,
         "open": open_incidents, "report": report, **slack}
    )  # fmt: skip


def grown(before: tracemalloc.Snapshot, now: tracemalloc.Snapshot, scans: int) -> list[str]:
    """What was allocated between the two snapshots and is still held, by traceback."""
    lines = [f"tracemalloc: held now that was not after scan 10 ({scans} scans later), top 8:"]
    for stat in now.compare_to(before, "traceback")[:8]:
        lines.append(f"  {stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks")
        lines.extend(f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback[-6:])
    return lines


def trace_peak(job: Any, backends: dict[str, Any]) -> list[str]:
    """One scan under tracemalloc: its peak, and what each backend's list leaves held on return."""
    held: list[str] = []
    for name, backend in backends.items():
        listing = backend.list_apps

        def traced(*args: Any, _listing: Any = listing, _name: str = name, **kwargs: Any) -> Any:
            start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = _listing(*args, **kwargs)
            current, peak = tracemalloc.get_traced_memory()
            held.append(
                f"  {_name}.list_apps: peak +{(peak - start) / 2**20:.1f} MB, "
                f"held on return +{(current - start) / 2**20:.1f} MB ({len(result)} statuses)"
            )
            return result

        backend.list_apps = traced
    tracemalloc.start(1)
    job.run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for backend in backends.values():
        del backend.list_apps  # the instance attribute goes; the method shows again
    return [f"tracemalloc: one scan peaks at {peak / 2**20:.1f} MB of Python allocations", *held]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=None, help="scans per size (20; 1,000 with --soak)")
    parser.add_argument("--sizes", default=None, help="ARGOCD+FLUX,… (5000+2000,20000+5000)")
    parser.add_argument("--drifting", type=int, default=100)
    parser.add_argument("--soak", action="store_true", help="1,000 scans at 5000+2000 (or --sizes)")
    parser.add_argument("--trace", choices=("growth", "peak"), default="")
    args = parser.parse_args()
    scans = args.scans or (1000 if args.soak else 20)
    sizes_text = args.sizes or ("5000+2000" if args.soak else "5000+2000,20000+5000")
    sizes = [tuple(int(x) for x in s.split("+")) for s in sizes_text.split(",")]
    results = []
    for argocd_apps, flux_objects in sizes:
        here, there = mp.Pipe()
        proc = mp.get_context("spawn").Process(
            target=bot, args=(there, argocd_apps, flux_objects, args.drifting, scans, args.trace)
        )
        proc.start()
        results.append(here.recv())
        proc.join(timeout=60)
    print(f"drift scans: {scans} per size, {args.drifting} drifting, pace 0; fakes in another process")
    header = ("size (Argo CD + Flux)", "idle MB", "peak MB", "after 1", "after 10", "after last",
              "median ms", "worst ms", "posts", "dups", "open")  # fmt: skip
    rows = [header]
    for (a, f), r in zip(sizes, results, strict=True):
        rows.append(
            (f"{a:,} + {f:,}", f"{r['idle']:.0f}", f"{r['peak']:.0f}", f"{r['after'].get(1, 0):.0f}",
             f"{r['after'].get(10, 0):.0f}", f"{r['after'][scans]:.0f}",
             f"{statistics.median(r['timings']) * 1000:.0f}", f"{max(r['timings']) * 1000:.0f}",
             str(r["posts"]), str(r["duplicates"]), str(r["open"]))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    for (a, f), r in zip(sizes, results, strict=True):
        if len(r["after"]) > 3:  # a long run: how RSS moved along the way
            marks = ", ".join(f"{n}: {mb:.0f}" for n, mb in sorted(r["after"].items()))
            print(f"RSS MB after scan n at {a:,} + {f:,}: {marks}")
        for line in r["report"]:
            print(line)
    first = results[0]
    met = first["peak"] <= 120 and statistics.median(first["timings"]) <= 1.0 and first["duplicates"] == 0
    print(f"target at {sizes_text.split(',')[0]} (peak <= 120 MB, median <= 1 s, 0 duplicates): "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    if scans >= 10:
        growth = first["after"][scans] / first["after"][10] - 1
        flat = abs(growth) <= 0.05
        hint = "" if args.soak else ", meant for --soak"
        print(f"RSS after scan {scans} vs after scan 10: {growth * 100:+.1f} % "
              f"(target within 5 %{hint}): {'met' if flat else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
