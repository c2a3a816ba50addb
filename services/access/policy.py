"""Who may do what: one declarative policy, evaluated here and nowhere else.

Roles allow actions (`services.access.rules.BUILTIN_ROLE_ACTIONS`, plus custom roles from the file);
grants give roles to users and Slack user groups, limited to environments, apps and Argo CD
projects; the users and groups listed as an environment's approvers may `approve` there.
Without any access configuration everyone is a viewer everywhere: the bot reads, nobody writes.

Grants only add rights, so an unreachable group directory can only hide an allowance: when
that matters the decision is a denial (fail closed), never a guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.access.groups import CachedGroupDirectory, GroupDirectory
from services.access.rules import (
    ALWAYS_ALLOWED,
    DEFAULT_ROLE,
    FORCE,
    GROUPS_DOWN_REASON,
    READ_ACTIONS,
    RoleGrant,
    Rule,
    compile_rules,
    describe_grant,
    join_words,
    role_actions,
)
from services.errors import BackendUnavailable, PermissionDenied
from services.settings.model import ACTIONS, Settings

__all__ = [
    "FORCE",
    "GROUPS_DOWN_REASON",
    "AccessPolicy",
    "CachedGroupDirectory",
    "Decision",
    "GroupDirectory",
    "RoleGrant",
]

log = logging.getLogger(__name__)

_NOT_CONFIGURED = "Access control is not configured, so everyone is a viewer"
_SUMMARY_LIMIT = 4  # grants named in a denial before "and N more"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # shown to the user; names roles and scopes, never other people
    roles: tuple[str, ...]  # the caller's roles found to allow the action here (may stop at the first)


class _Membership:
    """One user's standing against rules, for one call; each group is looked up at most once."""

    def __init__(self, user_id: str, directory: GroupDirectory | None) -> None:
        self._user = user_id
        self._directory = directory
        self._known: dict[str, bool] = {}
        self.unreachable: list[str] = []

    def direct(self, rule: Rule) -> bool:
        return self._user in rule.users

    def group(self, rule: Rule, *, strict: bool) -> str | None:
        """The first of the rule's groups the user is in; `strict` re-raises an unreachable directory."""
        return next((g for g in rule.groups if self._in_group(g, strict=strict)), None)

    def via(self, rule: Rule, *, strict: bool) -> str | None:
        if self.direct(rule):
            return "user"
        group = self.group(rule, strict=strict)
        return None if group is None else f"group {group}"

    def _in_group(self, group_id: str, *, strict: bool) -> bool:
        if group_id not in self._known:
            if self._directory is None:  # no directory wired: group grants cannot apply
                self._known[group_id] = False
                return False
            try:
                self._known[group_id] = self._user in self._directory.members(group_id)
            except BackendUnavailable:
                if strict:
                    raise
                self.unreachable.append(group_id)
                self._known[group_id] = False
        return self._known[group_id]


class _NotCached(Exception):
    """A group would have to be fetched from Slack."""


class _CacheOnly:
    def __init__(self, directory: CachedGroupDirectory) -> None:
        self._directory = directory

    def members(self, group_id: str) -> frozenset[str]:
        found = self._directory.cached(group_id)
        if found is None:
            raise _NotCached(group_id)
        return found


