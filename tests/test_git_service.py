"""RepoCache reads (clone/fetch, resolve, diff, log), safety, credentials and URL matching.

Writes and races are in test_git_service_writes.py. Every test uses real repositories.
"""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.errors import BackendUnavailable, UserError
from services.git import GitConflict, GitError, GitUnavailable, RepoCache, RevisionNotFound, url_key
from services.git import runner as git_runner
from services.git.runner import auth_env, base_env
from services.metrics import Metrics
from services.settings.model import GitRepository
from tests.git_support import DANA, Remote, count, make_cache, make_remote, sh

TOKEN = "ghp_TopSecretToken1234567890abcdefABCDEF"


@pytest.fixture
def remote_shas(tmp_path: Path) -> tuple[Remote, dict[str, str]]:
    return make_remote(tmp_path)


@pytest.fixture
def remote(remote_shas: tuple[Remote, dict[str, str]]) -> Remote:
    return remote_shas[0]


@pytest.fixture
def shas(remote_shas: tuple[Remote, dict[str, str]]) -> dict[str, str]:
    return remote_shas[1]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def cache(tmp_path: Path, remote: Remote, metrics: Metrics) -> RepoCache:
    return make_cache(tmp_path, remote, metrics)


# -- clone once, then fetch ---------------------------------------------------------------------


def test_clones_once_then_fetches(cache: RepoCache, remote: Remote, metrics: Metrics, tmp_path: Path) -> None:
    path = cache.ensure("deploy")
    assert path == tmp_path / "cache" / "deploy"
    inode = (path / ".git").stat().st_ino
    (path / ".git" / "test-marker").write_text("still the same clone")
    newer = remote.commit({"apps/web/extra.yaml": "x: 1\n"}, "later")

    assert cache.ensure("deploy") == path
    assert (path / ".git").stat().st_ino == inode
    assert (path / ".git" / "test-marker").exists()
    assert count(metrics, "clone") == 1
    assert count(metrics, "fetch") == 1
    assert cache.resolve("deploy", "main") == newer  # the fetch brought the new commit
    assert count(metrics, "clone") == 1


def test_broken_clone_is_replaced_not_mistaken_for_an_outer_repository(
    tmp_path: Path, remote: Remote
) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    sh(outer, "init", "-q")
    (outer / "precious.txt").write_text("keep me")
    broken = outer / "cache" / "deploy" / ".git"
    broken.mkdir(parents=True)  # not a repository: git must not walk up to `outer`
    cache = RepoCache(outer / "cache", [GitRepository(name="deploy", url=str(remote.bare))], {})
    path = cache.ensure("deploy")
    assert (path / "apps" / "web" / "deploy.yaml").exists()
    assert (outer / "precious.txt").read_text() == "keep me"
    assert not list((outer / "cache").glob(".deploy.clone-*"))


def test_unknown_repository_is_a_user_error(cache: RepoCache) -> None:
    with pytest.raises(UserError, match="No repository `nope`") as info:
        cache.ensure("nope")
    assert info.value.hint == "Configured: `deploy`."


# -- resolve ------------------------------------------------------------------------------------


def test_resolves_every_revision_form(cache: RepoCache, shas: dict[str, str]) -> None:
    c1, c2, c3 = shas["c1"], shas["c2"], shas["c3"]
    forms = {
        c2: c2,
        c2[:8]: c2,
        c2[:7].upper(): c2,
        f"main@sha1:{c2}": c2,
        f"refs/heads/main@sha1:{c2}": c2,
        f"sha1:{c2}": c2,
        f"main/{c2}": c2,
        "main": c3,
        "refs/heads/main": c3,
        "origin/main": c3,
        "v1.0": c1,
        f"v1.0@sha1:{c1}": c1,
        "HEAD": c3,
    }
    for rev, expected in forms.items():
        assert cache.resolve("deploy", rev) == expected, rev


def test_unknown_revisions(cache: RepoCache) -> None:
    for rev in ("deadbeef", "0" * 40, "no-such-branch", "v9.9", "feature/x", "sha1:" + "a" * 40):
        with pytest.raises(RevisionNotFound, match="Unknown revision") as info:
            cache.resolve("deploy", rev)
        assert isinstance(info.value, UserError)
        assert isinstance(info.value, GitError)


