"""Kubernetes label selectors (`labels.Parse` syntax and semantics) for the List filter."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_SPECIAL = " \t\n,()!=<>"
_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_PREFIX_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")
_NAME_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_END = ""


class SelectorError(ValueError):
    """The selector does not parse; the text follows apimachinery's wording."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # exists, !, in, notin, =, ==, !=, gt, lt
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.operator in ("in", "=", "=="):
            return present and value in self.values
        if self.operator in ("notin", "!="):
            return not present or value not in self.values
        if self.operator in ("gt", "lt"):
            if not present or not re.fullmatch(r"-?\d+", value):
                return False
            bound = int(next(iter(self.values)))
            return int(value) > bound if self.operator == "gt" else int(value) < bound
        return present if self.operator == "exists" else not present


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in ",()":
            tokens.append(char)
            i += 1
        elif char in "!=<>":
            pair = text[i : i + 2]
            token = pair if pair in ("!=", "==") else char
            tokens.append(token)
            i += len(token)
        else:
            start = i
            while i < len(text) and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


def _is_identifier(token: str) -> bool:
    return token != _END and token not in {",", "(", ")", "!", "=", "==", "!=", "<", ">", "in", "notin"}


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
        raise SelectorError(
            f'unable to parse requirement: <nil>: Invalid value: "{key}": prefix part invalid'
        )
    if len(name) > 63 or not _NAME_RE.fullmatch(name):
        raise SelectorError(f'unable to parse requirement: <nil>: Invalid value: "{key}": {_NAME_HELP}')


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE_RE.fullmatch(value):
        raise SelectorError(
            f'unable to parse requirement: values[0]: Invalid value: "{value}": {_VALUE_HELP}'
        )


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._pos = 0

    def peek(self) -> str:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else _END

    def take(self) -> str:
        token = self.peek()
        self._pos += 1
        return token

    def selector(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token = self.peek()
            if token == _END:
                return requirements
            if not (token == "!" or _is_identifier(token)):
                raise SelectorError(f"found '{token}', expected: !, identifier, or 'end of string'")
            requirements.append(self.requirement())
            after = self.take()
            if after == _END:
                return requirements
            if after != ",":
                raise SelectorError(f"found '{after}', expected: ',' or 'end of string'")
            following = self.peek()
            if not (following == "!" or _is_identifier(following)):
                raise SelectorError(f"found '{following}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = self.peek() == "!"
        if negated:
            self.take()
        key = self.take()
        if not _is_identifier(key):
            raise SelectorError(f"found '{key}', expected: identifier")
        _check_key(key)
        if self.peek() in (_END, ","):
            return Requirement(key, "!" if negated else "exists", frozenset())
        if negated:
            raise SelectorError(f"found '{self.peek()}', expected: ',' or 'end of string'")
        operator = {"<": "lt", ">": "gt"}.get(self.peek(), self.peek())
        if operator not in _OPERATORS:
            raise SelectorError(f"found '{operator}', expected: {', '.join(_OPERATORS)}")
        self.take()
        values = self.value_set() if operator in ("in", "notin") else [self.exact_value()]
        for value in values:
            _check_value(value)
        if operator in ("gt", "lt") and not re.fullmatch(r"-?\d+", values[0]):
            raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {values[0]!r}")
        return Requirement(key, operator, frozenset(values))

    def exact_value(self) -> str:
        token = self.peek()
        if token in (_END, ","):
            return ""
        if not _is_identifier(token):
            raise SelectorError(f"found '{token}', expected: identifier")
        return self.take()

    def value_set(self) -> list[str]:
        opening = self.take()
        if opening != "(":
            raise SelectorError(f"found '{opening}', expected: '('")
        values: list[str] = []
        while True:
            token = self.take()
            if token == ")":
                return values or [""]
            if token == ",":
                if not values:
                    values.append("")
                continue
            if not _is_identifier(token):
                raise SelectorError(f"found '{token}', expected: ',', or identifier")
            values.append(token)


def parse_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over labels; raises SelectorError for an invalid selector."""
    requirements = _Parser(text).selector()
    return lambda labels: all(req.matches(labels) for req in requirements)
