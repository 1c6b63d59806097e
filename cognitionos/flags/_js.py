"""JavaScript value semantics that GrowthBook conditions are specified in.

GrowthBook's reference SDK is JavaScript and its conformance suite encodes
JS behaviour: ``"8" > 5`` is true, a missing attribute reads as ``null`` and
compares as ``0``, strings hash and order by UTF-16 code units. These helpers
reproduce exactly the parts of ECMAScript the condition language touches.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "js_compare",
    "js_json",
    "js_string",
    "js_strict_equal",
    "js_to_number",
    "js_truthy",
    "js_type",
    "version_key",
]

_NAN = math.nan


def _number_to_string(value: int | float) -> str:
    """ECMAScript Number::toString for a double."""
    try:
        x = float(value)
    except OverflowError:
        return "Infinity" if value > 0 else "-Infinity"
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    mantissa, _, exp = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    # x = 0.d1...dk * 10^n, n being where the decimal point sits in the digits
    n = len(whole) + int(exp or "0")
    stripped = all_digits.lstrip("0")
    n -= len(all_digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{'+' if n > 0 else '-'}{abs(n - 1)}"


def js_string(value: Any) -> str:
    """``String(value)`` in JavaScript (``None`` is ``null``; lists join with commas)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return _number_to_string(value)
    if isinstance(value, (list, tuple)):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, (int, float)):
        return _number_to_string(value)
    return str(value)


_JS_NUMBER = re.compile(
    r"[+-]?(?:Infinity|(?:\d+\.?\d*(?:[eE][+-]?\d+)?)|(?:\.\d+(?:[eE][+-]?\d+)?))"
)
_JS_WHITESPACE = (
    " \t\n\r\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _string_to_number(s: str) -> float:
    s = s.strip(_JS_WHITESPACE)
    if not s:
        return 0.0
    if len(s) > 2 and s[0] == "0" and s[1] in "xXoObB":
        base = {"x": 16, "o": 8, "b": 2}[s[1].lower()]
        try:
            return float(int(s[2:], base))
        except ValueError:
            return _NAN
    if _JS_NUMBER.fullmatch(s):
        return float(s.replace("Infinity", "inf"))
    return _NAN


def js_to_number(value: Any) -> float:
    """``Number(value)`` in JavaScript: ``null`` is 0, ``"8"`` is 8, ``"abc"`` is NaN."""
    t = type(value)
    if t is int or t is float:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if t is bool:
        return 1.0 if value else 0.0
    if value is None:
        return 0.0
    if t is str:
        return _string_to_number(value)
    if isinstance(value, (list, tuple)):
        return _string_to_number(js_string(value))
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return _NAN


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: 0, "", null, false and NaN are falsy; ``[]`` is truthy."""
    if value is None or value is False:
        return False
    t = type(value)
    if t is str:
        return bool(value != "")
    if t is int or t is float:
        return bool(value == value and value != 0)
    return True


def js_type(value: Any) -> str:
    """GrowthBook's ``$type`` names: null, boolean, number, string, array, object."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "boolean"
    if t is str:
        return "string"
    if t is int or t is float:
        return "number"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (int, float)):
        return "number"
    return "unknown"


def js_strict_equal(a: Any, b: Any) -> bool:
    """``a === b`` for JSON values; arrays and objects are never identical (distinct parses)."""
    ta = js_type(a)
    if ta != js_type(b) or ta in ("array", "object", "unknown"):
        return False
    return bool(a == b)


def _primitive(value: Any) -> Any:
    """ToPrimitive with hint number, for the JSON value kinds."""
    if isinstance(value, (list, tuple)):
        return js_string(value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return value


def _utf16_order(a: str, b: str) -> int:
    if a.isascii() and b.isascii():
        return (a > b) - (a < b)
    ua = a.encode("utf-16-be", "surrogatepass")
    ub = b.encode("utf-16-be", "surrogatepass")
    return (ua > ub) - (ua < ub)


def js_compare(a: Any, b: Any) -> int | None:
    """Order ``a`` and ``b`` as JavaScript's relational operators do.

    Returns -1, 0 or 1, or ``None`` when the comparison is undefined (a NaN
    operand), in which case every one of ``< <= > >=`` is false in JS.
    """
    pa = _primitive(a)
    pb = _primitive(b)
    if type(pa) is str and type(pb) is str:
        return _utf16_order(pa, pb)
    x = js_to_number(pa)
    y = js_to_number(pb)
    if x != x or y != y:
        return None
    return (x > y) - (x < y)


def _js_key_order(obj: Mapping[str, Any]) -> list[str]:
    keys = [str(k) for k in obj]
    index = [k for k in keys if k.isdigit() and (k == "0" or k[0] != "0") and int(k) < 2**32 - 1]
    index_set = set(index)
    return sorted(index, key=int) + [k for k in keys if k not in index_set]


def js_json(value: Any) -> str:
    """``JSON.stringify(value)``: property order matters, NaN/Infinity become ``null``."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "true" if value else "false"
    if t is str:
        return json.dumps(value, ensure_ascii=False)
    if t is int or t is float:
        try:
            f = float(value)
        except OverflowError:
            return "null"
        return _number_to_string(value) if math.isfinite(f) else "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    if isinstance(value, Mapping):
        by_str = {str(k): v for k, v in value.items()}
        return (
            "{"
            + ",".join(
                json.dumps(k, ensure_ascii=False) + ":" + js_json(by_str[k])
                for k in _js_key_order(by_str)
            )
            + "}"
        )
    return json.dumps(js_string(value), ensure_ascii=False)


def _version_text(value: Any) -> str:
    # GrowthBook coerces like JS: a number becomes its String(), any other
    # non-string or an empty string is treated as version "0"
    if type(value) in (int, float):
        return _number_to_string(value)
    if type(value) is not str or not value:
        return "0"
    return value


#: ranks of the three kinds of version part; a release ranks above any pre-release part
_NUMERIC, _TEXT, _RELEASE = 0, 1, 2


def version_key(value: Any) -> tuple[tuple[int, int | bytes], ...]:
    """A sort key giving the version order of GrowthBook's ``$veq``/``$vgt``/... operators.

    The order the conformance suite asks for, stated as rules:

    - a leading ``v`` and ``+build`` metadata do not count; ``.`` and ``-`` both separate
      parts, so ``1-2-3`` equals ``1.2.3`` and ``1.2.3.4`` equals ``1.2.3-4``;
    - parts compare left to right: numbers by value, other text by UTF-16 code
      units (so ``R2 < r100 < r2``), and a number below any text (``1.0.0-9 < 1.0.0-a``);
    - a version of exactly three parts is a release and ranks above every
      pre-release of it (``1.0.0-rc.1 < 1.0.0``);
    - when one version is the start of the other, the shorter ranks lower
      (``1.0.0-alpha < 1.0.0-alpha.1``).
    """
    text = _version_text(value)
    if text[0] == "v":
        text = text[1:]
    text = text.partition("+")[0]
    parts = text.replace("-", ".").split(".")
    key: list[tuple[int, int | bytes]] = [
        (_NUMERIC, int(p))
        if p.isascii() and p.isdigit()
        else (_TEXT, p.encode("utf-16-be", "surrogatepass"))
        for p in parts
    ]
    if len(key) == 3:
        key.append((_RELEASE, 0))
    return tuple(key)
