"""Image references, normalised like docker does (distribution/reference's grammar).

"api:1.4" → docker.io/library/api:1.4; "team/api" → docker.io/team/api:latest; "localhost:5000/api",
"registry.example.com/team/api@sha256:…" name their registry. Docker Hub's API lives at
registry-1.docker.io.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?$"
)
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_NAME_MAX = 255


@dataclass(frozen=True)
class ImageRef:
    """One image in one registry: `host` as people write it (docker.io for Docker Hub),
    `repository` the path inside it, `reference` a tag or a digest."""

    host: str
    repository: str
    reference: str

    @property
    def api_host(self) -> str:
        """Where the Distribution API answers (Docker Hub's is not docker.io)."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def by_digest(self) -> bool:
        return ":" in self.reference

    def __str__(self) -> str:
        sep = "@" if self.by_digest else ":"
        return f"{self.host}/{self.repository}{sep}{self.reference}"


def same_registry(a: str, b: str) -> bool:
    """Whether two registry hosts are the same registry (Docker Hub goes by several names)."""
    a, b = a.lower(), b.lower()
    return a == b or (a in _HUB_ALIASES and b in _HUB_ALIASES)


def parse_image(text: str) -> ImageRef:
    """The image `text` names; ValueError (with a short reason) when it is not a valid reference."""
    rest = text.strip()
    if not rest:
        raise ValueError("empty image reference")
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise ValueError("the digest is not algorithm:hex")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:  # a colon after the last slash separates the tag (before it: a port)
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise ValueError("the tag has characters a tag may not have")
    host, name = _split_domain(rest)
    if not _NAME.match(name) or len(name) > _NAME_MAX:
        raise ValueError("the repository name is not lower-case letters, digits and separators")
    # With both a tag and a digest, the digest is what gets pulled (as docker does).
    return ImageRef(host=host, repository=name, reference=digest or tag or "latest")


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    is_domain = sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first)
    if not is_domain:
        host, path = DOCKER_HUB, name
    else:
        if not _DOMAIN.match(first):
            raise ValueError("the registry host is not a host name")
        host, path = first, remainder
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return host, path
