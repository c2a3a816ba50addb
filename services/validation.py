"""Strict validators for every value a user can type.

The grammar runs each argument through these before it reaches a request object, and services
(git, Argo CD, Kubernetes) may call them again as a second line of defence. Each returns the
normalised value or raises `UserError` naming the offending value and the expected form.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from services.errors import UserError

# The subcommand names live here (not in handlers/) so services can validate audit actions too.
SUBCOMMAND_NAMES: tuple[str, ...] = (
    "help",
    "status",
    "sync",
    "diff",
    "history",
    "rollback",
    "promote",
    "suspend",
    "resume",
    "lock",
    "unlock",
    "drift",
    "audit",
    "pipelines",
    "pipeline",
    "stats",
    "whoami",
)
# Also every action name the audit trail records for buttons and the bot's own rows, so
# `/gitops audit --action …` can find them.
RECORDED_ACTIONS: tuple[str, ...] = (
    "promotion_approve", "promotion_reject", "rollback_confirm", "rollback_cancel",
    "rollback_disable_autosync", "hold_release", "drift_sync", "drift_diff", "drift_snooze_1h",
    "drift_snooze_24h", "drift_ack", "audit_more", "pipeline_start", "pipeline_dismiss", "click",
    "invalid", "shutdown", "replay",
    "drift.opened", "drift.resolved", "lock.expired", "promotion.expired", "promotion.requested",
    "promotion.approved", "promotion.committed", "notify", "pipeline.failed", "deploy.completed",
)  # fmt: skip
ACTION_NAMES: tuple[str, ...] = (
    *SUBCOMMAND_NAMES,
    "approve",
    "reject",
    "confirm",
    "snooze",
    "acknowledge",
    # Tekton (issue 16): what roles may name (`pipelines` is also a subcommand above), and the
    # Cancel button's action id.
    "pipeline_run",
    "pipeline_cancel",
    *RECORDED_ACTIONS,
)

_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_ENV = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")
_DIGITS = re.compile(r"[0-9]{1,18}")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DURATION = re.compile("".join(rf"(?:([0-9]{{1,6}}){unit})?" for unit in "wdhms"))
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?", re.ASCII
)
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{6,20}")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{6,20})(?:\|([^<>|]{1,80}))?>")
_HANDLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")  # Tekton's ValidateParameterName
MAX_PARAM_VALUE = 1000
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MAX_DURATION = timedelta(days=366)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

_APP_FORM = (
    "an app name like `web`, or `namespace/name` / `cluster/namespace/name` (lowercase, digits, `-`, `.`)"
)
_REF_FORM = "a git SHA (7-40 hex) or a branch/tag name like `main` or `v1.2.3`"


@dataclass(frozen=True)
class LabelRequirement:
    """One `key=value` / `key!=value` term of a label selector."""

    key: str
    op: Literal["=", "!="]
    value: str


@dataclass(frozen=True)
class UserRef:
    """A Slack user, by id (authoritative) and/or handle (as typed)."""

    user_id: str | None
    handle: str | None


def display_value(v: str) -> str:
    """Render a user value safely inside backticks: escaped control characters, at most 60 chars."""
    shown = "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch
        for ch in v
    ).replace("`", "'")
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"`{shown}`"


def _why(v: str, allowed: str) -> str:
    """Name the first thing wrong with `v` so the user knows what to remove."""
    if v == "":
        return "it is empty"
    if v.startswith("-"):
        return "it starts with `-`, which could be read as an option"
    for ch in v:
        if ch.isspace():
            return "it contains whitespace"
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            return "it contains a control character"
        if ch not in allowed and not (ch.isalnum() and ch.isascii()):
            return f"it contains `{ch}`" if ch != "`" else "it contains a backtick"
    return "it does not have the expected shape"


def _fail(what: str, v: str, reason: str, expected: str, hint: str | None = None) -> UserError:
    return UserError(f"Invalid {what} {display_value(v)}: {reason}. Expected {expected}.", hint=hint)


def is_option_like(v: str) -> bool:
    """True for values a command-line tool (git) would read as an option."""
    return v.startswith("-")


def _name_problem(v: str) -> str | None:
    """Why `v` is not a Kubernetes name, or None when it is one."""
    if _K8S_NAME.fullmatch(v) and ".." not in v:
        return None
    if ".." in v:
        return "it contains `..`"
    if v and all(ch.isascii() and (ch.islower() or ch.isdigit() or ch in "-.") for ch in v):
        return "it must start and end with a letter or digit"
    return _why(v, "-.")


def _k8s_name(what: str, v: str, expected: str) -> str:
    problem = _name_problem(v)
    if problem is not None:
        if v.lower() != v and _name_problem(v.lower()) is None:
            raise _fail(what, v, "names are lowercase", expected, hint=f"Did you mean `{v.lower()}`?")
        raise _fail(what, v, problem, expected)
    return v


def app_ref(v: str) -> str:
    """An app reference: 1-3 `/`-separated Kubernetes names."""
    parts = v.split("/")
    if len(parts) > 3:
        raise _fail("app", v, "it has more than 3 `/`-separated parts", _APP_FORM)
    problems = [_name_problem(p) for p in parts]
    if any(p is not None for p in problems):
        lower = v.lower()
        if lower != v and all(_name_problem(p) is None for p in lower.split("/")):
            raise _fail("app", v, "names are lowercase", _APP_FORM, hint=f"Did you mean `{lower}`?")
        named = [problem for part, problem in zip(parts, problems, strict=True) if part and problem]
        reason = named[0] if named else "it has an empty `/`-separated part"
        raise _fail("app", v, _why(v, "-./") if is_option_like(v) else reason, _APP_FORM)
    return v


def env_name(v: str) -> str:
    """An environment slug like `prod` or `staging-eu`."""
    expected = "an environment name like `prod` or `staging-eu` (lowercase, digits, `-`, at most 63)"
    if not _ENV.fullmatch(v):
        if _ENV.fullmatch(v.lower()):
            raise _fail(
                "environment", v, "names are lowercase", expected, hint=f"Did you mean `{v.lower()}`?"
            )
        raise _fail("environment", v, _why(v, "-"), expected)
    return v


def project_name(v: str) -> str:
    """An Argo CD project name (a Kubernetes name, at most 253)."""
    return _k8s_name("project", v, "a project name like `default` or `team-a` (lowercase, digits, `-`, `.`)")


def revision(v: str) -> str:
    """A git SHA or a branch/tag/semver name, safe to pass to git as a revision."""
    if not _REF.fullmatch(v):
        raise _fail("revision", v, _why(v, "._/+-"), _REF_FORM)
    for bad, reason in (("..", "it contains `..`"), ("//", "it contains `//`"), ("@{", "it contains `@{`")):
        if bad in v:
            raise _fail("revision", v, reason, _REF_FORM)
    if "/." in v:
        raise _fail("revision", v, "a `/`-separated part starts with `.`", _REF_FORM)
    for end in ("/", ".", ".lock"):
        if v.endswith(end):
            raise _fail("revision", v, f"it ends with `{end}`", _REF_FORM)
    return v


def history_id(v: str) -> int:
    """An Argo CD history id: a non-negative integer."""
    if not _DIGITS.fullmatch(v):
        reason = _why(v, "") if is_option_like(v) or not v.isalnum() else "it is not a number"
        raise _fail(
            "history id", v, reason, "a non-negative number like `12` (the ids the app's `history` shows)"
        )
    return int(v)


def rollback_target(v: str) -> str:
    """An Argo CD history id (short number) or a git SHA (7-40 hex); returned as a string."""
    if _DIGITS.fullmatch(v) and len(v) < 7:
        return str(int(v))
    if _SHA.fullmatch(v):
        return v.lower()
    expected = "a history id like `12` (the ids the app's `history` shows) or a git SHA (7-40 hex)"
    raise _fail("rollback target", v, _why(v, "") if not _DIGITS.fullmatch(v) else "it is too long", expected)


def _is_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    prefix_ok = not slash or (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix) is not None)
    return prefix_ok and _LABEL_NAME.fullmatch(name) is not None


def label_selector(v: str) -> tuple[LabelRequirement, ...]:
    """`k=v,k==v,k!=v` terms → requirements (`==` is normalised to `=`)."""
    expected = "comma-separated `key=value` or `key!=value`, like `team=payments,tier!=canary`"
    if len(v) > 1000:
        raise _fail("label selector", v, "it is longer than 1000 characters", expected)
    reqs: list[LabelRequirement] = []
    for term in v.split(","):
        op_match = re.search(r"==|!=|=", term)
        if op_match is None:
            raise _fail("label selector", v, f"{display_value(term)} has no `=` or `!=`", expected)
        key, value = term[: op_match.start()].strip(), term[op_match.end() :].strip()
        if not _is_label_key(key):
            reason = "a term has no key" if not key else f"{display_value(key)} is not a label key"
            raise _fail("label selector", v, reason, expected)
        if value and not _LABEL_NAME.fullmatch(value):
            raise _fail("label selector", v, f"value {display_value(value)}: {_why(value, '-_.')}", expected)
        reqs.append(LabelRequirement(key, "!=" if op_match.group() == "!=" else "=", value))
    return tuple(reqs)


def format_selector(reqs: tuple[LabelRequirement, ...]) -> str:
    """The canonical `k=v,k!=v` form Kubernetes and Argo CD accept."""
    return ",".join(f"{r.key}{r.op}{r.value}" for r in reqs)


def duration(v: str) -> timedelta:
    """`30s`, `15m`, `2h`, `1h30m`, `7d`, `2w` → a positive timedelta of at most 366 days."""
    expected = "a duration like `30m`, `2h`, `1h30m`, `7d` or `2w` (at most 366 days)"
    match = _DURATION.fullmatch(v.lower())
    if not v or match is None:
        raise _fail("duration", v, _why(v, ""), expected)
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    value = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if value <= timedelta(0):
        raise _fail("duration", v, "it is zero", expected)
    if value > _MAX_DURATION:
        raise _fail("duration", v, "it is longer than 366 days", expected)
    return value


def since(v: str, now: datetime) -> datetime:
    """A duration ago (`7d`) or an ISO date/datetime (UTC unless an offset is given), not in the future.

    `now` must be timezone-aware (a programming error otherwise, hence ValueError).
    """
    if now.tzinfo is None:
        raise ValueError("since() needs an aware `now`")
    expected = "a duration like `7d` or `12h`, or a date like `2026-11-01` / `2026-11-01T10:00Z`"
    if not _ISO.fullmatch(v.upper()):
        if _DURATION.fullmatch(v.lower()) and v:
            return (now - duration(v)).astimezone(UTC)
        raise _fail("time", v, _why(v, "-:.+TZ"), expected)
    try:
        parsed = datetime.fromisoformat(v.upper())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _fail("time", v, "it is not a real date or time", expected) from None
    if parsed > now:
        raise _fail("time", v, "it is in the future", expected)
    if parsed < _EARLIEST:
        raise _fail("time", v, "it is before 1970", expected)
    return parsed


def reason_text(v: str) -> str:
    """Free text (1-500 chars after stripping) without control characters.

    Free text is never put in a shell or an argv position, so `;` or `$(` are fine here.
    """
    expected = "one line of text, 1-500 characters"
    text = v.strip()
    if not text:
        raise _fail("reason", v, "it is empty", expected)
    if len(text) > 500:
        raise _fail("reason", v, f"it is {len(text)} characters long", expected)
    for ch in text:
        if ch in "\n\r\u2028\u2029":
            raise _fail("reason", v, "it contains a line break", expected)
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI:
            raise _fail("reason", v, "it contains a control character", expected)
    if is_option_like(text):
        raise _fail("reason", v, "it starts with `-`", expected)
    return text


def slack_user(v: str) -> UserRef:
    """`<@U123ABC>`, `<@U123ABC|name>`, `U123ABC` / `W…`, or a handle `@name` (bare `name` too)."""
    mention = _MENTION.fullmatch(v)
    if mention is not None:
        name = (mention.group(2) or "").lower()
        return UserRef(mention.group(1), name if _HANDLE.fullmatch(name) else None)
    if _SLACK_ID.fullmatch(v):
        return UserRef(v, None)
    handle = v.removeprefix("@").lower()
    if _HANDLE.fullmatch(handle):
        return UserRef(None, handle)
    raise _fail(
        "user", v, _why(v.removeprefix("@"), "._-"), "a mention like `@alice` or a user id like `U123ABC`"
    )


def action_name(v: str) -> str:
    """An audited action: a subcommand name or a button action (approve, reject, …)."""
    name = v.lower()
    if name in ACTION_NAMES:
        return name
    close = difflib.get_close_matches(name, ACTION_NAMES, n=1)
    hint = f"Did you mean `{close[0]}`?" if close else None
    raise _fail("action", v, "it is not a known action", "one of " + ", ".join(ACTION_NAMES), hint=hint)


def namespace_name(v: str) -> str:
    """A Kubernetes namespace: a DNS label (lowercase, digits, `-`, at most 63)."""
    expected = "a namespace like `ci` or `team-builds` (lowercase, digits, `-`, at most 63)"
    if not _ENV.fullmatch(v):
        if _ENV.fullmatch(v.lower()):
            raise _fail("namespace", v, "names are lowercase", expected, hint=f"Did you mean `{v.lower()}`?")
        raise _fail("namespace", v, _why(v, "-") if len(v) <= 63 else "it is longer than 63", expected)
    return v


def pipeline_param(v: str) -> str:
    """`name=value` for a Tekton param: a name by Tekton's rule, a value of one line of text that
    does not start with `-`. Returned as given; whether the Pipeline declares it is checked later."""
    expected = (
        "`name=value`, like `revision=abc1234` (name: a letter or `_` first, then letters, digits, "
        "`_`, `-`, `.`)"
    )
    name, sep, value = v.partition("=")
    if not sep:
        raise _fail("param", v, "it has no `=`", expected, hint="Write it as `--param revision=abc1234`.")
    if not _PARAM_NAME.fullmatch(name):
        reason = (
            "the name is empty" if not name else f"the name {display_value(name)} is not a Tekton param name"
        )
        raise _fail("param", v, reason, expected)
    if is_option_like(value):
        raise _fail("param", v, "its value starts with `-`, which could be read as an option", expected)
    if len(value) > MAX_PARAM_VALUE:
        raise _fail(
            "param", v, f"its value is {len(value)} characters long (at most {MAX_PARAM_VALUE})", expected
        )
    for ch in value:
        if ch in "\n\r\u2028\u2029" or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            raise _fail("param", v, "its value contains a line break or control character", expected)
    return v
