"""Deploy locks: freeze an environment, or one app in it, against mutating commands.

A lock ends when someone unlocks it or its TTL passes. The scheduler calls `expire_due` to
release and announce expired locks; until then an expired lock already stops blocking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import UserError
from services.store.db import Database, Tx

BOT_USER = "gitops-bot"


@dataclass(frozen=True)
class Lock:
    id: int
    env: str
    app: str | None  # None: the whole environment
    reason: str
    created_by: str
    channel: str
    created_at: datetime
    expires_at: datetime | None  # None: until someone unlocks it
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None  # "unlocked" or "expired"

    @property
    def scope(self) -> str:
        return f"{self.env}/{self.app}" if self.app else self.env

    def is_active(self, at: datetime) -> bool:
        return self.released_at is None and (self.expires_at is None or self.expires_at > at)


class LockedTarget(UserError):
    """An action hit a lock. The locker's mention stays a mention; the reply escapes the rest (the reason)."""

    def __init__(self, lock: Lock, *, now: datetime | None = None) -> None:
        at = _utc(now)
        super().__init__(
            f":lock: `{lock.scope}` is locked by <@{lock.created_by}>{_until(lock, at)}: "
            f"{lock.reason.rstrip('.')}. An admin may pass --force.",
            mentions=[lock.created_by],
        )
        self.lock = lock


class LockStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def lock(
        self,
        env: str,
        *,
        app: str | None,
        reason: str,
        ttl: timedelta | None,
        by: str,
        channel: str,
        now: datetime | None = None,
    ) -> Lock:
        """Take a lock on `env` (or `env/app`); UserError when that same scope is already locked."""
        at = _utc(now)
        if not env:
            raise UserError("A lock needs an environment.")
        if not reason.strip():
            raise UserError("A lock needs a reason, so others know why they are blocked.")
        if ttl is not None and ttl <= timedelta(0):
            raise UserError("A lock's TTL must be longer than zero.")
        app_key = app or ""
        expires = at + ttl if ttl is not None else None
        with self._db.transaction() as db:
            rows = db.query(
                "SELECT * FROM locks WHERE released_at IS NULL AND env = ? AND app = ?", [env, app_key]
            )
            for existing in [_lock(r) for r in rows]:
                if existing.is_active(at):
                    raise UserError(
                        f"`{existing.scope}` is already locked by <@{existing.created_by}>"
                        f"{_until(existing, at)}: {existing.reason.rstrip('.')}.",
                        hint=f"Release it first with `/gitops unlock {_args(env, app)}`.",
                        mentions=[existing.created_by],
                    )
                # Expired but not yet swept: the new lock supersedes it, so the scheduler must not
                # later announce "expired" for a scope that is locked again.
                _release(db, existing.id, at, BOT_USER, "expired")
            lock_id = db.insert_returning_id(
                "locks",
                {
                    "env": env,
                    "app": app_key,
                    "reason": reason.strip(),
                    "created_by": by,
                    "channel": channel,
                    "created_at": at.isoformat(),
                    "expires_at": expires.isoformat() if expires else None,
                },
            )
        assert lock_id is not None
        return Lock(lock_id, env, app or None, reason.strip(), by, channel, at, expires)

    def unlock(self, env: str, *, app: str | None, by: str, now: datetime | None = None) -> Lock:
        """Release the active lock on exactly this scope and return it; UserError when there is none.

        Whether `by` may release someone else's lock is the caller's decision (it needs --force).
        """
        at = _utc(now)
        app_key = app or ""
        with self._db.transaction() as db:
            rows = db.query(
                "SELECT * FROM locks WHERE released_at IS NULL AND env = ? AND app = ? ORDER BY id",
                [env, app_key],
            )
            current = next((lk for lk in [_lock(r) for r in rows] if lk.is_active(at)), None)
            if current is not None:
                _release(db, current.id, at, by, "unlocked")
        if current is None:
            scope = f"{env}/{app}" if app else env
            others = [lk.scope for lk in self.active(env=env, now=at)]
            hint = "Locked now: " + ", ".join(f"`{s}`" for s in others) + "." if others else None
            raise UserError(f"`{scope}` is not locked.", hint=hint)
        return _released(current, at, by, "unlocked")

    def active(self, *, env: str | None = None, now: datetime | None = None) -> list[Lock]:
        """Unreleased, unexpired locks, env-wide ones first."""
        at = _utc(now)
        sql = "SELECT * FROM locks WHERE released_at IS NULL"
        params: list[Any] = []
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        with self._db.read() as tx:
            rows = list(tx.query(sql + " ORDER BY env, app, id", params))
        return [lk for lk in (_lock(r) for r in rows) if lk.is_active(at)]

    def blocking(
        self, env: str | None, app: str | Iterable[str] | None, *, now: datetime | None = None
    ) -> Lock | None:
        """The lock that stops an action on (env, app), preferring an env-wide one.

        `app` may be several names for one app (configured name and backend object name).
        No app means an action on the whole environment: any lock in it blocks, since the
        action would also deploy the locked app. No env (an app no configured environment
        points at): a lock on that app name in any environment blocks, to err on the safe side.
        """
        names = _names(app)
        locks = self.active(env=env, now=now)
        if env is not None:
            env_wide = next((lk for lk in locks if lk.app is None), None)
            if env_wide is not None:
                return env_wide
            if not names:
                return locks[0] if locks else None
        return next((lk for lk in locks if lk.app is not None and lk.app in names), None)

    def check(
        self, env: str | None, apps: Iterable[str], *, force: bool, now: datetime | None = None
    ) -> Lock | None:
        """Raise LockedTarget when blocked; with `force`, return the overridden lock (for the audit)."""
        at = _utc(now)
        lock = self.blocking(env, list(apps), now=at)
        if lock is None or force:
            return lock
        raise LockedTarget(lock, now=at)

    def expire_due(self, *, now: datetime | None = None) -> list[Lock]:
        """Release expired locks and return them; each is returned by exactly one call."""
        at = _utc(now)
        expired: list[Lock] = []
        with self._db.transaction() as db:
            rows = db.query("SELECT * FROM locks WHERE released_at IS NULL AND expires_at IS NOT NULL")
            for lock in [_lock(r) for r in rows]:
                due = lock.expires_at is not None and lock.expires_at <= at
                if due and _release(db, lock.id, at, BOT_USER, "expired"):
                    expired.append(_released(lock, at, BOT_USER, "expired"))
        return sorted(expired, key=lambda lk: lk.id)


