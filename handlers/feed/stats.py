"""`/gitops stats [APP] [--env E] [--since 30d]` and the weekly digest: DORA's four keys from the
deploys the feed recorded, the drift incidents and the rollbacks, with a chart uploaded in the
message's thread (files_upload_v2)."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply, context, escape, message, section
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest
from handlers.posting import PacedPoster
from services.backend import AppRef
from services.feed.store import DeployRow
from services.leader.election import Leadership
from services.stats import BANDS_SOURCE, Deploy, Figures, Incident, Report, Rollback, compute, render_png

log = logging.getLogger(__name__)
DEFAULT_PERIOD = timedelta(days=30)
LONGEST_PERIOD = timedelta(days=365)
DIGEST_PERIOD = timedelta(days=7)
MAX_ROWS = 15  # apps listed under the overall figures
_INCIDENT_KEY = re.compile(r"(?P<backend>argocd|flux):(?P<instance>[^/]+)/(?P<ns>[^/]+)/(?P<name>[^:]+):")


def stats_executor(deps: Deps) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        until = deps.clock()
        since = max(request.since or until - DEFAULT_PERIOD, until - LONGEST_PERIOD)
        app = _known_app(deps, request.app, request.env)
        report = build_report(deps, since=since, until=until, app=app, env=request.env)
        reply = stats_card(report, app=app, env=request.env, asked_by=caller.user_id,
                           feed_on=deps.settings.feed.on)  # fmt: skip
        conversation.announce(reply)
        where = "/".join(p for p in (app, request.env) if p) or "all apps"
        _upload_chart(conversation.client, conversation.channel, report, title=f"Deploys: {where}",
                      thread_ts=conversation.message_ts)  # fmt: skip
        return replace(reply, detail=f"{where}, since {since:%Y-%m-%d}")

    return run


def _known_app(deps: Deps, name: str | None, env: str | None) -> str | None:
    """The configured app name (a typo is refused with the nearest name, as everywhere)."""
    if name is None or deps.ops is None:
        return name
    if deps.ops.resolver.is_configured(name):
        return name
    ref = deps.ops.resolver.resolve(name, env)  # raises the usual "no app named …" with a hint
    _, app = deps.ops.resolver.scope_of(ref)
    return app or ref.name


def build_report(deps: Deps, *, since: datetime, until: datetime, app: str | None = None,
                 env: str | None = None) -> Report:  # fmt: skip
    assert deps.feed is not None
    records = deps.feed.records
    window = deps.settings.feed.failure_window
    # Deploys and incidents from before `since` decide the first days' failures and restores.
    early = since - window
    deploys = [_deploy(r) for r in deps.feed.history(since=early, until=until)]
    incidents = []
    for key, opened, resolved in records.incidents(since=early, until=until):
        app_of, env_of = _incident_scope(deps, key)
        incidents.append(Incident(app_of, env_of, opened, resolved))
    rollbacks = [
        Rollback(*_target_scope(target), at) for target, at in records.rollbacks(since=early, until=until)
    ]

    def wanted(a: str, e: str) -> bool:
        return (app is None or a == app) and (env is None or e == env)

    tz = (
        ZoneInfo(deps.settings.feed.digest_schedule.timezone)
        if deps.settings.feed.digest_schedule
        else ZoneInfo("UTC")
    )
    return compute(
        [d for d in deploys if wanted(d.app, d.env)],
        [i for i in incidents if wanted(i.app, i.env)],
        [r for r in rollbacks if wanted(r.app, r.env)],
        since=since, until=until, failure_window=window, tz=tz,
    )  # fmt: skip


def _deploy(row: DeployRow) -> Deploy:
    result: Literal["succeeded", "failed"] = "failed" if row.result == "failed" else "succeeded"
    return Deploy(app=row.app, env=row.env, finished_at=row.finished_at, result=result,
                  revision=row.new_revision or "", commit_time=row.commit_time)  # fmt: skip


def _incident_scope(deps: Deps, key: str) -> tuple[str, str]:
    found = _INCIDENT_KEY.match(key)
    if found is None:
        return key, ""
    name, kind = found["name"], None
    if found["backend"] == "flux" and "." in name:
        name, _, kind = name.rpartition(".")
    ns = None if found["ns"] == "-" else found["ns"]
    ref = AppRef(found["backend"], found["instance"], name, namespace=ns, kind=kind)  # type: ignore[arg-type]
    if deps.ops is None:
        return name, ""
    env, app = deps.ops.resolver.scope_of(ref)
    return app or name, env or ""


def _target_scope(target: str) -> tuple[str, str]:
    app, _, env = target.partition("/")
    return app, env


# -- the message ---------------------------------------------------------------------------------------


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _rate(per_day: float) -> str:
    """Per day when there is at least one a day, else per week (0.0/day says nothing)."""
    return f"{per_day:.1f}/day" if per_day >= 1 else f"{per_day * 7:.1f}/week"


def _restore(f: Figures) -> str:
    if f.time_to_restore_median is None:
        return "nothing to restore"
    times = "1 recovery" if f.restore_samples == 1 else f"{f.restore_samples} recoveries"
    return f"{_duration(f.time_to_restore_median)} median ({times})"


def _band(value: str | None) -> str:
    return f" · _{value}_" if value else ""


def key_fields(f: Figures) -> list[str]:
    rate = (
        "—"
        if f.change_failure_rate is None
        else f"{f.change_failure_rate:.0%} ({f.failed_changes} of {f.deploys})"
    )
    return [
        f"*Deployment frequency*\n{_count(f.deploys, 'deploy')}, {_rate(f.deploys_per_day)}"
        f"{_band(f.bands.deployment_frequency)}",
        f"*Lead time for changes*\n{_duration(f.lead_time_median)} median, p90 {_duration(f.lead_time_p90)}"
        f"{_band(f.bands.lead_time)}",
        f"*Change failure rate*\n{rate}{_band(f.bands.change_failure_rate)}",
        f"*Time to restore*\n{_restore(f)}{_band(f.bands.time_to_restore)}",
    ]


def stats_card(report: Report, *, app: str | None, env: str | None, asked_by: str | None = None,
               title: str | None = None, feed_on: bool = True) -> Reply:  # fmt: skip
    where = "/".join(p for p in (app, env) if p) or "all apps"
    days = max(1, round((report.until - report.since).total_seconds() / 86400))
    heading = title or f":bar_chart: Delivery of *{escape(where)}*, last {days} days"
    overall = report.overall
    if overall.deploys == 0 and overall.failed_deploys == 0:
        why = (
            "the deployment feed records each deploy from when it starts following"
            if feed_on
            else "the deployment feed is off (`feed:` in the configuration), so nothing is recorded"
        )
        text = f"{heading}\nNo deploys recorded in this period: {why}."
        return message(f"Delivery of {where}: no deploys", [section(text)], in_channel=True)
    blocks = [
        section(heading + (f" (asked by <@{asked_by}>)" if asked_by else ""), fields=key_fields(overall))
    ]
    if app is None or env is None:
        rows = [_row(f) for f in sorted(report.figures, key=lambda f: -f.deploys)[:MAX_ROWS]]
        if len(report.figures) > 1 and rows:
            more = f"\n…and {len(report.figures) - MAX_ROWS} more" if len(report.figures) > MAX_ROWS else ""
            blocks.append(section("\n".join(rows) + more))
    overall_band = f"Overall: *{overall.bands.overall}* · " if overall.bands.overall else ""
    window = _duration(report.failure_window)
    blocks.append(context(f"{overall_band}Bands from {BANDS_SOURCE} · a change failed when a rollback, "
                          f"a failed deploy or an incident followed within {window}"))  # fmt: skip
    lead = _duration(overall.lead_time_median)
    text = f"Delivery of {where}: {_count(overall.deploys, 'deploy')}, lead time {lead}"
    return message(text, blocks, in_channel=True)


def _row(f: Figures) -> str:
    name = "/".join(p for p in (f.app, f.env) if p)
    rate = "—" if f.change_failure_rate is None else f"{f.change_failure_rate:.0%}"
    return (f"`{escape(name)}` {_count(f.deploys, 'deploy')} · lead {_duration(f.lead_time_median)} · "
            f"failures {rate} · restore {_duration(f.time_to_restore_median)}")  # fmt: skip


def _upload_chart(
    client: WebClient, channel: str, report: Report, *, title: str, thread_ts: str | None
) -> bool:
    if not report.series or (report.overall.deploys == 0 and report.overall.failed_deploys == 0):
        return False
    try:
        png = render_png(report.series, title=title)
        client.files_upload_v2(
            channel=channel, file=png, filename="deploys.png", title=title, thread_ts=thread_ts
        )
    except SlackApiError as exc:
        log.warning("stats chart not uploaded", extra={"error": str(exc.response.get("error"))})
        return False
    return True


def post_digest(deps: Deps, client: WebClient, *, leadership: Leadership) -> bool:
    """The weekly digest: the same figures for all apps over the last seven days (leader only)."""
    feed = deps.settings.feed
    channel = feed.digest_channel or feed.channel
    if not leadership.is_leader() or channel is None or deps.feed is None:
        return False
    until = deps.clock()
    report = build_report(deps, since=until - DIGEST_PERIOD, until=until)
    reply = stats_card(report, app=None, env=None, title=":calendar: Weekly delivery digest, last 7 days")
    ts = PacedPoster(client, what="digest").post(channel, reply)
    if ts is None:
        return False
    _upload_chart(client, channel, report, title="Deploys in the last 7 days", thread_ts=ts)
    return True
