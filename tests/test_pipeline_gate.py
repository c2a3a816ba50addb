"""The `pipeline_succeeded` validator (issue 16) end to end: the real bot over HTTP, the fake Slack,
the fake Argo CD, a real Git remote, and the sandbox Tekton on a fake Kubernetes API server.

A promotion of `api` from dev to prod is gated on the newest run of `api-ci` for dev's revision
(or for the image tag being promoted): a red, unfinished or missing run blocks it — at the request,
again at the approval click — and a green one is shown on the card with its Dashboard link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from handlers.grammar.parser import parse_command
from handlers.promote.checks import finding_lines
from sandbox.argocd_fake import JWT_TOKEN
from sandbox.flux_fake import FakeKubernetes
from sandbox.slack_api import FakeSlack
from sandbox.slack_models import Message
from sandbox.tekton_fake import FakeTekton
from services.extensions.builtin.pipelines import same_revision
from services.extensions.events import document, events_for
from services.extensions.model import Finding
from services.settings.check import check_settings
from tests.conftest import config_for, start_on_argocd
from tests.test_promote_commands import World

CI = "api-ci"
NS = "ci"
DASHBOARD = "https://tekton.example.com"
OTHER_SHA = "0123456789abcdef0123456789abcdef01234567"
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "events.schema.json").read_text())
_COMMAND = re.compile(r"`(/gitops [^`]+)`")


def _text(message: Message) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


class GateWorld(World):
    """The promotion world of tests/test_promote_commands.py, plus Tekton and the gate."""

    def __init__(self, tmp: Path, slack: FakeSlack, kube: FakeKubernetes, tekton: FakeTekton) -> None:
        super().__init__(tmp, slack)
        self.kube, self.tekton = kube, tekton
        self.kubeconfig = kube.write_kubeconfig(tmp / "kubeconfig", namespace=NS)
        self.revision = str(self.argocd.app("api-dev")["status"]["sync"]["revision"])

    @contextmanager
    def gate(
        self, *, validator: str = "", pipeline: str = "", clock: Callable[[], datetime] | None = None
    ) -> Iterator[GateWorld]:
        """The bot with `api-ci` configured for `api` and a `pipeline_succeeded` validator on prod
        (`validator`: more keys of it, `pipeline`: more keys of the app's pipeline entry)."""
        extra = f"""
argocd:
  - name: main
    url: {self.argocd.base_url}
    token_env: ARGOCD_TOKEN
tekton:
  - name: ci
    kubeconfig: {self.kubeconfig}
    context: sandbox
    namespaces: [{NS}]
    dashboard_url: {DASHBOARD}/
repositories:
  - name: deploy
    url: file://{self.bare}
git:
  cache_dir: {self.tmp / "cache"}
environments:
  - name: dev
  - name: staging
  - name: prod
    approvals_required: 1
    approvers: {{users: [U0BOSS, U0CAROL]}}
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev, repository: deploy, path: apps/api/dev}}
      staging: {{backend: argocd, name: api-staging, repository: deploy, path: apps/api/staging}}
      prod: {{backend: argocd, name: api-prod, repository: deploy, path: apps/api/prod}}
    promotion:
      images: [registry.example.com/api]
    pipelines:
      - name: {CI}
        namespace: {NS}
        revision_param: revision{pipeline}
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOSS]
    - role: admin
      users: [U0ADMIN]
validators:
  - kind: pipeline_succeeded
    environments: [prod]{validator}
"""
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
        self.runtime, self.sender = start_on_argocd(loaded, self.slack, clock=clock)
        try:
            yield self
        finally:
            self.runtime.stop()

    def run(
        self,
        revision: str | None = None,
        *,
        tag: str = "0.0.1",
        fail: bool = False,
        labels: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> str:
        """A run of api-ci as `tkn pipeline start` makes it, ended (unless `wait=False`); the next
        one starts later by Tekton's clock (startTime has whole seconds: tkn's order must be sure)."""
        if fail:
            self.tekton.fail_next(CI, "test", "unit", exit_code=2, log_lines=["FAIL: TestCheckout"])
        params = {"revision": revision or self.revision, "image-tag": tag}
        name = self.tekton.start_run(CI, params=params, labels=labels)
        if wait:
            self.tekton.wait_for(name)
        self.tekton.advance(5)
        return name

    def promote(self, user: str = "U0ALICE", force: bool = False) -> None:
        self.say("promote api --to prod --from dev" + (" --force" if force else ""), user=user)

    def approve(self, card: Message, user: str = "U0BOSS") -> None:
        assert self.sender is not None
        self.sender.click(card, "promotion_approve", user_id=user, user_name=user.lower()[2:])

    def fresh(self, card: Message) -> str:
        found = self.slack.find_message(card.channel, card.ts)
        assert found is not None, "the card must never be deleted"
        return _text(found)

    def events(self) -> list[dict[str, Any]]:
        """Every event the audit trail gave the notifiers, checked against the published schema."""
        assert self.runtime is not None
        documents = []
        for row in self.runtime.deps.audit.recent(limit=100):
            for event in events_for(row):
                doc = document(event)
                jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
                documents.append(doc)
        return documents


@pytest.fixture
def gate(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[GateWorld]:
    with (
        FakeKubernetes(tick=0.01) as kube,
        FakeTekton(kube, tick=0.01, step_seconds=0.02) as tekton,
    ):
        tekton.add_simple_pipeline(
            CI, {"build": ["compile"], "test": ["unit"]}, params=("revision", "image-tag"), namespace=NS
        )
        world = GateWorld(tmp_path, fake_slack, kube, tekton)
        try:
            yield world
        finally:
            world.argocd.stop()


def _link(run: str, query: str = "") -> str:
    return f"<{DASHBOARD}/#/namespaces/{NS}/pipelineruns/{run}{query}|details>"


def test_the_newest_run_for_the_revision_failed_so_the_promotion_is_blocked_even_with_force(
    gate: GateWorld,
) -> None:
    passed = gate.run()  # an older run for the same commit succeeded: the newest one counts
    failed = gate.run(fail=True)
    gate.run(OTHER_SHA)  # a newer run for another commit is not this promotion's
    with gate.gate() as w:
        w.promote()
        card = _text(w.card("Not requested"))
        assert f"run `{failed}` for revision `{w.revision[:7]}` ended Failed" in card
        assert "task `test`, step `unit` exited 2" in card
        assert _link(failed, "?pipelineTask=test&step=unit") in card  # opens the failing step
        assert passed not in card
        assert "promotion_approve" not in card
        assert "/gitops promote api --to prod --from dev" in card
        w.audited("promote")

        w.promote(user="U0ADMIN", force=True)  # a red build is not a judgement call
        w.slack.wait_for(lambda f: sum("Not requested" in _text(m) for m in f.messages("C0DEPLOYS")) == 2)
        forced = [m for m in w.slack.messages("C0DEPLOYS") if "Not requested" in _text(m)][-1]
        assert "promotion_approve" not in _text(forced)
        assert f"`{failed}`" in _text(forced)
        assert "promote api to prod" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")
        blocked = [e for e in w.events() if e["type"] == "promotion.blocked"]
        assert len(blocked) == 2
        assert all(failed in e["data"]["reason"] for e in blocked)


def test_the_newest_run_succeeded_after_a_failure_so_the_card_shows_it_and_the_promotion_deploys(
    gate: GateWorld,
) -> None:
    gate.run(fail=True)
    passed = gate.run(gate.revision[:7])  # a short SHA names the same commit
    with gate.gate() as w:
        w.promote()
        card = w.card("promotion_approve")
        shown = _text(card)
        assert (
            f":information_source: *pipeline_succeeded*: pipeline `{CI}`: run `{passed}` Succeeded" in shown
        )
        assert f"for revision `{w.revision[:7]}` · {_link(passed)}" in shown
        assert "&lt;" not in shown  # the link is a link, escaped once
        assert "&amp;" not in shown
        w.approve(card)
        w.card("Deploy: *Succeeded*")
        assert f"run `{passed}` Succeeded" in w.fresh(card)  # the committed card still says who vouched
        assert "promote api to prod" in w.remote_log()
        w.audited("promotion_approve")
        deployed = [e for e in w.events() if e["type"] == "promotion.deployed"]
        assert deployed
        assert "pipeline_succeeded info" in deployed[0]["data"]["note"]


def test_a_missing_run_blocks_with_a_runnable_start_command(gate: GateWorld) -> None:
    gate.run(OTHER_SHA)  # green, but for another commit
    with gate.gate() as w:
        w.promote()
        card = _text(w.card("Not requested"))
        wanted = f"`{w.revision[:7]}` or `1.4.3` (matched by param `revision`)"
        assert f"no run of pipeline `{CI}` was for {wanted}" in card
        command = f"/gitops pipeline {CI} --param revision={w.revision}"
        assert f"`{command}`" in card
        request = parse_command(command.removeprefix("/gitops "), now=datetime.now(UTC))
        assert request.subcommand == "pipeline"
        assert "promotion_approve" not in card
        assert "promote api to prod" not in w.remote_log()


def test_a_pinned_param_gets_the_pipelines_list_instead_of_a_start_command(gate: GateWorld) -> None:
    with gate.gate(pipeline=f"\n        params: {{revision: {OTHER_SHA}}}") as w:
        w.promote()
        card = _text(w.card("Not requested"))
        assert "no run of pipeline" in card
        assert "`/gitops pipelines api prod`" in card
        assert "--param" not in card


def test_a_run_still_running_blocks_until_it_finished(gate: GateWorld) -> None:
    gate.tekton.hold(CI, "test")
    running = gate.run(wait=False)
    gate.tekton.wait_for(running, until=lambda o: bool((o.get("status") or {}).get("startTime")))
    try:
        with gate.gate() as w:
            w.promote()
            card = _text(w.card("Not requested"))
            assert f"the newest run `{running}` for revision `{w.revision[:7]}` has not finished" in card
            assert "wait for it to succeed, then promote again" in card
            assert _link(running) in card
    finally:
        gate.tekton.release(CI, "test")


def test_tekton_unreachable_blocks_as_could_not_check(gate: GateWorld) -> None:
    gate.run()
    with gate.gate() as w:
        gate.kube.go_down()
        try:
            w.promote()
            card = _text(w.card("Not requested"))
        finally:
            gate.kube.come_up()
        assert (
            f"could not check pipeline `{CI}` in ci/{NS}: Tekton ci: the Kubernetes API cannot be reached"
            in card
        )
        assert "promotion_approve" not in card
        assert "promote api to prod" not in w.remote_log()


def test_runs_are_matched_by_a_label_when_configured(gate: GateWorld) -> None:
    label = "example.com/commit"
    gate.run(OTHER_SHA, labels={label: gate.revision[:12]})  # the label names our commit
    gate.run(fail=True, labels={label: OTHER_SHA[:12]})  # the param does, the label does not: ignored
    with gate.gate(validator=f"\n    label: {label}") as w:
        w.promote()
        card = _text(w.card("promotion_approve"))
        assert f"Succeeded for {label} `{w.revision[:7]}`" in card


def test_runs_are_matched_by_the_image_tag_being_promoted(gate: GateWorld) -> None:
    passed = gate.run(OTHER_SHA, tag="1.4.3")  # built from another commit, for the tag promoted
    gate.run(OTHER_SHA, tag="1.4.2", fail=True)  # another tag's red run is not this promotion's
    with gate.gate(validator="\n    param: image-tag") as w:
        w.promote()
        card = _text(w.card("promotion_approve"))
        assert f"run `{passed}` Succeeded for image-tag `1.4.3`" in card


def test_a_run_that_fails_after_the_card_was_posted_blocks_the_approval(gate: GateWorld) -> None:
    passed = gate.run()
    with gate.gate() as w:
        w.promote()
        card = w.card("promotion_approve")
        assert f"run `{passed}` Succeeded" in _text(card)
        failed = gate.run(fail=True)  # someone re-ran the pipeline for the commit; it failed
        w.approve(card)
        w.slack.wait_for(lambda f: "Not requested" in w.fresh(card), timeout=20)
        shown = w.fresh(card)
        assert f"run `{failed}` for revision `{w.revision[:7]}` ended Failed" in shown
        assert "promotion_approve" not in shown
        assert "promote api to prod" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")


def test_a_pipeline_for_other_environments_does_not_gate_prod(gate: GateWorld) -> None:
    with gate.gate(pipeline="\n        environments: [dev, staging]") as w:
        w.promote()
        card = _text(w.card("promotion_approve"))
        assert "pipeline_succeeded" not in card


def test_warn_severity_shows_the_problem_and_keeps_approve(gate: GateWorld) -> None:
    failed = gate.run(fail=True)
    with gate.gate(validator="\n    severity: warn") as w:
        w.promote()
        card = _text(w.card("promotion_approve"))
        assert f":warning: *pipeline_succeeded*: pipeline `{CI}`: the newest run `{failed}`" in card


# -- the matching rule and the card's lines ------------------------------------------------------------


def test_short_shas_name_the_same_commit_either_way_from_seven_characters() -> None:
    full = "6c0c51e0a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert same_revision(full, full[:7])
    assert same_revision(full[:7].upper(), full)
    assert same_revision(full[:12], full[:7])
    assert not same_revision(full, full[:6])  # too short to name a commit
    assert not same_revision(full[:7], "6c0c51f")
    assert same_revision("1.4.3", "1.4.3")
    assert not same_revision("1.4.3", "1.4")  # tags and versions match only exactly


def test_finding_lines_escape_the_text_once_and_link_only_a_plain_url() -> None:
    lines = finding_lines(
        [
            Finding(
                "pipeline_succeeded", "info", "run `a` Succeeded for <x> & y", "https://t.example/#/r?a=1&b=2"
            ),
            Finding("probe", "warn", "odd", "javascript:alert(1)"),
            Finding("soak", "block", "too soon", "https://t.example/a|b"),
        ]
    ).splitlines()
    assert lines == [
        ":no_entry: *soak*: too soon",
        ":warning: *probe*: odd",
        ":information_source: *pipeline_succeeded*: run `a` Succeeded for &lt;x&gt; &amp; y"
        " · <https://t.example/#/r?a=1&b=2|details>",
    ]


# -- config ------------------------------------------------------------------------------------------

APPS: dict[str, Any] = {
    "argocd": [{"name": "main", "url": "https://argo.example.com", "token_env": "ARGO_TOKEN"}],
    "environments": [{"name": "dev"}, {"name": "prod"}],
    "apps": [
        {
            "name": "web",
            "environments": {
                "dev": {"backend": "argocd", "name": "web-dev"},
                "prod": {"backend": "argocd", "name": "web-prod"},
            },
        }
    ],
}


def _problems(raw: Mapping[str, Any]) -> list[str]:
    report = check_settings(raw)
    return [str(p) for p in report.problems]


def test_config_pipeline_succeeded_needs_a_tekton_cluster(tmp_path: Path) -> None:
    raw = {**APPS, "validators": [{"kind": "soak"}, {"kind": "pipeline_succeeded", "environments": ["prod"]}]}
    assert _problems(raw) == [
        "validators[1].kind: pipeline_succeeded asks Tekton, but no Tekton cluster is configured "
        "(add one under tekton)"
    ]


def test_config_unknown_pipeline_names_the_nearest(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    web = {**APPS["apps"][0], "pipelines": [{"name": "web-ci", "namespace": "ci"}]}
    raw = {
        **APPS,
        "apps": [web],
        "tekton": [{"name": "ci", "kubeconfig": str(kubeconfig), "namespaces": ["ci"]}],
        "validators": [
            {"kind": "pipeline_succeeded", "pipelines": ["web-ic", "web-ci"]},
            {"kind": "pipeline_succeeded", "apps": ["web"], "param": "revision", "label": "commit"},
            {"kind": "pipeline_succeeded", "actions": ["sync"]},
        ],
    }
    assert _problems(raw) == [
        "validators[1].label: set param or label, not both: a run is matched by one of them",
        "validators[2].actions[0]: 'sync' is not one of: promote",
        "validators[0].pipelines[0]: unknown pipeline 'web-ic' (did you mean 'web-ci'?)",
    ]
    fine = {
        **raw,
        "validators": [
            {"kind": "pipeline_succeeded", "pipelines": ["web-ci"], "label": "example.com/commit"}
        ],
    }
    report = check_settings(fine)
    assert report.problems == ()
    assert report.settings is not None
