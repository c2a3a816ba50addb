"""Drift scans at scale: 5,000 Argo CD apps and 2,000 Flux objects, 100 of them drifting.

The fakes run in a child process, so the peak RSS printed is the bot's alone. Prints the median
and worst scan time over N scans, the bot's peak RSS, and the Slack posts made (every incident
must be posted exactly once: 0 duplicates). Targets: scan <= 2 s, peak RSS <= 150 MB.

    .venv/bin/python bench/drift_scan.py [--scans 100] [--argocd 5000] [--flux 2000] [--drifting 100]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_runtime
from bot.config import parse_config_text
from sandbox.slack_api import FakeSlack
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from services.flux import build_flux_backends
from services.git import RepoCache


def fakes(conn: Connection, tmp: str, argocd_apps: int, flux_objects: int, drifting: int) -> None:
    from sandbox.argocd_fake import FakeArgoCD
    from sandbox.flux_fake import FakeKubernetes

    argocd = FakeArgoCD().start()
    argocd.bulk_add(argocd_apps, prefix="app-")
    k8s = FakeKubernetes().start()
    k8s.bulk_add(kustomizations=flux_objects, helm_releases=0, namespaces=20)
    for i in range(drifting // 2):
        argocd.set_health(f"app-{i * 7:05d}", "Degraded", "CrashLoopBackOff")
    for i in range(drifting - drifting // 2):  # bulk names: app-NNNN in team-(N % 20)
        k8s.stall(
            "Kustomization", f"app-{i:04d}", namespace=f"team-{i % 20:02d}", reason="InvalidCELExpression"
        )
    conn.send((argocd.base_url, str(k8s.write_kubeconfig(Path(tmp) / "kubeconfig"))))
    conn.recv()  # until the parent is done
    argocd.stop()
    k8s.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--argocd", type=int, default=5000)
    parser.add_argument("--flux", type=int, default=2000)
    parser.add_argument("--drifting", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(
            target=fakes, args=(child, tmp, args.argocd, args.flux, args.drifting), daemon=True
        )
        proc.start()
        argocd_url, kubeconfig = parent.recv()
        yaml = f"""
slack: {{alerts_channel: C0ALERTS}}
argocd: [{{name: main, url: "{argocd_url}", token_env: ARGOCD_TOKEN}}]
flux: [{{name: prod, kubeconfig: "{kubeconfig}", context: sandbox}}]
drift: {{digest_threshold: 1000}}
audit: {{database: "{Path(tmp) / "audit.db"}"}}
"""
        from sandbox.argocd_fake import JWT_TOKEN

        env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": "s" * 32,
               "SLACK_API_URL": slack.base_url, "ARGOCD_TOKEN": JWT_TOKEN}  # fmt: skip
        loaded = parse_config_text(yaml, environ=env)
        repos = RepoCache(Path(tmp) / "git", (), {})
        backends: dict[str, GitOpsBackend] = {
            **{f"argocd:{n}": b for n, b in build_argocd_backends(loaded.settings, loaded.secrets).items()},
            **{
                f"flux:{n}": b for n, b in build_flux_backends(loaded.settings, loaded.secrets, repos).items()
            },
        }
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends)
        assert runtime.drift is not None
        runtime.drift.pace = 0.0
        try:
            timings = []
            for _ in range(args.scans):
                started = time.perf_counter()
                runtime.drift.run()
                timings.append(time.perf_counter() - started)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            posts = [c for c in slack.recorded("chat.postMessage") if c.args.get("channel") == "C0ALERTS"]
            titles = Counter(str(c.args.get("text")) for c in posts)
            duplicates = sum(n - 1 for n in titles.values() if n > 1)
            open_incidents = len(runtime.drift.store.open_incidents())
        finally:
            runtime.stop()
            parent.send("done")
            proc.join(timeout=30)
    print(f"apps: {args.argocd} Argo CD + {args.flux} Flux; drifting: {args.drifting}; scans: {args.scans}")
    print(
        f"scan time median: {statistics.median(timings) * 1000:.0f} ms, worst: {max(timings) * 1000:.0f} ms"
    )
    print(f"bot peak RSS: {rss_mb:.0f} MB (fakes in a separate process)")
    print(f"slack posts: {len(posts)}, open incidents: {open_incidents}, duplicate posts: {duplicates}")
    met = statistics.median(timings) <= 2.0 and rss_mb <= 150 and duplicates == 0
    print(f"target (scan <= 2 s, peak RSS <= 150 MB, 0 duplicates): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
