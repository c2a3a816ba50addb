"""`/gitops status --all` at scale: the fake Argo CD with 5,000 and 20,000 applications.

Side by side in one run, interleaved so all see the same machine noise, for each size:

- floor:  one trimmed `GET /api/v1/applications?fields=…` (the bot's fields) + `json.loads`, httpx;
- before: the pre-issue-20 path — `ArgoCDBackend.list_apps` (a full `AppStatus` per app) →
          `status_overview`;
- bot:    the command's path — `GitOpsService.overview` (built by `bot.wiring`, through the
          coalescing layer with the read cache off, so every run lists) → `status_overview`.

Prints medians, the ratio to the floor (target: bot <= 3x at every size), requests and bytes per
run, peak traced memory of one run each, and that both paths render the same message.

    .venv/bin/python bench/argocd_scale.py [--apps 5000,20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bot.config import parse_config_text
from bot.wiring import build_services
from handlers.blocks import Reply
from handlers.gitops.status import status_overview
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.blockkit import validate_blocks
from services.argocd import ArgoCDBackend, ArgoCDClient
from services.argocd.client import DEFAULT_LIST_FIELDS
from services.metrics import Metrics
from services.settings.model import ArgoCDInstance
from services.store.sqlite import SqliteDatabase

TARGET_RATIO = 3.0
Run = Callable[[], object]


def _fill(fake: FakeArgoCD, apps: int) -> None:
    fake.bulk_add(apps)
    # Some apps need attention, so the rendered list is not empty.
    for i in range(0, apps, 50):
        fake.set_health(f"app-{i:05d}", "Degraded", "CrashLoopBackOff")


def _config(tmp: Path, url: str) -> str:
    return (
        f"git: {{cache_dir: {tmp / 'git'}}}\n"
        "operations: {read_cache: 0s}\n"  # every run lists: the cost of a cold status --all
        f'argocd: [{{name: main, url: "{url}", token_env: ARGOCD_TOKEN}}]\n'
    )


def _peak(run: Run) -> float:
    """MB allocated at the peak of one run (tracemalloc: Python objects, msgspec's included)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench(apps: int, runs: int) -> bool:
    with FakeArgoCD() as fake, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _fill(fake, apps)
        print(f"\napps: {apps:,} (fake filled in {time.perf_counter() - started:.1f} s), runs: {runs}")
        instance = ArgoCDInstance(name="main", url=fake.base_url, token_env="ARGOCD_TOKEN")
        legacy = ArgoCDBackend(instance, ArgoCDClient(instance, JWT_TOKEN))
        loaded = parse_config_text(_config(Path(tmp), fake.base_url), environ={"ARGOCD_TOKEN": JWT_TOKEN})
        database = SqliteDatabase(Path(tmp) / "audit.db")
        services = build_services(loaded, database, Metrics())
        http = httpx.Client(headers={"Authorization": f"Bearer {JWT_TOKEN}"}, timeout=120)
        params = {"fields": ",".join(DEFAULT_LIST_FIELDS)}
        replies: dict[str, Reply] = {}

        def floor() -> object:
            response = http.get(fake.base_url + "/api/v1/applications", params=params)
            return json.loads(response.content)

        def before() -> object:
            replies["before"] = status_overview(legacy.list_apps(), [], "Apps")
            return replies["before"]

        def bot() -> object:
            overview = services.ops.overview()
            locks = services.locks.active(now=datetime.now(UTC))
            replies["bot"] = status_overview(overview.apps, overview.unreachable, "Apps", locks=locks)
            return replies["bot"]

        paths: dict[str, Run] = {"floor": floor, "before": before, "bot": bot}
        for run in paths.values():  # connections and imports warm, as in a running bot
            run()
        timings: dict[str, list[float]] = {name: [] for name in paths}
        requests: dict[str, tuple[int, int]] = {}
        for _ in range(runs):
            for name, run in paths.items():
                gc.collect()
                fake.clear_requests()
                begin = time.perf_counter()
                run()
                timings[name].append(time.perf_counter() - begin)
                sent = fake.requests("/api/v1/applications")
                requests[name] = (len(sent), sum(r.bytes_sent for r in sent))
        fields = {json.dumps(r.query.get("fields")) for r in fake.requests("/api/v1/applications")}
        peaks = {name: _peak(run) for name, run in paths.items()}
        http.close()
        database.close()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name in paths:
        count, size = requests[name]
        ratio = medians[name] / medians["floor"]
        print(
            f"{name:>7}: {medians[name] * 1000:7.0f} ms  {ratio:4.1f}x floor  "
            f"peak {peaks[name]:6.1f} MB  requests: {count}  bytes: {size:,}"
        )
    same = replies["before"] == replies["bot"]
    valid = not validate_blocks(list(replies["bot"].blocks))
    print(f"message: {len(replies['bot'].blocks)} blocks, {'valid' if valid else 'INVALID'}, "
          f"{'identical' if same else 'DIFFERENT'} before/bot; same fields= on every request: "
          f"{'yes' if len(fields) == 1 else 'NO'}")  # fmt: skip
    ratio = medians["bot"] / medians["floor"]
    met = ratio <= TARGET_RATIO and requests["bot"][0] == 1 and same and valid
    was = medians["before"] / medians["floor"]
    print(f"target (bot <= {TARGET_RATIO:.0f}x floor, 1 request, same message): "
          f"{'met' if met else 'NOT met'} ({ratio:.1f}x; before: {was:.1f}x)")  # fmt: skip
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="5000,20000", help="sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = [bench(int(size), args.runs) for size in args.apps.split(",")]
    print(f"\nall targets: {'met' if all(results) else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
