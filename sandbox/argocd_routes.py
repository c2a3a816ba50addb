"""Routing, the Content-Type filter, authentication and the read endpoints of the fake Argo CD."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from typing import Any

from sandbox import argocd_actions as actions
from sandbox.argocd_actions import json_reply, lookup
from sandbox.argocd_controller import REFRESH_ANNOTATION
from sandbox.argocd_errors import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    UNAUTHENTICATED,
    UNIMPLEMENTED,
    UNKNOWN,
    ApiError,
    error_reply,
)
from sandbox.argocd_fields import filter_paths, list_projector, parse_fields
from sandbox.argocd_http import Reply, Request
from sandbox.argocd_live import managed_resources, resource_tree
from sandbox.argocd_schema import BodySchema
from sandbox.argocd_selector import SelectorError, parse_selector
from sandbox.argocd_state import USERNAME, AppRecord, Store
from sandbox.argocd_stream import StreamHub

REFRESH_TIMEOUT = 60.0
_APP = r"/api/v1/applications/(?P<name>[^/]+)"
_NO_SESSION = "no session information"


def _b64_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def is_jwt(token: str) -> bool:
    """`jwt.ParseUnverified` succeeds: three segments, JSON header and claims objects."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        header, claims = _b64_json(parts[0]), _b64_json(parts[1])
        base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and isinstance(claims, dict)


def _cookie_token(request: Request) -> str:
    for part in request.headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "argocd.token":
            return value
    return ""


