"""Leader election against the fake Kubernetes API server (Leases served over real HTTP).

Durations are short (a 1 s lease) so the whole file runs in a few seconds; the rules are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.flux_fake import FakeKubernetes
from services.leader.election import (
    AlwaysLeader,
    Leadership,
    LeaseLeadership,
    build_leadership,
    default_identity,
)
from services.settings.model import Settings

NS = "gitops-bot"
LEASE = "gitops-bot-drift"
DURATION, DEADLINE, PERIOD = 1.0, 0.8, 0.1  # leaseDurationSeconds is whole seconds


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes(leases=True).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kubeconfig(kube: FakeKubernetes, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def make(kubeconfig: Path) -> Iterator[Callable[..., LeaseLeadership]]:
    """Builds started candidates, each with its own ApiClient (as separate replicas would have)."""
    made: list[LeaseLeadership] = []

    def build(identity: str, *, start: bool = True, **options: Any) -> LeaseLeadership:
        api = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)  # type: ignore[no-untyped-call]
        timing = {"lease_duration": DURATION, "renew_deadline": DEADLINE, "retry_period": PERIOD}
        leader = LeaseLeadership(api, namespace=NS, name=LEASE, identity=identity, **{**timing, **options})
        made.append(leader)
        if start:
            leader.start()
        return leader

    yield build
    for leader in made:
        leader.stop()


def lease_api(kubeconfig: Path) -> client.CoordinationV1Api:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return client.CoordinationV1Api(api)


def read_lease(kubeconfig: Path) -> client.V1LeaseSpec:
    spec = lease_api(kubeconfig).read_namespaced_lease(LEASE, NS).spec
    assert spec is not None
    return spec


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_one_instance_acquires_and_the_lease_says_so(
    make: Callable[..., LeaseLeadership], kubeconfig: Path
) -> None:
    before = datetime.now(UTC)
    leader = make("pod-a")
    wait_for(leader.is_leader, 2.0)
    spec = read_lease(kubeconfig)
    assert spec.holder_identity == "pod-a"
    assert spec.lease_duration_seconds == 1
    assert spec.lease_transitions == 0
    assert spec.acquire_time is not None
    assert spec.renew_time is not None
    assert before <= spec.acquire_time <= spec.renew_time
    first_renewal = spec.renew_time
    wait_for(lambda: read_lease(kubeconfig).renew_time != first_renewal, 1.0)  # it keeps renewing
    assert read_lease(kubeconfig).acquire_time == spec.acquire_time  # a renewal keeps acquireTime


def test_two_instances_never_both_lead(make: Callable[..., LeaseLeadership]) -> None:
    a, b = make("pod-a"), make("pod-b")
    wait_for(lambda: a.is_leader() or b.is_leader(), 2.0)
    leaders_seen: set[str] = set()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        states = (a.is_leader(), b.is_leader())
        assert states.count(True) == 1, states  # exactly one, at every sample
        leaders_seen.add("pod-a" if states[0] else "pod-b")
        time.sleep(0.005)
    assert len(leaders_seen) == 1  # a healthy leader keeps the lease: no flapping


def test_the_leader_stops_and_the_other_takes_over(
    make: Callable[..., LeaseLeadership], kubeconfig: Path
) -> None:
    a = make("pod-a")
    wait_for(a.is_leader, 2.0)
    b = make("pod-b")
    time.sleep(3 * PERIOD)
    assert not b.is_leader()
    a.stop()
    assert not a.is_leader()
    took = wait_for(b.is_leader, DURATION)  # released, so well within lease_duration
    assert took < DURATION
    spec = read_lease(kubeconfig)
    assert (spec.holder_identity, spec.lease_transitions) == ("pod-b", 1)
    b.stop()
    released = read_lease(kubeconfig)
    assert released.holder_identity == ""  # cleared on stop, as client-go's ReleaseOnCancel
    assert released.lease_transitions == 1


def test_an_abandoned_lease_is_taken_over_only_after_it_expires(
    make: Callable[..., LeaseLeadership], kubeconfig: Path
) -> None:
    now = datetime.now(UTC)
    spec = client.V1LeaseSpec(
        holder_identity="crashed-pod",
        lease_duration_seconds=1,
        acquire_time=now,
        renew_time=now,
        lease_transitions=4,
    )
    lease_api(kubeconfig).create_namespaced_lease(
        NS, client.V1Lease(metadata=client.V1ObjectMeta(name=LEASE), spec=spec)
    )
    start = time.monotonic()
    b = make("pod-b")
    wait_for(b.is_leader, DURATION + 1.0)
    assert time.monotonic() - start >= DURATION  # never while the crashed holder's lease was valid
    got = read_lease(kubeconfig)
    assert (got.holder_identity, got.lease_transitions) == ("pod-b", 5)
    assert got.acquire_time is not None
    assert got.acquire_time > now


def test_api_down_loses_leadership_after_the_renew_deadline_and_regains_it(
    kube: FakeKubernetes, make: Callable[..., LeaseLeadership]
) -> None:
    a = make("pod-a")
    wait_for(a.is_leader, 2.0)
    kube.go_down()
    down = time.monotonic()
    lost = wait_for(lambda: not a.is_leader(), DEADLINE + 0.5)
    # The last renewal began at most one retry period (plus a request) before the outage.
    assert DEADLINE - PERIOD - 0.3 <= lost <= DEADLINE + 0.05
    time.sleep(max(0.0, DURATION - (time.monotonic() - down)))
    assert not a.is_leader()
    kube.come_up()
    wait_for(a.is_leader, 2.0)


def test_after_an_outage_exactly_one_of_two_leads(
    kube: FakeKubernetes, make: Callable[..., LeaseLeadership]
) -> None:
    a, b = make("pod-a"), make("pod-b")
    wait_for(lambda: a.is_leader() or b.is_leader(), 2.0)
    kube.go_down()
    wait_for(lambda: not (a.is_leader() or b.is_leader()), DEADLINE + 0.5)
    time.sleep(DURATION)  # long enough that the follower may consider the lease expired
    kube.come_up()
    wait_for(lambda: a.is_leader() or b.is_leader(), 2.0)
    for _ in range(50):
        assert [a.is_leader(), b.is_leader()].count(True) == 1
        time.sleep(0.01)


def test_is_leader_flips_exactly_at_the_renew_deadline(
    kube: FakeKubernetes, make: Callable[..., LeaseLeadership]
) -> None:
    now = [0.0]  # a manual clock: it moves only when the test says so
    a = make("pod-a", clock=lambda: now[0])
    wait_for(a.is_leader, 2.0)
    kube.go_down()
    time.sleep(3 * PERIOD)  # any renewal in flight has finished (and failed)
    now[0] = DEADLINE - 0.001
    assert a.is_leader()
    now[0] = DEADLINE  # no renewal since the manual clock's 0: the deadline is now
    assert not a.is_leader()  # flips on the call itself, not when the thread notices


def test_timing_must_follow_the_lease_rules(make: Callable[..., LeaseLeadership]) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        make("pod-a", start=False, renew_deadline=DURATION)
    with pytest.raises(ValueError, match="identity"):
        make("", start=False)


def test_always_leader() -> None:
    leader: Leadership = AlwaysLeader()
    leader.start()
    assert leader.is_leader()
    leader.stop()
    assert leader.is_leader()


def test_build_leadership_follows_the_settings(kubeconfig: Path) -> None:
    assert isinstance(build_leadership(Settings(), "pod-a"), AlwaysLeader)
    settings = Settings.model_validate(
        {"leader": {"enabled": True, "kubeconfig": str(kubeconfig), "namespace": "ops", "lease_name": "drift",
                    "lease_duration": "3s", "renew_deadline": "2s", "retry_period": "1s"}}
    )  # fmt: skip
    leader = build_leadership(settings, "pod-a")
    assert isinstance(leader, LeaseLeadership)
    leader.start()
    try:
        wait_for(leader.is_leader, 2.0)
        spec = lease_api(kubeconfig).read_namespaced_lease("drift", "ops").spec
        assert spec is not None
        assert (spec.holder_identity, spec.lease_duration_seconds) == ("pod-a", 3)
    finally:
        leader.stop()


@pytest.mark.parametrize(
    ("leader", "message"),
    [
        ({"enabled": True}, "needs kubeconfig or in_cluster"),
        ({"in_cluster": True, "context": "x"}, "context applies only with kubeconfig"),
        (
            {"lease_duration": "10s", "renew_deadline": "10s"},
            "lease_duration > renew_deadline > retry_period",
        ),
        ({"renew_deadline": "2s"}, "lease_duration > renew_deadline > retry_period"),
    ],
)
def test_leader_settings_are_checked(leader: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.model_validate({"leader": leader})


def test_default_identity_is_the_pod_name() -> None:
    assert default_identity({"POD_NAME": "gitops-bot-7c9-x2"}) == "gitops-bot-7c9-x2"
    assert default_identity({}) != ""
    # Outside Kubernetes two processes on one host get different identities.
    assert default_identity({}) != default_identity({})


def test_the_fake_serves_leases_like_the_api_server(kube: FakeKubernetes, kubeconfig: Path) -> None:
    api = lease_api(kubeconfig)
    groups = client.ApisApi(api.api_client).get_api_versions().groups
    assert "coordination.k8s.io" in {g.name for g in groups}
    resources = client.CoordinationV1Api(api.api_client).get_api_resources().resources
    assert [(r.name, r.namespaced, r.kind) for r in resources] == [("leases", True, "Lease")]
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_lease(LEASE, NS)
    assert missing.value.status == 404
    zero = datetime(2025, 6, 17, tzinfo=UTC)  # isoformat() drops a zero fraction: Go refuses it
    body = client.V1Lease(metadata=client.V1ObjectMeta(name=LEASE), spec=client.V1LeaseSpec(renew_time=zero))
    with pytest.raises(ApiException) as bad_time:
        api.create_namespaced_lease(NS, body)
    assert bad_time.value.status == 400
    assert "2006-01-02T15:04:05.000000Z07:00" in str(bad_time.value.body)
    body.spec = client.V1LeaseSpec(renew_time=zero.replace(microsecond=5), lease_duration_seconds=0)
    with pytest.raises(ApiException) as invalid:
        api.create_namespaced_lease(NS, body)
    assert invalid.value.status == 422
    body.spec.lease_duration_seconds = 15
    created = api.create_namespaced_lease(NS, body)
    assert kube.requests(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases")[-1].status == 201
    with pytest.raises(ApiException) as exists:
        api.create_namespaced_lease(NS, body)
    assert (exists.value.status, exists.value.reason) == (409, "Conflict")
    assert '"reason": "AlreadyExists"' in str(exists.value.body)
    patched = api.patch_namespaced_lease(LEASE, NS, {"spec": {"holderIdentity": "pod-z"}})
    assert patched.spec is not None
    assert patched.spec.holder_identity == "pod-z"
    assert patched.spec.lease_duration_seconds == 15  # a merge patch keeps what it does not name
    assert created.metadata is not None
    assert patched.metadata is not None
    assert int(patched.metadata.resource_version or 0) > int(created.metadata.resource_version or 0)
    assert patched.metadata.generation is None  # Leases have no generation
    with pytest.raises(ApiException) as stale:
        api.replace_namespaced_lease(LEASE, NS, created)  # an older resourceVersion
    assert stale.value.status == 409
    patched.spec.holder_identity = "pod-y"
    api.replace_namespaced_lease(LEASE, NS, patched)
    assert [item.spec.holder_identity for item in api.list_namespaced_lease(NS).items if item.spec] == [
        "pod-y"
    ]
