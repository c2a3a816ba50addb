"""What the handlers are given: built once by the app factory, never at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handlers.blocks import Reply
from handlers.conversation import Conversation
from handlers.grammar import CommandRequest

if TYPE_CHECKING:
    from handlers.authz import Authorizer
from services.audit import AuditStore
from services.inflight import InflightRequests
from services.jobs import JobRunner
from services.locks import LockStore
from services.metrics import Metrics
from services.operations import GitOpsService
from services.pending import PendingActions
from services.ratelimit import RateLimiter
from services.redaction import Redactor
from services.settings import Settings


@dataclass(frozen=True)
class Caller:
    """Who sent a command or clicked a button. Authorise on `user_id` only, never on names."""

    user_id: str
    user_name: str
    channel_id: str
    team_id: str

    @classmethod
    def from_command(cls, body: Mapping[str, Any]) -> Caller:
        return cls(
            user_id=str(body.get("user_id", "")),
            user_name=str(body.get("user_name", "")),
            channel_id=str(body.get("channel_id", "")),
            team_id=str(body.get("team_id", "")),
        )

    @classmethod
    def from_action(cls, body: Mapping[str, Any]) -> Caller:
        user = body.get("user") or {}
        channel = body.get("channel") or {}
        team = body.get("team") or {}
        return cls(
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            channel_id=str(channel.get("id", "")),
            team_id=str(team.get("id", "")),
        )


Executor = Callable[[CommandRequest, Caller, Conversation], Reply]


@dataclass(frozen=True)
class Deps:
    settings: Settings
    audit: AuditStore
    metrics: Metrics
    jobs: JobRunner
    version: str
    executors: Mapping[str, Executor]
    clock: Callable[[], datetime]
    pending: PendingActions | None = None
    ops: GitOpsService | None = None
    locks: LockStore | None = None
    rate_limiter: RateLimiter | None = None
    authz: Authorizer | None = None
    redact: Redactor | None = None  # applied to command text on arrival: a pasted token goes no further
    inflight: InflightRequests | None = None  # requests in the background, to report after a restart
