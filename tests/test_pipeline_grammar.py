"""The grammar of `/gitops pipelines` and `/gitops pipeline`: a repeatable `--param k=v` checked before
anything runs, `--namespace`, the permission each needs, and `help` listing them by that permission."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from handlers.authz import Authorizer, pipeline_env
from handlers.caller import Caller
from handlers.grammar.parser import CommandRequest, parse_command
from handlers.grammar.spec import SUBCOMMANDS
from handlers.help import help_reply
from services.access.policy import AccessPolicy
from services.errors import PermissionDenied, UserError
from services.pipelines import PipelineTargets
from services.settings.model import Settings
from services.validation import MAX_PARAM_VALUE, pipeline_param

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def parse(text: str) -> CommandRequest:
    return parse_command(text, now=NOW)


def refused(text: str) -> UserError:
    with pytest.raises(UserError) as info:
        parse(text)
    return info.value


def test_pipeline_collects_every_param_in_order_with_a_namespace() -> None:
    request = parse(
        "pipeline web dev --param revision=abc1234 --param=image=r.example.com/web:1 --namespace ci"
    )
    assert request == CommandRequest(
        "pipeline",
        request.raw_text,
        app="web",
        env="dev",
        params=("revision=abc1234", "image=r.example.com/web:1"),
        namespace="ci",
    )
    assert parse("pipeline web-ci").params == ()
    assert parse("pipeline web-ci --param note=").params == ("note=",)  # an empty value is a value
    assert parse("pipeline web-ci --param url=https://x.example.com/?a=b").params == (
        "url=https://x.example.com/?a=b",
    )


def test_pipelines_takes_an_optional_app_and_env_and_no_flags() -> None:
    assert parse("pipelines") == CommandRequest("pipelines", "pipelines")
    assert parse("pipelines web prod") == CommandRequest(
        "pipelines", "pipelines web prod", app="web", env="prod"
    )
    assert "takes no flags" in refused("pipelines web --param a=b").message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pipeline web --param revision", "it has no `=`"),
        ("pipeline web --param =abc", "the name is empty"),
        ("pipeline web --param 9lives=1", "is not a Tekton param name"),
        ("pipeline web --param 're vision=1'", "is not a Tekton param name"),
        ("pipeline web --param revision=-x", "its value starts with `-`"),
        ("pipeline web --param revision=--upload-pack=evil", "its value starts with `-`"),
        ("pipeline web --param", "`--param` needs a value (k=v)"),
        ("pipeline web --param --namespace", "`--param` needs a value (k=v)"),
        ("pipeline web --namespace CI", "names are lowercase"),
        ("pipeline web --namespace ci --namespace release", "`--namespace` is given twice"),
        ("pipeline --param revision=a", "`pipeline` needs APP"),
    ],
)
def test_a_bad_pipeline_argument_is_refused_with_what_is_wrong(text: str, needle: str) -> None:
    assert needle in refused(text).message


def test_a_param_value_is_one_bounded_line() -> None:
    with pytest.raises(UserError, match="line break or control character"):
        pipeline_param("note=a\nb")
    with pytest.raises(UserError, match="line break or control character"):
        pipeline_param("note=a\u202eb")
    with pytest.raises(UserError, match="characters long"):
        pipeline_param("note=" + "x" * (MAX_PARAM_VALUE + 1))
    assert pipeline_param("note=" + "x" * MAX_PARAM_VALUE).endswith("x")
    assert refused("pipeline web --param x").hint == "Write it as `--param revision=abc1234`."


def test_each_subcommand_names_the_permission_it_needs() -> None:
    assert SUBCOMMANDS["pipeline"].permission == "pipeline_run"
    assert SUBCOMMANDS["pipeline"].mutating
    assert SUBCOMMANDS["pipelines"].permission == "pipelines"
    assert not SUBCOMMANDS["pipelines"].mutating
    assert SUBCOMMANDS["sync"].permission == "sync"
    assert SUBCOMMANDS["pipeline"].flag("--param") is not None
    assert SUBCOMMANDS["pipeline"].flag("--param").repeatable  # type: ignore[union-attr]


SETTINGS = {
    "environments": [{"name": "dev"}, {"name": "prod"}],
    "argocd": [{"name": "main", "url": "https://argo.example.com", "token_env": "T"}],
    "apps": [
        {
            "name": "web",
            "environments": {"dev": {"backend": "argocd", "name": "web-dev"},
                             "prod": {"backend": "argocd", "name": "web-prod"}},
            "pipelines": [
                {"name": "web-ci", "namespace": "ci", "cluster": "ci", "environments": ["dev"]},
                {"name": "web-release", "namespace": "ci", "cluster": "ci"},
            ],
        }
    ],
    "access": {
        "grants": [
            {"role": "deployer", "users": ["U0DEV"], "environments": ["dev"]},
            {"role": "viewer", "users": ["U0VIEW"]},
        ]
    },
}  # fmt: skip


def _settings() -> Settings:
    return Settings.model_validate(SETTINGS)


def test_the_pipeline_check_uses_the_environment_the_pipeline_builds() -> None:
    settings = _settings()
    targets = PipelineTargets(settings)
    authz = Authorizer(AccessPolicy(settings, None))
    dev_only = targets.resolve("web-ci")
    assert pipeline_env(dev_only) == "dev"  # it builds only dev: a dev deployer may start it
    assert authz.pipeline(Caller("U0DEV", "dev", "C1", ""), "pipeline_run", dev_only) == "dev"
    assert authz.pipeline(Caller("U0DEV", "dev", "C1", ""), "pipeline_cancel", dev_only) == "dev"
    any_env = targets.resolve("web-release")
    assert pipeline_env(any_env) is None  # every environment: a grant for all of them is needed
    with pytest.raises(PermissionDenied):
        authz.pipeline(Caller("U0DEV", "dev", "C1", ""), "pipeline_run", any_env)
    with pytest.raises(PermissionDenied):
        authz.pipeline(Caller("U0VIEW", "view", "C1", ""), "pipeline_run", dev_only)
    # The coarse check of the command maps `pipeline` to `pipeline_run`, `pipelines` to itself.
    authz.command(Caller("U0VIEW", "view", "C1", ""), parse("pipelines web"))
    with pytest.raises(PermissionDenied, match="pipeline_run"):
        authz.command(Caller("U0VIEW", "view", "C1", ""), parse("pipeline web-ci"))


def test_help_lists_pipeline_for_those_who_may_start_runs() -> None:
    viewer = json.dumps(list(help_reply(None, frozenset({"pipelines", "status"})).blocks))
    assert "/gitops pipelines" in viewer
    assert "/gitops pipeline APP" not in viewer
    deployer = json.dumps(list(help_reply(None, frozenset({"pipelines", "pipeline_run"})).blocks))
    assert "/gitops pipeline APP|PIPELINE" in deployer
    detail = json.dumps(list(help_reply("pipeline").blocks))
    assert "--param k=v" in detail
    assert "repeat for more" in detail
