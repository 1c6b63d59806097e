"""Header and response splitting: line breaks in values and names (rules 921130, 921150)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import collapse_line_breaks, snip

__all__ = ["crlf_injection", "newline_in_name"]

_I = re.IGNORECASE

_CRLF_HEADER = re.compile(
    r"[\r\n][\t ]{0,8}[a-z][\w-]{1,40}[\t ]{0,8}:|[\r\n]\s{0,8}http/\d|[\r\n]{2}\s{0,8}<|"
    r"(?:^|[\r\n])\s{0,8}(?:get|post|head|put|delete|options|patch|trace|connect)\s{1,8}\S{1,400}\s{1,8}http/\d",
    _I,
)


# Characters above U+00FF whose low byte is a line feed or carriage return: a backend that
# keeps only the low byte ("\u010a" -> "\n") turns them into line breaks.
# (A class of BMP characters only compiles to a lookup table; astral ones are checked apart.)
_TRUNCATING_NEWLINE = re.compile(
    "[" + "".join(chr(hi << 8 | lo) for hi in range(1, 0x100) for lo in (0x0A, 0x0D)) + "]"
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _truncate_newlines(text: str) -> str:
    """``text`` with every truncating newline (see above) as ``"\n"``."""
    if _TRUNCATING_NEWLINE.search(text):
        text = _TRUNCATING_NEWLINE.sub("\n", text)
    if _ASTRAL.search(text):
        text = _ASTRAL.sub(
            lambda m: "\n" if (ord(m.group()) & 0xFF) in (0x0A, 0x0D) else m.group(), text
        )
    return text


def crlf_injection(s: Subject) -> str | None:
    """Header/response splitting: a line break followed by a header or status line."""
    if "\n" not in s.text and "\r" not in s.text and " http/" not in s.lower and s.text.isascii():
        return None
    text = s.text
    if not text.isascii():
        text = _truncate_newlines(text)
    text = collapse_line_breaks(text)
    m = _CRLF_HEADER.search(text)
    return snip(text, m)


def newline_in_name(s: Subject) -> str | None:
    """A line break in a path or parameter name: never legitimate, a header injection vector."""
    if "\n" in s.text or "\r" in s.text:
        return s.text[:60]
    return None
