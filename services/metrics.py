"""Prometheus metrics, on a registry of our own so several apps can live in one process (tests)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Ack latency buckets focus on the range that matters against Slack's 3 s limit.
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Queue waits run from nothing (a free worker) to minutes (every worker busy behind slow jobs).
_WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.commands = Counter(
            "gitops_bot_commands",
            "Slash commands and button clicks handled, by subcommand and outcome",
            ["subcommand", "outcome"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "gitops_bot_ack_latency_seconds",
            "Time from receiving a Slack request to acknowledging it",
            ["kind"],
            buckets=_ACK_BUCKETS,
            registry=self.registry,
        )
        self.backend_latency = Histogram(
            "gitops_bot_backend_request_seconds",
            "Latency of calls to Argo CD, Kubernetes, Git and Slack",
            ["backend", "operation"],
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "gitops_bot_backend_errors",
            "Failed calls to external systems, by kind of failure",
            ["backend", "operation", "kind"],
            registry=self.registry,
        )
        self.jobs_active = Gauge(
            "gitops_bot_jobs_active", "Background jobs running or queued", registry=self.registry
        )
        self.watches_active = Gauge(
            "gitops_bot_watches_active",
            "Running operations (syncs, rollbacks, reconciles) the bot is following",
            registry=self.registry,
        )
        self.job_queue_wait = Histogram(
            "gitops_bot_job_queue_wait_seconds",
            "Time a background job waited in the queue before a worker took it",
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.coalesced = Counter(
            "gitops_bot_coalesced_requests",
            "Backend reads answered by an identical request already in flight or by the read cache",
            ["backend", "operation"],
            registry=self.registry,
        )

        self.deployments = Counter(
            "gitops_bot_deployments",
            "Deploys the feed found, by app, environment and result (succeeded / failed)",
            ["app", "env", "result"],
            registry=self.registry,
        )
        self.lead_time = Histogram(
            "gitops_bot_lead_time_seconds",
            "Lead time for changes: the deployed commit's time to the deploy's end",
            ["app", "env"],
            # an hour, a day, a week, a month: DORA's band edges, with finer steps below an hour
            buckets=(300, 900, 1800, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400, 180 * 86400),
            registry=self.registry,
        )

    def observe_deploy(self, app: str, env: str, result: str, lead_time: float | None) -> None:
        self.deployments.labels(app, env, result).inc()
        if lead_time is not None and lead_time >= 0:
            self.lead_time.labels(app, env).observe(lead_time)

    def observe_command(self, subcommand: str, outcome: str) -> None:
        self.commands.labels(subcommand=subcommand, outcome=outcome).inc()

    def observe_ack(self, kind: str, seconds: float) -> None:
        self.ack_latency.labels(kind=kind).observe(seconds)

    def observe_queue_wait(self, seconds: float) -> None:
        self.job_queue_wait.observe(seconds)

    def observe_coalesced(self, backend: str, operation: str) -> None:
        self.coalesced.labels(backend=backend, operation=operation).inc()

    @contextmanager
    def backend_call(self, backend: str, operation: str) -> Iterator[None]:
        """Time a call to an external system and count it as an error if it raises."""
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.backend_errors.labels(backend=backend, operation=operation, kind=type(exc).__name__).inc()
            raise
        finally:
            self.backend_latency.labels(backend=backend, operation=operation).observe(
                time.perf_counter() - start
            )

    def render(self) -> bytes:
        return generate_latest(self.registry)
