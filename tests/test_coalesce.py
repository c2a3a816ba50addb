"""CoalescingBackend over the real Argo CD backend and the fake Argo CD server: identical reads in
flight share one request, status lists live for the TTL, the bot's own writes forget them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.config import ConfigError, parse_config_text
from sandbox.argocd_fake import FakeArgoCD
from services.argocd import ArgoCDBackend
from services.backend import AppNotFound, AppRef, AppStatus, GitOpsBackend, SyncRequest
from services.coalesce import CoalescingBackend
from tests.argocd_fixtures import backend_for, wait_until

# Fully named refs: the backend need not list apps to resolve them, so each read is one GET.
WEB = AppRef("argocd", "sandbox", "web", namespace="argocd", project="default")
API = AppRef("argocd", "sandbox", "api", namespace="argocd", project="default")
APPS = "/api/v1/applications"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeArgoCD]:
    server = FakeArgoCD(operation_seconds=0.2, tick=0.02).start()
    server.add_app("web", labels={"team": "web"})
    server.add_app("api", labels={"team": "api"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inner(fake: FakeArgoCD) -> Iterator[ArgoCDBackend]:
    backend = backend_for(fake)
    try:
        yield backend
    finally:
        backend.client.close()


class Counted:
    """What the wrapper reports as coalesced, by operation (what feeds the metric)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> None:
        with self._lock:
            self.calls.append(operation)


def gets(fake: FakeArgoCD, name: str) -> list[dict[str, list[str]]]:
    """The queries of the GETs the fake received for one app."""
    path = f"{APPS}/{name}"
    return [r.query for r in fake.requests(path) if r.path == path and r.method == "GET"]


def lists(fake: FakeArgoCD) -> int:
    return len([r for r in fake.requests(APPS) if r.path == APPS and r.method == "GET"])


