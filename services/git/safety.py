"""Checks on every ref, SHA, path and trailer that came from outside, before it reaches git.

Revisions go through `services.validation.revision` (no leading "-", no "..", a conservative
character set); paths through `repo_path`. Commands also put paths after "--" and run with
GIT_LITERAL_PATHSPECS=1 (see env.py), so even a path that passed could not become an
option or pathspec magic; these checks are the first line, not the only one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from services.errors import UserError
from services.validation import display_value, is_option_like, revision

HEX = re.compile(r"[0-9a-fA-F]{7,40}")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
# Flux source revisions: "main@sha1:<sha>" (Flux >= 2.0), "sha1:<sha>" (a pinned commit) and
# the older "main/<sha>". Only a full SHA makes the "/" form Flux's, not a branch like "fix/abc1234".
_FLUX_AT = re.compile(r"(?:(?P<ref>[^@]{1,200})@)?sha1:(?P<sha>[0-9a-fA-F]{40})")
_FLUX_SLASH = re.compile(r"(?P<ref>.{1,200})/(?P<sha>[0-9a-fA-F]{40})")
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
_PATH_FORM = "a path relative to the repository root, like `apps/web/values.yaml`"


def parse_revision(rev: str) -> tuple[str, bool]:
    """(what to ask git for, whether it is a full SHA), after validating `rev`.

    Raises UserError for anything that is not a plain ref, a SHA or one of Flux's forms.
    """
    for form in (_FLUX_AT, _FLUX_SLASH):
        match = form.fullmatch(rev)
        if match is not None:
            if match.group("ref") is not None:
                revision(match.group("ref"))  # the branch part must be sane even though unused
            return match.group("sha").lower(), True
    revision(rev)
    return rev, False


def repo_path(path: str) -> str:
    """A repository-relative path, normalised (no trailing "/"); UserError otherwise."""

    def fail(reason: str) -> UserError:
        return UserError(f"Invalid path {display_value(path)}: {reason}. Expected {_PATH_FORM}.")

    if not path or path.strip("/") == "":
        raise fail("it is empty")
    if is_option_like(path):
        raise fail("it starts with `-`, which could be read as an option")
    if path.startswith("/"):
        raise fail("it starts with `/`; paths are relative to the repository root")
    if path.startswith(":"):
        raise fail("it starts with `:`, which git reads as pathspec magic")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in path) or "\\" in path:
        raise fail("it contains a control character or `\\`")
    segments = path.rstrip("/").split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise fail("it has an empty, `.` or `..` segment")
    if any(s.lower() == ".git" for s in segments):
        raise fail("it points into `.git`")
    return "/".join(segments)


def repo_paths(paths: Sequence[str]) -> list[str]:
    """Each path checked, duplicates dropped, order kept."""
    if isinstance(paths, str):  # a bare string is a Sequence of characters: almost surely a bug
        raise TypeError("expected a sequence of paths, got a single string")
    return list(dict.fromkeys(repo_path(p) for p in paths))


def trailer_lines(trailers: Mapping[str, str]) -> list[str]:
    """`Key: value` lines; keys are checked, values flattened to one line."""
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key):
            raise ValueError(f"invalid trailer key {key!r}")
        flat = " ".join(value.split())
        lines.append(f"{key}: {flat}")
    return lines


def commit_message(message: str, trailers: Mapping[str, str]) -> str:
    """The message, a blank line and the trailers (git's trailer convention)."""
    body = message.strip()
    if not body:
        raise ValueError("a commit message is required")
    lines = trailer_lines(trailers)
    return f"{body}\n\n" + "\n".join(lines) + "\n" if lines else body + "\n"
