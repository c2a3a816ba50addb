"""Argo CD's REST error shape: grpc-gateway v1 `{"error", "code", "message"}` with gRPC codes."""

from __future__ import annotations

import json

from sandbox.argocd_http import Reply

CANCELED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
NOT_FOUND = 5
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

# runtime.HTTPStatusFromCode of grpc-gateway v1 (FailedPrecondition is 400, not 412).
_HTTP_STATUS = {
    CANCELED: 408,
    UNKNOWN: 500,
    INVALID_ARGUMENT: 400,
    4: 504,
    NOT_FOUND: 404,
    6: 409,
    PERMISSION_DENIED: 403,
    8: 429,
    FAILED_PRECONDITION: 400,
    10: 409,
    11: 400,
    UNIMPLEMENTED: 501,
    INTERNAL: 500,
    UNAVAILABLE: 503,
    15: 500,
    UNAUTHENTICATED: 401,
}

# The reverse, for injected gateway errors that only give an HTTP status.
_CODE_FOR_STATUS = {400: 3, 401: 16, 403: 7, 404: 5, 408: 1, 409: 10, 429: 8, 501: 12, 503: 14, 504: 4}


class ApiError(Exception):
    """An error the fake answers with, in Argo CD's JSON shape."""

    def __init__(self, code: int, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else _HTTP_STATUS.get(code, 500)

    def reply(self) -> Reply:
        return error_reply(self.status, self.code, self.message)


def error_reply(status: int, code: int, message: str) -> Reply:
    body = {"error": message, "code": code, "message": message}
    return Reply(status, json.dumps(body).encode())


def code_for_status(status: int) -> int:
    return _CODE_FOR_STATUS.get(status, UNKNOWN)


def permission_denied() -> ApiError:
    return ApiError(PERMISSION_DENIED, "permission denied")


def app_not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, f'applications.argoproj.io "{name}" not found')


def busy() -> ApiError:
    return ApiError(FAILED_PRECONDITION, "another operation is already in progress")
