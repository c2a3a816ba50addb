"""What the demo's sandbox world contains: the deploy repository's files, the people, the bot's config.

Pure data and text builders (no I/O), so the world's shape can be read in one place and tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.demo import ci

ENVIRONMENTS = ("dev", "staging", "prod")
# web's releases per environment, oldest first: the deploy repository's history, one commit each, and
# the Argo CD apps' deployments (#1…#3). The last is what runs when the demo starts.
WEB_RELEASES = {
    "dev": ("1.4.1", "1.4.2", "1.4.3"),
    "staging": ("1.4.0", "1.4.1", "1.4.2"),
    "prod": ("1.3.9", "1.4.0", "1.4.1"),
}
WEB_TAGS = {env: tags[-1] for env, tags in WEB_RELEASES.items()}
API_TAGS = {"dev": "2.1.0", "staging": "2.0.3", "prod": "2.0.3"}
WEB_IMAGE = "registry.example.com/web"
API_IMAGE = "registry.example.com/api"
DEPLOYS_CHANNEL = "C0DEPLOYS"
ALERTS_CHANNEL = "C0ALERTS"
FEED_CHANNEL = "C0FEED"
CHANNEL_NAMES = {DEPLOYS_CHANNEL: "deploys", ALERTS_CHANNEL: "gitops-alerts", FEED_CHANNEL: "deploy-feed"}
SHOWN_CHANNELS = (DEPLOYS_CHANNEL, ALERTS_CHANNEL, FEED_CHANNEL)  # what the console prints
CI_AUTHOR = "CI <ci@example.com>"  # `ci-push` commits as the CI system, not as a person
FLUX_CLUSTER = "sandbox"
ARGOCD_INSTANCE = "main"
# web's prod overlay is deployed from branch `prod`, protected on the (fake) GitHub: changes to it go
# through a pull request, with a required check and one approving review. Everything else deploys
# from `main`, which takes direct pushes (Flux's rollbacks commit there).
MAIN_BRANCH = "main"
PROD_BRANCH = "prod"
GITHUB_PROJECT = "demo/deploy"
REQUIRED_CHECK = "ci/web"
GITHUB_TOKEN_ENV = "DEMO_GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
GITHUB_APPROVE_TOKEN_ENV = "DEMO_GITHUB_APPROVE_TOKEN"  # noqa: S105 - the variable's name
DRIFT_SECONDS = 20  # the background scan's period: often enough to notice while you type
MONITOR_SECONDS = 10  # the pipeline monitor's period (its minimum)


@dataclass(frozen=True)
class DemoUser:
    id: str
    name: str
    real_name: str
    roles: str  # shown by the console's `help`; the config below is what grants them


USERS = (
    DemoUser("U0ALICE", "alice", "Alice Example", "deployer everywhere"),
    DemoUser("U0BOB", "bob", "Bob Example", "deployer + approver of prod"),
    DemoUser("U0CAROL", "carol", "Carol Example", "admin"),
    DemoUser("U0DAVE", "dave", "Dave Example", "viewer: reads, lists pipeline runs, starts nothing"),
)


def web_path(env: str) -> str:
    return f"apps/web/overlays/{env}"


def api_path(env: str) -> str:
    return f"apps/api/{env}"


def web_branch(env: str) -> str:
    """The branch Argo CD deploys web's `env` overlay from."""
    return PROD_BRANCH if env == "prod" else MAIN_BRANCH


def web_repository(env: str) -> str:
    """The `repositories[]` entry holding web's `env` overlay (the branch decides which)."""
    return "deploy-prod" if env == "prod" else "deploy"


def _overlay(image: str, tag: str, replicas: int, resources: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {resources}\n"
        f'images:\n  - name: {image}\n    newTag: "{tag}"  # promotions edit this line\n'
        f"replicas:\n  - name: {image.rsplit('/', 1)[-1]}\n    count: {replicas}\n"
    )


def _deployment(name: str, image: str, tag: str, replicas: int) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {name}\n  namespace: apps\n"
        f"spec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n"
        f"        - name: {name}\n          image: {image}:{tag}\n"
    )


@dataclass(frozen=True)
class SeedCommit:
    """One commit of the deploy repository's history before the demo starts."""

    files: dict[str, str]
    message: str
    age: timedelta  # how long before the start it was made


