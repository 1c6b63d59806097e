"""Import flagd flag definitions and evaluate their JsonLogic targeting.

flagd (the OpenFeature reference flag daemon) defines flags as
``{"flags": {key: {"state", "variants", "defaultVariant", "targeting", "metadata"}},
"$evaluators": {...}, "metadata": {...}}``. ``targeting`` is a JsonLogic
expression evaluated over the evaluation context (plus ``targetingKey`` and
``$flagd.flagKey`` / ``$flagd.timestamp``) that yields a variant name, a boolean
(taken as the variant ``"true"``/``"false"``) or null (the default variant).

Each flag becomes a :class:`~cognitionos.flags.FlagDefinition` whose default is the
default variant and which has one rule per variant, applying when the targeting
expression yields that variant (condition ``{"$jsonLogic": {"rule": ..., "variant": ...}}``).
So reasons come out as OpenFeature expects: ``STATIC`` without targeting,
``TARGETING_MATCH`` when targeting chose a variant, ``DEFAULT`` when it did not,
``DISABLED`` for ``"state": "DISABLED"``.

Besides the standard JsonLogic operations the flagd extensions are implemented:
``fractional`` (MurmurHash3 buckets, as flagd), ``sem_ver``, ``starts_with`` and
``ends_with``. ``$ref`` to shared ``$evaluators`` is resolved at load time.

The OpenFeature specification's own test flags (``test-flags.json``: no ``state``,
``flagMetadata`` and a ``contextEvaluator`` expression such as
``"email == 'a@b.c' ? 'zero' : ''"``) are accepted as well: the expression
language (ternaries, ``==`` ``!=`` ``!`` ``&&`` ``||``, string/number/boolean
literals, context keys) is translated to JsonLogic.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from cognitionos.errors import ConfigurationError
from cognitionos.flags._growthbook import validation_error
from cognitionos.flags._js import js_compare, js_string, js_to_number
from cognitionos.flags._semver import parse_semver
from cognitionos.flags.models import FlagDefinition, FlagSet, Rule
from cognitionos.hashing import murmur3_32

__all__ = [
    "FRACTIONAL_MODES",
    "UNNAMEABLE",
    "compile_json_logic",
    "flag_set_from_flagd",
    "json_logic_truthy",
    "translate_context_evaluator",
    "variant_of",
    "with_fractional",
]

_Expr = Callable[[Any], Any]
_MAX_INT32 = 2**31 - 1


def json_logic_truthy(value: Any) -> bool:
    """JsonLogic truthiness: JavaScript's, except that an empty array is falsy."""
    if value is None or value is False:
        return False
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == value and value != 0
    return True


def _loose_equal(a: Any, b: Any) -> bool:
    """JavaScript ``==`` for JSON values."""
    if a is None or b is None:
        return a is None and b is None
    a_obj, b_obj = isinstance(a, (list, dict)), isinstance(b, (list, dict))
    if a_obj and b_obj:
        return a is b
    if a_obj:
        return _loose_equal(js_string(a), b)
    if b_obj:
        return _loose_equal(a, js_string(b))
    if type(a) is str and type(b) is str:
        return a == b
    return js_to_number(a) == js_to_number(b)


def _strict_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is b


def _num(value: Any) -> float:
    return js_to_number(value)


def _number_out(x: float) -> int | float:
    return int(x) if x == x and not math.isinf(x) and x.is_integer() else x


def _var(data: Any, path: Any, default: Any = None) -> Any:
    if path is None or path == "":
        return data
    cur = data
    for part in js_string(path).split("."):
        if isinstance(cur, Mapping):
            if part not in cur:
                return default
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return default
        else:
            return default
    return default if cur is None else cur


