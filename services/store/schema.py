"""Versioned schema steps for the bot's database. Append new steps; never edit a released one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _audit_events(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            user_id TEXT NOT NULL,
            user_name TEXT,
            channel TEXT,
            command TEXT,
            target TEXT,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT,
            correlation_id TEXT,
            duration_ms INTEGER
        )"""
    )
    db.execute("CREATE INDEX idx_audit_events_ts ON audit_events (ts)")
    db.execute("CREATE INDEX idx_audit_events_target_ts ON audit_events (target, ts)")
    db.execute("CREATE INDEX idx_audit_events_user_ts ON audit_events (user_id, ts)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def _pending_actions(db: sqlite3.Connection) -> None:
    # Buttons carry only an opaque id; what they do lives here, so they survive a restart.
    db.execute(
        """CREATE TABLE pending_actions (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            requester TEXT NOT NULL,
            channel TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            consumed_at TEXT,
            consumed_by TEXT
        )"""
    )


def _holds(db: sqlite3.Connection) -> None:
    # A hold: the bot changed something that must be undone later (auto-sync turned off for a rollback).
    db.execute(
        """CREATE TABLE holds (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            ref TEXT NOT NULL,
            payload TEXT NOT NULL,
            channel TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            reminded_at TEXT,
            released_at TEXT,
            released_by TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_holds_open ON holds (released_at, kind)")


def _locks(db: sqlite3.Connection) -> None:
    # Deploy locks / freezes on an environment, or on one app in it (app = '' for the whole env).
    db.execute(
        """CREATE TABLE locks (
            id INTEGER PRIMARY KEY,
            env TEXT NOT NULL,
            app TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            channel TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            released_at TEXT,
            released_by TEXT,
            release_reason TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_locks_open ON locks (released_at, env, app)")


def _audit_chain(db: sqlite3.Connection) -> None:
    # Tamper evidence: each row stores the previous row's hash and its own. Retention may delete old
    # rows only inside a transaction that first sets the 'retention_unlock' key; it then records the
    # last deleted row's hash as the new anchor so `audit verify` can start there.
    db.execute("ALTER TABLE audit_events ADD COLUMN prev_hash TEXT")
    db.execute("ALTER TABLE audit_events ADD COLUMN hash TEXT")
    db.execute("CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("DROP TRIGGER audit_events_no_delete")
    db.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_meta WHERE key = 'retention_unlock') "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
    db.execute("CREATE INDEX idx_audit_events_action_ts ON audit_events (action, ts)")


def _seen_requests(db: sqlite3.Connection) -> None:
    # Slack request signatures seen in the last 5 minutes: a replayed request is refused.
    db.execute("CREATE TABLE seen_requests (signature TEXT PRIMARY KEY, seen_at REAL NOT NULL)")
    db.execute("CREATE INDEX idx_seen_requests_seen_at ON seen_requests (seen_at)")


def _promotions(db: sqlite3.Connection) -> None:
    # Promotion requests and their approvals, so a pending one survives a restart. `approvals` is a
    # JSON list of user ids; the status moves only inside a transaction (see services/promotion/store.py).
    db.execute(
        """CREATE TABLE promotions (
            id TEXT PRIMARY KEY,
            audit_id TEXT NOT NULL,
            app TEXT NOT NULL,
            from_env TEXT NOT NULL,
            to_env TEXT NOT NULL,
            repository TEXT NOT NULL,
            target_file TEXT NOT NULL,
            base_sha TEXT NOT NULL,
            diff_hash TEXT NOT NULL,
            diff TEXT NOT NULL,
            summary TEXT NOT NULL,
            requester TEXT NOT NULL,
            requester_name TEXT NOT NULL,
            channel TEXT NOT NULL,
            message_ts TEXT,
            status TEXT NOT NULL,
            approvals TEXT NOT NULL,
            approvals_required INTEGER NOT NULL,
            rejected_by TEXT,
            reason TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            commit_sha TEXT,
            superseded_by TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_promotions_status_expires ON promotions (status, expires_at)")
    db.execute("CREATE INDEX idx_promotions_app_env ON promotions (app, to_env, status)")
    db.execute("CREATE INDEX idx_promotions_audit ON promotions (audit_id)")


def _incidents(db: sqlite3.Connection) -> None:
    # Drift incidents (one row per problem episode) and backend reachability, so a restart keeps the
    # Slack message / thread of each incident and never re-announces one (see services/drift/store.py).
    db.execute(
        """CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            backend TEXT NOT NULL,
            app TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            detail TEXT NOT NULL,
            resources TEXT NOT NULL,
            since TEXT,
            channel TEXT,
            message_ts TEXT,
            thread_ts TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            count INTEGER NOT NULL,
            status TEXT NOT NULL,
            resolved_at TEXT,
            acknowledged_by TEXT,
            acknowledged_at TEXT,
            snoozed_until TEXT,
            snoozed_by TEXT,
            flap_count INTEGER NOT NULL DEFAULT 0
        )"""
    )
    # At most one open incident per key: a second one would mean a second Slack message.
    db.execute("CREATE UNIQUE INDEX idx_incidents_open_key ON incidents (key) WHERE status = 'open'")
    db.execute("CREATE INDEX idx_incidents_status_resolved ON incidents (status, resolved_at)")
    db.execute(
        "CREATE TABLE backend_reachability (backend TEXT PRIMARY KEY, "
        "unreachable_since TEXT NOT NULL, announced INTEGER NOT NULL DEFAULT 0)"
    )


def _requests(db: sqlite3.Connection) -> None:
    # A changing request is audited when accepted (outcome 'started') and again when it ends; the
    # second row names the first in request_id. Requests still running live in inflight_requests
    # (with their Slack message), so a restart can report them as unknown and fix the message.
    db.execute("ALTER TABLE audit_events ADD COLUMN request_id INTEGER")
    db.execute(
        "CREATE INDEX idx_audit_events_request ON audit_events (request_id) WHERE request_id IS NOT NULL"
    )
    db.execute(
        """CREATE TABLE inflight_requests (
            correlation_id TEXT PRIMARY KEY,
            started_id INTEGER,
            owner TEXT NOT NULL,
            user_id TEXT NOT NULL,
            user_name TEXT NOT NULL,
            channel TEXT NOT NULL,
            action TEXT NOT NULL,
            command TEXT NOT NULL,
            target TEXT NOT NULL,
            accepted_at TEXT NOT NULL,
            response_url TEXT,
            message_channel TEXT,
            message_ts TEXT,
            message TEXT
        )"""
    )


def _pending_findings(db: sqlite3.Connection) -> None:
    # When the drift scan first saw a "Git is ahead" finding that its backend gives no start time
    # for (Argo CD), so drift.git_grace is measured from then across restarts (services/drift/store.py).
    db.execute(
        "CREATE TABLE pending_findings "
        "(key TEXT PRIMARY KEY, backend TEXT NOT NULL, first_seen TEXT NOT NULL)"
    )


def _seen_deliveries(db: sqlite3.Connection) -> None:
    # Slack delivery ids (Socket Mode envelopes, trigger / event ids, retried HTTP bodies) share
    # seen_requests with signatures but are remembered longer, so each row carries its own expiry.
    db.execute("ALTER TABLE seen_requests ADD COLUMN expires_at REAL")
    db.execute("UPDATE seen_requests SET expires_at = seen_at + 300")  # the signature window so far
    db.execute("CREATE INDEX idx_seen_requests_expires_at ON seen_requests (expires_at)")


def _promotion_force(db: sqlite3.Connection) -> None:
    # An admin's --force on the request: the only way a promotion passes a deploy lock, at every
    # step (approve, commit, deploy), so it is stored with the request.
    db.execute("ALTER TABLE promotions ADD COLUMN forced_by TEXT")


def _inflight_watch(db: sqlite3.Connection) -> None:
    # How to follow a running operation again after a restart (what it is, how its card is drawn).
    db.execute("ALTER TABLE inflight_requests ADD COLUMN watch TEXT")


def _notification_outbox(db: sqlite3.Connection) -> None:
    # Events waiting for (or done with) a notifier's delivery, so none is lost across a restart:
    # one row per notifier and event (the unique index), the JSON body fixed when it was queued.
    # state: pending → delivered, or dead after the notifier's max_attempts (services/extensions/outbox.py).
    db.execute(
        """CREATE TABLE notification_outbox (
            id INTEGER PRIMARY KEY,
            notifier TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            target TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        )"""
    )
    db.execute("CREATE UNIQUE INDEX idx_outbox_notifier_event ON notification_outbox (notifier, event_id)")
    db.execute("CREATE INDEX idx_outbox_state_due ON notification_outbox (state, next_attempt_at)")
    # How far each notifier has taken the audit trail into its outbox: on start, rows after it
    # (appended while no delivery ran, or lost between an append and its outbox write) are taken.
    db.execute("CREATE TABLE notification_cursor (notifier TEXT PRIMARY KEY, audit_id INTEGER NOT NULL)")


def _pipeline_monitor(db: sqlite3.Connection) -> None:
    # PipelineRuns the monitor already posted (or found failed at its first look, `baseline`), so a
    # restart or a new leader never posts one twice; `posting` is a claim taken just before the
    # post (services/store/posted_runs.py). A cursor row per (cluster, namespace, pipeline) says
    # that pipeline's history was baselined: only failures after it are announced.
    db.execute(
        """CREATE TABLE pipeline_runs_posted (
            cluster TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            uid TEXT NOT NULL,
            pipeline TEXT NOT NULL,
            state TEXT NOT NULL,
            channel TEXT,
            message_ts TEXT,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (cluster, namespace, name, uid)
        )"""
    )
    db.execute(
        "CREATE TABLE pipeline_monitor_cursors (cluster TEXT NOT NULL, namespace TEXT NOT NULL, "
        "pipeline TEXT NOT NULL, baselined_at TEXT NOT NULL, PRIMARY KEY (cluster, namespace, pipeline))"
    )


def _change_requests(db: sqlite3.Connection) -> None:
    # The pull / merge request a promotion goes through (repositories in mode pull_request), one
    # per promotion: keyed by its audit_id, which a superseding request keeps (same branch, same PR).
    # `head_sha` is the commit the bot pushed there and the Slack approvals are bound to.
    db.execute(
        """CREATE TABLE promotion_change_requests (
            audit_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            number INTEGER NOT NULL,
            url TEXT NOT NULL,
            branch TEXT NOT NULL,
            head_sha TEXT NOT NULL,
            diff_hash TEXT NOT NULL,
            state TEXT NOT NULL,
            readiness TEXT NOT NULL DEFAULT '',
            missing TEXT NOT NULL DEFAULT '',
            checks TEXT NOT NULL DEFAULT '',
            host_approved_sha TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )


def _protected_branches(db: sqlite3.Connection) -> None:
    # Repositories in mode auto whose branch refused the bot's push as protected: their changes go
    # through a pull / merge request from then on, and the switch is announced once.
    db.execute(
        """CREATE TABLE protected_branches (
            repository TEXT NOT NULL,
            branch TEXT NOT NULL,
            host TEXT,
            code TEXT,
            detected_at TEXT NOT NULL,
            PRIMARY KEY (repository, branch)
        )"""
    )


def _deployments(db: sqlite3.Connection) -> None:
    # The deployment feed (services/feed): the last deploy attempt accounted for per app (a restart,
    # a new leader or a replayed stream resumes from it), every deploy found with its message once
    # posted (`stats` reads them; UNIQUE: never twice), and the deploys the bot itself started, so
    # the feed links the bot's own message instead of announcing them again.
    db.execute(
        "CREATE TABLE feed_cursors (key TEXT PRIMARY KEY, op_id TEXT, revision TEXT, "
        "images TEXT NOT NULL DEFAULT '[]', chart TEXT, updated_at TEXT NOT NULL)"
    )
    db.execute(
        """CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            deploy_id TEXT NOT NULL,
            app TEXT NOT NULL,
            env TEXT NOT NULL,
            target TEXT NOT NULL,
            result TEXT NOT NULL,
            old_revision TEXT,
            new_revision TEXT,
            old_version TEXT,
            new_version TEXT,
            started_at TEXT,
            finished_at TEXT NOT NULL,
            initiated_by TEXT,
            automated INTEGER NOT NULL DEFAULT 0,
            bot_user TEXT,
            commit_author TEXT,
            commit_time TEXT,
            commit_message TEXT,
            state TEXT NOT NULL,
            channel TEXT,
            message_ts TEXT,
            link TEXT,
            detected_at TEXT NOT NULL,
            UNIQUE (key, deploy_id)
        )"""
    )
    db.execute("CREATE INDEX deployments_finished ON deployments (finished_at)")
    db.execute(
        """CREATE TABLE bot_deploys (
            correlation_id TEXT NOT NULL,
            key TEXT NOT NULL,
            user_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            channel TEXT,
            message_ts TEXT,
            deployment_id INTEGER,
            PRIMARY KEY (correlation_id, key)
        )"""
    )


def _replicas(db: sqlite3.Connection) -> None:
    # Each running bot process and when it last said it is alive: another replica's in-flight
    # requests are closed as cut off only once their owner has stopped saying so.
    db.execute(
        "CREATE TABLE replicas (owner TEXT PRIMARY KEY, started_at TEXT NOT NULL, seen_at TEXT NOT NULL)"
    )
    # Mutating commands per user, counted across replicas (one replica counts in memory).
    db.execute("CREATE TABLE rate_hits (user_id TEXT NOT NULL, at REAL NOT NULL)")
    db.execute("CREATE INDEX idx_rate_hits_user_at ON rate_hits (user_id, at)")


Step = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
    (1, "audit_events table, indexes, append-only triggers", _audit_events),
    (2, "pending_actions: what each button does, single use", _pending_actions),
    (3, "holds: auto-sync turned off by a rollback, to remind about", _holds),
    (4, "locks: deploy locks and freezes per environment / app", _locks),
    (5, "audit hash chain, retention anchor, action index", _audit_chain),
    (6, "seen_requests: replayed Slack requests are refused", _seen_requests),
    (7, "promotions: requests, approvals and their outcome", _promotions),
    (8, "incidents: drift incident lifecycle, backend reachability", _incidents),
    (9, "audit request_id (started → result), inflight_requests", _requests),
    (10, "pending_findings: first sight of Git-ahead drift, for drift.git_grace", _pending_findings),
    (11, "seen_requests.expires_at: Slack deliveries are run once", _seen_deliveries),
    (12, "promotions.forced_by: a lock overridden with --force at request", _promotion_force),
    (13, "inflight_requests.watch: operations followed again after a restart", _inflight_watch),
    (14, "notification_outbox, notification_cursor: notifier deliveries", _notification_outbox),
    (15, "pipeline_runs_posted, pipeline_monitor_cursors: failed runs posted once", _pipeline_monitor),
    (16, "promotion_change_requests: the PR / MR a promotion goes through", _change_requests),
    (17, "protected_branches: mode auto repositories found protected, PR-only since", _protected_branches),
    (18, "feed_cursors, deployments, bot_deploys: the deployment feed and its history", _deployments),
    (19, "replicas, rate_hits: what replicas sharing the database must know of each other", _replicas),
)
LATEST = MIGRATIONS[-1][0]  # the schema version this release needs (both engines reach the same)
