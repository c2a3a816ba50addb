"""What each argument of `/gitops` means: the field it fills, its validator, cross-argument rules.

Kept apart from the tokenizer/parser loop so the table reads on its own. Values arriving here are
raw tokens; every one goes through `services.validation` before it becomes a request field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from handlers.grammar.spec import SUBCOMMANDS, SubcommandSpec
from services import validation
from services.errors import UserError

Converter = Callable[[str, datetime], object]


def _plain(fn: Callable[[str], object]) -> Converter:
    return lambda value, _now: fn(value)


def lookup_subcommand(word: str) -> str:
    """The canonical subcommand for `word` (any case), or UserError with the nearest name."""
    name = word.lower()
    if name in SUBCOMMANDS:
        return name
    close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=2)  # `stauts`: stats or status
    if close:
        hint = f"Did you mean {' or '.join(f'`{c}`' for c in close)}? Try `/gitops help`."
    else:
        hint = "Subcommands: " + ", ".join(f"`{n}`" for n in SUBCOMMANDS) + ". Try `/gitops help`."
    raise UserError(f"Unknown subcommand {validation.display_value(word)}", hint=hint)


# Positional kind -> (request field, converter).
POSITIONALS: Mapping[str, tuple[str, Converter]] = MappingProxyType(
    {
        "app": ("app", _plain(validation.app_ref)),
        "env": ("env", _plain(validation.env_name)),
        "topic": ("topic", _plain(lookup_subcommand)),
    }
)

_STRATEGY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def strategy_name(v: str) -> str:
    """A batch strategy's name, slug-like: plugins add their own, so which exist is checked when
    the sync runs, not here."""
    name = v.strip().lower()
    if not _STRATEGY.fullmatch(name):
        raise UserError(
            f"{validation.display_value(v)} is not a strategy name",
            hint="A name like `parallel`, `waves` or `canary` (letters, digits, `-`, `_`).",
        )
    return name


# Value-taking flag -> (request field, converter); `(subcommand, flag)` keys override a flag's meaning.
FLAG_VALUES: Mapping[str | tuple[str, str], tuple[str, Converter]] = MappingProxyType(
    {
        "--revision": ("revision", _plain(validation.revision)),
        "--to": ("to", _plain(validation.env_name)),
        ("rollback", "--to"): ("to", _plain(validation.rollback_target)),
        "--from": ("from_env", _plain(validation.env_name)),
        "--reason": ("reason", _plain(validation.reason_text)),
        "--ttl": ("ttl", _plain(validation.duration)),
        "--since": ("since", validation.since),
        "--selector": ("selector", _plain(validation.label_selector)),
        "--project": ("project", _plain(validation.project_name)),
        "--app": ("lock_app", _plain(validation.app_ref)),
        "--env": ("env", _plain(validation.env_name)),
        "--user": ("user", _plain(validation.slack_user)),
        "--action": ("action", _plain(validation.action_name)),
        "--strategy": ("strategy", _plain(strategy_name)),
        "--param": ("params", _plain(validation.pipeline_param)),
        "--namespace": ("namespace", _plain(validation.namespace_name)),
    }
)

# Flags a subcommand cannot run without (they appear outside brackets in its usage line).
REQUIRED_FLAGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"promote": ("--to",), "lock": ("--reason",)}
)


def flag_target(subcommand: str, flag: str) -> tuple[str, Converter] | None:
    """Field and converter of a value-taking flag; None for a boolean flag."""
    return FLAG_VALUES.get((subcommand, flag)) or FLAG_VALUES.get(flag)


def bool_field(flag: str) -> str:
    """`--dry-run` -> `dry_run`: boolean flags fill the field of the same name."""
    return flag.removeprefix("--").replace("-", "_")


def usage_error(spec: SubcommandSpec, message: str) -> UserError:
    return UserError(message, hint=f"Usage: /gitops {spec.usage}")


def unknown_flag(spec: SubcommandSpec, name: str) -> UserError:
    """Name the nearest flag of this subcommand and any subcommand the flag really belongs to."""
    shown = validation.display_value(name)
    message = f"Unknown flag {shown} for `{spec.name}`."
    owners = [s.name for s in SUBCOMMANDS.values() if s.flag(name) is not None]
    if owners:
        message += f" {shown} is a flag of " + ", ".join(f"`{o}`" for o in owners) + "."
    close = difflib.get_close_matches(name, [f.name for f in spec.flags], n=1)
    if close:
        message += f" Did you mean `{close[0]}`?"
    elif not spec.flags:
        message += f" `{spec.name}` takes no flags."
    return usage_error(spec, message)


def check_combination(spec: SubcommandSpec, fields: dict[str, Any]) -> None:
    """Rules that involve more than one argument; may normalise `fields` in place."""
    for pos in spec.positionals:
        if pos.required and fields.get(POSITIONALS[pos.kind][0]) is None:
            raise usage_error(spec, f"`{spec.name}` needs {pos.name}.")
    for flag in REQUIRED_FLAGS.get(spec.name, ()):
        target, flag_spec = flag_target(spec.name, flag), spec.flag(flag)
        if target is not None and flag_spec is not None and fields.get(target[0]) is None:
            raise usage_error(spec, f"`{spec.name}` needs `{flag} {flag_spec.metavar}`.")
    has_app, has_selector = fields.get("app") is not None, bool(fields.get("selector"))
    if spec.name == "status":
        if has_app and (fields.get("all") or has_selector):
            raise usage_error(spec, "Give APP, `--all` or `--selector`, not several.")
        if not has_app and not has_selector:
            fields["all"] = True  # no target means the overview, exactly like --all
    if spec.name == "sync":
        if has_app and has_selector:
            raise usage_error(spec, "Give `sync` either APP or `--selector`, not both.")
        if not has_app and not has_selector:
            raise usage_error(spec, "`sync` needs APP or `--selector`.")
        for flag in ("revision", "force"):
            if has_selector and fields.get(flag):
                raise usage_error(spec, f"`--{flag}` cannot be used with `--selector`.")
        for flag in ("strategy", "stop_on_failure"):
            if not has_selector and fields.get(flag):
                shown = "--" + flag.replace("_", "-")
                raise usage_error(spec, f"`{shown}` only applies with `--selector` (a batch of apps).")
    if spec.name == "promote" and fields.get("to") == fields.get("from_env"):
        raise usage_error(spec, "`--to` and `--from` must be different environments.")