def repository_history() -> list[SeedCommit]:
    """The deploy repository up to the demo's start, oldest first: everything at web's first
    release, then each later release of web promoted environment by environment, an hour apart."""
    rounds = len(WEB_RELEASES["dev"])
    history = [
        SeedCommit(repository_files(), "Deploy web and api to dev, staging and prod", timedelta(hours=rounds))
    ]
    for release in range(1, rounds):
        for step, env in enumerate(ENVIRONMENTS):
            tag = WEB_RELEASES[env][release]
            overlay = _overlay(WEB_IMAGE, tag, 2, "../../base")
            age = timedelta(hours=rounds - release, minutes=-10 * step)
            history.append(
                SeedCommit({f"{web_path(env)}/kustomization.yaml": overlay}, f"web {tag} in {env}", age)
            )
    return history


def repository_files() -> dict[str, str]:
    """The deploy repository's first commit: web overlays (Argo CD) and api directories (Flux)."""
    files = {
        "README.md": "Deploy repository of the gitops-bot demo: one directory per app and environment.\n",
        "apps/web/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "apps/web/base/deployment.yaml": _deployment("web", WEB_IMAGE, "latest", 2),
    }
    for env in ENVIRONMENTS:
        first = WEB_RELEASES[env][0]
        files[f"{web_path(env)}/kustomization.yaml"] = _overlay(WEB_IMAGE, first, 2, "../../base")
        # The fake kustomize-controller reads plain manifests and skips kustomization.yaml.
        files[f"{api_path(env)}/kustomization.yaml"] = _overlay(
            API_IMAGE, API_TAGS[env], 2, "deployment.yaml"
        )
        files[f"{api_path(env)}/deployment.yaml"] = _deployment(f"api-{env}", API_IMAGE, API_TAGS[env], 2)
    return files


def api_release(env: str, tag: str) -> dict[str, str]:
    """api's files in `env` at `tag` (what `ci-push` commits)."""
    return {
        f"{api_path(env)}/kustomization.yaml": _overlay(API_IMAGE, tag, 2, "deployment.yaml"),
        f"{api_path(env)}/deployment.yaml": _deployment(f"api-{env}", API_IMAGE, tag, 2),
    }


def staging_change() -> tuple[str, str, str]:
    """A commit waiting in Git for web-staging, so `diff` and `sync` have something to show."""
    content = _overlay(WEB_IMAGE, WEB_TAGS["staging"], 3, "../../base")
    return f"{web_path('staging')}/kustomization.yaml", content, "web: 3 replicas in staging"


def _targets(app: str, backend: str) -> str:
    lines = []
    for env in ENVIRONMENTS:
        if backend == "argocd":
            where = (
                f"instance: {ARGOCD_INSTANCE}, name: {app}-{env}, project: {app}, path: {web_path(env)}, "
                f"repository: {web_repository(env)}"
            )
        else:
            where = (
                f"instance: {FLUX_CLUSTER}, name: {app}-{env}, namespace: flux-system, "
                f"path: {api_path(env)}, repository: deploy"
            )
        lines.append(f"      {env}: {{backend: {backend}, {where}}}")
    return "\n".join(lines)


WEBHOOK_SECRET_ENV = "DEMO_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
FREEZE_REASON = "prod syncs are frozen for the demo"


def freeze_window(now: datetime) -> str:
    """A deny window around `now` (UTC), so the demo always starts inside a change freeze for prod
    syncs: from an hour ago to three hours ahead, over midnight when it has to be."""
    start, end = now - timedelta(hours=1), now + timedelta(hours=3)
    day = start.strftime("%a").lower()
    return f'{{days: [{day}], from: "{start:%H:%M}", to: "{end:%H:%M}"}}'


def registry_images() -> list[tuple[str, str]]:
    """(repository, tag) of every image the demo deploys: the sandbox registry holds them all."""
    web = {(WEB_IMAGE, tag) for tags in WEB_RELEASES.values() for tag in tags}
    api = {(API_IMAGE, tag) for tag in API_TAGS.values()}
    return sorted((name.split("/", 1)[1], tag) for name, tag in web | api)


