"""Reading a ready `git diff` of YAML manifests (Flux): split per file, and a best-effort summary.

Hunk bodies are consumed by the line counts in their `@@ -a,b +c,d @@` headers, so a removed line
that itself starts with "-- " (a YAML document separator, say) is never taken for a file header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from services.diffing.summary import bound, counted, image_phrase, plural, split_image

ChangeKind = Literal["changed", "created", "pruned"]
DEV_NULL = "/dev/null"

_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_KEY_LINE = re.compile(r"\s*(?:-\s+)*([A-Za-z][\w.-]*)\s*:(?:\s+(.*))?\s*$")
_COMMENT = re.compile(r"\s+#.*$")
_VALUE_KEYS = frozenset({"image", "newTag", "tag", "replicas", "replicaCount", "version"})
_NAME_KEYS = frozenset({"name", "repository", "chart"})
_FALLBACK = "changes (no summary available)"


@dataclass
class FileDiff:
    """One file's part of a unified diff. `body` holds (tag, content) hunk lines, tag in " -+@"."""

    lines: list[str] = field(default_factory=list)
    old_path: str | None = None
    new_path: str | None = None
    git_paths: tuple[str, str] | None = None
    rename_to: str | None = None
    created: bool = False
    deleted: bool = False
    added: int = 0
    removed: int = 0
    body: list[tuple[str, str]] = field(default_factory=list)

    @property
    def change(self) -> ChangeKind:
        if self.created or self.old_path == DEV_NULL:
            return "created"
        if self.deleted or self.new_path == DEV_NULL:
            return "pruned"
        return "changed"

    @property
    def path(self) -> str:
        old, new = self.old_path, self.new_path
        if old is not None or new is not None:
            prefixed = all(p == DEV_NULL or p.startswith(("a/", "b/")) for p in (old, new) if p is not None)
            chosen = new if new not in (None, DEV_NULL) else old
            assert chosen is not None
            return chosen[2:] if prefixed and chosen != DEV_NULL else chosen
        if self.rename_to:
            return self.rename_to
        return self.git_paths[1] if self.git_paths else "(unnamed)"


