"""Typed reads of decoded JSON: the hosts' payloads are only looked at through these.

A field of the wrong type reads as missing rather than crashing deep in a conversion; the
converters decide what a missing field means.
"""

from __future__ import annotations

from collections.abc import Mapping

Obj = Mapping[str, object]
_EMPTY: Obj = {}


def obj(value: object) -> Obj:
    return value if isinstance(value, Mapping) else _EMPTY


def objs(value: object) -> list[Obj]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def text(data: Obj, key: str, default: str = "") -> str:
    value = data.get(key)
    return value if isinstance(value, str) else default


def opt_text(data: Obj, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def num(data: Obj, key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flag(data: Obj, key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def texts(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()
