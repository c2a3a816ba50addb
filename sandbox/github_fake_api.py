"""The fake GitHub's front door: the API prefix (`/api/v3` for an Enterprise-style server), the
version header, authentication, the primary rate limit, and dispatch to the handlers.

- `Authorization: Bearer <token>` or `token <token>`; none is 401 `Requires authentication`, an
  unknown token 401 `Bad credentials`; a repository the user cannot see is 404 `Not Found`.
- `X-GitHub-Api-Version` must be `2022-11-28` or absent (the body shapes are that version's); any
  other value is a 400 (GitHub answers 400 for a version it does not support; the wording here is
  ours).
- Every answer carries `x-ratelimit-limit/remaining/used/reset/resource` for the caller; once
  `remaining` is 0 the answer is 403 `API rate limit exceeded …` until the reset time (the clock).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sandbox import github_fake_pulls, github_fake_repos
from sandbox.github_fake_call import ApiError, Call, not_found
from sandbox.github_fake_http import Reply, Request
from sandbox.github_fake_objects import Links, error
from sandbox.github_fake_state import User, World

API_VERSION = "2022-11-28"
_RATE_DOC = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass
class _Budget:
    limit: int
    used: int
    reset: float


class GitHubApi:
    """Handles one request against `world`; `root()` is the server's base URL (known once it listens)."""

    def __init__(self, world: World, *, prefix: str, root: Callable[[], str], rate_limit: int) -> None:
        self.world = world
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._root = root
        self._rate_limit = rate_limit
        self._budgets: dict[str, _Budget] = {}
        self._request_ids = itertools.count(1)

    def links(self) -> Links:
        return Links(api=self._root() + self.prefix, web=self._root())

    def user_of(self, request: Request) -> User | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return None
        return self.world.users.get(token.strip())

    def who(self, request: Request) -> str | None:
        user = self.user_of(request)
        return user.login if user is not None else None

    def exhaust(self, login: str, reset_in: float) -> None:
        """Spend `login`'s whole primary budget; it comes back `reset_in` seconds from now."""
        with self.world.lock:
            budget = self._budget(login)
            budget.used, budget.reset = budget.limit, self.world.clock() + reset_in

    def _budget(self, login: str) -> _Budget:
        now = self.world.clock()
        budget = self._budgets.get(login)
        if budget is None or now >= budget.reset:
            budget = _Budget(self._rate_limit, 0, float(int(now) + 3600))
            self._budgets[login] = budget
        return budget

    def handle(self, request: Request) -> Reply:
        headers = {
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": f"FAKE:{next(self._request_ids):08X}",
        }
        with self.world.lock:
            try:
                reply = self._handle(request, headers)
            except ApiError as exc:
                reply = exc.reply()
        return reply.with_headers(headers)

    def _handle(self, request: Request, headers: dict[str, str]) -> Reply:
        if not request.path.startswith(self.prefix + "/"):
            raise not_found()
        version = request.headers.get("x-github-api-version")
        if version is not None and version != API_VERSION:
            message = (
                f"Unsupported 'X-GitHub-Api-Version' header value '{version}'; this server has {API_VERSION}."
            )
            raise ApiError(
                400, error(message, 400, "https://docs.github.com/rest/about-the-rest-api/api-versions")
            )
        if "authorization" not in request.headers:
            raise ApiError(401, error("Requires authentication", 401))
        user = self.user_of(request)
        if user is None:
            raise ApiError(401, error("Bad credentials", 401))
        budget = self._budget(user.login)
        headers.update({
            "x-ratelimit-limit": str(budget.limit), "x-ratelimit-resource": "core",
            "x-ratelimit-reset": str(int(budget.reset)),
        })  # fmt: skip
        if budget.used >= budget.limit:
            headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-used": str(budget.used)})
            message = f"API rate limit exceeded for user ID {user.id}."
            raise ApiError(403, error(message, 403, _RATE_DOC))
        budget.used += 1
        headers.update(
            {"x-ratelimit-remaining": str(budget.limit - budget.used), "x-ratelimit-used": str(budget.used)}
        )
        segments = request.segments[len(self.prefix.strip("/").split("/")) if self.prefix else 0 :]
        if len(segments) < 3 or segments[0] != "repos":
            raise not_found()
        repo = self.world.repo(segments[1], segments[2])
        if repo is None or self.world.permission(repo, user) == "none":  # GitHub hides what you cannot see
            raise not_found()
        call = Call(request, user, repo, segments[3:], self.links(), self.world)
        if call.rest[:1] == ["pulls"]:
            return github_fake_pulls.route(call)
        return github_fake_repos.route(call)
