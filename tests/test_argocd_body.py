"""How the Argo CD transport reads a body (issue 20): whole, into one buffer the body's size, not
left on httpx's response (which sits in a reference cycle until the collector's next full pass),
and a GET cut off half way through its body is tried again."""

from __future__ import annotations

import gc
import gzip
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from sandbox.argocd_fake import JWT_TOKEN
from services.argocd.client import ArgoCDClient
from services.argocd.errors import ArgoCDError, ArgoCDNotFound, ArgoCDUnauthenticated, ArgoCDUnavailable
from services.settings.model import ArgoCDInstance

INSTANCE = ArgoCDInstance(name="prod", url="https://argocd.example.com", token_env="T")


def _size(content: bytes) -> int:
    return len(content)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_large_list_is_not_left_behind_for_the_collector(chunked: bool) -> None:
    body = json.dumps(
        {"items": [{"metadata": {"name": f"app-{i:05d}"}, "x": "y" * 2000} for i in range(1500)]}
    )
    server = _Server([_answer(body.encode(), chunked=chunked)] * 2)  # built before anything is measured
    try:
        client = _client_at(server)
        size = client.list_apps_as(_size)  # warm: connection, imports, caches
        gc.collect()
        gc.disable()  # what only the collector would free counts as held
        tracemalloc.start()
        try:
            client.list_apps_as(_size)
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            gc.enable()
    finally:
        server.close()
    assert size == len(body) > 3_000_000
    assert held < size / 10  # before: the whole body, kept on the response until a full collection
    assert peak < size * 1.5  # before: the chunks and their joined copy at once (2x)


def _client(handler: httpx.MockTransport) -> ArgoCDClient:
    return ArgoCDClient(INSTANCE, JWT_TOKEN, transport=handler, sleep=lambda _: None)


def test_a_compressed_or_chunked_body_is_read_whole() -> None:
    body = json.dumps({"items": [{"metadata": {"name": f"app-{i}"}} for i in range(200)]}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    answers = [
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body)),
        httpx.Response(200, content=chunks()),  # no Content-Length: chunked
        httpx.Response(200, content=body),
    ]
    client = _client(httpx.MockTransport(lambda request: answers.pop(0)))
    for _ in range(3):
        assert client.list_apps_as(bytes) == body


def test_an_announced_length_is_not_trusted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10**12)}, content=b'{"items": []}')

    client = _client(httpx.MockTransport(handler))
    tracemalloc.start()
    try:
        assert client.list_apps(fields=None) == {"items": []}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20


def _answer(body: bytes, *, chunked: bool = False, length: int | None = None) -> bytes:
    """One whole HTTP/1.1 answer: with Content-Length (`length`, if it should lie), or chunked."""
    if not chunked:
        return (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) if length is None else length}\r\n\r\n".encode()
            + body
        )
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    framed = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


class _Server:
    """Answers each request on a fresh connection with the next prepared answer, then hangs up."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1
                conn.sendall(self.answers.pop(0))

    def close(self) -> None:
        self._sock.close()


def _client_at(server: _Server) -> ArgoCDClient:
    instance = ArgoCDInstance(name="prod", url=f"http://127.0.0.1:{server.port}", token_env="T")
    return ArgoCDClient(instance, JWT_TOKEN, sleep=lambda _: None)


def test_a_get_cut_off_half_way_through_its_body_is_tried_again() -> None:
    body = json.dumps({"items": [{"metadata": {"name": "web"}}]}).encode()
    server = _Server([_answer(body[:10], length=100_000), _answer(body)])
    try:
        assert _client_at(server).list_apps_as(bytes) == body
        assert server.requests == 2
    finally:
        server.close()


@pytest.mark.parametrize(
    ("status", "error"), [(401, ArgoCDUnauthenticated), (404, ArgoCDNotFound), (503, ArgoCDUnavailable)]
)
def test_an_error_body_is_still_read_as_the_gateways_message(status: int, error: type[ArgoCDError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "no", "code": 5, "message": "applications not visible"})

    client = ArgoCDClient(INSTANCE, JWT_TOKEN, transport=httpx.MockTransport(handler), sleep=lambda _: None)
    with pytest.raises(error) as caught:
        client.list_apps_as(_size)
    assert caught.value.message == "applications not visible"
    assert caught.value.status == status
