"""Turn pydantic validation errors into short problems with the path of each bad key.

`argocd[1].url: not a URL`: dotted keys, list indexes in brackets, mapping keys dotted.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from services.settings.types import shown

Loc = Sequence[str | int]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration. `kind` is the pydantic error type or our own tag."""

    path: str
    message: str
    kind: str = "config"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def format_path(loc: Loc) -> str:
    """('apps', 0, 'environments', 'prod', 'instance') -> 'apps[0].environments.prod.instance'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(word: object, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    if not isinstance(word, str):
        return ""
    by_folded = {c.casefold(): c for c in choices}  # 'info' -> 'INFO'
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f" (did you mean '{by_folded[close[0]]}'?)" if close else ""


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to X."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class found by following `loc` through fields, tuple items and mapping values."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif origin is tuple:
            tp = get_args(tp)[0]
        elif origin in (dict, Mapping):
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _got(value: object) -> str:
    if value is None:
        return "nothing (empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"the text {shown(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "path_type": "a file path",
    "timedelta_type": "a duration",
}


def _literal_message(error: ErrorDetails) -> str:
    expected = str(error.get("ctx", {}).get("expected", ""))
    choices = re.findall(r"'([^']*)'", expected)
    return f"{shown(error['input'])} is not one of: {', '.join(choices)}" + suggest(error["input"], choices)


def _message(root: type[BaseModel], error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    loc = error["loc"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1])
        valid = list(model.model_fields) if model is not None else []
        return "unknown key" + suggest(loc[-1], valid)
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_got(error['input'])}"
    if kind == "literal_error":
        return _literal_message(error)
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "less_than_equal": ("must be at most", "le"),
        "greater_than": ("must be greater than", "gt"),
        "less_than": ("must be less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{words} {ctx.get(key)}, got {error['input']}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return error["msg"]  # our own PydanticCustomError messages, and anything rare


# Lists of entries told apart by `kind`: pydantic puts the kind into the error's location
# (`validators.0.change_window.timezone`); the key a user wrote has no such level.
_BY_KIND = frozenset({"validators", "notifiers"})


def translate(root: type[BaseModel], exc: ValidationError) -> list[Problem]:
    """One `Problem` per pydantic error of validating `root`, in the order pydantic found them."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if len(loc) >= 4 and loc[0] in _BY_KIND and isinstance(loc[1], int) and isinstance(loc[2], str):
            loc = (*loc[:2], *loc[3:])
        if loc and loc[-1] == "[key]":
            problems.append(Problem(format_path(loc[:-1]), "keys must be text", error["type"]))
            continue
        problems.append(Problem(format_path(loc), _message(root, error), error["type"]))
    return problems
