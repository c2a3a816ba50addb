"""Fixtures wiring the Flux client and backend to the fake Kubernetes API and real Git repositories.

`flux_env` gives a started fake with one GitRepository (`flux-system/deploy`, a bare repository on
disk) and two Kustomizations (`web`, `api`) plus a HelmRelease (`apps/podinfo`), the backend
pointed at it through a real kubeconfig, and a RepoCache over the same repository.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, make_deploy_repo
from services.backend import AppRef
from services.flux import FluxBackend, FluxClient
from services.git import RepoCache
from services.settings.model import FluxCluster, GitRepository, Settings

CLUSTER = "sandbox"
TOKEN = "sandbox-flux-bearer-token-0123456789"
NS = "flux-system"


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {name}\n  namespace: apps\n"
        f"spec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n"
        f"        - name: {name}\n          image: {image}\n"
    )


FILES = {"apps/web/deployment.yaml": deployment("web"), "apps/api/deployment.yaml": deployment("api")}


@dataclass
class FluxEnv:
    fake: FakeKubernetes
    cluster: FluxCluster
    settings: Settings
    client: FluxClient
    backend: FluxBackend
    repos: RepoCache
    bare: Path
    work: Path

    def ref(self, name: str = "web", namespace: str = NS, kind: str = "Kustomization") -> AppRef:
        return AppRef("flux", CLUSTER, name, namespace=namespace, kind=kind)

    def obj(self, plural: str, name: str, namespace: str = NS) -> dict[str, Any]:
        return self.fake.object(plural, name, namespace=namespace)

    def commit(self, path: str, content: str, message: str) -> str:
        return commit_file(self.work, path, content, message)

    def patches(self, plural: str | None = None) -> list[Any]:
        return [
            r for r in self.fake.requests() if r.method == "PATCH" and (plural is None or plural in r.path)
        ]

    def bare_git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "--git-dir", str(self.bare), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout


def start_env(
    tmp_path: Path,
    *,
    served: Mapping[str, Sequence[str]] | None = None,
    timeout: tuple[float, float] = (2.0, 5.0),
    with_helm: bool = True,
    **backend_args: Any,
) -> FluxEnv:
    bare, work = make_deploy_repo(tmp_path / "git", FILES)
    fake = FakeKubernetes(token=TOKEN, tick=0.02, reconcile_seconds=0.1, served=served).start()
    try:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        fake.add_git_repository("deploy", url=f"file://{bare}")
        fake.add_kustomization("web", path="./apps/web", source="deploy", labels={"team": "web"})
        fake.add_kustomization("api", path="./apps/api", source="deploy", labels={"team": "api"})
        if with_helm:
            fake.add_helm_repository("podinfo")
            fake.add_helm_release(
                "podinfo", namespace="apps", source="podinfo", source_namespace=NS, labels={"team": "web"}
            )
        cluster = FluxCluster(name=CLUSTER, kubeconfig=kubeconfig, context="sandbox")
        repository = GitRepository(name="deploy", url=f"file://{bare}", branch="main")
        settings = Settings(flux=(cluster,), repositories=(repository,))
        repos = RepoCache(tmp_path / "cache", settings.repositories, {})
        client = FluxClient(cluster, timeout=timeout, connect_retries=0)
        backend_args.setdefault("poll_interval", 0.02)
        backend = FluxBackend(cluster, client, repos, settings, **backend_args)
        fake.wait_idle()
    except BaseException:
        fake.stop()
        raise
    return FluxEnv(fake, cluster, settings, client, backend, repos, bare, work)


@pytest.fixture
def flux_env(tmp_path: Path) -> Iterator[FluxEnv]:
    env = start_env(tmp_path)
    try:
        yield env
    finally:
        env.client.close()
        env.fake.stop()


def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
