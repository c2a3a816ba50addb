"""A fake OCI registry (Distribution API v2) on 127.0.0.1: manifests by tag or digest, token auth.

What it serves, as a real registry does:
- `GET /v2/`: 200, or 401 with a `WWW-Authenticate` challenge when auth is on;
- `GET /token?service=…&scope=repository:<name>:pull` (auth "token"): an opaque token for the
  repositories asked for (pull only), after checking HTTP Basic credentials when some are
  configured (anonymous tokens otherwise); a wrong password is a 401 either way;
- `HEAD`/`GET /v2/<name>/manifests/<tag-or-digest>`: 200 with `Docker-Content-Digest`,
  `Content-Type` and `Content-Length` when the manifest's media type is in `Accept`; 404 with
  `MANIFEST_UNKNOWN` / `NAME_UNKNOWN`; 401 without a token, with an expired one, or with one not
  scoped to that repository (`error="insufficient_scope"`); auth "basic" wants Basic credentials.

Seed with `push("team/api", "1.4.3")`; every request is in `requests`; `fail(503)`, `hang()`,
`down()` make it misbehave. Use it as a context manager or `start()`/`stop()`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from sandbox.argocd_http import RebindableServer, Reply, Request

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_LISTS = (OCI_INDEX, DOCKER_LIST)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")

Auth = Literal["anonymous", "token", "basic"]


@dataclass(frozen=True)
class RegistryRequest:
    """One request as the registry saw it (headers lower-cased)."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]

    @property
    def auth_scheme(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value.split(" ", 1)[0].lower() if value else None


@dataclass(frozen=True)
class _Manifest:
    media_type: str
    body: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.body).hexdigest()


@dataclass
class _Repository:
    tags: dict[str, str] = field(default_factory=dict)  # tag → digest
    manifests: dict[str, _Manifest] = field(default_factory=dict)  # digest → manifest


@dataclass(frozen=True)
class _Token:
    repositories: frozenset[str]  # pull granted on these
    expires: float


def _errors(code: str, message: str, detail: object = None) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


