"""Promotion end to end on a big deploy repository: warm cached clone vs a fresh clone each time.

The repository (built with `git fast-import` from a generated stream, then repacked like a server's)
has --commits commits and --files files: per service a dev/staging/prod kustomization.yaml plus base
manifests, with history that keeps bumping dev tags. Each run promotes one service dev → staging:
plan (fetch, read both files, diff), store the request (no approval policy), edit, commit, push. No
sync wait. "warm" reuses one RepoCache (the bot's cached clone, fetched each time); "fresh" gives
every promotion a RepoCache on a new empty cache directory, so it clones first. The remote is a
`file://` URL so git uses its pack protocol, not a local hardlink copy.

Then the pull-request path (a branch the host protects): `main` is protected on a fake GitHub
(sandbox/github_fake.py, `/api/v3` like GitHub Enterprise Server) serving the same repository, with
a required check `ci`. Each run promotes another service dev → prod as the bot does in
`mode: pull_request`: plan, store, push the promotion branch from a warm clone, find / open the PR,
read it until GitHub has decided (no sleeps: the fake settles on the next read), merge with the head
SHA as precondition and read the merge commit. Setting the check green (the host's CI) happens
between the open and the merge and is not counted. The fake host runs in this process on 127.0.0.1.
Targets: warm median < 1.5 s and >= 10x faster than fresh; pull-request path median < 1.5 s.

    .venv/bin/python bench/promotion.py [--commits 20000] [--files 5000] [--runs 7] [--fresh-runs 5]
                                        [--pr-runs 7]
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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from sandbox.github_fake import BOT_TOKEN, FakeGitHub
from services.apps import AppResolver
from services.git import RepoCache
from services.githost import GitHost, build_host
from services.promotion.service import PromotionService, PromotionStore
from services.settings.model import Settings
from services.store.sqlite import SqliteDatabase

ENVS = ("dev", "staging", "prod")
PROJECT = "bench/deploy"
CHECK = "ci"
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


def settings_for(bare: Path, services: int, host: dict[str, str] | None = None) -> Settings:
    """`host`: the repository's pull-request keys (mode, host, api_url, …); none: pushed directly."""
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
            "repositories": [{"name": "deploy", "url": f"file://{bare}", **(host or {})}],
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


@dataclass
class PullRequestRun:
    """One promotion through a pull request: the bot's time per stage, seconds."""

    plan: float = 0.0
    push: float = 0.0  # store the request, commit on the branch head, push the promotion branch
    open: float = 0.0  # find_open + create
    merge: float = 0.0  # read until decided, merge with the head SHA, read the merge commit
    reads: int = 0

    @property
    def total(self) -> float:
        return self.plan + self.push + self.open + self.merge


def promote_through_pr(
    service: PromotionService, store: PromotionStore, host: GitHost, github: FakeGitHub, app: str
) -> PullRequestRun:
    """Promote `app` dev → prod through a PR into protected `main`, as `mode: pull_request` does."""
    run = PullRequestRun()
    t0 = time.perf_counter()
    plan = service.plan(app, "prod", "dev")
    run.plan = time.perf_counter() - t0
    assert not plan.empty, f"{app}: nothing to promote"
    t0 = time.perf_counter()
    promotion = store.create(
        plan, requester="U0BENCH", requester_name="Bench", channel="C1",
        approvals_required=0, ttl=timedelta(hours=1),
    )  # fmt: skip
    branch = f"gitops-bot/promote/{app}-prod-{promotion.audit_id}"
    head = service.commit(
        promotion, approvers=[], author_name="Bench", author_email="bench@example.com", to_branch=branch
    )
    run.push = time.perf_counter() - t0
    t0 = time.perf_counter()
    cr = host.find_open(branch, "main") or host.create(branch, "main", f"Promote {app} to prod", plan.diff)
    run.open = time.perf_counter() - t0
    github.set_check(PROJECT, head, CHECK, conclusion="success")  # the host's CI: not the bot's work
    t0 = time.perf_counter()
    while True:  # the fake decides on the next read; a real host may take seconds (not counted here)
        cr = host.get(cr.number)
        run.reads += 1
        readiness = host.readiness(cr)
        if readiness.kind != "wait":
            break
    assert readiness.kind == "ready", readiness
    result = host.merge(cr.number, head, method="merge", title=f"Promote {app} to prod", remove_branch=True)
    merged = result.sha or host.get(cr.number).merge_commit_sha
    run.merge = time.perf_counter() - t0
    assert result.merged, result
    assert merged, result
    store.mark(promotion.id, "committed", commit_sha=merged)
    return run


def pull_request_path(
    root: Path, bare: Path, services: int, store: PromotionStore, apps: Iterator[str], runs: int
) -> list[PullRequestRun]:
    """Protect `main` on a fake GitHub over `bare`, then promote `runs` services through PRs."""
    with FakeGitHub(prefix="/api/v3") as github:
        github.add_repo(PROJECT, bare)
        github.protect(PROJECT, "main", required_checks=(CHECK,))  # `git push` to main: GH006 now
        keys = {"mode": "pull_request", "host": "github", "api_url": github.api_url, "project": PROJECT,
                "token_env": "BENCH_GITHUB_TOKEN"}  # fmt: skip
        settings = settings_for(bare, services, keys)
        cache = RepoCache(root / "warm-pr", settings.repositories, {})
        service = PromotionService(settings, cache, AppResolver(settings, {}), store)
        host = build_host("github", github.api_url, PROJECT, SecretStr(BOT_TOKEN))
        try:
            started = time.perf_counter()
            cache.ensure("deploy")
            print(
                f"first clone for the pull-request path: {time.perf_counter() - started:.2f} s (not counted)"
            )
            return [promote_through_pr(service, store, host, github, next(apps)) for _ in range(runs)]
        finally:
            host.shutdown()


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7, help="warm promotions")
    parser.add_argument("--fresh-runs", type=int, default=5, help="promotions with a fresh clone each")
    parser.add_argument("--pr-runs", type=int, default=7, help="promotions through a pull request")
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
        if args.runs + args.fresh_runs + args.pr_runs + 1 > services:
            raise SystemExit("not enough services for distinct promotions; raise --files")
        settings = settings_for(bare, services)
        db = SqliteDatabase(root / "bot.db")
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
        merges_before = int(git(bare, "rev-list", "--count", "--merges", "main"))
        pr_runs = pull_request_path(root, bare, services, store, apps, args.pr_runs)
        merged = int(git(bare, "rev-list", "--count", "--merges", "main")) - merges_before
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
    totals = [r.total for r in pr_runs]
    pr_median = statistics.median(totals)
    print(f"pull requests merged: {merged} (expected {args.pr_runs})")
    print(
        f"pull request (warm)  median {pr_median * 1000:8.1f} ms   (n={args.pr_runs}, "
        f"min {min(totals) * 1000:.1f}, max {max(totals) * 1000:.1f}; plan {_ms([r.plan for r in pr_runs])}, "
        f"branch push {_ms([r.push for r in pr_runs])}, open PR {_ms([r.open for r in pr_runs])}, "
        f"read+merge+read {_ms([r.merge for r in pr_runs])}; "
        f"{statistics.median(r.reads for r in pr_runs):g} reads before the merge; host checks not counted)"
    )
    print(f"pull request / direct push {pr_median / warm_median:8.1f}x")
    ok = warm_median < 1.5 and ratio >= 10 and landed == args.runs + args.fresh_runs
    ok = ok and pr_median < 1.5 and merged == args.pr_runs
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"targets (warm < 1.5 s, >= 10x faster; pull request < 1.5 s): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
