"""The feed's memory in the database: cursors per app, the deploy history, the bot's own deploys.

A deploy is claimed (its row inserted, UNIQUE per app and attempt) in the same transaction that
moves the app's cursor, before anything is posted: a restart or a new leader finds it claimed and
never posts it again (at most once, as the pipeline monitor). The rows are also the history that
`/gitops stats` and the weekly digest read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.feed.model import CommitInfo, Cursor, Deploy
from services.store.db import Database

STATE_POSTING = "posting"  # claimed, the post under way (or cut off by a stop: never retried)
STATE_POSTED = "posted"
STATE_LINKED = "linked"  # started through the bot: its own message is the announcement
STATE_UNPOSTED = "unposted"  # no channel routes it, or Slack refused: in the history only
BOT_CLAIM_WINDOW = timedelta(hours=6)  # a bot-started sync older than this is not this deploy


@dataclass(frozen=True)
class BotDeploy:
    correlation_id: str
    user_id: str
    started_at: datetime
    channel: str | None
    message_ts: str | None


@dataclass(frozen=True)
class DeployRow:
    id: int
    app: str
    env: str
    target: str
    result: str
    new_revision: str | None
    finished_at: datetime
    commit_time: datetime | None
    initiated_by: str | None
    automated: bool
    bot_user: str | None


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when else None


def _when(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


class FeedStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.records = DeliveryRecords(db)

    # -- cursors -------------------------------------------------------------------------------

    def cursors(self) -> dict[str, Cursor]:
        with self._db.read() as tx:
            rows = list(tx.query("SELECT key, op_id, revision, images, chart FROM feed_cursors"))
        return {
            str(r["key"]): Cursor(
                str(r["key"]), r["op_id"], r["revision"], tuple(json.loads(r["images"])), r["chart"]
            )
            for r in rows
        }

    def save_cursors(self, cursors: Iterable[Cursor], *, now: datetime) -> None:
        rows = [_cursor_row(c, now) for c in cursors]
        if not rows:
            return
        with self._db.transaction() as db:
            db.executemany(_UPSERT_CURSOR, rows)

    # -- deploys -------------------------------------------------------------------------------

    def claim(
        self, deploy: Deploy, cursor: Cursor, *, app: str, env: str, target: str, commit: CommitInfo | None,
        bot: BotDeploy | None, state: str, now: datetime,
    ) -> int | None:  # fmt: skip
        """Record the deploy and move the cursor in one transaction; its row id, or None when it
        was recorded already (another replica, or before a restart)."""
        finished = deploy.finished_at or now
        row = {
            "key": deploy.key, "deploy_id": deploy.deploy_id, "app": app, "env": env, "target": target,
            "result": deploy.result, "old_revision": deploy.old_revision, "new_revision": deploy.new_revision,
            "old_version": version_text(deploy.old_images, deploy.old_chart),
            "new_version": version_text(deploy.new_images, deploy.new_chart),
            "started_at": _iso(deploy.started_at), "finished_at": _iso(finished),
            "initiated_by": deploy.initiated_by, "automated": int(deploy.automated),
            "bot_user": bot.user_id if bot else None,
            "commit_author": commit.author if commit else None,
            "commit_time": _iso(commit.date) if commit else None,
            "commit_message": commit.message if commit else None,
            "state": state, "channel": bot.channel if bot else None,
            "message_ts": bot.message_ts if bot else None,
            "link": None, "detected_at": _iso(now),
        }  # fmt: skip
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._db.transaction() as db:
            inserted = db.execute(
                f"INSERT INTO deployments ({columns}) VALUES ({marks}) "  # noqa: S608 - fixed names
                "ON CONFLICT DO NOTHING RETURNING id",
                list(row.values()),
            ).fetchone()
            db.execute(_UPSERT_CURSOR, _cursor_row(cursor, now))
            if inserted is None:
                return None
            deployment_id = int(inserted[0])
            if bot is not None:
                db.execute(
                    "UPDATE bot_deploys SET deployment_id = ? WHERE correlation_id = ? AND key = ?",
                    [deployment_id, bot.correlation_id, deploy.key],
                )
            return deployment_id

    def posted(self, deployment_id: int, *, state: str, channel: str | None = None, ts: str | None = None,
               link: str | None = None) -> None:  # fmt: skip
        with self._db.transaction() as db:
            db.execute(
                "UPDATE deployments SET state = ?, channel = COALESCE(?, channel), "
                "message_ts = COALESCE(?, message_ts), link = COALESCE(?, link) WHERE id = ?",
                [state, channel, ts, link, deployment_id],
            )

    def history(self, *, since: datetime, until: datetime) -> list[DeployRow]:
        with self._db.read() as tx:
            rows = list(
                tx.query(
                    "SELECT id, app, env, target, result, new_revision, finished_at, commit_time, "
                    "initiated_by, automated, bot_user FROM deployments "
                    "WHERE finished_at >= ? AND finished_at < ? ORDER BY finished_at",
                    [_iso(since), _iso(until)],
                )
            )
        return [_row(r, since) for r in rows]

    def count(self) -> int:
        with self._db.read() as tx:
            return int(tx.execute("SELECT COUNT(*) FROM deployments").fetchone()[0])

    # -- deploys the bot started -----------------------------------------------------------------

    def bot_started(self, key: str, *, correlation_id: str, user_id: str, at: datetime,
                    channel: str | None, message_ts: str | None) -> None:  # fmt: skip
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO bot_deploys (correlation_id, key, user_id, started_at, channel, message_ts) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (correlation_id, key) DO UPDATE SET "
                "user_id = excluded.user_id, started_at = excluded.started_at, channel = excluded.channel, "
                "message_ts = excluded.message_ts, deployment_id = NULL",
                [correlation_id, key, user_id, _iso(at), channel, message_ts],
            )

    def shown(self, correlation_id: str, *, channel: str, ts: str) -> None:
        """The request's message, once Slack shows it: the link a feed entry points to."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE bot_deploys SET channel = ?, message_ts = ? WHERE correlation_id = ?",
                [channel, ts, correlation_id],
            )

    def bot_deploy(self, key: str, *, started_at: datetime | None, finished_at: datetime | None,
                   now: datetime) -> BotDeploy | None:  # fmt: skip
        """The bot's own request behind this deploy: the newest one for the app not yet matched,
        started before the deploy finished (a minute of clock skew allowed) and recently."""
        end = (finished_at or now) + timedelta(minutes=1)
        begin = (started_at or end) - BOT_CLAIM_WINDOW
        with self._db.read() as tx:
            rows = list(
                tx.query(
                    "SELECT correlation_id, user_id, started_at, channel, message_ts FROM bot_deploys "
                    "WHERE key = ? AND deployment_id IS NULL AND started_at >= ? AND started_at <= ? "
                    "ORDER BY started_at DESC LIMIT 1",
                    [key, _iso(begin), _iso(end)],
                )
            )
        if not rows:
            return None
        r = rows[0]
        return BotDeploy(str(r["correlation_id"]), str(r["user_id"]), _when(r["started_at"]) or now,
                         r["channel"], r["message_ts"])  # fmt: skip


