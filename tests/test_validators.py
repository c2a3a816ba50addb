"""The built-in validators, configured and called through the plugin manager as the bot does:
change windows (over midnight, across DST, allow vs deny), soak, semver, required CI checks,
image_exists against the sandbox registry, scope matching and `--force`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import ConfigError, parse_config_text
from sandbox.oci_registry import FakeOCIRegistry
from services.backend import AppRef, AppStatus
from services.extensions.builtin import validators as builtin_validators
from services.extensions.builtin.semver import parse_version
from services.extensions.context import PluginContext
from services.extensions.hookspecs import hookimpl
from services.extensions.manager import Extensions
from services.extensions.model import Finding, PlannedChange, VersionChange
from services.settings.model import Settings
from services.store.sqlite import SqliteDatabase
from tests.registry_support import PASSWORD, USER, running

REF = AppRef(backend="argocd", instance="main", name="web-prod")
FREEZE = {  # the documented example: no prod changes from Friday 16:00 to Monday 08:00, Berlin time
    "kind": "change_window",
    "environments": ["prod"],
    "timezone": "Europe/Berlin",
    "deny": [
        {"days": ["fri"], "from": "16:00", "to": "24:00"},
        {"days": ["sat", "sun"]},
        {"days": ["mon"], "from": "00:00", "to": "08:00"},
    ],
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def change(**fields: Any) -> PlannedChange:
    base: dict[str, Any] = {
        "action": "promote",
        "ref": REF,
        "app": "web",
        "env": "prod",
        "user": "U1",
        "at": at("2025-03-26 12:00"),  # a Wednesday
    }
    return PlannedChange(**{**base, **fields})


class CI:
    """A plugin that knows CI results for one commit, as a Git host integration would."""

    def __init__(self, known: Mapping[str, Mapping[str, str]]) -> None:
        self.known = known

    @hookimpl
    def gitops_bot_commit_checks(self, change: PlannedChange) -> Mapping[str, str] | None:
        return self.known.get(change.revision or "")


class Bot:
    """The plugin manager wired as the bot wires it, reconfigurable with other validators."""

    def __init__(self, tmp_path: Path, secrets: Mapping[str, str] | None = None) -> None:
        self.database = SqliteDatabase(tmp_path / "bot.db")
        self.secrets = {k: SecretStr(v) for k, v in (secrets or {}).items()}
        self.extra: dict[str, object] = {}

    def configure(self, *validators: Mapping[str, Any]) -> Extensions:
        settings = Settings.model_validate({"validators": list(validators)})
        plugins = {"builtin-validators": builtin_validators, **self.extra}
        extensions, problems = Extensions.load(settings, builtins=plugins)
        assert problems == []
        context = PluginContext(self.database, lambda: datetime.now(UTC), self.secrets)
        extensions.configure(settings, context)
        return extensions

    def validate(self, *validators: Mapping[str, Any], **fields: Any) -> list[Finding]:
        return self.configure(*validators).validate(change(**fields))


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    yield Bot(tmp_path)
    builtin_validators.gitops_bot_shutdown()


def messages(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in findings]


# -- change windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-03-28 14:59", None),  # Fri 15:59 CET
        ("2025-03-28 15:00", "prod is in a change freeze until Mon 08:00 (Europe/Berlin)"),
        ("2025-03-29 23:30", "prod is in a change freeze until Mon 08:00 (Europe/Berlin)"),  # Sun
        # Monday after the spring DST change: 05:59 UTC is 07:59 CEST, 06:00 UTC is 08:00.
        ("2025-03-31 05:59", "prod is in a change freeze until Mon 08:00 (Europe/Berlin)"),
        ("2025-03-31 06:00", None),
        # The Monday before, still CET: 06:30 UTC is 07:30, so still frozen.
        ("2025-03-24 06:30", "prod is in a change freeze until Mon 08:00 (Europe/Berlin)"),
        ("2025-03-24 07:00", None),
    ],
)  # fmt: skip
def test_a_freeze_blocks_until_it_ends_across_adjacent_windows(bot, now, expected):
    found = bot.validate(FREEZE, at=at(now))
    if expected is None:
        assert found == []
    else:
        assert found == [
            Finding("change_window", "block", f"{expected}: an admin can pass `--force`"),
        ]


def berlin(**windows: Any) -> dict[str, Any]:
    return {"kind": "change_window", "timezone": "Europe/Berlin", **windows}


def test_force_turns_a_freeze_into_a_warning(bot):
    found = bot.validate(FREEZE, at=at("2025-03-28 17:00"), force=True)
    assert messages(found) == [
        (
            "warn",
            "change window overridden with --force: prod is in a change freeze until Mon 08:00 "
            "(Europe/Berlin)",
        )
    ]


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2025-03-29 21:30", "Sun 04:00"),  # Sat 22:30 CET
        ("2025-03-30 01:30", "Sun 04:00"),  # Sun 03:30 CEST: the clocks went forward inside it
        ("2025-03-30 02:00", None),  # Sun 04:00 CEST
        ("2025-03-30 20:30", None),  # Sunday evening is not Saturday evening
    ],
)
def test_windows_run_over_midnight_into_the_next_day(bot, now, until):
    night = berlin(deny=[{"days": ["sat"], "from": "22:00", "to": "04:00"}])
    found = bot.validate(night, at=at(now))
    assert messages(found) == (
        [("block", f"prod is in a change freeze until {until} (Europe/Berlin): an admin can pass `--force`")]
        if until
        else []
    )


def test_sunday_night_runs_into_monday(bot):
    night = {"kind": "change_window", "deny": [{"days": ["sun"], "from": "20:00", "to": "06:00"}]}
    assert "until Mon 06:00 (UTC)" in bot.validate(night, at=at("2025-03-30 21:00"))[0].message
    assert "until Mon 06:00 (UTC)" in bot.validate(night, at=at("2025-03-31 05:00"))[0].message
    assert bot.validate(night, at=at("2025-03-31 06:00")) == []


def test_the_repeated_hour_when_clocks_go_back_is_inside_a_window_both_times(bot):
    hour = berlin(deny=[{"days": ["sun"], "from": "02:00", "to": "03:00"}])
    assert len(bot.validate(hour, at=at("2025-10-26 00:30"))) == 1  # 02:30 CEST
    assert len(bot.validate(hour, at=at("2025-10-26 01:30"))) == 1  # 02:30 CET, an hour later
    assert bot.validate(hour, at=at("2025-10-26 02:00")) == []  # 03:00 CET


def test_allow_windows_block_everything_outside_them(bot):
    office = {
        "kind": "change_window",
        "environments": ["staging"],
        "timezone": "Europe/Berlin",
        "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}],
    }
    assert bot.validate(office, env="staging", at=at("2025-03-26 11:00")) == []  # Wed 12:00 CET
    (found,) = bot.validate(office, env="staging", at=at("2025-03-28 17:30"))  # Fri 18:30
    assert found.message == (
        "staging is outside its change windows until Mon 08:00 (Europe/Berlin): an admin can pass `--force`"
    )


def test_deny_inside_allow_and_the_next_opening_joins_both(bot):
    spec = {
        "kind": "change_window",
        "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}],
        "deny": [{"days": ["wed"], "from": "12:00", "to": "14:00"}, {"days": ["thu"], "from": "17:00"}],
    }
    (lunch,) = bot.validate(spec, at=at("2025-03-26 12:30"))
    assert lunch.message.startswith("prod is in a change freeze until Wed 14:00 (UTC)")
    (evening,) = bot.validate(spec, at=at("2025-03-27 17:30"))  # deny until 24:00, then outside allow
    assert evening.message.startswith("prod is in a change freeze until Fri 08:00 (UTC)")


def test_a_week_without_an_opening_says_so(bot):
    (found,) = bot.validate({"kind": "change_window", "deny": [{}]})
    assert found.message.startswith("prod is in a change freeze, and no window of the week opens (UTC)")


def test_window_config_problems_name_their_keys():
    text = """
    validators:
      - kind: change_window
        timezone: Europe/Berln
        deny:
          - {from: "08:00", to: "08:00"}
          - {from: "25:00"}
    """
    with pytest.raises(ConfigError) as info:
        parse_config_text(text.replace("\n    ", "\n"), environ={})
    found = "\n".join(info.value.problems)
    assert "timezone: 'Europe/Berln' is not an IANA time zone (like Europe/Berlin or UTC)" in found
    assert "(did you mean 'Europe/Berlin'?)" in found
    assert "deny[0]: `from` and `to` are the same time: the window would be empty" in found
    assert "deny[1].from: expected a time of day from 00:00 to 24:00" in found
    assert all(p.startswith("validators[0].") for p in info.value.problems)


def test_registry_hosts_are_hosts():
    text = "validators: [{kind: image_exists, registries: [{host: 'https://registry.example.com/team'}]}]\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, environ={})
    (found,) = info.value.problems
    assert found.startswith("validators[0].")
    assert found.endswith("registries[0].host: expected a registry host like registry.example.com or "
                          "localhost:5000 (no scheme, no path)")  # fmt: skip


# -- soak -------------------------------------------------------------------------------------------------


SOAK = {"kind": "soak", "environments": ["prod"], "minutes": 30}


def source(sync: str = "Synced", health: str = "Healthy") -> AppStatus:
    return AppStatus(ref=replace(REF, name="web-staging"), sync=sync, health=health)  # type: ignore[arg-type]


def test_soak_blocks_until_the_source_has_run_long_enough(bot):
    now = at("2025-03-26 12:00")
    fields = {"source_env": "staging", "source": source(), "at": now}
    (young,) = bot.validate(SOAK, source_since=now - timedelta(minutes=12), **fields)
    assert young == Finding(
        "soak",
        "block",
        "staging has run this version for 12 minutes; it must run there for 30 minutes before it goes "
        "to prod (ready at 12:18 UTC): an admin can pass `--force`",
    )
    assert bot.validate(SOAK, source_since=now - timedelta(minutes=30), **fields) == []
    (forced,) = bot.validate(SOAK, source_since=now - timedelta(minutes=1), force=True, **fields)
    assert forced.severity == "warn"
    assert forced.message.startswith(
        "soak overridden with --force: staging has run this version for 1 minute;"
    )


def test_soak_needs_a_synced_healthy_source_with_a_known_start(bot):
    fields = {"source_env": "staging", "source_since": at("2025-03-26 09:00")}
    (sick,) = bot.validate(SOAK, source=source(health="Degraded"), **fields)
    assert sick.message.startswith("staging is not Synced and Healthy (Synced, Degraded); it must run there")
    (unknown,) = bot.validate(SOAK, source=source(), source_env="staging")
    assert unknown.message.startswith("how long staging has run this version is unknown;")
    (blind,) = bot.validate(SOAK, source_env="staging")
    assert blind.blocks
    assert bot.validate(SOAK, action="sync") == []  # a sync has no source to soak in


# -- semver ---------------------------------------------------------------------------------------------


def image_change(old: str | None, new: str, name: str = "registry.example.com/team/api") -> VersionChange:
    sep = "@" if new.startswith("sha256:") else ":"
    return VersionChange("image", name, old, new, image=f"{name}{sep}{new}")


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ("1.9.0", "2.0.0", "is a major version jump"),
        ("v1.9.0", "v2.0.0-rc.1", "is a major version jump"),
        ("1.4.3", "1.4.1", "is a downgrade"),
        ("2.0.0", "2.0.0-rc.1", "is a downgrade"),
        ("1.4.3", "1.4.4", None),
        ("1.4", "1.5", None),
        ("2.0.0-rc.1", "2.0.0", None),
        ("2.0.0-rc.2", "2.0.0-rc.10", None),  # numeric identifiers compare as numbers
        ("1.4.3", "1.4.3+build.7", None),
        ("latest", "stable", None),
        ("1.9.0", "sha256:" + "a" * 64, None),
        (None, "3.0.0", None),
        ("20240101", "20250101", None),  # a date, not semver
    ],
)  # fmt: skip
def test_semver_guard(bot, old, new, verdict):
    found = bot.validate({"kind": "semver_guard"}, changes=(image_change(old, new),))
    if verdict is None:
        assert found == []
    else:
        assert messages(found) == [("block", f"api {old} → {new} {verdict}: an admin can pass `--force`")]


def test_semver_guard_judges_charts_and_yields_to_force(bot):
    chart = VersionChange("chart", "chart podinfo", "6.5.4", "7.0.0")
    value = VersionChange("value", "spec.replicas", "1.0.0", "3.0.0")  # values are not versions
    found = bot.validate({"kind": "semver_guard"}, changes=(chart, value), force=True)
    assert messages(found) == [
        ("warn", "semver guard overridden with --force: chart podinfo 6.5.4 → 7.0.0 is a major version jump")
    ]


def test_lenient_semver_parsing():
    assert parse_version("v1.2") == parse_version("1.2.0")
    assert parse_version("1.2.3-rc.1+b5") is not None
    for text in ("01.2.3", "1.2.3.4", "1", "v", "", None, "1.2.3-"):
        assert parse_version(text) is None


# -- required checks ------------------------------------------------------------------------------------


CHECKS = {"kind": "required_checks", "checks": ["ci/test", "ci/lint", "ci/e2e"]}


def test_required_checks_without_an_integration_block(bot):
    (found,) = bot.validate({"kind": "required_checks", "checks": ["ci/test"]}, revision="abc123", force=True)
    assert found == Finding(
        "required_checks", "block", "no integration reports CI checks for this commit; required: ci/test"
    )


def test_required_checks_read_what_the_ci_plugin_reports(bot):
    bot.extra["ci"] = CI({
        "bad": {"ci/test": "failure", "ci/lint": "success"},
        "good": {"ci/test": "success", "ci/lint": "success", "ci/e2e": "success", "other": "failure"},
    })  # fmt: skip
    (found,) = bot.validate(CHECKS, revision="bad", force=True)  # --force does not pass a red build
    assert found.blocks
    assert found.message == (
        "required CI checks have not passed for this commit: ci/test (failure), ci/e2e (missing); "
        "wait for them, or fix the build and promote again"
    )
    (pending,) = bot.validate(
        CHECKS, checks={"ci/test": "pending", "ci/lint": "success", "ci/e2e": "success"}
    )
    assert "ci/test (pending)" in pending.message
    assert bot.validate(CHECKS, revision="good") == []


# -- scope ------------------------------------------------------------------------------------------------


def test_scope_matches_environments_apps_and_actions(bot):
    spec = {**FREEZE, "apps": ["web"], "actions": ["promote", "sync"]}
    friday = at("2025-03-28 17:00")
    assert len(bot.validate(spec, at=friday)) == 1
    assert len(bot.validate(spec, at=friday, action="sync")) == 1
    assert bot.validate(spec, at=friday, action="rollback") == []
    assert bot.validate(spec, at=friday, env="staging") == []
    assert bot.validate(spec, at=friday, app="api") == []
    assert bot.validate(spec, at=friday, env=None, app=None) == []  # an unconfigured app
    anywhere = {"kind": "change_window", "deny": [{"days": ["fri"]}]}
    (found,) = bot.validate(anywhere, at=friday, env=None, app=None, action="sync")
    assert found.message.startswith("main/web-prod is in a change freeze until Sat 00:00 (UTC)")


def test_findings_come_in_config_order_and_configure_replaces_everything(bot):
    friday = at("2025-03-28 17:00")
    both = bot.validate(
        FREEZE, {"kind": "semver_guard"}, at=friday, changes=(image_change("1.0.0", "0.9.0"),)
    )
    assert [f.validator for f in both] == ["change_window", "semver_guard"]
    assert bot.validate({"kind": "semver_guard"}, at=friday) == []  # the freeze is gone
    assert bot.validate(at=friday) == []


# -- image_exists through the plugin -------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[FakeOCIRegistry]:
    with running(auth="token", username=USER, password=PASSWORD) as fake:
        yield fake


def image_exists(registry: FakeOCIRegistry) -> dict[str, Any]:
    credentials = {"username_env": "REGISTRY_USER", "password_env": "REGISTRY_TOKEN"}
    return {"kind": "image_exists", "registries": [{"host": registry.host, "insecure": True, **credentials}]}


def test_image_exists_asks_the_registry_with_the_configured_credentials(tmp_path, registry):
    registry.push("team/api", "1.4.3")
    bot = Bot(tmp_path, secrets={"REGISTRY_USER": USER, "REGISTRY_TOKEN": PASSWORD})
    spec = image_exists(registry)
    name = f"{registry.host}/team/api"
    present, missing = image_change("1.4.2", "1.4.3", name), image_change("1.4.2", "1.4.4", name)
    assert bot.validate(spec, changes=(present,)) == []
    found = bot.validate(spec, changes=(present, missing), force=True)  # --force does not pass it
    assert found == [
        Finding(
            "image_exists",
            "block",
            f"image {name}:1.4.4 does not exist in its registry: push it first, or check the tag",
        )
    ]
    assert any(r.path == "/token" and r.auth_scheme == "basic" for r in registry.requests)
    builtin_validators.gitops_bot_shutdown()


def test_image_exists_reports_a_registry_it_cannot_ask_without_raising(bot, registry):
    name = f"{registry.host}/team/api"
    spec = {
        "kind": "image_exists",
        "severity": "warn",
        "registries": [{"host": registry.host, "insecure": True}],
    }
    (anonymous,) = bot.validate(spec, changes=(image_change("1", "2", name),))
    assert anonymous.severity == "warn"
    assert anonymous.message == (
        f"could not check that image {name}:2 exists: registry {registry.host} refused anonymous access "
        "at its token service; check the registry, or its credentials in the `image_exists` validator's "
        "`registries`"
    )
    registry.down()
    (down,) = bot.validate(spec, changes=(image_change("1", "2", name),))
    assert f"registry {registry.host} could not be reached" in down.message
    (broken,) = bot.validate(spec, changes=(VersionChange("image", "api", "1", "2", image="Bad Image!"),))
    assert broken.message.startswith("image Bad Image! is not a valid image reference")


def test_no_secret_reaches_a_finding(tmp_path, registry):
    bot = Bot(tmp_path, secrets={"REGISTRY_USER": USER, "REGISTRY_TOKEN": "wrong-" + PASSWORD})
    spec = image_exists(registry)
    (found,) = bot.validate(spec, changes=(image_change("1", "2", f"{registry.host}/team/api"),))
    assert "refused the configured credentials" in found.message
    assert PASSWORD not in found.message
    assert USER not in found.message
    builtin_validators.gitops_bot_shutdown()


def test_the_default_builtins_include_the_validators(tmp_path):
    settings = Settings.model_validate({"validators": [FREEZE]})
    extensions, problems = Extensions.load(settings)
    assert problems == []
    assert "builtin-validators" in [p.name for p in extensions.plugins]
    context = PluginContext(SqliteDatabase(tmp_path / "db"), lambda: datetime.now(UTC), {})
    extensions.configure(settings, context)
    (found,) = extensions.validate(change(at=at("2025-03-29 10:00")))
    assert found.validator == "change_window"


def test_image_exists_asks_a_mirror_for_images_named_after_another_host(tmp_path, registry):
    # Images keep their canonical name (registry.example.com/…); the registry asked is the mirror.
    registry.push("team/api", "1.4.3")
    bot = Bot(tmp_path, secrets={"REGISTRY_USER": USER, "REGISTRY_TOKEN": PASSWORD})
    spec = image_exists(registry)
    spec["registries"][0] |= {"host": "registry.example.com", "mirror": registry.host}
    name = "registry.example.com/team/api"
    assert bot.validate(spec, changes=(image_change("1.4.2", "1.4.3", name),)) == []
    (missing,) = bot.validate(spec, changes=(image_change("1.4.2", "9.9.9", name),))
    assert missing.message.startswith("image registry.example.com/team/api:9.9.9 does not exist")
    assert any(r.path == "/v2/team/api/manifests/1.4.3" for r in registry.requests)
    builtin_validators.gitops_bot_shutdown()