def _unquote(path: str) -> str:
    path = path.split("\t", 1)[0].rstrip("\r")  # plain `diff -u` adds a timestamp after a tab
    if len(path) >= 2 and path[0] == path[-1] == '"':
        return path[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return path


def _git_paths(rest: str) -> tuple[str, str] | None:
    rest = rest.rstrip("\r")
    size = (len(rest) - 5) // 2  # "a/P b/P": both halves equal when the path holds no " b/"
    if (
        rest.startswith("a/")
        and rest[2 + size : 5 + size] == " b/"
        and rest[2 : 2 + size] == rest[5 + size :]
    ):
        return rest[2 : 2 + size], rest[5 + size :]
    before, sep, after = rest.rpartition(" b/")
    return (_unquote(before).removeprefix("a/"), after) if sep else None


def parse_unified(text: str) -> list[FileDiff]:
    """Split a unified / `git diff` text into files. Text before the first file header is dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    old_left = new_left = 0
    for index, line in enumerate(lines):
        if line[:1] not in ("", " ", "+", "-", "\\"):
            old_left = new_left = 0  # a hunk shorter than its header said: this is a header again
        if cur is not None and (old_left > 0 or new_left > 0):
            tag = line[:1] or " "  # some tools strip the space of an empty context line
            cur.lines.append(line)
            if tag == "\\":  # "\ No newline at end of file"
                continue
            tag = tag if tag in "+-" else " "
            old_left -= tag != "+"
            new_left -= tag != "-"
            _count(cur, tag, line[1:])
            continue
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith("diff --git "):
            cur = FileDiff(git_paths=_git_paths(line[len("diff --git ") :]))
            files.append(cur)
        elif line.startswith("--- ") and next_line.startswith("+++ "):
            if cur is None or cur.old_path is not None or cur.body:
                cur = FileDiff()
                files.append(cur)
            cur.old_path = _unquote(line[4:])
        elif cur is None and line.startswith("@@"):
            cur = FileDiff()
            files.append(cur)
        if cur is None:
            continue
        cur.lines.append(line)
        if line.startswith("+++ ") and cur.old_path is not None and cur.new_path is None:
            cur.new_path = _unquote(line[4:])
        elif line.startswith("@@"):
            match = _HUNK.match(line)
            old_left = int(match.group(1) or 1) if match else 0
            new_left = int(match.group(2) or 1) if match else 0
            cur.body.append(("@", ""))
        elif line.startswith("new file mode"):
            cur.created = True
        elif line.startswith("deleted file mode"):
            cur.deleted = True
        elif line.startswith("rename to "):
            cur.rename_to = _unquote(line[len("rename to ") :])
        elif line[:1] in ("+", "-") and cur.body and not line.startswith(("--- ", "+++ ")):
            _count(cur, line[0], line[1:])  # a hunk whose header counts were wrong: best effort
    return files


def _count(cur: FileDiff, tag: str, content: str) -> None:
    cur.added += tag == "+"
    cur.removed += tag == "-"
    cur.body.append((tag, content.rstrip("\r")))


# --- summary ----------------------------------------------------------------------------------


def _parse_line(content: str) -> tuple[str, str] | None:
    match = _KEY_LINE.match(content)
    if not match:
        return None
    value = (match.group(2) or "").strip()
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        value = value[1:end] if end > 0 else value[1:]
    else:
        value = _COMMENT.sub("", value)  # e.g. Flux image automation markers: # {"$imagepolicy": …}
    return match.group(1), value


def _last_segment(ref: str) -> str:
    return split_image(ref)[0].rsplit("/", 1)[-1] or ref


class _FileSummary:
    """Pairs `-key: old` with `+key: new` inside each run of changed lines, in order."""

    def __init__(self, helm: bool) -> None:
        self.helm = helm
        self.names: dict[tuple[str, str], str] = {}  # (side, key) -> last value of name/repository/chart
        self.parent = ""  # the last `key:` opening a mapping, to tell an image `tag:` from others
        self.images: list[str] = []
        self.charts: list[str] = []
        self.replicas: list[str] = []
        self.run: dict[str, list[tuple[str, str, str, str]]] = {}  # key -> (side, value, label, parent)

    def feed(self, body: Iterable[tuple[str, str]]) -> None:
        for tag, content in body:
            if tag in " @":
                self.flush()
            parsed = _parse_line(content) if tag != "@" else None
            if parsed is None:
                continue
            key, value = parsed
            sides = ("-", "+") if tag == " " else (tag,)
            if not value:
                self.parent = key
            elif key in _NAME_KEYS:
                for side in sides:
                    self.names[(side, key)] = value
            if tag in "+-" and key in _VALUE_KEYS and value:
                self.run.setdefault(key, []).append((tag, value, self._label(tag, key), self.parent))
        self.flush()

    def _label(self, side: str, key: str) -> str:
        source = {"newTag": "name", "tag": "repository", "version": "chart"}.get(key)
        return self.names.get((side, source), "") if source else ""

    def flush(self) -> None:
        for key, entries in self.run.items():
            olds = [e for e in entries if e[0] == "-"]
            news = [e for e in entries if e[0] == "+"]
            for old, new in zip(olds, news, strict=False):
                self._pair(key, old, new)
        self.run = {}

    def _pair(self, key: str, old: tuple[str, str, str, str], new: tuple[str, str, str, str]) -> None:
        before, after, label = old[1], new[1], new[2] or old[2]
        if before == after:
            return
        if key == "image":
            phrase = image_phrase(_last_segment(after), before, after)
            self.images.extend([phrase] if phrase else [])
        elif key == "newTag" or (key == "tag" and (label or new[3] == "image")):
            shown = _last_segment(label) if label else "tag"
            self.images.append(f"image {bound(shown)} {bound(before)} → {bound(after)}")
        elif key in ("replicas", "replicaCount"):
            self.replicas.append(f"replicas {bound(before)} → {bound(after)}")
        elif key == "version" and (label or self.helm):
            self.charts.append(f"chart {bound(label or 'version')} {bound(before)} → {bound(after)}")


def summarize_files(files: list[FileDiff]) -> str:
    """The summary of parsed files; best effort, never raises."""
    try:
        return _summarize_files(files)
    except Exception:  # a summary is decoration: never fail a diff command over it
        return _FALLBACK


def _summarize_files(files: list[FileDiff]) -> str:
    images: list[str] = []
    charts: list[str] = []
    replicas: list[str] = []
    for diff in files:
        helm = any("HelmRelease" in content for _, content in diff.body)
        summary = _FileSummary(helm)
        summary.feed(diff.body)
        images += summary.images
        charts += summary.charts
        replicas += summary.replicas
    phrases = counted(images, 5, "image changes") + counted(charts, 5, "chart changes")
    phrases += counted(replicas, 3, "replica changes")
    if files:
        new = sum(f.change == "created" for f in files)
        gone = sum(f.change == "pruned" for f in files)
        detail = ", ".join(p for p in (f"{new} new" if new else "", f"{gone} deleted" if gone else "") if p)
        phrases.append(plural(len(files), "file") + " changed" + (f" ({detail})" if detail else ""))
    return ", ".join(phrases) or "no changes"


def summarize_unified(diff_text: str) -> str:
    """The one-line summary of a `git diff` of YAML manifests; best effort, never raises."""
    try:
        return _summarize_files(parse_unified(diff_text))
    except Exception:  # a summary is decoration: never fail a diff command over it
        return _FALLBACK


__all__ = ["ChangeKind", "FileDiff", "parse_unified", "summarize_files", "summarize_unified"]