_UPSERT_CURSOR = (
    "INSERT INTO feed_cursors (key, op_id, revision, images, chart, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET op_id = excluded.op_id, revision = excluded.revision, "
    "images = excluded.images, chart = excluded.chart, updated_at = excluded.updated_at"
)


def _cursor_row(c: Cursor, now: datetime) -> list[object]:
    return [c.key, c.op_id, c.revision, json.dumps(list(c.images)), c.chart, _iso(now)]


def version_text(images: tuple[str, ...], chart: str | None) -> str | None:
    """What a person calls the version: the chart, else the images' tags."""
    if chart:
        return chart
    tags = [i.rpartition(":")[2] for i in images if ":" in i.rpartition("/")[2]]
    return ", ".join(tags) or None


def _row(r: dict[str, Any], since: datetime) -> DeployRow:
    return DeployRow(
        id=int(r["id"]), app=str(r["app"]), env=str(r["env"]), target=str(r["target"]),
        result=str(r["result"]),
        new_revision=r["new_revision"], finished_at=_when(r["finished_at"]) or since,
        commit_time=_when(r["commit_time"]), initiated_by=r["initiated_by"], automated=bool(r["automated"]),
        bot_user=r["bot_user"],
    )  # fmt: skip


def _parsed(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class DeliveryRecords:
    """What `/gitops stats` reads besides the deploys: incidents (drift's table) and rollbacks (the
    audit trail's finished rollback rows)."""

    ROLLBACK_ACTIONS = ("rollback_confirm", "rollback_disable_autosync")

    def __init__(self, db: Database) -> None:
        self._db = db

    def incidents(self, *, since: datetime, until: datetime) -> list[tuple[str, datetime, datetime | None]]:
        """(incident key, opened, resolved) of incidents open at some point in [since, until)."""
        with self._db.read() as tx:
            rows = list(tx.query("SELECT key, first_seen, resolved_at FROM incidents"))
        found = []
        for r in rows:
            opened, resolved = _parsed(r["first_seen"]), _parsed(r["resolved_at"])
            if opened is None or opened >= until or (resolved is not None and resolved < since):
                continue
            found.append((str(r["key"]), opened, resolved))
        return found

    def rollbacks(self, *, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
        """(audit target, when) of rollbacks that went through in the period."""
        marks = ", ".join("?" for _ in self.ROLLBACK_ACTIONS)
        with self._db.read() as tx:
            rows = list(
                tx.query(
                    f"SELECT target, ts FROM audit_events WHERE action IN ({marks}) AND outcome = 'ok'",  # noqa: S608
                    list(self.ROLLBACK_ACTIONS),
                )
            )
        found = []
        for r in rows:
            at = _parsed(r["ts"])
            if at is not None and since <= at < until:
                found.append((str(r["target"] or ""), at))
        return found
