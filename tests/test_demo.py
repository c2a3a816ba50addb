"""`gitops-bot demo`: the scripted tour end to end, the Block Kit text renderer and the script parser."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.demo import ci
from bot.demo.config import SHOWN_CHANNELS
from bot.demo.console import Console
from bot.demo.feed import Feed, Output
from bot.demo.render import PLAIN, Style, changed_lines, columns, mrkdwn_lines, render_message
from bot.demo.script import ScriptError, Step, parse_script, run_script
from bot.demo.world import DemoWorld
from sandbox.flux_git import git

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "examples" / "demo-tour.txt"
NAMES = {"U0ALICE": "alice", "U0BOB": "bob", "C0DEPLOYS": "deploys"}


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**base, **(env or {})},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _sandbox_dir(stdout: str) -> Path:
    match = re.search(r"in (\S+gitops-bot-demo-\S+) \(deleted", stdout)
    assert match, stdout[:500]
    return Path(match.group(1))


@contextmanager
def replayed(steps: list[Step]) -> Iterator[tuple[DemoWorld, io.StringIO]]:
    """Run `steps` in a demo world (no background scans, no automatic checks); yields it, still up, and
    the transcript."""
    stream = io.StringIO()
    output = Output(stream, PLAIN)
    with DemoWorld.start() as world:
        world.set_autoscan(False)
        world.github.auto = False  # ci/web passes when the script says check-pass, as in a replay
        feed = Feed(world.slack, output, world.names(), SHOWN_CHANNELS).start()
        try:
            console = Console(world, feed, output)
            done = run_script(steps, console.handle, output, prompt=lambda: "> ", finished=lambda: False)
            assert done == 0, stream.getvalue()[-3000:]
            yield world, stream
        finally:
            feed.stop()


# -- end to end ----------------------------------------------------------------------------------------------


def test_the_tour_replays_every_feature_and_cleans_up() -> None:
    done = _cli("demo", "--script", str(TOUR))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout
    for line in (
        "APPS",  # status of everything
        "registry.example.com/web:1.4.1",  # status of one app
        "sandbox/flux-system/api-prod",  # a Flux object
        "replicas 2 → 3",  # diff
        "Now ✅ Synced · 🟢 Healthy",  # sync, watched to the end
        "[1] Approve  [2] Reject",  # buttons as numbered choices
        "Not allowed",  # alice is no approver
        "@bob clicks [1] Approve",
        "GitHub PR: PR #1",  # prod is protected: the promotion opened a pull request…
        "Still missing on GitHub",  # …what its rules still need…
        "required check `ci/web` is still running",  # …so the approved card waits for the check…
        "⚙ ci/web ✅ passed on PR #1",
        "Merged PR #1",  # …and the bot merges it once GitHub allows
        "Deploy: Succeeded",  # the promotion committed and deployed
        "api 2.0.3 → 2.1.0",  # a Flux promotion: commit, then reconcile
        "LIVE STATE CHANGED OUTSIDE GIT: MAIN/WEB-PROD",  # Argo CD drift alert
        "Not ready: HealthCheckFailed",  # Flux drift alert
        "RESOLVED: LIVE STATE CHANGED OUTSIDE GIT",  # resolved in place…
        "↳ #gitops-alerts",  # …with a thread reply
        "ROLLBACK WEB-PROD TO #3",
        "promotion_approve",  # the audit query
        "deployer everywhere",  # whoami
        "(edited)",
        "Succeeded for revision",  # the Tekton gate on the promotion card
        "PIPELINE WEB-CI: SUCCEEDED",  # a run started from Slack, followed in one message
        "Failed at task `test`, step `unit`, exit code 1",  # break-ci's run…
        "NPM_TOKEN=[REDACTED]",  # …its log tail, scrubbed
        "PIPELINE WEB-CI FAILED",  # the pipeline monitor's post
    ):
        assert line in out, f"missing {line!r}"
    assert ci.NPM_TOKEN not in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert "Traceback" not in out + done.stderr
    assert not _sandbox_dir(out).exists()


def test_argo_cd_in_the_demo_reports_the_deploy_repository_s_real_commits() -> None:
    """The merge commit on the promotion card ("Merged PR #1 into `prod` as abc1234") is the revision
    status and history show afterwards, and the one the protected `prod` branch points at (the fake
    Argo CD is fed the real commits, the fake GitHub's merges included)."""
    tour = parse_script(TOUR.read_text())
    until = next(i for i, s in enumerate(tour) if s.text == "/gitops history web prod")
    steps = tour[: until + 2] + parse_script("/gitops status web prod\nexpect: target `prod`\n")
    with replayed(steps) as (world, stream):
        head = git("--git-dir", str(world.bare), "rev-parse", "prod").strip()
        parents = git("--git-dir", str(world.bare), "rev-list", "--parents", "-n", "1", "prod").split()[1:]
        app = world.argocd.app("web-prod")["status"]
        deployed = [entry["revision"] for entry in app["history"]]
        known = git("--git-dir", str(world.bare), "log", "--format=%H", "prod").split()
    out = stream.getvalue()
    assert len(parents) == 2  # GitHub's merge of the PR: nobody pushed to prod
    [committed] = re.findall(r"Merged PR #1 \(\S+\) into `prod` as `([0-9a-f]{7})`", out)
    history = out[out.rindex("> /gitops history web prod") :]
    [current] = re.findall(r"#\d+ `([0-9a-f]{7})` .* ← current", history)
    status = out[out.rindex("> /gitops status web prod") :]
    [running] = re.findall(r"`([0-9a-f]{7})` \(target `prod`\)", status)
    assert committed == current == running == head[:7]
    assert (app["sync"]["revision"], app["operationState"]["syncResult"]["revision"]) == (head, head)
    assert set(deployed) <= set(known)  # every past deployment is a real commit too


def test_a_missed_expectation_shows_what_was_seen_and_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "miss.txt"
    script.write_text("timeout: 2\n/gitops whoami\nexpect: deployer everywhere\nexpect: no such text\nquit\n")
    done = _cli("demo", "--script", str(script), timeout=60)
    assert done.returncode == 1
    assert "line 4: expected “no such text” within 2 s after '/gitops whoami'; saw:" in done.stdout
    assert "  |   WHO YOU ARE TO GITOPS-BOT" in done.stdout
    assert not _sandbox_dir(done.stdout).exists()


def test_an_unknown_console_command_stops_a_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text("/gitops whoami\nstatus web\nhelp\n")
    done = _cli("demo", "--script", str(script), timeout=60)
    assert done.returncode == 1
    assert "did you mean /gitops status web?" in done.stdout
    assert "Console commands" not in done.stdout  # nothing after the failing line ran


def test_an_unreadable_script_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli("demo", "--script", str(tmp_path / "nope.txt"), timeout=30)
    assert done.returncode == 2
    assert "nope.txt" in done.stderr
    assert "starting the sandbox" not in done.stdout


def test_run_without_slack_settings_starts_the_demo_and_ends_at_eof(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,  # no gitops-bot.yaml here: built-in defaults
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert "SLACK_BOT_TOKEN is not set" in first
    assert "demo" in first
    assert "starting the sandbox" in done.stdout
    assert not _sandbox_dir(done.stdout).exists()


# -- the Block Kit renderer -----------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _button(label: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id, **extra}


def test_fields_are_two_columns_padded_to_the_widest_left_cell() -> None:
    block = {
        "type": "section",
        "fields": [_mrkdwn("*Sync*\nSynced"), _mrkdwn("*Health*\nHealthy"), _mrkdwn("*Revision*\n`abc1234`")],
    }
    lines = render_message("", [block], names=NAMES)
    assert lines == ["Sync     Health", "Synced   Healthy", "Revision", "`abc1234`"]


def test_columns_wrap_uneven_cells() -> None:
    assert columns([["a", "bb"], ["x"], ["ccc"], ["y", "z"]]) == ["a     x", "bb", "ccc   y", "      z"]


def test_buttons_are_numbered_and_link_buttons_are_not() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Promote web: staging → prod"}},
        {
            "type": "actions",
            "elements": [_button("Approve", "approve", style="primary"), _button("Reject", "reject")],
        },
        {"type": "section", "text": _mrkdwn("More?"), "accessory": _button("More", "more")},
        {
            "type": "actions",
            "elements": [_button("Open in Argo CD", "open_ui", url="https://argocd.example.com/a")],
        },
    ]
    lines = render_message("", blocks, names=NAMES)
    assert lines == [
        "PROMOTE WEB: STAGING → PROD",
        "[1] Approve  [2] Reject",
        "More?",
        "[3] More",
        "[Open in Argo CD ↗ https://argocd.example.com/a]",
    ]


def test_the_numberer_is_asked_for_each_clickable_button() -> None:
    asked: list[str] = []

    def number(button: Any) -> int:
        asked.append(button["action_id"])
        return 40 + len(asked)

    blocks = [{"type": "actions", "elements": [_button("Approve", "approve"), _button("Reject", "reject")]}]
    assert render_message("", blocks, names=NAMES, number=number) == ["[41] Approve  [42] Reject"]
    assert asked == ["approve", "reject"]


def test_mentions_links_and_escapes() -> None:
    text = (
        "<@U0BOB> asked <@U0NOBODY> in <#C0DEPLOYS> and <#C9|ops>: <!here> "
        "see <https://x.example/a?b=1&amp;c=2|the docs> or <https://y.example> — "
        "1 &lt; 2 &amp;&amp; 3 &gt; 2, &amp;lt;"
    )
    [line] = mrkdwn_lines(text, NAMES, PLAIN)
    assert line == (
        "@bob asked @U0NOBODY in #deploys and #ops: @here see the docs (https://x.example/a?b=1&c=2) "
        "or https://y.example — 1 < 2 && 3 > 2, &lt;"
    )


def test_a_mention_in_bold_keeps_its_name() -> None:
    assert mrkdwn_lines("*Approved by <@U0ALICE>*", NAMES, PLAIN) == ["Approved by @alice"]


def test_bold_italic_strike_and_code_spans() -> None:
    [plain] = mrkdwn_lines("*b* _i_ ~s~ `c *not bold*` snake_case_name 2*3*4", NAMES, PLAIN)
    assert plain == "b i s `c *not bold*` snake_case_name 2*3*4"
    [styled] = mrkdwn_lines("*b* `c`", NAMES, Style(color=True))
    assert styled == "\x1b[1mb\x1b[22m \x1b[36mc\x1b[39m"


def test_code_blocks_are_indented_and_not_interpreted() -> None:
    text = "Diff:\n```\n-  replicas: 2\n+  replicas: *3* &lt;x&gt;\n```\ndone"
    assert mrkdwn_lines(text, NAMES, PLAIN) == [
        "Diff:",
        "    -  replicas: 2",
        "    +  replicas: *3* <x>",
        "done",
    ]


def test_context_divider_input_and_emoji() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "divider"},
        {"type": "context", "elements": [_mrkdwn(":white_check_mark: ok"), _mrkdwn("ref `1a2b`")]},
        {
            "type": "input",
            "optional": True,
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "reject_reason"},
        },
    ]
    lines = render_message("", blocks, names=NAMES)
    assert lines[0] == "─" * 48
    assert lines[1] == "✅ ok  ref `1a2b`"
    assert lines[2].startswith("✎ Reason (optional): type /reason TEXT")


