"""`kind: Status` failure bodies with the API server's wording (k8s.io/apimachinery `errors.New*`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.argocd_http import Reply

USER = "system:serviceaccount:flux-system:gitops-bot"


@dataclass(frozen=True)
class Cause:
    """One `details.causes[]` entry: a field error."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueTypeInvalid, ...
    message: str  # the error body without the field, e.g. `Required value`
    field: str

    def text(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    details: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def reply(self) -> Reply:
        return status_reply(self.code, self.reason, self.message, self.details, self.headers)


def status_reply(
    code: int,
    reason: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return Reply(code, json.dumps(body).encode(), headers=dict(headers or {}))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def no_route() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def not_found(group: str, plural: str, name: str) -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', details)


def forbidden(group: str, plural: str, verb: str, *, namespace: str | None, name: str = "") -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    subject = f'{resource} "{name}"' if name else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    who = f'User "{USER}" cannot {verb} resource "{plural}" in API group "{group}" {scope}'
    message = f"{subject} is forbidden: {who}"
    details: dict[str, Any] = {"group": group, "kind": plural}
    if name:
        details = {"name": name, **details}
    return ApiError(403, "Forbidden", message, details)


def conflict(group: str, plural: str, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {plural}.{group} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, {"name": name, "group": group, "kind": plural})


def invalid(group: str, kind: str, name: str, causes: Sequence[Cause]) -> ApiError:
    listed = [c.text() for c in causes]
    summary = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    details = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    return ApiError(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {summary}', details)


def unsupported_media_type() -> ApiError:
    # The fake takes no apply-patch (server-side apply), so it does not list it as accepted.
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json"
    )
    return ApiError(415, "UnsupportedMediaType", message, {})


def internal(message: str) -> ApiError:
    return ApiError(
        500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
    )
