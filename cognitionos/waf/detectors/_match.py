"""Matching helpers shared by the detectors: gated pattern sets, match snippets, line folding."""

from __future__ import annotations

import re

from cognitionos.waf._regex import fold_ascii as _fold_ascii

__all__ = ["ALWAYS", "GatedPatterns", "collapse_line_breaks", "distinct", "has_any", "snip"]

#: Needles of a :class:`GatedPatterns` item searched whatever the text holds.
ALWAYS = ("",)


class GatedPatterns:
    """Many small patterns, each searched only when one of its literal needles occurs.

    One big alternation makes the regex engine try every branch at every position; gating
    each branch on a substring test (a C-speed scan) keeps long values cheap. Short values
    (most parameters) are searched with the plain alternation in one call instead.
    """

    __slots__ = ("_ascii_gate", "_items", "_union")

    #: Up to this length one search of the whole alternation is cheaper than the gates.
    SHORT = 256

    def __init__(
        self, items: list[tuple[tuple[str, ...], str]], flags: int = 0, *, ascii_gate: bool = False
    ) -> None:
        self._items = [(needles, re.compile(pattern, flags)) for needles, pattern in items]
        self._union = re.compile("|".join(f"(?:{pattern})" for _, pattern in items), flags)
        self._ascii_gate = ascii_gate

    def search(self, text: str) -> re.Match[str] | None:
        if len(text) <= self.SHORT:
            return self._union.search(text)
        best: re.Match[str] | None = None
        # A case-insensitive pattern also matches the few non-ASCII letters that fold to an ASCII
        # one ("\u0131" for "i", "\u017f" for "s"): needles are looked up in a copy where those
        # letters are folded, so a needle is present whenever a match can be.
        gate_text = text if text.isascii() else _fold_ascii(text)
        for needles, pattern in self._items:
            if has_any(gate_text, needles):
                m = pattern.search(text)
                if m and (best is None or m.start() < best.start()):
                    best = m
        return best


def has_any(text: str, needles: tuple[str, ...]) -> bool:
    # A plain loop: measurably faster than any() over a generator on this hot path.
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def distinct(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        if text not in out:
            out.append(text)
    return out


def snip(text: str, m: re.Match[str] | None, width: int = 60) -> str | None:
    if m is None:
        return None
    start = max(0, m.start() - 10)
    return text[start : start + width]


# The look-behind starts a match only at the first blank of a run: without it every position
# inside a long run of blanks not followed by a line break rescans the rest of the run (O(n²)).
_LINE_BREAKS = re.compile(r"(?<![ \t])[ \t]*[\r\n]\s*")


def collapse_line_breaks(text: str) -> str:
    """Whitespace around line breaks collapsed to a single newline (bounds the regex work)."""
    return _LINE_BREAKS.sub("\n", text)
