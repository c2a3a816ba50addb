"""The access policy's data: what each role allows, and the configuration compiled into rules.

`services/access/policy.py` evaluates these; nothing here talks to Slack or decides anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from services.settings.model import ACTIONS, BUILTIN_ROLES, Settings

FORCE = "force"  # a capability, not a subcommand: passing `--force` past a lock or confirmation
READ_ACTIONS: frozenset[str] = frozenset(
    {"help", "status", "diff", "history", "drift", "audit", "whoami", "pipelines", "stats"}
)
# Tekton (issue 16): starting and cancelling a PipelineRun. Actions before their subcommands exist,
# so roles and grants can name them now; `pipelines` (listing runs) is a read action above.
PIPELINE_ACTIONS: frozenset[str] = frozenset({"pipeline_run", "pipeline_cancel"})
# Anyone may ask what they can do and why they were refused, whatever the grants say.
ALWAYS_ALLOWED: frozenset[str] = frozenset({"help", "whoami"})
DEFAULT_ROLE = "viewer"  # what everyone is when access control is not configured
ENV_APPROVER_ROLE = "env approver"  # the space keeps it apart from any configured (slug) role name
GROUPS_DOWN_REASON = (
    "could not check your Slack user groups right now (Slack is not answering); try again in a minute"
)

BUILTIN_ROLE_ACTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "viewer": READ_ACTIONS,
        "deployer": READ_ACTIONS | {"sync", "rollback", "suspend", "resume", "promote"} | PIPELINE_ACTIONS,
        "approver": READ_ACTIONS | {"approve"},
        "admin": frozenset(ACTIONS) | {FORCE},
    }
)
assert tuple(BUILTIN_ROLE_ACTIONS) == BUILTIN_ROLES  # the settings and this table must agree


@dataclass(frozen=True)
class RoleGrant:
    """One role a user holds and where; `via` says how ("user", "group S123", "approvers of prod")."""

    role: str
    environments: tuple[str, ...]
    apps: tuple[str, ...]
    projects: tuple[str, ...]
    via: str


@dataclass(frozen=True)
class Rule:
    """A grant (or an environment's approver list) with its role's actions resolved."""

    role: str
    actions: frozenset[str]
    users: frozenset[str]
    groups: tuple[str, ...]
    environments: tuple[str, ...]
    apps: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    via: str | None = None  # fixed origin, else "user" / "group …" by how the user matched

    def applies(self, env: str | None, app: str | None, project: str | None) -> bool:
        # A request without an environment is a question about "anywhere" (listings, whoami), so
        # it ignores the environment. With one, a missing app or project means the whole
        # environment, which an app- or project-limited grant does not cover.
        if env is not None and env not in self.environments and "*" not in self.environments:
            return False
        wide = env is None
        return _covers(self.apps, app, wide=wide) and _covers(self.projects, project, wide=wide)

    def grant(self, via: str) -> RoleGrant:
        return RoleGrant(self.role, self.environments, self.apps, self.projects, self.via or via)


def _covers(allowed: tuple[str, ...], wanted: str | None, *, wide: bool) -> bool:
    if not allowed:
        return True
    return wide if wanted is None else wanted in allowed


def role_actions(settings: Settings) -> Mapping[str, frozenset[str]]:
    """Every role's actions: built-in ones first, then custom ones in file order."""
    custom = {role.name: frozenset(role.actions) for role in settings.access.roles}
    return MappingProxyType({**BUILTIN_ROLE_ACTIONS, **custom})


def compile_rules(settings: Settings, roles: Mapping[str, frozenset[str]]) -> tuple[Rule, ...]:
    rules = [
        # An unknown role is a config error reported at load time; if one slips through it grants nothing.
        Rule(
            role=grant.role,
            actions=roles.get(grant.role, frozenset()),
            users=frozenset(grant.users),
            groups=grant.groups,
            environments=grant.environments,
            apps=grant.apps,
            projects=grant.projects,
        )
        for grant in settings.access.grants
    ]
    rules += [
        Rule(
            role=ENV_APPROVER_ROLE,
            actions=frozenset({"approve"}),
            users=frozenset(env.approvers.users),
            groups=env.approvers.groups,
            environments=(env.name,),
            via=f"approvers of {env.name}",
        )
        for env in settings.environments
        if not env.approvers.empty
    ]
    return tuple(rules)


def code_list(values: Iterable[str]) -> str:
    return join_words([f"`{v}`" for v in values])


def join_words(words: Sequence[str], conjunction: str = "and") -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def describe_grant(grant: RoleGrant) -> str:
    """Like "deployer for `web` in `prod`" or "viewer everywhere"."""
    text = grant.role
    if grant.apps:
        text += f" for {code_list(grant.apps)}"
    if "*" not in grant.environments:
        text += f" in {code_list(grant.environments)}"
    elif not grant.apps and not grant.projects:
        text += " everywhere"
    if grant.projects:
        noun = "project" if len(grant.projects) == 1 else "projects"
        projects = f"{noun} {code_list(grant.projects)}"
        text += f" ({projects})" if text != grant.role else f" in {projects}"
    return text
