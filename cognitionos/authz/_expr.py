"""A small, safe parser and compiler for Casbin matcher expressions.

Matcher text is never handed to Python's ``eval``: it is tokenized, parsed by
recursive descent into a tree and compiled into nested closures of
``(request_row, policy_row) -> value``. The language:

- literals: ``'text'`` or ``"text"`` (backslash escapes the next character),
  integers and decimals, ``true`` / ``false``;
- names: ``r.sub``, ``p.obj`` (a field of the request or policy definition),
  followed by any number of ``.Attr`` steps (a mapping key, else an object
  attribute: ``r.sub.Owner``);
- operators, loosest first: ``||``; ``&&``; ``!`` (applies to the comparison
  after it, as in pycasbin, so ``!r.a == r.b`` means ``!(r.a == r.b)``);
  comparisons ``== != < > <= >=`` and ``in`` (not chained); ``+`` (string
  concatenation or addition); then parentheses and calls;
- ``x in (a, b, ...)`` or ``x in [a, b]``: membership in a literal list (one
  parenthesised element counts as a one-element list); ``x in r.list`` tests
  membership in a list, tuple, set, mapping or substring in a string;
- calls: ``keyMatch(r.obj, p.obj)``, role functions ``g(...)``, ``g2(...)``,
  and ``eval(p.rule)``, which compiles the policy field with this same parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from cognitionos.errors import ConfigurationError

__all__ = ["Compiled", "Scope", "compile_expression"]

#: (request row, policy row) -> value
Compiled = Callable[[tuple[Any, ...], tuple[Any, ...]], Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!(),\[\]+])
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


class Scope:
    """What names and functions an expression may use.

    ``request`` / ``policy`` are the definition keys (``r``, ``p``) and their
    field names; ``functions`` maps a function name to a callable.
    """

    __slots__ = ("functions", "policy", "policy_fields", "request", "request_fields")

    def __init__(
        self,
        request: str,
        request_fields: tuple[str, ...],
        policy: str,
        policy_fields: tuple[str, ...],
        functions: Mapping[str, Callable[..., Any]],
    ) -> None:
        self.request = request
        self.request_fields = request_fields
        self.policy = policy
        self.policy_fields = policy_fields
        self.functions = functions


class _Parser:
    def __init__(self, text: str, scope: Scope, where: str) -> None:
        self.text = text
        self.scope = scope
        self.where = where
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.depth = 0
        self.eval_cache: dict[str, Compiled] = {}

    def _error(self, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: {message} in {self.text!r}")

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        i = 0
        end = len(text.rstrip())
        while i < end:
            m = _TOKEN.match(text, i)
            if m is None or m.end() == i:
                raise self._error(f"unexpected character {text[i:].lstrip()[:1]!r}")
            kind = m.lastgroup
            assert kind is not None
            out.append((kind, m.group(kind)))
            i = m.end()
        out.append(("end", ""))
        return out

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise self._error(f"expected {op!r} but found {value or 'the end'!r}")

    def at(self, op: str) -> bool:
        kind, value = self.peek()
        return kind in ("op", "name") and value == op

    def parse(self) -> Compiled:
        node = self.or_expr()
        if self.peek()[0] != "end":
            raise self._error(f"unexpected {self.peek()[1]!r}")
        return node

    def or_expr(self) -> Compiled:
        left = self.and_expr()
        while self.at("||"):
            self.take()
            right = self.and_expr()
            left = _or(left, right)
        return left

    def and_expr(self) -> Compiled:
        left = self.not_expr()
        while self.at("&&"):
            self.take()
            right = self.not_expr()
            left = _and(left, right)
        return left

    def not_expr(self) -> Compiled:
        if self.at("!"):
            self.take()
            self._enter()
            inner = self.not_expr()
            self.depth -= 1
            return lambda r, p: not inner(r, p)
        return self.comparison()

    def _enter(self) -> None:
        # nesting is bounded so that a hostile expression meets our error, not RecursionError
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self._error(f"nesting deeper than {_MAX_DEPTH}")

    def comparison(self) -> Compiled:
        left = self.additive()
        kind, value = self.peek()
        if kind == "op" and value in _COMPARE:
            self.take()
            right = self.additive()
            return _compare(value, left, right, self)
        if kind == "name" and value == "in":
            self.take()
            return self._membership(left)
        return left

    def _membership(self, left: Compiled) -> Compiled:
        if self.at("(") or self.at("["):
            close = ")" if self.take()[1] == "(" else "]"
            items: list[Compiled] = []
            while not self.at(close):
                if self.peek()[0] == "end":
                    raise self._error(f"expected {close!r} but found the end")
                items.append(self.or_expr())
                if not self.at(close):
                    self.expect(",")
            self.take()
            if all(getattr(item, "constant", False) for item in items):
                frozen = tuple(item((), ()) for item in items)
                return lambda r, p: left(r, p) in frozen
            return lambda r, p: left(r, p) in tuple(item(r, p) for item in items)
        right = self.additive()

        def member(r: tuple[Any, ...], p: tuple[Any, ...]) -> bool:
            container = right(r, p)
            try:
                return left(r, p) in container  # type: ignore[no-any-return]
            except TypeError:
                raise self._error(f"'in' needs a list on its right, not {container!r}") from None

        return member

    def additive(self) -> Compiled:
        left = self.primary()
        while self.at("+"):
            self.take()
            right = self.primary()
            left = _add(left, right, self)
        return left

    def primary(self) -> Compiled:
        kind, value = self.take()
        if kind == "str":
            return _constant(_ESCAPE.sub(r"\1", value[1:-1]))
        if kind == "num":
            return _constant(float(value) if "." in value else int(value))
        if kind == "op" and value == "(":
            self._enter()
            inner = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return inner
        if kind == "name":
            if value in ("true", "false"):
                return _constant(value == "true")
            if self.at("("):
                return self.call(value)
            return self.name(value)
        raise self._error(f"unexpected {value or 'end of expression'!r}")

    def call(self, name: str) -> Compiled:
        self.take()  # (
        self._enter()
        args: list[Compiled] = []
        while not self.at(")"):
            if self.peek()[0] == "end":
                raise self._error(f"unclosed call to {name!r}")
            args.append(self.or_expr())
            if not self.at(")"):
                self.expect(",")
        self.take()
        self.depth -= 1
        if name == "eval":
            if len(args) != 1:
                raise self._error("eval() takes exactly one argument")
            return self._eval_call(args[0])
        fn = self.scope.functions.get(name)
        if fn is None:
            raise self._error(f"unknown function {name!r}")
        problem = _arity_problem(fn, len(args))
        if problem is not None:
            raise self._error(f"{name}() {problem}")
        if len(args) == 1:
            (a,) = args
            return lambda r, p: fn(a(r, p))
        if len(args) == 2:
            a, b = args
            return lambda r, p: fn(a(r, p), b(r, p))
        if len(args) == 3:
            a, b, c = args
            return lambda r, p: fn(a(r, p), b(r, p), c(r, p))
        return lambda r, p: fn(*(arg(r, p) for arg in args))

    def _eval_call(self, arg: Compiled) -> Compiled:
        cache = self.eval_cache
        scope = self.scope
        where = self.where

        def run(r: tuple[Any, ...], p: tuple[Any, ...]) -> Any:
            text = arg(r, p)
            if not isinstance(text, str):
                raise ConfigurationError(f"{where}: eval() needs a string, not {text!r}")
            compiled = cache.get(text)
            if compiled is None:
                compiled = _Parser(text, scope, f"{where} eval({text!r})").parse()
                cache[text] = compiled
            return compiled(r, p)

        return run

    def name(self, dotted: str) -> Compiled:
        head, _, rest = dotted.partition(".")
        field, _, attrs_path = rest.partition(".")
        scope = self.scope
        if head == scope.request:
            fields, from_request = scope.request_fields, True
        elif head == scope.policy:
            fields, from_request = scope.policy_fields, False
        else:
            raise self._error(f"unknown name {dotted!r}")
        if field not in fields:
            raise self._error(f"{head!r} has no field {field!r} (fields: {', '.join(fields)})")
        index = fields.index(field)
        base: Compiled = (lambda r, p: r[index]) if from_request else (lambda r, p: p[index])
        for attr in attrs_path.split(".") if attrs_path else ():
            if attr.startswith("_"):
                # only public data: no walking from a request object to __class__, __globals__
                raise self._error(f"attribute {attr!r} is private")
            base = _attribute(base, attr, dotted, self.where)
        return base


_COMPARE = {"==", "!=", "<", ">", "<=", ">="}
_MAX_DEPTH = 64


def _constant(value: Any) -> Compiled:
    def const(r: tuple[Any, ...], p: tuple[Any, ...]) -> Any:
        return value

    const.constant = True  # type: ignore[attr-defined]
    return const


def _or(left: Compiled, right: Compiled) -> Compiled:
    return lambda r, p: bool(left(r, p)) or bool(right(r, p))


def _and(left: Compiled, right: Compiled) -> Compiled:
    return lambda r, p: bool(left(r, p)) and bool(right(r, p))


def _compare(op: str, left: Compiled, right: Compiled, parser: _Parser) -> Compiled:
    if op == "==":
        return lambda r, p: left(r, p) == right(r, p)
    if op == "!=":
        return lambda r, p: left(r, p) != right(r, p)
    where, text = parser.where, parser.text
    import operator

    fn = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}[op]

    def ordered(r: tuple[Any, ...], p: tuple[Any, ...]) -> bool:
        a, b = left(r, p), right(r, p)
        try:
            return bool(fn(a, b))
        except TypeError:
            raise ConfigurationError(
                f"{where}: cannot compare {a!r} {op} {b!r} in {text!r}"
            ) from None

    return ordered


def _add(left: Compiled, right: Compiled, parser: _Parser) -> Compiled:
    where, text = parser.where, parser.text

    def add(r: tuple[Any, ...], p: tuple[Any, ...]) -> Any:
        a, b = left(r, p), right(r, p)
        try:
            return a + b
        except TypeError:
            raise ConfigurationError(f"{where}: cannot add {a!r} + {b!r} in {text!r}") from None

    return add


def _attribute(base: Compiled, attr: str, dotted: str, where: str) -> Compiled:
    def get(r: tuple[Any, ...], p: tuple[Any, ...]) -> Any:
        obj = base(r, p)
        if isinstance(obj, Mapping):
            if attr in obj:
                return obj[attr]
        elif hasattr(obj, attr):
            return getattr(obj, attr)
        raise ConfigurationError(f"{where}: {dotted!r}: {obj!r} has no attribute {attr!r}")

    return get


def compile_expression(text: str, scope: Scope, where: str) -> Compiled:
    """Compile matcher ``text`` into a closure; ``where`` prefixes error messages."""
    return _Parser(text, scope, where).parse()


def _arity_problem(fn: Any, n: int) -> str | None:
    """Why ``fn`` cannot take ``n`` positional arguments, or None (also when unknowable).

    Checked when the matcher is compiled, so ``g(r.sub)`` against a two-argument role
    function is a configuration error naming it, not a TypeError on every request.
    """
    import inspect

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: called as written
        return None
    try:
        signature.bind(*([None] * n))
    except TypeError as exc:
        return f"cannot take {n} argument(s): {exc}"
    return None
