"""Two bot processes sharing one PostgreSQL: exactly-once approvals, one audit chain, leader takeover.

Two `gitops-bot run` processes (HTTP mode, ephemeral ports, the same configuration) keep their state
in one throwaway PostgreSQL (tests/pgserver.py) and elect a drift leader through a Lease on the fake
Kubernetes API; one FakeSlack, one FakeArgoCD, requests alternating between the replicas.

  1. approvals: N prod promotions, each approve button pressed on both replicas at once (a
     barrier) → exactly N commits in the deploy repository, N `ok` approvals, the other click told
     "already approved / committed" and nothing else;
  2. chain: M `/gitops status` from 16–32 concurrent senders, alternating replicas → `gitops-bot
     audit verify` (a subprocess, the replica's config, the password in the environment) says OK and
     the trail holds >= M rows; commands/s printed;
  3. takeover: 100 apps drifting in Argo CD → 100 incident posts by the leader; kill -9 the leader;
     the other says `leader: true` on /readyz within lease_duration + retry_period; after its scans
     the drift channel still holds 100 posts (0 duplicates);
  4. audit appends/s, in this process: AuditStore on PostgreSQL beside SQLite (threads × appends).

Not a test: prints PASS / FAIL per target and a summary, exits 1 when a target fails.

    .venv/bin/python bench/replicas.py [--quick] [--approvals 500] [--commands 10000] [--senders 24]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replicas_audit import Appends, compare
from bench.replicas_phases import (
    Approvals,
    Commands,
    Takeover,
    approvals,
    commands,
    drift_posts,
    takeover,
    verify_chain,
)
from bench.replicas_world import (
    DRIFT_INTERVAL,
    LEASE,
    Replica,
    config_text,
    deploy_repo,
    environment,
    fakes,
    sender_ids,
    spawn_replica,
    wait_started,
)
from sandbox.slack_api import FakeSlack
from tests.pgserver import PostgresServer


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: everything scaled down")
    parser.add_argument("--approvals", type=int, help="promotions, each approved twice (default 500)")
    parser.add_argument("--workers", type=int, default=2, help="promotions in flight at once (1 per replica)")
    parser.add_argument("--commands", type=int, help="audited commands (default 10,000)")
    parser.add_argument("--senders", type=int, default=24, help="concurrent command senders (16-32)")
    parser.add_argument("--drifting", type=int, help="apps drifting in Argo CD (default 100)")
    parser.add_argument("--threads", type=int, default=8, help="appending threads (phase 4)")
    parser.add_argument("--appends", type=int, help="appends per thread (default 1,000)")
    args = parser.parse_args()
    quick = {"approvals": 50, "commands": 1000, "drifting": 20, "appends": 200}
    full = {"approvals": 500, "commands": 10_000, "drifting": 100, "appends": 1000}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main() -> int:
    args = options()
    limit = LEASE["lease_duration"] + LEASE["retry_period"]
    started = time.monotonic()
    replicas: list[Replica] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        root = Path(tmp)
        pg = PostgresServer(durable=True).start()  # fsync on: compared with SQLite's synchronous=FULL
        stack.callback(pg.stop)
        password = secrets.token_urlsafe(18)
        url = pg.create_database("gitops", "gitops_bot", password)
        audit_url = pg.create_database("bench_audit", "gitops_bot", password)
        slack = FakeSlack().start()
        stack.callback(slack.stop)
        argocd, k8s = fakes(args.approvals, args.drifting)
        stack.callback(argocd.stop)
        stack.callback(k8s.stop)
        kubeconfig = k8s.write_kubeconfig(root / "kubeconfig")
        bare = deploy_repo(root, args.approvals)
        users = sender_ids(args.senders)
        config = config_text(url, argocd.base_url, bare, kubeconfig, args.approvals, args.senders)
        env = environment(slack, password)
        stack.callback(stop_all, replicas)
        replicas.extend(spawn_replica(name, root, config, env, slack) for name in ("a", "b"))
        for replica in replicas:
            wait_started(replica, slack)
        quiet = [len(r.problems) for r in replicas]  # start-up notices are not the run's problems
        ready = time.monotonic() - started
        print(f"world: PostgreSQL {pg.port}, replicas on ports {replicas[0].port} and {replicas[1].port}, "
              f"{args.approvals} apps, {args.drifting} drifting; ready after {ready:.1f} s",
              flush=True)  # fmt: skip

        first = approvals(replicas, slack, url, password, bare, args.approvals, args.workers)
        print(f"1. approvals done in {first.seconds:.1f} s", flush=True)
        second = commands(replicas, url, password, users, args.commands, args.approvals)
        verify_chain(second, replicas[0], env, url, password)
        print(f"2. commands done in {second.seconds:.1f} s", flush=True)
        post_timeout = DRIFT_INTERVAL + args.drifting * 1.5 + 30  # the drift job posts 1 per second
        third, survivor = takeover(replicas, slack, argocd, args.drifting, limit, scans_after=2,
                                   post_timeout=post_timeout)  # fmt: skip
        print(f"3. takeover done ({drift_posts(slack)} drift posts)", flush=True)
        problems = [p for r, n in zip(replicas, quiet, strict=True) for p in r.problems[n:]]
        for replica in replicas:
            replica.stop()
        fourth = compare(audit_url, password, root / "appends.db", args.threads, args.appends)
    report(args, first, second, third, fourth, problems, limit)
    took = time.monotonic() - started
    print(f"total {took:.0f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    passed = first.ok and second.ok and third.ok and all(a.chain_ok for a in fourth) and survivor is not None
    return 0 if passed else 1


def stop_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.stop()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(
    args: argparse.Namespace, first: Approvals, second: Commands, third: Takeover, fourth: list[Appends],
    problems: list[str], limit: float,
) -> None:  # fmt: skip
    n = first.requested
    print()
    print(f"1. approvals: {n} promotions, each clicked twice at once (one click per replica) "
          f"in {first.seconds:.1f} s ({n / first.seconds:.1f}/s, {args.workers} in flight)")  # fmt: skip
    print(f"   commits {first.commits}, promotions {dict(first.statuses)}, "
          f"approve rows {dict(first.outcomes)}, click HTTP {dict(first.http)}, "
          f"'already' replies {first.already}")  # fmt: skip
    twice = first.commits - first.statuses["committed"]
    print(f"   committed twice: {twice} (commits minus committed promotions)")
    for error in first.errors[:10]:
        print(f"   problem: {error}")
    print(f"   {verdict(first.ok)}: exactly {n} commits and {n} approvals, no other error replies")
    print(f"2. chain: {second.sent} status commands from {args.senders} senders in {second.seconds:.1f} s: "
          f"{second.per_second:.0f} commands/s; answered {second.answered}, busy {second.busy}, "
          f"HTTP errors {second.http_errors}")  # fmt: skip
    said = second.verify_output.splitlines()[-1] if second.verify_output else "(no output)"
    print(f"   audit verify: {said}; rows {second.rows}")
    print(f"   {verdict(second.ok)}: verify OK, rows >= {second.sent}, every command answered, 0 busy")
    print(f"2b. leaders before the kill: {third.leaders_before}; incident posts {third.posted_before} of "
          f"{third.drifting}")  # fmt: skip
    print(f"3. takeover after kill -9: {third.takeover:.2f} s (limit {limit:g} s = lease_duration + "
          f"retry_period); {third.scans_after} scans after it; incident posts {third.posted_after} "
          f"({third.posted_after - third.posted_before} new)")  # fmt: skip
    print(
        f"   {verdict(third.ok)}: one leader, {third.drifting} posts, takeover <= {limit:g} s, 0 duplicates"
    )
    pg, lite = fourth
    ratio = pg.per_second / lite.per_second if lite.per_second else float("nan")
    print(f"4. audit appends ({args.threads} threads x {args.appends}): PostgreSQL {pg.per_second:,.0f}/s, "
          f"SQLite {lite.per_second:,.0f}/s, PostgreSQL / SQLite {ratio:.2f}x; chains "
          f"{'OK' if pg.chain_ok and lite.chain_ok else 'BROKEN'}")  # fmt: skip
    # Counted by their text without times and paths, so one kind of warning is one line.
    kinds = Counter(
        re.sub(r"\d{4}-\d\d-\d\d[ T][\d:.]+( UTC)?|'file://[^']*'", "…", p)[:200] for p in problems
    )
    for problem, times in kinds.most_common(10):
        print(f"   bot log ({times}x): {problem}")
    print()
    print(f"{'target':<44} {'figure':<34} result")
    rows = [
        (f"{n} approvals x2 -> {n} commits", f"{first.commits} commits, {first.outcomes['ok']} ok", first.ok),
        (f"{second.sent} commands -> one valid chain", f"{second.rows} rows, {second.per_second:.0f}/s",
         second.ok),
        (f"takeover <= {limit:g} s, 0 duplicate posts",
         f"{third.takeover:.2f} s, {third.posted_after - third.drifting:+d} posts", third.ok),
        ("audit appends/s PostgreSQL vs SQLite",
         f"{pg.per_second:,.0f} vs {lite.per_second:,.0f} ({ratio:.2f}x)", pg.chain_ok and lite.chain_ok),
    ]  # fmt: skip
    for target, figure, ok in rows:
        print(f"{target:<44} {figure:<34} {verdict(ok)}")


if __name__ == "__main__":
    raise SystemExit(main())
