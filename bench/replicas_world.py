"""The world of bench/replicas.py: one PostgreSQL, the fakes, a deploy repository, two bot processes.

Both replicas get the very same configuration text (relative paths: each runs in its own directory,
as each pod has its own disk for its git cache) and differ only by the ephemeral port they bind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.botproc import ROOT, SECRET
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import make_deploy_repo
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender

PASSWORD_ENV = "GITOPS_BOT_DATABASE_PASSWORD"
DEPLOYS = "C0DEPLOYS"
DRIFT = "C0DRIFT"
REQUESTER = "U0ALICE"
APPROVERS = ("U0BOSS", "U0CAROL")
LEASE = {"lease_duration": 6.0, "renew_deadline": 4.0, "retry_period": 1.0}  # seconds
DRIFT_INTERVAL = 10  # seconds: the smallest `drift.interval` the validator accepts
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../base/{app}
images:
  - name: registry.example.com/{app}
    newTag: "{tag}"  # bumped by promotion
"""


def app_name(i: int) -> str:
    return f"svc-{i:04d}"


def deploy_repo(root: Path, apps: int) -> Path:
    """A bare repository where every app's dev runs a newer tag than its prod: one promotion each."""
    files = {}
    for i in range(apps):
        for env, tag in (("dev", "2.0.0"), ("prod", "1.0.0")):
            files[f"apps/{app_name(i)}/{env}/kustomization.yaml"] = KUSTOMIZATION.format(
                app=app_name(i), tag=tag
            )
    bare, _work = make_deploy_repo(root / "git", files)
    return bare


def config_text(pg_url: str, argocd_url: str, bare: Path, kubeconfig: Path, apps: int, users: int) -> str:
    """The one configuration both replicas read (YAML: JSON is YAML, so it is built as data)."""
    target = {"backend": "argocd", "repository": "deploy"}
    config: dict[str, Any] = {
        "audit": {"database": "state.db"},  # unused: `database.url` below wins
        "database": {"url": pg_url, "password_env": PASSWORD_ENV, "pool_size": 10},
        "git": {"cache_dir": "git"},
        "server": {"threads": 16, "workers": 8, "queue_limit": 256},
        "argocd": [{"name": "main", "url": argocd_url, "token_env": "ARGOCD_TOKEN"}],
        "repositories": [{"name": "deploy", "url": f"file://{bare}"}],
        "environments": [
            {"name": "dev"},
            {"name": "prod", "approvals_required": 1, "approvers": {"users": list(APPROVERS)}},
        ],
        "apps": [
            {
                "name": app_name(i),
                "environments": {
                    env: {**target, "name": f"{app_name(i)}-{env}", "path": f"apps/{app_name(i)}/{env}"}
                    for env in ("dev", "prod")
                },
                "promotion": {"images": [f"registry.example.com/{app_name(i)}"]},
            }
            for i in range(apps)
        ],
        "access": {
            "grants": [{"role": "deployer", "users": [REQUESTER, *APPROVERS, *sender_ids(users)]}],
            "rate_limit": {"commands": 1_000_000, "per": "1m"},  # the bench's senders are few and busy
        },
        "drift": {
            "enabled": True,
            "interval": f"{DRIFT_INTERVAL}s",
            "jitter": "0s",
            "channel": DRIFT,
            "digest_threshold": 1000,
        },
        "leader": {
            "enabled": True,
            "namespace": "gitops-bot",
            "kubeconfig": str(kubeconfig),
            "context": "sandbox",
            **{k: f"{v:g}s" for k, v in LEASE.items()},
        },
    }
    return json.dumps(config, indent=1) + "\n"


def sender_ids(users: int) -> list[str]:
    return [f"U0CMD{i:04d}" for i in range(users)]


@dataclass
class Replica:
    """One `gitops-bot run` process: its port, its log (warnings and errors kept), its sender."""

    name: str
    workdir: Path
    proc: subprocess.Popen[str]
    port: int = 0
    problems: list[str] = field(default_factory=list)
    sender: SlackSender | None = None
    _listening: threading.Event = field(default_factory=threading.Event)

    def drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.port and '"WARNING"' not in line and '"ERROR"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == "http server listening":
                self.port = int(record["port"])
                self._listening.set()
            elif record.get("level") in ("WARNING", "ERROR"):
                extra = record.get("error") or record.get("exc_info") or ""
                self.problems.append(f"{record.get('level')} {record.get('message')} {str(extra)[:300]}")
        self._listening.set()  # the process ended

    def readyz(self, timeout: float = 2.0) -> dict[str, Any]:
        """/readyz's JSON (a 503 carries the same body); {} when the process does not answer."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return {}
        return body

    def is_leader(self) -> bool:
        return bool(self.readyz(timeout=1.0).get("leader"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, the Lease is not released."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def environment(slack: FakeSlack, password: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url, "ARGOCD_TOKEN": JWT_TOKEN, PASSWORD_ENV: password}  # fmt: skip


def spawn_replica(name: str, root: Path, config: str, env: dict[str, str], slack: FakeSlack) -> Replica:
    # POD_NAME: the Lease identity (the downward API's in a pod); by default it is the host name,
    # the same for two processes on one machine, and both would then count as holding the Lease.
    workdir = root / name
    workdir.mkdir()
    (workdir / "gitops-bot.yaml").write_text(config)
    env = {**env, "HOME": str(workdir), "POD_NAME": f"gitops-bot-{name}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", "gitops-bot.yaml", "--host", "127.0.0.1",
         "--port", "0"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    replica = Replica(name, workdir, proc)
    threading.Thread(target=replica.drain, name=f"log-{name}", daemon=True).start()
    return replica


def wait_started(replica: Replica, slack: FakeSlack, timeout: float = 120) -> None:
    if not replica._listening.wait(timeout) or not replica.port:
        raise SystemExit(f"{replica.name} did not start: {replica.problems[-5:]}")
    replica.sender = SlackSender(f"http://127.0.0.1:{replica.port}/slack/events", SECRET, slack)
    deadline = time.monotonic() + timeout
    while replica.readyz().get("status") != "ready":
        if time.monotonic() > deadline or not replica.alive():
            raise SystemExit(f"{replica.name} never became ready: {replica.readyz()} {replica.problems[-5:]}")
        time.sleep(0.2)


def fakes(apps: int, drifting: int) -> tuple[FakeArgoCD, FakeKubernetes]:
    """Argo CD: dev and prod of every promoted app (syncs of 0.1 s), plus `drifting` apps whose live
    Deployment was edited by hand (OutOfSync at the deployed revision: an incident at once)."""
    argocd = FakeArgoCD(operation_seconds=0.1, tick=0.05).start()
    for i in range(apps):
        for env in ("dev", "prod"):
            argocd.add_app(f"{app_name(i)}-{env}")
    for name in argocd.bulk_add(drifting, prefix="drift-"):
        argocd.drift(name, replicas=5)
    k8s = FakeKubernetes(leases=True).start()
    return argocd, k8s
