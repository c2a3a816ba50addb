"""Batch sync strategies (issue 15): the built-in plans, the `--strategy` grammar, and the orders
and gates of `sync --selector` checked end to end against the sandbox Argo CD with the fake Slack."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from handlers.gitops.batch import plan_batch
from handlers.grammar.parser import parse_command
from handlers.grammar.spec import SUBCOMMANDS
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.backend import AppRef
from services.errors import UserError
from services.extensions.builtin.strategies import SYNC_WAVE, plan, wave_of
from services.extensions.hookspecs import hookimpl
from services.extensions.manager import Extensions
from services.extensions.model import BatchPlan, BatchTarget
from services.settings.model import Settings
from tests.conftest import config_for, start_on_argocd

CHANNEL = "C0DEPLOYS"
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def _ref(name: str) -> AppRef:
    return AppRef("argocd", "main", name)


def _target(name: str, *, wave: str | None = None, labels: dict[str, str] | None = None) -> BatchTarget:
    annotations = ((SYNC_WAVE, wave),) if wave is not None else ()
    return BatchTarget(_ref(name), labels=tuple(sorted((labels or {}).items())), annotations=annotations)


def _names(waves: tuple[tuple[AppRef, ...], ...]) -> list[list[str]]:
    return [[ref.name for ref in wave] for wave in waves]


# -- the plans ------------------------------------------------------------------------------------


def test_parallel_is_one_wave_by_name() -> None:
    made = plan("parallel", [_target("b"), _target("a")], stop_on_failure=False)
    assert made is not None
    assert (_names(made.waves), made.gate_on_health, made.stop_on_failure) == ([["a", "b"]], False, False)


def test_waves_by_annotation_lowest_first_missing_and_garbage_are_wave_zero() -> None:
    targets = [
        _target("late", wave="5"),
        _target("early", wave="-1"),
        _target("plain"),  # no annotation: wave 0, as Argo CD treats it
        _target("garbage", wave="soon"),  # not an integer: wave 0
        _target("spaced", wave=" 5 "),
        _target("plus", wave="+0"),
        _target("float", wave="1.5"),  # Atoi refuses it: wave 0
    ]
    made = plan("waves", targets, stop_on_failure=True)
    assert made is not None
    assert _names(made.waves) == [["early"], ["float", "garbage", "plain", "plus"], ["late", "spaced"]]
    assert made.wave_names == ("-1", "0", "5")
    assert (made.strategy, made.stop_on_failure, made.gate_on_health) == ("waves", True, False)


def test_waves_by_configured_label_ignore_the_annotation() -> None:
    targets = [
        _target("a", wave="-5", labels={"rollout/wave": "2"}),
        _target("b", labels={"rollout/wave": "1"}),
        _target("c", wave="9"),  # no label: wave 0, whatever the annotation says
    ]
    made = plan("waves", targets, stop_on_failure=False, wave_label="rollout/wave")
    assert made is not None
    assert _names(made.waves) == [["c"], ["b"], ["a"]]
    assert wave_of(targets[0], None) == -5


def test_canary_is_the_marked_target_else_the_first_by_name() -> None:
    marked = [_target("a"), _target("c", labels={"gitops-bot/canary": "true"}), _target("b")]
    made = plan("canary", marked, stop_on_failure=False)
    assert made is not None
    assert (_names(made.waves), made.gate_on_health) == ([["c"], ["a", "b"]], True)
    assert made.wave_names == ("canary", "rest")
    first = plan("canary", [_target("zeta"), _target("alpha")], stop_on_failure=False)
    assert first is not None
    assert _names(first.waves) == [["alpha"], ["zeta"]]
    alone = plan("canary", [_target("solo")], stop_on_failure=False)
    assert alone is not None
    assert _names(alone.waves) == [["solo"]]


def test_unknown_names_are_left_to_plugins() -> None:
    assert plan("blue-green", [_target("a")], stop_on_failure=False) is None


def test_plan_batch_through_the_plugin_manager_and_its_errors() -> None:
    extensions, problems = Extensions.load(Settings())
    assert problems == []
    made = plan_batch(extensions, "waves", [_target("a", wave="1"), _target("b")], stop_on_failure=True,
                      concurrency=3, wave_label=None)  # fmt: skip
    assert _names(made.waves) == [["b"], ["a"]]
    assert made.stop_on_failure
    with pytest.raises(UserError) as info:
        plan_batch(extensions, "wavez", [_target("a")], stop_on_failure=False, concurrency=3, wave_label=None)
    assert str(info.value.message) == "unknown strategy `wavez`: parallel, waves, canary."
    assert info.value.hint == "Did you mean `waves`?"


class _BlueGreen:
    """A third-party strategy: answers its own name only, and plans one app too few on purpose."""

    @hookimpl
    def gitops_bot_batch_plan(self, strategy: str, targets: list[BatchTarget]) -> BatchPlan | None:
        if strategy != "blue-green":
            return None
        return BatchPlan(((targets[0].ref,),), "blue-green")


def test_a_plugin_strategy_answers_and_a_plan_missing_targets_is_refused() -> None:
    from services.extensions.builtin import BUILTINS

    extensions, _ = Extensions.load(Settings(), builtins={**BUILTINS, "bg": _BlueGreen()})
    assert plan_batch(extensions, "canary", [_target("a")], stop_on_failure=False, concurrency=1,
                      wave_label=None).strategy == "canary"  # fmt: skip
    with pytest.raises(UserError, match="planned other apps"):
        plan_batch(extensions, "blue-green", [_target("a"), _target("b")], stop_on_failure=False,
                   concurrency=1, wave_label=None)  # fmt: skip


# -- the grammar ----------------------------------------------------------------------------------


def test_strategy_and_stop_on_failure_parse_with_selector() -> None:
    parsed = parse_command("sync --selector team=pay --strategy Waves --stop-on-failure", now=NOW)
    assert (parsed.strategy, parsed.stop_on_failure) == ("waves", True)
    assert parse_command("sync --selector team=pay", now=NOW).strategy is None
    assert "--strategy" in SUBCOMMANDS["sync"].usage


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sync web --strategy waves", "`--strategy` only applies with `--selector`"),
        ("sync web prod --stop-on-failure", "`--stop-on-failure` only applies with `--selector`"),
        ("sync --selector a=b --strategy 'no way'", "is not a strategy name"),
        ("sync --selector a=b --strategy", "`--strategy` needs a value (S)"),
        ("status --strategy waves", "Unknown flag `--strategy` for `status`"),
    ],
)
def test_strategy_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_command(text, now=NOW)
    assert message in info.value.message


# -- end to end: the sandbox Argo CD --------------------------------------------------------------


class Bot:
    def __init__(self, sender: SlackSender, slack: FakeSlack, argocd: FakeArgoCD) -> None:
        self.sender, self.slack, self.argocd = sender, slack, argocd

    def say(self, text: str) -> None:
        sent = self.sender.slash(text, user_id="U0ALICE", user_name="alice", channel_id=CHANNEL)
        assert sent.status == 200, sent.body

    def card(self, needle: str, timeout: float = 25) -> str:
        """The batch card's blocks (as JSON) once they contain `needle`."""

        def shown(fake: FakeSlack) -> bool:
            return any(needle in json.dumps(m.blocks) for m in fake.messages(CHANNEL))

        self.slack.wait_for(shown, timeout=timeout)
        return json.dumps(self.slack.messages(CHANNEL)[-1].blocks, ensure_ascii=False)

    def synced(self) -> list[str]:
        return [r.path.split("/")[-2] for r in self.argocd.requests() if r.path.endswith("/sync")]

    def times(self, name: str) -> tuple[str, str]:
        """When the sandbox's controller started and finished the app's last operation."""
        state = self.argocd.app(name)["status"]["operationState"]
        return state["startedAt"], state["finishedAt"]


