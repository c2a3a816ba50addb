"""What the handlers are given: built once by the app factory, never at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from handlers.authz import Authorizer
from handlers.blocks import Reply
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.grammar.parser import CommandRequest
from services.access.locks import LockStore
from services.access.ratelimit import Limiter
from services.audit.trail import AuditStore
from services.extensions.manager import Extensions
from services.feed.store import FeedStore
from services.githost import GitHost
from services.inflight import InflightRequests
from services.jobs import JobRunner
from services.metrics import Metrics
from services.operations import GitOpsService
from services.pending import PendingActions
from services.pipelines import PipelineRuns
from services.redaction import Redactor
from services.settings.model import Settings

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
    rate_limiter: Limiter | None = None
    authz: Authorizer | None = None
    redact: Redactor | None = None  # applied to command text on arrival: a pasted token goes no further
    inflight: InflightRequests | None = None  # requests in the background, to report after a restart
    extensions: Extensions | None = None  # validators, notifiers, batch strategies (built-in + plugins)
    pipelines: PipelineRuns | None = None  # Tekton: the configured pipelines and their runs
    # Git host clients by repository name, for repositories whose changes go through a pull request
    githosts: Mapping[str, GitHost] = field(default_factory=dict)
    feed: FeedStore | None = None  # the deploy history (`stats`) and the bot's own deploys (the feed)
