"""What the fake GitHub and the fake GitLab share: a server on 127.0.0.1 that can go down and come
back on its port, the log of what clients sent, and injected latency. Each fake adds its API,
its world and its own kinds of trouble (`fail_next` bodies differ per host)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sandbox.github_fake_http import Faults, Handler, RecordedRequest, Request, Server


class FakeHost:
    """Serves `handler` behind the fault injector; `who` names the user a request's token is."""

    def __init__(self, handler: Handler, who: Callable[[Request], str | None], name: str) -> None:
        self._faults = Faults(handler, who)
        self._server = Server(self._faults, name)

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> Self:
        self._server.up()
        return self

    def stop(self) -> None:
        self._server.down()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The server root; `html_url`s / `web_url`s point here."""
        return f"http://127.0.0.1:{self._server.port}"

    def go_down(self) -> None:
        self._server.down()

    def come_up(self) -> None:
        self._server.up()

    # -- requests and latency ---------------------------------------------------------------------------

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        """What clients sent, oldest first; `path_prefix` counts from the server root."""
        return self._faults.requests(path_prefix)

    def clear_requests(self) -> None:
        self._faults.clear_requests()

    def set_latency(self, seconds: float) -> None:
        self._faults.set_latency(seconds)
