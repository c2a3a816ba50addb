"""Read and write "the version" of an app in an environment's YAML file, changing nothing else.

Edits are surgical: ruamel.yaml only composes the text into nodes to learn where each value sits;
the new text is the old one with just those tokens replaced, so comments, key order, quoting,
indentation, `---` separators, line endings and any odd layout survive byte for byte and `git diff`
shows only the version lines. Every edit is then verified by re-parsing: the targeted values must
read back as intended and every other scalar must be unchanged, or nothing is written.

Version keys and values:
- kustomize `images:` entry → key "image NAME"; the value is the entry's override written as
  `[newName:][newTag][@digest]`: "1.4.3", "registry/api:1.4.3", "@sha256:…", "1.4.3@sha256:…"; a
  newName without a tag is "registry/api:". Promotion makes the target entry's three fields equal the
  source's (set, added or removed). Environments pulling from different registries should promote
  the tag alone with a yaml path such as `images.0.newTag`. An entry missing from the target is
  appended to its `images:` list, copying the last entry's layout (no `images:` list: UserError).
- HelmRelease `spec.chart.spec.version` → key "chart" (the file must hold exactly one HelmRelease).
- each of `yaml_paths` (dots separate keys, integers index lists: `spec.containers.0.image`) → the
  path itself, read from the first document that has it.
A value replacing a plain scalar stays plain unless that would change how YAML 1.1 or 1.2 types it
(`1.10` as a float, `on` as a boolean): then it is double-quoted. Quoted values keep their quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.errors import UserError
from services.promotion import yaml_text as yt
from services.promotion.yaml_text import Edit, Path
from services.settings.model import PromotionSpec

_IMAGE = "image "
_CHART = "chart"
_CHART_PATH = ("spec", "chart", "spec", "version")
_FIELDS = ("newName", "newTag", "digest")
_DASH = re.compile(r" *- +")


@dataclass(frozen=True)
class VersionValue:
    key: str  # "image registry.example.com/api", "chart" or a yaml path
    value: str  # see the module docstring for the image encoding
    display: str  # short, for summaries: "api 1.4.3", "chart podinfo 6.5.4"


@dataclass(frozen=True)
class VersionDelta:
    """One value a promotion changes, as validators see it (services/extensions/model.py)."""

    kind: Literal["image", "chart", "value"]
    name: str  # the image as deployed (newName, else the entry's name), "chart podinfo", a yaml path
    old: str | None  # tag (or digest), chart version or value before; None: added
    new: str
    image: str | None = None  # images: "registry/api:1.4.3" or "…@sha256:…"; None: no version named


@dataclass(frozen=True)
class VersionSet:
    values: tuple[VersionValue, ...] = ()

    def get(self, key: str) -> VersionValue | None:
        return next((v for v in self.values if v.key == key), None)


@dataclass
class _Scan:
    docs: list[Node]
    found: list[VersionValue] = field(default_factory=list)
    slots: dict[str, tuple[Path, ScalarNode, Node | None]] = field(default_factory=dict)  # path, value, key
    entries: dict[str, tuple[Path, MappingNode]] = field(default_factory=dict)  # "image NAME" → entry
    images: tuple[Path, SequenceNode] | None = None


def read_versions(text: str, spec: PromotionSpec, *, filename: str = "") -> VersionSet:
    """The versions `spec` names in `text`; UserError for broken YAML or a named key that is missing."""
    return VersionSet(tuple(_scan(text, spec, _label(filename), missing_images_ok=False).found))


def apply_versions(text: str, spec: PromotionSpec, versions: VersionSet, *, filename: str = "") -> str:
    """`text` with the values in `versions` written in; only those tokens (or image lines) change."""
    label = _label(filename)
    scan = _scan(text, spec, label, missing_images_ok=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    edits: list[Edit] = []
    allowed: list[Path] = []
    appended: list[tuple[str, dict[str, str]]] = []
    for v in versions.values:
        if v.key.startswith(_IMAGE) and (not spec.images or v.key[len(_IMAGE) :] in spec.images):
            want = _split_image(v.value)
            if v.key not in scan.entries:
                appended.append((v.key[len(_IMAGE) :], want))
                continue
            path, entry = scan.entries[v.key]
            edits += _entry_edits(text, entry, want, scan, label, nl)
            allowed.append(path)
        elif (slot := scan.slots.get(v.key)) is not None:
            path, node, key = slot
            if node.value != v.value:
                edits.append(yt.replace_scalar(text, node, v.value, key, label))
                allowed.append(path)
        else:
            raise ValueError(f"{v.key!r} is not part of this promotion spec")
    if appended:
        edits.append(_append_entries(text, scan, appended, label, nl))
        assert scan.images is not None  # _append_entries raised otherwise
        allowed += [(*scan.images[0], len(scan.images[1].value) + i) for i in range(len(appended))]
    if not edits:
        return text
    new_text = yt.splice(text, edits)
    _verify(scan, new_text, spec, versions, allowed, label)
    return new_text


def describe_changes(before: VersionSet, after: VersionSet) -> str:
    """ "api 1.4.2 → 1.4.3, chart podinfo 6.5.0 → 6.5.4"; "" when nothing differs."""
    parts: list[str] = []
    for new in after.values:
        old = before.get(new.key)
        if old is None:
            parts.append(f"{new.display} (added)")
        elif old.value != new.value:
            label = _shared_label(old.display, new.display)
            if old.display == new.display:  # the short form hides the difference: show it all
                parts.append(f"{label}{old.value} → {new.value}")
            else:
                parts.append(f"{old.display} → {new.display[len(label) :]}")
    parts += [f"{v.display} (removed)" for v in before.values if after.get(v.key) is None]
    return ", ".join(parts)


def version_deltas(before: VersionSet, after: VersionSet) -> tuple[VersionDelta, ...]:
    """What differs, one record per value, for validators: images with the full reference deployed."""
    deltas: list[VersionDelta] = []
    for new in after.values:
        old = before.get(new.key)
        if old is not None and old.value == new.value:
            continue
        if new.key.startswith(_IMAGE):
            name = new.key[len(_IMAGE) :]
            after_fields = _split_image(new.value)
            image = after_fields.get("newName", name)
            before_version = _image_version(_split_image(old.value)) if old is not None else None
            version = _image_version(after_fields)
            tag, digest = after_fields.get("newTag"), after_fields.get("digest")
            ref = image + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            deltas.append(
                VersionDelta("image", image, before_version, version, ref if tag or digest else None)
            )
        elif new.key == _CHART:
            deltas.append(
                VersionDelta("chart", new.display[: -len(new.value)].strip(), _value(old), new.value)
            )
        else:
            deltas.append(VersionDelta("value", new.key, _value(old), new.value))
    return tuple(deltas)


def _image_version(fields: dict[str, str]) -> str:
    return fields.get("newTag") or fields.get("digest") or ""


def _value(found: VersionValue | None) -> str | None:
    return found.value if found is not None else None


def changed(before: VersionSet, after: VersionSet) -> bool:
    return describe_changes(before, after) != ""


def _shared_label(a: str, b: str) -> str:
    # The common start of two displays ("chart podinfo "), cut at a space so no version is split.
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[: a.rfind(" ", 0, n) + 1]


def _label(filename: str) -> str:
    return filename or "the YAML file"


def _scan(text: str, spec: PromotionSpec, label: str, *, missing_images_ok: bool) -> _Scan:
    scan = _Scan(yt.compose(text, label))
    scan.images = next(
        (
            ((i, "images"), seq)
            for i, d in enumerate(scan.docs)
            if isinstance(seq := yt.child(d, "images"), SequenceNode)
        ),
        None,
    )
    if scan.images is not None:
        _scan_images(scan, spec, label, missing_images_ok)
    elif spec.images or not (spec.chart or spec.yaml_paths):
        raise UserError(f"{label}: no `images:` list", hint="set the app's promotion.chart or yaml_paths")
    if spec.chart:
        releases = [
            (i, d) for i, d in enumerate(scan.docs) if yt.scalar(yt.child(d, "kind")) == "HelmRelease"
        ]
        if len(releases) != 1:
            raise UserError(f"{label}: expected one HelmRelease document, found {len(releases)}")
        found = yt.follow(releases[0][1], _CHART_PATH, (releases[0][0],))
        if found is None or not isinstance(found[1], ScalarNode):
            raise UserError(f"{label}: the HelmRelease has no `{'.'.join(_CHART_PATH)}`")
        named = yt.follow(releases[0][1], ("spec", "chart", "spec", "chart"), ())
        chart = yt.scalar(named[1]) if named else None
        _add(scan, _CHART, found, f"chart {chart} " if chart else "chart ")
    for dotted in spec.yaml_paths:
        parts = tuple(dotted.split("."))
        found = next((f for i, d in enumerate(scan.docs) if (f := yt.follow(d, parts, (i,)))), None)
        if found is None:
            raise UserError(f"{label}: no `{dotted}`")
        if not isinstance(found[1], ScalarNode):
            raise UserError(f"{label}: `{dotted}` is a list or mapping, not a single value")
        _add(scan, dotted, found, f"{dotted} ")
    return scan


def _add(scan: _Scan, key: str, found: tuple[Path, Node, Node | None], label: str) -> None:
    path, node, key_node = found
    assert isinstance(node, ScalarNode)
    scan.slots[key] = (path, node, key_node)
    scan.found.append(VersionValue(key, node.value, f"{label}{node.value}"))


def _scan_images(scan: _Scan, spec: PromotionSpec, label: str, missing_ok: bool) -> None:
    assert scan.images is not None
    path, seq = scan.images
    for j, item in enumerate(seq.value):
        name = yt.scalar(yt.child(item, "name"))
        if name is None or (spec.images and name not in spec.images):
            continue
        if _IMAGE + name in scan.entries:
            raise UserError(f"{label}: `images:` lists `{name}` twice")
        fields = _fields(item, label)
        if ":" in fields.get("newTag", "") or any("@" in v for v in fields.values()):  # see _split_image
            raise UserError(f"{label}: image `{name}` has an invalid newName, newTag or digest")
        scan.entries[_IMAGE + name] = ((*path, j), item)
        scan.found.append(VersionValue(_IMAGE + name, _join_image(fields), _image_display(name, fields)))
    missing = [n for n in spec.images if _IMAGE + n not in scan.entries]
    if missing and not missing_ok:
        raise UserError(f"{label}: no image `{missing[0]}` in `images:`")


def _fields(entry: Node, label: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in _FIELDS:
        node = yt.child(entry, name)
        if node is not None and not isinstance(node, ScalarNode):
            raise UserError(f"{label}: `{name}` of an image must be a single value")
        if node is not None and node.value and node.tag != "tag:yaml.org,2002:null":
            fields[name] = node.value
    return fields


def _join_image(fields: dict[str, str]) -> str:
    ref = (
        f"{fields['newName']}:{fields.get('newTag', '')}" if "newName" in fields else fields.get("newTag", "")
    )
    return f"{ref}@{fields['digest']}" if "digest" in fields else ref


def _split_image(value: str) -> dict[str, str]:
    ref, _, digest = value.partition("@")
    name, _, tag = ref.rpartition(":")  # tags never contain ":"; a registry port sits before a "/"
    return {k: v for k, v in (("newName", name), ("newTag", tag), ("digest", digest)) if v}


def _image_display(name: str, fields: dict[str, str]) -> str:
    algo, _, digest = fields.get("digest", "").partition(":")
    short = f"{algo}:{digest[:12]}" if digest else algo
    version = "@".join(v for v in (fields.get("newTag", ""), short) if v) or fields.get("newName", "-")
    return f"{name.rsplit('/', 1)[-1]} {version}"


def _entry_edits(
    text: str, entry: MappingNode, want: dict[str, str], scan: _Scan, label: str, nl: str
) -> list[Edit]:
    edits: list[Edit] = []
    added: list[str] = []
    for name in _FIELDS:
        found, new = yt.pair(entry, name), want.get(name)
        if found is not None and new is not None and found[1].value != new:
            edits.append(yt.replace_scalar(text, found[1], new, found[0], label))
        elif found is not None and new is None and name in _fields(entry, label):
            edits.append(yt.remove_line(text, *found, label))
        elif found is None and new is not None:
            added.append(f"{name}: {yt.render(new, _style_hint(scan, name), None)}")
    if added:
        if entry.flow_style:
            raise UserError(f"{label}: line {entry.start_mark.line + 1}: add {', '.join(added)} by hand")
        indent = " " * entry.value[0][0].start_mark.column
        edits.append(yt.insert_lines(text, yt.line_after(text, entry), [indent + line for line in added], nl))
    return edits


def _style_hint(scan: _Scan, name: str) -> str | None:
    # New lines quote like the file's existing lines of the same field.
    items = scan.images[1].value if scan.images else []
    styles = [n.style for item in items if isinstance(n := yt.child(item, name), ScalarNode)]
    return styles[-1] if styles and styles[-1] in ("'", '"') else None


def _append_entries(
    text: str, scan: _Scan, appended: list[tuple[str, dict[str, str]]], label: str, nl: str
) -> Edit:
    names = ", ".join(f"`{name}`" for name, _ in appended)
    if scan.images is None:
        raise UserError(f"{label}: no `images:` list to add {names} to")
    seq = scan.images[1]
    last = seq.value[-1] if seq.value else None
    start = last.start_mark.index if isinstance(last, MappingNode) and not last.flow_style else 0
    dash = text[text.rfind("\n", 0, start) + 1 : start]  # e.g. "  - ": the new entries copy it
    if seq.flow_style or not start or not _DASH.fullmatch(dash):
        raise UserError(f"{label}: add image {names} to `images:` by hand (unusual layout)")
    lines: list[str] = []
    for name, fields in appended:
        lines.append(f"{dash}name: {yt.render(name, None, None)}")
        lines += [
            f"{' ' * len(dash)}{f}: {yt.render(v, _style_hint(scan, f), None)}" for f, v in fields.items()
        ]
    return yt.insert_lines(text, yt.line_after(text, seq), lines, nl)


def _verify(
    before: _Scan, new_text: str, spec: PromotionSpec, versions: VersionSet, allowed: list[Path], label: str
) -> None:
    """Re-parse: the wanted values must read back, and nothing outside `allowed` may differ."""
    refusal = f"{label}: refusing to write a change that would touch more than the version"
    try:
        after = _scan(new_text, spec, label, missing_images_ok=True)
    except UserError as exc:
        raise UserError(refusal, hint=exc.message) from None
    path = yt.changed_path(before.docs, after.docs, allowed)
    if path is not None:
        raise UserError(refusal, hint=f"`{'.'.join(map(str, path[1:]))}` would change")
    got = {v.key: v.value for v in after.found}
    for v in versions.values:
        want = _join_image(_split_image(v.value)) if v.key.startswith(_IMAGE) else v.value
        if got.get(v.key) != want:
            raise UserError(refusal, hint=f"`{v.key}` would read back as {got.get(v.key)!r}")
