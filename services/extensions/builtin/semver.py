"""The `semver_guard` validator: a major-version jump or a downgrade needs an admin's `--force`.

Versions are read leniently: an optional leading `v`, two or three numbers, pre-release and build
parts allowed (`v1.4`, `2.0.0-rc.1+abc`). Anything else (`latest`, a digest, a date) is not
semver and is not judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.extensions.builtin.verdicts import forceable, plain
from services.extensions.model import Finding, PlannedChange, VersionChange
from services.settings.extensions import SemverGuard

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    # Precedence as semver.org §11: a release sorts after its pre-releases; numeric identifiers
    # sort numerically and before alphanumeric ones.
    release: bool
    pre: tuple[tuple[int, int, str], ...]


def parse_version(text: str | None) -> Version | None:
    found = _SEMVER.match(text.strip()) if text else None
    if found is None:
        return None
    pre = found["pre"]
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    patch = int(found["patch"] or 0)
    return Version(int(found["major"]), int(found["minor"]), patch, pre is None, parts)


def _label(change: VersionChange) -> str:
    # Images go by their last path component ("api"); charts and values by their name.
    return change.name.rsplit("/", 1)[-1] if change.kind == "image" else change.name


def semver_findings(spec: SemverGuard, change: PlannedChange) -> list[Finding]:
    findings = []
    for item in change.changes:
        if item.kind not in ("image", "chart"):
            continue
        old, new = parse_version(item.old), parse_version(item.new)
        if old is None or new is None:
            continue
        if new.major > old.major:
            what = "a major version jump"
        elif new < old:
            what = "a downgrade"
        else:
            continue
        problem = f"{plain(_label(item))} {plain(item.old or '')} → {plain(item.new)} is {what}"
        findings.append(forceable(spec.kind, "semver guard", problem, change))
    return findings
