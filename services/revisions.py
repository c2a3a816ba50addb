"""Revisions as people read them: short commit SHAs, Flux's `main@sha1:…` cut the way `flux get` cuts it.

Argo CD reports bare 40-hex SHAs (shown as 7, like `git log --oneline`); Flux reports
`<branch>@sha1:<40 hex>` (or `sha256:` for OCI), which `flux get` shows as `main@sha1:0123abcd`: the
prefix kept, the digest cut to 8. Chart versions, tags and anything else pass through unchanged.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[0-9a-f]{12,64}")
# `<anything>@sha1:<hex>`, `sha256:<hex>`, and the pre-v1 Flux form `main/<hex>`.
_PREFIXED = re.compile(r"(?P<prefix>.*(?:sha1:|sha256:|/))(?P<hex>[0-9a-f]{12,64})")
# The same, inside free text (a Ready message such as "Applied revision: main@sha1:…").
_IN_TEXT = re.compile(r"(?P<prefix>(?<![\w.@/-])[\w.@/-]*?(?:sha1|sha256):)(?P<hex>[0-9a-f]{12,64})\b")

BARE_LENGTH = 7
DIGEST_LENGTH = 8


def short_revision(revision: str) -> str:
    """`0123abcd…` (40) → `0123abc`; `main@sha1:0123abcd…` → `main@sha1:0123abcd`; `1.2.3` → `1.2.3`."""
    value = revision.strip()
    if _BARE.fullmatch(value):
        return value[:BARE_LENGTH]
    match = _PREFIXED.fullmatch(value)
    if match is not None:
        return match.group("prefix") + match.group("hex")[:DIGEST_LENGTH]
    return value


def shorten_revisions(text: str) -> str:
    """Every `…sha1:<hex>` / `…sha256:<hex>` revision inside `text`, shortened like `short_revision`.

    Bare hex in free text is left alone: without a prefix it need not be a revision at all.
    """
    return _IN_TEXT.sub(lambda m: m.group("prefix") + m.group("hex")[:DIGEST_LENGTH], text)


__all__ = ["short_revision", "shorten_revisions"]
