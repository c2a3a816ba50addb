"""The `/gitops` grammar: every subcommand and flag, every error class, and fuzzing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.grammar.parser import CommandRequest, parse_command, tokenize
from handlers.grammar.rules import FLAG_VALUES, REQUIRED_FLAGS, flag_target
from handlers.grammar.spec import SUBCOMMANDS
from services.errors import UserError
from services.validation import SUBCOMMAND_NAMES, LabelRequirement, UserRef

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def parse(text: str) -> CommandRequest:
    return parse_command(text, now=NOW)


def refused(text: str) -> UserError:
    with pytest.raises(UserError) as info:
        parse(text)
    return info.value


def usage(name: str) -> str:
    return f"Usage: /gitops {SUBCOMMANDS[name].usage}"


# --- the table -------------------------------------------------------------------------------


def test_table_lists_every_subcommand_in_order_and_is_read_only() -> None:
    assert tuple(SUBCOMMANDS) == SUBCOMMAND_NAMES
    with pytest.raises(TypeError):
        SUBCOMMANDS["x"] = SUBCOMMANDS["help"]  # type: ignore[index]


def test_mutating_subcommands() -> None:
    mutating = {name for name, spec in SUBCOMMANDS.items() if spec.mutating}
    assert mutating == {"sync", "rollback", "promote", "suspend", "resume", "lock", "unlock", "pipeline"}


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_spec_is_consistent_with_its_usage_line(name: str) -> None:
    spec = SUBCOMMANDS[name]
    assert spec.usage.split()[0] == name
    assert "\n" not in spec.summary
    assert 2 <= len(spec.details.splitlines()) <= 4
    # Optional parts are in [...]; (A | B) alternatives are required only as a group.
    outside_brackets = re.sub(r"\[[^\]]*\]|\([^)]*\)", "", spec.usage)
    for flag in spec.flags:
        assert flag.name in spec.usage
        assert flag.takes_value == (flag.metavar is not None)
        if flag.takes_value:
            assert flag_target(name, flag.name) is not None, f"{name} {flag.name} has no validator"
        # A flag outside brackets in the usage line is required, and vice versa.
        assert (flag.name in outside_brackets.split()) == (flag.name in REQUIRED_FLAGS.get(name, ()))
    for pos in spec.positionals:
        assert pos.name in spec.usage


def test_every_value_flag_in_the_converter_table_exists() -> None:
    every_flag = {f.name for spec in SUBCOMMANDS.values() for f in spec.flags if f.takes_value}
    assert {k if isinstance(k, str) else k[1] for k in FLAG_VALUES} == every_flag


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_has_examples_that_parse(name: str) -> None:
    spec = SUBCOMMANDS[name]
    assert spec.examples
    for example in spec.examples:
        assert example.startswith("/gitops ")
        assert parse(example.removeprefix("/gitops ")).subcommand == name


# --- every subcommand with each of its flags ---------------------------------------------------

PARSES = [
    ("", CommandRequest("help", "")),
    ("   ", CommandRequest("help", "")),
    ("help", CommandRequest("help", "help")),
    ("help SYNC", CommandRequest("help", "help SYNC", topic="sync")),
    ("sync --help", CommandRequest("help", "sync --help", topic="sync")),
    ("status", CommandRequest("status", "status", all=True)),
    ("STATUS web prod", CommandRequest("status", "STATUS web prod", app="web", env="prod")),
    ("status --all", CommandRequest("status", "status --all", all=True)),
    (
        "status --project team-a",
        CommandRequest("status", "status --project team-a", all=True, project="team-a"),
    ),
    (
        "status --selector team=payments",
        CommandRequest(
            "status", "status --selector team=payments", selector=(LabelRequirement("team", "=", "payments"),)
        ),
    ),
    (
        "sync web prod --prune --dry-run --revision v1.2.3 --force",
        CommandRequest(
            "sync",
            "sync web prod --prune --dry-run --revision v1.2.3 --force",
            app="web",
            env="prod",
            prune=True,
            dry_run=True,
            revision="v1.2.3",
            force=True,
        ),
    ),
    (
        "sync --selector tier!=canary --prune --dry-run",
        CommandRequest(
            "sync",
            "sync --selector tier!=canary --prune --dry-run",
            selector=(LabelRequirement("tier", "!=", "canary"),),
            prune=True,
            dry_run=True,
        ),
    ),
    (
        "diff web --revision abc1234",
        CommandRequest("diff", "diff web --revision abc1234", app="web", revision="abc1234"),
    ),
    ("history web prod", CommandRequest("history", "history web prod", app="web", env="prod")),
    (
        "rollback web prod --to 41 --suspend --force",
        CommandRequest(
            "rollback",
            "rollback web prod --to 41 --suspend --force",
            app="web",
            env="prod",
            to="41",
            suspend=True,
            force=True,
        ),
    ),
    (
        "rollback web --to ABCDEF1",
        CommandRequest("rollback", "rollback web --to ABCDEF1", app="web", to="abcdef1"),
    ),
    (
        "promote web --to prod --from staging --force",
        CommandRequest(
            "promote",
            "promote web --to prod --from staging --force",
            app="web",
            to="prod",
            from_env="staging",
            force=True,
        ),
    ),
    (
        "suspend web prod --force",
        CommandRequest("suspend", "suspend web prod --force", app="web", env="prod", force=True),
    ),
    ("resume web prod", CommandRequest("resume", "resume web prod", app="web", env="prod")),
    (
        "lock prod --app web --reason freeze --ttl 1h30m",
        CommandRequest(
            "lock",
            "lock prod --app web --reason freeze --ttl 1h30m",
            env="prod",
            lock_app="web",
            reason="freeze",
            ttl=timedelta(hours=1, minutes=30),
        ),
    ),
    (
        "unlock prod --app web --force",
        CommandRequest("unlock", "unlock prod --app web --force", env="prod", lock_app="web", force=True),
    ),
    ("drift", CommandRequest("drift", "drift")),
    ("drift web", CommandRequest("drift", "drift web", app="web")),
    (
        "audit web --env prod --user <@U123ABC|alice> --action approve --since 7d",
        CommandRequest(
            "audit",
            "audit web --env prod --user <@U123ABC|alice> --action approve --since 7d",
            app="web",
            env="prod",
            user=UserRef("U123ABC", "alice"),
            action="approve",
            since=NOW - timedelta(days=7),
        ),
    ),
    ("whoami", CommandRequest("whoami", "whoami")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[t or "<empty>" for t, _ in PARSES])
def test_parses(text: str, expected: CommandRequest) -> None:
    assert parse(text) == expected


def test_flag_equals_value_form_matches_separate_value_form() -> None:
    spaced = parse("lock prod --app web --reason freeze --ttl 2h")
    joined = parse("lock prod --app=web --reason=freeze --ttl=2h")
    assert (joined.lock_app, joined.reason, joined.ttl) == (spaced.lock_app, spaced.reason, spaced.ttl)
    assert parse("audit --since=2026-11-01T10:00Z").since == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert parse("sync --selector=app=web").selector == (LabelRequirement("app", "=", "web"),)


def test_flags_are_case_insensitive_and_order_free() -> None:
    assert parse("sync --PRUNE web").prune is True
    assert parse("promote --to prod web").to == "prod"


@pytest.mark.parametrize(
    "text",
    [
        'lock prod --reason "release freeze"',
        "lock prod --reason 'release freeze'",
        "lock prod --reason “release freeze”",
        "lock prod --reason ‘release freeze’",
        "lock prod --reason=release\\ freeze",
    ],
)
def test_quotes_and_smart_quotes(text: str) -> None:
    assert parse(text).reason == "release freeze"


def test_smart_apostrophe_inside_double_quotes() -> None:
    assert parse("lock prod --reason “don’t deploy”").reason == "don't deploy"


def test_slack_html_escapes_are_undone_once() -> None:
    assert parse("lock prod --reason 'a &amp; b &lt;c&gt;'").reason == "a & b <c>"
    assert parse("lock prod --reason '&amp;lt;'").reason == "&lt;"
    assert parse("audit --user &lt;@U123ABC&gt;").user == UserRef("U123ABC", None)


def test_dash_autocorrected_by_slack_still_reads_as_a_flag() -> None:
    assert parse("sync web —prune –dry-run").dry_run is True
    assert tokenize("lock prod --reason '— spaced dash'") == ["lock", "prod", "--reason", "— spaced dash"]


# --- every error class, with its exact suggestion -----------------------------------------------


def test_unknown_subcommand_suggests_nearest() -> None:
    err = refused("stauts web")
    assert err.message == "Unknown subcommand `stauts`"
    assert err.hint == "Did you mean `stats` or `status`? Try `/gitops help`."  # both one edit away
    assert refused("sycn web").hint == "Did you mean `sync`? Try `/gitops help`."


def test_unknown_subcommand_without_near_match_lists_all() -> None:
    err = refused("xyzzy")
    assert err.hint is not None
    assert all(f"`{name}`" in err.hint for name in SUBCOMMANDS)
    assert err.hint.endswith("Try `/gitops help`.")


def test_help_with_unknown_topic_suggests_too() -> None:
    err = refused("help stauts")
    assert err.message == "Unknown subcommand `stauts`"
    assert err.hint == "Did you mean `stats` or `status`? Try `/gitops help`."


def test_unknown_flag_suggests_closest_flag_of_this_subcommand() -> None:
    err = refused("sync web --prun")
    assert err.message == "Unknown flag `--prun` for `sync`. Did you mean `--prune`?"
    assert err.hint == usage("sync")


def test_unknown_flag_that_belongs_elsewhere_says_so() -> None:
    err = refused("diff web --prune")
    assert err.message == "Unknown flag `--prune` for `diff`. `--prune` is a flag of `sync`."
    assert err.hint == usage("diff")
    assert (
        "`--force` is a flag of `sync`, `rollback`, `promote`, `suspend`, `unlock`"
        in refused("diff web --force").message
    )


def test_flag_of_a_subcommand_without_flags() -> None:
    assert refused("whoami --all").message == (
        "Unknown flag `--all` for `whoami`. `--all` is a flag of `status`. `whoami` takes no flags."
    )


@pytest.mark.parametrize("token", ["-x", "-", "--", "---prune"])
def test_single_dash_and_odd_dash_tokens_are_unknown_flags(token: str) -> None:
    assert refused(f"sync web {token}").message.startswith(f"Unknown flag `{token}` for `sync`.")


def test_boolean_flag_refuses_a_value() -> None:
    err = refused("sync web --prune=yes")
    assert err.message == "`--prune` takes no value; drop `=yes`."
    assert err.hint == usage("sync")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sync web --revision", "`--revision` needs a value (R)."),
        ("sync web --revision=", "`--revision` needs a value (R)."),
        ("sync web --revision --prune", "`--revision` needs a value (R), not `--prune`."),
        ("rollback web --to=-1", "`--to` needs a value (ID), not `-1`."),
    ],
)
def test_value_flag_without_value(text: str, message: str) -> None:
    err = refused(text)
    assert err.message == message
    assert err.hint == usage(text.split()[0])


def test_duplicate_flag() -> None:
    err = refused("promote web --to prod --to=staging")
    assert err.message == "`--to` is given twice."
    assert err.hint == usage("promote")


def test_too_many_positionals() -> None:
    err = refused("history web prod extra")
    assert err.message == "Too many arguments for `history`: `extra`."
    assert err.hint == usage("history")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("diff", "`diff` needs APP."),
        ("lock", "`lock` needs ENV."),
        ("promote web", "`promote` needs `--to ENV`."),
        ("lock prod --ttl 2h", "`lock` needs `--reason TEXT`."),
        ("sync", "`sync` needs APP or `--selector`."),
        ("sync --prune", "`sync` needs APP or `--selector`."),
    ],
)
def test_missing_required_argument(text: str, message: str) -> None:
    err = refused(text)
    assert err.message == message
    assert err.hint == usage(text.split()[0])


@pytest.mark.parametrize(
    "text",
    [
        "sync web --selector app=web",
        "sync --selector app=web --revision main",
        "sync --selector app=web --force",
        "status web --all",
        "status web --selector app=web",
        "promote web --to prod --from prod",
    ],
)
def test_conflicting_arguments(text: str) -> None:
    assert refused(text).hint == usage(text.split()[0])


def test_rollback_to_is_a_target_but_promote_to_is_an_env() -> None:
    assert parse("rollback web --to 12").to == "12"
    assert "Invalid environment `12x_`" in refused("promote web --to 12x_").message
    assert "Invalid rollback target `prod`" in refused("rollback web --to prod").message


def test_validation_errors_keep_their_own_hint_or_get_the_usage() -> None:
    assert refused("status Web").hint == "Did you mean `web`?"
    assert refused("lock prod --reason x --ttl forever").hint == usage("lock")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sync --upload-pack=x", "Unknown flag `--upload-pack` for `sync`"),
        ("sync api --revision --upload-pack=x", "`--revision` needs a value (R), not `--upload-pack=x`"),
        ("sync api --revision=--upload-pack=x", "`--revision` needs a value (R), not `--upload-pack=x`"),
        ("sync 'main;rm -rf'", "Invalid app `main;rm -rf`: it contains `;`"),
        ("sync api --revision 'main;rm -rf /'", "Invalid revision `main;rm -rf /`: it contains `;`"),
        ("diff api --revision '$(id)'", "Invalid revision `$(id)`: it contains `$`"),
        ("sync ../etc", "Invalid app `../etc`: it contains `..`"),
        ("lock prod --reason 'two\nlines'", "Invalid reason `two\\nlines`: it contains a line break"),
        ("status web 'a b'", "Invalid environment `a b`: it contains whitespace"),
    ],
)
def test_smuggling_is_refused(text: str, fragment: str) -> None:
    assert fragment in refused(text).message


def test_unbalanced_quotes() -> None:
    err = refused("lock prod --reason 'release freeze")
    assert err.message == "Unbalanced quotes in the command."
    assert refused("lock prod --reason “release freeze").message == "Unbalanced quotes in the command."
    assert refused("sync web \\").message == "Unbalanced quotes in the command."


def test_text_over_2000_characters() -> None:
    err = refused("lock prod --reason " + "x" * 2000)
    assert err.message == "That command is 2,019 characters long; the limit is 2,000."


# --- fuzzing ------------------------------------------------------------------------------------

_FLAGS = sorted({f.name for spec in SUBCOMMANDS.values() for f in spec.flags} | {"--help", "-x", "--"})
_WORDS = st.one_of(
    st.sampled_from([*SUBCOMMANDS, "STATUS", "stauts"]),
    st.sampled_from(_FLAGS),
    st.sampled_from(_FLAGS).map(lambda f: f + "="),
    st.tuples(st.sampled_from(_FLAGS), st.text(max_size=12)).map("=".join),
    st.sampled_from(
        ["web", "prod", "a/b/c", "7d", "2026-11-01", "app=web", "41", "abc1234", "@alice", "<@U123ABC>"]
    ),
    st.sampled_from(['"', "'", "“", "’", "\\", "&amp;", "&lt;", "—", "$(id)", ";", "\n", "\x00", "\u202e"]),
    st.text(max_size=15),
)
_MIXED = st.lists(_WORDS, max_size=9).map(" ".join)


def _parses_or_refuses(text: str) -> None:
    """Anything other than a CommandRequest or a UserError escapes and fails the test."""
    message = ""
    try:
        result: CommandRequest | None = parse(text)
    except UserError as err:
        result, message = None, err.message
    if result is None:
        assert message
    else:
        assert result.subcommand in SUBCOMMANDS


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text: str) -> None:
    _parses_or_refuses(text)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_MIXED, st.tuples(st.sampled_from(list(SUBCOMMANDS)), _MIXED).map(" ".join)))
def test_fuzz_commands_flags_and_junk(text: str) -> None:
    _parses_or_refuses(text)
