"""The per-user rate limiter (injected clock) and the Slack replay guard (real SQLite file)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from services.access.ratelimit import RateLimiter, SharedRateLimiter
from services.access.replay import ReplayGuard
from services.store.db import Database
from services.store.schema import MIGRATIONS
from services.store.sqlite import SqliteDatabase
from tests.db_engines import Opener


class Clock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# --- rate limiter ---------------------------------------------------------------------------


def test_allows_up_to_limit_then_reports_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(3, timedelta(seconds=60), clock=clock)
    assert limiter.hit("U1") is None
    clock.now += 10
    assert limiter.hit("U1") is None
    clock.now += 10
    assert limiter.hit("U1") is None
    clock.now += 5
    # The oldest hit (t=0) frees its slot at t=60; now is t=25.
    assert limiter.hit("U1") == pytest.approx(35.0)


def test_window_slides_one_slot_at_a_time() -> None:
    clock = Clock()
    limiter = RateLimiter(2, timedelta(seconds=60), clock=clock)
    assert limiter.hit("U1") is None  # t=0
    clock.now += 30
    assert limiter.hit("U1") is None  # t=30
    clock.now += 29.5
    assert limiter.hit("U1") == pytest.approx(0.5)
    clock.now += 0.5  # t=60: the t=0 hit has left the window
    assert limiter.hit("U1") is None
    assert limiter.hit("U1") == pytest.approx(30.0)  # the t=30 hit is next to go
    clock.now += 30
    assert limiter.hit("U1") is None


def test_refused_hits_are_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(1, timedelta(seconds=10), clock=clock)
    assert limiter.hit("U1") is None
    for _ in range(5):
        clock.now += 1
        assert limiter.hit("U1") is not None
    clock.now += 5  # t=10: exactly when the first retry-after said
    assert limiter.hit("U1") is None


def test_users_are_isolated() -> None:
    clock = Clock()
    limiter = RateLimiter(1, timedelta(minutes=1), clock=clock)
    assert limiter.hit("U1") is None
    assert limiter.hit("U1") is not None
    assert limiter.hit("U2") is None
    assert limiter.hit("U2") is not None


def test_idle_users_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(1, timedelta(seconds=10), clock=clock)
    for i in range(1000):
        limiter.hit(f"U{i}")
    clock.now += 11
    limiter.hit("fresh")
    assert list(limiter._hits) == ["fresh"]


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, timedelta(seconds=1))
    with pytest.raises(ValueError, match="window"):
        RateLimiter(1, timedelta(0))


def test_concurrent_hits_never_exceed_limit() -> None:
    limiter = RateLimiter(50, timedelta(hours=1), clock=Clock())
    allowed: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        mine = [limiter.hit("U1") is None for _ in range(100)]
        allowed.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 800
    assert sum(allowed) == 50


# --- replay guard ---------------------------------------------------------------------------


@pytest.fixture
def db(any_database: Database) -> Database:
    return any_database  # SQLite and PostgreSQL (tests/db_engines.py)


def test_first_then_replay(db: Database) -> None:
    clock = Clock()
    guard = ReplayGuard(db, clock=clock)
    assert guard.first_seen("v0=abc", clock.now) is True
    assert guard.first_seen("v0=abc", clock.now) is False
    clock.now += 299
    assert guard.first_seen("v0=abc", clock.now - 299) is False
    assert guard.first_seen("v0=def", clock.now) is True


def test_after_window_stale_timestamps_are_refused(db: Database) -> None:
    clock = Clock()
    guard = ReplayGuard(db, clock=clock)
    sent = clock.now
    assert guard.first_seen("v0=abc", sent) is True
    clock.now += 301
    guard.purge()
    # Forgotten by now, yet still refused: its timestamp is outside the window.
    assert guard.first_seen("v0=abc", sent) is False
    assert guard.first_seen("v0=never-seen", sent) is False
    assert guard.first_seen("v0=far-future", clock.now + 301) is False
    assert guard.first_seen("v0=new", clock.now) is True


def test_future_skewed_request_remembered_until_its_window_ends(db: Database) -> None:
    clock = Clock()
    guard = ReplayGuard(db, clock=clock)
    sent = clock.now + 200  # the sender's clock runs ahead
    assert guard.first_seen("v0=skew", sent) is True
    clock.now += 450  # still inside the window of `sent`
    guard.purge()
    assert guard.first_seen("v0=skew", sent) is False


def test_survives_reopening_the_database(open_again: Opener) -> None:
    clock = Clock()
    first = open_again()
    assert ReplayGuard(first, clock=clock).first_seen("v0=abc", clock.now) is True
    first.close()

    clock.now += 60
    second = open_again()
    try:
        assert ReplayGuard(second, clock=clock).first_seen("v0=abc", clock.now - 60) is False
    finally:
        second.close()


def test_purge_drops_only_expired_rows(db: Database) -> None:
    clock = Clock()
    guard = ReplayGuard(db, clock=clock)
    guard.first_seen("old", clock.now)
    clock.now += 200
    guard.first_seen("recent", clock.now)
    clock.now += 150
    assert guard.purge() == 1
    rows = {r["signature"] for r in db.query("SELECT signature FROM seen_requests")}
    assert rows == {"recent"}


def test_purges_opportunistically(db: Database) -> None:
    clock = Clock()
    guard = ReplayGuard(db, clock=clock, purge_every=5)
    for i in range(4):
        assert guard.first_seen(f"old-{i}", clock.now)
    clock.now += 301
    assert guard.first_seen("new-0", clock.now)  # the 5th insert triggers the purge
    count = db.scalar("SELECT count(*) FROM seen_requests")
    assert count == 1


def test_replay_guard_is_thread_safe(db: Database) -> None:
    guard = ReplayGuard(db, clock=Clock())
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        wins.append(guard.first_seen("v0=same", 1_000.0))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


# --- delivery ids (Socket Mode envelopes, trigger / event ids, retried bodies) ----------------------


def test_delivery_keys_are_remembered_and_reported_once_seen(db: Database) -> None:
    guard = ReplayGuard(db, clock=Clock())
    assert guard.already_seen(["envelope_id:e1", "trigger_id:t1"]) == []
    assert guard.already_seen(["envelope_id:e1"]) == ["envelope_id:e1"]
    # A redelivery with one new key is known by the old one, and the new one is remembered too.
    assert guard.already_seen(["trigger_id:t1", "body:b1"]) == ["trigger_id:t1"]
    assert guard.already_seen(["body:b1"]) == ["body:b1"]
    assert guard.already_seen([]) == []


def test_delivery_keys_outlive_the_signature_window(db: Database) -> None:
    # Slack's last redelivery comes about 5 minutes after the first try, past the signature window.
    clock = Clock()
    guard = ReplayGuard(db, clock=clock, window=300, delivery_window=3600)
    guard.first_seen("v0=sig", clock.now)
    guard.already_seen(["envelope_id:e1"])
    clock.now += 900
    assert guard.purge() == 1  # the signature went, the envelope id stays
    assert guard.already_seen(["envelope_id:e1"]) == ["envelope_id:e1"]
    clock.now += 3600
    guard.purge()
    assert guard.already_seen(["envelope_id:e1"]) == []


def test_rows_from_before_the_expiry_column_keep_their_window(tmp_path: Path) -> None:
    # A database written by an older bot: every step before this one, one signature seen at t=1000.
    path = tmp_path / "bot.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for version, description, step in MIGRATIONS:
        if step.__name__ == "_seen_deliveries":
            break
        step(old)
        old.execute("INSERT INTO schema_migrations VALUES (?, ?, '')", [version, description])
    old.execute("INSERT INTO seen_requests (signature, seen_at) VALUES ('v0=old', 1000.0)")
    old.close()
    clock = Clock(1_100.0)
    reopened = SqliteDatabase(path)  # applies the step that adds expires_at, and any after it
    try:
        guard = ReplayGuard(reopened, clock=clock)
        assert guard.first_seen("v0=old", 1_000.0) is False
        clock.now = 1_301.0
        assert guard.purge() == 1  # 300 s after it was seen, as before
    finally:
        reopened.close()


def test_replicas_sharing_a_database_count_one_limit_together(open_again: Opener) -> None:
    clock = Clock(1_000.0)
    one = SharedRateLimiter(open_again(), 3, timedelta(minutes=1), clock=lambda: clock.now)
    two = SharedRateLimiter(open_again(), 3, timedelta(minutes=1), clock=lambda: clock.now)
    assert [one.hit("U1"), two.hit("U1"), one.hit("U1")] == [None, None, None]
    clock.now += 10
    assert two.hit("U1") == pytest.approx(50.0)  # the first hit frees its slot at 1060
    assert one.hit("U2") is None  # per user
    clock.now += 51
    assert two.hit("U1") is None
