"""Each runtime owns its in-flight requests under its own identity: a restart inside one process
(tests, the demo) within the same second must still find the earlier runtime's requests."""

from __future__ import annotations

from bot.app import process_identity


def test_two_runtimes_started_in_one_second_are_told_apart() -> None:
    first, second = process_identity(), process_identity()
    assert first != second
    host, pid, started, _ = first.split(":")
    assert host
    assert pid.isdigit()
    assert started.isdigit()
