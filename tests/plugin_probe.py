"""A validator plugin for tests, loaded through a real entry point object (see World.bot(plugins=…)):
it blocks, warns or raises as the test sets it, and records each change it was shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.extensions.hookspecs import hookimpl
from services.extensions.model import Finding, PlannedChange


@dataclass
class Probe:
    block: str = ""  # a message: every change is blocked with it
    warn: str = ""
    fail: bool = False  # raise, as a buggy plugin would
    stage: str = ""  # only at this stage ("commit": right before a promotion's commit)
    seen: list[PlannedChange] = field(default_factory=list)

    def reset(self) -> None:
        self.block, self.warn, self.fail, self.stage = "", "", False, ""
        self.seen.clear()

    @hookimpl
    def gitops_bot_validate(self, change: PlannedChange) -> Sequence[Finding]:
        self.seen.append(change)
        if self.fail:
            raise RuntimeError("the probe's own bug")
        if self.stage and change.stage != self.stage:
            return []
        found = [Finding("probe", "block", self.block)] if self.block else []
        return found + ([Finding("probe", "warn", self.warn)] if self.warn else [])


PROBE = Probe()
