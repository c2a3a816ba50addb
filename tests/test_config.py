"""The config file: every class of problem reported with its key path, all at once; defaults,
`${VAR}` expansion, warnings, secrets kept out of every rendering, and docs/example coverage."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.config import (
    ConfigError,
    LoadedConfig,
    load_config,
    parse_config_text,
    resolve_config_path,
)
from bot.config_summary import format_summary
from services.settings.model import Secrets, Settings
from services.settings.types import format_duration, parse_duration
from tests.config_support import data_paths, schema_leaves

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gitops-bot.yaml"
DOCS = ROOT / "docs" / "configuration.md"

BASE = """
argocd:
  - name: main
    url: https://argo.example.com
    token_env: ARGO_TOKEN
environments:
  - name: dev
  - name: prod
repositories:
  - name: deploy
    url: git@github.com:example/deploy.git
apps:
  - name: web
    environments:
      dev: {backend: argocd, instance: main, name: web-dev, repository: deploy, path: apps/web}
"""


def load(text: str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    return parse_config_text(textwrap.dedent(text), environ=environ or {})


def problems(text: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def with_base(extra: str, **replace: str) -> str:
    text = BASE
    for old, new in replace.items():
        text = text.replace(old, new)
    return text + textwrap.dedent(extra)


def test_yaml_syntax_error_is_one_problem_with_line_and_column():
    (found,) = problems("slack:\n  command: [/gitops\nserver: {}\n", environ={})
    assert re.match(r"<string>: YAML syntax error at line 3, column \d+: ", found)
    (found,) = problems("server:\n  port: 1\n  port: 2\n")  # duplicate keys are syntax errors
    assert re.match(r"<string>: YAML syntax error at line 3, column 3: found duplicate key", found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("servr: {}\n", "servr: unknown key (did you mean 'server'?)"),
        (BASE.replace("token_env: ARGO_TOKEN", "token_env: ARGO_TOKEN\n    timeouts: {conect: 3}"),
         "argocd[0].timeouts.conect: unknown key (did you mean 'connect'?)"),
        (BASE.replace("path: apps/web}", "path: apps/web, namepsace: x}"),
         "apps[0].environments.dev.namepsace: unknown key (did you mean 'namespace'?)"),
        ("drift: {whatever: 1}\n", "drift.whatever: unknown key"),
    ],
)  # fmt: skip
def test_unknown_key_names_the_closest_valid_key(text, expected):
    assert problems(text) == (expected,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server: {port: abc}\n", "server.port: expected a whole number, got the text 'abc'"),
        ("server: {port: 0}\n", "server.port: must be at least 1, got 0"),
        ("server: {port: true}\n", "server.port: expected a whole number, got true"),
        ("drift: {interval: 5s}\n", "drift.interval: must be at least 10s"),
        ("drift: {enabled: maybe}\n", "drift.enabled: expected true or false, got the text 'maybe'"),
        ("environments: {dev: {}}\n", "environments: expected a list, got a mapping"),
        ("environments: [dev]\n", "environments[0]: expected a mapping, got the text 'dev'"),
        ("slack: {command: 7}\n", "slack.command: expected text, got the number 7"),
        ("logging: {level: info}\n", "logging.level: 'info' is not one of: DEBUG, INFO, WARNING, ERROR"
         " (did you mean 'INFO'?)"),
        ("- a\n- b\n", "<string>: expected a mapping, got a list"),
    ],
)  # fmt: skip
def test_wrong_type_says_what_was_expected_and_what_was_found(text, expected):
    assert problems(text) == (expected,)


def test_bad_url_is_reported_at_its_list_index():
    second = "token_env: ARGO_TOKEN\n  - {name: edge, url: 'htp:/argo', token_env: EDGE_TOKEN}\n"
    assert problems(BASE.replace("token_env: ARGO_TOKEN\n", second)) == (
        "argocd[1].url: not a URL: 'htp:/argo' (expected http:// or https://)",
    )
    (found,) = problems(BASE.replace("url: https://argo.example.com", "url: argo.example.com"))
    assert found == "argocd[0].url: not a URL: 'argo.example.com' (expected http:// or https://)"


def test_credentials_in_a_url_are_refused():
    text = BASE.replace("git@github.com:example/deploy.git", "https://bot:hunter2@git.example.com/d.git")
    (found,) = problems(text)
    assert found.startswith("repositories[0].url: credentials in the URL")
    assert "hunter2" not in found


def test_bad_slug():
    (found,) = problems(BASE.replace("- name: prod", "- name: Prod_EU"))
    assert found.startswith("environments[1].name: 'Prod_EU' is not a valid name")


@pytest.mark.parametrize("value", ["5x", "-3", "1m1h", "", "1.5h"])
def test_bad_duration(value):
    (found,) = problems(f"server: {{shutdown_timeout: '{value}'}}\n")
    assert found.startswith(f"server.shutdown_timeout: not a duration: '{value}'")


@pytest.mark.parametrize(
    ("given", "seconds"), [("90s", 90), ("2m", 120), ("1h30m", 5400), ("1d", 86400), (45, 45), ("600", 600)]
)
def test_duration_forms(given, seconds):
    assert parse_duration(given) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_unset_variable_reference_is_one_problem_at_its_key():
    found = problems(BASE.replace("https://argo.example.com", "${ARGO_URL}"))
    # Only the missing variable: not also "not a URL" for the empty string it left behind.
    assert found == (
        "argocd[0].url: environment variable ARGO_URL is not set (write ${ARGO_URL:-default} for a default)",
    )


def test_bad_variable_reference_syntax():
    assert problems("slack: {command: '${not valid}'}\n")[0].startswith("slack.command: bad reference")
    assert problems("slack: {command: '${OPEN'}\n")[0].startswith("slack.command: unclosed '${'")


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ({"instance: main,": "instance: mian,"},
         "apps[0].environments.dev.instance: unknown Argo CD instance 'mian' (did you mean 'main'?)"),
        ({"dev: {backend": "dve: {backend"},
         "apps[0].environments.dve: unknown environment 'dve' (did you mean 'dev'?)"),
        ({"repository: deploy": "repository: deplyo"},
         "apps[0].environments.dev.repository: unknown repository 'deplyo' (did you mean 'deploy'?)"),
        ({"instance: main,": "instance: zzz,"},
         "apps[0].environments.dev.instance: unknown Argo CD instance 'zzz' (configured: main)"),
        ({"backend: argocd, instance: main,": "backend: flux, instance: home,"},
         "apps[0].environments.dev.instance: unknown Flux cluster 'home' (no Flux clusters are configured)"),
    ],
)  # fmt: skip
def test_unknown_cross_reference_suggests_a_name(replace, expected):
    assert problems(with_base("", **replace)) == (expected,)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("flux: [{name: c1, in_cluster: true}, {name: c1, in_cluster: true}]\n",
         "flux[1].name: duplicate Flux cluster name 'c1' (also flux[0])"),
        ("access: {roles: [{name: ops, actions: [help]}, {name: ops, actions: [help]}]}\n",
         "access.roles[1].name: duplicate role name 'ops' (also access.roles[0])"),
        ("access: {roles: [{name: admin, actions: [help]}]}\n",
         "access.roles[0].name: 'admin' is a built-in role; pick another name"),
        ("access: {roles: [{name: ops, actions: [sync]}], grants: [{role: opz, users: [U1AB]}]}\n",
         "access.grants[0].role: unknown role 'opz' (did you mean 'ops'?)"),
    ],
)  # fmt: skip
def test_duplicate_and_reserved_names_and_unknown_roles(extra, expected):
    assert problems(with_base(extra)) == (expected,)


def test_duplicate_environment_and_app():
    text = with_base("", **{"  - name: prod\n": "  - name: prod\n  - name: dev\n"})
    text += "  - name: web\n    environments: {prod: {backend: argocd, name: web}}\n"
    assert problems(text) == (
        "environments[2].name: duplicate environment name 'dev' (also environments[0])",
        "apps[1].name: duplicate app name 'web' (also apps[0])",
    )


def test_flux_cluster_needs_exactly_one_of_kubeconfig_and_in_cluster(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    found = problems(
        f"flux:\n  - {{name: a, kubeconfig: '{kubeconfig}', in_cluster: true}}\n  - {{name: b}}\n"
    )
    message = "set exactly one of kubeconfig or in_cluster: true (they are alternatives)"
    assert found == (f"flux[0]: {message}", f"flux[1]: {message}")
    loaded = load(f"flux: [{{name: a, kubeconfig: '{kubeconfig}', context: admin}}]\n")
    assert loaded.settings.flux[0].kubeconfig == kubeconfig
    found = problems("flux: [{name: a, kubeconfig: /nonexistent/kubeconfig}]\n")
    assert found == ("flux[0].kubeconfig: file not found: /nonexistent/kubeconfig",)


def test_tilde_in_paths_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "kc").write_text("apiVersion: v1\n")
    loaded = load("flux: [{name: a, kubeconfig: ~/kc}]\naudit: {database: ~/audit.db}\n")
    assert loaded.settings.flux[0].kubeconfig == tmp_path / "kc"
    assert loaded.settings.audit.database == tmp_path / "audit.db"


GIT_URL = "git@github.com:example/deploy.git"
PATH_PROBLEM = "apps[0].environments.dev.path: '{}' is not a safe repository path"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        *[("path: apps/web", f"path: '{p}'", PATH_PROBLEM.format(p)) for p in ("a/../../etc", "/etc", "-rf")],
        *[(GIT_URL, f"'{u}'", "repositories[0].url: not a Git URL")
          for u in ("-upload-pack=evil", "https://", "ftp://x/y", "rel/path", "git@host", "https://a b/c")],
        *[("deploy.git", f"deploy.git\n    branch: '{b}'", f"repositories[0].branch: '{b}' is not")
          for b in ("-x", "a..b", "a b", "feature/", "x.lock", "a@{1}")],
    ],
)  # fmt: skip
def test_unsafe_paths_urls_and_branches_are_refused(old, new, expected):
    (found,) = problems(BASE.replace(old, new))
    assert found.startswith(expected)


def test_field_and_cross_reference_problems_are_reported_together():
    text = with_base(
        """
        server: {port: 99999}
        access: {grants: [{role: deployr, users: [bob]}]}
        """,
        **{"instance: main,": "instance: mian,", "- name: prod": "- name: PROD"},
    )
    found = problems(text)
    assert set(found) == {
        "server.port: must be at most 65535, got 99999",
        "environments[1].name: 'PROD' is not a valid name (lowercase letters, digits and '-', at most 63, "
        "e.g. 'prod-eu')",
        "access.grants[0].users[0]: 'bob' is not a Slack user id (like U0123ABCD)",
        "access.grants[0].role: unknown role 'deployr' (did you mean 'deployer'?)",
        "apps[0].environments.dev.instance: unknown Argo CD instance 'mian' (did you mean 'main'?)",
    }


def test_instance_may_be_omitted_only_when_one_is_configured():
    loaded = load(BASE.replace("instance: main, ", ""))
    assert loaded.settings.apps[0].target("dev").instance == "main"  # type: ignore[union-attr]
    two = BASE.replace("argocd:\n", "argocd:\n  - {name: edge, url: 'https://e.example', token_env: E}\n")
    assert problems(two.replace("instance: main, ", "")) == (
        "apps[0].environments.dev.instance: required: 2 Argo CD instances are configured (edge, main)",
    )


def test_backend_specific_keys():
    assert problems(BASE.replace("name: web-dev,", "name: web-dev, kind: HelmRelease,")) == (
        "apps[0].environments.dev: kind applies only to Flux targets (backend: flux)",
    )


def test_environment_expansion():
    text = """
        slack: {alerts_channel: '${CHANNEL}', command: '${CMD:-/gitops}'}
        server: {port: '${PORT:-3000}', host: '${HOST:-127.0.0.1}'}
        audit: {database: '$${HOME}/x.db'}
    """
    loaded = load(text, {"CHANNEL": "C0123ABC", "HOST": ""})
    assert loaded.settings.slack.alerts_channel == "C0123ABC"
    assert loaded.settings.slack.command == "/gitops"
    assert loaded.settings.server.port == 3000  # expanded text converted to the key's type
    assert loaded.settings.server.host == "127.0.0.1"  # empty counts as unset for ':-'
    assert loaded.settings.audit.database == Path("${HOME}/x.db")  # '$${' is a literal '${'


def test_empty_config_gives_the_documented_defaults():
    s = load("").settings
    assert s == Settings()
    server = s.server
    assert (server.port, server.threads, server.workers, server.queue_limit) == (3000, 8, 4, 64)
    assert (server.host, server.shutdown_timeout) == ("0.0.0.0", timedelta(seconds=30))  # noqa: S104
    assert (s.slack.command, s.slack.alerts_channel, s.logging.level) == ("/gitops", None, "INFO")
    assert (s.drift.enabled, s.drift.interval, s.drift.jitter) == (True, timedelta(0, 120), timedelta(0, 20))
    assert (s.audit.database, s.audit.retention_days) == (Path("data/gitops-bot.db"), None)
    assert (s.argocd, s.flux, s.repositories, s.environments, s.apps) == ((), (), (), (), ())


def test_empty_value_means_default():
    s = load("drift:\nserver:\n  port:\naccess:\n  grants:\n").settings
    assert (s.drift, s.server.port, s.access.grants) == (Settings().drift, 3000, ())


def test_nested_defaults_and_helpers():
    s = load(BASE).settings
    main, repo, dev, web = s.argocd[0], s.repository("deploy"), s.environment("dev"), s.app("web")
    assert (main.verify_tls, main.timeouts.connect, main.timeouts.read, main.ca_file) == (True, 5, 30, None)
    assert main.browser_url == "https://argo.example.com"
    assert repo is not None
    assert (repo.branch, repo.commit_identity.email) == ("main", "gitops-bot@localhost")
    assert dev is not None
    assert (dev.approval_timeout, dev.approvals_required) == (timedelta(minutes=60), 0)
    assert web is not None
    assert (web.env_names, web.target("prod"), web.target("dev")) == (("dev",), None, web.environments["dev"])
    assert (s.next_environment("dev"), s.next_environment("prod")) == (s.environment("prod"), None)
    with pytest.raises(TypeError):
        web.environments["x"] = web.environments["dev"]  # type: ignore[index]
    assert Settings.model_validate_json(s.model_dump_json()) == s  # a dump reloads as the same settings
    assert hash(s) == hash(load(BASE).settings)


def test_warnings_do_not_stop_loading():
    text = with_base(
        """
        access:
          roles: [{name: empty-role}]
          grants:
            - {role: viewer}
            - {role: deployer, users: [U1AB], environments: [prd], apps: [webb]}
        """,
        **{"  - name: prod": "  - name: prod\n    approvals_required: 1"},
    )
    warnings = load(text, {"SLACK_BOT_TOKEN": "x", "SLACK_APP_TOKEN": "y"}).warnings
    assert warnings == (
        "access.grants[0]: grants role 'viewer' to no users and no groups",
        "access.grants[1].environments[0]: unknown environment 'prd' (did you mean 'prod'?)",
        "access.grants[1].apps[0]: unknown app 'webb' (did you mean 'web'?)",
        "access.roles[0].actions: role 'empty-role' allows no actions",
        "environments[1].approvers: 'prod' requires 1 approval(s) but lists no approvers",
        "drift.channel: drift detection is on but neither drift.channel nor slack.alerts_channel is set",
        "argocd[0].token_env: ARGO_TOKEN is not set; requests to Argo CD 'main' will not be authenticated",
    )


def test_resolve_config_path():
    assert resolve_config_path("a.yaml", {"GITOPS_BOT_CONFIG": "b.yaml"}) == (Path("a.yaml"), True)
    assert resolve_config_path(None, {"GITOPS_BOT_CONFIG": "b.yaml"}) == (Path("b.yaml"), True)
    assert resolve_config_path(None, {}) == (Path("gitops-bot.yaml"), False)


def test_missing_file_named_explicitly_is_a_problem(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", explicit=True, environ={})
    assert info.value.problems == (f"{tmp_path / 'nope.yaml'}: config file not found",)


def test_missing_default_file_loads_defaults_with_a_note(tmp_path):
    loaded = load_config(tmp_path / "gitops-bot.yaml", explicit=False, environ={})
    assert (loaded.settings, loaded.source) == (Settings(), None)
    (note,) = loaded.notes
    assert "using built-in defaults" in note


def test_file_problems_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, explicit=True, environ={})
    assert info.value.problems[0].startswith(f"{path}: YAML syntax error at line 2")
    path.write_text(BASE)
    assert load_config(path, explicit=True, environ={}).source == path


def test_slack_api_url_comes_from_the_environment():
    assert load("", {"SLACK_API_URL": "http://127.0.0.1:9/api/"}).slack_api_url == "http://127.0.0.1:9/api"
    assert problems("", {"SLACK_API_URL": "nope"})[0].startswith("SLACK_API_URL: not a URL")


def test_example_file_loads_with_an_empty_environment():
    loaded = load_config(EXAMPLE, explicit=True, environ={})
    s = loaded.settings
    # Only "variable not set" warnings: the example itself is clean.
    assert loaded.warnings
    assert all("is not set" in w for w in loaded.warnings)
    assert s.environment_names == ("dev", "staging", "prod")
    assert [e.approvals_required for e in s.environments] == [0, 0, 1]
    backends = sorted({t.backend for t in a.environments.values()}.pop() for a in s.apps)
    assert backends == ["argocd", "argocd", "flux"]
    assert all(a.env_names == ("dev", "staging", "prod") for a in s.apps)
    assert "${" in EXAMPLE.read_text()


COMMENTED_IN_EXAMPLE = {
    "argocd[].ca_file",
    "flux[].kubeconfig",
    "flux[].context",
    "tekton[].kubeconfig",
    "tekton[].context",
    "repositories[].ssh_key_path",
    # The example keeps SQLite; the PostgreSQL section is there, commented out.
    "database.url",
    "database.password_env",
    "database.sslmode",
    "database.ssl_root_cert",
    "database.pool_size",
    "database.connect_timeout",
}


def test_every_schema_key_is_documented_and_in_the_example():
    leaves = set(schema_leaves(Settings))
    assert "apps[].environments.<env>.kind" in leaves
    assert "access.grants[].projects" in leaves
    docs = DOCS.read_text()
    assert sorted(p for p in leaves if f"`{p}`" not in docs) == []
    example_text = EXAMPLE.read_text()
    present = set(data_paths(YAML(typ="safe").load(example_text)))
    missing = sorted(leaves - present - COMMENTED_IN_EXAMPLE)
    assert missing == []
    for path in COMMENTED_IN_EXAMPLE:
        assert re.search(rf"^\s*# {path.rsplit('.', 1)[-1]}: ", example_text, re.M), path


def test_secrets_never_appear_in_renderings():
    environ = {
        "SLACK_BOT_TOKEN": "xoxb-bot-SECRET-1",
        "SLACK_SIGNING_SECRET": "signing-SECRET-2",
        "SLACK_APP_TOKEN": "xapp-SECRET-3",
        "ARGO_TOKEN": "argo-SECRET-4",
        "GIT_TOKEN": "git-SECRET-5",
    }
    loaded = load(BASE.replace("deploy.git", "deploy.git\n    credentials_env: GIT_TOKEN"), environ)
    secrets = loaded.secrets
    assert set(secrets.values()) == set(environ.values())
    assert secrets.argocd_tokens["main"].get_secret_value() == "argo-SECRET-4"
    assert secrets.git_credentials["deploy"].get_secret_value() == "git-SECRET-5"
    summary = format_summary(loaded)
    assert "Socket Mode" in summary
    assert not [w for w in loaded.warnings if "not set" in w]
    for text in (repr(loaded), str(loaded), repr(secrets), str(secrets), repr(loaded.settings), summary):
        assert "SECRET" not in text


def test_empty_secret_variables_count_as_unset():
    assert Secrets().values() == ()
    loaded = load(BASE, {"ARGO_TOKEN": "", "SLACK_BOT_TOKEN": ""})
    assert loaded.secrets.argocd_tokens == {}
    assert loaded.secrets.slack_bot_token is None


def test_summary_describes_http_mode_and_targets():
    summary = format_summary(load(BASE, {"SLACK_SIGNING_SECRET": "s"}))
    assert summary.startswith("Config OK:")
    assert "HTTP mode on port 3000" in summary
    assert "Argo CD instances (1): main (https://argo.example.com)" in summary
    assert "dev→argocd:main web-dev" in summary
    assert "Environments in promotion order: dev → prod" in summary
    assert "ARGO_TOKEN is not set" in summary
    assert "Database: SQLite data/gitops-bot.db" in summary
