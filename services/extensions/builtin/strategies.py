"""Built-in batch sync strategies (a plugin like any other; see services/extensions/hookspecs.py).

How `sync --selector` runs its targets (`sync.strategy` in config, `--strategy` per command):

- `parallel`: one wave; at most `operations.batch_concurrency` syncs at a time.
- `waves`: grouped by an integer — the `sync.wave_label` label when configured, else Argo CD's
  `argocd.argoproj.io/sync-wave` annotation — lowest first, one wave after the other. A missing or
  non-integer value is wave 0, as Argo CD treats resources without the annotation.
- `canary`: one target alone first, the rest only if it ends Succeeded and Healthy. The canary is
  the target labelled or annotated `gitops-bot/canary: "true"` (the first by name if several),
  else the first target by name.

Any other name is not ours (None): a third-party plugin may know it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from services.backend import AppRef
from services.extensions.hookspecs import hookimpl
from services.extensions.model import BatchPlan, BatchTarget

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
CANARY_MARK = "gitops-bot/canary"
NAMES: tuple[str, ...] = ("parallel", "waves", "canary")

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # Go's strconv.Atoi, which Argo CD uses for waves


def wave_of(target: BatchTarget, wave_label: str | None) -> int:
    """The target's wave: the label's (or annotation's) integer value; 0 when missing or not one."""
    values = dict(target.labels) if wave_label else dict(target.annotations)
    value = values.get(wave_label or SYNC_WAVE, "").strip()
    return int(value) if _INTEGER.fullmatch(value) else 0


def is_canary(target: BatchTarget) -> bool:
    marks = {**dict(target.annotations), **dict(target.labels)}
    return marks.get(CANARY_MARK, "").strip().lower() == "true"


def _by_name(targets: Sequence[BatchTarget]) -> list[BatchTarget]:
    return sorted(targets, key=lambda t: t.ref.display)


def _refs(targets: Sequence[BatchTarget]) -> tuple[AppRef, ...]:
    return tuple(t.ref for t in targets)


def parallel(targets: Sequence[BatchTarget], stop_on_failure: bool) -> BatchPlan:
    waves = (_refs(_by_name(targets)),) if targets else ()
    return BatchPlan(waves, "parallel", stop_on_failure=stop_on_failure)


def waves(targets: Sequence[BatchTarget], stop_on_failure: bool, wave_label: str | None) -> BatchPlan:
    grouped: dict[int, list[BatchTarget]] = {}
    for target in _by_name(targets):
        grouped.setdefault(wave_of(target, wave_label), []).append(target)
    order = sorted(grouped)
    return BatchPlan(
        tuple(_refs(grouped[wave]) for wave in order),
        "waves",
        stop_on_failure=stop_on_failure,
        wave_names=tuple(str(wave) for wave in order),
    )


def canary(targets: Sequence[BatchTarget], stop_on_failure: bool) -> BatchPlan:
    ordered = _by_name(targets)
    if not ordered:
        return BatchPlan((), "canary", stop_on_failure=stop_on_failure)
    first = next((t for t in ordered if is_canary(t)), ordered[0])
    rest = [t for t in ordered if t is not first]
    return BatchPlan(
        ((first.ref,), _refs(rest)) if rest else ((first.ref,),),
        "canary",
        stop_on_failure=stop_on_failure,
        gate_on_health=True,
        wave_names=("canary", "rest"),
    )


_PLANS: dict[str, Callable[[Sequence[BatchTarget], bool, str | None], BatchPlan]] = {
    "parallel": lambda targets, stop, _label: parallel(targets, stop),
    "waves": waves,
    "canary": lambda targets, stop, _label: canary(targets, stop),
}


def plan(
    strategy: str, targets: Sequence[BatchTarget], *, stop_on_failure: bool, wave_label: str | None = None
) -> BatchPlan | None:
    """The built-in plan for `strategy`; None for a name that is not built in."""
    make = _PLANS.get(strategy)
    return make(targets, stop_on_failure, wave_label) if make is not None else None


@hookimpl
def gitops_bot_batch_plan(
    strategy: str,
    targets: Sequence[BatchTarget],
    stop_on_failure: bool,
    concurrency: int,
    wave_label: str | None,
) -> BatchPlan | None:
    del concurrency  # the follower runs each wave at most `concurrency` at a time
    return plan(strategy, targets, stop_on_failure=stop_on_failure, wave_label=wave_label)
