"""The extensions that ship with the bot, written as plugins like any third-party one.

Each does nothing until configured: `validators` (config `validators:`), `notifiers` (`notifiers:`)
and `strategies` (the batch sync strategies: `sync.strategy`, `--strategy`).
"""

from __future__ import annotations

from services.extensions.builtin import notifiers, strategies, validators

BUILTINS: dict[str, object] = {
    "builtin-validators": validators,
    "builtin-notifiers": notifiers,
    "builtin-strategies": strategies,
}
