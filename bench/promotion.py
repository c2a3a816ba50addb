"""Promotion end to end on a big deploy repository: warm cached clone vs a fresh clone each time.

The repository (built with `git fast-import` from a generated stream, then repacked like a server's)
has --commits commits and --files files: per service a dev/staging/prod kustomization.yaml plus base
manifests, with history that keeps bumping dev tags. Each run promotes one service dev → staging:
plan (fetch, read both files, diff), store the request (no approval policy), edit, commit, push. No
sync wait. "warm" reuses one RepoCache (the bot's cached clone, fetched each time); "fresh" gives
every promotion a RepoCache on a new empty cache directory, so it clones first. The remote is a
`file://` URL so git uses its pack protocol, not a local hardlink copy.
Targets: warm median < 1.5 s and >= 10x faster than fresh.

    .venv/bin/python bench/promotion.py [--commits 20000] [--files 5000] [--runs 7] [--fresh-runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.apps import AppResolver
from services.git import RepoCache
from services.promotion.service import PromotionService, PromotionStore
from services.settings.model import Settings
from services.store.db import Database

ENVS = ("dev", "staging", "prod")
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
KUSTOMIZATION = """\
# {svc} in {env}: the bot edits newTag on promotion
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../base/{svc}
images:
  - name: registry.example.com/{svc}
    newTag: "{tag}"  # bumped by promotion
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: {svc}
          image: registry.example.com/{svc}
          resources: {{requests: {{cpu: {n}m}}}}
