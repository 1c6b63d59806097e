"""Compile MongoDB-style targeting conditions into plain predicates.

A condition is parsed and validated once, when a flag is loaded, and becomes a
tree of closures; evaluation only walks attribute values. The language is
GrowthBook's (spec 0.8.0, JavaScript value semantics) plus a few operators the
Unleash importer needs:

- ``$startsWith`` ``$endsWith`` ``$contains`` (``...i``: case-insensitive): string
  prefix / suffix / substring, any of a list;
- ``$numEq`` ``$numGt`` ``$numGte`` ``$numLt`` ``$numLte``: the attribute as a number
  (JavaScript ``Number``), missing or non-numeric never matches;
- ``$semverEq`` ``$semverGt`` ``$semverGte`` ``$semverLt`` ``$semverLte``: strict SemVer 2.0
  ordering (no leading ``v``; build metadata ignored);
- ``$dateAfter`` ``$dateBefore``: ISO-8601 instants;
- ``$ipIn``: an IP address inside one of the listed networks or addresses;
- ``$matches`` ``$matchesi``: a regular expression, strings only (``$regex`` coerces
  with ``String()`` as JavaScript does).

Every regular expression runs on RE2 (see :mod:`cognitionos.flags._regex`): matching
time is linear in the attribute's length. Patterns RE2 cannot run (backreferences,
lookaround) raise even in lenient mode, so the flag fails visibly instead of never
matching.

In strict mode (the default) unknown operators, invalid regular expressions
and malformed operands raise :class:`~cognitionos.errors.ConfigurationError`
naming where they are; lenient mode turns them into never-matching predicates,
which is what the GrowthBook spec asks of an SDK receiving a payload it does
not understand.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cognitionos.errors import ConfigurationError
from cognitionos.flags._js import (
    js_compare,
    js_json,
    js_strict_equal,
    js_string,
    js_to_number,
    js_truthy,
    js_type,
    version_key,
)
from cognitionos.flags._regex import UnsupportedPattern, compile_search
from cognitionos.flags._semver import parse_semver

__all__ = [
    "Predicate",
    "compile_condition",
    "compile_targeting",
    "compile_value_condition",
    "is_operator_object",
]

#: A compiled condition: takes the object under test, answers match or not.
Predicate = Callable[[Any], bool]

_LOGICAL = frozenset({"$or", "$nor", "$and", "$not"})
_TYPE_NAMES = frozenset({"string", "number", "boolean", "object", "array", "null", "undefined"})


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def is_operator_object(value: Any) -> bool:
    """True for a non-empty mapping whose keys all start with ``$`` (so ``{}`` is not, as in JS)."""
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) and k.startswith("$") for k in value)
    )


class _Compiler:
    __slots__ = ("groups", "strict", "where")

    def __init__(self, saved_groups: Mapping[str, Any] | None, strict: bool, where: str) -> None:
        self.groups = saved_groups or {}
        self.strict = strict
        self.where = where

    def fail(self, path: str, message: str) -> Predicate:
        if self.strict:
            raise ConfigurationError(f"{self.where}{path}: {message}")
        return _never

    def pattern(self, path: str, pattern: str, ignore_case: bool) -> Predicate | None:
        """A linear-time search for ``pattern``; None (or an error) when it does not compile.

        A malformed pattern follows :meth:`fail`. One that is valid for JavaScript
        but needs backtracking raises even in lenient mode: answering "no match"
        would silently differ from the vendor's SDK, so the flag must fail instead.
        """
        try:
            return compile_search(pattern, ignore_case=ignore_case)
        except UnsupportedPattern as exc:
            raise UnsupportedPattern(f"{self.where}{path}: {exc}") from None
        except ConfigurationError as exc:
            self.fail(path, str(exc))
            return None

    # -- conditions on an object -------------------------------------------------
    def condition(self, cond: Any, path: str) -> Predicate:
        if not isinstance(cond, Mapping):
            return self.fail(path, f"a condition must be an object, got {js_type(cond)}")
        preds: list[Predicate] = []
        for key, value in cond.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in ("$or", "$nor", "$and"):
                if not isinstance(value, list):
                    preds.append(self.fail(sub, f"{key} needs a list of conditions"))
                    continue
                parts = [self.condition(c, f"{sub}[{i}]") for i, c in enumerate(value)]
                if key == "$and":
                    preds.append(_all_of(parts))
                elif key == "$or":
                    preds.append(_any_of(parts) if parts else _always)
                else:
                    inner = _any_of(parts) if parts else _always
                    preds.append(_negate(inner))
            elif key == "$not":
                preds.append(_negate(self.condition(value, sub)))
            elif key == "$jsonLogic":
                preds.append(self.json_logic(value, sub))
            elif type(value) is str and "." not in key:
                preds.append(_key_equals(key, value))
            else:
                preds.append(_at_path(str(key), self.value(value, sub)))
        return _all_of(preds)

    def json_logic(self, spec: Any, path: str) -> Predicate:
        """``{"$jsonLogic": {"rule": <JsonLogic>, "variant": name}}``: flagd targeting.

        Without ``variant`` the rule's result must be truthy; with it, the rule must
        select that variant (a string, or a boolean read as ``"true"``/``"false"``).
        """
        from cognitionos.flags._flagd import json_logic_truthy, variant_of

        if not isinstance(spec, Mapping) or "rule" not in spec:
            return self.fail(path, "$jsonLogic needs an object with a 'rule'")
        try:
            run = compile_targeting(spec, where=f"{self.where}{path}")
        except ConfigurationError as exc:
            if self.strict:
                raise
            del exc
            return _never
        want = spec.get("variant")
        if want is None:
            return lambda attrs: json_logic_truthy(run(attrs))
        target = str(want)
        return lambda attrs: variant_of(run(attrs)) == target

    # -- conditions on one value ----------------------------------------------------
    def value(self, cond: Any, path: str, insensitive: bool = False) -> Predicate:
        t = type(cond)
        if t is str:
            s: str = cond
            if insensitive:
                low = s.lower()
                return lambda v: js_string(v).lower() == low

            def eq_str(v: Any) -> bool:
                return v == s if type(v) is str else js_string(v) == s

            return eq_str
        if t is bool:
            b: bool = cond
            return lambda v: v is not None and js_truthy(v) == b
        if t is int or t is float:
            x = float(cond)
            return lambda v: js_to_number(v) == x
        if cond is None:
            return lambda v: v is None
        if isinstance(cond, (list, tuple)) or not is_operator_object(cond):
            if not isinstance(cond, (list, tuple, Mapping)):
                return self.fail(path, f"unsupported condition value of type {t.__name__}")
            text = js_json(cond)
            return lambda v: js_json(v) == text
        ops = [self.operator(op, arg, f"{path}.{op}") for op, arg in cond.items()]
        return _all_of(ops)

    def operator(self, op: str, arg: Any, path: str) -> Predicate:
        handler = _OPERATORS.get(op)
        if handler is None:
            return self.fail(path, f"unknown operator {op!r}")
        return handler(self, arg, path)


def _all_of(preds: Sequence[Predicate]) -> Predicate:
    preds = [p for p in preds if p is not _always]
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p1, p2 = preds
        return lambda o: p1(o) and p2(o)
    group = tuple(preds)
    return lambda o: all(p(o) for p in group)


def _any_of(preds: Sequence[Predicate]) -> Predicate:
    group = tuple(preds)
    if len(group) == 1:
        return group[0]
    return lambda o: any(p(o) for p in group)


def _negate(pred: Predicate) -> Predicate:
    return lambda o: not pred(o)


def _key_equals(key: str, expected: str) -> Predicate:
    """``{key: "text"}`` at the top level, fused into one closure (the commonest condition)."""

    def check(obj: Any) -> bool:
        v = obj.get(key) if type(obj) is dict else _lookup(obj, (key,))
        return v == expected if type(v) is str else js_string(v) == expected

    return check


def _at_path(path: str, pred: Predicate) -> Predicate:
    parts = tuple(path.split("."))
    if len(parts) == 1:
        key = parts[0]

        def at_key(obj: Any) -> bool:
            if type(obj) is dict:
                return pred(obj.get(key))
            return pred(_lookup(obj, parts))

        return at_key
    return lambda obj: pred(_lookup(obj, parts))


def _lookup(obj: Any, parts: tuple[str, ...]) -> Any:
    """GrowthBook ``getPath``: walk a dotted path; anything missing reads as ``None`` (JS null)."""
    current = obj
    for part in parts:
        if isinstance(current, Mapping):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, (list, tuple)):
            if part == "length":
                current = len(current)
            elif part.isdigit() and (part == "0" or part[0] != "0") and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        else:
            return None
    return current


# --- membership -------------------------------------------------------------------


def _member_key(value: Any, insensitive: bool) -> Any:
    """Hashable identity under SameValueZero; ``None`` marks values never equal to anything."""
    t = type(value)
    if t is str:
        return ("s", value.lower() if insensitive else value)
    if t is bool:
        return ("b", value)
    if t is int or t is float:
        return ("n", value)
    if value is None:
        return ("z", None)
    return None


def _membership(values: Sequence[Any], insensitive: bool) -> Callable[[Any], bool]:
    keys = frozenset(k for k in (_member_key(v, insensitive) for v in values) if k is not None)
    strs = frozenset(k[1] for k in keys if k[0] == "s")
    only_strings = len(strs) == len(keys)

    def contains(v: Any) -> bool:
        if type(v) is str:
            return (v.lower() if insensitive else v) in strs
        if only_strings:
            return False
        k = _member_key(v, insensitive)
        return k is not None and k in keys

    def matches(actual: Any) -> bool:
        if type(actual) is str:
            return (actual.lower() if insensitive else actual) in strs
        if isinstance(actual, (list, tuple)):
            return any(contains(el) for el in actual)
        return contains(actual)

    return matches


def _op_in(insensitive: bool, negate: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, list):
            return c.fail(path, "needs a list")
        m = _membership(arg, insensitive)
        return _negate(m) if negate else m

    return build


def _op_group(negate: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, str):
            return c.fail(path, "needs a saved group id (string)")
        members = c.groups.get(arg)
        if not isinstance(members, list):
            members = []
        m = _membership(members, False)
        return _negate(m) if negate else m

    return build


# --- comparisons --------------------------------------------------------------------


def _op_eq(c: _Compiler, arg: Any, path: str) -> Predicate:
    return lambda v: js_strict_equal(v, arg)


def _op_ne(c: _Compiler, arg: Any, path: str) -> Predicate:
    return lambda v: not js_strict_equal(v, arg)


def _op_order(test: Callable[[int], bool]) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            x = float(arg)

            def num(v: Any) -> bool:
                tv = type(v)
                if tv is int or tv is float:
                    # both numbers: plain float ordering, NaN never orders
                    fv = float(v)
                    return fv == fv and test((fv > x) - (fv < x))
                r = js_compare(v, arg)
                return r is not None and test(r)

            return num

        def gen(v: Any) -> bool:
            r = js_compare(v, arg)
            return r is not None and test(r)

        return gen

    return build


def _op_version(test: Callable[[int], bool]) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        expected = version_key(arg)

        def check(v: Any) -> bool:
            actual = version_key(v)
            return test((actual > expected) - (actual < expected))

        return check

    return build


def _op_exists(c: _Compiler, arg: Any, path: str) -> Predicate:
    if js_truthy(arg):
        return lambda v: v is not None
    return lambda v: v is None


def _op_type(c: _Compiler, arg: Any, path: str) -> Predicate:
    if not isinstance(arg, str) or arg not in _TYPE_NAMES:
        return c.fail(path, f"unknown type name {arg!r}")
    return lambda v: js_type(v) == arg


def _op_not(c: _Compiler, arg: Any, path: str) -> Predicate:
    return _negate(c.value(arg, path))


def _op_size(c: _Compiler, arg: Any, path: str) -> Predicate:
    inner = c.value(arg, path)
    return lambda v: isinstance(v, (list, tuple)) and inner(len(v))


def _op_elem_match(c: _Compiler, arg: Any, path: str) -> Predicate:
    if is_operator_object(arg):
        check = c.value(arg, path)
    elif isinstance(arg, Mapping):
        check = c.condition(arg, path)
    else:
        return c.fail(path, "needs a condition object")
    return lambda v: isinstance(v, (list, tuple)) and any(js_truthy(el) and check(el) for el in v)


def _op_all(insensitive: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, list):
            return c.fail(path, "needs a list")
        checks = tuple(c.value(x, f"{path}[{i}]", insensitive) for i, x in enumerate(arg))

        def all_in(v: Any) -> bool:
            if not isinstance(v, (list, tuple)):
                return False
            return all(any(chk(el) for el in v) for chk in checks)

        return all_in

    return build


def _op_regex(ignore_case: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, str):
            return c.fail(path, "needs a regular expression string")
        found = c.pattern(path, arg, ignore_case)
        if found is None:
            return _never
        # RegExp.prototype.test coerces its argument with String()
        return lambda v: found(v if type(v) is str else js_string(v))

    return build


# --- operators for imported vendor semantics -------------------------------------


def _op_matches(ignore_case: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        if not isinstance(arg, str):
            return c.fail(path, "needs a regular expression string")
        found = c.pattern(path, arg, ignore_case)
        if found is None:
            return _never
        return lambda v: type(v) is str and found(v)

    return build


def _string_list(c: _Compiler, arg: Any, path: str) -> list[str] | None:
    if not isinstance(arg, list) or not all(isinstance(x, str) for x in arg):
        c.fail(path, "needs a list of strings")
        return None
    return list(arg)


def _op_string(kind: str, insensitive: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        values = _string_list(c, arg, path)
        if values is None:
            return _never
        needles = tuple(x.lower() for x in values) if insensitive else tuple(values)

        def check(v: Any) -> bool:
            if type(v) is not str:
                return False
            s = v.lower() if insensitive else v
            if kind == "starts":
                return s.startswith(needles)
            if kind == "ends":
                return s.endswith(needles)
            return any(n in s for n in needles)

        return check

    return build


_PARSE_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_float(value: Any) -> float | None:
    """JavaScript ``parseFloat`` of a value (leading numeric prefix), ``None`` when NaN."""
    t = type(value)
    if t is int or t is float:
        f = float(value)
        return f if f == f else None
    if t is not str:
        return None
    m = _PARSE_FLOAT.match(value)
    if m is None:
        return None
    return float(m.group(0))


def _op_num(test: Callable[[int], bool]) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        x = parse_float(arg) if not isinstance(arg, bool) else None
        if x is None:
            return c.fail(path, f"needs a number, got {arg!r}")

        def check(v: Any) -> bool:
            if v is None or isinstance(v, (bool, list, tuple, Mapping)):
                return False
            if isinstance(v, str) and not v.strip():
                return False
            y = js_to_number(v)
            return y == y and test((y > x) - (y < x))

        return check

    return build


def _op_semver(test: Callable[[int], bool]) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        expected = parse_semver(arg)
        if expected is None:
            return c.fail(path, f"invalid semantic version {arg!r}")

        def check(v: Any) -> bool:
            actual = parse_semver(v)
            return actual is not None and test((actual > expected) - (actual < expected))

        return check

    return build


def parse_instant(value: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 string (naive means UTC), a datetime or a number."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
        return f if math.isfinite(f) else None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _op_date(after: bool) -> Callable[[_Compiler, Any, str], Predicate]:
    def build(c: _Compiler, arg: Any, path: str) -> Predicate:
        expected = parse_instant(arg)
        if expected is None:
            return c.fail(path, f"invalid date {arg!r}")

        def check(v: Any) -> bool:
            actual = parse_instant(v)
            if actual is None:
                return False
            return actual > expected if after else actual < expected

        return check

    return build


def _op_ip_in(c: _Compiler, arg: Any, path: str) -> Predicate:
    values = _string_list(c, arg, path)
    if values is None:
        return _never
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    exact: set[str] = set()
    for item in values:
        text = item.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if c.strict and "/" in text:
                return c.fail(path, f"invalid network {item!r}")
            exact.add(text)
    nets = tuple(networks)

    def check(v: Any) -> bool:
        if type(v) is not str:
            return False
        if v in exact:
            return True
        try:
            addr = ipaddress.ip_address(v.strip())
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in nets)

    return check


_OPERATORS: dict[str, Callable[[_Compiler, Any, str], Predicate]] = {
    "$eq": _op_eq,
    "$ne": _op_ne,
    "$lt": _op_order(lambda r: r < 0),
    "$lte": _op_order(lambda r: r <= 0),
    "$gt": _op_order(lambda r: r > 0),
    "$gte": _op_order(lambda r: r >= 0),
    "$veq": _op_version(lambda r: r == 0),
    "$vne": _op_version(lambda r: r != 0),
    "$vgt": _op_version(lambda r: r > 0),
    "$vgte": _op_version(lambda r: r >= 0),
    "$vlt": _op_version(lambda r: r < 0),
    "$vlte": _op_version(lambda r: r <= 0),
    "$exists": _op_exists,
    "$in": _op_in(False, False),
    "$nin": _op_in(False, True),
    "$ini": _op_in(True, False),
    "$nini": _op_in(True, True),
    "$inGroup": _op_group(False),
    "$notInGroup": _op_group(True),
    "$not": _op_not,
    "$size": _op_size,
    "$elemMatch": _op_elem_match,
    "$all": _op_all(False),
    "$alli": _op_all(True),
    "$regex": _op_regex(False),
    "$regexi": _op_regex(True),
    "$type": _op_type,
    "$startsWith": _op_string("starts", False),
    "$startsWithi": _op_string("starts", True),
    "$endsWith": _op_string("ends", False),
    "$endsWithi": _op_string("ends", True),
    "$contains": _op_string("contains", False),
    "$containsi": _op_string("contains", True),
    "$numEq": _op_num(lambda r: r == 0),
    "$numGt": _op_num(lambda r: r > 0),
    "$numGte": _op_num(lambda r: r >= 0),
    "$numLt": _op_num(lambda r: r < 0),
    "$numLte": _op_num(lambda r: r <= 0),
    "$semverEq": _op_semver(lambda r: r == 0),
    "$semverGt": _op_semver(lambda r: r > 0),
    "$semverGte": _op_semver(lambda r: r >= 0),
    "$semverLt": _op_semver(lambda r: r < 0),
    "$semverLte": _op_semver(lambda r: r <= 0),
    "$dateAfter": _op_date(True),
    "$dateBefore": _op_date(False),
    "$ipIn": _op_ip_in,
    "$matches": _op_matches(False),
    "$matchesi": _op_matches(True),
}

#: Every operator the condition language knows (logical ones included).
KNOWN_OPERATORS = frozenset(_OPERATORS) | _LOGICAL


def _timestamp(attrs: Any) -> int:
    # flagd's $flagd.timestamp: seconds, taken from the currentTime attribute the engine fills
    raw = attrs.get("currentTime") if isinstance(attrs, Mapping) else None
    when = parse_instant(raw) if raw is not None else None
    return int(when) if when is not None else 0


def compile_targeting(spec: Mapping[str, Any], *, where: str) -> Callable[[Any], Any]:
    """flagd targeting ``{"rule", "flag", "fractional"?}`` as ``attributes -> raw result``.

    The rule sees the attributes plus ``$flagd.flagKey`` and ``$flagd.timestamp``;
    ``fractional`` picks the bucketing mode (see ``compile_json_logic``).
    """
    from cognitionos.flags._flagd import compile_json_logic

    run = compile_json_logic(
        spec.get("rule"), where=where, fractional=str(spec.get("fractional", "cbor"))
    )
    flag_key = spec.get("flag", "")

    def evaluate(attrs: Any) -> Any:
        if not isinstance(attrs, Mapping):
            return run(attrs)
        return run({**attrs, "$flagd": {"flagKey": flag_key, "timestamp": _timestamp(attrs)}})

    return evaluate


def compile_condition(
    condition: Mapping[str, Any] | None,
    *,
    saved_groups: Mapping[str, Any] | None = None,
    strict: bool = True,
    where: str = "condition",
) -> Predicate:
    """Compile a condition object into a predicate over an attributes mapping.

    ``where`` prefixes error messages (e.g. ``"flag 'x' rules[0].condition"``)::

        pred = compile_condition({"country": {"$in": ["NL", "BE"]}})
        pred({"country": "NL"})  # True
    """
    if condition is None:
        return _always
    return _Compiler(saved_groups, strict, where + ": " if where else "").condition(condition, "")


def compile_value_condition(
    condition: Any,
    *,
    saved_groups: Mapping[str, Any] | None = None,
    strict: bool = True,
    where: str = "condition",
) -> Predicate:
    """Compile a condition on a single value (the right-hand side of ``{"attr": ...}``)."""
    return _Compiler(saved_groups, strict, where + ": " if where else "").value(condition, "")
