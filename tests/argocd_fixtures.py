"""Fixtures wiring the Argo CD client and backend to the fake Argo CD server.

Import the fixtures you need into a test module (`from tests.argocd_fixtures import fake_argocd`)
or call the builders directly for custom settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from services.argocd import ArgoCDBackend, ArgoCDClient
from services.settings.model import ArgoCDInstance, Timeouts

INSTANCE = "sandbox"


def instance_for(
    fake: FakeArgoCD, *, read: float = 5.0, connect: float = 2.0, ui_url: str | None = None
) -> ArgoCDInstance:
    return ArgoCDInstance(
        name=INSTANCE,
        url=fake.base_url,
        token_env="ARGOCD_TOKEN",
        timeouts=Timeouts(connect=connect, read=read),
        ui_url=ui_url,
    )


def client_for(fake: FakeArgoCD, *, token: str = JWT_TOKEN, read: float = 5.0, **kwargs: Any) -> ArgoCDClient:
    """A client with near-zero backoff so retry tests stay fast."""
    kwargs.setdefault("backoff", 0.01)
    return ArgoCDClient(instance_for(fake, read=read), token, **kwargs)


def backend_for(fake: FakeArgoCD, *, client: ArgoCDClient | None = None, **kwargs: Any) -> ArgoCDBackend:
    kwargs.setdefault("poll_interval", 0.05)
    return ArgoCDBackend(instance_for(fake), client or client_for(fake), **kwargs)


def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def running(fake: FakeArgoCD, name: str) -> bool:
    """The controller has picked up the requested operation (terminate needs operationState)."""
    state = fake.app(name)["status"].get("operationState") or {}
    return state.get("phase") == "Running"


@pytest.fixture
def fake_argocd() -> Iterator[FakeArgoCD]:
    fake = FakeArgoCD(operation_seconds=0.3, tick=0.02).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def argocd_client(fake_argocd: FakeArgoCD) -> Iterator[ArgoCDClient]:
    client = client_for(fake_argocd)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def argocd_backend(fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient) -> ArgoCDBackend:
    return backend_for(fake_argocd, client=argocd_client)


@pytest.fixture
def slow_argocd() -> Iterator[FakeArgoCD]:
    """Operations take a minute, so a test can act on one while it runs without racing it."""
    fake = FakeArgoCD(operation_seconds=60, tick=0.02).start()
    try:
        yield fake
    finally:
        fake.stop()
