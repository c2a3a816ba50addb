"""The access policy: roles, grants, scopes, env approvers, force, group lookups and their cache."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.grammar.spec import SUBCOMMANDS
from services.access.policy import GROUPS_DOWN_REASON, AccessPolicy, CachedGroupDirectory, Decision, RoleGrant
from services.errors import BackendUnavailable, PermissionDenied
from services.settings.model import ACTIONS, Settings

READ = {"help", "status", "diff", "history", "drift", "audit", "whoami", "pipelines", "stats"}


class FakeGroups:
    def __init__(
        self, groups: Mapping[str, Iterable[str]] | None = None, *, down: Iterable[str] = ()
    ) -> None:
        self.groups = {g: frozenset(users) for g, users in (groups or {}).items()}
        self.down = set(down)
        self.calls: list[str] = []

    def members(self, group_id: str) -> frozenset[str]:
        self.calls.append(group_id)
        if group_id in self.down:
            raise BackendUnavailable("Slack", "usergroups.users.list timed out")
        return self.groups.get(group_id, frozenset())


class FakeClock:
    def __init__(self) -> None:
        self.now, self.reads = 1000.0, 0

    def __call__(self) -> float:
        self.reads += 1  # followers read it under the directory lock, one at a time
        return self.now


def make_settings(access: Mapping[str, Any] | None = None, *, approvers: Any = None) -> Settings:
    def argocd(name: str, project: str) -> dict[str, Any]:
        return {"prod": {"backend": "argocd", "instance": "main", "name": name, "project": project}}

    flux = {"prod": {"backend": "flux", "instance": "c", "name": "jobs"}}
    apps = [("web", argocd("web", "shop")), ("api", argocd("api", "pay")), ("jobs", flux)]
    return Settings.model_validate(
        {
            "environments": [{"name": "dev"}, {"name": "prod", "approvers": approvers or {}}],
            "apps": [{"name": name, "environments": targets} for name, targets in apps],
            "access": access or {},
        }
    )


def policy(
    access: Mapping[str, Any] | None = None, groups: FakeGroups | None = None, **kw: Any
) -> AccessPolicy:
    return AccessPolicy(make_settings(access, **kw), groups)


# --- the matrix -----------------------------------------------------------------------------------

MATRIX_USERS = {
    "viewer": "UVIEWER",
    "deployer": "UDEPLOYER",
    "approver": "UAPPROVER",
    "admin": "UADMIN",
    "releaser": "URELEASER",
    "none": "UNOBODY",
}
MATRIX_ACCESS = {
    "roles": [{"name": "releaser", "actions": ["sync", "promote"]}],
    "grants": [
        {"role": "viewer", "users": ["UVIEWER"]},
        {"role": "deployer", "users": ["UDEPLOYER"], "environments": ["prod"]},
        {"role": "approver", "users": ["UAPPROVER"]},
        {"role": "admin", "users": ["UADMIN"]},
        {"role": "releaser", "users": ["URELEASER"], "environments": ["prod"]},
    ],
}
# Cells are (dev, prod): Y allowed, - denied; deployer, releaser: prod only; `force` = `sync --force`.
MATRIX = """
action          viewer deployer approver admin releaser none
help            YY     YY       YY       YY    YY       YY
status          YY     -Y       YY       YY    --       --
diff            YY     -Y       YY       YY    --       --
history         YY     -Y       YY       YY    --       --
drift           YY     -Y       YY       YY    --       --
audit           YY     -Y       YY       YY    --       --
whoami          YY     YY       YY       YY    YY       YY
sync            --     -Y       --       YY    -Y       --
rollback        --     -Y       --       YY    --       --
promote         --     -Y       --       YY    -Y       --
suspend         --     -Y       --       YY    --       --
resume          --     -Y       --       YY    --       --
lock            --     --       --       YY    --       --
unlock          --     --       --       YY    --       --
approve         --     --       YY       YY    --       --
pipelines       YY     -Y       YY       YY    --       --
pipeline_run    --     -Y       --       YY    --       --
pipeline_cancel --     -Y       --       YY    --       --
stats           YY     -Y       YY       YY    --       --
force           --     --       --       YY    --       --
"""


def _matrix_cells() -> list[tuple[str, str, str, bool]]:
    header, *rows = MATRIX.strip().splitlines()
    roles = header.split()[1:]
    return [
        (role, action, env, flag == "Y")
        for action, *marks in (row.split() for row in rows)
        for role, mark in zip(roles, marks, strict=True)
        for env, flag in zip(("dev", "prod"), mark, strict=True)
    ]


def test_matrix_covers_every_action_and_role() -> None:
    cells = _matrix_cells()
    assert {action for _, action, _, _ in cells} == {*ACTIONS, "force"}
    assert {role for role, _, _, _ in cells} == set(MATRIX_USERS)
    assert len(cells) == len(MATRIX_USERS) * (len(ACTIONS) + 1) * 2


@pytest.mark.parametrize(("role", "action", "env", "expected"), _matrix_cells())
def test_matrix(role: str, action: str, env: str, expected: bool) -> None:
    access = policy(MATRIX_ACCESS)
    force = action == "force"
    decision = access.decide(MATRIX_USERS[role], "sync" if force else action, env=env, force=force)
    assert decision.allowed is expected, decision.reason


# --- reasons --------------------------------------------------------------------------------------


def test_denial_reasons_say_what_is_needed_and_what_you_have() -> None:
    access = policy(MATRIX_ACCESS)
    assert access.decide("UVIEWER", "sync", env="prod").reason == (
        "`sync` in `prod` needs the deployer, admin or releaser role; you have viewer everywhere."
    )
    assert access.decide("UDEPLOYER", "lock", env="dev").reason == (
        "`lock` in `dev` needs the admin role; you have deployer in `prod`."
    )
    assert access.decide("UNOBODY", "status", env="prod").reason.endswith("; you have no role.")
    assert access.decide("UDEPLOYER", "sync", env="prod", force=True).reason == (
        "`--force` needs the admin role in `prod`."
    )


def test_allowed_reasons_and_roles() -> None:
    access = policy(MATRIX_ACCESS)
    assert access.decide("UDEPLOYER", "sync", env="prod", app="web") == Decision(
        True, "`sync` for `web` in `prod` is allowed by your deployer role.", ("deployer",)
    )
    assert access.decide("UNOBODY", "help") == Decision(True, "Anyone may run `help`.", ())


def test_reason_lists_at_most_four_grants() -> None:
    grants = [
        {"role": "deployer", "users": ["U01"], "apps": [name]} for name in ("a", "b", "c", "d", "e", "f")
    ]
    reason = policy({"grants": grants}).decide("U01", "lock", env="prod").reason
    assert reason.endswith("deployer for `d` and 2 more.")


def test_check_raises_permission_denied_with_the_reason() -> None:
    access = policy(MATRIX_ACCESS)
    access.check("UADMIN", "lock", env="prod")
    with pytest.raises(PermissionDenied) as caught:
        access.check("UVIEWER", "sync", env="prod", app="web")
    assert caught.value.reason == access.decide("UVIEWER", "sync", env="prod", app="web").reason


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        policy(MATRIX_ACCESS).decide("UADMIN", "reject")


# --- no configuration -----------------------------------------------------------------------------


def test_without_access_config_everyone_is_a_viewer() -> None:
    access = policy()
    assert not access.configured
    assert access.decide("UANY", "status", env="prod") == Decision(
        True, "Access control is not configured, so everyone is a viewer.", ("viewer",)
    )
    assert access.decide("UANY", "sync", env="dev") == Decision(
        False, "Access control is not configured, so everyone is a viewer: `sync` changes things.", ()
    )
    assert not access.decide("UANY", "approve", env="prod").allowed
    assert not access.decide("UANY", "diff", env="prod", force=True).allowed
    assert access.roles_for("UANY") == [RoleGrant("viewer", ("*",), (), (), "default")]
    assert access.allowed_actions("UANY") == READ


def test_any_roles_grants_or_approvers_turn_access_control_on() -> None:
    for configured in (
        policy({"roles": [{"name": "releaser", "actions": ["sync"]}]}),
        policy({"grants": [{"role": "viewer", "users": ["U01"]}]}),
        policy(approvers={"users": ["U01"]}),
    ):
        assert configured.configured
        assert not configured.decide("USTRANGER", "status", env="dev").allowed


# --- groups ---------------------------------------------------------------------------------------


def test_roles_granted_through_a_user_group() -> None:
    groups = FakeGroups({"SDEPLOY": {"U01"}})
    access = policy({"grants": [{"role": "deployer", "groups": ["SDEPLOY"]}]}, groups)
    assert access.decide("U01", "sync", env="prod").roles == ("deployer",)
    assert not access.decide("U02", "sync", env="prod").allowed
    assert access.roles_for("U01") == [RoleGrant("deployer", ("*",), (), (), "group SDEPLOY")]


def test_a_direct_grant_never_waits_on_slack() -> None:
    groups = FakeGroups(down={"SADMIN"})
    grants = [{"role": "deployer", "users": ["U01"]}, {"role": "admin", "groups": ["SADMIN"]}]
    access = policy({"grants": grants}, groups)
    assert access.decide("U01", "sync", env="prod").allowed
    assert groups.calls == []


def test_fail_closed_when_the_directory_is_down_and_nothing_is_cached() -> None:
    groups = FakeGroups(down={"SDEPLOY"})
    access = policy({"grants": [{"role": "deployer", "groups": ["SDEPLOY"]}]}, groups)
    assert access.decide("U01", "sync", env="prod") == Decision(False, GROUPS_DOWN_REASON, ())
    with pytest.raises(PermissionDenied, match="Slack is not answering"):
        access.check("U01", "sync", env="prod")


def test_fail_closed_through_the_cache_too() -> None:
    def fetch(group_id: str) -> list[str]:
        raise BackendUnavailable("Slack", "timed out")

    directory = CachedGroupDirectory(fetch, ttl=timedelta(minutes=5), clock=FakeClock())
    access = AccessPolicy(make_settings({"grants": [{"role": "admin", "groups": ["SADMIN"]}]}), directory)
    assert access.decide("U01", "lock", env="prod").reason == GROUPS_DOWN_REASON


def test_an_unreachable_group_does_not_hide_another_groups_grant() -> None:
    groups = FakeGroups({"SOK": {"U01"}}, down={"SDOWN"})
    grants = [{"role": "deployer", "groups": ["SDOWN"]}, {"role": "deployer", "groups": ["SOK"]}]
    assert policy({"grants": grants}, groups).decide("U01", "sync", env="prod").allowed


def test_group_grants_do_not_apply_without_a_directory() -> None:
    access = policy({"grants": [{"role": "deployer", "groups": ["SDEPLOY"]}]}, None)
    assert not access.decide("U01", "sync", env="prod").allowed
    assert access.roles_for("U01") == []


# --- environment approvers ------------------------------------------------------------------------


def test_env_approvers_may_approve_in_their_environment_only() -> None:
    groups = FakeGroups({"SLEADS": {"U02"}})
    access = policy(
        {"grants": [{"role": "viewer", "users": ["U03"]}]},
        groups,
        approvers={"users": ["U01"], "groups": ["SLEADS"]},
    )
    for user in ("U01", "U02"):
        assert access.decide(user, "approve", env="prod", app="web").roles == ("env approver",)
        assert not access.decide(user, "approve", env="dev").allowed
        assert not access.decide(user, "sync", env="prod").allowed
        assert not access.decide(user, "status", env="prod").allowed
    assert access.decide("U03", "approve", env="prod").reason == (
        "`approve` in `prod` needs the approver or admin role (or a place among the approvers of `prod`);"
        " you have viewer everywhere."
    )
    assert access.roles_for("U01") == [RoleGrant("env approver", ("prod",), (), (), "approvers of prod")]


# --- app and project scopes -----------------------------------------------------------------------


def test_app_scoped_grants() -> None:
    access = policy({"grants": [{"role": "deployer", "users": ["U01"], "apps": ["web"]}]})
    assert access.decide("U01", "sync", env="prod", app="web").allowed
    assert not access.decide("U01", "sync", env="prod", app="api").allowed
    assert not access.decide("U01", "sync", env="prod").allowed  # the whole environment
    assert access.decide("U01", "drift", app="web").allowed
    assert not access.decide("U01", "drift", app="api").allowed
    assert access.decide("U01", "status").allowed  # no env: any grant allowing the action


def test_project_scoped_grants_look_the_project_up() -> None:
    access = policy({"grants": [{"role": "deployer", "users": ["U01"], "projects": ["shop"]}]})
    assert access.decide("U01", "sync", env="prod", app="web").allowed  # web is in project shop
    denied = access.decide("U01", "sync", env="prod", app="api")
    assert denied.reason == (
        "`sync` for `api` (project `pay`) in `prod` needs the deployer or admin role;"
        " you have deployer in project `shop`."
    )
    assert not access.decide("U01", "sync", env="prod", app="jobs").allowed  # Flux: no project
    assert access.decide("U01", "sync", env="prod", app="new", project="shop").allowed
    assert access.decide("U01", "status", project="shop").allowed
    assert not access.decide("U01", "status", project="pay").allowed


# --- force ----------------------------------------------------------------------------------------


def test_force_needs_admin_in_that_scope() -> None:
    grants = [
        {"role": "deployer", "users": ["U01"]},
        {"role": "admin", "users": ["U01"], "environments": ["dev"]},
    ]
    access = policy({"grants": grants})
    assert access.decide("U01", "sync", env="dev", force=True) == Decision(
        True,
        "`sync` in `dev` (with `--force`) is allowed by your deployer and admin roles.",
        ("deployer", "admin"),
    )
    assert access.decide("U01", "sync", env="prod", app="web", force=True) == Decision(
        False, "`--force` needs the admin role for `web` in `prod`.", ("deployer",)
    )
    assert access.decide("U01", "sync", env="prod").allowed


def test_custom_roles_cannot_force() -> None:
    roles = [{"name": "ops", "actions": list(ACTIONS)}]
    access = policy({"roles": roles, "grants": [{"role": "ops", "users": ["U01"]}]})
    assert access.decide("U01", "unlock", env="prod").allowed
    assert not access.decide("U01", "unlock", env="prod", force=True).allowed


# --- roles_for and allowed_actions ----------------------------------------------------------------


def test_roles_for_and_allowed_actions() -> None:
    groups = FakeGroups({"SREL": {"U01"}, "SAPPR": {"U01"}})
    access = policy(
        {
            "roles": [{"name": "releaser", "actions": ["sync", "promote"]}],
            "grants": [
                {"role": "viewer", "users": ["U01"]},
                {"role": "releaser", "groups": ["SREL"], "environments": ["dev"], "apps": ["web"]},
                {"role": "admin", "users": ["U09"]},
            ],
        },
        groups,
        approvers={"groups": ["SAPPR"]},
    )
    assert access.roles_for("U01") == [
        RoleGrant("viewer", ("*",), (), (), "user"),
        RoleGrant("releaser", ("dev",), ("web",), (), "group SREL"),
        RoleGrant("env approver", ("prod",), (), (), "approvers of prod"),
    ]
    assert access.allowed_actions("U01") == {*READ, "sync", "promote", "approve"}
    assert access.allowed_actions("U09") == {*ACTIONS, "force"}
    assert access.allowed_actions("USTRANGER") == {"help", "whoami"}


def test_listings_when_the_directory_is_down() -> None:
    groups = FakeGroups(down={"SREL"})
    grants = [{"role": "viewer", "users": ["U01"]}, {"role": "deployer", "groups": ["SREL"]}]
    access = policy({"grants": grants}, groups)
    assert access.allowed_actions("U01") == READ
    with pytest.raises(BackendUnavailable):
        access.roles_for("U01")


# --- the group cache ------------------------------------------------------------------------------


class ScriptedFetch:
    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {"S1": ["U01"]}
        self.failing = False
        self.calls = 0

    def __call__(self, group_id: str) -> list[str]:
        self.calls += 1
        if self.failing:
            raise BackendUnavailable("Slack", "timed out")
        return self.members[group_id]


def test_cache_serves_within_ttl_and_refetches_after() -> None:
    fetch, clock = ScriptedFetch(), FakeClock()
    directory = CachedGroupDirectory(fetch, ttl=timedelta(minutes=5), clock=clock)
    assert directory.members("S1") == {"U01"}
    fetch.members["S1"] = ["U01", "U02"]
    clock.now += 299
    assert directory.members("S1") == {"U01"}
    assert fetch.calls == 1
    clock.now += 1
    assert directory.members("S1") == {"U01", "U02"}
    assert fetch.calls == 2


def test_cache_serves_a_stale_copy_on_error_and_retries_later(caplog: pytest.LogCaptureFixture) -> None:
    fetch, clock = ScriptedFetch(), FakeClock()
    directory = CachedGroupDirectory(fetch, ttl=timedelta(minutes=5), clock=clock)
    directory.members("S1")
    fetch.failing = True
    clock.now += 600
    with caplog.at_level(logging.WARNING, logger="services.access.groups"):
        assert directory.members("S1") == {"U01"}
    assert "S1" in caplog.text
    assert "600s ago" in caplog.text
    clock.now += 29
    assert directory.members("S1") == {"U01"}
    assert fetch.calls == 2  # no new attempt inside the retry pause
    fetch.failing = False
    fetch.members["S1"] = ["U02"]
    clock.now += 1
    assert directory.members("S1") == {"U02"}


def test_cache_reraises_when_nothing_is_cached() -> None:
    fetch = ScriptedFetch()
    fetch.failing = True
    directory = CachedGroupDirectory(fetch, ttl=timedelta(minutes=5), clock=FakeClock())
    for _ in range(2):  # a failure is not cached
        with pytest.raises(BackendUnavailable):
            directory.members("S1")
    assert fetch.calls == 2


def test_cache_runs_one_fetch_per_group_for_concurrent_callers() -> None:
    clock, entered, release = FakeClock(), threading.Event(), threading.Event()
    calls: list[str] = []

    def fetch(group_id: str) -> list[str]:
        calls.append(group_id)
        entered.set()
        assert release.wait(5)
        return ["U01"]

    directory = CachedGroupDirectory(fetch, ttl=timedelta(minutes=5), clock=clock)
    results: list[frozenset[str]] = []
    threads = [threading.Thread(target=lambda: results.append(directory.members("S1"))) for _ in range(6)]
    threads[0].start()
    assert entered.wait(5)
    for thread in threads[1:]:
        thread.start()
    for _ in range(5000):  # until every follower has looked and found the fetch in flight
        if clock.reads >= 6:
            break
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert calls == ["S1"]
    assert results == [frozenset({"U01"})] * 6


# --- property -------------------------------------------------------------------------------------

MUTATING = sorted({s.permission for s in SUBCOMMANDS.values() if s.mutating} | {"approve", "pipeline_cancel"})
OTHER_USERS = ("UOTHER1", "UOTHER2", "UOTHER3")
ROLE_NAMES = ("viewer", "deployer", "approver", "admin", "custom")
grant_strategy = st.fixed_dictionaries(
    {
        "role": st.sampled_from(ROLE_NAMES),
        "users": st.lists(st.sampled_from(OTHER_USERS), max_size=2),
        "groups": st.lists(st.sampled_from(("SGA", "SGB", "SDOWN")), max_size=2),
        "environments": st.sampled_from((["*"], ["dev"], ["prod"])),
        "apps": st.sampled_from(([], ["web"])),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    grants=st.lists(grant_strategy, min_size=1, max_size=5),
    custom=st.lists(st.sampled_from(ACTIONS), max_size=6),
    approvers=st.lists(st.sampled_from(OTHER_USERS), max_size=2),
    request=st.tuples(
        st.sampled_from(MUTATING),
        st.sampled_from(("dev", "prod", None)),
        st.sampled_from(("web", "api", None)),
        st.booleans(),
    ),
)
def test_a_user_without_grants_is_never_allowed_to_change_anything(
    grants: list[dict[str, Any]],
    custom: list[str],
    approvers: list[str],
    request: tuple[str, str | None, str | None, bool],
) -> None:
    groups = FakeGroups({"SGA": OTHER_USERS[:1], "SGB": OTHER_USERS[1:]}, down={"SDOWN"})
    roles = [{"name": "custom", "actions": custom}]
    access = policy({"roles": roles, "grants": grants}, groups, approvers={"users": approvers})
    action, env, app, force = request
    decision = access.decide("UNEWCOMER", action, env=env, app=app, force=force)
    assert not decision.allowed
    assert not any(user in decision.reason for user in OTHER_USERS)