def together(count: int, call: Callable[[int], object]) -> list[object]:
    """`call(i)` from `count` threads released at the same moment; results or exceptions."""
    start = threading.Barrier(count)

    def one(i: int) -> object:
        start.wait()
        try:
            return call(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_the_wrapper_is_a_gitops_backend_with_the_inner_identity(inner: ArgoCDBackend) -> None:
    wrapper = CoalescingBackend(inner, ttl=5)
    assert isinstance(wrapper, GitOpsBackend)
    assert (wrapper.kind, wrapper.instance, wrapper.poll_interval) == ("argocd", "sandbox", 0.05)
    wrapper.poll_interval = 0.5  # the watcher and the inner `wait` read one value
    assert inner.poll_interval == 0.5


def test_fifty_identical_status_reads_cost_one_request(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    counted = Counted()
    wrapper = CoalescingBackend(inner, ttl=5, on_coalesced=counted)
    fake.set_latency(1.0)
    results = together(50, lambda _: wrapper.get(WEB))
    sent = len(gets(fake, "web"))
    assert 1 <= sent <= 2  # a straggler arriving after the first answer may start a second
    assert all(isinstance(r, AppStatus) and (r.ref.name, r.health) == ("web", "Healthy") for r in results)
    assert counted.calls == ["get"] * (50 - sent)
    assert wrapper.in_flight == 0  # nothing kept once the call ended


def test_a_status_read_after_the_shared_one_ended_is_a_new_request(
    fake: FakeArgoCD, inner: ArgoCDBackend
) -> None:
    wrapper = CoalescingBackend(inner, ttl=5)
    wrapper.get(WEB)
    fake.set_health("web", "Degraded", "crash loop")
    assert wrapper.get(WEB).health == "Degraded"
    assert len(gets(fake, "web")) == 2


def test_different_apps_and_refreshes_are_never_merged(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    wrapper = CoalescingBackend(inner, ttl=5)
    fake.set_latency(0.5)
    asked = [(WEB, False), (API, False), (WEB, True)]
    results = together(30, lambda i: wrapper.get(asked[i % 3][0], refresh=asked[i % 3][1]))
    assert [r.ref.name for r in results if isinstance(r, AppStatus)] == ["web", "api", "web"] * 10
    web = gets(fake, "web")
    assert len(gets(fake, "api")) >= 1
    assert any(q.get("refresh") == ["normal"] for q in web)  # the refresh asked Argo CD to refresh
    assert any("refresh" not in q for q in web)


def test_a_failure_reaches_every_waiter_and_is_not_kept(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    counted = Counted()
    wrapper = CoalescingBackend(inner, ttl=5, on_coalesced=counted)
    fake.set_latency(1.0)
    fake.fail_next(path=f"{APPS}/web", method="GET", status=404)
    with ThreadPoolExecutor(max_workers=20) as pool:
        first = pool.submit(wrapper.get, WEB)
        wait_until(lambda: wrapper.in_flight == 1, what="the first read to be in flight")
        waiters = [pool.submit(wrapper.get, WEB) for _ in range(19)]
        wait_until(lambda: len(counted.calls) == 19, what="every waiter to join the first read")
        errors = [f.exception(timeout=10) for f in [first, *waiters]]
    assert all(isinstance(e, AppNotFound) for e in errors)
    assert len(gets(fake, "web")) == 1
    fake.set_latency(0)
    assert wrapper.get(WEB).ref.name == "web"  # the next call asks again
    assert len(gets(fake, "web")) == 2


def test_status_lists_are_reused_for_the_ttl(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    clock, counted = Clock(), Counted()
    wrapper = CoalescingBackend(inner, ttl=5, on_coalesced=counted, clock=clock)
    first = wrapper.list_apps()
    first.clear()  # one caller changing its list changes nobody else's
    clock.now += 4.9
    assert sorted(a.ref.name for a in wrapper.list_apps()) == ["api", "web"]
    assert (lists(fake), counted.calls) == (1, ["list_apps"])
    clock.now += 0.2
    wrapper.list_apps()
    assert lists(fake) == 2
    assert [a.ref.name for a in wrapper.list_apps(selector="team=web")] == ["web"]  # its own query
    assert lists(fake) == 3


def test_drift_scan_lists_are_never_reused(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    wrapper = CoalescingBackend(inner, ttl=60)
    wrapper.list_apps(deployed=True)
    wrapper.list_apps(deployed=True)
    assert lists(fake) == 2


def test_identical_lists_in_flight_share_one_request_even_without_a_cache(
    fake: FakeArgoCD, inner: ArgoCDBackend
) -> None:
    wrapper = CoalescingBackend(inner, ttl=0)
    fake.set_latency(1.0)
    results = together(20, lambda _: wrapper.list_apps())
    assert all(isinstance(r, list) and len(r) == 2 for r in results)
    shared = lists(fake)
    assert 1 <= shared <= 2
    fake.set_latency(0)
    wrapper.list_apps()  # 0s: nothing is kept afterwards
    wrapper.list_apps()
    assert lists(fake) == shared + 2


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda w: w.sync(WEB, SyncRequest()), id="sync"),
        pytest.param(lambda w: w.set_auto_sync(WEB, True), id="set_auto_sync"),
        pytest.param(lambda w: w.rollback(w.plan_rollback(WEB, None)), id="rollback"),
    ],
)
def test_the_bots_own_writes_forget_the_cached_list(
    fake: FakeArgoCD, inner: ArgoCDBackend, write: Callable[[CoalescingBackend], object]
) -> None:
    wrapper = CoalescingBackend(inner, ttl=60, clock=Clock())  # the clock never moves: only a write
    wrapper.list_apps()
    wrapper.list_apps()
    assert lists(fake) == 1
    write(wrapper)
    wrapper.list_apps()
    assert lists(fake) == 2


def test_a_read_from_before_a_write_is_not_shared_after_it(fake: FakeArgoCD, inner: ArgoCDBackend) -> None:
    counted = Counted()
    wrapper = CoalescingBackend(inner, ttl=60, on_coalesced=counted)
    fake.set_latency(3.0)  # long enough to write and read again while it runs
    with ThreadPoolExecutor(max_workers=1) as pool:
        before = pool.submit(wrapper.get, WEB)
        wait_until(lambda: wrapper.in_flight == 1, what="the read to be in flight")
        time.sleep(0.5)  # for its request to reach the fake, which reads the latency then
        fake.set_latency(0)
        wrapper.set_auto_sync(WEB, True)
        after = wrapper.get(WEB)  # its own request, not the one started before the write
        assert not before.done()
        before.result(timeout=10)
    assert after.auto_sync is True
    assert counted.calls == []
    assert len(gets(fake, "web")) == 2


def test_the_end_of_a_polled_operation_forgets_the_cached_list(
    fake: FakeArgoCD, inner: ArgoCDBackend
) -> None:
    wrapper = CoalescingBackend(inner, ttl=60, clock=Clock())
    fake.push_revision("web", replicas=3)
    wrapper.sync(WEB, SyncRequest())
    wrapper.list_apps()  # taken while the sync runs
    wait_until(lambda: not wrapper.poll(WEB).operation_in_progress, what="the sync to end")
    assert next(a for a in wrapper.list_apps() if a.ref.name == "web").sync == "Synced"
    assert lists(fake) == 2


# -- configuration -----------------------------------------------------------------------------


def _problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, environ={})
    return info.value.problems


def test_read_cache_and_max_watches_defaults() -> None:
    operations = parse_config_text("", environ={}).settings.operations
    assert (operations.read_cache.total_seconds(), operations.max_watches) == (5, 500)
    operations = parse_config_text(
        "operations: {read_cache: 0s, max_watches: 1}\n", environ={}
    ).settings.operations
    assert (operations.read_cache.total_seconds(), operations.max_watches) == (0, 1)


def test_read_cache_and_max_watches_bounds_are_reported_at_their_keys() -> None:
    assert _problems("operations: {read_cache: -1s, max_watches: 0}\n") == (
        "operations.read_cache: not a duration: '-1s' (use e.g. 90s, 2m, 1h30m, 1d, or a number of seconds)",
        "operations.max_watches: must be at least 1, got 0",
    )
    assert _problems("operations: {max_watches: lots}\n") == (
        "operations.max_watches: expected a whole number, got the text 'lots'",
    )
