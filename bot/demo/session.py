"""`gitops-bot demo`: every feature in a terminal, with no Slack workspace and no cluster.

The real bot runs against a fake Slack, a fake Argo CD, a fake Kubernetes API with fake Flux and
Tekton controllers and a real Git repository, all on 127.0.0.1 in a temporary directory. You chat
with it in a console (or replay a script); every message the bot posts or edits is printed.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from bot.demo.config import SHOWN_CHANNELS
from bot.demo.console import Console
from bot.demo.feed import Feed, Output
from bot.demo.render import Style
from bot.demo.script import ScriptError, Step, parse_script, run_script
from bot.demo.world import DemoWorld

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

BANNER = (
    "gitops-bot demo: the real bot, with a fake Slack, a fake Argo CD, fake Flux and Tekton controllers and",
    "a real Git repository, all on 127.0.0.1 in {root} (deleted when you leave).",
    "You are @alice in #deploys. Try /gitops help, /gitops status, then promote web to prod and /as bob.",
    "Prod syncs start inside a change freeze (a validator): try /gitops sync web prod, then as carol (an",
    "admin) add --force. Every audited event also goes to a signed webhook: type webhooks to see them.",
    "Tekton builds web: /gitops pipelines web, /gitops pipeline web --param revision=main; promotions of",
    "web wait for a passing run (try /gitops promote web --to staging). break-ci fails the next run, fix-ci",
    "undoes it, scan-ci posts failed runs now. dave is a viewer: /as dave.",
    "web's prod branch is protected on a fake GitHub: a promotion to prod opens a pull request, merges it",
    "once bob approved and the required check ci/web passed (by itself after a few seconds, or check-pass /",
    "check-fail now), then deploys. prs lists the pull requests; pr-close closes one outside Slack.",
    "Type help for the console's own commands, quit (or Ctrl-D) to leave.",
)


def run_demo(*, script: Path | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    steps: list[Step] | None = None
    if script is not None:
        try:
            steps = parse_script(script.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"gitops-bot demo: cannot read {script}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ScriptError as exc:
            print(f"gitops-bot demo: {script}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    output = Output(stdout, Style(color=_is_tty(stdout)))
    interactive = steps is None and _is_tty(stdin)
    output.emit(
        ["starting the sandbox: Git repository, GitHub, Argo CD, Flux, Tekton, Slack and the bot…"],
        record=False,
    )
    started = time.monotonic()
    try:
        with _terminated_cleanly(), DemoWorld.start() as world:
            return _session(world, output, steps, stdin, interactive, started)
    except KeyboardInterrupt:
        print("\ninterrupted: the sandbox is stopped and its directory deleted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _session(
    world: DemoWorld,
    output: Output,
    steps: list[Step] | None,
    stdin: TextIO,
    interactive: bool,
    started: float,
) -> int:
    if steps is not None:
        world.set_autoscan(False)  # a replay must not depend on when a background scan fires
        world.github.auto = False  # nor on when the made-up CI passes a check: the script says when
    feed = Feed(world.slack, output, world.names(), SHOWN_CHANNELS).start()
    console = Console(world, feed, output)
    try:
        output.emit([line.format(root=world.root) for line in BANNER], record=False)
        output.emit([f"ready in {time.monotonic() - started:.1f} s", ""], record=False)
        if steps is not None:
            return run_script(
                steps,
                console.handle,
                output,
                prompt=lambda: f"{console.user.name}> ",
                finished=lambda: console.quit,
            )
        _repl(console, output, stdin, interactive)
        return EXIT_OK
    finally:
        feed.stop()


def _repl(console: Console, output: Output, stdin: TextIO, interactive: bool) -> None:
    if interactive:
        _enable_line_editing(output)
    while not console.quit:
        prompt = f"{console.user.name}> "
        if interactive:
            output.prompt = prompt
            try:
                line = input(prompt)
            except EOFError:
                line = None
            finally:
                output.prompt = None
        else:
            line = stdin.readline() or None
            if line is not None:
                output.emit([prompt + line.rstrip("\n")], record=False)
        if line is None:  # EOF: Ctrl-D, or the end of piped input
            output.emit([""], record=False)
            break
        console.handle(line)


def _enable_line_editing(output: Output) -> None:
    """History and editing at the prompt; redraws keep what was typed when a message arrives."""
    try:
        import readline
    except ImportError:
        return
    output.line_buffer = readline.get_line_buffer


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is no terminal
        return False


@contextmanager
def _terminated_cleanly() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the servers stop and the temporary directory goes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
