"""A small scripted HTTP server for the git-host client tests, and the contract checks of its bodies.

`Stub` answers each (method, path) with the replies a test queued (the last one repeats) and
records every request. Replies are built with `gh(...)` (validated against the operation's
response schema in `contracts/github/api.github.com.trimmed.json`) or `gl(...)` (compared field
by field with a `contracts/gitlab/examples/*.json` body), so a stub cannot answer what the real
host would not. The full stateful fakes live in `sandbox/` (helper B); this one scripts edges.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts"
GITHUB_SPEC = CONTRACTS / "github" / "api.github.com.trimmed.json"
GITHUB_EXAMPLES = CONTRACTS / "github" / "examples"
GITLAB_EXAMPLES = CONTRACTS / "gitlab" / "examples"
if not CONTRACTS.is_dir():  # next to the repository in development; not in every clone
    pytest.skip(
        "the Git host contracts (shared/contracts) are not next to the repository", allow_module_level=True
    )


# -- replies and the server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (timeouts)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # raw, still percent-encoded (GitLab's `group%2Fproject` must arrive as sent)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # decoded JSON, or None

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: Stub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY keep-alive clients stall ~40 ms per request (TESTING.md).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        seen = Seen(
            method=self.command,
            path=path,
            query=urllib.parse.parse_qs(query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        stub = self.server.stub
        reply = stub.answer(seen)
        if reply.delay:
            time.sleep(reply.delay)
        stub.done()  # before answering: a serialised next request must not overlap this one
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (timeout tests)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815


class Stub:
    """`with Stub() as stub:`; `stub.on("GET", "/repos/o/r", reply, …)`; `stub.seen`."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], deque[Reply]] = {}
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests the stub was answering at once
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> Stub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def on(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._routes[(method, path)] = deque(replies)

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            queue = self._routes.get((seen.method, seen.path))
            if not queue:
                body = {"message": f"stub: no route for {seen.method} {seen.path}"}
                return Reply(599, json.dumps(body).encode(), {"Content-Type": "application/json"})
            return queue.popleft() if len(queue) > 1 else queue[0]

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def calls(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


class Sleeps(list[float]):
    """An injected `sleep` that only records how long the client wanted to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def together(*calls: Callable[[], object]) -> None:
    """Run `calls` at the same time, each in its own thread, and wait for all."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- GitHub: bodies from the description, validated against its schemas --------------------------

DOCS = "https://docs.github.com/rest"


def gh_error(message: str, **extra: Any) -> dict[str, Any]:
    """GitHub's `basic-error` (`validation-error` with `errors=[…]`)."""
    return {"message": message, "documentation_url": DOCS, **extra}


def ruleset_rule(kind: str, **parameters: Any) -> dict[str, Any]:
    """One `repository-rule-detailed` item, as `rules/branches/{b}` lists it."""
    source = {"ruleset_source_type": "Repository", "ruleset_source": "octo-org/deploy", "ruleset_id": 9}
    return {"type": kind, **source, "parameters": parameters}


def classic_branch(*, reviews: int | None = None, contexts: tuple[str, ...] = ()) -> dict[str, Any]:
    """`repos/get-branch` of a branch under classic protection (or unprotected with no arguments)."""
    branch = oas_example("branch-get")
    if reviews is None and not contexts:
        return branch
    checks = [{"context": c, "app_id": None} for c in contexts]
    required = {"enforcement_level": "non_admins", "contexts": list(contexts), "checks": checks}
    branch["protected"] = True
    branch["protection"] = {"enabled": True, "required_status_checks": required}
    if reviews is not None:
        branch["protection"]["required_pull_request_reviews"] = {
            "dismiss_stale_reviews": True,
            "require_code_owner_reviews": False,
            "required_approving_review_count": reviews,
        }
    return branch


@cache
def _spec() -> dict[str, Any]:
    return json.loads(GITHUB_SPEC.read_text())


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` → JSON Schema's null alternative, recursively."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _components() -> dict[str, Any]:
    return _nullable(_spec()["components"])


def _operation(operation_id: str) -> dict[str, Any]:
    for methods in _spec()["paths"].values():
        for op in methods.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


def _response_schema(operation_id: str, status: int) -> dict[str, Any] | None:
    responses = _operation(operation_id)["responses"]
    response = responses.get(str(status))
    if response is None:
        if status >= 400:  # 401, 403 and 429 are not declared per operation: basic-error
            return {"$ref": "#/components/schemas/basic-error"}
        raise AssertionError(f"{operation_id} does not answer {status} in the contract")
    ref = response.get("$ref")
    if ref:
        response = _spec()["components"]["responses"][ref.rsplit("/", 1)[1]]
    content = response.get("content", {}).get("application/json")
    if content is None and status >= 400:  # a declared error without a schema (git/delete-ref 422)
        return {"$ref": "#/components/schemas/basic-error"}
    return _nullable(content["schema"]) if content else None


def github_problems(operation_id: str, status: int, body: Any) -> list[str]:
    schema = _response_schema(operation_id, status)
    if schema is None:
        return [] if body is None else [f"{operation_id} {status} has no body in the contract"]
    validator = jsonschema.Draft7Validator({**schema, "components": _components()})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(body)]


def gh(operation_id: str, status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """A GitHub reply; fails the test at once if `body` breaks the operation's response schema."""
    problems = github_problems(operation_id, status, body)
    assert not problems, f"stub body for {operation_id} {status} breaks the contract: {problems[:5]}"
    raw = b"" if body is None else json.dumps(body).encode()
    return Reply(status, raw, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def oas_example(name: str) -> Any:
    return copy.deepcopy(_spec()["components"]["examples"][name]["value"])


def github_example(file: str) -> Any:
    return json.loads((GITHUB_EXAMPLES / file).read_text())


def pull(
    number: int = 1347,
    *,
    head: str = "gitops-bot/promote/web-prod-1",
    base: str = "main",
    sha: str = "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    state: str = "open",
    merged: bool = False,
    mergeable: bool | None = None,
    mergeable_state: str = "unknown",
    draft: bool = False,
    author: str = "gitops-bot",
) -> dict[str, Any]:
    """The contract's `pull-request` example, turned into the PR a test needs."""
    pr = github_example("pulls-get.200.json")
    # Known upstream quirk (contracts/github/SOURCE.md): requested_teams[0] lacks the `type` that
    # `team-simple` requires, so the description's own example fails its schema. Noted, patched.
    for team in pr["requested_teams"]:
        team.setdefault("type", "organization")
    pr.update(
        number=number,
        html_url=f"https://github.com/octo-org/deploy/pull/{number}",
        state=state,
        merged=merged,
        mergeable=mergeable,
        mergeable_state=mergeable_state,
        draft=draft,
    )
    pr["head"].update(ref=head, sha=sha, label=f"octo-org:{head}")
    pr["base"].update(ref=base, label=f"octo-org:{base}")
    pr["user"]["login"] = author
    return pr


def pull_simple(number: int, head: str, base: str = "main") -> dict[str, Any]:
    item = oas_example("pull-request-simple-items")[0]
    for team in item.get("requested_teams") or []:
        team.setdefault("type", "organization")
    item["number"] = number
    item["head"].update(ref=head, label=f"octo-org:{head}")
    item["base"].update(ref=base, label=f"octo-org:{base}")
    return item


def repository(**flags: Any) -> dict[str, Any]:
    """`repos/get` for a repository that is not a fork.

    The description's example fails its own schema: it has no `language` (required), and neither
    have its `parent`/`source`. A non-fork has neither of those, so they go; `language` is null.
    """
    repo = oas_example("full-repository-default-response")
    repo.pop("parent", None)
    repo.pop("source", None)
    repo["language"] = None
    repo["full_name"] = "octo-org/deploy"
    repo.update(flags)
    return repo


# -- GitLab: bodies from the doc examples, compared field by field -------------------------------


def gitlab_example(file: str) -> Any:
    return json.loads((GITLAB_EXAMPLES / file).read_text())


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def gitlab_problems(body: Any, example: Any, where: str = "") -> list[str]:
    """Every field of `body` must exist in `example` with the same JSON type (null matches any)."""
    if body is None or example is None:
        return []
    if _json_type(body) != _json_type(example):
        return [f"{where or '/'}: {_json_type(body)} where the example has {_json_type(example)}"]
    problems: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key not in example:
                problems.append(f"{where}/{key}: not in the example")
            else:
                problems += gitlab_problems(value, example[key], f"{where}/{key}")
    elif isinstance(body, list) and example:
        shape = _union(example)
        for i, item in enumerate(body):
            problems += gitlab_problems(item, shape, f"{where}/{i}")
    return problems


def _union(items: list[Any]) -> Any:
    """One example item with every field any item of the example list has (first value wins)."""
    if not all(isinstance(item, dict) for item in items):
        return items[0]
    merged: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            merged.setdefault(key, value)
    return merged


def gl(example_file: str | None, status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    """A GitLab reply; a JSON body must match the named example field by field."""
    if example_file is not None:
        example = gitlab_example(example_file)
        if isinstance(body, list) and isinstance(example, dict):
            example = [example]  # a list endpoint whose items are documented by the single form
        problems = gitlab_problems(body, example)
        assert not problems, f"stub body breaks {example_file}: {problems[:5]}"
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    kind = "text/plain" if isinstance(body, str) else "application/json"
    return Reply(status, raw, {"Content-Type": kind, **(headers or {})})


def merge_request(
    iid: int = 133,
    *,
    source: str = "gitops-bot/promote/web-prod-1",
    target: str = "main",
    sha: str = "e82eb4a098e32c796079ca3915e07487fc4db24c",
    state: str = "opened",
    detailed: str = "mergeable",
    author: str = "gitops-bot",
    draft: bool = False,
) -> dict[str, Any]:
    mr = gitlab_example("mr-get.200.json")
    mr.update(
        iid=iid,
        source_branch=source,
        target_branch=target,
        sha=sha,
        state=state,
        detailed_merge_status=detailed,
        draft=draft,
        web_url=f"https://gitlab.example.com/platform/deploy/-/merge_requests/{iid}",
    )
    mr["author"]["username"] = author
    return mr
