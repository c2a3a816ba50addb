"""PromotionStore on a real SQLite file: four eyes, exactly-once approval under races, rejection,
expiry reported once, outcomes, superseding, and surviving a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.backend import AppRef
from services.errors import PermissionDenied, UserError
from services.promotion.model import Promotion, PromotionPlan
from services.promotion.store import PromotionStore
from services.store.db import Database
from tests.db_engines import Opener

T0 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=60)
REF = AppRef(backend="flux", instance="main", name="api", namespace="apps", kind="Kustomization")


def plan(plan_id: str = "p1", *, diff: str = "--- a\n+++ b\n", base: str = "a" * 40) -> PromotionPlan:
    return PromotionPlan(
        id=plan_id, app="api", from_env="staging", to_env="prod", repository="deploy",
        target_file="envs/prod/api/kustomization.yaml", base_sha=base, diff=diff,
        diff_hash=f"hash-of-{diff!r}", summary="api 1.4.2 → 1.4.3", empty=not diff,
        source_ref=REF, target_ref=REF,
    )  # fmt: skip


@pytest.fixture
def db(any_database: Database) -> Database:
    return any_database  # SQLite and PostgreSQL (tests/db_engines.py)


@pytest.fixture
def store(db: Database) -> PromotionStore:
    return PromotionStore(db)


def request(store: PromotionStore, required: int = 2, plan_id: str = "p1") -> Promotion:
    return store.create(
        plan(plan_id), requester="UREQ", requester_name="Dana", channel="C1",
        approvals_required=required, ttl=TTL, now=T0,
    )  # fmt: skip


def race(count: int, action: Callable[[int], Promotion]) -> tuple[list[Promotion], list[Exception]]:
    """Run `action(i)` in `count` threads released at the same moment."""
    barrier = threading.Barrier(count)
    done: list[Promotion] = []
    failed: list[Exception] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = action(i)
        except (UserError, PermissionDenied) as exc:
            with lock:
                failed.append(exc)
        else:
            with lock:
                done.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return done, failed


def test_create_and_get(store: PromotionStore) -> None:
    p = request(store)
    assert (p.id, p.audit_id, p.status, p.approvals, p.approvals_required) == ("p1", "p1", "pending", (), 2)
    assert (p.created_at, p.expires_at, p.became_approved) == (T0, T0 + TTL, False)
    assert store.get("p1") == p
    assert store.get("nope") is None
    store.set_message("p1", "1714651200.000100")
    assert store.get("p1") == replace(p, message_ts="1714651200.000100")


def test_create_refuses_an_empty_plan_and_a_repeat(store: PromotionStore) -> None:
    with pytest.raises(UserError, match="Nothing to promote"):
        store.create(
            plan(diff=""), requester="U", requester_name="", channel="C", approvals_required=1, ttl=TTL
        )
    request(store)
    with pytest.raises(UserError, match="already requested"):
        request(store)


def test_no_approval_policy_approves_at_once(store: PromotionStore) -> None:
    p = request(store, required=0)
    assert (p.status, p.became_approved) == ("approved", True)
    stored = store.get(p.id)
    assert stored is not None
    assert (stored.status, stored.became_approved) == ("approved", False)


def test_four_eyes_and_distinct_approvers(store: PromotionStore) -> None:
    request(store, required=2)
    with pytest.raises(PermissionDenied, match="someone else must approve it"):
        store.approve("p1", "UREQ", now=T0)
    first = store.approve("p1", "UA", now=T0)
    assert (first.status, first.approvals, first.became_approved) == ("pending", ("UA",), False)
    with pytest.raises(UserError, match=r"already approved.*1 more approval"):
        store.approve("p1", "UA", now=T0)
    second = store.approve("p1", "UB", now=T0)
    assert (second.status, second.approvals, second.became_approved) == ("approved", ("UA", "UB"), True)
    with pytest.raises(UserError, match="already approved; it is being committed"):
        store.approve("p1", "UC", now=T0)
    assert store.get("p1") == second


def test_exactly_one_transition_under_eight_concurrent_approvers(store: PromotionStore) -> None:
    request(store, required=2)
    done, failed = race(8, lambda i: store.approve("p1", f"U{i}", now=T0))
    assert len(done) == 2  # the first two in; the other six find it approved
    assert sum(p.became_approved for p in done) == 1
    assert len(failed) == 6
    assert all("already approved" in str(e) for e in failed)
    final = store.get("p1")
    assert final is not None
    assert final.status == "approved"
    assert len(final.approvals) == 2


def test_repeated_deliveries_of_one_click(store: PromotionStore) -> None:
    request(store, required=1)
    done, failed = race(8, lambda _: store.approve("p1", "UA", now=T0))
    assert len(done) == 1
    assert done[0].became_approved
    assert len(failed) == 7
    again = [store.approve, store.approve]
    for call in again:  # and sequentially, after the fact
        with pytest.raises(UserError):
            call("p1", "UA", now=T0)


def test_reject(store: PromotionStore) -> None:
    request(store)
    store.approve("p1", "UA", now=T0)
    rejected = store.reject("p1", "UB", "  not during\nthe freeze ", now=T0)
    assert (rejected.status, rejected.rejected_by, rejected.reason) == (
        "rejected",
        "UB",
        "not during the freeze",
    )
    assert store.get("p1") == rejected
    with pytest.raises(UserError, match="rejected by <@UB>"):
        store.approve("p1", "UC", now=T0)
    with pytest.raises(UserError, match="rejected"):
        store.reject("p1", "UC", "again", now=T0)


def test_requester_may_withdraw(store: PromotionStore) -> None:
    request(store)
    assert store.reject("p1", "UREQ", "", now=T0).reason is None


def test_expiry_reported_once(store: PromotionStore) -> None:
    request(store, plan_id="p1")
    request(store, plan_id="p2", required=0)  # approved: not expired, it is being committed
    assert store.expire_due(now=T0 + TTL - timedelta(seconds=1)) == []
    with pytest.raises(UserError, match="expired"):  # past the deadline, before the sweep
        store.approve("p1", "UA", now=T0 + TTL)
    expired = store.expire_due(now=T0 + TTL)
    assert [(p.id, p.status) for p in expired] == [("p1", "expired")]
    assert store.expire_due(now=T0 + 2 * TTL) == []
    with pytest.raises(UserError, match="expired"):
        store.approve("p1", "UA", now=T0)


def test_concurrent_expiry_sweeps_return_each_once(store: PromotionStore) -> None:
    for i in range(5):
        request(store, plan_id=f"p{i}")
    seen: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        found = store.expire_due(now=T0 + TTL)
        with lock:
            seen.extend(p.id for p in found)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen) == [f"p{i}" for i in range(5)]


def test_mark_outcomes(store: PromotionStore) -> None:
    request(store, required=0)
    done = store.mark("p1", "committed", commit_sha="b" * 40, now=T0)
    assert (done.status, done.commit_sha) == ("committed", "b" * 40)
    with pytest.raises(UserError, match="already committed \\(bbbbbbbb\\)"):
        store.mark("p1", "failed", reason="late")
    request(store, plan_id="p2", required=0)
    failed = store.mark("p2", "failed", reason="GitConflict: file changed")
    assert (failed.status, failed.reason) == ("failed", "GitConflict: file changed")
    with pytest.raises(ValueError, match="unknown promotion status"):
        store.mark("p2", "done")  # type: ignore[arg-type]


def test_supersede_resets_approvals_and_keeps_the_audit_id(store: PromotionStore) -> None:
    request(store, required=2)
    store.set_message("p1", "111.222")
    store.approve("p1", "UA", now=T0)
    store.approve("p1", "UB", now=T0)
    later = T0 + timedelta(minutes=10)
    new = store.supersede("p1", plan("p1b", diff="--- new\n", base="c" * 40), now=later)
    assert (new.id, new.audit_id, new.status, new.approvals) == ("p1b", "p1", "pending", ())
    assert (new.base_sha, new.diff, new.requester, new.message_ts) == (
        "c" * 40,
        "--- new\n",
        "UREQ",
        "111.222",
    )
    assert (new.created_at, new.expires_at) == (later, later + TTL)
    old = store.get("p1")
    assert old is not None
    assert (old.status, old.superseded_by) == ("superseded", "p1b")
    with pytest.raises(UserError, match="replaced by a newer one"):
        store.approve("p1", "UC", now=later)
    assert [p.id for p in store.history("p1")] == ["p1", "p1b"]
    assert [p.id for p in store.open_requests()] == ["p1b"]


def test_supersede_with_nothing_left_to_promote_closes_the_request(store: PromotionStore) -> None:
    request(store)
    closed = store.supersede("p1", plan("p1b", diff=""), now=T0)
    # Not "replaced by a newer one": there is no newer one, the work is already done.
    assert (closed.id, closed.status, closed.superseded_by) == ("p1", "redundant", None)
    assert store.get("p1b") is None
    with pytest.raises(UserError, match="Nothing left to promote"):
        store.approve("p1", "UC", now=T0)


def test_a_request_done_by_another_is_closed_once(store: PromotionStore) -> None:
    request(store)
    assert [p.id for p in store.open_for("api", "prod")] == ["p1"]
    closed = store.close_redundant("p1", done_by="p0", now=T0)
    assert closed is not None
    assert (closed.status, closed.superseded_by) == ("redundant", "p0")
    assert store.close_redundant("p1", done_by="p0", now=T0) is None
    assert store.open_for("api", "prod") == []
    with pytest.raises(UserError, match="done by promotion `p0`"):
        store.approve("p1", "UC", now=T0)


def test_pending_promotion_survives_a_restart(open_again: Opener) -> None:
    first = open_again()
    store = PromotionStore(first)
    request(store, required=2)
    before = store.approve("p1", "UA", now=T0)
    first.close()

    second = open_again()
    try:
        again = PromotionStore(second)
        assert again.get("p1") == before
        assert again.approve("p1", "UB", now=T0).became_approved
    finally:
        second.close()
