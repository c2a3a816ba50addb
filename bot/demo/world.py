"""The demo's sandbox world: a Git deploy repository (its `prod` branch protected on a fake GitHub), fake
Argo CD, fake Flux and Tekton, fake Slack, the bot.

Everything lives in one temporary directory and listens on 127.0.0.1 only; `close()` stops every
server and deletes the directory, whatever state the session ended in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from bot.app import Runtime, build_runtime
from bot.config import parse_config_text
from bot.demo import ci
from bot.demo.bridge import ArgoBridge
from bot.demo.config import (
    ALERTS_CHANNEL,
    ARGOCD_INSTANCE,
    CHANNEL_NAMES,
    CI_AUTHOR,
    ENVIRONMENTS,
    FEED_CHANNEL,
    FLUX_CLUSTER,
    GITHUB_APPROVE_TOKEN_ENV,
    GITHUB_PROJECT,
    GITHUB_TOKEN_ENV,
    MAIN_BRANCH,
    PROD_BRANCH,
    REQUIRED_CHECK,
    USERS,
    WEB_IMAGE,
    WEBHOOK_SECRET_ENV,
    api_path,
    api_release,
    config_yaml,
    registry_images,
    repository_history,
    staging_change,
    web_branch,
    web_path,
)
from bot.demo.host import BOT_TOKEN, CHECK_SECONDS, REVIEWER_TOKEN, DemoGitHub
from bot.logs import configure_logging
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, commit_files, git, make_deploy_repo
from sandbox.oci_registry import FakeOCIRegistry
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.tekton_fake import FakeTekton
from sandbox.webhook_receiver import WebhookReceiver
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from services.flux import build_flux_backends
from services.git import RepoCache
from services.redaction import Redactor

DRIFT_JOB = "drift-scan"
MONITOR_JOB = "pipeline-monitor"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
BROKEN_REPLICAS = 5


class DemoWorld:
    """Build with `DemoWorld.start()`; use as a context manager so `close()` always runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._closers: list[Callable[[], None]] = []  # run in reverse on close
        self._scan_lock = threading.Lock()  # one drift scan at a time: the scheduler's or `scan`
        self._monitor_lock = threading.Lock()  # one pipeline monitor scan at a time: scheduled or `scan-ci`
        self._ci_builds = 0  # `ci-push`: api 2.1.1, 2.1.2, …
        self.slack = FakeSlack(bot_token="xoxb-demo-" + secrets.token_hex(8))
        self.argocd = FakeArgoCD(operation_seconds=1.0, tick=0.05)
        self.kube = FakeKubernetes(tick=0.05, reconcile_seconds=0.5)
        self.bare = root / "git" / "deploy.git"  # where make_deploy_repo puts them
        self.work = root / "git" / "deploy"
        self._github: DemoGitHub | None = None
        self._runtime: Runtime | None = None
        self._tekton: FakeTekton | None = None
        self._sender: SlackSender | None = None
        self.log_path = root / "bot.log"
        self.registry = FakeOCIRegistry(auth="anonymous")  # stands in for registry.example.com
        self._webhook_secret = secrets.token_hex(16)
        self.webhook = WebhookReceiver(self._webhook_secret)  # a team's own endpoint for events

    @classmethod
    def start(cls) -> DemoWorld:
        world = cls(Path(tempfile.mkdtemp(prefix="gitops-bot-demo-")))
        try:
            world._build()
        except BaseException:
            world.close()
            raise
        return world

    def __enter__(self) -> DemoWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the world is not started"
        return self._runtime

    @property
    def github(self) -> DemoGitHub:
        assert self._github is not None, "the world is not started"
        return self._github

    @property
    def tekton(self) -> FakeTekton:
        assert self._tekton is not None, "the world is not started"
        return self._tekton

    @property
    def sender(self) -> SlackSender:
        assert self._sender is not None, "the world is not started"
        return self._sender

    # -- building -------------------------------------------------------------------------------------

    def _build(self) -> None:
        self._closers.append(lambda: shutil.rmtree(self.root, ignore_errors=True))
        self._make_repository()
        self._github = DemoGitHub(self.bare).start()  # from now on, pushes to prod are refused
        self._closers.append(self._github.stop)
        bridge = ArgoBridge(self.bare, self.root / "bridge", self.argocd)
        self._start_argocd(bridge)
        bridge.start()
        self._closers.append(bridge.stop)
        path, content, message = staging_change()
        commit_file(self.work, path, content, message)  # the bridge gives web-staging this revision
        kubeconfig = self._start_flux()
        self._start_tekton()
        self._start_slack()
        self._start_registry_and_webhook()
        signing_secret = secrets.token_hex(16)
        environ = {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_API_URL": self.slack.base_url,
            "ARGOCD_TOKEN": JWT_TOKEN,
            WEBHOOK_SECRET_ENV: self._webhook_secret,
            GITHUB_TOKEN_ENV: BOT_TOKEN,
            GITHUB_APPROVE_TOKEN_ENV: REVIEWER_TOKEN,
        }
        text = config_yaml(
            root=self.root, argocd_url=self.argocd.base_url, kubeconfig=kubeconfig, bare=self.bare,
            registry=self.registry.host, webhook_url=self.webhook.url, github_api_url=self.github.api_url,
            now=datetime.now(UTC),
        )  # fmt: skip
        loaded = parse_config_text(text, environ=environ, source="<demo>")
        self._log_to_file(Redactor(loaded.secrets.values()))
        # Short poll intervals, as the transcript tests use: a sync's progress shows within a second.
        argo = build_argocd_backends(loaded.settings, loaded.secrets, poll_interval=0.2)
        repos = RepoCache(  # Flux's own clone cache: two RepoCaches must not share a directory
            self.root / "flux-cache", loaded.settings.repositories, loaded.secrets.git_credentials
        )
        flux = build_flux_backends(loaded.settings, loaded.secrets, repos, poll_interval=0.2)
        backends: dict[str, GitOpsBackend] = {f"argocd:{n}": b for n, b in argo.items()}
        backends.update({f"flux:{n}": b for n, b in flux.items()})
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends).start()
        self._closers.append(runtime.stop)
        self._runtime = runtime
        assert runtime.drift is not None
        runtime.drift.pace = 0.0
        job = runtime.scheduler.get_job(DRIFT_JOB)
        if job is not None:  # the scheduler's scans take the same lock as `scan`
            job.modify(func=self._scheduled_scan)
        monitor = runtime.pipeline_monitor
        if monitor is not None:
            monitor.pace = 0.0
            # Its first look takes the failures already there as known (the history's failed run);
            # done now, so every run that fails once the console is up is posted.
            self.scan_ci()
            job = runtime.scheduler.get_job(MONITOR_JOB)
            if job is not None:
                job.modify(func=self._scheduled_scan_ci)
        url = f"http://127.0.0.1:{runtime.server.port}/slack/events"
        self._sender = SlackSender(url, signing_secret, self.slack)

    def _make_repository(self) -> None:
        """The deploy repository with a few hours of history, so Argo CD has past deployments to show."""
        start = datetime.now(UTC).replace(microsecond=0)
        first, *later = repository_history()
        date = (start - first.age).isoformat()
        self.bare, self.work = make_deploy_repo(
            self.root / "git", first.files, message=first.message, date=date
        )
        for commit in later:
            commit_files(self.work, commit.files, commit.message, date=(start - commit.age).isoformat())
        # web's prod overlay deploys from `prod`, which starts where `main` is: the same history.
        git("--git-dir", str(self.bare), "branch", PROD_BRANCH, MAIN_BRANCH)

    def _start_argocd(self, bridge: ArgoBridge) -> None:
        """Each web app was deployed at every commit that changed its overlay: the real SHAs."""
        self.argocd.start()
        self._closers.append(self.argocd.stop)
        for env in ENVIRONMENTS:
            self.argocd.add_app(
                f"web-{env}",
                project="web",
                repo_url=f"file://{self.bare}",
                path=web_path(env),
                target_revision=web_branch(env),
                labels={"app": "web", "env": env},
                commits=bridge.upstream(env),
            )

    def _start_flux(self) -> Path:
        self.kube.start()
        self._closers.append(self.kube.stop)
        self.kube.add_git_repository("deploy", url=f"file://{self.bare}")
        for env in ENVIRONMENTS:
            self.kube.add_kustomization(
                f"api-{env}",
                path=f"./{api_path(env)}",
                source="deploy",
                labels={"app": "api", "env": env},
                target_namespace="apps",
            )
        self.kube.wait_idle()
        return self.kube.write_kubeconfig(self.root / "kubeconfig")

    def _start_tekton(self) -> None:
        """Tekton on the Flux API server, with web-ci's recent history: the newest revisions of web's
        staging overlay were built (the newest is what a promotion to prod takes), an older build
        failed once and passed when it ran again."""
        log = self._git_log("--format=%H", "-3", "main", "--", f"{web_path('staging')}/kustomization.yaml")
        newest, current, older = (log + [log[-1]] * 3)[:3]
        history = [
            ci.PastRun(older, timedelta(hours=2, minutes=12), fails=True),
            ci.PastRun(older, timedelta(hours=2, minutes=5)),
            ci.PastRun(current, timedelta(hours=1, minutes=4)),
            ci.PastRun(newest, timedelta(minutes=3)),
        ]
        self._tekton = ci.start_ci(self.kube, history, WEB_IMAGE)
        self._closers.append(self._tekton.stop)

    def _git_log(self, *args: str) -> list[str]:
        return git("--git-dir", str(self.bare), "log", *args).split()

    def _start_slack(self) -> None:
        self.slack.start()
        self._closers.append(self.slack.stop)
        for user in USERS:
            self.slack.add_user(user.id, user.name, user.real_name, f"{user.name}@example.com")
        for channel, name in CHANNEL_NAMES.items():
            self.slack.add_channel(channel, name)

    def _start_registry_and_webhook(self) -> None:
        self.registry.start()
        self._closers.append(self.registry.stop)
        for repository, tag in registry_images():
            self.registry.push(repository, tag)
        self.webhook.start()
        self._closers.append(self.webhook.stop)

    def _log_to_file(self, redact: Redactor) -> None:
        """The bot's JSON log goes to a file in the world: the console shows Slack, not log lines."""
        root = logging.getLogger()
        level = root.level
        stream: IO[str] = self.log_path.open("a", encoding="utf-8")
        handler = configure_logging("INFO", redact, stream=stream)

        def restore() -> None:
            root.removeHandler(handler)
            root.setLevel(level)
            stream.close()

        self._closers.append(restore)

    def close(self) -> None:
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            with contextlib.suppress(Exception):  # one failing stop must not leave the rest running
                closer()

    # -- what the console does to the world ------------------------------------------------------------

    def names(self) -> dict[str, str]:
        """Slack ids to the names the console shows (users, the bot, channels)."""
        found = {user.id: user.name for user in USERS}
        found[self.slack.bot_user_id] = "gitops-bot"
        found.update(CHANNEL_NAMES)
        return found

    def targets(self) -> dict[str, str]:
        """Objects `break` / `fix` accept, with what manages them."""
        found = {f"web-{env}": f"Argo CD app ({ARGOCD_INSTANCE})" for env in ENVIRONMENTS}
        found.update({f"api-{env}": f"Flux Kustomization ({FLUX_CLUSTER})" for env in ENVIRONMENTS})
        return found

    def break_target(self, name: str) -> str:
        """A change made behind Git's back; returns what happened, in words. KeyError for unknown names."""
        if name.startswith("web-") and name in self.targets():
            self.argocd.drift(name, replicas=BROKEN_REPLICAS)
            return (
                f"kubectl scale deployment/{name} --replicas={BROKEN_REPLICAS}: the live state of {name} "
                "no longer matches Git (Argo CD shows OutOfSync)"
            )
        if name.startswith("api-") and name in self.targets():
            self.kube.fail_next_reconcile("Kustomization", name, reason="HealthCheckFailed")
            self._request_reconcile(name)
            return (
                f"kubectl scale deployment/{name} --replicas=0, then Flux reconciled {name}: "
                "its health check fails (Ready=False)"
            )
        raise KeyError(name)

    def fix_target(self, name: str) -> str:
        if name.startswith("web-") and name in self.targets():
            self.argocd.heal(name)
            return f"{name}: the live state matches Git again (someone undid the kubectl edit)"
        if name.startswith("api-") and name in self.targets():
            self._request_reconcile(name)
            return f"flux reconcile kustomization {name}: Flux re-applies Git and the health check passes"
        raise KeyError(name)

    def ci_push(self) -> str:
        """CI releases a new api build to dev (a commit by CI), then `flux reconcile ks api-dev`:
        a deploy the bot did not start, which the deployment feed announces."""
        self._ci_builds += 1
        tag = f"2.1.{self._ci_builds}"
        git("fetch", "--quiet", "origin", MAIN_BRANCH, cwd=self.work)  # the bot may have pushed since
        git("reset", "--quiet", "--hard", f"origin/{MAIN_BRANCH}", cwd=self.work)
        message = f"api {tag} in dev (CI build #{self._ci_builds})"
        sha = commit_files(self.work, api_release("dev", tag), message, author=CI_AUTHOR)
        self.kube.fetch_sources()
        self._request_reconcile("api-dev")
        return f"CI pushed {sha[:8]} (api {tag} in dev) and ran `flux reconcile ks api-dev`"

    def break_ci(self) -> str:
        return ci.break_ci(self.tekton)

    def fix_ci(self) -> str:
        return ci.fix_ci(self.tekton)

    def _request_reconcile(self, name: str) -> None:
        """`flux reconcile ks NAME`: the requestedAt annotation, through the fake API server."""
        token = datetime.now(UTC).isoformat()
        body = json.dumps({"metadata": {"annotations": {REQUESTED_AT: token}}}).encode()
        request = urllib.request.Request(  # noqa: S310 - the fake API server on 127.0.0.1
            self.kube.base_url + KUSTOMIZATIONS + name,
            data=body,
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                "Authorization": f"Bearer {self.kube.token}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - local fake
            reply.read()
        # Like `flux reconcile`, return once the controller answered: a scan right after sees the result.
        self.kube.wait_idle(timeout=10)

    def scan(self) -> int:
        """One drift scan now; returns how many Slack calls it made."""
        drift = self.runtime.drift
        assert drift is not None
        with self._scan_lock:
            return drift.run()

    def _scheduled_scan(self) -> None:
        try:
            self.scan()
        except Exception:  # the scheduler thread must survive a failed scan
            logging.getLogger(__name__).exception("scheduled drift scan failed")

    def scan_ci(self) -> int:
        """One pipeline monitor scan now; returns how many failed runs it posted."""
        monitor = self.runtime.pipeline_monitor
        if monitor is None:
            return 0
        with self._monitor_lock:
            return monitor.run()

    def _scheduled_scan_ci(self) -> None:
        try:
            self.scan_ci()
        except Exception:  # the scheduler thread must survive a failed scan
            logging.getLogger(__name__).exception("scheduled pipeline monitor scan failed")

    def set_autoscan(self, on: bool) -> None:
        """The background drift scan and pipeline monitor, both on or both off."""
        for name in (DRIFT_JOB, MONITOR_JOB):
            job = self.runtime.scheduler.get_job(name)
            if job is None:
                continue
            if on:
                job.resume()
            else:
                job.pause()

    def autoscan(self) -> bool:
        job = self.runtime.scheduler.get_job(DRIFT_JOB)
        return job is not None and job.next_run_time is not None

    def describe(self) -> list[str]:
        """One line per sandbox object, for the console's `world` command."""
        lines = [f"deploy repository: {self.bare} (work clone {self.work})"]
        for env in ENVIRONMENTS:
            where = f"Git path {web_path(env)} on branch {web_branch(env)}"
            lines.append(f"  web-{env}: Argo CD app '{ARGOCD_INSTANCE}/web-{env}', {where}")
        for env in ENVIRONMENTS:
            where = f"'{FLUX_CLUSTER}/flux-system/api-{env}', Git path {api_path(env)}"
            lines.append(f"  api-{env}: Flux Kustomization {where}")
        tasks = f"{' → '.join(ci.TASKS)}, finally {', '.join(ci.FINALLY)}"
        where = f"{ci.CLUSTER}/{ci.NAMESPACE}/{ci.PIPELINE}"
        lines.append(f"  {ci.PIPELINE}: Tekton pipeline '{where}' building web ({tasks})")
        lines.append(f"  Tekton Dashboard links point to {ci.DASHBOARD_URL} (a made-up host)")
        lines.append(
            f"GitHub (fake, Enterprise-style API {self.github.api_url}): {GITHUB_PROJECT} is that repository;"
        )
        lines.append(
            f"  branch {PROD_BRANCH} is protected: pushes refused (GH006), PRs need check "
            f"{REQUIRED_CHECK} and one approving review"
        )
        ci_mode = f"passes {CHECK_SECONDS:g} s after each new head" if self.github.auto else "waits for you"
        lines.append(
            f"  the bot opens PRs as gitops-bot and approves as reviewer; {REQUIRED_CHECK} {ci_mode} "
            "(check-pass, check-fail)"
        )
        alerts = "drift alerts, failed pipeline runs"
        lines.append(f"channels: #deploys (you type here), #gitops-alerts ({ALERTS_CHANNEL}, {alerts}), "
                     f"#deploy-feed ({FEED_CHANNEL}, every deploy once)")  # fmt: skip
        lines.append(f"OCI registry (stands in for registry.example.com): http://{self.registry.host}")
        lines.append(f"webhook receiver (notifier demo-sink): {self.webhook.url}")
        lines.append(f"bot log: {self.log_path}")
        return lines
