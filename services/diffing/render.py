"""Diffs for chat: per-resource unified diffs plus a one-line semantic summary.

Argo CD hands us live / target objects per resource (`ResourceChange`): we strip server noise,
render both sides as YAML and diff them, like the Argo CD UI does. Flux hands us a ready `git diff`
of the manifests path: we split it per file. Both end up as the same `RenderedDiff`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.backend import ResourceChange
from services.diffing.emit import strip_noise, to_yaml
from services.diffing.summary import Pair, summarize_changes, summarize_pairs
from services.diffing.unified import ChangeKind, parse_unified, summarize_files, summarize_unified


@dataclass(frozen=True)
class ResourceDiffView:
    key: str
    change: ChangeKind
    text: str  # this resource's unified diff, after a "===== key (change) =====" header line
    added: int
    removed: int


@dataclass(frozen=True)
class RenderedDiff:
    resources: tuple[ResourceDiffView, ...]
    text: str  # every resource's text, separated by blank lines
    summary: str

    @property
    def empty(self) -> bool:
        return not self.resources


def _header(key: str, change: ChangeKind) -> str:
    return f"===== {key} ({change}) =====\n"


def _rendered(views: Sequence[ResourceDiffView], summary: str) -> RenderedDiff:
    return RenderedDiff(tuple(views), "\n".join(v.text for v in views), summary)


def _view(
    change: ResourceChange, live: Mapping[str, Any] | None, target: Mapping[str, Any] | None
) -> ResourceDiffView | None:
    live_text, target_text = to_yaml(live), to_yaml(target)
    if live_text == target_text:
        return None
    kind: ChangeKind = "created" if live is None else "pruned" if target is None else "changed"
    key = change.key
    lines = list(
        difflib.unified_diff(
            live_text.splitlines(keepends=True),
            target_text.splitlines(keepends=True),
            fromfile=f"live/{key}",
            tofile=f"target/{key}",
            n=3,
        )
    )
    # The first two lines are the ---/+++ file headers; count by position, since a YAML line
    # may itself begin with "+" or "-".
    body = lines[2:]
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return ResourceDiffView(key, kind, _header(key, kind) + "".join(lines), added, removed)


def render_changes(changes: Sequence[ResourceChange]) -> RenderedDiff:
    """Per-resource YAML diffs (live → target), sorted by key, without pairs equal after stripping."""
    views: list[ResourceDiffView] = []
    pairs: list[Pair] = []
    for change in changes:
        # Keys sorted on both sides: live objects come back in the API server's order, so a field
        # order that differs from the manifest's must not show up as a change.
        live = None if change.live is None else _sorted(strip_noise(change.live))
        target = None if change.target is None else _sorted(strip_noise(change.target))
        view = _view(change, live, target)
        if view is not None:  # the summary describes exactly what is shown
            views.append(view)
            pairs.append((change.kind, live, target))
    views.sort(key=lambda v: v.key)
    return _rendered(views, summarize_pairs(pairs))


def render_unified_text(diff_text: str) -> RenderedDiff:
    """Wrap a ready `git diff` (Flux) into a RenderedDiff, one view per file, in the diff's order."""
    files = parse_unified(diff_text)
    views = [
        ResourceDiffView(
            f.path, f.change, _header(f.path, f.change) + "\n".join(f.lines) + "\n", f.added, f.removed
        )
        for f in files
    ]
    return _rendered(views, summarize_files(files))


__all__ = [
    "ChangeKind",
    "RenderedDiff",
    "ResourceDiffView",
    "render_changes",
    "render_unified_text",
    "strip_noise",
    "summarize_changes",
    "summarize_unified",
    "to_yaml",
]


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
