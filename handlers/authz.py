"""The one place that decides whether a caller may do something, and whether a lock stops it.

Every command is checked with the scope it names (coarse); every action on a resolved target is
checked again with that target's environment, app and project, and against deploy locks —
including button clicks, at click time, for whoever clicked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from handlers.caller import Caller
from handlers.grammar.parser import CommandRequest
from handlers.grammar.spec import SUBCOMMANDS
from services.access.locks import Lock, LockStore
from services.access.policy import AccessPolicy
from services.apps import AppResolver
from services.backend import AppRef
from services.errors import UserError
from services.extensions.manager import Extensions
from services.extensions.model import Action, Finding, PlannedChange
from services.pipelines import PipelineTarget

ANY_ENV = "*"  # a target no configured app maps to: only grants for every environment apply
LOCKED_ACTIONS = frozenset({"sync", "rollback", "promote"})
# Promotions run the validators on the full change themselves (handlers/promote/checks.py).
VALIDATED_ACTIONS = frozenset({"sync", "rollback"})
_PAST = {"sync": "synced", "rollback": "rolled back"}


@dataclass(frozen=True)
class Clearance:
    env: str | None
    app: str | None
    overridden: Lock | None  # a lock passed with --force (goes into the audit row)
    findings: tuple[Finding, ...] = ()  # validators' warnings (a check passed with --force, say)

    @property
    def note(self) -> str:
        parts = [f"lock on {self.overridden.scope} overridden with --force"] if self.overridden else []
        parts += [f"{f.validator}: {f.message}" for f in self.findings]
        return "; ".join(parts)


class Authorizer:
    def __init__(
        self,
        policy: AccessPolicy,
        *,
        locks: LockStore | None = None,
        resolver: AppResolver | None = None,
        extensions: Extensions | None = None,
    ) -> None:
        self.policy = policy
        self._locks = locks
        self._resolver = resolver
        self._extensions = extensions

    def command(self, caller: Caller, request: CommandRequest) -> None:
        """The coarse check, with the scope the command itself names."""
        spec = SUBCOMMANDS.get(request.subcommand)
        action = spec.permission if spec is not None else request.subcommand
        env, app = request.env, request.app
        if action in ("lock", "unlock"):
            app = request.lock_app
        elif action == "promote":
            env = request.to
        if app is not None and self._resolver is not None and not self._resolver.is_configured(app):
            app = None  # a bare backend name: the target check below knows its real scope
        self.policy.check(
            caller.user_id, action, env=env, app=app, force=request.force and action != "unlock"
        )

    def target(
        self,
        caller: Caller,
        action: str,
        ref: AppRef,
        *,
        force: bool = False,
        now: datetime | None = None,
        validate: bool = True,
    ) -> Clearance:
        """The fine check on a resolved target, then deploy locks for actions locks stop, then the
        validators for syncs and rollbacks (`validate=False`: a dry run, which changes nothing)."""
        env, app = self._resolver.scope_of(ref) if self._resolver is not None else (None, None)
        mutating = action in LOCKED_ACTIONS or action in ("suspend", "resume")
        self.policy.check(
            caller.user_id,
            action,
            env=env if env is not None or not mutating else ANY_ENV,
            app=app,
            project=ref.project,
            force=force,
        )
        overridden = None
        if self._locks is not None and action in LOCKED_ACTIONS:
            names = {n for n in (app, ref.name) if n}
            overridden = self._locks.check(env, names, force=force, now=now)
        findings: list[Finding] = []
        if self._extensions is not None and validate and action in VALIDATED_ACTIONS:
            at = now or datetime.now(UTC)
            kind: Action = "sync" if action == "sync" else "rollback"
            change = PlannedChange(action=kind, ref=ref, app=app, env=env, user=caller.user_id, at=at,
                                   force=force)  # fmt: skip
            findings = self._extensions.validate(change)
            refusing = [f for f in findings if f.blocks]
            if refusing:
                where = f"{app} {env}" if app and env else ref.display
                lines = "\n".join(f"• {f.validator}: {f.message}" for f in refusing)
                raise UserError(f"Not {_PAST[action]}: a check refuses `{where}` now:\n{lines}")
        return Clearance(env, app, overridden, tuple(findings))

    def pipeline(self, caller: Caller, action: str, target: PipelineTarget) -> str | None:
        """May the caller start (`pipeline_run`) or cancel (`pipeline_cancel`) runs of this app's
        pipeline? Checked in the target's environment; a pipeline named without one counts for
        every environment, unless it builds only one. Returns the environment checked."""
        env = pipeline_env(target)
        self.policy.check(caller.user_id, action, env=env or ANY_ENV, app=target.app)
        return env

    def allowed_actions(self, caller: Caller) -> frozenset[str]:
        return self.policy.allowed_actions(caller.user_id)


def pipeline_env(target: PipelineTarget) -> str | None:
    """The environment a pipeline run is for: the one named, else the only one it builds."""
    if target.env is not None:
        return target.env
    envs = target.config.environments
    return envs[0] if len(envs) == 1 else None
