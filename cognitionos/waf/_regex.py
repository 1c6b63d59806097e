"""Regex building blocks shared by the detectors and the SQL tokenizer."""

from __future__ import annotations

import re

__all__ = ["alternation", "fold_ascii"]


def fold_ascii(text: str) -> str:
    """``text`` with every non-ASCII character that re.IGNORECASE equates with an ASCII letter
    replaced by that letter (the complete list for Python's simple case folding)."""
    return (
        text.replace("\u0131", "i")
        .replace("\u0130", "i")
        .replace("\u017f", "s")
        .replace("\u212a", "k")
    )


_PLAIN_WORD = re.compile(r"[a-z0-9_-]+")


def alternation(words: str, *, not_after: str = "") -> str:
    """``"cat|cp|curl"`` as an equivalent trie-shaped group: ``(?:c(?:at|p|url))``.

    Matches exactly the same strings as ``(?:cat|cp|curl)`` (members with regex syntax are kept
    as they are), but the regex engine tries one branch per character instead of every word at
    every position, which is what makes long runs of separators cheap to scan.

    ``not_after`` (a character class such as ``[\\w$]``): a word counts only where the character
    before it is not in the class, or at the start. That is ``(?<!class)`` in front of the group,
    but checked after each word's first letter, so the group still starts with plain letters:
    the regex engine then skips every position that cannot start a word at C speed, where a
    leading look-behind (or a consumed ``(?:^|[^...])``) is evaluated at every position.
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    other: list[str] = []
    for word in dict.fromkeys(words.split("|")):
        if not _PLAIN_WORD.fullmatch(word):
            other.append(word)
            continue
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict, top: bool = False) -> str:  # type: ignore[type-arg]
        branches = [
            re.escape(ch)
            + (f"(?<!{not_after}{re.escape(ch)})" if top and not_after else "")
            + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return ("(?:" + body + ")?") if len(branches) == 1 else body + "?"
        return body

    if not_after:
        other = [f"(?<!{not_after}){word}" for word in other]
    return "(?:" + "|".join([emit(trie, True), *other] if trie else other) + ")"