"""


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, input=stdin, capture_output=True, check=True)
    return done.stdout.decode()


class Stream:
    """A `git fast-import` stream, built in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.commits = 0

    def commit(self, message: str, files: dict[str, str]) -> None:
        self.commits += 1
        stamp = 1_700_000_000 + self.commits * 60
        msg = message.encode()
        self.parts.append(
            b"commit refs/heads/main\n"
            + f"committer CI <ci@example.com> {stamp} +0000\n".encode()
            + f"data {len(msg)}\n".encode()
            + msg
            + b"\n"
        )
        for path, content in files.items():
            data = content.encode()
            self.parts.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        self.parts.append(b"\n")

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def build_repository(root: Path, commits: int, files: int) -> tuple[Path, int]:
    """A bare repository with `commits` commits and `files` files; returns it and the services."""
    services = max(1, files // 5)  # 3 kustomizations + 2 base files each
    stream = Stream()
    first: dict[str, str] = {}
    for i in range(services):
        svc = f"svc-{i:04d}"
        for env, tag in zip(ENVS, ("1.0.1", "1.0.0", "1.0.0"), strict=True):
            first[f"apps/{svc}/{env}/kustomization.yaml"] = KUSTOMIZATION.format(svc=svc, env=env, tag=tag)
        first[f"base/{svc}/deployment.yaml"] = DEPLOYMENT.format(svc=svc, n=100)
        first[f"base/{svc}/kustomization.yaml"] = "resources:\n  - deployment.yaml\n"
    for extra in range(files - len(first)):
        first[f"docs/note-{extra:04d}.md"] = f"note {extra}\n"
    stream.commit("Initial layout", first)
    for n in range(1, commits):
        svc = f"svc-{n % services:04d}"
        if n % 4 == 0:  # some history in the base manifests too
            stream.commit(
                f"{svc}: cpu", {f"base/{svc}/deployment.yaml": DEPLOYMENT.format(svc=svc, n=100 + n)}
            )
        else:
            tag = f"1.{n // services}.{n % 97 + 2}"
            path = f"apps/{svc}/dev/kustomization.yaml"
            stream.commit(f"{svc}: dev {tag}", {path: KUSTOMIZATION.format(svc=svc, env="dev", tag=tag)})
    bare = root / "deploy.git"
    git(root, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    git(bare, "fast-import", "--quiet", stdin=stream.bytes())
    git(bare, "repack", "-a", "-d", "-q")  # one pack with deltas, as a hosted remote serves
    return bare, services


def settings_for(bare: Path, services: int) -> Settings:
    apps = [
        {
            "name": f"svc-{i:04d}",
            "environments": {
                env: {
                    "backend": "flux", "instance": "main", "name": f"svc-{i:04d}", "namespace": "apps",
                    "repository": "deploy", "path": f"apps/svc-{i:04d}/{env}",
                }
                for env in ENVS
            },
        }
        for i in range(services)
    ]  # fmt: skip
    return Settings.model_validate(
        {
            "repositories": [{"name": "deploy", "url": f"file://{bare}"}],
            "environments": [{"name": env} for env in ENVS],
            "apps": apps,
        }
    )


def promote(service: PromotionService, store: PromotionStore, app: str) -> tuple[float, float]:
    """Promote `app` dev → staging; returns (seconds planning, seconds in all)."""
    t0 = time.perf_counter()
    plan = service.plan(app, "staging")
    planned = time.perf_counter() - t0
    assert not plan.empty, f"{app}: nothing to promote"
    promotion = store.create(
        plan, requester="U0BENCH", requester_name="Bench", channel="C1",
        approvals_required=0, ttl=timedelta(hours=1),
    )  # fmt: skip
    sha = service.commit(promotion, approvers=[], author_name="Bench", author_email="bench@example.com")
    store.mark(promotion.id, "committed", commit_sha=sha)
    return planned, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7, help="warm promotions")
    parser.add_argument("--fresh-runs", type=int, default=5, help="promotions with a fresh clone each")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        bare, services = build_repository(root, args.commits, args.files)
        count = int(git(bare, "rev-list", "--count", "main"))
        tracked = len(git(bare, "ls-tree", "-r", "--name-only", "main").splitlines())
        took = time.perf_counter() - started
        print(f"repository: {count:,} commits, {tracked:,} files, built in {took:.1f} s")
        if args.runs + args.fresh_runs + 1 > services:
            raise SystemExit("not enough services for distinct promotions; raise --files")
        settings = settings_for(bare, services)
        db = Database(root / "bot.db")
        store = PromotionStore(db)
        resolver = AppResolver(settings, {})
        apps = iter(f"svc-{i:04d}" for i in range(services))

        warm_cache = RepoCache(root / "warm", settings.repositories, {})
        warm = PromotionService(settings, warm_cache, resolver, store)
        started = time.perf_counter()
        warm_cache.ensure("deploy")  # the bot's first use of the repository, before any promotion
        print(f"first clone of the cache: {time.perf_counter() - started:.2f} s (not counted)")

        warm_plans, warm_times = [], []
        for _ in range(args.runs):
            planned, took = promote(warm, store, next(apps))
            warm_plans.append(planned)
            warm_times.append(took)

        fresh_plans, fresh_times = [], []
        for i in range(args.fresh_runs):
            cache_dir = root / f"fresh-{i}"
            fresh = PromotionService(
                settings, RepoCache(cache_dir, settings.repositories, {}), resolver, store
            )
            planned, took = promote(fresh, store, next(apps))
            fresh_plans.append(planned)
            fresh_times.append(took)
            shutil.rmtree(cache_dir)

        landed = int(git(bare, "rev-list", "--count", "main")) - count
        db.close()
    warm_median, fresh_median = statistics.median(warm_times), statistics.median(fresh_times)
    ratio = fresh_median / warm_median
    print(f"promotions pushed: {landed} (expected {args.runs + args.fresh_runs})")
    for label, times, plans, runs in (
        ("warm cached clone", warm_times, warm_plans, args.runs),
        ("fresh clone each ", fresh_times, fresh_plans, args.fresh_runs),
    ):
        print(
            f"{label}  median {statistics.median(times) * 1000:8.1f} ms   (n={runs}, "
            f"min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; "
            f"plan {statistics.median(plans) * 1000:.1f}, commit+push "
            f"{statistics.median(t - p for t, p in zip(times, plans, strict=True)) * 1000:.1f})"
        )
    print(f"ratio fresh / warm {ratio:8.1f}x")
    ok = warm_median < 1.5 and ratio >= 10 and landed == args.runs + args.fresh_runs
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"targets (warm < 1.5 s, >= 10x faster): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
