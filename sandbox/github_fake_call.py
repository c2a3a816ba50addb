"""One authenticated call to the fake GitHub (who, which repository, the rest of the path) and the
errors and body checks its handlers share.

Request bodies are checked the way GitHub checks them against its JSON schemas: a wrong type or a
value outside an enum is a 422 `Invalid request.` naming the property; a missing required one says
it "wasn't supplied"; a body that is not JSON is a 400 `Problems parsing JSON`. Unknown properties
are ignored, as GitHub does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.github_fake_http import Reply, Request
from sandbox.github_fake_objects import DOCS, Json, Links, error
from sandbox.github_fake_state import Repo, User, World


class ApiError(Exception):
    """Answer with `status` and `body` (already GitHub's JSON shape)."""

    def __init__(self, status: int, body: Json, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        return Reply.json(self.status, self.body, self.headers)


def not_found() -> ApiError:
    return ApiError(404, error("Not Found", 404))


@dataclass(frozen=True)
class Call:
    request: Request
    user: User
    repo: Repo
    rest: list[str]  # path segments after /repos/{owner}/{repo}
    links: Links
    world: World

    def need(self, level: str) -> None:
        """403 unless the caller may `write` (or `admin`) the repository."""
        have = self.world.permission(self.repo, self.user)
        order = ("none", "read", "write", "admin")
        if order.index(have) < order.index(level):
            message = "Resource not accessible by personal access token"
            raise ApiError(
                403,
                error(
                    message,
                    403,
                    f"{DOCS}/overview/permissions-required-for-fine-grained-personal-access-tokens",
                ),
            )


# -- bodies -------------------------------------------------------------------------------------------

Spec = Mapping[str, tuple[type | tuple[type, ...], tuple[str, ...]]]  # name -> (types, enum or ())


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _describe(types: type | tuple[type, ...]) -> str:
    names = {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}
    listed = types if isinstance(types, tuple) else (types,)
    return " or ".join(names.get(t, t.__name__) for t in listed)


def body_of(request: Request, spec: Spec, required: tuple[str, ...] = (), *, nullable: bool = False) -> Json:
    """The JSON object body checked against `spec`; {} for an empty body when `nullable`."""
    try:
        data = request.json()
    except ValueError:
        raise ApiError(400, error("Problems parsing JSON", 400)) from None
    if data is None and nullable:
        return {}
    if not isinstance(data, dict):
        raise ApiError(422, error(f"Invalid request.\n\n{_kind(data)} is not an object.", 422))
    for name in required:
        if name not in data:
            raise ApiError(422, error(f'Invalid request.\n\n"{name}" wasn\'t supplied.', 422))
    for name, (types, choices) in spec.items():
        if name not in data:
            continue
        value = data[name]
        listed = types if isinstance(types, tuple) else (types,)
        wrong_bool = isinstance(value, bool) and bool not in listed  # True is an int in Python
        if wrong_bool or not isinstance(value, listed):
            shown = "null" if value is None else repr(value).replace("'", '"')
            message = f"Invalid request.\n\nFor 'properties/{name}', {shown} is not a {_describe(types)}."
            raise ApiError(422, error(message, 422))
        if choices and value not in choices:
            options = ", ".join(f'"{c}"' for c in choices)
            message = f"Invalid request.\n\nFor 'properties/{name}', \"{value}\" is not one of [{options}]."
            raise ApiError(422, error(message, 422))
    return data


def number_of(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise not_found() from None