def test_context_is_dimmed_and_headers_bold_in_colour() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Sync"}},
        {"type": "context", "elements": [_mrkdwn("note")]},
    ]
    assert render_message("", blocks, names=NAMES, style=Style(color=True)) == [
        "\x1b[1mSYNC\x1b[22m",
        "\x1b[2mnote\x1b[22m",
    ]


def test_a_message_without_blocks_renders_its_text() -> None:
    assert render_message("Resolved by <@U0ALICE>", [], names=NAMES) == ["Resolved by @alice"]


def test_an_edit_shows_the_title_and_what_changed() -> None:
    old = ["TITLE", "a", "b", "Approvals 0 of 1", "c", "[1] Approve  [2] Reject", "footer"]
    new = ["TITLE", "a", "b", "Approvals 1 of 1", "c", "Approved by @bob", "footer"]
    assert changed_lines(old, new) == ["TITLE", "…", "Approvals 1 of 1", "…", "Approved by @bob", "…"]


# -- scripts -------------------------------------------------------------------------------------------


def test_the_script_parser_reads_commands_expectations_and_timeouts() -> None:
    steps = parse_script(
        "# a comment\n\n/gitops status\nexpect: web-prod\n"
        "timeout: 5s\n  expect:   two  words \n1\nEXPECT: case\n"
    )
    assert steps == [
        Step(3, "command", "/gitops status"),
        Step(4, "expect", "web-prod", 20.0),
        Step(6, "expect", "two  words", 5.0),
        Step(7, "command", "1"),
        Step(8, "expect", "case", 5.0),
    ]


