"""The small CEL subset the Flux CRDs' `x-kubernetes-validations` rules use.

Supported: `has(self.a.b)`, `self.a == 'x'`, `self.a != 'x'`, `!`, `&&`, `||` and parentheses. A rule
using anything else compiles to None and the fake skips it (the real server would evaluate it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Rule = Callable[[Any], bool]

_TOKEN = re.compile(r"\s*(\|\||&&|==|!=|!|\(|\)|'[^']*'|\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_.]*)")


class _Missing(Exception):
    """A field access on an absent key: a CEL evaluation error, which fails the rule."""


class _Unsupported(Exception):
    pass


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Unsupported(text[pos:])
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _lookup(value: Any, path: str) -> Any:
    parts = path.split(".")
    if parts[0] != "self":
        raise _Unsupported(path)
    for part in parts[1:]:
        if not isinstance(value, dict) or part not in value:
            raise _Missing(path)
        value = value[part]
    return value


def _has(value: Any, path: str) -> bool:
    try:
        _lookup(value, path)
    except _Missing:
        return False
    return True


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise _Unsupported(f"expected {expected!r}, found {token!r}")
        self.pos += 1
        return token

    def parse(self) -> Rule:
        rule = self.disjunction()
        if self.peek():
            raise _Unsupported(self.peek())
        return rule

    def disjunction(self) -> Rule:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda obj: any(term(obj) for term in terms))

    def conjunction(self) -> Rule:
        terms = [self.unary()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda obj: all(term(obj) for term in terms))

    def unary(self) -> Rule:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda obj: not inner(obj)
        return self.primary()

    def primary(self) -> Rule:
        token = self.take()
        if token == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if token == "has":
            self.take("(")
            path = self.take()
            self.take(")")
            return lambda obj: _has(obj, path)
        if token.startswith("self"):
            operator = self.take()
            literal = self.take()
            if operator not in ("==", "!=") or literal[:1] not in ("'", '"'):
                raise _Unsupported(f"{token} {operator} {literal}")
            text = literal[1:-1]
            if operator == "==":
                return lambda obj: bool(_lookup(obj, token) == text)
            return lambda obj: bool(_lookup(obj, token) != text)
        raise _Unsupported(token)


def compile_rule(text: str) -> Rule | None:
    """A predicate over the value the rule sits on; False also when evaluation errors out."""
    try:
        rule = _Parser(_tokens(text)).parse()
    except _Unsupported:
        return None

    def evaluate(value: Any) -> bool:
        try:
            return rule(value)
        except _Missing:
            return False

    return evaluate