def test_unpublished_local_commit_is_not_a_revision(cache: RepoCache) -> None:
    path = cache.ensure("deploy")
    orphan = sh(path, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "never pushed").strip()
    with pytest.raises(RevisionNotFound):
        cache.resolve("deploy", orphan)


# -- diff and log -------------------------------------------------------------------------------


def test_diff_restricted_to_a_path_and_empty_when_equal(cache: RepoCache, shas: dict[str, str]) -> None:
    full = cache.diff("deploy", shas["c1"], "main")
    assert "-image: web:1" in full
    assert "+image: web:2" in full
    assert "+image: api:2" in full
    web = cache.diff("deploy", shas["c1"], "main", path="apps/web")
    assert "+image: web:2" in web
    assert "api" not in web
    assert web.startswith("diff --git a/apps/web/deploy.yaml")
    assert cache.diff("deploy", shas["c2"], shas["c3"], path="apps/web/deploy.yaml") == ""
    assert cache.diff("deploy", "main", shas["c3"]) == ""
    assert cache.diff("deploy", f"main@sha1:{shas['c2']}", "v1.0", path="apps/web/") != ""


def test_log_newest_first_with_authors(cache: RepoCache, shas: dict[str, str]) -> None:
    commits = cache.log("deploy")
    assert [c.sha for c in commits] == [shas["c3"], shas["c2"], shas["c1"]]
    newest = commits[0]
    assert (newest.author_name, newest.author_email) == ("Alice", "alice@example.com")
    assert newest.subject == "api: 2"
    assert newest.message == "api: 2\n\nbody text"
    assert newest.short == shas["c3"][:8]
    assert newest.date.tzinfo == UTC
    assert commits[1].author_name == "Bob"

    web = cache.log("deploy", path="apps/web/deploy.yaml")
    assert [c.subject for c in web] == ["web: 2", "Initial layout"]
    assert [c.sha for c in cache.log("deploy", limit=1)] == [shas["c3"]]
    assert [c.sha for c in cache.log("deploy", ref="v1.0")] == [shas["c1"]]
    assert cache.log("deploy", path="apps/nothing-here") == []


def test_log_sees_new_commits_and_bounds_subjects(cache: RepoCache, remote: Remote) -> None:
    cache.ensure("deploy")
    remote.commit({"apps/web/deploy.yaml": "image: web:9\n"}, "x" * 300 + "\n\n#42 keeps hashes")
    newest = cache.log("deploy", limit=5)[0]
    assert len(newest.subject) == 200
    assert newest.subject.endswith("…")
    assert newest.message.endswith("#42 keeps hashes")


# -- safety -------------------------------------------------------------------------------------