def _annotate(argocd: FakeArgoCD, name: str, annotations: dict[str, str]) -> None:
    """Like `argocd app patch --type merge`: through the API, as a person would."""
    body = {
        "name": name,
        "patchType": "merge",
        "patch": json.dumps({"metadata": {"annotations": annotations}}),
    }
    headers = {"Authorization": f"Bearer {JWT_TOKEN}"}
    reply = httpx.patch(f"{argocd.base_url}/api/v1/applications/{name}", json=body, headers=headers)
    assert reply.status_code == 200, reply.text


def _ticking() -> FakeArgoCD:
    # Argo CD's times have second precision: one second per reading makes every start and finish
    # the sandbox records distinct and in the order they happened.
    ticks = itertools.count(1_750_000_000)
    return FakeArgoCD(operation_seconds=0.4, tick=0.02, clock=lambda: float(next(ticks))).start()


@contextmanager
def _bot(tmp_path: Path, slack: FakeSlack, argocd: FakeArgoCD, *, concurrency: int = 3) -> Iterator[Bot]:
    yaml = f"""
argocd:
  - name: main
    url: {argocd.base_url}
    token_env: ARGOCD_TOKEN
    timeouts: {{connect: 2, read: 5}}
operations:
  sync_timeout: 30s
  batch_concurrency: {concurrency}
sync:
  strategy: canary
access:
  grants:
    - role: deployer
      users: [U0ALICE]
"""
    loaded = config_for(tmp_path, slack, extra_yaml=yaml, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
    runtime, sender = start_on_argocd(loaded, slack)
    try:
        yield Bot(sender, slack, argocd)
    finally:
        runtime.stop()
        argocd.stop()


@pytest.fixture
def gitops(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with _bot(tmp_path, fake_slack, _ticking()) as bot:
        yield bot


def test_waves_run_one_after_another_and_override_the_configured_strategy(gitops: Bot) -> None:
    waves = {"w-early": "-1", "w-plain": None, "w-garbage": "later", "w-late": "5", "w-late2": "5"}
    for name, wave in waves.items():
        gitops.argocd.add_app(name, labels={"team": "wave"})
        if wave is not None:
            _annotate(gitops.argocd, name, {SYNC_WAVE: wave})
    gitops.say("sync --selector team=wave --strategy waves")  # config says canary
    card = gitops.card("5 / 5")
    times = {name: gitops.times(name) for name in waves}
    order = [["w-early"], ["w-garbage", "w-plain"], ["w-late", "w-late2"]]
    for earlier, later in itertools.pairwise(order):
        # Every sync of a wave ended before any of the next started.
        assert max(times[n][1] for n in earlier) < min(times[n][0] for n in later), times
    for group in order[1:]:  # inside a wave they run side by side (batch_concurrency: 3)
        assert max(times[n][0] for n in group) < min(times[n][1] for n in group), times
    assert sorted(gitops.synced()) == sorted(waves)
    assert "*Strategy*\\nwaves" in card
    assert "`main/w-early` Succeeded · wave -1" in card
    assert "`main/w-plain` Succeeded · wave 0" in card
    assert card.index("w-early") < card.index("w-garbage") < card.index("w-late2")


def test_canary_from_config_goes_first_alone(gitops: Bot) -> None:
    for name in ("c-a", "c-b", "c-c"):
        gitops.argocd.add_app(
            name, labels={"team": "can", **({"gitops-bot/canary": "true"} if name == "c-b" else {})}
        )
    gitops.say("sync --selector team=can")
    card = gitops.card("3 / 3")
    times = {name: gitops.times(name) for name in ("c-a", "c-b", "c-c")}
    assert times["c-b"][1] < min(times["c-a"][0], times["c-c"][0]), times
    assert gitops.synced()[0] == "c-b"
    assert "*Strategy*\\ncanary" in card
    assert "`main/c-b` Succeeded · wave canary" in card


def test_a_degraded_canary_skips_the_rest_which_are_never_synced(gitops: Bot) -> None:
    for name in ("d-a", "d-b", "d-c"):
        gitops.argocd.add_app(name, labels={"team": "deg"})
    gitops.argocd.set_health("d-a", "Degraded", "Back-off restarting failed container")
    gitops.say("sync --selector team=deg")
    card = gitops.card("3 / 3")
    assert gitops.synced() == ["d-a"]
    skipped = "not started: main/d-a ended Degraded, not Succeeded and Healthy (canary gate)"
    assert card.count(skipped) == 2
    assert "`main/d-b` Skipped · wave rest" in card


def test_a_progressing_canary_holds_the_rest_until_healthy(gitops: Bot) -> None:
    for name in ("p-a", "p-b"):
        gitops.argocd.add_app(name, labels={"team": "prog"})
    gitops.argocd.set_health("p-a", "Progressing", "Waiting for rollout to finish")
    gitops.say("sync --selector team=prog")
    gitops.card("waiting for Healthy (now Progressing)")
    assert gitops.argocd.app("p-a")["status"]["operationState"]["phase"] == "Succeeded"
    assert gitops.synced() == ["p-a"]  # the rest waits for the canary's rollout
    gitops.argocd.set_health("p-a", "Healthy")
    gitops.card("2 / 2")
    assert gitops.synced() == ["p-a", "p-b"]


def test_unknown_strategy_is_refused_before_anything_starts(gitops: Bot) -> None:
    gitops.argocd.add_app("u-a", labels={"team": "unk"})
    gitops.say("sync --selector team=unk --strategy wavez")

    def refused(fake: FakeSlack) -> bool:
        return any("unknown strategy" in m.text + json.dumps(m.blocks) for m in fake.ephemeral("U0ALICE"))

    gitops.slack.wait_for(refused, timeout=15)
    shown = "".join(m.text + json.dumps(m.blocks) for m in gitops.slack.ephemeral("U0ALICE"))
    assert "unknown strategy `wavez`: parallel, waves, canary." in shown
    assert "Did you mean `waves`?" in shown
    assert gitops.synced() == []
    assert gitops.slack.messages(CHANNEL) == []


def test_stop_on_failure_starts_nothing_after_a_failure(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with _bot(tmp_path, fake_slack, _ticking(), concurrency=1) as gitops:
        for name in ("s-a", "s-b", "s-c"):
            gitops.argocd.add_app(name, labels={"team": "stop"})
        gitops.argocd.fail_next_sync("s-a", message="one or more objects failed to apply")
        gitops.say("sync --selector team=stop --strategy parallel --stop-on-failure")
        card = gitops.card("3 / 3")
        assert gitops.synced() == ["s-a"]
        assert card.count("not started: main/s-a failed (stop_on_failure)") == 2
        assert "*Strategy*\\nparallel, stop on failure" in card


def test_without_stop_on_failure_a_failed_wave_does_not_stop_the_next(gitops: Bot) -> None:
    for name, wave in (("f-a", "0"), ("f-b", "1")):
        gitops.argocd.add_app(name, labels={"team": "fail"})
        _annotate(gitops.argocd, name, {SYNC_WAVE: wave})
    gitops.argocd.fail_next_sync("f-a")
    gitops.say("sync --selector team=fail --strategy waves")
    card = gitops.card("2 / 2")
    assert gitops.synced() == ["f-a", "f-b"]
    assert "`main/f-a` Failed · wave 0" in card
    assert "`main/f-b` Succeeded · wave 1" in card
