"""Audit rows → typed events (docs/events.md, docs/events.schema.json), and the listener the bot
subscribes to the audit trail so every audited event reaches the notifiers.

An event is a pure function of one committed audit row, so its id (`audit-<row id>`) is stable:
a receiver dedupes by it. Steps that happen in the middle of a command (a promotion requested,
approved, committed) have rows of their own, so their events go out in the order they happened.
Read-only commands, refusals and requests rejected before anything happened give no event; a
`*.started` event is always followed by its `*.finished`, whatever the outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from services.audit.chain import AuditEvent
from services.extensions.model import Event

EVENT_VERSION = 1  # bumped only for a breaking change of the envelope or of a type's data
BOT_USER = "gitops-bot"
NOTIFY_ACTION = "notify"  # a notifier's own dead-letter rows: never an event (no loops)
# Rows the bot writes under its own name, with the event type as their action.
# … and the rows a promotion writes the moment a step happens (by the user who did it, or the bot).
SYSTEM_TYPES = frozenset({
    "drift.opened", "drift.resolved", "lock.expired", "promotion.expired", "promotion.requested",
    "promotion.approved", "promotion.committed", "pipeline.failed", "deploy.completed",
})  # fmt: skip
_READ_ONLY = frozenset({
    "status", "diff", "history", "help", "audit", "whoami", "drift", "drift_diff", "audit_more",
    "invalid", "click", "replay", "shutdown", "stats", NOTIFY_ACTION,
})  # fmt: skip
_STARTED = {"sync": "sync", "drift_sync": "sync", "rollback_confirm": "rollback",
            "rollback_disable_autosync": "rollback"}  # fmt: skip
_SIMPLE_OK = {
    "lock": "lock.set", "unlock": "lock.released", "rollback": "rollback.requested",
    "rollback_cancel": "rollback.cancelled", "drift_ack": "drift.acknowledged",
    "drift_snooze_1h": "drift.snoozed", "drift_snooze_24h": "drift.snoozed",
}  # fmt: skip
_PROMOTION_ACTIONS = frozenset({"promote", "promotion_approve", "promotion_reject"})
_PROMOTION = re.compile(r"promotion (?P<id>\S+): (?P<rest>.*)", re.DOTALL)
_APPROVAL = re.compile(r"approval (?P<have>\d+) of (?P<need>\d+)")
_FINAL_APPROVAL = re.compile(r"approved (?P<have>\d+) of (?P<need>\d+)")
_DEPLOY = re.compile(r"commit (?P<commit>[^,\s]+), deploy (?P<phase>\w+)(?:; (?P<note>.*))?", re.DOTALL)
_COMMITTED = re.compile(r"commit (?P<commit>\S+) to (?P<repository>\S+)")
_NOT_DEPLOYED = re.compile(r"commit (?P<commit>[^,\s]+), not deployed: (?P<reason>.*)", re.DOTALL)
_REVISIONS = re.compile(r"revision (?P<before>\S+) → (?P<after>\S+); phase (?P<phase>\w+)")
_INCIDENT = re.compile(r"incident (?P<id>\d+) \((?P<kind>[\w-]+)\): (?P<reason>.*)", re.DOTALL)
# handlers/feed/job: "succeeded OLD → NEW; version A → B; started by WHO"
_DEPLOYED = re.compile(
    r"(?P<result>succeeded|failed) (?P<before>\S+) → (?P<after>\S+); "
    r"version (?P<vbefore>.+?) → (?P<vafter>.+?); started by (?P<by>.+)",
    re.DOTALL,
)
_LOCK = re.compile(r"lock (?P<id>\d+) on (?P<scope>\S+) expired")
# handlers/pipelines/monitor.audit_detail: "run C/NS/NAME (pipeline P): WORD; task T, step S, exit code N"
_PIPELINE_RUN = re.compile(
    r"run (?P<cluster>[^/\s]+)/(?P<namespace>[^/\s]+)/(?P<run>\S+) \(pipeline (?P<pipeline>[^)\s]+)\): "
    r"(?P<status>[^;]+)(?:; task (?P<task>[^,\s]+)(?:, step (?P<step>[^,\s]+))?"
    r"(?:, exit code (?P<exit>-?\d+))?)?",
    re.DOTALL,
)
# Steps of a change going through a pull / merge request (repositories with mode pull_request or
# auto): the promotion's rows (`promotion <id>: …`) and a Flux rollback's (`rollback <pending id>: …`).
CHANGE_REQUEST_TYPES = frozenset({
    "promotion.pr_opened", "promotion.waiting", "promotion.host_approved", "promotion.merged",
    "promotion.closed", "promotion.conflict", "promotion.pr_head_moved", "promotion.pr_updated",
    "rollback.pr_opened", "rollback.waiting", "rollback.host_approved", "rollback.merged", "rollback.closed",
})  # fmt: skip
# mode auto: a push was refused as protected (either family's row); one event type for both
PROTECTION_ACTIONS = frozenset({"promotion.protection_detected", "rollback.protection_detected"})
_CHANGE_REQUEST = re.compile(r"(?P<ref>(?:PR #|MR !)\d+)")
_ROLLBACK_ROW = re.compile(r"rollback (?P<id>\S+): (?P<rest>.*)", re.DOTALL)
_PROTECTED = re.compile(r"`(?P<branch>[^`]+)` of (?P<repository>\S+) is protected")
_ENDED = {"ok": "succeeded", "failed": "failed", "error": "failed with an internal error",
          "denied": "was refused", "unknown": "ended, outcome unknown"}  # fmt: skip

Data = dict[str, Any]


class Notifiers(Protocol):
    """What the listener hands events to: `Extensions` (services/extensions/manager.py)."""

    def notify(self, event: Event) -> None: ...


def events_for(row: AuditEvent) -> list[Event]:
    """The events one committed audit row stands for, in order (usually none or one)."""
    if row.id is None or row.action in _READ_ONLY:
        return []
    if row.action in SYSTEM_TYPES:
        return [_system(row)]
    if row.action in CHANGE_REQUEST_TYPES or row.action in PROTECTION_ACTIONS:
        return [_change_request(row)]
    if row.outcome == "started":
        family = _STARTED.get(row.action)
        return (
            [_event(row, f"{family}.started", f"{_who(row)} started a {family} of {_on(row)}")]
            if family
            else []
        )
    family = _STARTED.get(row.action)
    if family is not None:  # its started event went out: the finish goes out whatever the outcome
        if row.outcome == "denied" and row.request_id is None:
            return []
        what = f"{family.capitalize()} of {_on(row)} {_ENDED.get(row.outcome, row.outcome)}"
        return [_event(row, f"{family}.finished", _with_detail(what, row), _revisions(row.detail))]
    if row.outcome == "denied":
        return []
    if row.action in _PROMOTION_ACTIONS:
        found = _promotion(row)
        if found is not None:
            return found
        if row.outcome == "ok":  # "nothing to promote": no request was made
            return []
    elif row.action in _SIMPLE_OK:
        if row.outcome != "ok":
            return []
        kind = _SIMPLE_OK[row.action]
        return [_event(row, kind, _with_detail(f"{_who(row)}: {kind.replace('.', ' ')} on {_on(row)}", row))]
    # Anything else that may have changed something: named after its action. A plain failure
    # (a user error, a backend down) stopped before the change and is not an event.
    if row.outcome == "failed":
        return []
    summary = f"{_who(row)} ran `{row.command or row.action}` on {_on(row)}: {row.outcome}"
    return [_event(row, f"command.{row.action}", summary)]


def document(event: Event) -> dict[str, Any]:
    """The JSON document of an event, as notifiers send it (docs/events.md)."""
    return {
        "id": event.id,
        "type": event.type,
        "version": event.version,
        "at": event.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor": event.actor,
        "target": event.target,
        "summary": event.summary,
        "data": dict(event.data),
    }


def encode(event: Event) -> str:
    """The body of a delivery: sorted keys, no spaces, ASCII (every other character \\u-escaped)."""
    return json.dumps(document(event), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def audit_listener(extensions: Notifiers) -> Callable[[AuditEvent], None]:
    """For `AuditStore.subscribe`: each committed row's events go to every notifier (which only
    queue them); a notifier that fails is logged by `Extensions.notify`."""

    def listen(row: AuditEvent) -> None:
        for event in events_for(row):
            extensions.notify(event)

    return listen


# -- the types ---------------------------------------------------------------------------------------


def _promotion(row: AuditEvent) -> list[Event] | None:
    found = _PROMOTION.fullmatch(row.detail)
    if found is None:
        return None
    pid, rest = found["id"], found["rest"]
    base: Data = {"promotion_id": pid}
    where = _on(row)
    if rest.startswith("rejected: "):
        reason = rest.removeprefix("rejected: ")
        summary = f"{_who(row)} rejected promotion {pid} to {where}: {reason}"
        return [_event(row, "promotion.rejected", summary, {**base, "reason": reason})]
    if approval := _APPROVAL.fullmatch(rest):
        have, need = int(approval["have"]), int(approval["need"])
        data = {**base, "approvals": have, "approvals_required": need, "final": False}
        return [_event(row, "promotion.approved", f"{_who(row)} approved promotion {pid} to {where} "
                       f"({have} of {need})", data)]  # fmt: skip
    if rest.startswith("blocked: "):  # a validator stopped it, at the request or at an approval
        reason = rest.removeprefix("blocked: ")
        return [_event(row, "promotion.blocked", f"Promotion {pid} to {where} blocked: {reason}",
                       {**base, "reason": reason})]  # fmt: skip
    if rest == "target moved, approvals reset":
        return [_event(row, "promotion.superseded", f"Promotion {pid} to {where}: the target moved; "
                       "it asks for approval again", base)]  # fmt: skip
    if rest == "nothing left to promote":
        return [
            _event(row, "promotion.redundant", f"Promotion {pid} to {where}: nothing left to promote", base)
        ]
    # The request, the final approval and the commit have rows of their own, written as they
    # happen (`promotion.requested`, …): a result row adds only how it ended.
    terminal = _terminal(row, pid, rest, base)
    if terminal is None:
        return [] if row.action == "promote" and row.outcome == "ok" else None
    return [terminal]


def _terminal(row: AuditEvent, pid: str, rest: str, base: Data) -> Event | None:
    where = _on(row)
    if deploy := _DEPLOY.fullmatch(rest):
        data = {**base, "commit": deploy["commit"], "phase": deploy["phase"]}
        if deploy["note"]:
            data["note"] = deploy["note"]
        if deploy["phase"] == "Succeeded":
            return _event(row, "promotion.deployed", f"Promotion {pid} deployed to {where}: commit "
                          f"{deploy['commit']}", data)  # fmt: skip
        return _event(row, "promotion.failed", f"Promotion {pid} to {where}: commit {deploy['commit']}, "
                      f"deploy {deploy['phase']}", data)  # fmt: skip
    if held := _NOT_DEPLOYED.fullmatch(rest):  # committed (its own event), but the deploy never started
        data = {**base, "commit": held["commit"], "reason": held["reason"]}
        return _event(row, "promotion.failed", f"Promotion {pid} to {where}: commit {held['commit']}, "
                      f"not deployed: {held['reason']}", data)  # fmt: skip
    if rest.startswith("not committed: "):
        reason = rest.removeprefix("not committed: ")
        return _event(row, "promotion.failed", f"Promotion {pid} to {where} not committed: {reason}",
                      {**base, "reason": reason})  # fmt: skip
    return None


def _system(row: AuditEvent) -> Event:
    kind, where = row.action, _on(row)
    data: Data = {}
    if kind.startswith("drift.") and (incident := _INCIDENT.fullmatch(row.detail)):
        data = {"incident_id": int(incident["id"]), "kind": incident["kind"], "reason": incident["reason"]}
    elif kind == "lock.expired" and (lock := _LOCK.match(row.detail)):
        data = {"lock_id": int(lock["id"]), "scope": lock["scope"]}
    elif kind == "promotion.expired" and (found := _PROMOTION.fullmatch(row.detail)):
        data = {"promotion_id": found["id"]}
    elif kind in ("promotion.requested", "promotion.approved") and (
        found := _PROMOTION.fullmatch(row.detail)
    ):
        data = {"promotion_id": found["id"]}
        if kind == "promotion.requested":
            data["summary"] = found["rest"]
        elif approval := _FINAL_APPROVAL.fullmatch(found["rest"]):
            data |= {
                "final": True,
                "approvals": int(approval["have"]),
                "approvals_required": int(approval["need"]),
            }
    elif kind == "promotion.committed" and (found := _PROMOTION.fullmatch(row.detail)):
        data = {"promotion_id": found["id"]}
        if commit := _COMMITTED.fullmatch(found["rest"]):
            data |= {"commit": commit["commit"], "repository": commit["repository"]}
    elif kind == "pipeline.failed" and (found := _PIPELINE_RUN.fullmatch(row.detail)):
        data = _pipeline_data(found)
    elif kind == "deploy.completed" and (found := _DEPLOYED.fullmatch(row.detail)):
        data = {"result": found["result"], "revision_before": found["before"],
                "revision_after": found["after"], "version_before": found["vbefore"],
                "version_after": found["vafter"], "started_by": found["by"]}  # fmt: skip
    summaries = {
        "drift.opened": f"Drift on {where}: {data.get('reason', row.detail)}",
        "drift.resolved": f"Drift on {where} resolved",
        "lock.expired": f"The lock on {where} expired",
        "promotion.expired": f"Promotion {data.get('promotion_id', '')} to {where} expired unapproved",
        "promotion.requested": f"{_who(row)} requested promotion {data.get('promotion_id', '')} to {where}: "
        f"{data.get('summary', '')}",
        "promotion.approved": f"{_who(row)} approved promotion {data.get('promotion_id', '')} to {where}; "
        "committing",
        "promotion.committed": f"Promotion {data.get('promotion_id', '')} to {where}: commit "
        f"{data.get('commit', '?')} in {data.get('repository', '?')}; deploying",
        "deploy.completed": f"{where} {'deployed' if data.get('result') != 'failed' else 'failed to deploy'} "
        f"{data.get('revision_after', '?')} (was {data.get('revision_before', '?')}), started by "
        f"{data.get('started_by', '?')}",
        "pipeline.failed": f"Pipeline {data.get('pipeline', '?')} of {where}: run {data.get('run', '?')} "
        f"{data.get('status', 'failed')}" + (f" at task {data['task']}" if data.get("task") else ""),
    }
    return _event(row, kind, summaries[kind], data)


def _change_request(row: AuditEvent) -> Event:
    """A step of a promotion's or a Flux rollback's pull / merge request, or the switch to one."""
    family, step = row.action.split(".", 1)
    found = (_PROMOTION if family == "promotion" else _ROLLBACK_ROW).fullmatch(row.detail)
    rest = found["rest"] if found else row.detail
    data: Data = {}
    if found and family == "promotion":
        data["promotion_id"] = found["id"]
    elif found:
        data["rollback_id"] = found["id"]
    if ref := _CHANGE_REQUEST.search(rest):
        data["change_request"] = ref["ref"]
    what = (
        f"Promotion {found['id']} to {_on(row)}"
        if found and family == "promotion"
        else f"Rollback of {_on(row)}"
    )
    if row.action in PROTECTION_ACTIONS:
        if protected := _PROTECTED.search(rest):
            data |= {"repository": protected["repository"], "branch": protected["branch"]}
        return _event(row, "protection.detected", f"{what}: {rest}", data)
    return _event(row, row.action, f"{what}: {step.replace('_', ' ')}: {rest}", data)


def _pipeline_data(found: re.Match[str]) -> Data:
    data: Data = {key: found[key] for key in ("cluster", "namespace", "run", "pipeline", "status")}
    for key in ("task", "step"):
        if found[key]:
            data[key] = found[key]
    if found["exit"] is not None:
        data["exit_code"] = int(found["exit"])
    return data


# -- helpers -----------------------------------------------------------------------------------------


def _event(row: AuditEvent, kind: str, summary: str, extra: Mapping[str, Any] | None = None) -> Event:
    assert row.id is not None
    data: Data = {
        "audit_id": row.id,
        "action": row.action,
        "outcome": row.outcome,
        "detail": row.detail,
        "command": row.command,
        "user_name": row.user_name,
        "channel": row.channel,
        "correlation_id": row.correlation_id,
        "duration_ms": row.duration_ms,
        "request_id": row.request_id,
        **(extra or {}),
    }
    return Event(
        id=f"audit-{row.id}",
        type=kind,
        at=(row.ts or datetime.now(UTC)).astimezone(UTC),
        actor=row.user_id,
        target=row.target,
        summary=summary[:500],
        data=data,
        version=EVENT_VERSION,
    )


def _who(row: AuditEvent) -> str:
    return row.user_name or row.user_id


def _on(row: AuditEvent) -> str:
    return row.target or "(no target)"


def _with_detail(text: str, row: AuditEvent) -> str:
    return f"{text}: {row.detail}" if row.detail else text


def _revisions(detail: str) -> Data:
    found = _REVISIONS.search(detail)
    if found is None:
        return {}
    return {"revision_before": found["before"], "revision": found["after"], "phase": found["phase"]}
