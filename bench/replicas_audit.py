"""Phase 4 of bench/replicas.py: audit appends per second, in this process, PostgreSQL beside SQLite.

The same AuditStore code on both engines, the same rows, the same threads: each thread appends
`per_thread` single rows (each `append` returns once its row is committed), as the bot's request
threads do. Both are durable on the same local disk: SQLite commits with synchronous=FULL, the
benchmark's PostgreSQL keeps fsync and synchronous commit on (`PostgresServer(durable=True)`), and
reaches it over loopback TCP as the bot does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from services.audit.trail import AuditEvent, AuditStore
from services.store.db import Database
from services.store.opening import open_database


@dataclass(frozen=True)
class Appends:
    engine: str
    rows: int
    seconds: float
    chain_ok: bool

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _event(thread: int, n: int) -> AuditEvent:
    return AuditEvent(
        user_id=f"U0T{thread:03d}", user_name="bench", channel="C0DEPLOYS",
        command=f"status svc-{n % 97:04d}", target=f"svc-{n % 97:04d}/prod", action="status", outcome="ok",
        detail="Synced, Healthy", duration_ms=n % 50,
    )  # fmt: skip


def measure(engine: str, db: Database, threads: int, per_thread: int) -> Appends:
    store = AuditStore(db)
    try:
        store.append(_event(0, 0))  # connections and statements warmed up, not counted
        barrier = threading.Barrier(threads + 1)

        def work(k: int) -> None:
            barrier.wait()
            for n in range(per_thread):
                store.append(_event(k, n))

        pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for thread in pool:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in pool:
            thread.join()
        seconds = time.perf_counter() - started
        chain_ok = store.verify().ok
    finally:
        store.close()
        db.close()
    return Appends(engine, threads * per_thread, seconds, chain_ok)


def compare(pg_url: str, password: str, sqlite_path: Path, threads: int, per_thread: int) -> list[Appends]:
    """PostgreSQL first, then SQLite (both on fresh, empty databases)."""
    return [
        measure(
            "postgresql", open_database(pg_url, password=password, pool_size=threads + 2), threads, per_thread
        ),
        measure("sqlite", open_database(sqlite_path), threads, per_thread),
    ]
