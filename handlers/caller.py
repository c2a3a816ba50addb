"""Who sent a command or clicked a button."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    """Who sent a command or clicked a button. Authorise on `user_id` only, never on names."""

    user_id: str
    user_name: str
    channel_id: str
    team_id: str

    @classmethod
    def from_command(cls, body: Mapping[str, Any]) -> Caller:
        return cls(
            user_id=str(body.get("user_id", "")),
            user_name=str(body.get("user_name", "")),
            channel_id=str(body.get("channel_id", "")),
            team_id=str(body.get("team_id", "")),
        )

    @classmethod
    def from_action(cls, body: Mapping[str, Any]) -> Caller:
        user = body.get("user") or {}
        channel = body.get("channel") or {}
        team = body.get("team") or {}
        return cls(
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            channel_id=str(channel.get("id", "")),
            team_id=str(team.get("id", "")),
        )
