"""One table describing every `/gitops` subcommand.

The parser, `help`, and the docs tests all read this table, so a subcommand or flag exists in
exactly one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class FlagSpec:
    name: str  # "--prune"
    takes_value: bool
    metavar: str | None  # shown in usage and help when takes_value
    help: str
    repeatable: bool = False  # may be given more than once (its field collects every value)


@dataclass(frozen=True)
class PositionalSpec:
    name: str  # "APP"
    kind: Literal["app", "env", "topic"]
    required: bool


@dataclass(frozen=True)
class SubcommandSpec:
    name: str
    summary: str  # one line
    usage: str  # without the leading "/gitops "
    positionals: tuple[PositionalSpec, ...]
    flags: tuple[FlagSpec, ...]
    examples: tuple[str, ...]  # full "/gitops …" lines
    details: str  # 2-4 lines
    mutating: bool
    action: str | None = None  # the access-control action it needs, when not its own name

    @property
    def permission(self) -> str:
        """The action roles grant for this subcommand (`pipeline` needs `pipeline_run`)."""
        return self.action or self.name

    def flag(self, name: str) -> FlagSpec | None:
        return next((f for f in self.flags if f.name == name), None)


def _flag(name: str, help_text: str, metavar: str | None = None, *, repeatable: bool = False) -> FlagSpec:
    return FlagSpec(
        name=name, takes_value=metavar is not None, metavar=metavar, help=help_text, repeatable=repeatable
    )


_APP = PositionalSpec("APP", "app", required=True)
_APP_OPT = PositionalSpec("APP", "app", required=False)
_ENV_OPT = PositionalSpec("ENV", "env", required=False)
_ENV = PositionalSpec("ENV", "env", required=True)
_FORCE = _flag("--force", "Skip the confirmation step (needs the force permission).")
_PRUNE = _flag("--prune", "Delete resources that are no longer in Git.")
_DRY_RUN = _flag("--dry-run", "Show what would change without changing anything.")
_REVISION = _flag("--revision", "Git revision (SHA, branch or tag) instead of the tracked one.", "R")
_SELECTOR = _flag("--selector", "Pick apps by label, like `team=payments,tier!=canary`.", "k=v")
_LOCK_APP = _flag("--app", "Limit the lock to one app instead of the whole environment.", "APP")
_STRATEGY = _flag(
    "--strategy", "With --selector: `parallel`, `waves` or `canary` (default: `sync.strategy`).", "S"
)
_STOP_ON_FAILURE = _flag("--stop-on-failure", "With --selector: a failed sync stops the apps not started.")

_SPECS: tuple[SubcommandSpec, ...] = (
    SubcommandSpec(
        name="help",
        summary="List the subcommands, or explain one.",
        usage="help [SUBCOMMAND]",
        positionals=(PositionalSpec("SUBCOMMAND", "topic", required=False),),
        flags=(),
        examples=("/gitops help", "/gitops help sync"),
        details="Without an argument, lists what you may run here.\n"
        "With a subcommand, shows its usage, flags and examples.",
        mutating=False,
    ),
    SubcommandSpec(
        name="status",
        summary="Show sync and health status of one app or an overview.",
        usage="status [APP] [ENV] [--all] [--project P] [--selector k=v]",
        positionals=(_APP_OPT, _ENV_OPT),
        flags=(
            _flag("--all", "Show every app you can see."),
            _flag("--project", "Only apps of this Argo CD project.", "P"),
            _SELECTOR,
        ),
        examples=("/gitops status web prod", "/gitops status --all --project payments"),
        details="With APP, shows its sync status, health, revision and last operation.\n"
        "Without APP (or with --all / --selector), shows a one-line-per-app overview.",
        mutating=False,
    ),
    SubcommandSpec(
        name="sync",
        summary="Sync an app (or apps by label) to its Git state.",
        usage="sync (APP [ENV] | --selector k=v [--strategy S] [--stop-on-failure]) [--prune] [--dry-run] "
        "[--revision R] [--force]",
        positionals=(_APP_OPT, _ENV_OPT),
        flags=(_PRUNE, _DRY_RUN, _REVISION, _FORCE, _SELECTOR, _STRATEGY, _STOP_ON_FAILURE),
        examples=(
            "/gitops sync web prod",
            "/gitops sync web staging --prune --revision v1.4.3",
            "/gitops sync --selector team=payments --dry-run",
            "/gitops sync --selector team=payments --strategy canary --stop-on-failure",
        ),
        details="Asks Argo CD to sync, or Flux to reconcile, and follows the operation in the thread.\n"
        "With --selector, syncs every matching app (--revision and --force are not allowed then):\n"
        "`parallel` (a few at a time), `waves` (by sync-wave, lowest first) or `canary` (one first,\n"
        "the rest only if it ends Healthy); --stop-on-failure starts nothing more after a failure.",
        mutating=True,
    ),
    SubcommandSpec(
        name="diff",
        summary="Show what differs between Git and the live cluster.",
        usage="diff APP [ENV] [--revision R]",
        positionals=(_APP, _ENV_OPT),
        flags=(_REVISION,),
        examples=("/gitops diff web prod", "/gitops diff web --revision feature/login"),
        details="Opens with a one-line summary; the full unified diff is attached as a file.\n"
        "With --revision, compares the live state with that Git revision.",
        mutating=False,
    ),
    SubcommandSpec(
        name="history",
        summary="List recent deployments of an app.",
        usage="history APP [ENV]",
        positionals=(_APP, _ENV_OPT),
        flags=(),
        examples=("/gitops history web prod",),
        details="Shows history ids, revisions, authors and times.\n"
        "Use an id with `/gitops rollback APP --to ID`.",
        mutating=False,
    ),
    SubcommandSpec(
        name="rollback",
        summary="Roll an app back to an earlier deployment.",
        usage="rollback APP [ENV] [--to ID] [--suspend] [--force]",
        positionals=(_APP, _ENV_OPT),
        flags=(
            _flag("--to", "History id or git SHA to go back to (default: the previous one).", "ID"),
            _flag("--suspend", "Also pause auto-sync so the rollback is not undone."),
            _FORCE,
        ),
        examples=("/gitops rollback web prod", "/gitops rollback web prod --to 41 --suspend"),
        details="Writes the rollback to Git (a revert or a pinned revision) and syncs it.\n"
        "Without --to, goes back to the deployment before the current one.",
        mutating=True,
    ),
    SubcommandSpec(
        name="promote",
        summary="Promote an app's version from one environment to the next.",
        usage="promote APP --to ENV [--from ENV] [--force]",
        positionals=(_APP,),
        flags=(
            _flag("--to", "Environment to promote into.", "ENV"),
            _flag("--from", "Environment to take the version from (default: the previous one).", "ENV"),
            _FORCE,
        ),
        examples=("/gitops promote web --to prod", "/gitops promote web --from staging --to prod"),
        details="Shows the env-to-env diff and readiness checks, then asks for approval.\n"
        "The approved change is committed to Git and synced.",
        mutating=True,
    ),
    SubcommandSpec(
        name="suspend",
        summary="Pause automated sync / reconciliation of an app.",
        usage="suspend APP [ENV] [--force]",
        positionals=(_APP, _ENV_OPT),
        flags=(_FORCE,),
        examples=("/gitops suspend web prod",),
        details="Disables Argo CD auto-sync or sets `spec.suspend` on the Flux object.\n"
        "Undo with `/gitops resume`.",
        mutating=True,
    ),
    SubcommandSpec(
        name="resume",
        summary="Resume automated sync / reconciliation of an app.",
        usage="resume APP [ENV]",
        positionals=(_APP, _ENV_OPT),
        flags=(),
        examples=("/gitops resume web prod",),
        details="Re-enables auto-sync (Argo CD) or clears `spec.suspend` (Flux).\n"
        "Refused while a lock covers the app.",
        mutating=True,
    ),
    SubcommandSpec(
        name="lock",
        summary="Lock an environment (or one app in it) against deployments.",
        usage="lock ENV [--app APP] --reason TEXT [--ttl DURATION]",
        positionals=(_ENV,),
        flags=(
            _LOCK_APP,
            _flag("--reason", "Why it is locked (shown to everyone who is blocked).", "TEXT"),
            _flag("--ttl", "Unlock automatically after this long, like `2h` or `1d`.", "DURATION"),
        ),
        examples=(
            '/gitops lock prod --reason "release freeze" --ttl 2h',
            "/gitops lock staging --app web --reason qa",
        ),
        details="Blocks syncs, rollbacks and promotions into ENV until unlocked or the TTL ends.\n"
        "A banner is pinned in the channel while the lock holds.",
        mutating=True,
    ),
    SubcommandSpec(
        name="unlock",
        summary="Release a lock.",
        usage="unlock ENV [--app APP] [--force]",
        positionals=(_ENV,),
        flags=(
            _LOCK_APP,
            _flag("--force", "Release a lock someone else holds (needs the force permission)."),
        ),
        examples=("/gitops unlock prod", "/gitops unlock staging --app web"),
        details="Releases your lock on ENV (or on one app in it).\n"
        "Releasing another person's lock needs --force.",
        mutating=True,
    ),
    SubcommandSpec(
        name="drift",
        summary="Show apps whose live state drifted from Git.",
        usage="drift [APP]",
        positionals=(_APP_OPT,),
        flags=(),
        examples=("/gitops drift", "/gitops drift web"),
        details="Lists open drift incidents with first/last seen times and affected resources.\n"
        "With APP, shows that app's drift in detail.",
        mutating=False,
    ),
    SubcommandSpec(
        name="audit",
        summary="Search the audit log.",
        usage="audit [APP] [--env ENV] [--user USER] [--action ACTION] [--since 7d]",
        positionals=(_APP_OPT,),
        flags=(
            _flag("--env", "Only entries for this environment.", "ENV"),
            _flag("--user", "Only entries by this person, like `@alice`.", "USER"),
            _flag("--action", "Only this action, like `sync` or `approve`.", "ACTION"),
            _flag("--since", "How far back: a duration like `7d` or a date like `2026-11-01`.", "WHEN"),
        ),
        examples=("/gitops audit web --since 7d", "/gitops audit --env prod --action promote --user @alice"),
        details="Answers in a thread, newest first.\n"
        "Every entry ties the Slack user to the operation and its outcome.",
        mutating=False,
    ),
    SubcommandSpec(
        name="pipelines",
        summary="List the latest Tekton pipeline runs of an app (or of all apps).",
        usage="pipelines [APP] [ENV]",
        positionals=(_APP_OPT, _ENV_OPT),
        flags=(),
        examples=("/gitops pipelines", "/gitops pipelines web dev"),
        details="Shows each configured pipeline's newest runs as `tkn pipelinerun list` does:\n"
        "name, status, started, duration; failing runs first. APP may also be a pipeline's name.",
        mutating=False,
    ),
    SubcommandSpec(
        name="pipeline",
        summary="Start a run of an app's Tekton pipeline and follow it.",
        usage="pipeline APP|PIPELINE [ENV] [--param k=v]… [--namespace NS]",
        positionals=(_APP, _ENV_OPT),
        flags=(
            _flag(
                "--param",
                "A pipeline param, like `revision=abc1234` (repeat for more).",
                "k=v",
                repeatable=True,
            ),
            _flag("--namespace", "Which namespace's pipeline, when the name is in several.", "NS"),
        ),
        examples=(
            "/gitops pipeline web dev",
            "/gitops pipeline web-ci --param revision=abc1234 --param image=registry.example.com/web",
        ),
        details="Shows the run it would start (configured params with yours on top) behind a Start button.\n"
        "One channel message then follows the run: its tasks, the failing step's log, and a Cancel button.",
        mutating=True,
        action="pipeline_run",
    ),
    SubcommandSpec(
        name="stats",
        summary="Delivery figures (DORA's four keys) from the deploys the feed saw, with a chart.",
        usage="stats [APP] [--env ENV] [--since 30d]",
        positionals=(_APP_OPT,),
        flags=(
            _flag("--env", "Only this environment.", "ENV"),
            _flag("--since", "How far back: a duration like `30d` or a date like `2026-11-01`.", "WHEN"),
        ),
        examples=("/gitops stats", "/gitops stats web --env prod --since 90d"),
        details="Deployment frequency, lead time for changes, change failure rate and time to restore,\n"
        "each with its DORA performance band, and a chart of deploys per day and lead time.\n"
        "The deploys are those the deployment feed (`feed:` in the configuration) recorded.",
        mutating=False,
    ),
    SubcommandSpec(
        name="whoami",
        summary="Show who the bot thinks you are and what you may do.",
        usage="whoami",
        positionals=(),
        flags=(),
        examples=("/gitops whoami",),
        details="Shows your Slack id, mapped identity and roles.\nUseful when a command is refused.",
        mutating=False,
    ),
)

SUBCOMMANDS: Mapping[str, SubcommandSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
