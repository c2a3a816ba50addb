"""Accept/reject tables for every validator in services/validation.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services import validation as v
from services.errors import UserError

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)

SMUGGLING = ("--upload-pack=evil", "main;rm -rf /", "$(id)", "a b", "../etc", "main\nrm", "-", "`id`")

STRUCTURED: dict[str, Callable[[str], object]] = {
    "app_ref": v.app_ref,
    "env_name": v.env_name,
    "revision": v.revision,
    "history_id": v.history_id,
    "rollback_target": v.rollback_target,
    "label_selector": v.label_selector,
    "project_name": v.project_name,
    "duration": v.duration,
    "since": lambda s: v.since(s, NOW),
    "slack_user": v.slack_user,
    "action_name": v.action_name,
}


def refused(fn: Callable[[str], object], value: str) -> UserError:
    with pytest.raises(UserError) as info:
        fn(value)
    return info.value


@pytest.mark.parametrize("name", sorted(STRUCTURED))
@pytest.mark.parametrize("value", SMUGGLING)
def test_every_structured_validator_refuses_smuggling_values(name: str, value: str) -> None:
    err = refused(STRUCTURED[name], value)
    assert v.display_value(value) in err.message
    assert "Expected" in err.message


def test_offending_value_is_shown_bounded_and_escaped() -> None:
    err = refused(v.app_ref, "x" * 100 + "$")
    shown = err.message.split("`")[1]
    assert len(shown) == 60
    assert shown.endswith("…")
    assert v.display_value("a\nb`c") == "`a\\nb'c`"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("--upload-pack=evil", "starts with `-`"),
        ("main;rm -rf /", "contains `;`"),
        ("$(id)", "contains `$`"),
        ("a b", "whitespace"),
        ("main\nrm", "whitespace"),
        ("a..b", "contains `..`"),
        ("a//b", "contains `//`"),
        ("x@{1}", "contains `@`"),
        ("feature/", "ends with `/`"),
        ("v1.", "ends with `.`"),
        ("main.lock", "ends with `.lock`"),
        ("feat/.hidden", "starts with `.`"),
    ],
)
def test_revision_refusals_name_the_reason(value: str, reason: str) -> None:
    assert reason in refused(v.revision, value).message


@pytest.mark.parametrize(
    "value", ["main", "v1.2.3", "v1.2.3-rc.1+build.5", "feature/login", "abc1234", "A" * 200]
)
def test_revision_accepts_shas_branches_tags(value: str) -> None:
    assert v.revision(value) == value


def test_revision_length_bound() -> None:
    refused(v.revision, "a" * 201)


@pytest.mark.parametrize(
    "value", ["web", "payments-api", "argo/web", "team-a/web", "in-cluster/team-a/web", "web.v2", "0"]
)
def test_app_ref_accepts(value: str) -> None:
    assert v.app_ref(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a/b/c/d", "more than 3"),
        ("a//b", "empty"),
        ("/web", "empty"),
        ("web-", "start and end"),
        (".web", "start and end"),
        ("we_b", "contains `_`"),
        ("", "empty"),
        ("a" * 254, "start and end"),
    ],
)
def test_app_ref_refusals(value: str, reason: str) -> None:
    assert reason in refused(v.app_ref, value).message


def test_uppercase_app_suggests_lowercase() -> None:
    err = refused(v.app_ref, "Team-A/Web")
    assert "lowercase" in err.message
    assert err.hint == "Did you mean `team-a/web`?"


@pytest.mark.parametrize("value", ["prod", "staging-eu", "a", "e" * 63])
def test_env_name_accepts(value: str) -> None:
    assert v.env_name(value) == value


@pytest.mark.parametrize("value", ["-prod", "prod-", "e" * 64, "pro.d", "pro_d", ""])
def test_env_name_refuses(value: str) -> None:
    refused(v.env_name, value)


def test_env_name_uppercase_suggests_lowercase() -> None:
    assert refused(v.env_name, "PROD").hint == "Did you mean `prod`?"


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("12", 12), ("007", 7)])
def test_history_id_accepts(value: str, expected: int) -> None:
    assert v.history_id(value) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "", " 1", "1" * 19, "١٢"])
def test_history_id_refuses(value: str) -> None:
    refused(v.history_id, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", "12"), ("0", "0"), ("abc1234", "abc1234"), ("ABCDEF12", "abcdef12"), ("a" * 40, "a" * 40)],
)
def test_rollback_target_accepts(value: str, expected: str) -> None:
    assert v.rollback_target(value) == expected


@pytest.mark.parametrize("value", ["HEAD~1", "abc12", "a" * 41, "main", "-3", "g123456"])
def test_rollback_target_refuses(value: str) -> None:
    refused(v.rollback_target, value)


def test_label_selector_parses_and_formats_canonically() -> None:
    reqs = v.label_selector("app==web, tier!=canary,example.com/team=payments,empty=")
    assert reqs == (
        v.LabelRequirement("app", "=", "web"),
        v.LabelRequirement("tier", "!=", "canary"),
        v.LabelRequirement("example.com/team", "=", "payments"),
        v.LabelRequirement("empty", "=", ""),
    )
    assert v.format_selector(reqs) == "app=web,tier!=canary,example.com/team=payments,empty="


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("app", "has no `=`"),
        ("=web", "no key"),
        ("app=web,", "has no `=`"),
        ("Example.com/app=web", "not a label key"),
        ("-app=web", "not a label key"),
        ("app=we b", "whitespace"),
        ("app=web;id", "contains `;`"),
        ("app=" + "v" * 64, "expected shape"),
        ("k" * 64 + "=v", "not a label key"),
    ],
)
def test_label_selector_refusals(value: str, reason: str) -> None:
    assert reason in refused(v.label_selector, value).message


def test_label_requirement_is_frozen() -> None:
    req = v.LabelRequirement("a", "=", "b")
    with pytest.raises(AttributeError):
        req.key = "c"  # type: ignore[misc]


@pytest.mark.parametrize("value", ["default", "team-a", "p" * 253])
def test_project_name_accepts(value: str) -> None:
    assert v.project_name(value) == value


@pytest.mark.parametrize("value", ["Team", "team_a", "p" * 254, "a..b"])
def test_project_name_refuses(value: str) -> None:
    refused(v.project_name, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("366d", timedelta(days=366)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_duration_accepts(value: str, expected: timedelta) -> None:
    assert v.duration(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0m", "zero"),
        ("367d", "366 days"),
        ("53w", "366 days"),
        ("30m1h", "shape"),
        ("", "empty"),
        ("5", "shape"),
    ],
)
def test_duration_refusals(value: str, reason: str) -> None:
    assert reason in refused(v.duration, value).message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", datetime(2026, 11, 3, 12, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00Z", datetime(2026, 11, 1, 10, 0, tzinfo=UTC)),
        ("2026-11-01T10:00:30+02:00", datetime(2026, 11, 1, 8, 0, 30, tzinfo=UTC)),
        ("2026-11-10T12:00", NOW),
    ],
)
def test_since_accepts(value: str, expected: datetime) -> None:
    got = v.since(value, NOW)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-12-01", "future"),
        ("2026-02-30", "not a real date"),
        ("1969-12-31", "before 1970"),
        ("yesterday", "shape"),
        ("2026-W01", "shape"),
        ("0001-01-01T00:00+05:00", "not a real date"),
    ],
)
def test_since_refusals(value: str, reason: str) -> None:
    assert reason in refused(lambda s: v.since(s, NOW), value).message


def test_since_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        v.since("7d", datetime(2026, 1, 1))  # naive on purpose


@pytest.mark.parametrize(
    ("value", "expected"),
    [("  release freeze  ", "release freeze"), ("x" * 500, "x" * 500), ("rollback; $(id) a b ../etc", None)],
)
def test_reason_text_accepts_free_text(value: str, expected: str | None) -> None:
    # Free text never reaches a shell or an argv position, so shell-looking text is kept as written.
    assert v.reason_text(value) == (expected or value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 501, "501 characters"),
        ("line\nbreak", "line break"),
        ("tab\there", "control character"),
        ("bidi \u202e trick", "control character"),
        ("--upload-pack=evil", "starts with `-`"),
    ],
)
def test_reason_text_refusals(value: str, reason: str) -> None:
    assert reason in refused(v.reason_text, value).message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<@U123ABC>", v.UserRef("U123ABC", None)),
        ("<@U123ABC|alice>", v.UserRef("U123ABC", "alice")),
        ("U123ABC", v.UserRef("U123ABC", None)),
        ("W0123456789", v.UserRef("W0123456789", None)),
        ("@alice", v.UserRef(None, "alice")),
        ("@Alice.Smith", v.UserRef(None, "alice.smith")),
        ("bob", v.UserRef(None, "bob")),
    ],
)
def test_slack_user_accepts(value: str, expected: v.UserRef) -> None:
    assert v.slack_user(value) == expected


@pytest.mark.parametrize("value", ["<@U1>", "<@x123456>", "@", "@-x", "@" + "a" * 81, "<#C123456|deploys>"])
def test_slack_user_refuses(value: str) -> None:
    refused(v.slack_user, value)


@pytest.mark.parametrize(
    "value", [*v.SUBCOMMAND_NAMES, "approve", "reject", "confirm", "snooze", "acknowledge"]
)
def test_action_name_accepts(value: str) -> None:
    assert v.action_name(value.upper()) == value


def test_action_name_suggests_nearest() -> None:
    assert refused(v.action_name, "aprove").hint == "Did you mean `approve`?"


@pytest.mark.parametrize(
    ("value", "expected"), [("-x", True), ("--upload-pack", True), ("main", False), ("", False)]
)
def test_is_option_like(value: str, expected: bool) -> None:
    assert v.is_option_like(value) is expected
