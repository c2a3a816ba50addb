"""Executors for status, sync, diff and history: parse → one service call → render."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import Reply, escape
from handlers.conversation import Conversation
from handlers.deps import Caller, Deps, Executor
from handlers.grammar import CommandRequest
from handlers.views_diff import diff_fits_inline, diff_reply, history_reply
from handlers.views_rollback import plain_notice
from handlers.views_status import short_rev, status_detail, status_overview
from handlers.views_sync import BatchItem, batch_card, sync_card
from services.backend import AppRef, AppStatus, SyncRequest
from services.diffing import render_changes, render_unified_text
from services.operations import BatchResult, GitOpsService
from services.validation import format_selector


def gitops_executors(deps: Deps, ops: GitOpsService) -> dict[str, Executor]:
    from handlers.exec_rollback import rollback_executor  # rollback has its own module (buttons)

    return {
        "status": lambda r, c, conv: _status(ops, r),
        "sync": lambda r, c, conv: _sync(ops, r, c, conv),
        "diff": lambda r, c, conv: _diff(ops, r, conv),
        "history": lambda r, c, conv: _history(ops, r),
        "suspend": lambda r, c, conv: _suspend(ops, r),
        "resume": lambda r, c, conv: _resume(ops, r, c, conv),
        "rollback": rollback_executor(deps, ops),
    }


def _ref(ops: GitOpsService, request: CommandRequest) -> AppRef:
    assert request.app is not None  # the grammar requires APP for these subcommands
    return ops.resolve(request.app, request.env)


def _status(ops: GitOpsService, request: CommandRequest) -> Reply:
    if request.app:
        return status_detail(ops.status(_ref(ops, request)))
    selector = format_selector(request.selector) if request.selector else None
    overview = ops.overview(selector=selector, project=request.project)
    title = (
        "Apps"
        + (f" matching {selector}" if selector else "")
        + (f" in {request.project}" if request.project else "")
    )
    return status_overview(overview.apps, overview.unreachable, title)


def _sync_request(request: CommandRequest, caller: Caller) -> SyncRequest:
    return SyncRequest(
        prune=request.prune,
        dry_run=request.dry_run,
        revision=request.revision,
        initiated_by=caller.user_name or caller.user_id,
    )


def _sync(ops: GitOpsService, request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
    sync = _sync_request(request, caller)
    if request.selector:
        return _batch(ops, request, caller, conversation, sync)
    ref = _ref(ops, request)
    before = ops.status(ref).revision

    def card(status: AppStatus | None) -> Reply:
        return sync_card(ref, sync, user=caller.user_id, status=status, before=before)

    started = ops.start_sync(ref, sync)  # a refusal stays an ephemeral error: nothing public yet
    conversation.announce(card(started))
    final = ops.wait(ref, on_progress=lambda s: conversation.update(card(s)))
    return card(final)


def _batch(
    ops: GitOpsService, request: CommandRequest, caller: Caller, conversation: Conversation, sync: SyncRequest
) -> Reply:
    selector = format_selector(request.selector)
    overview = ops.overview(selector=selector, project=request.project)
    refs = [a.ref for a in overview.apps]
    if not refs:
        return plain_notice(msg.SYNC_NOTHING.format(selector=selector))
    items = {ref: BatchItem(ref, "Running") for ref in refs}
    conversation.announce(
        batch_card(selector, list(items.values()), user=caller.user_id, dry_run=sync.dry_run)
    )

    def landed(result: BatchResult) -> None:
        items[result.ref] = BatchItem(result.ref, result.phase, result.message)
        conversation.update(
            batch_card(selector, list(items.values()), user=caller.user_id, dry_run=sync.dry_run)
        )

    ops.batch_sync(refs, sync, on_result=landed)
    return batch_card(selector, list(items.values()), user=caller.user_id, dry_run=sync.dry_run)


def _diff(ops: GitOpsService, request: CommandRequest, conversation: Conversation) -> Reply:
    ref = _ref(ops, request)
    diff = ops.resolver.backend(ref).diff(ref, revision=request.revision)
    rendered = render_unified_text(diff.text) if diff.text is not None else render_changes(diff.changes)
    if rendered.empty or diff_fits_inline(rendered):
        return diff_reply(ref, rendered)
    link = conversation.upload(
        content=rendered.text,
        filename=f"{ref.name}.diff",
        title=f"Diff {ref.name}",
        comment=f"Diff of `{ref.display}`: {rendered.summary}",
    )
    return diff_reply(ref, rendered, file_link=link, uploaded=link is not None)


def _history(ops: GitOpsService, request: CommandRequest) -> Reply:
    ref = _ref(ops, request)
    return history_reply(ref, ops.resolver.backend(ref).history(ref))


def _suspend(ops: GitOpsService, request: CommandRequest) -> Reply:
    ref = _ref(ops, request)
    before = ops.status(ref).revision
    ops.resolver.backend(ref).suspend(ref)
    text = msg.SUSPENDED.format(app=escape(ref.display), name=escape(request.app or ref.name))
    return plain_notice(text, in_channel=True, detail=f"suspended at {short_rev(before)}")


def _resume(ops: GitOpsService, request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
    ref = _ref(ops, request)
    sync = SyncRequest(initiated_by=caller.user_name or caller.user_id)
    title = msg.RESUME_TITLE.format(app=ref.name)
    before = ops.status(ref).revision

    def card(status: AppStatus | None) -> Reply:
        return sync_card(ref, sync, user=caller.user_id, status=status, before=before, title=title)

    started = ops.resolver.backend(ref).resume(ref)
    ops.forget_suspend_holds(ref, user=caller.user_id)
    conversation.announce(card(started))
    return card(ops.wait(ref, on_progress=lambda s: conversation.update(card(s))))
