"""Ack latency under load: 200 signed slash commands, 20 at a time, each with 2 s of background work.

Runs the real app on the real HTTP server (waitress) against the local fake Slack and prints
p50 / p99 of the time from sending a command to receiving its ack. Target: p99 < 100 ms.

    .venv/bin/python bench/ack_latency.py [--commands 200] [--concurrency 20] [--work 2.0]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_runtime
from bot.config import parse_config_text
from handlers.blocks import Reply, message, section
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.grammar.parser import CommandRequest
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender

SECRET = "bench-signing-secret-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--work", type=float, default=2.0, help="seconds of background work per command")
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # queue-depth notes are expected here

    def slow(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        time.sleep(args.work)
        return message("done", [section(f"{request.app} is Healthy")])

    with tempfile.TemporaryDirectory() as tmp, FakeSlack().start() as fake:
        env = {
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
        }
        yaml = f"audit:\n  database: {Path(tmp) / 'audit.db'}\nserver:\n  workers: 64\n  queue_limit: 256\n"
        loaded = parse_config_text(yaml, environ=env)
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", extra_executors={"status": slow}).start()
        sender = SlackSender(f"http://127.0.0.1:{runtime.server.port}/slack/events", SECRET, fake)
        try:
            sender.slash("help")  # warm up connections and caches
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(lambda i: sender.slash(f"status app-{i}"), range(args.commands)))
            wall = time.perf_counter() - started
            busy = sum(1 for r in results if r.json_body and "busy" in str(r.json_body.get("text", "")))
            failed = sum(1 for r in results if r.status != 200)
            deadline = time.monotonic() + args.work * args.commands / 32 + 30
            while runtime.deps.audit.count() < args.commands + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            audited = runtime.deps.audit.count() - 1
        finally:
            runtime.stop()
    acks = [r.elapsed * 1000 for r in results]
    print(
        f"commands: {args.commands}, concurrency: {args.concurrency}, background work: {args.work:.1f}s each"
    )
    print(f"ack latency p50: {statistics.median(acks):.1f} ms")
    print(f"ack latency p99: {percentile(acks, 99):.1f} ms")
    print(f"ack latency max: {max(acks):.1f} ms")
    print(f"non-200 acks: {failed}, 'busy' acks: {busy}, audited after the work: {audited}")
    print(f"wall time to send all commands: {wall:.2f} s")
    target_met = percentile(acks, 99) < 100 and failed == 0
    print(f"target p99 < 100 ms: {'met' if target_met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
