"""Executors for `lock`, `unlock` and `audit`."""

from __future__ import annotations

import difflib

from handlers.admin.views import lock_announcement, unlock_announcement
from handlers.blocks import Reply
from handlers.caller import Caller
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest
from services.access.locks import LockStore
from services.errors import UserError


def admin_executors(deps: Deps, locks: LockStore) -> dict[str, Executor]:
    return {
        "lock": lambda r, c, conv: _lock(deps, locks, r, c),
        "unlock": lambda r, c, conv: _unlock(deps, locks, r, c),
    }


def _known_env(deps: Deps, env: str | None) -> str:
    assert env is not None  # the grammar requires ENV for lock / unlock
    names = deps.settings.environment_names
    if names and env not in names:
        close = difflib.get_close_matches(env, names, n=1)
        hint = f"Did you mean `{close[0]}`?" if close else "Known: " + ", ".join(f"`{n}`" for n in names)
        raise UserError(f"Unknown environment `{env}`.", hint=hint)
    return env


def _lock(deps: Deps, locks: LockStore, request: CommandRequest, caller: Caller) -> Reply:
    env = _known_env(deps, request.env)
    assert request.reason is not None  # required by the grammar
    lock = locks.lock(
        env,
        app=request.lock_app,
        reason=request.reason,
        ttl=request.ttl,
        by=caller.user_id,
        channel=caller.channel_id,
        now=deps.clock(),
    )
    return lock_announcement(lock)


def _unlock(deps: Deps, locks: LockStore, request: CommandRequest, caller: Caller) -> Reply:
    env = _known_env(deps, request.env)
    lock = locks.unlock(env, app=request.lock_app, by=caller.user_id, now=deps.clock())
    return unlock_announcement(lock, caller.user_id)
