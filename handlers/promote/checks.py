"""Validators on a promotion (services/extensions): what they are shown, and how their findings read.

They run when the card is built, on every approval click, and again right before the commit, each
time on the change as it is then (the plan is recomputed: the branch may have moved, a window may
have closed). A blocking finding ends the request: the card lists why and how to ask again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from handlers.blocks import escape
from handlers.deps import Deps
from services.backend import AppStatus
from services.extensions.model import Finding, PlannedChange, VersionChange
from services.promotion.model import PromotionPlan

BLOCK_MARK = ":no_entry:"
WARN_MARK = ":warning:"
INFO_MARK = ":information_source:"
LINK_TEXT = "details"
# A link Slack can carry in `<url|text>`: http(s), none of the characters that end or split it.
_LINKABLE = re.compile(r"https?://[^\s<>|]+")


def planned_change(
    deps: Deps,
    plan: PromotionPlan,
    *,
    user: str,
    forced: bool,
    stage: str,
    source: AppStatus | None,
    source_since: datetime | None,
) -> PlannedChange:
    changes = tuple(VersionChange(d.kind, d.name, d.old, d.new, d.image) for d in plan.changes)
    return PlannedChange(
        action="promote",
        ref=plan.target_ref,
        app=plan.app,
        env=plan.to_env,
        user=user,
        at=deps.clock(),
        force=forced,
        source_env=plan.from_env,
        source=source,
        source_since=source_since,
        changes=changes,
        revision=source.revision if source is not None else None,
        stage="commit" if stage == "commit" else "request",
    )


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocks]


def finding_line(finding: Finding) -> str:
    """`:no_entry: *validator*: message`, with its link when it has one (the text escaped once;
    the URL as it is, inside Slack's `<url|text>`)."""
    mark = BLOCK_MARK if finding.blocks else WARN_MARK if finding.severity == "warn" else INFO_MARK
    line = f"{mark} *{escape(finding.validator)}*: {escape(finding.message)}"
    if finding.url and _LINKABLE.fullmatch(finding.url):
        line += f" · <{finding.url}|{LINK_TEXT}>"
    return line


def finding_lines(findings: Sequence[Finding]) -> str:
    """One line per finding: blocking ones first, then warnings, then what was found fine."""
    ordered = sorted(findings, key=lambda f: (not f.blocks, f.severity == "info"))
    return "\n".join(finding_line(f) for f in ordered)


def audit_note(findings: Sequence[Finding]) -> str:
    """For the audit row's detail: what the validators said (plain, short)."""
    return "; ".join(f"{f.validator} {f.severity}: {f.message}" for f in findings)[:500]
