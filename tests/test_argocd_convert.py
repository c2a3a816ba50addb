"""Argo CD JSON → records, on the contract's example payloads (docs/argocd-api.md §5-§7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.argocd import convert

EXAMPLES = Path(__file__).resolve().parents[2] / "shared/contracts/argocd/examples"


def _example(name: str) -> Any:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip("shared Argo CD examples not present")
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("example", "in_progress", "phase"),
    [
        ("app-synced-healthy-history-operationstate.json", False, "Succeeded"),
        ("app-outofsync-progressing-operation-running.json", True, "Running"),
        # Finished, but never reconciled since: the CLI keeps waiting (docs §7.4).
        ("app-synced-healthy-operation-succeeded-minimal.json", True, "Succeeded"),
        ("app-outofsync-degraded-conditions.json", False, None),
    ],
)
def test_contract_examples_convert(example: str, in_progress: bool, phase: str | None) -> None:
    app = _example(example)
    status = convert.app_status("prod", app, browser_url="https://argocd.example.com")
    assert status.operation_in_progress is in_progress
    assert (status.operation.phase if status.operation else None) == phase
    assert status.ref.name == app["metadata"]["name"]


def test_contract_example_details() -> None:
    app = _example("app-synced-healthy-history-operationstate.json")
    status = convert.app_status("prod", app, browser_url="https://argocd.example.com")
    assert status.ref.project == "sre"
    assert status.images == ("nginx:latest",)
    assert status.operation is not None
    assert status.operation.initiated_by == "foo@example.com"
    assert status.operation.failed_resources == ()  # hookPhase Running on a Synced row is not a failure
    history = convert.history_raw(app)
    assert [e["id"] for e in history] == list(range(14, 24))
    degraded = _example("app-outofsync-degraded-conditions.json")
    conditions = convert.app_status("prod", degraded, browser_url="x").conditions
    assert [c.type for c in conditions][:1] == ["OrphanedResourceWarning"]


def test_contract_managed_resources_example() -> None:
    items = _example("managed-resources.SYNTHETIC.json")["items"]
    changes = [c for item in items if (c := convert.resource_change(item)) is not None]
    assert [(c.key, c.live is None, c.target is None) for c in changes] == [
        ("apps/Deployment/prod/web", False, False),
        ("ConfigMap/prod/web-config", True, False),
        ("ConfigMap/prod/legacy", False, True),
    ]
