"""Typed records the fake Slack hands out: recorded calls, messages, files, users, contract."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake received. `method` is a Web API method name, or `response_url`,
    `file_upload` or `ack` for the non-API endpoints. `args` never contains the token."""

    method: str
    args: dict[str, Any]
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.response.get("ok") is True


@dataclass(frozen=True)
class Message:
    """A message as the workspace shows it now. `user` is the author (the bot);
    `visible_to` is the only user who sees it when `ephemeral` is true."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str
    ephemeral: bool
    edited: bool = False
    history: tuple[Message, ...] = ()  # previous versions, oldest first
    visible_to: str | None = None
    files: tuple[str, ...] = ()  # ids of files shared with this message


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    email: str | None = None
    is_bot: bool = False
    deleted: bool = False
    is_restricted: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        profile: dict[str, Any] = {"real_name": self.real_name, "display_name": self.name}
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": False,
            "tz": "Etc/UTC",
            "profile": profile,
        }


@dataclass(frozen=True)
class Usergroup:
    id: str
    handle: str
    members: tuple[str, ...]
    name: str = ""
    disabled: bool = False

    def to_api(self, team_id: str, *, include_users: bool) -> dict[str, Any]:
        group: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name or self.handle,
            "handle": self.handle,
            "description": "",
            "is_external": False,
            "date_delete": 1 if self.disabled else 0,
            "user_count": len(self.members),
        }
        if include_users:
            group["users"] = list(self.members)
        return group


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": self.id.startswith("C"),
            "is_group": self.id.startswith("G"),
            "is_im": self.id.startswith("D"),
            "is_private": self.is_private,
            "is_archived": False,
            "is_member": self.is_member,
        }


@dataclass(frozen=True)
class MethodContract:
    """What the OpenAPI extract says about one Web API method."""

    name: str
    params: Mapping[str, bool]  # name -> required
    response_required: tuple[str, ...]
    in_spec: bool

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, req in self.params.items() if req)


@dataclass(frozen=True)
class SlackContract:
    methods: Mapping[str, MethodContract] = field(default_factory=dict)

    @classmethod
    def load(cls) -> SlackContract:
        """Read the extract shipped inside the package (never the shared contracts folder)."""
        raw = resources.files("sandbox").joinpath("slack_contract.json").read_text(encoding="utf-8")
        data = json.loads(raw)
        methods: dict[str, MethodContract] = {}
        for section, in_spec in (("methods", True), ("extra_methods", False)):
            for name, entry in data[section].items():
                methods[name] = MethodContract(
                    name=name,
                    params=dict(entry["params"]),
                    response_required=tuple(entry["response_required"]),
                    in_spec=in_spec,
                )
        return cls(methods=methods)
