"""The status, sync, diff and rollback views stay inside Block Kit limits at any scale."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from handlers.cards import sync_card
from handlers.gitops.diff import diff_reply, history_reply
from handlers.gitops.status import status_detail, status_overview
from handlers.gitops.sync import BatchItem, batch_card
from handlers.rollback.views import rollback_confirm
from sandbox.blockkit import total_text_length, validate_blocks
from services.backend import (
    AppRef,
    AppStatus,
    Condition,
    HistoryEntry,
    Operation,
    ResourceChange,
    RollbackPlan,
    SyncRequest,
)
from services.diffing.render import render_changes


def _ref(i: int) -> AppRef:
    return AppRef("argocd", "main", f"app-{i:05d}", project="default")


def _valid(reply: object) -> None:
    blocks = list(reply.blocks)  # type: ignore[attr-defined]
    assert validate_blocks(blocks) == []
    assert total_text_length(blocks) <= 12_000


def test_overview_of_five_thousand_apps_fits_one_message() -> None:
    apps = [
        AppStatus(_ref(i), sync="OutOfSync" if i % 2 else "Synced", health="Degraded" if i % 3 else "Healthy")
        for i in range(5000)
    ]
    reply = status_overview(apps, ["other: connection refused"], "Apps")
    _valid(reply)
    text = json.dumps(reply.blocks)
    assert "5,000" in reply.text
    assert "more that are not Synced and Healthy" in text


def test_detail_escapes_third_party_text() -> None:
    status = AppStatus(
        _ref(1),
        health="Degraded",
        health_message="<!channel> pod crashed & restarted",
        conditions=(Condition("SyncError", "<@U123> broke it " + "x" * 5000),),
        images=tuple(f"registry/app:{i}" for i in range(30)),
        operation=Operation("Failed", message="<b>bad</b>"),
        ui_url="https://argocd.example.com/applications/argocd/app-00001",
    )
    reply = status_detail(status)
    _valid(reply)
    text = json.dumps(reply.blocks)
    assert "<!channel>" not in text
    assert "<@U123>" not in text
    assert "&lt;!channel&gt;" in text


def test_sync_and_batch_cards_are_valid() -> None:
    op = Operation(
        "Failed",
        message="one or more objects failed to apply",
        revision="a" * 40,
        started_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 26, 12, 1, 5, tzinfo=UTC),
        resources_done=2,
        resources_total=3,
        failed_resources=("Deployment/api: admission webhook denied",),
    )
    card = sync_card(
        _ref(1), SyncRequest(prune=True), user="U0ALICE", status=AppStatus(_ref(1), operation=op)
    )
    _valid(card)
    assert card.failed
    assert "1m05s" in json.dumps(card.blocks)
    batch = batch_card(
        "team=pay", [BatchItem(_ref(i), "Succeeded") for i in range(500)], user="U1", dry_run=False
    )
    _valid(batch)


def test_long_diff_and_history_and_rollback_cards_are_valid() -> None:
    changes = [
        ResourceChange(
            "", "ConfigMap", "ns", f"cm-{i}", {"data": {"k": "a" * 300}}, {"data": {"k": "b" * 300}}
        )
        for i in range(60)
    ]
    rendered = render_changes(changes)
    _valid(diff_reply(_ref(1), rendered, file_link="https://files.example/diff"))
    entries = [
        HistoryEntry(str(i), "b" * 40, message="<!here> " + "m" * 500, current=i == 0) for i in range(20)
    ]
    _valid(history_reply(_ref(1), entries))
    plan = RollbackPlan(_ref(1), entries[1], entries[0], auto_sync=True)
    card = rollback_confirm(plan, "pending-id")
    _valid(card)
    assert "rollback_disable_autosync" in json.dumps(card.blocks)