class ArgoApi:
    """Turns a Request into a Reply the way argocd-server's HTTP stack does."""

    def __init__(
        self, store: Store, schema: BodySchema, *, token: str, version: str, streams: StreamHub
    ) -> None:
        self._store = store
        self._streams = streams
        self._schema = schema
        self._token = token
        self._version = version
        self._routes: list[tuple[str, re.Pattern[str], Callable[[Request, str], Reply], bool]] = [
            ("GET", re.compile(r"/api/version"), self._version_info, False),
            ("GET", re.compile(r"/api/v1/session/userinfo"), self._userinfo, False),
            ("GET", re.compile(r"/api/v1/applications"), self._list, True),
            # Authenticated inside: a refusing proxy answers 404 before Argo CD sees the token.
            ("GET", re.compile(r"/api/v1/stream/applications"), self._watch, False),
            ("GET", re.compile(_APP), self._get, True),
            ("PATCH", re.compile(_APP), lambda r, n: actions.patch(store, schema, r.body, n), True),
            ("POST", re.compile(_APP + "/sync"), lambda r, n: actions.sync(store, schema, r.body, n), True),
            (
                "POST",
                re.compile(_APP + "/rollback"),
                lambda r, n: actions.rollback(store, schema, r.body, n),
                True,
            ),
            ("DELETE", re.compile(_APP + "/operation"), self._terminate, True),
            ("GET", re.compile(_APP + "/managed-resources"), self._managed_resources, True),
            ("GET", re.compile(_APP + "/resource-tree"), self._resource_tree, True),
            (
                "GET",
                re.compile(_APP + r"/revisions/(?P<revision>[^/]+)/metadata"),
                self._revision_metadata,
                True,
            ),
        ]

    def handle(self, request: Request) -> Reply:
        content_type = request.headers.get("content-type", "").strip().lower()
        # argocd-server's content-type filter: exact match, parameters are not tolerated.
        if request.method not in ("GET", "HEAD") and content_type != "application/json":
            return Reply(415, b"Invalid content type", content_type="text/plain; charset=utf-8")
        allowed = False
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                if needs_auth:
                    self._authenticate(request)
                return handler(request, match.groupdict().get("name", ""))
            except ApiError as exc:
                return exc.reply()
        if allowed:
            return error_reply(405, UNIMPLEMENTED, "Method Not Allowed")
        return error_reply(404, NOT_FOUND, "Not Found")

    def _token_of(self, request: Request) -> str:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return token if is_jwt(token) else _cookie_token(request)

    def _authenticated(self, request: Request) -> bool:
        return self._token_of(request) == self._token

    def _authenticate(self, request: Request) -> None:
        token = self._token_of(request)
        if not is_jwt(token):
            raise ApiError(UNAUTHENTICATED, _NO_SESSION)
        if token != self._token:
            raise ApiError(UNAUTHENTICATED, "invalid session: token signature is invalid")

    def _version_info(self, request: Request, _: str) -> Reply:
        if not self._authenticated(request):
            return json_reply({"Version": self._version})
        return json_reply(
            {
                "Version": self._version,
                "BuildDate": "2026-08-22T00:00:00Z",
                "GitCommit": "37ee0097cf851bc2dd7665fc081bbce61a7e836e",
                "GitTag": self._version.split("+")[0],
                "GitTreeState": "clean",
                "GoVersion": "go1.25.0",
                "Compiler": "gc",
                "Platform": "linux/amd64",
                "KustomizeVersion": "v5.7.1 2025-07-23T12:45:29Z",
                "HelmVersion": "v3.18.4+gd80839c",
                "KubectlVersion": "v0.34.0",
                "JsonnetVersion": "v0.21.0",
            }
        )

    def _userinfo(self, request: Request, _: str) -> Reply:
        if not self._authenticated(request):
            return json_reply({})  # HTTP 200, loggedIn omitted (Go's false)
        return json_reply({"loggedIn": True, "username": USERNAME, "iss": "argocd"})

    def _list(self, request: Request, _: str) -> Reply:
        query = request.query
        projects = set(query["project"] if "project" in query else query.get("projects", []))
        try:
            matches = parse_selector(request.first("selector"))
        except SelectorError as exc:
            raise ApiError(UNKNOWN, f"error parsing the selector: {exc}") from None
        name, repo = request.first("name"), request.first("repo")
        namespace = request.first("appNamespace")
        fields = parse_fields(request.first("fields"))
        store = self._store
        with store.lock:
            picked: list[AppRecord] = []
            for key in sorted(store.records):
                record = store.records[key]
                app, spec = record.app, record.spec
                if (
                    record.forbidden
                    or (name and key != name)
                    or (projects and spec.get("project") not in projects)
                    or (repo and (spec.get("source") or {}).get("repoURL") != repo)
                    or (namespace and app["metadata"]["namespace"] != namespace)
                    or not matches(app["metadata"].get("labels") or {})
                ):
                    continue
                picked.append(record)
            list_meta = json.dumps(
                {"resourceVersion": store.resource_version}, separators=(",", ":")
            ).encode()
            if fields is None:
                items = b",".join(record.encoded() for record in picked)
            else:
                project = list_projector(*fields)
                items = b",".join(json.dumps(project(r.app), separators=(",", ":")).encode() for r in picked)
        return Reply(200, b'{"metadata":' + list_meta + b',"items":[' + items + b"]}")

    def _watch(self, request: Request, _: str) -> Reply:
        refused = self._streams.refused()
        if refused is not None:
            return refused
        self._authenticate(request)
        return self._streams.open(request)

    def _scoped(self, request: Request, name: str) -> AppRecord:
        projects = request.query.get("project", []) + request.query.get("projects", [])
        if len(projects) > 1:
            message = "multiple projects specified - the get endpoint accepts either zero or one project"
            raise ApiError(INVALID_ARGUMENT, message)
        project = projects[0] if projects else ""
        return lookup(self._store, name, project=project, app_namespace=request.first("appNamespace"))

    def _get(self, request: Request, name: str) -> Reply:
        store = self._store
        with store.lock:
            record = self._scoped(request, name)
            if "refresh" in request.query:
                self._refresh(record, hard=request.first("refresh") == "hard")
            return Reply(200, record.encoded())

    def _refresh(self, record: AppRecord, *, hard: bool) -> None:
        """Annotate, then block until the controller has reconciled (it removes the annotation)."""
        store = self._store
        annotations = record.app["metadata"].setdefault("annotations", {})
        annotations[REFRESH_ANNOTATION] = "hard" if hard else "normal"
        store.touch(record, wake_controller=True)
        deadline = time.monotonic() + REFRESH_TIMEOUT
        while REFRESH_ANNOTATION in (record.app["metadata"].get("annotations") or {}):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(UNKNOWN, "application refresh deadline exceeded")
            store.changed.wait(remaining)

    def _terminate(self, request: Request, name: str) -> Reply:
        project, namespace = request.first("project"), request.first("appNamespace")
        return actions.terminate(self._store, name, project=project, app_namespace=namespace)

    def _managed_resources(self, request: Request, name: str) -> Reply:
        with self._store.lock:
            record = self._scoped(request, name)
            commit = record.target_commit()
            items = managed_resources(commit.desired() if commit else {}, record.live)
        for key in ("namespace", "name", "group", "kind"):
            wanted = request.first(key)
            if wanted:
                items = [item for item in items if item.get(key, "") == wanted]
        fields = parse_fields(request.first("fields"))
        document: dict[str, Any] = {"items": items}
        return json_reply(document if fields is None else filter_paths(document, *fields))

    def _resource_tree(self, request: Request, name: str) -> Reply:
        with self._store.lock:
            record = self._scoped(request, name)
            commit = record.target_commit()
            tree = resource_tree(commit.desired() if commit else {}, record.live, *record.health)
        return json_reply(tree)

    def _revision_metadata(self, request: Request, name: str) -> Reply:
        revision = request.path.rsplit("/revisions/", 1)[1].removesuffix("/metadata")
        with self._store.lock:
            record = self._scoped(request, name)
            commit = record.repo.resolve(revision)
            if commit is None:
                raise ApiError(NOT_FOUND, f"rpc error: code = NotFound desc = revision {revision} not found")
            metadata: dict[str, Any] = {
                "author": commit.author,
                "date": commit.date,
                "message": commit.message,
            }
            if commit.tags:
                metadata["tags"] = list(commit.tags)
        return json_reply(metadata)
