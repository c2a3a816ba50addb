"""A deploy repository with three environments of two apps, and a PromotionService over it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sandbox.flux_git import make_deploy_repo
from services.apps import AppResolver
from services.git import RepoCache
from services.promotion.service import Promotion, PromotionPlan, PromotionService, PromotionStore
from services.settings.model import Settings
from services.store.db import Database
from services.store.sqlite import SqliteDatabase
from tests.git_support import Remote

ENVS = ("dev", "staging", "prod")
KUSTOMIZATION = """\
# {app} in {env}: the bot edits newTag on promotion
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../base/{app}   # shared manifests
images:
  - name: ghcr.io/acme/{app}
    newTag: "{tag}"  # bumped by promotion
replicas:
  - name: {app}
    count: 2
"""
TAGS = {"dev": "1.4.3", "staging": "1.4.2", "prod": "1.4.1"}


def path_of(app: str, env: str) -> str:
    return f"apps/{app}/{env}/kustomization.yaml"


def kustomization(app: str, env: str, tag: str) -> str:
    return KUSTOMIZATION.format(app=app, env=env, tag=tag)


def _target(app: str, env: str, *, repository: bool = True) -> dict[str, Any]:
    target: dict[str, Any] = {"backend": "flux", "instance": "main", "name": app, "namespace": "apps"}
    if repository:
        target.update(repository="deploy", path=f"apps/{app}/{env}")
    return target


def settings_for(bare: Path) -> Settings:
    return Settings.model_validate(
        {
            "repositories": [{"name": "deploy", "url": str(bare)}],
            "environments": [
                {"name": "dev"},
                {"name": "staging"},
                {"name": "prod", "approvals_required": 2, "approvers": {"users": ["U0BOSS", "U0CAROL"]}},
            ],
            "apps": [
                {"name": app, "environments": {env: _target(app, env) for env in ENVS}}
                for app in ("api", "web")
            ]
            + [
                {
                    "name": "legacy",
                    "environments": {env: _target("legacy", env, repository=False) for env in ENVS},
                }
            ],
        }
    )


@dataclass
class World:
    remote: Remote
    settings: Settings
    repos: RepoCache
    db: Database
    store: PromotionStore
    service: PromotionService

    def request(self, plan: PromotionPlan, approvals_required: int = 2) -> Promotion:
        return self.store.create(
            plan, requester="U0DANA", requester_name="Dana", channel="C1",
            approvals_required=approvals_required, ttl=timedelta(hours=1),
        )  # fmt: skip

    def approved(self, plan: PromotionPlan) -> Promotion:
        """A request for `plan` approved by two people, as the approval flow leaves it."""
        self.request(plan)
        self.store.approve(plan.id, "U0BOSS")
        done = self.store.approve(plan.id, "U0CAROL")
        assert done.became_approved
        return done


def make_world(tmp_path: Path) -> World:
    files = {path_of(app, env): kustomization(app, env, TAGS[env]) for app in ("api", "web") for env in ENVS}
    files["README.md"] = "deploy repository\n"
    bare, work = make_deploy_repo(tmp_path / "git", files)
    settings = settings_for(bare)
    repos = RepoCache(tmp_path / "cache", settings.repositories, {})
    db = SqliteDatabase(tmp_path / "bot.db")
    store = PromotionStore(db)
    service = PromotionService(settings, repos, AppResolver(settings, {}), store)
    return World(Remote(bare, work), settings, repos, db, store, service)
