"""`/gitops status --all` at scale: the fake Argo CD with 5,000 applications.

End to end — HTTP request, JSON parse, records, Block Kit rendering — with and without
`fields=` trimming, side by side in one run. Prints time (median of N runs), requests and
bytes. Target: one request, <= 1 s, >= 5x fewer bytes with trimming.

    .venv/bin/python bench/argocd_scale.py [--apps 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from handlers.blocks import Reply
from handlers.gitops.status import status_overview
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.blockkit import validate_blocks
from services.argocd import ArgoCDBackend, ArgoCDClient
from services.argocd.client import DEFAULT_LIST_FIELDS
from services.settings.model import ArgoCDInstance


def run_once(backend: ArgoCDBackend, fake: FakeArgoCD) -> tuple[float, int, int, Reply]:
    fake.clear_requests()
    started = time.perf_counter()
    apps = backend.list_apps()
    reply = status_overview(apps, [], "Apps")
    elapsed = time.perf_counter() - started
    requests = fake.requests("/api/v1/applications")
    return elapsed, len(requests), sum(r.bytes_sent for r in requests), reply


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with FakeArgoCD() as fake:
        fake.bulk_add(args.apps)
        # Some apps need attention, so the rendered list is not empty.
        for i in range(0, args.apps, 50):
            fake.set_health(f"app-{i:05d}", "Degraded", "CrashLoopBackOff")
        instance = ArgoCDInstance(name="main", url=fake.base_url, token_env="ARGOCD_TOKEN")
        results: dict[str, list[tuple[float, int, int, Reply]]] = {"trimmed": [], "full": []}
        backends = {
            name: ArgoCDBackend(
                instance,
                ArgoCDClient(instance, SecretStr(JWT_TOKEN).get_secret_value()),
                list_fields=fields,
            )
            for name, fields in (("trimmed", DEFAULT_LIST_FIELDS), ("full", None))
        }
        for _ in range(args.runs):  # interleaved, so both see the same machine noise
            for name, backend in backends.items():
                gc.collect()
                results[name].append(run_once(backend, fake))
    print(f"apps: {args.apps}, runs: {args.runs} (median shown)")
    for name, rows in results.items():
        seconds = statistics.median(r[0] for r in rows)
        requests, size, reply = rows[-1][1], rows[-1][2], rows[-1][3]
        valid = "valid" if not validate_blocks(list(reply.blocks)) else "INVALID"
        print(
            f"{name:>8}: {seconds * 1000:7.0f} ms  requests: {requests}  bytes: {size:,}  "
            f"blocks: {len(reply.blocks)} ({valid})"
        )
    trimmed = statistics.median(r[0] for r in results["trimmed"])
    ratio = results["full"][-1][2] / max(1, results["trimmed"][-1][2])
    speedup = statistics.median(r[0] for r in results["full"]) / trimmed
    print(f"bytes full / trimmed: {ratio:.1f}x   time full / trimmed: {speedup:.1f}x")
    met = results["trimmed"][-1][1] == 1 and trimmed <= 1.0 and ratio >= 5
    print(f"target (1 request, <= 1 s, >= 5x fewer bytes): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
