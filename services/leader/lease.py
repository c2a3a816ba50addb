"""Leader election over a Kubernetes Lease (`coordination.k8s.io/v1`), with client-go's rules.

Why not `kubernetes.leaderelection` (shipped with the v37 client): its `LeaseLock` exists, but
`LeaderElection.run()` blocks its thread forever with no way to stop it, never releases the Lease,
runs only once (after losing the lease it returns instead of trying again), never counts
`leaseTransitions`, builds its API object from the global default configuration (not our client),
sets no request timeouts, calls `sys.exit` on a bad config and reads the wall clock. Here:

- one daemon thread tries every `retry_period`: create the Lease if missing, renew it if ours, take it
  over if the holder has not renewed for `leaseDurationSeconds` (timed on our monotonic clock from
  when we first saw that resourceVersion, as client-go does, so clock skew between pods is harmless);
- every write is a PUT carrying the resourceVersion just read, so two candidates never both win;
- `is_leader()` is True only until `renew_deadline` after the start of the last successful write,
  checked against the clock on every call: it flips False on time even while a request hangs.
  A rival may take over only `lease_duration` (> `renew_deadline`) after seeing that write, so two
  replicas never both believe they lead;
- `stop()` joins the thread and clears `holderIdentity` if we hold the Lease.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

Seconds = float | timedelta


class _Outcome(Enum):
    WON = "won"  # created, renewed or taken over
    HELD = "held"  # someone else holds a valid lease
    FAILED = "failed"  # the API failed or a rival wrote first; try again


def utc_now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _micro(moment: datetime) -> datetime:
    # The client writes a datetime with isoformat(), which drops the fraction when it is zero; the
    # API server parses MicroTime with exactly six fraction digits and would refuse that write.
    return moment if moment.microsecond else moment.replace(microsecond=1)


class LeaseLeadership:
    """Leadership through one Lease; `start()` runs the background elector, `stop()` releases."""

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: Seconds,
        renew_deadline: Seconds,
        retry_period: Seconds,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`api_client` is a `kubernetes.client.ApiClient`; `clock` times the lease rules and
        `wall_clock` only stamps `acquireTime` / `renewTime` for people reading the Lease."""
        duration, deadline, period = map(_seconds, (lease_duration, renew_deadline, retry_period))
        if not duration > deadline > period > 0:
            raise ValueError("needs lease_duration > renew_deadline > retry_period > 0")
        if not identity:
            raise ValueError("identity must not be empty")
        self.namespace, self.name, self.identity = namespace, name, identity
        self._api = k8s.CoordinationV1Api(api_client)
        self._lease_seconds = max(1, math.ceil(duration))  # leaseDurationSeconds is whole seconds
        self._renew_deadline = deadline
        self._retry_period = period
        # Each attempt is a GET then a write: together they fit in the renew deadline.
        self._timeout = (deadline / 2, deadline / 2)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._valid_until: float | None = None  # we lead while clock() < this
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._observed_rv: str | None = None  # the Lease's resourceVersion we last saw...
        self._observed_at = 0.0  # ...and when (our clock) we first saw it
        self._failing = False

    def __repr__(self) -> str:
        return f"LeaseLeadership({self.namespace}/{self.name}, identity={self.identity!r})"

    # -- Leadership -------------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            until = self._valid_until
        return until is not None and self._clock() < until

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying, join the thread, and clear `holderIdentity` if this replica holds the Lease."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        with self._lock:  # step down now, not after the join: the caller stops acting as leader
            held, self._valid_until = self._valid_until is not None, None
        thread.join()
        if held:
            log.info("leader election: %s stops leading %s/%s", self.identity, self.namespace, self.name)
        self._release()  # also after a lost lease that still names us: the next leader need not wait

    # -- the elector ------------------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = self._stopping
        while not stopping.is_set():
            started = self._clock()
            self._settle(self._attempt(), started)
            stopping.wait(self._retry_period)

    def _attempt(self) -> _Outcome:
        try:
            outcome = self._try_acquire_or_renew()
        except ApiException as exc:
            if exc.status == 409:  # a rival wrote (or created) first: routine, the next read shows who
                log.debug("leader election: %s/%s changed under us", self.namespace, self.name)
            else:
                self._failed(f"HTTP {exc.status} {exc.reason}")
            return _Outcome.FAILED
        except Exception as exc:  # unreachable API server, timeout: the loop must go on
            self._failed(f"{type(exc).__name__}: {exc}")
            return _Outcome.FAILED
        if self._failing:
            log.info("leader election: the Kubernetes API answers again")
            self._failing = False
        return outcome

    def _failed(self, detail: str) -> None:
        # Once per outage at WARNING: a down API server would otherwise log every retry_period.
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "leader election: cannot reach Lease %s/%s: %s", self.namespace, self.name, detail)
        self._failing = True

    def _settle(self, outcome: _Outcome, started: float) -> None:
        """Apply one attempt's outcome; `started` is when it began, the conservative renewal time."""
        with self._lock:
            if self._stopping.is_set():  # stop() has stepped down; a late renewal must not undo it
                return
            was = self._valid_until is not None
            if outcome is _Outcome.WON:
                self._valid_until = started + self._renew_deadline
            elif outcome is _Outcome.HELD or (
                self._valid_until is not None and self._clock() >= self._valid_until
            ):
                self._valid_until = None
            now = self._valid_until is not None
        if now and not was:
            log.info("leader election: %s leads %s/%s", self.identity, self.namespace, self.name)
        elif was and not now:
            log.warning("leader election: %s lost %s/%s", self.identity, self.namespace, self.name)

    def _try_acquire_or_renew(self) -> _Outcome:
        lease = self._read()
        now = _micro(self._wall_clock())
        if lease is None:
            spec = k8s.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=self._lease_seconds,
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            )
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=self.name), spec=spec)
            created = self._api.create_namespaced_lease(self.namespace, body, _request_timeout=self._timeout)
            self._observe(created)
            return _Outcome.WON
        self._observe(lease)
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity or ""
        if holder and holder != self.identity:
            duration = spec.lease_duration_seconds or self._lease_seconds
            if self._clock() < self._observed_at + duration:
                return _Outcome.HELD
        if holder == self.identity:  # a renewal, or back after an outage nobody used to take over
            acquired = spec.acquire_time if self.is_leader() and spec.acquire_time else now
        else:  # free (released) or expired: a transition, as client-go counts them
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            acquired = now
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = self._lease_seconds
        spec.acquire_time = acquired
        spec.renew_time = now
        lease.spec = spec
        self._observe(self._replace(lease))
        return _Outcome.WON

    def _read(self) -> k8s.V1Lease | None:
        try:
            return self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _replace(self, lease: k8s.V1Lease) -> k8s.V1Lease:
        # The body carries metadata.resourceVersion from the read: a rival's write in between is 409.
        return self._api.replace_namespaced_lease(
            self.name, self.namespace, lease, _request_timeout=self._timeout
        )

    def _observe(self, lease: k8s.V1Lease) -> None:
        version = lease.metadata.resource_version if lease.metadata else None
        if version != self._observed_rv:
            self._observed_rv, self._observed_at = version, self._clock()

    def _release(self) -> None:
        """Clear holderIdentity so another replica takes over now, not after lease_duration."""
        try:
            lease = self._read()
            if lease is None or lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            now = _micro(self._wall_clock())
            # As client-go's ReleaseOnCancel: no holder, a 1 s lease, transitions unchanged.
            lease.spec.holder_identity = ""
            lease.spec.lease_duration_seconds = 1
            lease.spec.acquire_time = now
            lease.spec.renew_time = now
            self._replace(lease)
        except Exception as exc:  # the lease then simply expires after lease_duration
            log.warning("leader election: could not release %s/%s: %s", self.namespace, self.name, exc)
