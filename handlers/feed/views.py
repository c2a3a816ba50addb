"""The feed's messages: one per deploy, and the short line that points to the bot's own message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from handlers.blocks import Reply, context, escape, message, section
from services.feed.model import CommitInfo, Deploy
from services.feed.store import BotDeploy
from services.revisions import short_revision

_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,}")


@dataclass(frozen=True)
class FeedEntry:
    """A deploy with what the job learnt about it."""

    deploy: Deploy
    app: str  # the configured app, else the backend's object name
    env: str  # the configured environment, else ""
    target: str  # where it runs: "argocd main/api-prod", "flux prod/apps/podinfo"
    commit: CommitInfo | None
    bot: BotDeploy | None
    ui_url: str | None = None


def started_by(entry: FeedEntry) -> str:
    """Who or what started it, in words a person reads (and the audit row keeps)."""
    deploy = entry.deploy
    if entry.bot is not None:
        return f"{_person(entry.bot.user_id)} through gitops-bot"
    if deploy.initiated_by and deploy.initiated_by.startswith("slack:"):
        return f"{_person(deploy.initiated_by[6:])} through gitops-bot"
    if deploy.automated:
        return "auto-sync" if deploy.ref.backend == "argocd" else "Flux reconciliation"
    return f"`{escape(deploy.initiated_by)}`" if deploy.initiated_by else "unknown"


def _person(who: str) -> str:
    """A Slack user id as a mention; a name (what an operation recorded) as text."""
    return f"<@{who}>" if _SLACK_ID.fullmatch(who) else escape(who)


def _revision(value: str | None) -> str:
    return f"`{short_revision(value)}`" if value else "—"


def _versions(
    before: tuple[str, ...], after: tuple[str, ...], old_chart: str | None, new_chart: str | None
) -> str:
    if new_chart and old_chart != new_chart:
        return f"chart `{escape(old_chart or '—')}` → `{escape(new_chart)}`"
    changed = sorted(set(after) - set(before))
    if not changed:
        return ""
    gone = {i.rpartition(":")[0]: i for i in before}
    lines = []
    for image in changed[:5]:
        name = image.rpartition(":")[0] or image
        old = gone.get(name)
        lines.append(f"`{escape(name)}` {escape(old.rpartition(':')[2]) if old else 'new'} → "
                     f"*{escape(image.rpartition(':')[2])}*")  # fmt: skip
    more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
    return "\n".join(lines) + more


def title_of(entry: FeedEntry) -> str:
    where = f"*{escape(entry.app)}*" + (f" → *{escape(entry.env)}*" if entry.env else "")
    if entry.deploy.result == "failed":
        return f":x: Deploy of {where} failed"
    return f":rocket: {where} deployed"


def entry_card(entry: FeedEntry, *, now: datetime) -> Reply:
    deploy = entry.deploy
    lines = [title_of(entry)]
    revisions = f"{_revision(deploy.old_revision)} → {_revision(deploy.new_revision)}"
    fields = [f"*Revision*\n{revisions}", f"*Started by*\n{started_by(entry)}"]
    versions = _versions(deploy.old_images, deploy.new_images, deploy.old_chart, deploy.new_chart)
    if versions:
        fields.append(f"*Version*\n{versions}")
    if deploy.duration_seconds is not None:
        fields.append(f"*Duration*\n{_seconds(deploy.duration_seconds)}")
    commit = entry.commit
    if commit and (commit.message or commit.author):
        first = (commit.message or "").strip().splitlines()[0][:150] if commit.message else ""
        by = f" — {escape(commit.author)}" if commit.author else ""
        fields.append(f"*Commit*\n{escape(first)}{by}")
    blocks = [section("\n".join(lines), fields=fields)]
    if deploy.result == "failed" and deploy.message:
        blocks.append(section(f"*Why:* {escape(deploy.message[:500])}"))
    where = f"{escape(entry.target)}"
    when = deploy.finished_at or now
    notes = [f"{where} · {when:%Y-%m-%d %H:%M} UTC"]
    if entry.ui_url:
        notes.append(
            f"<{entry.ui_url}|Open in {'Argo CD' if deploy.ref.backend == 'argocd' else 'the cluster'}>"
        )
    blocks.append(context(" · ".join(notes)))
    text = f"{entry.app}{' → ' + entry.env if entry.env else ''}: " + (
        f"deploy failed ({deploy.new_revision or '?'})" if deploy.result == "failed"
        else f"deployed {short_revision(deploy.new_revision or '?')}"
    )  # fmt: skip
    return message(text, blocks, in_channel=True)


def linked_card(entry: FeedEntry, permalink: str | None) -> Reply:
    """A deploy the bot started: one line pointing to the request's own message."""
    deploy = entry.deploy
    verb = "failed to deploy" if deploy.result == "failed" else "deployed"
    link = f" — <{permalink}|see the request>" if permalink else ""
    where = f"*{escape(entry.app)}*" + (f" → *{escape(entry.env)}*" if entry.env else "")
    icon = ":x:" if deploy.result == "failed" else ":rocket:"
    text = (f"{icon} {where} {verb}: {_revision(deploy.old_revision)} → {_revision(deploy.new_revision)}, "
            f"started by {started_by(entry)}{link}")  # fmt: skip
    return message(f"{entry.app} {verb} through gitops-bot", [section(text)], in_channel=True)


def _seconds(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
