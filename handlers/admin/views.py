"""Block Kit for locks and audit queries."""

from __future__ import annotations

from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import Block, Reply, escape, message, section, truncate
from handlers.cards import lock_line
from services.access.locks import Lock


def lock_announcement(lock: Lock) -> Reply:
    until = msg.LOCK_UNTIL.format(when=f"{lock.expires_at:%Y-%m-%d %H:%M}") if lock.expires_at else ""
    text = msg.LOCKED_ANNOUNCE.format(
        user=escape(lock.created_by), scope=escape(lock.scope), until=until, reason=escape(lock.reason)
    )
    return message(text, [section(text)], in_channel=True, detail=f"locked {lock.scope}")


def unlock_announcement(lock: Lock, user: str) -> Reply:
    text = msg.UNLOCKED_ANNOUNCE.format(user=escape(user), scope=escape(lock.scope))
    return message(text, [section(text)], in_channel=True, detail=f"unlocked {lock.scope}")


def lock_expired(lock: Lock) -> Reply:
    text = msg.LOCK_EXPIRED.format(
        scope=escape(lock.scope), user=escape(lock.created_by), reason=escape(truncate(lock.reason, 300))
    )
    return message(text, [section(text)], in_channel=True)


def locks_section(locks: Sequence[Lock]) -> Block | None:
    if not locks:
        return None
    return section("\n".join(lock_line(lock) for lock in locks[:10]))
