"""Block Kit for `/gitops diff` and `/gitops history`."""

from __future__ import annotations

from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import Block, Reply, code, context, escape, header, message, section, truncate
from handlers.cards import short_rev
from services.backend import AppRef, HistoryEntry
from services.diffing.render import RenderedDiff

INLINE_LIMIT = 2500  # after escaping; longer diffs go to a file (docs/slack.md (d))


def diff_fits_inline(rendered: RenderedDiff) -> bool:
    return len(escape(rendered.text)) <= INLINE_LIMIT


def diff_reply(
    ref: AppRef, rendered: RenderedDiff, *, file_link: str | None = None, uploaded: bool = True
) -> Reply:
    if rendered.empty:
        text = msg.DIFF_NONE.format(app=escape(ref.name))
        return message(text, [section(text)], detail="no changes")
    summary = escape(truncate(rendered.summary, 1000))
    blocks: list[Block] = [header(msg.DIFF_TITLE.format(app=ref.name)), section(f"*{summary}*")]
    listing = "\n".join(
        f"• `{escape(r.key)}` {escape(r.change)} (+{r.added} −{r.removed})" for r in rendered.resources[:20]
    )
    if len(rendered.resources) > 20:
        listing += f"\n… {len(rendered.resources) - 20} more resources"
    blocks.append(section(listing))
    if diff_fits_inline(rendered):
        blocks.append(section(code(rendered.text)))
    else:
        blocks.append(section(code(rendered.text, limit=1500)))
        lines = rendered.text.count("\n") + 1
        note = (
            msg.DIFF_FILE_NOTE.format(lines=lines, link=file_link or "") if uploaded else msg.DIFF_FILE_FAILED
        )
        blocks.append(context(note))
    blocks.append(context(f"`{escape(ref.display)}`"))
    return message(f"Diff {ref.name}: {rendered.summary}", blocks, detail=truncate(rendered.summary, 300))


def history_reply(ref: AppRef, entries: Sequence[HistoryEntry], *, args: str | None = None) -> Reply:
    """`args`: how to name the app in a command (`api prod`), for the rollback example."""
    if not entries:
        text = msg.HISTORY_EMPTY.format(app=escape(ref.name))
        return message(text, [section(text)])
    lines = []
    for entry in entries[:15]:
        when = entry.deployed_at.strftime("%Y-%m-%d %H:%M UTC") if entry.deployed_at else "—"
        who = escape(entry.initiated_by or ("automated" if entry.automated else "—"))
        author = escape(truncate(entry.author or "—", 60))
        subject = escape(truncate((entry.message or "").splitlines()[0] if entry.message else "", 120))
        marker = " ← current" if entry.current else ""
        lines.append(
            f"*#{escape(entry.id)}* `{escape(short_rev(entry.revision))}` {when} by {who}{marker}\n"
            f"      {subject} ({author})"
        )
    blocks: list[Block] = [header(msg.HISTORY_TITLE.format(app=ref.name))]
    for start in range(0, len(lines), 8):
        blocks.append(section("\n".join(lines[start : start + 8])))
    earlier = next((e for e in entries[:15] if not e.current), None)
    hint = ""
    if earlier is not None:  # a real example, runnable as written
        command = f"/gitops rollback {args or ref.display} --to {earlier.id}"
        hint = " · " + msg.HISTORY_ROLLBACK.format(command=escape(command), id=escape(earlier.id))
    blocks.append(context(f"`{escape(ref.display)}` · newest first{hint}"))
    return message(f"History of {ref.name}", blocks)
