"""Helpers for the OCI registry tests: the sandbox registry, clients pointed at it, a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.oci_registry import FakeOCIRegistry, RegistryRequest
from services.registry import RegistryAccess, RegistryClient

USER = "robot$ci"
PASSWORD = "s3cr3t-registry-password"  # asserted absent from every message


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def running(**options: Any) -> Iterator[FakeOCIRegistry]:
    registry = FakeOCIRegistry(**options).start()
    try:
        yield registry
    finally:
        registry.stop()


def client_for(
    registry: FakeOCIRegistry,
    username: str | None = None,
    password: str | None = None,
    **options: Any,
) -> RegistryClient:
    """A client that reaches `registry` over plain HTTP, with these credentials (None: anonymous)."""
    access = RegistryAccess(registry.host, username=username, password=password, insecure=True)
    return RegistryClient([access], **options)


def paths(registry: FakeOCIRegistry) -> list[str]:
    """`METHOD /path` of every request the registry got, in order."""
    return [f"{r.method} {r.path}" for r in registry.requests]


def token_requests(registry: FakeOCIRegistry) -> list[RegistryRequest]:
    return [r for r in registry.requests if r.path == "/token"]
