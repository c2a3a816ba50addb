"""A small OCI Distribution API client: does a manifest exist (`HEAD /v2/<name>/manifests/<ref>`)?

Auth as docker does it: a 401 carries a `WWW-Authenticate` challenge; `Bearer realm=…,service=…`
means "get a token there" (with HTTP Basic when credentials are configured, anonymously
otherwise), `Basic` means "send the credentials". Tokens are kept until they expire; positive
answers for 10 minutes (a pushed manifest does not vanish, a missing one may be pushed any moment).
Every failure, httpx's included, leaves this module as a `RegistryError` whose text names the
registry and the reason, never a credential or a token.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from services.errors import GitOpsBotError
from services.registry.reference import ImageRef, same_registry

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
USER_AGENT = "gitops-bot"
POSITIVE_CACHE_SECONDS = 600.0
TOKEN_DEFAULT_SECONDS = 60.0  # the Docker token spec's default when `expires_in` is absent
_TOKEN_MARGIN = 10.0  # renew a little early: a token that expires in flight costs a round trip
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


class RegistryError(GitOpsBotError):
    """The registry could not be asked. `reason` is short and safe to show."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class RegistryUnauthorized(RegistryError):
    """The registry (or its token service) refused the credentials, or the lack of them."""


class RegistryUnavailable(RegistryError):
    """Timed out, refused the connection, or answered with something other than yes or no."""


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry: credentials (None: anonymous) and whether it speaks plain HTTP."""

    host: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    mirror: str | None = None  # host[:port] asked instead of `host` (a mirror, a pull-through cache)

    @property
    def has_credentials(self) -> bool:
        return bool(self.username)

    def basic(self) -> str:
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer", "basic"
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="…",service="…",scope="…"` → Challenge; None when there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted, bare = match[2], match[3]
        params[match[1].lower()] = quoted.replace('\\"', '"') if quoted is not None else (bare or "")
    return Challenge(scheme.lower(), params)


class RegistryClient:
    """Asks registries whether manifests exist. Thread-safe; one per `image_exists` validator."""

    def __init__(
        self,
        access: Sequence[RegistryAccess] = (),
        *,
        timeout: float = 5.0,
        cache_seconds: float = POSITIVE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._access = tuple(access)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str, str], float] = {}  # (api host, repository, reference) → until
        self._auth: dict[tuple[str, str], tuple[str, float]] = {}  # (api host, scope) → (header, until)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def access_for(self, host: str) -> RegistryAccess:
        """The configured access for `host`, or anonymous HTTPS."""
        found = next((a for a in self._access if same_registry(a.host, host)), None)
        return found or RegistryAccess(host=host)

    def manifest_exists(self, image: ImageRef) -> bool:
        """True when the registry has the manifest, False when it says it does not (404);
        RegistryError when it cannot tell us (auth refused, down, slow, confused)."""
        key = (image.api_host, image.repository, image.reference)
        now = self._clock()
        with self._lock:
            if self._found.get(key, 0.0) > now:
                return True
        access = self.access_for(image.host)
        scheme = "http" if access.insecure else "https"
        url = (
            f"{scheme}://{access.mirror or image.api_host}/v2/{image.repository}/manifests/{image.reference}"
        )
        scope = f"repository:{image.repository}:pull"
        auth_key = (image.api_host, scope)
        response = self._head(image, url, self._cached_auth(auth_key))
        if response.status_code == 401:
            with self._lock:
                self._auth.pop(auth_key, None)  # expired or revoked: ask anew
            challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            header = self._authorize(image, access, challenge, scope)
            response = self._head(image, url, header)
        status = response.status_code
        if status == 200:
            with self._lock:
                self._found[key] = self._clock() + self._cache_seconds
            return True
        if status == 404:
            return False
        if status in (401, 403):
            raise RegistryUnauthorized(image.host, f"denied access (HTTP {status})")
        raise RegistryUnavailable(image.host, f"answered HTTP {status}")

    # -- plumbing -----------------------------------------------------------------------------------

    def _cached_auth(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            found = self._auth.get(key)
            return found[0] if found is not None and found[1] > self._clock() else None

    def _head(self, image: ImageRef, url: str, authorization: str | None) -> httpx.Response:
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        if authorization:
            headers["Authorization"] = authorization
        return self._send(image, "HEAD", url, headers=headers)

    def _send(
        self,
        image: ImageRef,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._http.request(method, url, headers=headers, params=params)
        except httpx.TimeoutException:
            raise RegistryUnavailable(image.host, "timed out") from None
        except httpx.ConnectError:
            raise RegistryUnavailable(image.host, "could not be reached") from None
        except httpx.HTTPError as exc:  # the text may hold the URL; the type name is enough
            raise RegistryUnavailable(image.host, f"failed the request ({type(exc).__name__})") from None
        except RuntimeError:  # httpx: the client is closed (the bot is stopping or reconfigured)
            raise RegistryUnavailable(image.host, "was not asked: the bot is stopping") from None

    def _authorize(
        self, image: ImageRef, access: RegistryAccess, challenge: Challenge | None, scope: str
    ) -> str:
        if challenge is None:
            raise RegistryUnauthorized(image.host, "answered 401 without saying how to authenticate")
        if challenge.scheme == "basic":
            if not access.has_credentials:
                raise RegistryUnauthorized(image.host, "asks for credentials and none are configured")
            header, seconds = access.basic(), self._cache_seconds
        elif challenge.scheme == "bearer":
            header, seconds = self._token(image, access, challenge, scope)
        else:
            raise RegistryUnauthorized(image.host, f"asks for unsupported auth ({challenge.scheme[:20]})")
        with self._lock:
            self._auth[(image.api_host, scope)] = (header, self._clock() + seconds)
        return header

    def _token(
        self, image: ImageRef, access: RegistryAccess, challenge: Challenge, scope: str
    ) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryUnavailable(image.host, "sent a token challenge without a usable realm")
        headers: dict[str, str] = {}
        if access.has_credentials:
            # Credentials never travel in clear text to a token service of an HTTPS registry.
            if parts.scheme != "https" and not access.insecure:
                raise RegistryUnauthorized(image.host, "has a token service that is not HTTPS")
            headers["Authorization"] = access.basic()
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        response = self._send(image, "GET", realm, headers=headers, params=params)
        if response.status_code in (401, 403):
            who = "the configured credentials" if access.has_credentials else "anonymous access"
            raise RegistryUnauthorized(image.host, f"refused {who} at its token service")
        if response.status_code != 200:
            raise RegistryUnavailable(
                image.host, f"answered its token request with HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryUnavailable(image.host, "answered its token request without a token")
        expires = body.get("expires_in") if isinstance(body, dict) else None
        seconds = (
            float(expires) if isinstance(expires, int | float) and expires > 0 else TOKEN_DEFAULT_SECONDS
        )
        return f"Bearer {token}", max(seconds - _TOKEN_MARGIN, 1.0)
