"""The scheduled drift scan: findings → incidents → one Slack message per incident, kept up to date.

Runs only on the leader. New incidents are posted once (a storm becomes one digest), later scans
edit the same message, a cleared finding edits it to "resolved" and replies in its thread (a
digest is redrawn from all its incidents instead), and a backend that does not answer is announced
once and never resolves anything. An undeployed Git change waits `drift.git_grace` first.
An incident opening (or coming back) and resolving is also an audit row of the bot's own
(`drift.opened`, `drift.resolved`), so it is in `/gitops audit` and reaches the notifiers.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply
from handlers.deps import Deps
from handlers.drift.views import digest_card, duration_text, incident_card
from handlers.posting import PacedPoster
from services.audit.trail import AuditEvent
from services.drift.scan import Finding, scan
from services.drift.store import Change, IncidentStore
from services.errors import GitOpsBotError
from services.extensions.events import BOT_USER
from services.leader.election import Leadership
from services.settings.routes import route_channel

log = logging.getLogger(__name__)


@dataclass
class DriftJob:
    deps: Deps
    client: WebClient
    store: IncidentStore
    leadership: Leadership
    pace: float = 1.0  # seconds between posts to one channel (Slack allows ~1 message/s per channel)
    sleep: Callable[[float], None] = time.sleep
    _poster: PacedPoster = field(init=False)

    def __post_init__(self) -> None:
        self._poster = PacedPoster(self.client, pace=self.pace, sleep=self.sleep, what="drift")

    def run(self) -> int:
        """One scan; returns how many Slack calls it made (0 when not the leader)."""
        ops = self.deps.ops
        if ops is None or not self.leadership.is_leader():
            return 0
        settings = self.deps.settings.drift
        now = self.deps.clock()
        result = scan(ops.resolver.backends, now=now, suspended_after=settings.suspended_after,
                      git_grace=settings.git_grace)  # fmt: skip
        calls = self._reachability(result.unreachable, result.scanned)
        was_open = {i.id for i in self.store.open_incidents()}
        changes = self.store.apply(
            result, now=now, flap_window=settings.flap_window, git_grace=settings.git_grace
        )
        self._audit(changes, was_open)
        new = [c for c in changes if c.kind == "new" and not c.quiet]
        by_channel: dict[str, list[Change]] = defaultdict(list)
        for change in new:
            channel = self._route(change.finding)
            if channel:
                by_channel[channel].append(change)
        for channel, batch in by_channel.items():
            if len(batch) > settings.digest_threshold:
                calls += self._digest(channel, batch)
            else:
                for change in batch:
                    calls += self._post_new(channel, change)
        edits = [c for c in changes if c.kind != "new" and c.incident.message_ts and c.incident.channel]
        if edits:
            calls += self._edit_all(edits)
        return calls

    def _audit(self, changes: Sequence[Change], was_open: set[int]) -> None:
        """One row per incident that opened (a "new" one not open before: a lost post retried is
        not a new incident) or resolved in this scan."""
        ops = self.deps.ops
        rows = []
        for change in changes:
            incident = change.incident
            if change.kind == "resolved":
                action, channel = "drift.resolved", incident.channel or ""
            elif change.kind in ("new", "reopened") and incident.id not in was_open:
                action, channel = "drift.opened", self._route(change.finding) or ""
            else:
                continue
            reason = f"{incident.title}: {incident.detail}" if incident.detail else incident.title
            rows.append(
                AuditEvent(
                    user_id=BOT_USER, user_name=BOT_USER, channel=channel, command="drift scan",
                    target=ops.resolver.display_target(incident.app) if ops is not None else incident.app,
                    action=action, outcome="ok", detail=f"incident {incident.id} ({incident.kind}): {reason}",
                )
            )  # fmt: skip
        if rows:
            try:
                self.deps.audit.append_many(rows)
            except GitOpsBotError:  # the alerts still go out; the log says what the trail lacks
                log.error("drift audit rows not written", extra={"rows": len(rows)})

    def _route(self, finding: Finding | None) -> str | None:
        settings = self.deps.settings
        if finding is not None and self.deps.ops is not None:
            env, app = self.deps.ops.resolver.scope_of(finding.ref)
            labels = (f"{k}={v}" for k, v in finding.labels)
            return route_channel(
                settings.drift.routes,
                settings.drift_channel,
                env=env,
                names=(app, finding.ref.name),
                labels=labels,
            )
        return settings.drift_channel

    def _post_new(self, channel: str, change: Change) -> int:
        reply = incident_card(change.incident, now=self.deps.clock())
        ts = self._post(channel, reply)
        if ts is not None:
            self.store.set_message(change.incident.id, channel=channel, ts=ts)
        return 1

    def _digest(self, channel: str, batch: Sequence[Change]) -> int:
        ts = self._post(channel, digest_card([c.incident for c in batch]))
        if ts is not None:
            for change in batch:  # each incident lives in the digest: resolutions go to its thread
                self.store.set_message(change.incident.id, channel=channel, ts=ts)
        return 1

    def _edit_all(self, edits: Sequence[Change]) -> int:
        """Each changed message is edited once: a digest is redrawn from every incident in it (open
        and resolved), never replaced by one incident's card; replies go to each incident's thread."""
        now = self.deps.clock()
        # One read per scan: every incident sharing each edited message (a digest holds several).
        messages = self.store.on_messages(_message_of(c) for c in edits)
        calls = 0
        for (channel, ts), incidents in messages.items():
            if incidents:
                card = digest_card(incidents) if len(incidents) > 1 else incident_card(incidents[0], now=now)
                calls += self._update(channel, ts, card)
        for change in edits:
            calls += self._thread_note(change, now)
        return calls

    def _thread_note(self, change: Change, now: datetime) -> int:
        incident = change.incident
        if change.quiet:
            return 0
        if change.kind == "resolved":
            took = duration_text(incident.first_seen, incident.resolved_at or now)
            return self._reply(incident, msg.DRIFT_RESOLVED.format(duration=took) + f" ({incident.app})")
        if change.kind == "reopened":
            return self._reply(
                incident, msg.DRIFT_REOPENED.format(count=incident.flap_count) + f" ({incident.app})"
            )
        return 0

    def _reachability(self, unreachable: Sequence[str], scanned: Sequence[str]) -> int:
        channel = self.deps.settings.drift_channel
        calls = 0
        now = self.deps.clock()
        for backend in unreachable:
            if self.store.backend_unreachable(backend, now=now) and channel:
                text = msg.DRIFT_UNREACHABLE.format(backend=backend)
                self._post(channel, Reply(text=text, response_type="in_channel"))
                calls += 1
        for backend in scanned:
            if self.store.backend_reachable(backend) and channel:
                self._post(
                    channel,
                    Reply(text=msg.DRIFT_REACHABLE.format(backend=backend), response_type="in_channel"),
                )
                calls += 1
        return calls

    def _post(self, channel: str, reply: Reply, *, thread_ts: str | None = None) -> str | None:
        # `pace` / `sleep` stay fields of the job: tests and the demo set them after construction.
        self._poster.pace, self._poster.sleep = self.pace, self.sleep
        return self._poster.post(channel, reply, thread_ts=thread_ts)

    def _update(self, channel: str, ts: str, reply: Reply) -> int:
        try:
            self.client.chat_update(channel=channel, ts=ts, text=reply.text, blocks=list(reply.blocks))
        except SlackApiError as exc:
            log.warning(
                "drift update failed", extra={"channel": channel, "error": str(exc.response.get("error"))}
            )
        return 1

    def _reply(self, incident: object, text: str) -> int:
        channel = getattr(incident, "channel", None)
        thread = getattr(incident, "thread_ts", None) or getattr(incident, "message_ts", None)
        if channel and thread:
            self._post(channel, Reply(text=text, response_type="in_channel"), thread_ts=thread)
            return 1
        return 0


def _message_of(change: Change) -> tuple[str, str]:
    return change.incident.channel or "", change.incident.message_ts or ""
