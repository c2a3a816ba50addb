"""`sync --selector`: many syncs run by a batch plan (issue 15), one card.

The plan (a strategy's: services/extensions/builtin/strategies.py or a plugin's) is waves run one
after the other: inside a wave at most `operations.batch_concurrency` syncs run at once, and the
next wave starts only once every sync of the previous one ended. A gated plan (canary) starts the
next wave only if every target of the previous ended Succeeded and Healthy; with stop_on_failure,
nothing new starts after a failure. What is not started is marked Skipped, with the reason.

Nothing waits in a thread: each sync is started by a short job and followed by the watcher; when
one ends, what may start next is started (again on the job pool, so poll threads only poll). The
card is edited as each lands, and the request completes when the last one has.
"""

from __future__ import annotations

import difflib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from handlers import messages as msg
from handlers.blocks import Reply
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import DEFERRED, complete
from handlers.gitops.sync import BatchItem
from services.backend import AppRef, AppStatus, SyncRequest
from services.errors import GitOpsBotError, UserError
from services.extensions.builtin import strategies
from services.extensions.manager import Extensions
from services.extensions.model import BatchPlan, BatchTarget

Card = Callable[[Sequence[BatchItem]], Reply]


def plan_batch(
    extensions: Extensions | None,
    strategy: str,
    targets: Sequence[BatchTarget],
    *,
    stop_on_failure: bool,
    concurrency: int,
    wave_label: str | None,
) -> BatchPlan:
    """The plan of the first plugin that knows `strategy` (the built-ins when no extensions are
    wired); UserError before anything starts when none does, or when a plan does not cover
    exactly the targets."""
    if extensions is not None:
        plan = extensions.batch_plan(
            strategy, targets, stop_on_failure=stop_on_failure, concurrency=concurrency,
            wave_label=wave_label,
        )  # fmt: skip
    else:
        plan = strategies.plan(strategy, targets, stop_on_failure=stop_on_failure, wave_label=wave_label)
    if plan is None:
        close = difflib.get_close_matches(strategy, strategies.NAMES, n=1)
        raise UserError(
            msg.BATCH_STRATEGY_UNKNOWN.format(name=strategy, known=", ".join(strategies.NAMES)),
            hint=msg.BATCH_STRATEGY_HINT.format(name=close[0]) if close else None,
        )
    planned = [ref for wave in plan.waves for ref in wave]
    if sorted(planned) != sorted(t.ref for t in targets):
        raise UserError(msg.BATCH_PLAN_MISMATCH.format(name=strategy))
    return plan


