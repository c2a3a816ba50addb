"""The pipeline monitor's memory: which failed PipelineRuns were already announced.

All of it is in the database, so a restart, or a new leader on the same file, never posts a run
twice. A run is claimed (`posting`) in its own transaction just before its post and marked
`posted` after; a post Slack refused releases the claim so the next scan tries again, while a
claim left by a process that stopped mid-post stays: at most once, never twice.

The first scan of a (cluster, namespace, pipeline) records the runs that had already failed as
`baseline` and writes a cursor row, so starting the monitor (or adding a pipeline to the config)
does not flood the channel with history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.store.db import Database

STATE_BASELINE = "baseline"
STATE_POSTING = "posting"
STATE_POSTED = "posted"
PRUNE_AFTER = timedelta(hours=1)  # a run missing from one list may be a hiccup; an hour is not


@dataclass(frozen=True)
class RunKey:
    """One PipelineRun for good: a run deleted and created again under its name has a new uid."""

    cluster: str
    namespace: str
    name: str
    uid: str


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


class PostedRuns:
    def __init__(self, db: Database) -> None:
        self._db = db

    def baselined(self, cluster: str, namespace: str) -> set[str]:
        """The pipelines of this namespace whose history was already recorded."""
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT pipeline FROM pipeline_monitor_cursors WHERE cluster = ? AND namespace = ?",
                [cluster, namespace],
            )
            return {str(r["pipeline"]) for r in rows}

    def baseline(self, pipeline: str, runs: Iterable[RunKey], *, cluster: str, namespace: str,
                 now: datetime) -> None:  # fmt: skip
        """Record `runs` as seen without a post, and the pipeline's cursor, in one transaction."""
        at = _iso(now)
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO pipeline_runs_posted (cluster, namespace, name, uid, pipeline, state, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(k.cluster, k.namespace, k.name, k.uid, pipeline, STATE_BASELINE, at) for k in runs],
            )
            db.execute(
                "INSERT INTO pipeline_monitor_cursors (cluster, namespace, pipeline, baselined_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [cluster, namespace, pipeline, at],
            )

    def known(self, cluster: str, namespace: str) -> set[RunKey]:
        """Every run of this namespace recorded in any state."""
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT name, uid FROM pipeline_runs_posted WHERE cluster = ? AND namespace = ?",
                [cluster, namespace],
            )
            return {RunKey(cluster, namespace, str(r["name"]), str(r["uid"])) for r in rows}

    def claim(self, key: RunKey, pipeline: str, *, now: datetime) -> bool:
        """Take the run for posting; False when it is recorded already (another scan got there)."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO pipeline_runs_posted (cluster, namespace, name, uid, pipeline, state, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [key.cluster, key.namespace, key.name, key.uid, pipeline, STATE_POSTING, _iso(now)],
            )
            return bool(cursor.rowcount == 1)

    def mark_posted(self, key: RunKey, *, channel: str | None, ts: str | None, now: datetime) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE pipeline_runs_posted SET state = ?, channel = ?, message_ts = ?, recorded_at = ? "
                "WHERE cluster = ? AND namespace = ? AND name = ? AND uid = ?",
                [STATE_POSTED, channel, ts, _iso(now), key.cluster, key.namespace, key.name, key.uid],
            )

    def release(self, key: RunKey) -> None:
        """Give a claim back (its post failed): the next scan tries the run again."""
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM pipeline_runs_posted WHERE cluster = ? AND namespace = ? AND name = ? "
                "AND uid = ? AND state = ?",
                [key.cluster, key.namespace, key.name, key.uid, STATE_POSTING],
            )

    def message(self, key: RunKey) -> tuple[str, str] | None:
        """(channel, ts) of a run's post, when it was posted to Slack."""
        with self._db.read() as tx:
            rows = list(
                tx.query(
                    "SELECT channel, message_ts FROM pipeline_runs_posted WHERE cluster = ? AND "
                    "namespace = ? AND name = ? AND uid = ? AND state = ?",
                    [key.cluster, key.namespace, key.name, key.uid, STATE_POSTED],
                )
            )
        if rows and rows[0]["channel"] and rows[0]["message_ts"]:
            return str(rows[0]["channel"]), str(rows[0]["message_ts"])
        return None

    def forget_missing(
        self, cluster: str, namespace: str, present: set[RunKey], *, older_than: datetime
    ) -> int:
        """Drop rows of runs the namespace no longer lists (pruned or deleted: a uid never comes
        back), recorded before `older_than`; returns how many. Keeps the table the size of what
        the cluster keeps."""
        gone = [k for k in self.known(cluster, namespace) if k not in present]
        if not gone:
            return 0
        with self._db.transaction() as db:
            return db.executemany(
                "DELETE FROM pipeline_runs_posted WHERE cluster = ? AND namespace = ? AND name = ? "
                "AND uid = ? AND recorded_at < ?",
                [(k.cluster, k.namespace, k.name, k.uid, _iso(older_than)) for k in gone],
            )