class FakeOCIRegistry:
    """auth: "anonymous" (no checks), "token" (Bearer tokens from `/token`), "basic" (HTTP Basic)."""

    def __init__(
        self,
        *,
        auth: Auth = "anonymous",
        username: str | None = None,
        password: str | None = None,
        service: str = "fake-registry",
        token_seconds: int = 300,
        token_field: Literal["token", "access_token", "both"] = "both",  # noqa: S107 (a key name)
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = auth
        self.service = service
        self.token_seconds = token_seconds
        self.token_field = token_field
        self._username = username
        self._password = password
        self._clock = clock
        self._lock = threading.Lock()
        self._repositories: dict[str, _Repository] = {}
        self._tokens: dict[str, _Token] = {}
        self._requests: list[RegistryRequest] = []
        self._failing: int | None = None
        self._hang_seconds = 0.0
        self._release = threading.Event()
        self._server = RebindableServer(self._handle)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeOCIRegistry:
        self._server.up()
        return self

    def stop(self) -> None:
        self._release.set()  # hanging requests answer now
        self._server.down()

    def __enter__(self) -> FakeOCIRegistry:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """host:port, as written in image references ("127.0.0.1:PORT/team/api:1.4.3")."""
        return f"127.0.0.1:{self._server.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # -- seeding and faults -------------------------------------------------------------------------

    def push(self, name: str, tag: str | None = None, *, media_type: str = DOCKER_MANIFEST) -> str:
        """Store a manifest for `name` (tagged `tag` when given); returns its digest."""
        if not _NAME.match(name) or (tag is not None and not _TAG.match(tag)):
            raise ValueError(f"not a valid repository name or tag: {name}:{tag}")
        content: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type}
        seed = f"{name}:{tag}:{media_type}:{secrets.token_hex(4)}".encode()
        if media_type in _LISTS:
            content["manifests"] = []
        else:
            config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(seed)}
            content["config"] = {**config, "digest": "sha256:" + hashlib.sha256(seed).hexdigest()}
            content["layers"] = []
        manifest = _Manifest(media_type, json.dumps(content, sort_keys=True).encode())
        with self._lock:
            repo = self._repositories.setdefault(name, _Repository())
            repo.manifests[manifest.digest] = manifest
            if tag is not None:
                repo.tags[tag] = manifest.digest
        return manifest.digest

    def untag(self, name: str, tag: str) -> None:
        with self._lock:
            self._repositories[name].tags.pop(tag, None)

    def fail(self, status: int = 503) -> None:
        """Answer every request with `status` (a registry behind a sick load balancer)."""
        self._failing = status

    def hang(self, seconds: float = 30.0) -> None:
        """Hold every request this long before answering (until `heal()` or `stop()`)."""
        self._release.clear()
        self._hang_seconds = seconds

    def heal(self) -> None:
        self._failing = None
        self._hang_seconds = 0.0
        self._release.set()

    def down(self) -> None:
        """Close the port: connections are refused until `up()`."""
        self._server.down()

    def up(self) -> None:
        self._server.up()

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    @property
    def requests(self) -> list[RegistryRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- serving ------------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Reply:
        query = {k: tuple(v) for k, v in request.query.items()}
        with self._lock:
            self._requests.append(RegistryRequest(request.method, request.path, query, request.headers))
        if self._hang_seconds:
            self._release.wait(self._hang_seconds)
        if self._failing is not None:
            return Reply(self._failing, _errors("UNAVAILABLE", "service unavailable"))
        if request.method not in ("GET", "HEAD"):
            return Reply(405, _errors("UNSUPPORTED", "the operation is unsupported"))
        if request.path == "/token" and self.auth == "token":
            return self._token(request)
        if request.path in ("/v2", "/v2/"):
            return self._check_auth(request, None) or self._reply(200, b"{}")
        found = _MANIFEST_PATH.match(request.path)
        if found is None:
            return Reply(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")
        return self._manifest(request, found["name"], found["reference"])

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> Reply:
        every = {"Docker-Distribution-API-Version": "registry/2.0", **(headers or {})}
        if content_type is None:
            return Reply(status, body, headers=every)
        return Reply(status, body, content_type=content_type, headers=every)

    def _manifest(self, request: Request, name: str, reference: str) -> Reply:
        if not _NAME.match(name):
            return self._reply(400, _errors("NAME_INVALID", "invalid repository name", name))
        if ":" in reference and not _DIGEST.match(reference):
            return self._reply(400, _errors("DIGEST_INVALID", "provided digest did not match", reference))
        if ":" not in reference and not _TAG.match(reference):
            return self._reply(400, _errors("TAG_INVALID", "manifest tag did not match URI", reference))
        denied = self._check_auth(request, name)
        if denied is not None:
            return denied
        with self._lock:
            repo = self._repositories.get(name)
            digest = reference if ":" in reference else (repo.tags.get(reference) if repo else None)
            manifest = repo.manifests.get(digest) if repo is not None and digest else None
        if repo is None:
            return self._reply(404, _errors("NAME_UNKNOWN", "repository name not known to registry", name))
        if manifest is None or not _accepts(request.headers.get("accept", ""), manifest.media_type):
            detail = {"Tag": reference} if ":" not in reference else {"Digest": reference}
            return self._reply(404, _errors("MANIFEST_UNKNOWN", "manifest unknown", detail))
        headers = {"Docker-Content-Digest": manifest.digest, "ETag": f'"{manifest.digest}"'}
        return self._reply(200, manifest.body, headers, content_type=manifest.media_type)

    # -- auth ---------------------------------------------------------------------------------------

    def _basic_ok(self, header: str) -> bool | None:
        """None: no Basic credentials sent; else whether they match."""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(f"{user}\0{password}", f"{self._username}\0{self._password}")

    def _challenge(self, name: str | None, error: str | None = None) -> Reply:
        if self.auth == "basic":
            header = f'Basic realm="{self.service}"'
        else:
            header = f'Bearer realm="{self.realm}",service="{self.service}"'
            if name is not None:
                header += f',scope="repository:{name}:pull"'
            if error:
                header += f',error="{error}"'
        body = _errors("UNAUTHORIZED", "authentication required", None)
        return self._reply(401, body, {"WWW-Authenticate": header})

    def _check_auth(self, request: Request, name: str | None) -> Reply | None:
        header = request.headers.get("authorization", "")
        if self.auth == "anonymous":
            return None
        if self.auth == "basic":
            return None if self._basic_ok(header) else self._challenge(name)
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return self._challenge(name)
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.expires <= self._clock():
            return self._challenge(name, "invalid_token")
        if name is not None and name not in token.repositories:
            return self._challenge(name, "insufficient_scope")
        return None

    def _token(self, request: Request) -> Reply:
        if request.first("service") != self.service:
            return self._reply(400, json.dumps({"details": "unknown service"}).encode())
        given = self._basic_ok(request.headers.get("authorization", ""))
        if given is False or (given is None and self._username is not None):
            refused = json.dumps({"details": "incorrect username or password"}).encode()
            return self._reply(401, refused)
        granted: set[str] = set()
        for scope in request.query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and _NAME.match(name) and "pull" in actions.split(","):
                granted.add(name)  # pull only: push is never granted here
        value = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[value] = _Token(frozenset(granted), self._clock() + self.token_seconds)
        body: dict[str, object] = {"expires_in": self.token_seconds}
        if self.token_field in ("token", "both"):
            body["token"] = value
        if self.token_field in ("access_token", "both"):
            body["access_token"] = value
        return self._reply(200, json.dumps(body).encode())


def _accepts(accept: str, media_type: str) -> bool:
    """Whether the client's Accept lists `media_type`; no Accept at all is an old docker client,
    which only knows Docker's single-platform manifest."""
    listed = {part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()}
    if not listed:
        return media_type == DOCKER_MANIFEST
    return media_type in listed or "*/*" in listed