def _release(db: Tx, lock_id: int, at: datetime, by: str, why: str) -> bool:
    cursor = db.execute(
        "UPDATE locks SET released_at = ?, released_by = ?, release_reason = ? "
        "WHERE id = ? AND released_at IS NULL",
        [at.isoformat(), by, why, lock_id],
    )
    return bool(cursor.rowcount == 1)


def _released(lock: Lock, at: datetime, by: str, why: str) -> Lock:
    return Lock(
        lock.id,
        lock.env,
        lock.app,
        lock.reason,
        lock.created_by,
        lock.channel,
        lock.created_at,
        lock.expires_at,
        released_at=at,
        released_by=by,
        release_reason=why,
    )


def _names(app: str | Iterable[str] | None) -> frozenset[str]:
    if app is None:
        return frozenset()
    if isinstance(app, str):
        return frozenset({app}) if app else frozenset()
    # '' is how the table spells "whole env"; it must never match as an app name.
    return frozenset(n for n in app if n)


def _args(env: str, app: str | None) -> str:
    return f"{env} --app {app}" if app else env


def _until(lock: Lock, at: datetime) -> str:
    if lock.expires_at is None:
        return ""
    end = lock.expires_at.astimezone(UTC)
    if end.date() == at.date():
        return f" until {end:%H:%M} UTC"
    return f" until {end:%Y-%m-%d %H:%M} UTC"


def _utc(value: datetime | None) -> datetime:
    # Stored timestamps are compared across calls; one zone keeps them comparable.
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(value: str | None) -> datetime | None:
    return _utc(datetime.fromisoformat(value)) if value else None


def _lock(row: dict[str, Any]) -> Lock:
    return Lock(
        id=row["id"],
        env=row["env"],
        app=row["app"] or None,
        reason=row["reason"],
        created_by=row["created_by"],
        channel=row["channel"] or "",
        created_at=_utc(datetime.fromisoformat(row["created_at"])),
        expires_at=_ts(row["expires_at"]),
        released_at=_ts(row["released_at"]),
        released_by=row["released_by"],
        release_reason=row["release_reason"],
    )
