"""`feed:` — the deployment feed and the weekly delivery digest.

Off unless it has somewhere to post: `feed.channel`, or `feed.routes` (first match wins, as
`drift.routes`). `source` picks how each backend is followed: `auto` (Argo CD's watch stream and
Flux watches, falling back to listing where a stream is not served), `stream`, or `list`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from services.settings.base import Section
from services.settings.routes import DriftRoute
from services.settings.types import ChannelId, Duration, at_least

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DIGEST = re.compile(r"(?P<day>[a-z]{3})\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?:\s+(?P<tz>\S+))?")


@dataclass(frozen=True)
class DigestSchedule:
    day: str  # mon … sun
    hour: int
    minute: int
    timezone: str

    @property
    def text(self) -> str:
        return f"{self.day} {self.hour:02d}:{self.minute:02d} {self.timezone}"


def parse_digest(value: str) -> DigestSchedule:
    """`"mon 09:00 Europe/Berlin"` (the zone defaults to UTC)."""
    found = _DIGEST.fullmatch(_lower_day(value.strip()))
    if found is None or found["day"] not in _DAYS:
        raise PydanticCustomError(
            "digest", 'write the weekly digest as DAY HH:MM [ZONE], e.g. "mon 09:00 Europe/Berlin"'
        )
    hour, minute = int(found["hour"]), int(found["minute"])
    if hour > 23 or minute > 59:
        raise PydanticCustomError("digest", "the digest time must be between 00:00 and 23:59")
    zone = found["tz"] or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError("digest", "unknown time zone {zone!r} (an IANA name, e.g. Europe/Berlin)",
                                  {"zone": zone}) from None  # fmt: skip
    return DigestSchedule(found["day"], hour, minute, zone)


def _lower_day(value: str) -> str:
    day, _, rest = value.partition(" ")
    return f"{day.lower()} {rest.strip()}"


def _check_digest(value: str | None) -> str | None:
    if value is not None:
        parse_digest(value)
    return value


class FeedSettings(Section):
    enabled: bool | None = None  # None: on when a channel or routes are set
    channel: ChannelId | None = None
    routes: tuple[DriftRoute, ...] = ()  # first match wins; else `channel`
    source: Literal["auto", "stream", "list"] = "auto"
    list_interval: Annotated[Duration, at_least(timedelta(seconds=5))] = timedelta(minutes=1)
    pace: float = Field(default=1.0, ge=0, le=10)  # seconds between posts to one channel
    failure_window: Annotated[Duration, at_least(timedelta(minutes=1))] = timedelta(hours=1)
    digest: Annotated[str | None, AfterValidator(_check_digest)] = None  # "mon 09:00 Europe/Berlin"
    digest_channel: ChannelId | None = None  # None: `channel`

    @property
    def on(self) -> bool:
        return bool(self.channel or self.routes) if self.enabled is None else self.enabled

    @property
    def digest_schedule(self) -> DigestSchedule | None:
        return parse_digest(self.digest) if self.digest else None
