"""`${VAR}` and `${VAR:-default}` expansion inside every string value of the parsed YAML.

Keys are never expanded. `$${` writes a literal `${`. As in the shell, `:-` uses the default
when the variable is unset *or* empty. Values taken from the environment are not expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.settings.errors import Problem, format_path
from services.settings.types import shown

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_env(
    data: object, environ: Mapping[str, str], loc: tuple[str | int, ...] = ()
) -> tuple[Any, list[Problem]]:
    """A copy of `data` with references replaced, and one problem per unusable reference."""
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        problems: list[Problem] = []
        for key, value in data.items():
            out[key], found = expand_env(value, environ, (*loc, key))
            problems += found
        return out, problems
    if isinstance(data, list):
        items: list[Any] = []
        problems = []
        for index, value in enumerate(data):
            item, found = expand_env(value, environ, (*loc, index))
            items.append(item)
            problems += found
        return items, problems
    if isinstance(data, str) and "${" in data:
        return _expand_text(data, environ, format_path(loc))
    return data, []


def _expand_text(text: str, environ: Mapping[str, str], path: str) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        if match.group(2) is None:
            problems.append(Problem(path, f"unclosed '${{' in {shown(text)}", "env"))
            return ""
        parsed = _BODY.fullmatch(body)
        if parsed is None:
            problems.append(
                Problem(path, f"bad reference '${{{body}}}' (write ${{NAME}} or ${{NAME:-default}})", "env")
            )
            return ""
        name, default = parsed.group(1), parsed.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is not None:
            return value  # set but empty, and no default: empty, as in the shell
        problems.append(
            Problem(
                path,
                f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
                "env",
            )
        )
        return ""

    return _REFERENCE.sub(replace, text), problems
