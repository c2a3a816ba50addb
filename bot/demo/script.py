"""Scripts for `gitops-bot demo --script FILE`: console lines replayed, with expectations checked.

A script is one console line per line, plus:

    # a comment                 ignored, as are blank lines
    expect: TEXT                wait until TEXT was printed since the previous command (else exit 1);
                                spaces and line breaks count as one space, colours do not count
    timeout: SECONDS            how long the following `expect:` lines wait (default 20)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.demo.feed import Output

DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 600.0


class ScriptError(ValueError):
    """A line the parser cannot use; the message names the line."""


@dataclass(frozen=True)
class Step:
    line_no: int
    kind: Literal["command", "expect"]
    text: str
    timeout: float = DEFAULT_TIMEOUT


def parse_script(text: str, *, default_timeout: float = DEFAULT_TIMEOUT) -> list[Step]:
    steps: list[Step] = []
    timeout = default_timeout
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if colon and key == "expect":
            if not value:
                raise ScriptError(f"line {line_no}: expect: needs the text to wait for")
            steps.append(Step(line_no, "expect", value, timeout))
        elif colon and key == "timeout":
            try:
                timeout = float(value.removesuffix("s"))
            except ValueError:
                raise ScriptError(f"line {line_no}: timeout: takes seconds, not {value!r}") from None
            if not 0 < timeout <= MAX_TIMEOUT:
                raise ScriptError(f"line {line_no}: timeout: must be between 0 and {MAX_TIMEOUT:g} seconds")
        else:
            steps.append(Step(line_no, "command", line))
    return steps


def run_script(
    steps: Sequence[Step],
    handle: Callable[[str], bool],
    output: Output,
    *,
    prompt: Callable[[], str],
    finished: Callable[[], bool],
) -> int:
    """Replay `steps`; 0 when every command ran and every expectation was met, else 1."""
    mark = output.mark()
    command = "(start)"
    for step in steps:
        if step.kind == "expect":
            if not output.wait_for(step.text, mark, step.timeout):
                _missed(output, step, command, output.since(mark))
                return 1
            continue
        output.emit([prompt() + step.text], record=False)
        mark, command = output.mark(), step.text
        if not handle(step.text):
            output.emit([f"✗ line {step.line_no}: the console could not do {step.text!r}"], record=False)
            return 1
        if finished():
            break
    return 0


def _missed(output: Output, step: Step, command: str, seen: str) -> None:
    lines = [
        f"✗ line {step.line_no}: expected “{step.text}” within {step.timeout:g} s after {command!r}; saw:",
        *(f"  | {line}" for line in (seen.rstrip("\n").split("\n") if seen.strip() else ["(nothing)"])),
    ]
    output.emit(lines, record=False)
