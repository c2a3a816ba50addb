"""Audit trail at scale: durable appends (bulk and concurrent), then `audit APP` / `audit --user` latency.

Every append is committed with synchronous=FULL in WAL before it returns, as in production, and
every row is redacted and hash-chained. Phases:
  1. append_many in batches (the bulk path) until --events rows exist, minus the next two phases;
  2. --sequential single appends from one thread (one commit each: the fsync floor);
  3. --concurrent single appends from --threads threads (group commit shares fsyncs);
  4. --queries `audit APP` and `audit --user U` searches (page of 20): p50 / p99;
  5. with --verify, the time to verify the whole chain.
Targets: >= 5,000 appends/s; p99 <= 20 ms for both searches.

    .venv/bin/python bench/audit.py [--events 1000000] [--threads 8] [--queries 1000] [--verify]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.audit.query import AuditQuery
from services.audit.trail import AuditEvent, AuditStore
from services.redaction import Redactor

ENVS = ("dev", "staging", "prod")
ACTIONS = ("sync", "status", "diff", "rollback", "promote", "lock", "approve")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Workload:
    """Realistic rows: every target shape the bot writes, a few hundred users, a year of history."""

    def __init__(self, apps: int, users: int, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        self.apps = [f"svc-{i:03d}" for i in range(apps)]
        self.users = [f"U{i:07d}" for i in range(users)]

    def target(self, app: str) -> str:
        env, roll = self.rnd.choice(ENVS), self.rnd.random()
        if roll < 0.6:
            return f"{app}/{env}"
        if roll < 0.75:
            return f"main/{app}-{env}"
        if roll < 0.9:
            return f"{env}/flux-system/{app}"
        return f"{env}/{app}" if roll < 0.97 else env

    def event(self, ts: datetime | None) -> AuditEvent:
        app, action = self.rnd.choice(self.apps), self.rnd.choice(ACTIONS)
        return AuditEvent(
            user_id=self.rnd.choice(self.users),
            user_name="someone",
            channel="C0DEPLOYS",
            command=f"{action} {app} --prune",
            target=self.target(app),
            action=action,
            outcome="ok" if self.rnd.random() < 0.9 else "failed",
            detail="Synced to 3f2a9c1 (12 resources)",
            correlation_id=f"{self.rnd.getrandbits(32):08x}",
            duration_ms=self.rnd.randrange(50, 5000),
            ts=ts,
        )


def bulk(store: AuditStore, work: Workload, count: int, batch: int) -> float:
    start_ts = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(count, 1)
    started, done = time.perf_counter(), 0
    while done < count:
        size = min(batch, count - done)
        store.append_many(work.event(start_ts + step * (done + i)) for i in range(size))
        done += size
        if done % 100_000 < size:
            print(f"  … {done:,} rows", flush=True)
    return count / (time.perf_counter() - started)


def singles(store: AuditStore, work: Workload, count: int, threads: int) -> float:
    per = count // threads
    # Events are built up front so the figure is the append path, not the generator.
    batches = [[work.event(None) for _ in range(per)] for _ in range(threads)]
    gate = threading.Barrier(threads + 1)

    def run(events: list[AuditEvent]) -> None:
        gate.wait()
        for event in events:
            store.append(event)

    pool = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in pool:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - started)


def latencies(store: AuditStore, queries: list[AuditQuery]) -> tuple[list[float], int]:
    times, found = [], 0
    for q in queries:
        started = time.perf_counter()
        page = store.search(q)
        times.append((time.perf_counter() - started) * 1000)
        found += len(page.events)
    return times, found


def report(name: str, times: list[float], found: int, count: int) -> None:
    print(
        f"{name:<28} p50 {statistics.median(times):6.2f} ms   p99 {percentile(times, 99):6.2f} ms   "
        f"max {max(times):6.2f} ms   ({found / count:.1f} rows/page)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="rows in the table at the end")
    parser.add_argument("--batch", type=int, default=1000, help="rows per append_many call")
    parser.add_argument("--sequential", type=int, default=2_000, help="single appends from one thread")
    parser.add_argument("--concurrent", type=int, default=40_000, help="single appends across --threads")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1000, help="searches of each kind")
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--dir", type=Path, help="where the database goes (default: a temp dir)")
    parser.add_argument("--verify", action="store_true", help="also time a full chain verification")
    args = parser.parse_args()
    work = Workload(args.apps, args.users)
    # Two literal secrets, as in production, so the redaction cost is counted.
    redact = Redactor(["xoxb-bench-token-0123456789", "bench-signing-secret-0123456789"])
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = AuditStore(Path(tmp) / "audit.db", redact=redact)
        n_bulk = max(0, args.events - args.sequential - args.concurrent)
        print(f"audit bench: {args.events:,} rows, WAL + synchronous=FULL, in {tmp}")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        rate = bulk(store, work, n_bulk, args.batch)
        print(f"append_many ({args.batch}/call)       {rate:9,.0f} appends/s   ({n_bulk:,} rows)")
        rate = singles(store, work, args.sequential, 1)
        print(f"append, 1 thread              {rate:9,.0f} appends/s   ({args.sequential:,} rows)")
        rate = singles(store, work, args.concurrent, args.threads)
        print(
            f"append, {args.threads} threads (group)     {rate:9,.0f} appends/s   ({args.concurrent:,} rows)"
        )
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        print(f"rows {store.count():,}, database + WAL {size:,.0f} MiB")

        rnd = random.Random(2)
        first = time.perf_counter()
        store.search(AuditQuery(app=work.apps[0]))  # builds the target catalog once
        print(f"first search (target catalog) {(time.perf_counter() - first) * 1000:6.2f} ms")
        app_q = [AuditQuery(app=rnd.choice(work.apps)) for _ in range(args.queries)]
        report("audit APP", *latencies(store, app_q), args.queries)
        user_q = [AuditQuery(user_id=rnd.choice(work.users)) for _ in range(args.queries)]
        report("audit --user U", *latencies(store, user_q), args.queries)
        env_q = [AuditQuery(env=rnd.choice(ENVS), action="rollback") for _ in range(args.queries // 10)]
        report("audit --env E --action A", *latencies(store, env_q), len(env_q))
        pages = [store.search(q) for q in app_q[: args.queries // 10]]
        next_q = [
            AuditQuery(app=q.app, before_id=p.next_before_id) for q, p in zip(app_q, pages, strict=False)
        ]
        report("audit APP, page 2", *latencies(store, next_q), len(next_q))
        print(f"load average after appends and searches: {os.getloadavg()[0]:.2f}")
        if args.verify:
            started = time.perf_counter()
            result = store.verify()
            took = time.perf_counter() - started
            print(f"verify: ok={result.ok}, {result.rows_checked:,} rows in {took:.1f} s")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
