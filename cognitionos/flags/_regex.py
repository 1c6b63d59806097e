"""Regular expressions in conditions, matched in time linear in the attribute's length.

Attribute values come from end users, so a backtracking engine (Python's ``re``,
JavaScript's ``RegExp``) lets one request stall the process: ``(a+)+$`` against
27 characters took about 28 s. Conditions use RE2 (the ``google-re2`` package)
instead, whose automaton never backtracks. Its dialect is RE2's: no
backreferences and no lookaround (such patterns are rejected with a
:class:`~cognitionos.errors.ConfigurationError` naming them), ``\\d \\w \\s \\b``
are ASCII, ``$`` matches only at the end of the text (as in JavaScript without
the ``m`` flag). JavaScript's ``\\uXXXX`` and ``\\cX`` escapes are accepted too.

``re2`` is imported on the first pattern compiled, so importing the flags engine
stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cognitionos.errors import ConfigurationError, MissingDependency

__all__ = ["UnsupportedPattern", "compile_search"]

_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")


class UnsupportedPattern(ConfigurationError):
    """A pattern valid for a backtracking engine that RE2 cannot run (backreference, lookaround).

    Unlike a malformed pattern, which the vendors' SDKs treat as never matching,
    such a pattern means something we cannot evaluate: lenient loading reports it
    too, so the flag answers PARSE_ERROR instead of silently never matching.
    """


def _re2() -> Any:
    try:
        import re2
    except ImportError as exc:  # a runtime dependency: only a broken install lands here
        raise MissingDependency(
            "'re2' is required for regular expressions in flag conditions; "
            "install it with: pip install google-re2"
        ) from exc
    return re2


def _from_javascript(pattern: str) -> str:
    """Rewrite JavaScript-only escapes (``\\uXXXX``, ``\\cX``) into RE2's ``\\x{...}``."""
    if "\\u" not in pattern and "\\c" not in pattern:
        return pattern
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = pattern[i + 1]
        hex4 = pattern[i + 2 : i + 6]
        if nxt == "u" and len(hex4) == 4 and all(c in "0123456789abcdefABCDEF" for c in hex4):
            out.append(f"\\x{{{hex4}}}")
            i += 6
        elif nxt == "c" and i + 2 < n and pattern[i + 2].isascii() and pattern[i + 2].isalpha():
            out.append(f"\\x{{{ord(pattern[i + 2]) % 32:02x}}}")
            i += 3
        else:  # any other escape (including an escaped backslash) passes through whole
            out.append(pattern[i : i + 2])
            i += 2
    return "".join(out)


def _problem(pattern: str, message: str) -> ConfigurationError:
    if any(m in message for m in _LOOKAROUND):
        return UnsupportedPattern(
            f"unsupported regular expression {pattern!r}: lookaround is not available "
            "in the linear-time (RE2) dialect"
        )
    if message.startswith("invalid escape sequence: \\") and (
        message[-1:].isdigit() or message.endswith("\\k")
    ):
        return UnsupportedPattern(
            f"unsupported regular expression {pattern!r}: backreferences are not available "
            "in the linear-time (RE2) dialect"
        )
    return ConfigurationError(f"invalid regular expression {pattern!r}: {message}")


def compile_search(pattern: str, *, ignore_case: bool = False) -> Callable[[str], bool]:
    """A function telling whether ``pattern`` occurs anywhere in a string, in linear time.

    Raises :class:`ConfigurationError` when RE2 cannot compile the pattern
    (:class:`UnsupportedPattern` when it is valid elsewhere but needs backtracking)::

        found = compile_search("^(mobile|tablet)", ignore_case=True)
        found("Mobile Safari")  # True
    """
    re2 = _re2()
    options = re2.Options()
    options.log_errors = False  # the error comes back as our exception, not on stderr
    options.never_capture = True  # only "is there a match" is needed: faster matching
    options.case_sensitive = not ignore_case
    try:
        compiled = re2.compile(_from_javascript(pattern), options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise _problem(pattern, message) from None
    low = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if low is None or anchor is None or not hasattr(low, "Match"):
        search = compiled.search
        return lambda text: search(text.encode("utf-8", "surrogatepass")) is not None
    # the binding's own search() builds a generator and a Match object per call
    # (about 7x the cost of the match itself); one call into the matcher suffices
    match = low.Match

    def found(text: str) -> bool:
        # surrogatepass: a lone surrogate (possible in JSON input) must not raise
        data = text.encode("utf-8", "surrogatepass")
        return bool(match(anchor, data, 0, len(data))[0][0] != -1)

    return found
