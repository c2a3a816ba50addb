"""A snapshot and the app's cursor → at most one deploy, and the cursor to store.

Pure: the sources call it for every event; the store makes the outcome durable. An app seen for
the first time only gets a cursor (its history is not news); a succeeded attempt that changed
nothing that runs (a re-sync of the same revision, images and chart) is not a deploy either.
"""

from __future__ import annotations

from services.feed.model import TERMINAL, Cursor, Deploy, Result, Snapshot


def cursor_of(snap: Snapshot, *, revision: str | None = None) -> Cursor:
    return Cursor(snap.key, snap.op_id, revision if revision is not None else snap.revision,
                  snap.images, snap.chart)  # fmt: skip


def detect(previous: Cursor | None, snap: Snapshot) -> tuple[Deploy | None, Cursor | None]:
    """(the deploy, the new cursor); a None cursor means "store nothing new"."""
    if snap.deleted:
        return None, None
    if previous is None:
        return None, cursor_of(snap)  # first sight: a baseline, nothing to announce
    if snap.op_id is None or snap.op_phase not in TERMINAL or not snap.settled:
        return None, None  # still running, or its result not yet re-read: the next event tells
    if snap.op_id == previous.op_id:
        return None, None
    if snap.op_phase != "Succeeded":
        # The app still runs what it ran before the failed attempt.
        return _deploy(previous, snap, "failed"), Cursor(
            snap.key, snap.op_id, previous.revision, previous.images, previous.chart
        )
    new_revision = snap.op_revision or snap.revision
    unchanged = (new_revision, snap.images, snap.chart) == (
        previous.revision,
        previous.images,
        previous.chart,
    )
    cursor = cursor_of(snap, revision=new_revision)
    if unchanged:
        return None, cursor
    return _deploy(previous, snap, "succeeded"), cursor


def _deploy(previous: Cursor, snap: Snapshot, result: Result) -> Deploy:
    return Deploy(
        key=snap.key, ref=snap.ref, deploy_id=snap.op_id or "", result=result,
        old_revision=previous.revision, new_revision=snap.op_revision or snap.revision,
        old_images=previous.images, new_images=snap.images if result == "succeeded" else previous.images,
        old_chart=previous.chart, new_chart=snap.chart, started_at=snap.started_at,
        finished_at=snap.finished_at, initiated_by=snap.initiated_by, automated=snap.automated,
        message=snap.message, labels=snap.labels,
    )  # fmt: skip
