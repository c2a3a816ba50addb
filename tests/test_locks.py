"""Deploy locks on a real SQLite file: scopes, TTL, expiry announced once, force, persistence."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from services.access.locks import Lock, LockedTarget, LockStore
from services.errors import UserError
from services.store.db import Database
from tests.db_engines import Opener

T0 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(any_database: Database) -> Database:
    return any_database  # SQLite and PostgreSQL (tests/db_engines.py)


@pytest.fixture
def store(db: Database) -> LockStore:
    return LockStore(db)


def take(
    store: LockStore,
    env: str = "prod",
    app: str | None = None,
    *,
    reason: str = "release freeze",
    ttl: timedelta | None = None,
    by: str = "U1",
    now: datetime = T0,
) -> Lock:
    return store.lock(env, app=app, reason=reason, ttl=ttl, by=by, channel="C1", now=now)


def test_lock_and_unlock(store: LockStore) -> None:
    lock = take(store, ttl=timedelta(hours=2))
    assert (lock.env, lock.app, lock.scope, lock.created_by) == ("prod", None, "prod", "U1")
    assert lock.expires_at == T0 + timedelta(hours=2)
    assert store.active(now=T0) == [lock]

    released = store.unlock("prod", app=None, by="U2", now=T0 + timedelta(minutes=5))
    assert released.id == lock.id
    assert (released.released_by, released.release_reason) == ("U2", "unlocked")
    assert released.released_at == T0 + timedelta(minutes=5)
    assert store.active(now=T0 + timedelta(minutes=5)) == []


def test_app_lock_scope_and_active_filter(store: LockStore) -> None:
    api = take(store, app="api")
    take(store, env="staging")
    assert api.scope == "prod/api"
    assert [lk.scope for lk in store.active(env="prod", now=T0)] == ["prod/api"]
    assert [lk.scope for lk in store.active(now=T0)] == ["prod/api", "staging"]


def test_env_wide_lock_blocks_every_app_in_that_env_only(store: LockStore) -> None:
    lock = take(store)
    assert store.blocking("prod", "api", now=T0) == lock
    assert store.blocking("prod", None, now=T0) == lock
    assert store.blocking("staging", "api", now=T0) is None


def test_app_lock_blocks_that_app_by_either_name(store: LockStore) -> None:
    lock = take(store, app="payments-api")
    assert store.blocking("prod", {"payments", "payments-api"}, now=T0) == lock
    assert store.blocking("prod", "payments-api", now=T0) == lock
    assert store.blocking("prod", {"web", "web-frontend"}, now=T0) is None
    assert store.blocking("staging", "payments-api", now=T0) is None
    # A whole-env action would deploy the locked app too.
    assert store.blocking("prod", None, now=T0) == lock
    # An app no configured environment points at: any lock on that name blocks, to be safe.
    assert store.blocking(None, "payments-api", now=T0) == lock
    assert store.blocking(None, None, now=T0) is None


def test_env_wide_lock_preferred_over_app_lock(store: LockStore) -> None:
    take(store, app="api")
    env_wide = take(store)
    assert store.blocking("prod", "api", now=T0) == env_wide


def test_double_lock_same_scope_refused_naming_holder(store: LockStore) -> None:
    take(store, ttl=timedelta(hours=2))
    with pytest.raises(UserError) as err:
        take(store, by="U9", reason="other")
    assert "<@U1>" in err.value.message
    assert "release freeze" in err.value.message
    assert "until 14:00 UTC" in err.value.message
    assert "/gitops unlock prod" in (err.value.hint or "")
    # A different scope is fine.
    take(store, app="api", by="U9")


def test_lock_validates_input(store: LockStore) -> None:
    with pytest.raises(UserError, match="reason"):
        take(store, reason="   ")
    with pytest.raises(UserError, match="TTL"):
        take(store, ttl=timedelta(0))


def test_unlock_when_not_locked(store: LockStore) -> None:
    with pytest.raises(UserError, match="`prod` is not locked"):
        store.unlock("prod", app=None, by="U1", now=T0)
    take(store, app="api")
    with pytest.raises(UserError) as err:
        store.unlock("prod", app=None, by="U1", now=T0)
    assert "`prod/api`" in (err.value.hint or "")
    store.unlock("prod", app="api", by="U1", now=T0)
    with pytest.raises(UserError, match="`prod/api` is not locked"):
        store.unlock("prod", app="api", by="U1", now=T0)


def test_ttl_expiry_and_expire_due_exactly_once(store: LockStore) -> None:
    short = take(store, ttl=timedelta(minutes=30))
    forever = take(store, app="api")
    later = T0 + timedelta(minutes=30)
    # Expired locks stop blocking even before the scheduler sweeps them.
    assert store.blocking("prod", "web", now=later) is None
    assert store.blocking("prod", "web", now=later - timedelta(seconds=1)) == short

    assert store.expire_due(now=later - timedelta(seconds=1)) == []
    expired = store.expire_due(now=later)
    assert [lk.id for lk in expired] == [short.id]
    assert (expired[0].released_by, expired[0].release_reason) == ("gitops-bot", "expired")
    assert expired[0].released_at == later
    assert store.expire_due(now=later + timedelta(hours=1)) == []
    assert store.active(now=later) == [forever]
    with pytest.raises(UserError, match="not locked"):
        store.unlock("prod", app=None, by="U1", now=later)


def test_expire_due_concurrent_callers_each_lock_once(store: LockStore) -> None:
    for env in ("a", "b", "c", "d"):
        take(store, env=env, ttl=timedelta(minutes=1))
    results: list[list[Lock]] = []
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        results.append(store.expire_due(now=T0 + timedelta(minutes=2)))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(lk.env for batch in results for lk in batch) == ["a", "b", "c", "d"]


def test_relock_after_expiry_supersedes_without_later_announcement(store: LockStore) -> None:
    old = take(store, ttl=timedelta(minutes=10))
    later = T0 + timedelta(minutes=20)
    new = take(store, reason="second freeze", now=later)
    assert new.id != old.id
    assert store.expire_due(now=later) == []
    assert store.active(now=later) == [new]


def test_check_raises_and_force_returns_lock(store: LockStore) -> None:
    lock = take(store, ttl=timedelta(hours=2))
    assert store.check("staging", ["api"], force=False, now=T0) is None
    with pytest.raises(LockedTarget) as err:
        store.check("prod", ["api", "payments-api"], force=False, now=T0)
    assert err.value.lock == lock
    assert err.value.message == (
        ":lock: `prod` is locked by <@U1> until 14:00 UTC: release freeze. An admin may pass --force."
    )
    assert store.check("prod", ["api"], force=True, now=T0) == lock


def test_locked_message_without_ttl_and_across_days(store: LockStore) -> None:
    forever = take(store, app="api", reason="db migration.")
    assert LockedTarget(forever, now=T0).message == (
        ":lock: `prod/api` is locked by <@U1>: db migration. An admin may pass --force."
    )
    long = take(store, env="staging", ttl=timedelta(days=1))
    assert "until 2024-05-03 12:00 UTC" in LockedTarget(long, now=T0).message


def test_locks_persist_across_reopening(open_again: Opener) -> None:
    first = open_again()
    lock = take(LockStore(first), app="api", ttl=timedelta(hours=1))
    first.close()

    second = open_again()
    try:
        store = LockStore(second)
        assert store.active(now=T0) == [lock]
        assert store.blocking("prod", "api", now=T0) == lock
        assert [lk.id for lk in store.expire_due(now=T0 + timedelta(hours=1))] == [lock.id]
    finally:
        second.close()