def _semver_key(value: Any) -> tuple[Any, ...] | None:
    """flagd's reading of a version: text or a number, optional ``v``, partial versions padded.

    ``"1"`` reads as 1.0.0 and ``"1.2"`` as 1.2.0 (also with a pre-release or build
    suffix); numbers read as their decimal text (``1.2`` is 1.2.0). Anything else,
    including surrounding spaces, is not a version.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = value if isinstance(value, str) else _decimal_text(value)
    if text[:1] in ("v", "V"):
        text = text[1:]
    if text != text.strip():
        return None
    cut = len(text)
    for mark in ("-", "+"):
        at = text.find(mark)
        if at != -1:
            cut = min(cut, at)
    core = text[:cut]
    dots = core.count(".")
    if dots < 2:
        text = core + ".0" * (2 - dots) + text[cut:]
    return parse_semver(text)


def _decimal_text(x: int | float) -> str:
    # Python's own shortest repr: 1.2 -> "1.2", 3 -> "3" (3.0 -> "3.0" pads to the same 3.0.0)
    return repr(x)


def _sem_ver(args: list[Any]) -> bool | None:
    """flagd ``sem_ver``; any error (arity, version, operator) yields null."""
    if len(args) != 3:
        return None
    left, op, right = args
    a, b = _semver_key(left), _semver_key(right)
    if a is None or b is None or not isinstance(op, str):
        return None
    cmp = (a > b) - (a < b)
    if op == "=":
        return cmp == 0
    if op == "!=":
        return cmp != 0
    if op == "<":
        return cmp < 0
    if op == "<=":
        return cmp <= 0
    if op == ">":
        return cmp > 0
    if op == ">=":
        return cmp >= 0
    if op == "^":  # same major version
        return bool(a[0] == b[0])
    if op == "~":  # same major and minor version
        return bool(a[0] == b[0] and a[1] == b[1])
    return None


#: ``fractional`` bucketing: ``"cbor"`` (flagd today) or ``"legacy"`` (flagd before CBOR keys)
FRACTIONAL_MODES = ("cbor", "legacy")


def _fractional_legacy(args: list[Any], data: Any) -> Any:
    """The older flagd ``fractional``: a string key, ``|int32 hash| / MaxInt32`` of the weights.

    The key is the first argument when it is a string, else ``flagKey + targetingKey``.
    Bucket names are strings and weights non-negative numbers; anything else yields null.
    """
    if args and isinstance(args[0], str):
        key, buckets = args[0], args[1:]
    else:
        flagd = data.get("$flagd") if isinstance(data, Mapping) else None
        target = data.get("targetingKey") if isinstance(data, Mapping) else None
        if not isinstance(target, str) or not isinstance(flagd, Mapping):
            return None
        key, buckets = f"{flagd.get('flagKey', '')}{target}", args
    variants: list[tuple[str, float]] = []
    for b in buckets:
        if not isinstance(b, list) or not b or not isinstance(b[0], str):
            return None
        weight = b[1] if len(b) > 1 else 1
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            return None
        variants.append((b[0], float(weight)))
    total = sum(w for _, w in variants)
    if total <= 0:
        return None
    h = murmur3_32(key)
    signed = h - 2**32 if h >= 2**31 else h
    bucket = abs(signed) / _MAX_INT32 * total
    end = 0.0
    for name, weight in variants:
        end += weight
        if bucket < end:
            return name
    return variants[-1][0]


def _fractional(args: list[Any], data: Any) -> Any:
    """flagd ``fractional``: MurmurHash3 of the CBOR-encoded key, scaled onto integer weights.

    The key is the first argument unless that is a bucket (a list), in which case it
    is ``[flagKey, targetingKey]`` (a non-empty ``targetingKey`` is needed). Buckets
    are ``[name]`` or ``[name, integer weight]``; negative weights count as 0. Any
    error (a missing key, a non-integer weight, a total of 0 or above 2**31 - 1)
    yields null.
    """
    if not args:
        return None
    if not isinstance(args[0], list):
        key: Any = args[0]
        buckets = args[1:]
        if key is None:
            return None
    else:
        target = data.get("targetingKey") if isinstance(data, Mapping) else None
        if not isinstance(target, str) or not target:
            return None
        flagd = data.get("$flagd") if isinstance(data, Mapping) else None
        flag_key = flagd.get("flagKey", "") if isinstance(flagd, Mapping) else ""
        key, buckets = [flag_key, target], args
    names: list[Any] = []
    weights: list[int] = []
    for b in buckets:
        if not isinstance(b, list) or not b or len(b) > 2:
            return None
        weight = b[1] if len(b) == 2 else 1
        if type(weight) is not int:
            return None
        names.append(b[0])
        weights.append(max(0, weight))
    total = sum(weights)
    if total <= 0 or total > _MAX_INT32:
        return None
    try:
        encoded = _cbor(key)
    except (UnicodeEncodeError, ValueError, RecursionError):
        return None
    bucket = (murmur3_32(encoded) * total) >> 32
    end = 0
    for name, weight in zip(names, weights, strict=True):
        end += weight
        if bucket < end:
            return name
    return None


def _cbor(value: Any) -> bytes:
    """Canonical CBOR (RFC 8949 deterministic encoding) of a JSON value, as flagd hashes it.

    Whole floats that fit 64 bits are encoded as integers; other floats take the
    shortest of half, single and double precision that keeps their value.
    """
    out = bytearray()
    _cbor_into(out, value, 0)
    return bytes(out)


def _cbor_head(out: bytearray, major: int, n: int) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 2**8:
        out += bytes((major << 5 | 24, n))
    elif n < 2**16:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 2**32:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")


def _cbor_into(out: bytearray, value: Any, depth: int) -> None:
    if depth > 64:
        raise ValueError("fractional key nested too deeply")
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, float) and value.is_integer() and -(2**63) <= value <= 2**64 - 1:
        _cbor_into(out, int(value), depth)
    elif isinstance(value, int):
        major, n = (0, value) if value >= 0 else (1, -1 - value)
        if n < 2**64:
            _cbor_head(out, major, n)
        else:  # bignum: tag 2 (or 3) over the big-endian magnitude
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            _cbor_head(out, 6, 2 + major)
            _cbor_head(out, 2, len(raw))
            out += raw
    elif isinstance(value, float):
        out += _cbor_float(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _cbor_head(out, 3, len(raw))
        out += raw
    elif isinstance(value, (list, tuple)):
        _cbor_head(out, 4, len(value))
        for item in value:
            _cbor_into(out, item, depth + 1)
    elif isinstance(value, Mapping):
        pairs: list[tuple[bytes, bytes]] = []
        for k, v in value.items():
            key_out, value_out = bytearray(), bytearray()
            _cbor_into(key_out, k, depth + 1)
            _cbor_into(value_out, v, depth + 1)
            pairs.append((bytes(key_out), bytes(value_out)))
        # deterministic map order: shorter encoded keys first, then bytewise
        pairs.sort(key=lambda kv: (len(kv[0]), kv[0]))
        _cbor_head(out, 5, len(pairs))
        for key_bytes, value_bytes in pairs:
            out += key_bytes + value_bytes
    else:
        raise ValueError(f"cannot encode {type(value).__name__}")


def _cbor_float(x: float) -> bytes:
    if x != x:
        return b"\xf9\x7e\x00"
    for fmt, head in (("e", 0xF9), ("f", 0xFA)):
        try:
            packed = struct.pack(">" + fmt, x)
        except OverflowError:
            continue
        if struct.unpack(">" + fmt, packed)[0] == x:
            return bytes((head,)) + packed
    return b"\xfb" + struct.pack(">d", x)


def _compare_chain(op: str, values: list[Any]) -> bool:
    def ok(a: Any, b: Any) -> bool:
        r = js_compare(a, b)
        if r is None:
            return False
        return {"<": r < 0, "<=": r <= 0, ">": r > 0, ">=": r >= 0}[op]

    # three operands chain (a < b < c: "between"); flagd's SDKs chain > and >= the same way
    if len(values) == 3:
        return ok(values[0], values[1]) and ok(values[1], values[2])
    return len(values) >= 2 and ok(values[0], values[1])


class _Compiler:
    """JsonLogic expression -> closure over the data object."""

    def __init__(self, where: str, fractional: str = "cbor") -> None:
        self.where = where
        if fractional not in FRACTIONAL_MODES:
            raise ConfigurationError(
                f"{where}: fractional must be one of {', '.join(FRACTIONAL_MODES)}, "
                f"got {fractional!r}"
            )
        self.fractional = _fractional if fractional == "cbor" else _fractional_legacy

    def fail(self, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: {message}")

    def compile(self, expr: Any) -> _Expr:
        if isinstance(expr, list):
            parts = [self.compile(e) for e in expr]
            return lambda d: [p(d) for p in parts]
        if not isinstance(expr, Mapping):
            return lambda d: expr
        if len(expr) != 1:
            # a multi-key object is a literal, as in json-logic-js
            return lambda d: expr
        op, raw = next(iter(expr.items()))
        raw_args = raw if isinstance(raw, list) else [raw]
        if op in ("if", "?:"):
            return self._if(raw_args)
        if op in ("and", "or"):
            return self._and_or(op, raw_args)
        if op in ("map", "filter", "all", "none", "some", "reduce"):
            return self._array_op(op, raw_args)
        args = [self.compile(a) for a in raw_args]
        fn = self._operation(op)
        return lambda d: fn([a(d) for a in args], d)

    def _if(self, raw: list[Any]) -> _Expr:
        parts = [self.compile(a) for a in raw]

        def run(d: Any) -> Any:
            i = 0
            while i + 1 < len(parts):
                if json_logic_truthy(parts[i](d)):
                    return parts[i + 1](d)
                i += 2
            return parts[i](d) if i < len(parts) else None

        return run

    def _and_or(self, op: str, raw: list[Any]) -> _Expr:
        parts = [self.compile(a) for a in raw]
        want = op == "or"

        def run(d: Any) -> Any:
            value: Any = None
            for p in parts:
                value = p(d)
                if json_logic_truthy(value) is want:
                    return value
            return value

        return run

    def _array_op(self, op: str, raw: list[Any]) -> _Expr:
        if len(raw) < 2:
            raise self.fail(f"{op} needs an array and an expression")
        source = self.compile(raw[0])
        body = self.compile(raw[1])
        initial = self.compile(raw[2]) if len(raw) > 2 else (lambda d: None)

        def run(d: Any) -> Any:
            items = source(d)
            if not isinstance(items, list):
                items = []
            if op == "map":
                return [body(x) for x in items]
            if op == "filter":
                return [x for x in items if json_logic_truthy(body(x))]
            if op == "all":
                return bool(items) and all(json_logic_truthy(body(x)) for x in items)
            if op == "none":
                return not any(json_logic_truthy(body(x)) for x in items)
            if op == "some":
                return any(json_logic_truthy(body(x)) for x in items)
            acc = initial(d)
            for x in items:
                acc = body({"current": x, "accumulator": acc})
            return acc

        return run

    def _operation(self, op: str) -> Callable[[list[Any], Any], Any]:
        ops: dict[str, Callable[[list[Any], Any], Any]] = {
            "var": lambda a, d: _var(d, a[0] if a else None, a[1] if len(a) > 1 else None),
            "missing": lambda a, d: [
                k for k in (a[0] if a and isinstance(a[0], list) else a) if _var(d, k) is None
            ],
            "missing_some": lambda a, d: _missing_some(a, d),
            "==": lambda a, d: _loose_equal(*_two(a)),
            "!=": lambda a, d: not _loose_equal(*_two(a)),
            "===": lambda a, d: _strict_equal(*_two(a)),
            "!==": lambda a, d: not _strict_equal(*_two(a)),
            "!": lambda a, d: not json_logic_truthy(a[0] if a else None),
            "!!": lambda a, d: json_logic_truthy(a[0] if a else None),
            "<": lambda a, d: _compare_chain("<", a),
            "<=": lambda a, d: _compare_chain("<=", a),
            ">": lambda a, d: _compare_chain(">", a),
            ">=": lambda a, d: _compare_chain(">=", a),
            "+": lambda a, d: _number_out(sum(_num(x) for x in a)),
            "*": lambda a, d: _number_out(math.prod(_num(x) for x in a)),
            "-": lambda a, d: _number_out(-_num(a[0]) if len(a) == 1 else _num(a[0]) - _num(a[1])),
            "/": lambda a, d: _divide(a),
            "%": lambda a, d: _modulo(a),
            "max": lambda a, d: _number_out(max(_num(x) for x in a)) if a else None,
            "min": lambda a, d: _number_out(min(_num(x) for x in a)) if a else None,
            "cat": lambda a, d: "".join(js_string(x) for x in a),
            "substr": lambda a, d: _substr(a),
            "in": lambda a, d: _in(a),
            "merge": lambda a, d: [y for x in a for y in (x if isinstance(x, list) else [x])],
            "log": lambda a, d: a[0] if a else None,
            "starts_with": lambda a, d: _string_test(a, str.startswith),
            "ends_with": lambda a, d: _string_test(a, str.endswith),
            "sem_ver": lambda a, d: _sem_ver(a),
            "fractional": self.fractional,
        }
        fn = ops.get(op)
        if fn is None:
            raise self.fail(f"unknown JsonLogic operation {op!r}")
        return fn


def _string_test(a: list[Any], test: Callable[[str, str], bool]) -> bool | None:
    # flagd's string operations: two strings, else an operator error (null)
    if len(a) != 2 or not isinstance(a[0], str) or not isinstance(a[1], str):
        return None
    return test(a[0], a[1])


def _two(a: list[Any]) -> tuple[Any, Any]:
    return (a[0] if a else None, a[1] if len(a) > 1 else None)


def _missing_some(a: list[Any], d: Any) -> list[Any]:
    need = int(_num(a[0])) if a else 0
    keys = a[1] if len(a) > 1 and isinstance(a[1], list) else []
    missing = [k for k in keys if _var(d, k) is None]
    return [] if len(keys) - len(missing) >= need else missing


def _divide(a: list[Any]) -> Any:
    x, y = _num(a[0] if a else None), _num(a[1] if len(a) > 1 else None)
    if y == 0:
        return None
    return _number_out(x / y)


def _modulo(a: list[Any]) -> Any:
    x, y = _num(a[0] if a else None), _num(a[1] if len(a) > 1 else None)
    if y == 0 or x != x or y != y:
        return None
    return _number_out(math.fmod(x, y))


def _substr(a: list[Any]) -> str:
    text = js_string(a[0]) if a else ""
    start = int(_num(a[1])) if len(a) > 1 else 0
    if start < 0:
        start = max(0, len(text) + start)
    if len(a) > 2:
        length = int(_num(a[2]))
        end = len(text) + length if length < 0 else start + length
        return text[start:end]
    return text[start:]


def _in(a: list[Any]) -> bool:
    needle, hay = _two(a)
    if isinstance(hay, str):
        return isinstance(needle, str) and needle in hay
    if isinstance(hay, list):
        return any(_strict_equal(needle, x) for x in hay)
    return False


def compile_json_logic(expr: Any, *, where: str = "targeting", fractional: str = "cbor") -> _Expr:
    """Compile a JsonLogic expression (with flagd's operations) into ``data -> result``.

    ``fractional`` picks the bucketing of the ``fractional`` operation: ``"cbor"``
    (flagd's current one) or ``"legacy"`` (the string-key one flagd used before).
    Unknown operations raise :class:`ConfigurationError` at compile time::

        compile_json_logic({"==": [{"var": "tier"}, "gold"]})({"tier": "gold"})  # True
    """
    return _Compiler(where, fractional).compile(expr)


#: a targeting result that names no variant (a list, an object): an evaluation error
UNNAMEABLE = object()


def variant_of(result: Any) -> Any:
    """The variant name a targeting result selects, as flagd reads it.

    ``None`` (null) selects the default variant; booleans name ``"true"``/``"false"``,
    numbers their decimal text, strings themselves. Lists and objects return
    :data:`UNNAMEABLE`.
    """
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, (int, float)):
        return _decimal_text(result)
    return UNNAMEABLE


# --- the contextEvaluator expressions of the OpenFeature spec's test flags --------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>===|!==|==|!=|&&|\|\||[!?:()])|(?P<name>[A-Za-z_$][\w$.]*))"
)


def translate_context_evaluator(text: str) -> Any:
    """Translate a small JavaScript-like expression into JsonLogic.

    Grammar: ``cond ? a : b`` (right-associative), ``||``, ``&&``, ``==``/``!=``
    (``===``/``!==``), unary ``!``, parentheses, quoted strings, numbers,
    ``true``/``false``/``null`` and context keys. Anything else raises
    :class:`ConfigurationError`::

        translate_context_evaluator("email == 'a@b.c' ? 'zero' : ''")
    """
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConfigurationError(f"contextEvaluator: cannot parse {text[pos:]!r}")
        pos = m.end()
        if m.group("str") is not None:
            tokens.append(("lit", m.group("str")[1:-1].replace("\\'", "'").replace('\\"', '"')))
        elif m.group("num") is not None:
            n = float(m.group("num"))
            tokens.append(("lit", int(n) if n.is_integer() else n))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        else:
            name = m.group("name")
            lits = {"true": True, "false": False, "null": None, "undefined": None}
            tokens.append(("lit", lits[name]) if name in lits else ("var", name))
    parser = _ExprParser(tokens, text)
    out = parser.ternary()
    if parser.i != len(tokens):
        raise ConfigurationError(f"contextEvaluator: unexpected input in {text!r}")
    return out


class _ExprParser:
    def __init__(self, tokens: list[tuple[str, Any]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return str(tok[1])
        return None

    def ternary(self) -> Any:
        cond = self.binary(0)
        if self.take_op("?") is None:
            return cond
        yes = self.ternary()
        if self.take_op(":") is None:
            raise ConfigurationError(f"contextEvaluator: missing ':' in {self.text!r}")
        no = self.ternary()
        # an empty string as the chosen result means "no variant" (null in JsonLogic)
        return {"if": [cond, None if yes == "" else yes, None if no == "" else no]}

    _LEVELS: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("||",),
        ("&&",),
        ("==", "!=", "===", "!=="),
    )
    _JL: ClassVar[dict[str, str]] = {
        "||": "or",
        "&&": "and",
        "==": "==",
        "!=": "!=",
        "===": "===",
        "!==": "!==",
    }

    def binary(self, level: int) -> Any:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self.take_op(*self._LEVELS[level])) is not None:
            right = self.binary(level + 1)
            left = {self._JL[op]: [left, right]}
        return left

    def unary(self) -> Any:
        if self.take_op("!") is not None:
            return {"!": [self.unary()]}
        if self.take_op("(") is not None:
            inner = self.ternary()
            if self.take_op(")") is None:
                raise ConfigurationError(f"contextEvaluator: missing ')' in {self.text!r}")
            return inner
        tok = self.peek()
        if tok is None or tok[0] == "op":
            raise ConfigurationError(f"contextEvaluator: expected a value in {self.text!r}")
        self.i += 1
        return {"var": tok[1]} if tok[0] == "var" else tok[1]


# --- import ------------------------------------------------------------------------------


def _resolve_refs(expr: Any, evaluators: Mapping[str, Any], key: str, depth: int = 0) -> Any:
    if depth > 32:
        raise ConfigurationError(f"flag {key!r} targeting: $ref nesting too deep (a cycle?)")
    if isinstance(expr, list):
        return [_resolve_refs(e, evaluators, key, depth) for e in expr]
    if isinstance(expr, Mapping):
        if set(expr) == {"$ref"}:
            name = expr["$ref"]
            if name not in evaluators:
                raise ConfigurationError(f"flag {key!r} targeting: unknown $ref {name!r}")
            return _resolve_refs(evaluators[name], evaluators, key, depth + 1)
        return {k: _resolve_refs(v, evaluators, key, depth) for k, v in expr.items()}
    return expr


def _value_type(values: list[Any]) -> str | None:
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, str):
            kinds.add("string")
        elif isinstance(v, (int, float)):
            kinds.add("number")
        else:
            kinds.add("json")
    return kinds.pop() if len(kinds) == 1 else None


def _flag(
    key: str, raw: Mapping[str, Any], evaluators: Mapping[str, Any], meta: Any
) -> FlagDefinition:
    where = f"flag {key!r}"
    variants = raw.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise ConfigurationError(f"{where} variants: must be a non-empty object")
    state = raw.get("state", "ENABLED")
    if state not in ("ENABLED", "DISABLED"):
        raise ConfigurationError(f"{where} state: must be ENABLED or DISABLED, got {state!r}")
    if raw.get("disabled") is True:  # flag files written as {"disabled": true} mean DISABLED
        state = "DISABLED"
    default_variant = raw.get("defaultVariant")
    if isinstance(default_variant, bool):  # as flagd reads a boolean variant name
        default_variant = "true" if default_variant else "false"
    elif default_variant == "":  # flagd: an empty default variant means none
        default_variant = None
    if default_variant is not None and default_variant not in variants:
        raise ConfigurationError(
            f"{where} defaultVariant: {default_variant!r} is not one of its variants"
        )
    targeting = raw.get("targeting")
    if targeting is None and isinstance(raw.get("contextEvaluator"), str):
        targeting = translate_context_evaluator(raw["contextEvaluator"])
    rules: list[Rule] = []
    if targeting not in (None, {}):
        targeting = _resolve_refs(targeting, evaluators, key)
        compile_json_logic(targeting, where=f"{where} targeting")  # reject bad input at load
        for name, value in variants.items():
            rules.append(
                Rule(
                    id=str(name),
                    condition={
                        "$jsonLogic": {"rule": targeting, "variant": str(name), "flag": key}
                    },
                    value=value,
                    variant=str(name),
                )
            )
    metadata = {**(meta or {}), **(raw.get("metadata") or raw.get("flagMetadata") or {})}
    return FlagDefinition(
        key=key,
        type=_value_type(list(variants.values())),  # type: ignore[arg-type]
        default_value=variants[default_variant] if default_variant is not None else None,
        default_variant=str(default_variant) if default_variant is not None else None,
        enabled=state == "ENABLED",
        rules=rules,
        metadata=metadata,
    )


def with_fractional(flags: FlagSet, mode: str) -> FlagSet:
    """``flags`` with every flagd targeting set to bucket ``fractional`` by ``mode``.

    ``"cbor"`` is flagd's current bucketing and the default; ``"legacy"`` is the
    string-key one that flagd and its SDKs used before (for definitions whose
    rollouts must keep their old assignments).
    """
    if mode not in FRACTIONAL_MODES:
        raise ConfigurationError(
            f"fractional must be one of {', '.join(FRACTIONAL_MODES)}, got {mode!r}"
        )
    if mode == "cbor":
        return flags
    out = []
    for flag in flags.flags:
        rules = []
        for rule in flag.rules:
            cond = rule.condition
            spec = cond.get("$jsonLogic") if cond is not None else None
            if cond is not None and isinstance(spec, Mapping):
                updated = {**cond, "$jsonLogic": {**spec, "fractional": mode}}
                rule = rule.model_copy(update={"condition": updated})
            rules.append(rule)
        out.append(flag.model_copy(update={"rules": rules}))
    return flags.model_copy(update={"flags": out})


def flag_set_from_flagd(payload: Mapping[str, Any], *, strict: bool = True) -> FlagSet:
    """Convert a flagd flag definition document (or a bare ``{key: flag}`` mapping).

    ``strict`` (the default) rejects the whole document for one bad flag; with
    ``strict=False`` each bad flag lands in ``FlagSet.invalid`` with its reason.
    """
    if not isinstance(payload, Mapping):
        raise ConfigurationError("flagd payload must be an object")
    raw_flags = payload.get("flags") if "flags" in payload else payload
    if not isinstance(raw_flags, Mapping):
        raise ConfigurationError("flagd payload: 'flags' must be an object")
    evaluators = payload.get("$evaluators") or {}
    set_meta = payload.get("metadata") if "flags" in payload else None
    flags = []
    invalid: dict[str, str] = {}
    for key, raw in raw_flags.items():
        if str(key).startswith("$"):
            continue
        try:
            if not isinstance(raw, Mapping):
                raise ConfigurationError(f"flag {key!r}: must be an object")
            flags.append(_flag(str(key), raw, evaluators, set_meta))
        except (ConfigurationError, ValidationError) as exc:
            problem = (
                validation_error(exc, f"flag {key!r}") if isinstance(exc, ValidationError) else exc
            )
            if strict:
                raise problem from None
            invalid[str(key)] = str(problem)
    return FlagSet(flags=flags, invalid=invalid)
