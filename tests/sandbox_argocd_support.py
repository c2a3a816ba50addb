"""Shared fixtures and helpers for the fake Argo CD tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD

AUTH = {"Authorization": f"Bearer {JWT_TOKEN}"}
JSON = {"Content-Type": "application/json"}
SWAGGER = Path(__file__).resolve().parents[1] / ".." / "shared" / "contracts" / "argocd" / "swagger.json"
EXTRACT = Path(__file__).resolve().parents[1] / "sandbox" / "argocd_contract.json"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def argocd(clock: ManualClock) -> Iterator[FakeArgoCD]:
    with FakeArgoCD(operation_seconds=0.15, tick=0.01, clock=clock) as fake:
        yield fake


@pytest.fixture
def client(argocd: FakeArgoCD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=argocd.base_url, headers=AUTH, timeout=10) as http:
        yield http


@pytest.fixture
def slow_client(clock: ManualClock) -> Iterator[httpx.Client]:
    """An app with a pending change and operations slow enough to watch (or terminate) mid-flight."""
    with FakeArgoCD(operation_seconds=30, tick=0.01, clock=clock) as fake:
        fake.add_app("web")
        fake.push_revision("web", image="registry.example.com/web:2.0.0", replicas=4)
        with httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=10) as http:
            yield http


def get_app(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/applications/{name}")
    assert response.status_code == 200, response.text
    app: dict[str, Any] = response.json()
    return app


def settled(client: httpx.Client, name: str) -> dict[str, Any]:
    """The app once no operation is in progress by the CLI's wait rule (§7.4)."""

    def check() -> dict[str, Any] | None:
        app = get_app(client, name)
        state = app["status"].get("operationState") or {}
        if app.get("operation") or not state.get("finishedAt"):
            return None
        if app["status"].get("reconciledAt", "") < state["finishedAt"]:
            return None
        return app

    result: dict[str, Any] = wait_for(check)
    return result


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    assert body["error"] == body["message"]
    return response.status_code, body["code"], body["message"]


# -- transport, auth, content type --------------------------------------------------------------------
