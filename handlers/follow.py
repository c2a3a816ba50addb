"""Following a started operation to its end without holding a worker.

An executor starts the operation (a short request), posts its card, and returns `follow(...)`:
the job ends there and the worker is free. The watcher (services/watcher.py) polls the backend;
each change edits the card, and the end completes the request — the final card, and the audit
row — through the completion the pipeline put on the conversation. The `spec` tells a restarted
bot how to draw the card again (`renderers`), so it can pick the operation up where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from handlers import messages as msg
from handlers.blocks import Reply
from handlers.cards import sync_card
from handlers.conversation import Conversation
from handlers.deps import Deps
from services.backend import AppRef, AppStatus, SyncRequest
from services.settings.types import format_duration
from services.watcher import Reservation

# status (None: the last one known), an extra note → the card
Render = Callable[[AppStatus | None, str], Reply]
# Rebuilds a Render from its spec after a restart.
RendererFactory = Callable[[Deps, Mapping[str, Any]], Render]

DEFERRED = Reply(text="", deferred=True)


def follow(
    deps: Deps,
    conversation: Conversation,
    ref: AppRef,
    reservation: Reservation,
    render: Render,
    *,
    spec: Mapping[str, Any] | None = None,
    after: Callable[[AppStatus], str] | None = None,
) -> Reply:
    """Hand the operation to the watcher; returns DEFERRED for the pipeline. `after` runs once it
    ended (e.g. suspend after a Flux rollback) and returns a note for the final card."""
    assert deps.ops is not None
    last: list[AppStatus | None] = [None]

    def progress(status: AppStatus) -> None:
        last[0] = status
        conversation.update(render(status, ""))

    def done(status: AppStatus) -> None:
        complete(conversation, lambda: render(status, after(status) if after else ""))

    def ended(exc: BaseException) -> None:
        note = msg.FOLLOW_ENDED.format(
            timeout=format_duration(deps.settings.operations.sync_timeout),
            reason=str(exc)[:300],
            check=f"/gitops status {deps.ops.resolver.command_args(ref) if deps.ops else ref.display}",
        )
        complete(conversation, lambda: render(last[0], note), outcome="unknown")

    if spec is not None and conversation.on_watch is not None:
        conversation.on_watch({"ref": asdict(ref), **spec})
    deps.ops.follow(ref, reservation, on_progress=progress, on_done=done, on_error=ended)
    return DEFERRED


def start_and_follow(
    deps: Deps,
    conversation: Conversation,
    ref: AppRef,
    start: Callable[[], AppStatus],
    *,
    request: SyncRequest,
    user: str,
    before: str | None = None,
    note: str | None = None,
    title: str | None = None,
    after: Callable[[AppStatus], str] | None = None,
    label: Callable[[AppStatus], str] | None = None,
    thread_ts: str | None = None,
    pointer: Reply | None = None,
) -> Reply:
    """Start an operation shown with the operation card (sync, rollback, resume), post the card,
    and follow it. A full watcher refuses before anything starts; a refused start posts nothing."""
    assert deps.ops is not None
    reservation = deps.ops.watcher.reserve()
    try:
        started = start()
    except BaseException:
        reservation.release()
        raise
    spec = sync_spec(request, user=user, before=before, note=note, title=title)
    if label is not None:  # from the started operation (a Flux rollback names the commit it pushed)
        spec["label"] = label(started)
    render = sync_renderer(deps, {"ref": asdict(ref), **spec})
    conversation.announce(render(started, ""), thread_ts=thread_ts, pointer=pointer)
    return follow(deps, conversation, ref, reservation, render, spec=spec, after=after)


def complete(conversation: Conversation, make: Callable[[], Reply], *, outcome: str | None = None) -> None:
    """The end of a followed request: through the pipeline's completion (audit row, then the
    message), or only the message where no pipeline runs it."""
    if conversation.completion is not None:
        conversation.completion(make, outcome)
    else:
        conversation.finish(make())


def sync_renderer(deps: Deps, spec: Mapping[str, Any]) -> Render:
    """The operation card (sync, rollback, resume, a drift alert's "Sync now") from its spec."""
    ref = AppRef(**spec["ref"])
    request = SyncRequest(**spec["request"])
    base_note = str(spec.get("note") or "")
    label = str(spec.get("label") or "")  # what the audit detail starts with ("rollback to #3: …")

    def render(status: AppStatus | None, note: str) -> Reply:
        joined = "\n".join(n for n in (base_note, note) if n) or None
        card = sync_card(
            ref, request, user=str(spec["user"]), status=status, note=joined,
            before=spec.get("before"), title=spec.get("title"),
        )  # fmt: skip
        return replace(card, detail=f"{label}; {card.detail}") if label else card

    return render


def sync_spec(
    request: SyncRequest, *, user: str, before: str | None, note: str | None, title: str | None
) -> dict[str, Any]:
    wanted = {"prune": request.prune, "dry_run": request.dry_run, "revision": request.revision,
              "initiated_by": request.initiated_by}  # fmt: skip
    return {
        "kind": "sync",
        "request": wanted,
        "user": user,
        "before": before,
        "note": note or "",
        "title": title,
    }


RENDERERS: Mapping[str, RendererFactory] = {"sync": sync_renderer}
