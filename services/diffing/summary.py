"""The one-line semantic summary of a set of resource changes ("image api 1.4.2 → 1.4.3, …").

Shared pieces (value bounding, image reference splitting, phrase counting) are also used by the
`git diff` summary in `services.diffing.unified`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.backend import ResourceChange
from services.diffing.emit import strip_noise

MAX_VALUE = 80  # every value shown in a summary comes from a user's manifest
MAX_IMAGES = 5
MAX_REPLICAS = 3
_CONTAINER_LISTS = ("initContainers", "containers")

Pair = tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]  # (kind, live, target), stripped


def bound(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def split_image(ref: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def _version(tag: str, digest: str) -> str:
    short = digest[: len("sha256:") + 12] if digest else ""
    return f"{tag}@{short}" if tag and short else tag or short


def image_phrase(label: str, old: str, new: str) -> str | None:
    """ "image <label> <oldtag> → <newtag>" when only the tag or digest moved, else the full refs."""
    if old == new:
        return None
    old_repo, old_tag, old_digest = split_image(old)
    new_repo, new_tag, new_digest = split_image(new)
    if old_repo == new_repo and (old_tag or old_digest) and (new_tag or new_digest):
        shown_old, shown_new = _version(old_tag, old_digest), _version(new_tag, new_digest)
        if shown_old != shown_new:
            return f"image {bound(label)} {bound(shown_old)} → {bound(shown_new)}"
    return f"image {bound(label)} {bound(old)} → {bound(new)}"


def counted(phrases: Iterable[str], limit: int, more: str) -> list[str]:
    """Distinct phrases in first-seen order, "(×n)" for repeats, the tail folded into "k more …"."""
    counts = Counter(phrases)
    shown = [p if n == 1 else f"{p} (×{n})" for p, n in counts.items()]
    if len(shown) > limit:
        return [*shown[:limit], f"{len(shown) - limit} more {more}"]
    return shown


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


def _pod_spec(kind: str, obj: Mapping[str, Any]) -> Any:
    if kind == "Pod":
        return obj.get("spec")
    if kind == "CronJob":
        return _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    return _get(obj, "spec", "template", "spec")


def _images(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    spec = _pod_spec(kind, obj)
    found: dict[str, str] = {}
    for field in _CONTAINER_LISTS:
        containers = _get(spec, field)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                found[str(container.get("name") or f"{field}[{index}]")] = container["image"]
    return found


def _image_changes(kind: str, live: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    before, after = _images(kind, live), _images(kind, target)
    phrases = (image_phrase(name, before[name], image) for name, image in after.items() if name in before)
    return [p for p in phrases if p]


def _data_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for field in ("data", "binaryData", "stringData"):
        section = obj.get(field)
        if isinstance(section, Mapping):
            merged.update(section)
    return merged


def _key_changes(live: Mapping[str, Any], target: Mapping[str, Any]) -> tuple[int, int, int]:
    before, after = _data_keys(live), _data_keys(target)
    changed = sum(1 for k in before.keys() & after.keys() if before[k] != after[k])
    return changed, len(after.keys() - before.keys()), len(before.keys() - after.keys())


def _chart_phrase(live: Mapping[str, Any], target: Mapping[str, Any]) -> str | None:
    old = _get(live, "spec", "chart", "spec")
    new = _get(target, "spec", "chart", "spec")
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    old_name, new_name = old.get("chart"), new.get("chart")
    old_version, new_version = old.get("version") or "*", new.get("version") or "*"  # Flux: none = latest
    if (old_name, old_version) == (new_name, new_version):
        return None
    if old_name == new_name:
        return f"chart {bound(new_name)} {bound(old_version)} → {bound(new_version)}"
    return f"chart {bound(old_name)} {bound(old_version)} → {bound(new_name)} {bound(new_version)}"


def _replicas(obj: Mapping[str, Any]) -> Any:
    spec = obj.get("spec")
    return spec.get("replicas") if isinstance(spec, Mapping) else None


def summarize_pairs(pairs: Iterable[Pair]) -> str:
    """The summary of already-stripped (kind, live, target) pairs; identical pairs are ignored."""
    images: list[str] = []
    charts: list[str] = []
    replicas: list[tuple[str, str, str]] = []
    keys: Counter[tuple[str, str]] = Counter()
    other = created = pruned = 0
    for kind, live, target in pairs:
        if live is None or target is None:
            created += live is None and target is not None
            pruned += target is None and live is not None
            continue
        if live == target:
            continue
        found = _image_changes(kind, live, target)
        images.extend(found)
        chart = _chart_phrase(live, target) if kind == "HelmRelease" else None
        charts.extend([chart] if chart else [])
        explained = bool(found or chart)
        if _replicas(live) != _replicas(target):
            name = bound(_get(target, "metadata", "name") or kind)
            shown = [bound("unset" if v is None else v) for v in (_replicas(live), _replicas(target))]
            replicas.append((name, shown[0], shown[1]))
            explained = True
        if kind in ("ConfigMap", "Secret"):
            counts = _key_changes(live, target)
            for verb, count in zip(("changed", "added", "removed"), counts, strict=True):
                keys[(kind, verb)] += count
            explained = explained or any(counts)
        other += not explained
    phrases = counted(images, MAX_IMAGES, "image changes")
    phrases += counted(charts, MAX_IMAGES, "chart changes")
    named = len(replicas) > 1  # with one, "replicas 3 → 5" is unambiguous
    phrases += counted(
        (f"replicas {n} {a} → {b}" if named else f"replicas {a} → {b}" for n, a, b in replicas),
        MAX_REPLICAS,
        "replica changes",
    )
    phrases += [plural(n, f"{kind} key") + f" {verb}" for (kind, verb), n in keys.items() if n]
    if other:
        phrases.append(plural(other, "other resource" if phrases else "resource") + " changed")
    if created:
        phrases.append(plural(created, "resource") + " will be created")
    if pruned:
        # "1 resource will be created, 1 will be pruned" reads better than repeating "resource".
        phrases.append(
            f"{pruned} will be pruned" if created else plural(pruned, "resource") + " will be pruned"
        )
    return ", ".join(phrases) or "no changes"


def _stripped(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if obj is None else strip_noise(obj)


def summarize_changes(changes: Sequence[ResourceChange]) -> str:
    """One line, most useful first: images, charts, replicas, data keys, other / created / pruned counts."""
    return summarize_pairs((c.kind, _stripped(c.live), _stripped(c.target)) for c in changes)


__all__ = [
    "MAX_VALUE",
    "Pair",
    "bound",
    "counted",
    "image_phrase",
    "plural",
    "split_image",
    "summarize_changes",
    "summarize_pairs",
]
