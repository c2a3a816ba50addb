"""The base of every configuration section: frozen, unknown keys refused, `key:` means default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `key:` with nothing after it is YAML null; treat it as "use the default", which is what
        # a section whose children are all commented out means.
        if not isinstance(data, Mapping):
            return data
        fields = cls.model_fields
        return {
            k: v
            for k, v in data.items()
            if v is not None or k not in fields or fields[k].get_default(call_default_factory=True) is None
        }