def config_yaml(
    *,
    root: Path,
    argocd_url: str,
    kubeconfig: Path,
    bare: Path,
    registry: str,
    webhook_url: str,
    github_api_url: str,
    now: datetime,
) -> str:
    """The bot's configuration, as an operator would write it (see examples/gitops-bot.yaml)."""
    alice, bob, carol, dave = (user.id for user in USERS)
    return f"""
slack:
  alerts_channel: {ALERTS_CHANNEL}
server:
  workers: 4
  queue_limit: 32
  shutdown_timeout: 2s
argocd:
  - name: {ARGOCD_INSTANCE}
    url: {argocd_url}
    token_env: ARGOCD_TOKEN
    timeouts: {{connect: 2, read: 10}}
flux:
  - name: {FLUX_CLUSTER}
    kubeconfig: {kubeconfig}
    context: sandbox
tekton:  # the same sandbox API server runs the fake Tekton; the Dashboard host is made up (.invalid)
  - name: {ci.CLUSTER}
    kubeconfig: {kubeconfig}
    context: sandbox
    namespaces: [{ci.NAMESPACE}]
    dashboard_url: {ci.DASHBOARD_URL}
repositories:
  - name: deploy
    url: file://{bare}
    branch: {MAIN_BRANCH}
    commit_identity: {{name: gitops-bot, email: gitops-bot@example.com}}
  - name: deploy-prod  # the same repository's protected branch: promotions go through a pull request
    url: file://{bare}
    branch: {PROD_BRANCH}
    commit_identity: {{name: gitops-bot, email: gitops-bot@example.com}}
    mode: pull_request
    host: github
    api_url: {github_api_url}
    project: {GITHUB_PROJECT}
    token_env: {GITHUB_TOKEN_ENV}  # gitops-bot: pushes the branch, opens and merges the PR
    approve_token_env: {GITHUB_APPROVE_TOKEN_ENV}  # reviewer: GitHub refuses an author's own approval
    merge_method: merge
    labels: [promotion]
git:
  cache_dir: {root / "git-cache"}
  pull_request_refresh: 10s  # a pending card follows its PR's check within seconds
environments:
  - name: dev
  - name: staging
  - name: prod
    approvals_required: 1
    approvers: {{users: [{bob}]}}
    approval_timeout: 1h
apps:
  - name: web
    environments:
{_targets("web", "argocd")}
    promotion: {{file: kustomization.yaml, images: [{WEB_IMAGE}]}}
    pipelines:  # /gitops pipeline web starts it; --param revision=… says what to build
      - name: {ci.PIPELINE}
        namespace: {ci.NAMESPACE}
        revision_param: {ci.REVISION_PARAM}
        params: {{{ci.IMAGE_PARAM}: {WEB_IMAGE}}}
        timeout: 10m
  - name: api
    environments:
{_targets("api", "flux")}
    promotion: {{file: kustomization.yaml, images: [{API_IMAGE}]}}
access:
  grants:
    - role: deployer
      users: [{alice}, {bob}]
    - role: approver
      users: [{bob}]
    - role: admin
      users: [{carol}]
    - role: viewer
      users: [{dave}]
  rate_limit: {{commands: 30, per: 1m}}  # the tour makes a dozen changes a minute as one person
drift:
  interval: {DRIFT_SECONDS}s
  jitter: 0s
  channel: {ALERTS_CHANNEL}
feed:  # every deploy, whoever started it, once in #deploy-feed; /gitops stats reads them
  channel: {FEED_CHANNEL}
  pace: 0.2
  failure_window: 1h
pipeline_monitor:  # failed runs of web-ci, posted once each
  interval: {MONITOR_SECONDS}s
  jitter: 0s
  channel: {ALERTS_CHANNEL}
operations:
  sync_timeout: 60s
audit:
  database: {root / "audit.db"}
logging:
  level: INFO
validators:
  - kind: change_window  # {FREEZE_REASON}: a window around the demo's start; admins pass with --force
    environments: [prod]
    actions: [sync]
    timezone: UTC
    deny:
      - {freeze_window(now)}
  - kind: image_exists  # promoted tags must exist: the sandbox registry mirrors registry.example.com
    environments: [staging, prod]
    registries:
      - {{host: {WEB_IMAGE.split("/")[0]}, mirror: "{registry}", insecure: true}}
  - kind: pipeline_succeeded  # web goes on only when web-ci built and tested it (its newest run passed)
    environments: [staging, prod]
    apps: [web]
notifiers:
  - kind: webhook  # every audited event, signed; the console's `webhooks` shows what arrived
    name: demo-sink
    url: {webhook_url}
    secret_env: {WEBHOOK_SECRET_ENV}
    events: ["*"]
"""
