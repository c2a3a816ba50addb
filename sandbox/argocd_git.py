"""Each fake app's "git": a linear list of commits, each carrying the manifests it renders to."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]
Key = tuple[str, str, str, str]  # group, kind, namespace, name

_HEX_PREFIX = re.compile(r"[0-9a-f]{7,40}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


def clone(value: Any) -> Any:
    """A deep copy of JSON data; several times faster than copy.deepcopy."""
    return json.loads(json.dumps(value))


def resource_key(manifest: Mapping[str, Any]) -> Key:
    api_version = str(manifest.get("apiVersion", "v1"))
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    metadata = manifest.get("metadata", {})
    return group, str(manifest.get("kind", "")), str(metadata.get("namespace", "")), str(metadata["name"])


def container_name(image: str) -> str:
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0] or "app"


def build_manifests(
    app: str, namespace: str, images: Sequence[str], replicas: int, config: Mapping[str, str]
) -> list[Manifest]:
    """A Deployment (one container per image), its Service and a ConfigMap, as they sit in git."""
    labels = {"app.kubernetes.io/instance": app}
    selector = {"app": app}
    containers: list[dict[str, Any]] = []
    for image in images:
        name = container_name(image)
        if any(c["name"] == name for c in containers):
            name = f"{name}-{len(containers)}"
        containers.append({"name": name, "image": image, "ports": [{"containerPort": 8080}]})
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {"metadata": {"labels": dict(selector)}, "spec": {"containers": containers}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "namespace": namespace, "labels": dict(labels)},
        "spec": {"selector": dict(selector), "ports": [{"port": 80, "targetPort": 8080}]},
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{app}-config", "namespace": namespace, "labels": dict(labels)},
        "data": dict(config),
    }
    return [config_map, service, deployment]


def set_image(manifest: Manifest, image: str) -> None:
    """Replace the container running the same repository, else the first container."""
    containers = manifest["spec"]["template"]["spec"]["containers"]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    target = next(
        (c for c in containers if str(c.get("image", "")).startswith(f"{repository}:")), containers[0]
    )
    target["image"] = image


@dataclass(frozen=True)
class Upstream:
    """A commit of a real repository that an app's fake Git mirrors, so the fake reports its SHA,
    author, date and message (the demo feeds these from its deploy repository)."""

    sha: str
    author: str  # "Name <email>"
    date: str  # RFC 3339, second precision, UTC
    message: str
    image: str | None = None  # what the commit deploys; None keeps the app's image / replicas
    replicas: int | None = None


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str
    message: str
    manifests: tuple[Manifest, ...]  # never mutated once committed
    tags: tuple[str, ...] = ()

    def desired(self) -> dict[Key, Manifest]:
        return {resource_key(m): m for m in self.manifests}


@dataclass
class Repo:
    app: str
    branch: str = "main"  # the one branch; HEAD points at its tip
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def commit(
        self,
        manifests: Iterable[Manifest],
        *,
        message: str,
        author: str,
        date: str,
        tags: Sequence[str] = (),
        sha: str | None = None,
    ) -> Commit:
        """A new tip; `sha` names it after a real commit, else a stable made-up SHA is used."""
        if sha is None:
            seed = f"{self.app}\0{len(self.commits)}\0{message}\0{date}"
            sha = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        elif not _FULL_SHA.fullmatch(sha):
            raise ValueError(f"not a full commit SHA: {sha!r}")
        commit = Commit(sha, author, date, message, tuple(manifests), tuple(tags))
        self.commits.append(commit)
        return commit

    def head_manifests(self) -> list[Manifest]:
        return list(clone(list(self.head.manifests)))

    def resolve(self, revision: str) -> Commit | None:
        """HEAD, the branch name, a tag, a full SHA or an unambiguous SHA prefix (>= 7)."""
        if not self.commits:
            return None
        if revision in ("HEAD", self.branch):
            return self.head
        for commit in reversed(self.commits):
            if revision in commit.tags:
                return commit
        if _HEX_PREFIX.fullmatch(revision):
            found = [c for c in self.commits if c.sha.startswith(revision)]
            if len({c.sha for c in found}) == 1:
                return found[0]
        return None
