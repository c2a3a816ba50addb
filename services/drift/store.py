"""Drift incidents in SQLite: one Slack message per problem, updated in place, resolved, reopened.

All state lives in the database (nothing in memory), so a new `IncidentStore` on the same file
after a restart neither re-posts open incidents nor loses their message / thread timestamps; this
is what Argo CD Notifications loses on restart and Flux never had (docs/anchors.md §2.3, §2.4).

Update policy: an incident seen again emits "update" only when what a reader sees changed (title,
detail, resources), or every `refresh_every` scans so "last seen / seen N times" does not go
stale; the rest of the time only the row changes. This keeps chat.update calls well inside Slack's
rate limits with many incidents open.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from services.drift.incident import (
    Change,
    ChangeKind,
    Incident,
    finding_fields,
    incident_of,
    iso,
    new_row,
    parse,
    utc,
    visible_change,
)
from services.drift.scan import Finding, ScanResult
from services.errors import UserError
from services.store.db import Database, Tx

DEFAULT_REFRESH_EVERY = 15  # scans; 30 minutes at the default 2-minute drift interval


class IncidentStore:
    def __init__(self, db: Database, *, refresh_every: int = DEFAULT_REFRESH_EVERY) -> None:
        if refresh_every < 1:
            raise ValueError("refresh_every must be at least 1")
        self._db = db
        self._refresh_every = refresh_every

    def apply(
        self,
        result: ScanResult,
        *,
        now: datetime,
        flap_window: timedelta,
        git_grace: timedelta = timedelta(0),
    ) -> list[Change]:
        """Fold one scan into the incidents, in one transaction; the changes to show, by key.

        A finding with an open incident updates it; one whose incident resolved at most
        `flap_window` ago reopens that same incident (flap_count + 1, acknowledgement cleared
        since the fix did not hold); any other finding opens a new incident. An open incident
        with no finding resolves only if its backend is in `result.scanned`: an unreachable or
        unlisted backend says nothing about its apps.

        A "Git is ahead" finding without a start time from its backend (Argo CD records none)
        counts only once the bot has seen it for `git_grace` (see `_past_grace`).
        """
        at = utc(now)
        changes: list[Change] = []
        with self._db.transaction() as db:
            open_now = {i.key: i for i in _select(db, "status = 'open'", [])}
            recent = {
                i.key: i  # ascending id: the newest episode of a key wins
                for i in _select(db, "status = 'resolved' AND resolved_at >= ?", [iso(at - flap_window)])
            }
            findings, first_seen = _past_grace(db, result, at, git_grace, set(open_now))
            for finding in findings:
                kind: ChangeKind | None
                current = open_now.pop(finding.key, None)
                if current is not None:
                    fields = {**finding_fields(finding), "last_seen": iso(at), "count": current.count + 1}
                    updated = _update(db, current.id, fields)
                    kind = self._seen_again(updated, visible_change(current, finding))
                elif (previous := recent.get(finding.key)) is not None:
                    fields = {
                        **finding_fields(finding),
                        "last_seen": iso(at),
                        "count": previous.count + 1,
                        "status": "open",
                        "resolved_at": None,
                        "flap_count": previous.flap_count + 1,
                        "acknowledged_by": None,
                        "acknowledged_at": None,
                    }
                    updated = _update(db, previous.id, fields)
                    kind = "reopened" if updated.message_ts else "new"
                else:
                    row = new_row(finding, at)
                    if finding.key in first_seen:  # held back: the incident began when first seen
                        row["first_seen"] = iso(first_seen[finding.key])
                    updated, kind = _one(db, db.insert_returning_id("incidents", row)), "new"
                if kind is not None:
                    changes.append(Change(kind, updated, quiet=updated.snoozed(at), finding=finding))
            scanned = set(result.scanned)
            for gone in sorted(open_now.values(), key=lambda i: i.key):
                if gone.backend not in scanned:
                    continue
                resolved = _update(db, gone.id, {"status": "resolved", "resolved_at": iso(at)})
                quiet = resolved.snoozed(at) or resolved.message_ts is None
                changes.append(Change("resolved", resolved, quiet=quiet))
        return changes

    def _seen_again(self, after: Incident, visible: bool) -> ChangeKind | None:
        if after.message_ts is None:
            return "new"  # never posted, or the post was lost before set_message: post it now
        if visible or after.count % self._refresh_every == 0:
            return "update"
        return None

    def set_message(self, incident_id: int, *, channel: str, ts: str, thread_ts: str | None = None) -> None:
        """Record the posted message (its ts is also the thread unless `thread_ts` says otherwise,
        e.g. one digest message for many incidents). Idempotent."""
        with self._db.transaction() as db:
            _one(db, incident_id)
            db.execute(
                "UPDATE incidents SET channel = ?, message_ts = ?, thread_ts = ? WHERE id = ?",
                [channel, ts, thread_ts or ts, incident_id],
            )

    def on_messages(self, messages: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Incident]]:
        """Every incident, open or resolved, posted in each (channel, ts) message, oldest first.

        More than one means a digest: its message is drawn from all of them, never from one.
        """
        wanted = sorted(set(messages))
        found: dict[tuple[str, str], list[Incident]] = {m: [] for m in wanted}
        if not wanted:
            return found
        marks = ", ".join("?" for _ in wanted)
        with self._db.read() as tx:
            rows = _select(tx, f"message_ts IN ({marks})", [ts for _, ts in wanted])
        for incident in rows:
            if incident.channel is not None and incident.message_ts is not None:
                found.get((incident.channel, incident.message_ts), []).append(incident)
        return found

    def open_incidents(self) -> list[Incident]:
        with self._db.read() as tx:
            return _select(tx, "status = 'open'", [])

    def get(self, incident_id: int) -> Incident | None:
        with self._db.read() as tx:
            found = _select(tx, "id = ?", [incident_id])
        return found[0] if found else None

    def by_key(self, key: str) -> Incident | None:
        """The open incident for `key`, else its newest resolved one, else None."""
        with self._db.read() as tx:
            found = _select(tx, "key = ?", [key])
        opened = [i for i in found if i.is_open]
        return opened[0] if opened else (found[-1] if found else None)

    def acknowledge(self, incident_id: int, user: str, *, now: datetime) -> Incident:
        """Mark someone as on it. The first acknowledgement stands; repeating it changes nothing."""
        with self._db.transaction() as db:
            incident = _one(db, incident_id)
            if incident.acknowledged_by is not None:
                return incident
            return _update(db, incident_id, {"acknowledged_by": user, "acknowledged_at": iso(now)})

    def snooze(self, incident_id: int, until: datetime | None, user: str) -> Incident:
        """Silence an incident's changes until `until` (None: end the snooze now)."""
        with self._db.transaction() as db:
            _one(db, incident_id)
            return _update(
                db, incident_id, {"snoozed_until": iso(until), "snoozed_by": user if until else None}
            )

    def backend_unreachable(
        self, backend: str, *, now: datetime, announce_after: timedelta = timedelta(0)
    ) -> bool:
        """Record that `backend` did not answer. True exactly once per outage: the first call at
        which it has been down for `announce_after` (default: at once), so one blip is silent."""
        at = utc(now)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO backend_reachability (backend, unreachable_since, announced) "
                "VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                [backend, iso(at)],
            )
            row = next(iter(db.query("SELECT * FROM backend_reachability WHERE backend = ?", [backend])))
            since = parse(row["unreachable_since"])
            if row["announced"] or since is None or at - since < announce_after:
                return False
            db.execute("UPDATE backend_reachability SET announced = 1 WHERE backend = ?", [backend])
            return True

    def backend_reachable(self, backend: str) -> bool:
        """Record that `backend` answered. True when its outage had been announced (announce the
        recovery once); an outage never announced ends silently."""
        with self._db.transaction() as db:
            rows = list(db.query("SELECT announced FROM backend_reachability WHERE backend = ?", [backend]))
            db.execute("DELETE FROM backend_reachability WHERE backend = ?", [backend])
        return bool(rows and rows[0]["announced"])

    def unreachable_since(self) -> dict[str, datetime]:
        """Backends down now, with the start of their outage (for status pages)."""
        with self._db.read() as tx:
            rows = list(tx.query("SELECT * FROM backend_reachability ORDER BY backend"))
        return {r["backend"]: since for r in rows if (since := parse(r["unreachable_since"])) is not None}


