"""What the GitHub and GitLab clients share: the constructor, the two identities on one
`Transport`, and the lifecycle. Each client says how it authenticates and addresses its repository."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import ClassVar, Self

import httpx
from pydantic import SecretStr

from services.githost.model import HostKind
from services.githost.throttle import WriteGate
from services.githost.transport import Transport
from services.metrics import Metrics


class HostClient:
    """One repository (a GitHub `owner/name`, a GitLab id or path) as the bot's identity.

    `approve_token` is a second identity (a reviewer account) for `approve`: both hosts may refuse
    an approval from the change's author (§7). Its writes share the pool and the write gate.
    """

    kind: HostKind
    project: str
    _path: str  # the repository's API prefix, set by `_bind`
    _headers: ClassVar[Mapping[str, str]]  # sent with every call beside the auth header

    def __init__(
        self,
        api_url: str,
        project: str | int,
        token: SecretStr,
        *,
        approve_token: SecretStr | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        metrics: Metrics | None = None,
        gate: WriteGate | None = None,
        max_tries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = self._bind(project)
        secrets = [t.get_secret_value() for t in (token, approve_token) if t is not None]
        self._t = Transport(
            host=self.kind,
            api_url=api_url,
            repo=self.project,
            auth_headers=self._auth(token),
            extra_headers=self._headers,
            secrets=secrets,
            timeout=timeout,
            transport=transport,
            metrics=metrics,
            gate=gate,
            max_tries=max_tries,
            backoff=backoff,
            sleep=sleep,
            clock=clock,
        )
        self._approver = self._t.sharing(self._auth(approve_token), secrets) if approve_token else self._t
        self._clock = clock

    def _bind(self, project: str | int) -> str:
        """Check and normalise `project`, set the API path (`self._path`); the project's name."""
        raise NotImplementedError

    @staticmethod
    def _auth(token: SecretStr) -> dict[str, str]:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release the HTTP connections (`close(number)` closes the PR or MR)."""
        self._t.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._t.base!r}, {self.project!r})"
