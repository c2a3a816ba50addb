"""What the feed job needs of a source, and one source per configured backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol

from services.argocd.backend import ArgoCDBackend
from services.backend import AppRef, GitOpsBackend
from services.feed.argocd_source import ArgoCDFeed
from services.feed.flux_source import FluxFeed
from services.feed.model import CommitInfo, Snapshot
from services.flux.backend import FluxBackend

Emit = Callable[[Sequence[Snapshot]], None]


class FeedSource(Protocol):
    name: str
    streaming: bool  # False: snapshots come from lists (`refine` adds what a list leaves out)

    def run(self, stop: threading.Event, emit: Emit) -> None: ...

    def refine(self, snap: Snapshot) -> Snapshot: ...

    def commit(self, ref: AppRef, revision: str | None) -> CommitInfo | None: ...

    def key(self, ref: AppRef) -> str: ...


def build_sources(
    backends: Iterable[GitOpsBackend], *, mode: Literal["auto", "stream", "list"], list_interval: float
) -> list[FeedSource]:
    found: list[FeedSource] = []
    wanted = mode
    for wrapped in backends:
        backend = getattr(wrapped, "inner", wrapped)  # under the read-coalescing wrapper
        if isinstance(backend, ArgoCDBackend):
            found.append(ArgoCDFeed(backend, mode=wanted, list_interval=list_interval))
        elif isinstance(backend, FluxBackend):
            found.append(FluxFeed(backend, mode=wanted, list_interval=list_interval))
    return found