def _past_grace(
    db: Tx, result: ScanResult, at: datetime, grace: timedelta, open_keys: set[str]
) -> tuple[list[Finding], dict[str, datetime]]:
    """The findings to fold in, and when the bot first saw each "Git is ahead" one it held back.

    Argo CD stamps no time on an app falling behind Git, so the bot measures `git_grace` from the
    scan that first saw it, kept in `pending_findings` across scans and restarts. The row stays
    while the app stays behind (an open incident is never held again) and goes once a backend
    that answered no longer reports it, so the next commit gets its own grace. Flux findings
    carry their own start (`since`) and `flux_problems` applies the grace to them.
    """
    rows = {r["key"]: r for r in db.query("SELECT key, backend, first_seen FROM pending_findings")}
    kept: list[Finding] = []
    first_seen: dict[str, datetime] = {}
    for finding in result.findings:
        if finding.kind != "git_ahead" or finding.since is not None:
            kept.append(finding)
            continue
        row = rows.pop(finding.key, None)
        first = parse(row["first_seen"]) if row is not None else None
        if first is None:
            first = at
            db.execute(
                "INSERT INTO pending_findings (key, backend, first_seen) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET backend = excluded.backend, "
                "first_seen = excluded.first_seen",
                [finding.key, finding.backend, iso(at)],
            )
        if finding.key in open_keys or at - first >= grace:
            kept.append(finding)
            first_seen[finding.key] = first
    # Not reported this scan: forget it if its backend answered (or is no longer configured at all).
    unreachable = set(result.unreachable)
    for key, row in rows.items():
        if row["backend"] not in unreachable:
            db.execute("DELETE FROM pending_findings WHERE key = ?", [key])
    return kept, first_seen


def _select(db: Tx, where: str, params: list[Any]) -> list[Incident]:
    # `where` is always a literal from this module; values travel as parameters.
    rows = db.query(f"SELECT * FROM incidents WHERE {where} ORDER BY id", params)  # noqa: S608
    return [incident_of(r) for r in rows]


def _one(db: Tx, incident_id: int) -> Incident:
    found = _select(db, "id = ?", [incident_id])
    if not found:
        raise UserError(f"There is no drift incident #{incident_id}.")
    return found[0]


def _update(db: Tx, incident_id: int, fields: dict[str, Any]) -> Incident:
    assignments = ", ".join(f"{column} = ?" for column in fields)
    # Column names come from this package's own dicts, never from input.
    db.execute(f"UPDATE incidents SET {assignments} WHERE id = ?", [*fields.values(), incident_id])  # noqa: S608
    return _one(db, incident_id)


__all__ = ["DEFAULT_REFRESH_EVERY", "Change", "ChangeKind", "Incident", "IncidentStore"]