def test_the_tour_parses() -> None:
    steps = parse_script(TOUR.read_text())
    commands = [s.text for s in steps if s.kind == "command"]
    assert commands[0] == "/gitops status"
    assert commands[-1] == "quit"
    assert {"/as bob", "scan", "break web-prod", "fix web-prod", "break-ci", "fix-ci", "scan-ci"} <= set(
        commands
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("expect:\n", "line 1: expect: needs the text"),
        ("/gitops status\ntimeout: soon\n", "line 2: timeout: takes seconds"),
        ("timeout: 0\n", "line 1: timeout: must be between"),
    ],
)
def test_the_script_parser_names_the_bad_line(text: str, error: str) -> None:
    with pytest.raises(ScriptError, match=error):
        parse_script(text)


def test_run_script_checks_output_since_the_previous_command() -> None:
    out = Output(io.StringIO(), PLAIN)

    def handle(line: str) -> bool:
        out.emit([f"bot says {line.upper()}"])
        return line != "fail"

    steps = parse_script("timeout: 0.2\nhello\nexpect: bot says HELLO\nworld\nexpect: HELLO\n")
    assert run_script(steps, handle, out, prompt=lambda: "> ", finished=lambda: False) == 1
    shown = out.stream.getvalue()  # type: ignore[attr-defined]
    assert "> hello" in shown
    assert "line 5: expected “HELLO”" in shown
    assert "| bot says WORLD" in shown


def test_run_script_stops_at_a_command_the_console_cannot_do_or_at_quit() -> None:
    ran: list[str] = []

    def handle(line: str) -> bool:
        ran.append(line)
        return line != "fail"

    out = Output(io.StringIO(), PLAIN)
    assert (
        run_script(parse_script("a\nfail\nnever\n"), handle, out, prompt=lambda: "", finished=lambda: False)
        == 1
    )
    assert ran == ["a", "fail"]
    ran.clear()
    steps = parse_script("a\nquit\nnever\n")
    assert run_script(steps, handle, out, prompt=lambda: "", finished=lambda: ran[-1] == "quit") == 0
    assert ran == ["a", "quit"]
