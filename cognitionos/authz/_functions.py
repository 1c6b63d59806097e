"""Casbin's built-in matcher functions: keyMatch..keyMatch5, regexMatch, globMatch, ipMatch.

Each takes ``(key1, key2)`` where ``key1`` comes from the request and ``key2``
(the pattern) from a policy row. The path functions turn the pattern into a
regular expression exactly as Casbin describes them, so the characters between
wildcards keep their regular-expression meaning (``.`` matches any character),
as in Casbin. Every regular expression runs on RE2 (``google-re2``), which never
backtracks: matching takes time linear in the key, whatever the policy says.
RE2's dialect is Go's (Casbin's reference implementation is in Go): no
backreferences, no lookaround; ``\\d \\w \\s`` are ASCII. ``regexMatch``
searches (the pattern may match anywhere unless anchored with ``^``/``$``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from cognitionos.errors import ConfigurationError

__all__ = [
    "BUILTIN_FUNCTIONS",
    "glob_match",
    "ip_match",
    "key_match",
    "key_match2",
    "key_match3",
    "key_match4",
    "key_match5",
    "regex_match",
]

_COLON_PARAM = re.compile(r":[^/]+")
_BRACE_PARAM = re.compile(r"\{[^/]+?\}")
_BRACE_PARAM_GREEDY = re.compile(r"\{([^/]+)\}")


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> Any:
    import re2

    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise ConfigurationError(f"invalid regular expression {pattern!r}: {exc}") from None


def _text(value: Any, fn: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{fn}() needs strings, got {value!r}")
    return value


def regex_match(key1: Any, key2: Any) -> bool:
    """True if the RE2 pattern ``key2`` matches anywhere in ``key1``."""
    return _compile(_text(key2, "regexMatch")).search(_text(key1, "regexMatch")) is not None


def key_match(key1: Any, key2: Any) -> bool:
    """``/foo/*`` style: a ``*`` in ``key2`` matches any suffix (only the first ``*`` counts)."""
    key, pattern = _text(key1, "keyMatch"), _text(key2, "keyMatch")
    star = pattern.find("*")
    if star < 0:
        return key == pattern
    return key[:star] == pattern[:star] if len(key) > star else key == pattern[:star]


def _full(key1: str, pattern: str) -> bool:
    return _compile("^" + pattern + "$").search(key1) is not None


@functools.lru_cache(maxsize=4096)
def _pattern2(key2: str) -> str:
    key2 = key2.replace("/*", "/.*")
    key2 = _COLON_PARAM.sub("[^/]+", key2)
    return "(.*)" if key2 == "*" else key2


def key_match2(key1: Any, key2: Any) -> bool:
    """``/foo/:id`` style: ``:name`` matches one path segment, ``/*`` any suffix."""
    return _full(_text(key1, "keyMatch2"), _pattern2(_text(key2, "keyMatch2")))


@functools.lru_cache(maxsize=4096)
def _pattern3(key2: str) -> str:
    return _BRACE_PARAM.sub("[^/]+", key2.replace("/*", "/.*"))


def key_match3(key1: Any, key2: Any) -> bool:
    """``/foo/{id}`` style: ``{name}`` matches one path segment, ``/*`` any suffix."""
    return _full(_text(key1, "keyMatch3"), _pattern3(_text(key2, "keyMatch3")))


@functools.lru_cache(maxsize=4096)
def _pattern4(key2: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def capture(m: re.Match[str]) -> str:
        names.append(m.group(0)[1:-1])
        return "([^/]+)"

    return _BRACE_PARAM_GREEDY.sub(capture, key2.replace("/*", "/.*")), tuple(names)


def key_match4(key1: Any, key2: Any) -> bool:
    """Like keyMatch3, but every ``{name}`` used twice must match the same text both times."""
    pattern, names = _pattern4(_text(key2, "keyMatch4"))
    m = _compile("^" + pattern + "$").search(_text(key1, "keyMatch4"))
    if m is None:
        return False
    seen: dict[str, str] = {}
    for name, value in zip(names, m.groups(), strict=True):
        if seen.setdefault(name, value) != value:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def _pattern5(key2: str) -> str:
    return _BRACE_PARAM_GREEDY.sub("[^/]+", key2.replace("/*", "/.*"))


def key_match5(key1: Any, key2: Any) -> bool:
    """Like keyMatch3, after dropping the query string (``?...``) from ``key1``."""
    key1 = _text(key1, "keyMatch5").partition("?")[0]
    return _full(key1, _pattern5(_text(key2, "keyMatch5")))


def _char(c: str) -> str:
    return f"\\x{{{ord(c):x}}}"


def _glob_class(pattern: str, i: int) -> tuple[str, int] | None:
    """Translate the class starting after ``[`` at ``i``; None if it is malformed."""
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    ranges: list[tuple[str, str]] = []
    first = True
    while True:
        if i >= len(pattern):
            return None
        c = pattern[i]
        if c == "]" and not first:
            i += 1
            break
        first = False
        i += 1
        if c == "\\":
            if i >= len(pattern):
                return None
            c = pattern[i]
            i += 1
        hi = c
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            hi = pattern[i + 1]
            i += 2
            if hi == "\\":
                if i >= len(pattern):
                    return None
                hi = pattern[i]
                i += 1
        ranges.append((c, hi))
    # a class never matches the separator '/', as in Go's path.Match
    parts: list[str] = []
    for lo, hi in ranges:
        if lo > hi:
            return None
        pieces = [(lo, hi)]
        if not negate and lo <= "/" <= hi:
            pieces = [(a, b) for a, b in ((lo, "."), ("0", hi)) if a <= b]
        parts.extend(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in pieces)
    if negate:
        return "[^/" + "".join(parts) + "]", i
    return ("[" + "".join(parts) + "]" if parts else "[^\\x{0}-\\x{10FFFF}]"), i


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> str | None:
    # Go's path.Match, which Casbin's globMatch is: '*' is any run of non-'/' characters,
    # '?' one non-'/' character, '[...]' / '[!...]' / '[^...]' a class, '\\' escapes.
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            translated = _glob_class(pattern, i)
            if translated is None:
                return None
            cls, i = translated
            out.append(cls)
        else:
            if c == "\\" and i < n:
                c = pattern[i]
                i += 1
            out.append(_char(c))
    return "".join(out)


def glob_match(key1: Any, key2: Any) -> bool:
    """Shell-style glob over paths (Go's ``path.Match``): ``*``, ``?``, ``[a-z]``, ``[!x]``.

    A malformed pattern (unclosed class) never matches.
    """
    key1 = _text(key1, "globMatch")
    pattern = _glob(_text(key2, "globMatch"))
    return pattern is not None and _full(key1, pattern)


@functools.lru_cache(maxsize=4096)
def _network(spec: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None


def ip_match(key1: Any, key2: Any) -> bool:
    """True if address ``key1`` lies in ``key2`` (an address or a CIDR block).

    A request value that is not an IP address, or a policy value that is
    neither an address nor a CIDR block, never matches.
    """
    network = _network(_text(key2, "ipMatch"))
    try:
        address = ipaddress.ip_address(_text(key1, "ipMatch"))
    except ValueError:
        return False
    return network is not None and address in network


BUILTIN_FUNCTIONS: dict[str, Callable[[Any, Any], bool]] = {
    "keyMatch": key_match,
    "keyMatch2": key_match2,
    "keyMatch3": key_match3,
    "keyMatch4": key_match4,
    "keyMatch5": key_match5,
    "regexMatch": regex_match,
    "globMatch": glob_match,
    "ipMatch": ip_match,
}
