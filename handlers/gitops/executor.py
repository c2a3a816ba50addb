"""Executors for status, sync, diff and history: parse → one service call → render."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from handlers import messages as msg
from handlers.blocks import Reply, escape, plain_notice
from handlers.caller import Caller
from handlers.cards import short_rev
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.follow import DEFERRED, complete, start_and_follow
from handlers.gitops.batch import BatchFollower, plan_batch
from handlers.gitops.diff import diff_fits_inline, diff_reply, history_reply
from handlers.gitops.status import status_detail, status_overview
from handlers.gitops.sync import BatchItem, batch_card
from handlers.grammar.parser import CommandRequest
from services.access.locks import Lock
from services.backend import AppRef, AppStatus, SyncRequest
from services.diffing.render import render_changes, render_unified_text
from services.errors import PermissionDenied, UserError
from services.extensions.model import BatchTarget
from services.operations import GitOpsService
from services.validation import format_selector


def gitops_executors(deps: Deps, ops: GitOpsService) -> dict[str, Executor]:
    return {
        "status": lambda r, c, conv: _status(Ctx(deps, ops, r, c), conv),
        "sync": lambda r, c, conv: _sync(Ctx(deps, ops, r, c), conv),
        "diff": lambda r, c, conv: _diff(Ctx(deps, ops, r, c), conv),
        "history": lambda r, c, conv: _history(Ctx(deps, ops, r, c)),
        "suspend": lambda r, c, conv: _suspend(Ctx(deps, ops, r, c)),
        "resume": lambda r, c, conv: _resume(Ctx(deps, ops, r, c), conv),
    }


@dataclass(frozen=True)
class Ctx:
    deps: Deps
    ops: GitOpsService
    request: CommandRequest
    caller: Caller

    def target(self, action: str) -> tuple[AppRef, str]:
        """Resolve APP, then check the caller may `action` it (and that no lock stops it)."""
        assert self.request.app is not None  # the grammar requires APP for these subcommands
        ref = self.ops.resolve(self.request.app, self.request.env)
        return ref, self.clear(action, ref)

    def clear(self, action: str, ref: AppRef) -> str:
        if self.deps.authz is None:
            return ""
        return self.deps.authz.target(
            self.caller, action, ref, force=self.request.force, now=self.deps.clock(),
            validate=not self.request.dry_run,
        ).note  # fmt: skip


def _status(ctx: Ctx, conversation: Conversation) -> Reply:
    ops, request = ctx.ops, ctx.request
    if request.app:
        ref, _ = ctx.target("status")
        locks = _locks_for(ctx, ref)
        # Read off this worker: a slow backend must not hold it, and identical reads share one.
        future = ops.status_later(ref)
        if future.done():
            return status_detail(future.result(), locks=locks)

        def answer(read: Future[AppStatus]) -> None:
            reply = partial(complete, conversation, lambda: status_detail(read.result(), locks=locks))
            # Fifty people waiting on one read are answered by the pool, not one after another here.
            if not ctx.deps.jobs.submit(reply, name="status"):
                reply()

        future.add_done_callback(answer)
        return DEFERRED
    selector = format_selector(request.selector) if request.selector else None
    overview = ops.overview(selector=selector, project=request.project)
    title = (
        "Apps"
        + (f" matching {selector}" if selector else "")
        + (f" in {request.project}" if request.project else "")
    )
    locks = ctx.deps.locks.active(now=ctx.deps.clock()) if ctx.deps.locks else []
    return status_overview(overview.apps, overview.unreachable, title, locks=locks)


def _sync_request(request: CommandRequest, caller: Caller) -> SyncRequest:
    return SyncRequest(
        prune=request.prune,
        dry_run=request.dry_run,
        revision=request.revision,
        initiated_by=caller.user_name or caller.user_id,
    )


def _sync(ctx: Ctx, conversation: Conversation) -> Reply:
    ops, request, caller = ctx.ops, ctx.request, ctx.caller
    sync = _sync_request(request, caller)
    if request.selector:
        return _batch(ctx, conversation, sync)
    ref, note = ctx.target("sync")
    before = ops.status(ref).revision
    # A refusal to start stays an ephemeral error: nothing public yet.
    return start_and_follow(ctx.deps, conversation, ref, lambda: ops.start_sync(ref, sync), request=sync,
                            user=caller.user_id, before=before, note=note or None)  # fmt: skip


def _batch(ctx: Ctx, conversation: Conversation, sync: SyncRequest) -> Reply:
    ops, request, caller = ctx.ops, ctx.request, ctx.caller
    selector = format_selector(request.selector)
    # Annotations too: Argo CD's sync-wave annotation orders the `waves` strategy.
    overview = ops.overview(selector=selector, project=request.project, annotations=True)
    if not overview.apps:
        return plain_notice(msg.SYNC_NOTHING.format(selector=selector))
    denied: dict[AppRef, BatchItem] = {}
    targets = []
    for app in overview.apps:  # each app checked on its own: one denial or lock skips only that app
        try:
            ctx.clear("sync", app.ref)
        except (PermissionDenied, UserError) as exc:
            denied[app.ref] = BatchItem(app.ref, "Skipped", str(exc), mentions=exc.mentions)
            continue
        targets.append(BatchTarget(app.ref, labels=app.labels, annotations=app.annotations))
    config = ctx.deps.settings.sync  # --strategy / --stop-on-failure override it for this command
    strategy = request.strategy or config.strategy
    stop = request.stop_on_failure or config.stop_on_failure
    plan = plan_batch(ctx.deps.extensions, strategy, targets, stop_on_failure=stop,
                      concurrency=ops.batch_concurrency, wave_label=config.wave_label)  # fmt: skip
    items = {  # in the order they run, the denied ones last
        ref: BatchItem(ref, "Requested", wave=plan.wave_name(index))
        for index, wave in enumerate(plan.waves)
        for ref in wave
    }
    items.update(denied)

    def card(shown: Sequence[BatchItem]) -> Reply:
        return batch_card(selector, shown, user=caller.user_id, dry_run=sync.dry_run,
                          strategy=plan.strategy, stop_on_failure=plan.stop_on_failure)  # fmt: skip

    return BatchFollower(ctx.deps, conversation, items, plan, sync, card).run()


def _diff(ctx: Ctx, conversation: Conversation) -> Reply:
    ops, request = ctx.ops, ctx.request
    ref, _ = ctx.target("diff")
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


def _history(ctx: Ctx) -> Reply:
    ops = ctx.ops
    ref, _ = ctx.target("history")
    return history_reply(ref, ops.resolver.backend(ref).history(ref), args=ops.resolver.command_args(ref))


def _suspend(ctx: Ctx) -> Reply:
    ops = ctx.ops
    ref, _ = ctx.target("suspend")
    before = ops.status(ref).revision
    ops.resolver.backend(ref).suspend(ref)
    text = msg.SUSPENDED.format(app=escape(ref.display), args=escape(ops.resolver.command_args(ref)))
    return plain_notice(text, in_channel=True, detail=f"suspended at {short_rev(before)}")


def _resume(ctx: Ctx, conversation: Conversation) -> Reply:
    ops, caller = ctx.ops, ctx.caller
    ref, _ = ctx.target("resume")
    sync = SyncRequest(initiated_by=caller.user_name or caller.user_id)
    title = msg.RESUME_TITLE.format(app=ref.name)
    before = ops.status(ref).revision

    def start() -> AppStatus:
        started = ops.resolver.backend(ref).resume(ref)
        ops.forget_suspend_holds(ref, user=caller.user_id)
        return started

    return start_and_follow(ctx.deps, conversation, ref, start, request=sync, user=caller.user_id,
                            before=before, title=title)  # fmt: skip


def _locks_for(ctx: Ctx, ref: AppRef) -> list[Lock]:
    if ctx.deps.locks is None or ctx.deps.ops is None:
        return []
    env, app = ctx.deps.ops.resolver.scope_of(ref)
    names = {n for n in (app, ref.name) if n}
    return [
        lock
        for lock in ctx.deps.locks.active(now=ctx.deps.clock())
        if (env is None or lock.env == env) and (lock.app is None or lock.app in names)
    ]
