"""What a webhook notifier costs the audit trail, and how fast events reach the receiver.

Side by side in one run, on real SQLite files (synchronous=FULL, as in production):
  A. appends with no notifier (the audit trail alone);
  B. appends with the built-in webhook notifier subscribed and matching every event (each append
     also writes its outbox row, in the appending thread), delivering to a local receiver.
For each: single appends from one thread (median and p99 latency) and from --threads threads
(appends/s). For B also: the median time from append to the receiver holding the event, and that
every event arrived exactly once.

    .venv/bin/python bench/notify.py [--events 2000] [--threads 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from sandbox.webhook_receiver import Delivery, WebhookReceiver
from services.audit.trail import AuditEvent, AuditStore
from services.extensions.builtin import notifiers
from services.extensions.context import PluginContext
from services.extensions.events import audit_listener
from services.extensions.manager import Extensions
from services.settings.model import Settings
from services.store.sqlite import SqliteDatabase

SECRET = "bench-webhook-secret"  # a throwaway secret for a local receiver


def row(i: int) -> AuditEvent:
    return AuditEvent(user_id="U0BENCH", user_name="bench", action="lock", outcome="ok",
                      command=f"lock prod --reason bench-{i}", target="prod", detail=f"lock {i}")  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(store: AuditStore, events: int, threads: int) -> tuple[float, float, float]:
    """(median ms, p99 ms) of single appends from one thread, then appends/s from `threads`."""
    latencies = []
    for i in range(events):
        began = time.perf_counter()
        store.append(row(i))
        latencies.append((time.perf_counter() - began) * 1000)
    per_thread = events // threads

    def work(base: int) -> None:
        for i in range(per_thread):
            store.append(row(base + i))

    pool = [threading.Thread(target=work, args=(events + t * per_thread,)) for t in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    rate = per_thread * threads / (time.perf_counter() - began)
    return statistics.median(latencies), percentile(latencies, 99), rate


def with_notifier(root: Path, url: str) -> tuple[AuditStore, Extensions]:
    settings = Settings.model_validate(
        {"notifiers": [{"kind": "webhook", "name": "bench", "url": url, "secret_env": "BENCH_SECRET"}]}
    )
    database = SqliteDatabase(root / "b.db")
    extensions, problems = Extensions.load(settings)
    assert not problems, problems
    secrets = {"BENCH_SECRET": SecretStr(SECRET)}
    extensions.configure(settings, PluginContext(database, lambda: datetime.now(UTC), secrets))
    store = AuditStore(database)
    store.subscribe(audit_listener(extensions))
    return store, extensions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    arrived: dict[str, float] = {}
    lock = threading.Lock()
    current = [0]  # the round: every round starts a new database, so event ids repeat

    def got(delivery: Delivery) -> None:
        with lock:
            arrived.setdefault(f"{current[0]}:{delivery.event['id']}", time.perf_counter())

    receiver = WebhookReceiver(SECRET, on_event=got).start()
    try:
        for n in range(args.rounds):
            current[0] = n
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                plain = AuditStore(SqliteDatabase(root / "a.db"))
                a = measure(plain, args.events, args.threads)
                plain.close()
                store, extensions = with_notifier(root, receiver.url)
                sent: dict[str, float] = {}
                store.subscribe(partial(stamp, sent))
                b = measure(store, args.events, args.threads)
                total = args.events + args.events // args.threads * args.threads
                wait_for(partial(enough, arrived, total * (n + 1)), 120)
                lag = [arrived[f"{n}:{k}"] - v for k, v in sent.items() if f"{n}:{k}" in arrived]
                extensions.shutdown()
                notifiers.gitops_bot_shutdown()
                store.close()
            print(f"round {n + 1}: appends alone      median {a[0]:.2f} ms  p99 {a[1]:.2f} ms  "
                  f"{a[2]:,.0f}/s with {args.threads} threads")  # fmt: skip
            print(f"round {n + 1}: appends + webhook  median {b[0]:.2f} ms  p99 {b[1]:.2f} ms  "
                  f"{b[2]:,.0f}/s with {args.threads} threads")  # fmt: skip
            median, p99 = statistics.median(lag) * 1000, percentile(lag, 99) * 1000
            print(f"round {n + 1}: append → receiver  median {median:.0f} ms  p99 {p99:.0f} ms  "
                  f"({len(lag)} of {total} events timed)")  # fmt: skip
        deliveries = receiver.deliveries()
        ids = [d.event["id"] for d in deliveries]
        print(f"receiver: {len(ids)} deliveries, {len(arrived)} distinct events, "
              f"{sum(d.signed for d in deliveries)} with a valid signature")  # fmt: skip
    finally:
        receiver.stop()


def stamp(sent: dict[str, float], event: AuditEvent) -> None:
    sent.setdefault(f"audit-{event.id}", time.perf_counter())


def enough(arrived: dict[str, float], count: int) -> bool:
    return len(arrived) >= count


def wait_for(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("events did not all arrive in time")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
