"""HTTP plumbing for the fake Argo CD (and the Kubernetes, Flux, Tekton and OCI fakes built on it):
its `Reply`, and a server that can go down and come back on its port (`http_server`, with the path
unquoted and HEAD answered).

`slack_http.LocalHttpServer` does not fit here: it always binds port 0, flattens repeated query
parameters (Argo CD uses `projects=a&projects=b`) and only routes GET and POST.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from sandbox.http_server import HttpServer, Request

__all__ = ["Handler", "RebindableServer", "Reply", "Request"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: Iterator[bytes] | None = None  # a streamed body (watches, event streams): see http_server


Handler = Callable[[Request], Reply]


def _crashed(exc: Exception) -> Reply:
    # Argo CD's error shape, so a client reads a crash of the fake as a server error.
    return Reply(500, f'{{"error":"fake crashed: {type(exc).__name__}","code":13}}'.encode())


class RebindableServer(HttpServer):
    """Serves `handler` on 127.0.0.1; `down()`/`up()` close and reopen the same port."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(handler, "fake-argocd", crashed=_crashed, head=True)