@pytest.fixture
def argvs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every git command line the service runs (what `ps` would show)."""
    seen: list[list[str]] = []
    real_run = git_runner.run

    def spy(argv: list[str], **kwargs: object) -> git_runner.Result:
        seen.append(argv)
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(git_runner, "run", spy)
    return seen


def _evil_calls(cache: RepoCache, evil: str) -> list[tuple[str, object]]:
    def edit(_: Path) -> list[str]:
        return [evil]

    return [
        ("resolve", lambda: cache.resolve("deploy", evil)),
        ("diff from", lambda: cache.diff("deploy", evil, "main")),
        ("diff to", lambda: cache.diff("deploy", "main", evil)),
        ("diff path", lambda: cache.diff("deploy", "main", "main", path=evil)),
        ("log ref", lambda: cache.log("deploy", ref=evil)),
        ("log path", lambda: cache.log("deploy", path=evil)),
        ("revert", lambda: cache.revert("deploy", evil, author=DANA, message="m")),
        ("restore path", lambda: cache.restore("deploy", evil, "main", author=DANA, message="m")),
        ("restore rev", lambda: cache.restore("deploy", "apps/web", evil, author=DANA, message="m")),
        ("edit paths", lambda: cache.edit_and_push("deploy", edit, author=DANA, message="m")),
    ]


def test_option_smuggling_never_reaches_git(
    cache: RepoCache, remote: Remote, tmp_path: Path, argvs: list[list[str]]
) -> None:
    marker = tmp_path / "pwned"
    head = remote.head()
    for template in ("--upload-pack=touch {marker}", "-o{marker}", "--output={marker}"):
        evil = template.format(marker=marker)
        for what, call in _evil_calls(cache, evil):
            with pytest.raises(UserError, match="Invalid"):
                call()  # type: ignore[operator]
            assert not marker.exists(), what
    assert argvs  # git did run (the clone), just never with the smuggled value
    assert not any(str(marker) in arg for argv in argvs for arg in argv)
    assert remote.head() == head


@pytest.fixture
def offline(tmp_path: Path) -> RepoCache:
    """A cache whose remote does not exist: validation must refuse before any git command."""
    return RepoCache(tmp_path / "cache", [GitRepository(name="deploy", url=str(tmp_path / "nowhere"))], {})


@pytest.mark.parametrize(
    "path", ["../outside", "a/../../b", "/etc/passwd", ":(glob)**", ".git/config", "apps/.GIT/x", "", "a\nb"]
)
def test_unsafe_paths_are_refused(offline: RepoCache, path: str) -> None:
    with pytest.raises(UserError, match="Invalid path"):
        offline.diff("deploy", "main", "main", path=path)
    with pytest.raises(UserError, match="Invalid path"):
        offline.restore("deploy", path, "main", author=DANA, message="m")


@pytest.mark.parametrize("rev", ["main..v1.0", "main@{1}", "a b", "main;touch x", "$(id)", "HEAD~1"])
def test_unsafe_revisions_are_refused(offline: RepoCache, rev: str) -> None:
    with pytest.raises(UserError, match="Invalid revision"):
        offline.resolve("deploy", rev)
    with pytest.raises(UserError, match="Invalid revision"):
        offline.revert("deploy", rev, author=DANA, message="m")


# -- reachability and credentials ----------------------------------------------------------------


def test_unreachable_remote_is_unavailable_without_secrets(tmp_path: Path, metrics: Metrics) -> None:
    repo = GitRepository(name="deploy", url=str(tmp_path / "missing.git"))
    cache = RepoCache(tmp_path / "cache", [repo], {"deploy": SecretStr(TOKEN)}, metrics=metrics)
    with pytest.raises(GitUnavailable) as info:
        cache.ensure("deploy")
    assert isinstance(info.value, BackendUnavailable)
    assert info.value.backend == "Git repository deploy"
    assert "clone failed" in str(info.value)
    assert "does not exist" in str(info.value)
    assert TOKEN not in str(info.value)
    assert len(info.value.message) <= 320
    assert not (tmp_path / "cache" / "deploy").exists()
    assert not list((tmp_path / "cache").glob(".deploy.clone-*"))
    assert metrics.registry.get_sample_value(
        "gitops_bot_backend_errors_total",
        {"backend": "git:deploy", "operation": "clone", "kind": "GitUnavailable"},
    )


class _DumbHttpGit(http.server.SimpleHTTPRequestHandler):
    """Serves bare repositories over git's "dumb" HTTP protocol, only with the right header."""

    seen: list[str | None]
    expected: str

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def http_remote(
    tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[str | None]]]:
    """`remote` served at http://127.0.0.1:<port>/origin.git, requiring TOKEN."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    sh(remote.bare, "update-server-info")  # the files the dumb protocol reads
    seen: list[str | None] = []
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    attributes = {"seen": seen, "expected": f"Basic {basic}"}
    handler = functools.partial(type("Handler", (_DumbHttpGit,), attributes), directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/origin.git", seen
    finally:
        server.shutdown()
        server.server_close()


def test_token_goes_in_a_header_never_in_argv_or_config(
    tmp_path: Path, remote: Remote, http_remote: tuple[str, list[str | None]], argvs: list[list[str]]
) -> None:
    url, seen = http_remote
    repos = [GitRepository(name="deploy", url=url)]
    cache = RepoCache(tmp_path / "cache", repos, {"deploy": SecretStr(TOKEN)})
    path = cache.ensure("deploy")
    newer = remote.commit({"apps/web/deploy.yaml": "image: web:8\n"}, "later")
    sh(remote.bare, "update-server-info")
    assert cache.resolve("deploy", "main") == newer  # fetched over HTTP with the header
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert seen
    assert set(seen) == {f"Basic {basic}"}
    assert not any(TOKEN in a or basic in a for argv in argvs for a in argv)
    stored = "".join(p.read_text(errors="replace") for p in (path / ".git").rglob("*") if p.is_file())
    assert TOKEN not in stored
    assert basic not in stored


def test_a_rejected_token_is_unavailable_without_secrets(
    tmp_path: Path, http_remote: tuple[str, list[str | None]], argvs: list[list[str]]
) -> None:
    url, seen = http_remote
    wrong = TOKEN[::-1]
    cache = RepoCache(
        tmp_path / "cache", [GitRepository(name="deploy", url=url)], {"deploy": SecretStr(wrong)}
    )
    with pytest.raises(GitUnavailable) as info:
        cache.ensure("deploy")
    basic = base64.b64encode(f"x-access-token:{wrong}".encode()).decode()
    assert seen[0] == f"Basic {basic}"
    text = f"{info.value} {info.value!r} {info.value.message}"
    assert "403" in text
    assert wrong not in text
    assert basic not in text
    assert not any(wrong in a or basic in a for argv in argvs for a in argv)


def test_auth_env_for_token_and_ssh_key(tmp_path: Path) -> None:
    https = GitRepository(name="deploy", url="https://github.com/org/deploy.git")
    env = auth_env(https, SecretStr(TOKEN))
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    scheme, encoded = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ").split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"x-access-token:{TOKEN}"
    pair = auth_env(https, SecretStr("deployer:app-password"))["GIT_CONFIG_VALUE_0"]
    assert base64.b64decode(pair.split(" ")[-1]).decode() == "deployer:app-password"
    assert auth_env(https, None) == {}

    key = tmp_path / "my keys" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("not really a key")
    ssh = GitRepository(name="deploy", url="git@github.com:org/deploy.git", ssh_key_path=key)
    env = auth_env(ssh, SecretStr(TOKEN))  # a token is never sent over ssh
    assert env == {
        "GIT_SSH_COMMAND": f"ssh -i '{key}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new "
        "-o BatchMode=yes"
    }


def test_base_env_drops_redirections_and_disables_prompts() -> None:
    env = base_env(
        {"PATH": "/bin", "GIT_DIR": "/elsewhere", "GIT_CONFIG_KEY_0": "core.pager", "GIT_CONFIG_COUNT": "1"}
    )
    assert env["PATH"] == "/bin"
    assert "GIT_DIR" not in env
    assert "GIT_CONFIG_KEY_0" not in env
    assert "GIT_CONFIG_COUNT" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_LITERAL_PATHSPECS"] == "1"


# -- URL matching and error classes --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Org/Deploy",
        "https://github.com/org/deploy.git",
        "https://github.com/org/deploy/",
        "http://ci-user@github.com:443/org/deploy.git/",
        "ssh://git@github.com/org/deploy",
        "ssh://git@github.com:22/org/deploy.git",
        "git@github.com:org/deploy.git",
        "github.com:org/deploy",
    ],
)
def test_repository_for_url_matches_every_spelling(tmp_path: Path, url: str) -> None:
    repos = [
        GitRepository(name="deploy", url="https://github.com/org/deploy.git"),
        GitRepository(name="other", url="https://github.com/org/deploy-other.git"),
    ]
    cache = RepoCache(tmp_path, repos, {})
    found = cache.repository_for_url(url)
    assert found is not None
    assert found.name == "deploy"


def test_repository_for_url_local_paths(tmp_path: Path) -> None:
    repos = [GitRepository(name="local", url="/srv/git/deploy.git")]
    cache = RepoCache(tmp_path, repos, {})
    for url in ("file:///srv/git/deploy.git", "/srv/git/deploy/", "file:///srv/git/./deploy"):
        assert cache.repository_for_url(url) == repos[0], url
    for url in ("/srv/git/Deploy", "https://github.com/org/deploy", "", "not a url"):
        assert cache.repository_for_url(url) is None, url
    assert url_key("ssh://git@host/~alice/repo.git") == ("host", "~alice/repo")


def test_error_classes_are_product_errors() -> None:
    assert issubclass(GitUnavailable, BackendUnavailable)
    assert issubclass(GitUnavailable, GitError)
    assert issubclass(GitConflict, UserError)
    assert issubclass(GitConflict, GitError)
    conflict = GitConflict("x changed", paths=["x"], commit="abcd1234", hint="h")
    assert (conflict.message, conflict.paths, conflict.commit, conflict.hint) == (
        "x changed",
        ("x",),
        "abcd1234",
        "h",
    )
