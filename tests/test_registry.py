"""The OCI registry client against the sandbox registry (Distribution API over real HTTP on
localhost): references, token and basic auth, 404s, caching, and a registry that is down or slow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest

from sandbox.oci_registry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, FakeOCIRegistry
from services.registry import (
    ImageRef,
    RegistryClient,
    RegistryUnauthorized,
    RegistryUnavailable,
    parse_image,
)
from services.registry.client import MANIFEST_TYPES, parse_challenge
from tests.registry_support import PASSWORD, USER, Ticks, client_for, paths, running, token_requests

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def anonymous() -> Iterator[FakeOCIRegistry]:
    with running() as registry:
        yield registry


@pytest.fixture
def token() -> Iterator[FakeOCIRegistry]:
    with running(auth="token", username=USER, password=PASSWORD) as registry:
        yield registry


def image(registry: FakeOCIRegistry, rest: str) -> ImageRef:
    return parse_image(f"{registry.host}/{rest}")


# -- references ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "repository", "reference"),
    [
        ("api", "docker.io", "library/api", "latest"),
        ("api:1.4.3", "docker.io", "library/api", "1.4.3"),
        ("team/api:1.2", "docker.io", "team/api", "1.2"),
        ("index.docker.io/nginx", "docker.io", "library/nginx", "latest"),
        ("docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7"),
        ("localhost/api:1", "localhost", "api", "1"),
        ("localhost:5000/team/api:1.0", "localhost:5000", "team/api", "1.0"),
        ("registry.example.com/team/sub/api:1.4.3", "registry.example.com", "team/sub/api", "1.4.3"),
        (f"registry.example.com:5000/api@{DIGEST}", "registry.example.com:5000", "api", DIGEST),
        (f"registry.example.com/api:1.4.3@{DIGEST}", "registry.example.com", "api", DIGEST),
    ],
)  # fmt: skip
def test_references_are_normalised_like_docker(text, host, repository, reference):
    ref = parse_image(text)
    assert (ref.host, ref.repository, ref.reference) == (host, repository, reference)
    assert ref.api_host == ("registry-1.docker.io" if host == "docker.io" else host)
    assert parse_image(str(ref)) == ref  # the normal form reads back the same


@pytest.mark.parametrize(
    "text", ["", "Team/API:1", "api:bad tag", "api@sha256:zz", "registry.example.com/-api:1", "a//b"]
)
def test_invalid_references_are_refused(text):
    with pytest.raises(ValueError):
        parse_image(text)


def test_challenges_are_parsed_with_quoted_and_bare_values():
    found = parse_challenge('Bearer realm="https://auth.example.com/token",service=registry,scope="a:b:pull"')
    assert found is not None
    assert found.scheme == "bearer"
    assert dict(found.params) == {
        "realm": "https://auth.example.com/token",
        "service": "registry",
        "scope": "a:b:pull",
    }
    assert parse_challenge("") is None


# -- the sandbox speaks the Distribution API ------------------------------------------------------


def test_sandbox_serves_manifests_with_digest_type_and_length(anonymous):
    digest = anonymous.push("team/api", "1.4.3")
    accept = {"Accept": ", ".join(MANIFEST_TYPES)}
    with httpx.Client(base_url=anonymous.url) as http:
        assert http.get("/v2/").status_code == 200
        got = http.get("/v2/team/api/manifests/1.4.3", headers=accept)
        head = http.head(f"/v2/team/api/manifests/{digest}", headers=accept)
        unknown_tag = http.get("/v2/team/api/manifests/9.9.9", headers=accept)
        unknown_repo = http.get("/v2/team/web/manifests/1.0", headers=accept)
        bad_name = http.get("/v2/Team/manifests/1.0", headers=accept)
        no_accept = http.get("/v2/team/api/manifests/1.4.3")
    assert got.status_code == 200
    assert (
        got.headers["docker-content-digest"] == digest == "sha256:" + hashlib.sha256(got.content).hexdigest()
    )
    assert got.headers["content-type"] == DOCKER_MANIFEST
    assert json.loads(got.content)["mediaType"] == DOCKER_MANIFEST
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(got.content))
    assert unknown_tag.status_code == 404
    assert unknown_tag.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert unknown_repo.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert bad_name.status_code == 400
    assert no_accept.status_code == 200  # an old docker client gets Docker's manifest


def test_sandbox_only_serves_media_types_the_client_accepts(anonymous):
    anonymous.push("team/api", "multi", media_type=OCI_INDEX)
    with httpx.Client(base_url=anonymous.url) as http:
        plain = http.get("/v2/team/api/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
        oci = http.get("/v2/team/api/manifests/multi", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    assert plain.status_code == 404
    assert (oci.status_code, oci.headers["content-type"]) == (200, OCI_INDEX)


def test_sandbox_tokens_cover_only_the_scopes_asked_for(token):
    token.push("team/api", "1")
    token.push("team/web", "1")
    with httpx.Client(base_url=token.url, headers={"Accept": DOCKER_MANIFEST}) as http:
        challenge = http.get("/v2/")
        wrong_service = http.get("/token", params={"service": "other"}, auth=(USER, PASSWORD))
        issued = http.get(
            "/token",
            params={"service": "fake-registry", "scope": "repository:team/api:pull,push"},
            auth=(USER, PASSWORD),
        ).json()
        bearer = {"Authorization": f"Bearer {issued['token']}"}
        allowed = http.head("/v2/team/api/manifests/1", headers=bearer)
        other = http.head("/v2/team/web/manifests/1", headers=bearer)
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == f'Bearer realm="{token.realm}",service="fake-registry"'
    assert wrong_service.status_code == 400
    assert issued["token"] == issued["access_token"]
    assert allowed.status_code == 200
    assert other.status_code == 401
    assert 'error="insufficient_scope"' in other.headers["www-authenticate"]


# -- the client -----------------------------------------------------------------------------------------


def test_anonymous_registry_answers_yes_and_no(anonymous):
    digest = anonymous.push("team/api", "1.4.3")
    client = client_for(anonymous)
    assert client.manifest_exists(image(anonymous, "team/api:1.4.3"))
    assert client.manifest_exists(image(anonymous, f"team/api@{digest}"))
    assert not client.manifest_exists(image(anonymous, "team/api:1.4.4"))
    assert not client.manifest_exists(image(anonymous, "team/web:1.4.3"))
    first = anonymous.requests[0]
    assert (first.method, first.path) == ("HEAD", "/v2/team/api/manifests/1.4.3")
    assert [t.strip() for t in first.headers["accept"].split(",")] == list(MANIFEST_TYPES)
    assert all(r.auth_scheme is None for r in anonymous.requests)


@pytest.mark.parametrize("media_type", [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST])
def test_every_manifest_type_is_found(anonymous, media_type):
    anonymous.push("team/api", "2.0.0", media_type=media_type)
    assert client_for(anonymous).manifest_exists(image(anonymous, "team/api:2.0.0"))


def test_token_auth_with_credentials(token):
    token.push("team/api", "1.4.3")
    client = client_for(token, USER, PASSWORD)
    assert client.manifest_exists(image(token, "team/api:1.4.3"))
    assert not client.manifest_exists(image(token, "team/api:1.4.4"))
    assert paths(token) == [
        "HEAD /v2/team/api/manifests/1.4.3",  # 401 with the challenge
        "GET /token",
        "HEAD /v2/team/api/manifests/1.4.3",
        "HEAD /v2/team/api/manifests/1.4.4",  # the token is reused for the same repository
    ]
    (asked,) = token_requests(token)
    assert asked.query == {"scope": ("repository:team/api:pull",), "service": ("fake-registry",)}
    assert asked.auth_scheme == "basic"
    assert [r.auth_scheme for r in token.requests[2:]] == ["bearer", "bearer"]


def test_anonymous_tokens_when_the_registry_allows_them():
    with running(auth="token", token_field="access_token") as registry:
        registry.push("library/api", "1")
        client = client_for(registry)
        assert client.manifest_exists(image(registry, "library/api:1"))
        assert client.manifest_exists(image(registry, "library/api:1"))  # cached: no second request
        (asked,) = token_requests(registry)
        assert asked.auth_scheme is None
        assert len(registry.requests) == 3


def test_wrong_or_missing_credentials_are_unauthorized_and_never_quoted(token):
    token.push("team/api", "1")
    with pytest.raises(RegistryUnauthorized) as wrong:
        client_for(token, USER, "not-the-password").manifest_exists(image(token, "team/api:1"))
    with pytest.raises(RegistryUnauthorized) as missing:
        client_for(token).manifest_exists(image(token, "team/api:1"))
    assert wrong.value.reason == "refused the configured credentials at its token service"
    assert missing.value.reason == "refused anonymous access at its token service"
    assert "not-the-password" not in str(wrong.value)
    assert USER not in str(wrong.value)


def test_an_expired_token_is_replaced(token):
    token.push("team/api", "1")
    token.push("team/api", "2")
    client = client_for(token, USER, PASSWORD)
    assert client.manifest_exists(image(token, "team/api:1"))
    token.expire_tokens()  # the registry forgets it (restart, revocation, expiry)
    assert client.manifest_exists(image(token, "team/api:2"))
    assert len(token_requests(token)) == 2


def test_each_repository_gets_its_own_token_scope(token):
    token.push("team/api", "1")
    token.push("team/web", "1")
    client = client_for(token, USER, PASSWORD)
    assert client.manifest_exists(image(token, "team/api:1"))
    assert client.manifest_exists(image(token, "team/web:1"))
    scopes = [r.query["scope"] for r in token_requests(token)]
    assert scopes == [("repository:team/api:pull",), ("repository:team/web:pull",)]


def test_basic_auth_registries():
    with running(auth="basic", username=USER, password=PASSWORD) as registry:
        registry.push("api", "1")
        assert client_for(registry, USER, PASSWORD).manifest_exists(image(registry, "api:1"))
        assert registry.requests[-1].auth_scheme == "basic"
        with pytest.raises(RegistryUnauthorized) as missing:
            client_for(registry).manifest_exists(image(registry, "api:1"))
        with pytest.raises(RegistryUnauthorized) as wrong:
            client_for(registry, USER, "nope").manifest_exists(image(registry, "api:1"))
    assert missing.value.reason == "asks for credentials and none are configured"
    assert wrong.value.reason == "denied access (HTTP 401)"


def test_positive_answers_are_cached_for_ten_minutes_and_negative_ones_not(anonymous):
    ticks = Ticks()
    client = client_for(anonymous, clock=ticks)
    ref = image(anonymous, "team/api:1")
    assert not client.manifest_exists(ref)
    anonymous.push("team/api", "1")  # pushed a moment later: found at once
    assert client.manifest_exists(ref)
    ticks.now += 599
    assert client.manifest_exists(ref)
    assert len(anonymous.requests) == 2
    anonymous.untag("team/api", "1")
    ticks.now += 2
    assert not client.manifest_exists(ref)
    assert len(anonymous.requests) == 3


def test_a_failing_registry_is_unavailable(anonymous):
    anonymous.fail(503)
    with pytest.raises(RegistryUnavailable) as failed:
        client_for(anonymous).manifest_exists(image(anonymous, "team/api:1"))
    assert failed.value.reason == "answered HTTP 503"
    assert str(failed.value) == f"{anonymous.host}: answered HTTP 503"


def test_a_hanging_registry_times_out(anonymous):
    anonymous.push("team/api", "1")
    anonymous.hang(10)
    client = client_for(anonymous, timeout=0.2)
    with pytest.raises(RegistryUnavailable) as slow:
        client.manifest_exists(image(anonymous, "team/api:1"))
    assert slow.value.reason == "timed out"
    anonymous.heal()
    assert client.manifest_exists(image(anonymous, "team/api:1"))


def test_a_registry_that_is_down_cannot_be_reached(anonymous):
    anonymous.push("team/api", "1")
    client = client_for(anonymous)
    anonymous.down()
    with pytest.raises(RegistryUnavailable) as down:
        client.manifest_exists(image(anonymous, "team/api:1"))
    assert down.value.reason == "could not be reached"
    anonymous.up()
    assert client.manifest_exists(image(anonymous, "team/api:1"))


def test_unconfigured_hosts_are_anonymous_https():
    client = RegistryClient([])
    access = client.access_for("registry.example.com")
    assert (access.username, access.insecure) == (None, False)
    client.close()
    with pytest.raises(RegistryUnavailable) as closed:  # a closed client fails softly
        client.manifest_exists(parse_image("registry.example.com/api:1"))
    assert closed.value.reason == "was not asked: the bot is stopping"
