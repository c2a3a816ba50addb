"""Match the URL a Flux GitRepository points at against the repositories in the configuration.

The same repository is written many ways: `https://github.com/org/repo.git`,
`ssh://git@github.com/org/repo`, `git@github.com:org/repo`, `file:///srv/repo` or `/srv/repo`.
`url_key` reduces each to (host, path): scheme, user, port, a trailing ".git" and "/" are
dropped. Hosted paths compare case-insensitively (GitHub, GitLab and Bitbucket ignore case);
local paths do not.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

# `[user@]host:path`, where host has no "/" (else it would be a relative path like `a/b:c`).
_SCP_LIKE = re.compile(r"(?:(?P<user>[^@/\s]+)@)?(?P<host>[^:/\s]+):(?P<path>[^\s].*)")


def _strip(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path.rstrip("/")


def url_key(url: str) -> tuple[str, str] | None:
    """(host, path) identifying the repository, or None for text that is not a Git URL."""
    url = url.strip()
    if not url:
        return None
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme == "file":
            return "", _strip(posixpath.normpath(unquote(parts.path)))
        if scheme not in ("http", "https", "ssh", "git", "git+ssh", "ssh+git") or not parts.hostname:
            return None
        path = unquote(parts.path)
        if path.startswith("/~"):  # ssh://host/~user/repo names a home-relative repo; keep the "~"
            path = path[1:]
        return parts.hostname.lower(), _strip(path.lstrip("/")).lower()
    if url.startswith("/"):
        return "", _strip(posixpath.normpath(url))
    match = _SCP_LIKE.fullmatch(url)
    if match is None:
        return None
    return match.group("host").lower(), _strip(match.group("path").lstrip("/")).lower()


def same_repository(a: str, b: str) -> bool:
    key = url_key(a)
    return key is not None and key == url_key(b)