class BatchFollower:
    def __init__(
        self,
        deps: Deps,
        conversation: Conversation,
        items: dict[AppRef, BatchItem],
        plan: BatchPlan,
        request: SyncRequest,
        card: Card,
    ) -> None:
        assert deps.ops is not None
        self._deps, self._ops = deps, deps.ops
        self._conversation = conversation
        self._items = items
        self._plan = plan
        self._waves = [deque(wave) for wave in plan.waves]
        self._request = request
        self._card = card
        self._lock = threading.Lock()
        self._wave = 0  # the wave running now
        self._ended: list[tuple[AppRef, str, str]] = []  # this wave's ends: app, phase, health
        self._halt: str | None = None  # why nothing more starts (a failure, a failed gate)
        self._running = 0
        self._done = False

    def run(self) -> Reply:
        """Start the first ones; the rest follow as those end, and the last one completes the
        request (possibly before this returns, when every app was skipped)."""
        self._conversation.announce(self._card(self._snapshot()))
        self._pump()
        return DEFERRED

    def _snapshot(self) -> list[BatchItem]:
        with self._lock:
            return list(self._items.values())

    # -- deciding what starts ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start what may start now, skip what never will; complete when nothing is left."""
        with self._lock:
            starts, skipped = self._due()
            for ref in skipped:
                self._items[ref] = replace(self._items[ref], phase="Skipped", message=self._halt or "")
            for ref in starts:
                self._items[ref] = replace(self._items[ref], phase="Running")
            last = self._running == 0 and not any(self._waves) and not self._done
            self._done = self._done or last
        if last:
            complete(self._conversation, lambda: self._card(self._snapshot()))
            return
        if starts or skipped:
            self._conversation.update(self._card(self._snapshot()))
        for ref in starts:  # one short job each: the starts of a wave go out side by side
            if not self._deps.jobs.submit(partial(self._start, ref), name="sync-batch"):
                self._start(ref)

    def _due(self) -> tuple[list[AppRef], list[AppRef]]:
        """Under the lock: the refs to start now and those never to start."""
        waves = self._waves
        # The wave ended (all started, none running): its gate decides whether the next begins.
        while self._halt is None and self._running == 0 and self._wave < len(waves) - 1:
            if waves[self._wave]:
                break
            self._halt = self._gate()
            self._ended.clear()
            self._wave += 1
        skipped: list[AppRef] = []
        if self._halt is not None:
            for wave in waves:
                skipped.extend(wave)
                wave.clear()
        starts: list[AppRef] = []
        queue = waves[self._wave] if self._wave < len(waves) else deque()
        while queue and self._running < max(1, self._ops.batch_concurrency):
            starts.append(queue.popleft())
            self._running += 1
        return starts, skipped

    def _gate(self) -> str | None:
        """Why the next wave may not start (a gated plan whose wave did not end well), or None."""
        if not self._plan.gate_on_health:
            return None
        for ref, phase, health in self._ended:
            # A dry run changes nothing: the health it ends with says nothing about the change.
            if phase == "Succeeded" and (self._request.dry_run or health == "Healthy"):
                continue
            outcome = phase if phase != "Succeeded" else health or "Unknown"
            return msg.BATCH_SKIP_GATE.format(app=ref.display, outcome=outcome, strategy=self._plan.strategy)
        return None

    def _gates_next(self) -> bool:
        with self._lock:
            return self._plan.gate_on_health and self._wave < len(self._waves) - 1

    # -- one sync -----------------------------------------------------------------------------------

    def _start(self, ref: AppRef) -> None:
        try:
            reservation = self._ops.watcher.reserve()
        except GitOpsBotError as exc:
            self._land(ref, "Skipped", str(exc))
            return
        try:
            self._ops.start_sync(ref, self._request)
        except GitOpsBotError as exc:
            reservation.release()
            self._land(ref, "Skipped", str(exc))
            return
        except Exception:  # one app's bug must not stop the batch
            reservation.release()
            self._land(ref, "Error", "internal error")
            return
        self._ops.follow(
            ref, reservation, on_progress=lambda _status: None,
            on_done=lambda status: self._land_status(ref, status),
            on_error=lambda exc: self._land(ref, "Unknown", str(exc)[:200]),
        )  # fmt: skip

    def _land_status(self, ref: AppRef, status: AppStatus) -> None:
        op = status.operation
        phase = op.phase if op else "Succeeded"
        if (
            phase == "Succeeded"
            and status.health == "Progressing"
            and not self._request.dry_run
            and self._gates_next()
        ):
            # Argo CD ends the sync before the rollout: the gate waits for the health to settle.
            self._settle(ref, status)
            return
        self._land(ref, phase, op.message if op else "", status.health)

    def _settle(self, ref: AppRef, status: AppStatus) -> None:
        """Follow a synced app until its health leaves Progressing (at most `sync_timeout`), with
        the watcher like any operation; then it lands with the health it reached."""
        backend = self._ops.resolver.backend(ref)
        try:
            reservation = self._ops.watcher.reserve()
        except GitOpsBotError:
            self._land(ref, "Succeeded", "", status.health)
            return

        def poll() -> AppStatus:
            now = backend.get(ref)
            return replace(now, operation_in_progress=now.health == "Progressing")

        with self._lock:
            waiting = msg.BATCH_WAITING_HEALTHY.format(health=status.health)
            self._items[ref] = replace(self._items[ref], phase="Running", message=waiting)
        self._conversation.update(self._card(self._snapshot()))
        label = "Argo CD" if backend.kind == "argocd" else "Flux"
        self._ops.watcher.watch(
            reservation, ref, poll, what=f"{label} {backend.instance}", interval=backend.poll_interval,
            timeout=self._ops.sync_timeout, on_progress=lambda _status: None,
            on_done=lambda now: self._land(ref, "Succeeded", "", now.health),
            on_error=lambda _exc: self._land(ref, "Succeeded", "", "Progressing"),
        )  # fmt: skip

    def _land(self, ref: AppRef, phase: str, message: str, health: str = "") -> None:
        with self._lock:
            self._items[ref] = replace(self._items[ref], phase=phase, message=message)
            self._running -= 1
            self._ended.append((ref, phase, health))
            if self._plan.stop_on_failure and phase != "Succeeded" and self._halt is None:
                self._halt = msg.BATCH_SKIP_FAILED.format(app=ref.display)
        self._conversation.update(self._card(self._snapshot()))
        # The next start is a request: on the job pool, not on the watcher's poll thread.
        if not self._deps.jobs.submit(self._pump, name="sync-batch"):
            self._pump()
