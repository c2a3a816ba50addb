"""Walking the configuration schema and a parsed YAML file in one notation, for the docs tests."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType):
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def issubclass_model(tp: Any) -> bool:
    tp = _unwrap(tp)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _models_in(tp: Any) -> list[type[BaseModel]]:
    """Every model a field may hold: one, or each kind of a (discriminated) union of models."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        found = [m for a in get_args(tp) for m in _models_in(a)]
        return found
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def schema_leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every leaf key of the schema, as `apps[].environments.<env>.backend` (the key users write:
    a field's alias when it has one; the keys of every kind of a union of models)."""
    for name, field in model.model_fields.items():
        tp, path = _unwrap(field.annotation), prefix + (field.alias or name)
        if get_origin(tp) is tuple and _models_in(get_args(tp)[0]):
            tp, path = get_args(tp)[0], path + "[]"
        elif get_origin(tp) is Mapping:
            tp, path = _unwrap(get_args(tp)[1]), path + ".<env>"
        models = _models_in(tp) or _models_in(field.annotation)
        if models:
            for member in models:
                yield from schema_leaves(member, path + ".")
        else:
            yield path


def data_paths(data: object, path: str = "") -> Iterator[str]:
    """Every key path present in parsed YAML, in the same notation as `schema_leaves`."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = "<env>" if path == "apps[].environments" else key
            child = f"{path}.{name}" if path else name
            yield child
            yield from data_paths(value, child)
    elif isinstance(data, list):
        for item in data:
            yield from data_paths(item, path + "[]")