class AccessPolicy:
    def __init__(self, settings: Settings, groups: GroupDirectory | None) -> None:
        self._settings = settings
        self._groups = groups
        self._roles = role_actions(settings)
        self._rules = compile_rules(settings, self._roles)
        self._configured = bool(settings.access.roles or settings.access.grants or self._rules)
        self._uses_projects = any(rule.projects for rule in self._rules)

    @property
    def configured(self) -> bool:
        """False when there are no roles, grants or approvers: everyone is then a viewer."""
        return self._configured

    def decide(
        self,
        user_id: str,
        action: str,
        *,
        env: str | None = None,
        app: str | None = None,
        project: str | None = None,
        force: bool = False,
    ) -> Decision:
        """May `user_id` run `action` here? `force=True` also needs the force capability (admin)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if not self._configured:
            return _default_decision(action, force=force)
        project = self._project(env, app, project)
        needed = (action, FORCE) if force else (action,)
        member = _Membership(user_id, self._groups)
        found = self._holders(member, needed, env, app, project)
        action_ok = bool(found[action]) or action in ALWAYS_ALLOWED
        roles = tuple(found[action])
        what = self._what(action, env, app, project)
        if action_ok and (not force or found[FORCE]):
            return Decision(True, _allowed_reason(what, action, roles, force=force), roles)
        if member.unreachable:
            log.warning(
                "denied %s to %s: Slack user groups %s unreachable", action, user_id, member.unreachable
            )
            return Decision(False, GROUPS_DOWN_REASON, ())
        if not action_ok:
            summary = self._summary(member)
            return Decision(False, f"{what} needs {self._needed(action, env)}; you have {summary}.", roles)
        where = (f" for `{app}`" if app else "") + (f" in `{env}`" if env else "")
        return Decision(False, f"`--force` needs {self._needed(FORCE, env)}{where}.", roles)

    def check(
        self,
        user_id: str,
        action: str,
        *,
        env: str | None = None,
        app: str | None = None,
        project: str | None = None,
        force: bool = False,
    ) -> None:
        """Like `decide`, but raises `PermissionDenied` with the reason when not allowed."""
        decision = self.decide(user_id, action, env=env, app=app, project=project, force=force)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)

    def roles_for(self, user_id: str) -> list[RoleGrant]:
        """Every role the user holds, with where and how (for `whoami`).

        Raises `BackendUnavailable` when a group that matters cannot be checked: an incomplete
        list would mislead more than "try again".
        """
        if not self._configured:
            return [RoleGrant(DEFAULT_ROLE, ("*",), (), (), "default")]
        member = _Membership(user_id, self._groups)
        return [grant for _, grant in self._held(member, strict=True)]

    def allowed_actions(self, user_id: str) -> frozenset[str]:
        """Actions the user may run somewhere (plus `force` if held), for `help` to list.

        Groups that cannot be checked right now are left out: `help` shows less, and the real
        check still runs when a command is used.
        """
        return self.allowed_actions_of(_Membership(user_id, self._groups))

    def allowed_actions_now(self, user_id: str) -> frozenset[str] | None:
        """`allowed_actions` from what is known without asking Slack (for an answer inside the
        ack); None when a user group that matters has never been fetched."""
        groups = self._groups
        if groups is not None and not isinstance(groups, CachedGroupDirectory):
            return None
        member = _Membership(user_id, _CacheOnly(groups) if groups is not None else None)
        try:
            return self.allowed_actions_of(member)
        except _NotCached:
            return None

    def allowed_actions_of(self, member: _Membership) -> frozenset[str]:
        if not self._configured:
            return READ_ACTIONS
        held = (rule.actions for rule, _ in self._held(member, strict=False))
        return frozenset(ALWAYS_ALLOWED.union(*held))

    def _holders(
        self,
        member: _Membership,
        needed: tuple[str, ...],
        env: str | None,
        app: str | None,
        project: str | None,
    ) -> dict[str, list[str]]:
        """For each needed capability, the roles found to give it here.

        Direct grants are checked first and groups only for what is still missing, so a user
        allowed outright never waits on Slack.
        """
        wanted = frozenset(needed)
        rules = [r for r in self._rules if r.actions & wanted and r.applies(env, app, project)]
        found: dict[str, list[str]] = {cap: [] for cap in needed}

        def record(rule: Rule) -> None:
            for cap in needed:
                if cap in rule.actions and rule.role not in found[cap]:
                    found[cap].append(rule.role)

        for rule in rules:
            if member.direct(rule):
                record(rule)
        for rule in rules:
            missing = {c for c in needed if not found[c] and c not in ALWAYS_ALLOWED}
            if not missing:
                break
            if rule.actions & missing and member.group(rule, strict=False) is not None:
                record(rule)
        return found

    def _held(self, member: _Membership, *, strict: bool) -> list[tuple[Rule, RoleGrant]]:
        return [
            (rule, rule.grant(via))
            for rule in self._rules
            if (via := member.via(rule, strict=strict)) is not None
        ]

    def _project(self, env: str | None, app: str | None, project: str | None) -> str | None:
        # Handlers need not look the project up: the app's target in that environment knows it.
        if project is not None or env is None or app is None:
            return project
        found = self._settings.app(app)
        target = found.target(env) if found is not None else None
        return target.project if target is not None else None

    def _what(self, action: str, env: str | None, app: str | None, project: str | None) -> str:
        text = f"`{action}`"
        if app:
            text += f" for `{app}`"
        if project and (self._uses_projects or not app):
            text += f" (project `{project}`)" if app else f" in project `{project}`"
        if env:
            text += f" in `{env}`"
        return text

    def _needed(self, capability: str, env: str | None) -> str:
        names = [name for name, actions in self._roles.items() if capability in actions]
        text = f"the {join_words(names, 'or')} role"
        environment = self._settings.environment(env) if env else None
        if capability == "approve" and environment is not None and not environment.approvers.empty:
            text += f" (or a place among the approvers of `{environment.name}`)"
        return text

    def _summary(self, member: _Membership) -> str:
        # Best effort: a group that cannot be checked now is simply not mentioned.
        descriptions = list(dict.fromkeys(describe_grant(g) for _, g in self._held(member, strict=False)))
        if not descriptions:
            return "no role"
        shown = descriptions[:_SUMMARY_LIMIT]
        if len(descriptions) > _SUMMARY_LIMIT:
            shown.append(f"{len(descriptions) - _SUMMARY_LIMIT} more")
        return join_words(shown)


def _default_decision(action: str, *, force: bool) -> Decision:
    if action not in READ_ACTIONS:
        return Decision(False, f"{_NOT_CONFIGURED}: `{action}` changes things.", ())
    if force:
        return Decision(False, f"{_NOT_CONFIGURED}: `--force` needs the admin role.", ())
    return Decision(True, f"{_NOT_CONFIGURED}.", (DEFAULT_ROLE,))


def _allowed_reason(what: str, action: str, roles: tuple[str, ...], *, force: bool) -> str:
    if not roles:  # only the always-allowed actions get here
        return f"Anyone may run `{action}`."
    noun = "role" if len(roles) == 1 else "roles"
    extra = " (with `--force`)" if force else ""
    return f"{what}{extra} is allowed by your {join_words(list(roles))} {noun}."
