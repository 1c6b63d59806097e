"""A literal prefilter in front of the detectors: which of them can fire on a plain value.

Most values a request carries are plain text: words, numbers, commas, a few punctuation
marks. No decoder or normalizer rewrites such a value (no ``%``, ``&``, ``\\``, ``+``, quotes,
markup, comments, non-ASCII, dotted or doubled slashes), so every text a detector searches is
the lowercased value, its whitespace squeezed, or its whitespace removed. A detector that fires
only through a regular expression match, or a substring test, can then fire only if the text
holds one of that expression's *required literals*: strings one of which every match must
contain (``union\\s+select`` requires ``union`` or ``select``; ``[;|&]`` requires ``;``, ``|`` or
``&``; ``\\w+`` requires nothing, and then the detector always runs).

The literals are computed from the detectors themselves at rule-set load: every regular
expression, string and string collection a detector's code reaches (through the functions it
calls, across modules) is read, so a detector edited tomorrow is covered tomorrow. All
detectors' literals go into one Aho-Corasick automaton (``pyahocorasick``), so one C-speed scan
of a value names the detectors worth running. Detectors that fire on something other than
literal text (the SQL tokenizer reads word shapes and operators) are always run.

Equivalence with the full detector set is checked by tests/waf/test_shortcuts.py: every value
of the conformance data and a generated corpus, with and without the prefilter.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import json
import re
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

__all__ = [
    "GATED",
    "REGEX_DECIDED",
    "LiteralPrefilter",
    "anchored_prefixes",
    "literal_prefilter",
    "required_literals",
    "write_table",
]

#: Values the prefilter may judge: what no decoding step, variant or detector rewrites.
_PLAIN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,_.:;=()!?*@/-"
_PLAIN_CHARS_SET = frozenset(_PLAIN_CHARS)
_SPACES = re.compile(" +")
#: ... without these sequences: SQL comments (removed by the comment-free variant), hex-spelled
#: dots and slashes (``0x2e``), ``//`` and ``/.`` (collapsed by path normalization).
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9 ,_.:;=()!?@*/-]|--|0[xX]|/[/.*]|\*/")
#: Non-ASCII letters a case-insensitive pattern matches with an ASCII one (``(?i)\u017f``, the
#: long s, matches ``s``): the ASCII letter is the literal a plain value can hold.
_ASCII_FOLD = {"\u017f": "s", "\u0131": "i", "\u0130": "i", "\u212a": "k"}

#: A requirement: strings one of which a match contains. The empty set: no match is possible on
#: plain text at all; None (where a requirement is expected): no requirement.
_Literals = frozenset[str]
_IMPOSSIBLE: _Literals = frozenset()
#: A character class matching more plain characters than this is no requirement.
_MAX_CLASS = 8


def _rarity(literal: str) -> int:
    """How seldom plain text holds ``literal``: longer is rarer, punctuation rarer than letters."""
    return len(literal) + 4 * sum(1 for c in literal if not c.isalnum() and c not in " ,-.")


def _best(candidates: list[_Literals]) -> _Literals:
    """The most selective of several sets each of which is required: the rarest least rare."""
    if _IMPOSSIBLE in candidates:
        return _IMPOSSIBLE
    return max(candidates, key=lambda c: (min(map(_rarity, c)), -len(c)))


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    sre_c.CATEGORY_DIGIT: str.isdigit,
    sre_c.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre_c.CATEGORY_SPACE: str.isspace,
    sre_c.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre_c.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre_c.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _class_chars(items: list[tuple[Any, Any]], ignore_case: bool) -> set[str] | None:
    """The plain characters a character class matches, or None if it cannot be read."""
    try:
        key = tuple(items)
        hash(key)
    except TypeError:
        return _read_class(items, ignore_case)
    return _read_class_cached(key, ignore_case)


@functools.lru_cache(maxsize=4096)
def _read_class_cached(items: tuple[tuple[Any, Any], ...], ignore_case: bool) -> set[str] | None:
    return _read_class(list(items), ignore_case)


def _read_class(items: list[tuple[Any, Any]], ignore_case: bool) -> set[str] | None:
    negate = False
    literals: set[str] = set()
    ranges: list[tuple[int, int]] = []
    categories: list[Callable[[str], bool]] = []
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            literals.add(chr(av))
            if ignore_case and chr(av) in _ASCII_FOLD:
                literals.add(_ASCII_FOLD[chr(av)])
        elif op is sre_c.RANGE:
            ranges.append(av)
            if ignore_case:
                literals.update(a for u, a in _ASCII_FOLD.items() if av[0] <= ord(u) <= av[1])
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            categories.append(_CATEGORIES[av])
        else:
            return None

    def matches(c: str) -> bool:
        for x in {c, c.lower(), c.upper()} if ignore_case else (c,):
            if (
                x in literals
                or any(lo <= ord(x) <= hi for lo, hi in ranges)
                or any(t(x) for t in categories)
            ):
                return not negate
        return negate

    if not ranges and not categories and not negate:
        found = set(_PLAIN_CHARS_SET & literals)
        if ignore_case:
            found |= {c for c in _PLAIN_CHARS if c.lower() in literals or c.upper() in literals}
        return found
    return {c for c in _PLAIN_CHARS if matches(c)}


def _chars(chars: set[str] | None) -> _Literals | None:
    if chars is None or len(chars) > _MAX_CLASS:
        return None
    return frozenset(c.lower() for c in chars)


#: An item that matches the empty string at a position (anchors, look-arounds): it neither
#: consumes text nor breaks a run of literal text around it.
_ZERO_WIDTH = object()
#: Most strings an exact run may stand for (``(?:a|b)(?:c|d)`` is four), and their length.
_MAX_EXACT = 4096
_MAX_LENGTH = 48

#: (exact, required): ``exact`` is every string the item can match (None: too many or unknown),
#: ``required`` is a set one of which every match contains (None: nothing is required).
_Analysis = tuple[_Literals | None, _Literals | None]


def _product(left: _Literals, right: _Literals) -> _Literals | None:
    if len(left) * len(right) > _MAX_EXACT:
        return None
    joined = frozenset(a + b for a in left for b in right)
    return joined if all(len(x) <= _MAX_LENGTH for x in joined) else None


def _sequence(items: Iterable[tuple[Any, Any]], ic: bool) -> _Analysis:
    """Literal runs are joined across items (``a(?:pt|sh)\\s`` -> ``apt ``, ``ash ``)."""
    candidates: list[_Literals] = []
    run: _Literals = frozenset({""})
    broken = False

    def close() -> None:
        if "" not in run:
            candidates.append(run)

    for op, av in items:
        body_exact: _Literals | None = None
        if op in _REPEATS:
            low, high, body = av
            body_exact, body_required = _sequence(body, ic)
            if low == high == 1:
                exact, required = body_exact, body_required
            elif low == 0 and high == 1 and body_exact is not None:
                exact, required = body_exact | {""}, None  # x? is x or nothing
            else:
                exact, required = None, (body_required if low >= 1 else None)
        else:
            found = _item(op, av, ic)
            if found is _ZERO_WIDTH:
                continue
            exact, required = found  # type: ignore[misc]
        if exact is not None:
            joined = _product(run, exact)
            if joined is not None:
                run = joined
                continue
            close()
            run = exact
            broken = True
            continue
        broken = True
        if op in _REPEATS and av[0] >= 1 and body_exact is not None:
            # the first and last repetitions touch the text around them
            joined = _product(run, body_exact)
            if joined is not None:
                run = joined
            close()
            run = body_exact
            if required is not None:
                candidates.append(required)
            continue
        close()
        run = frozenset({""})
        if required is not None:
            candidates.append(required)
    close()
    required_all = _best(candidates) if candidates else None
    return (None if broken else run), required_all


_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


def _item(op: Any, av: Any, ic: bool) -> _Analysis | object:
    if op is sre_c.LITERAL:
        char = chr(av)
        one = frozenset({(_ASCII_FOLD.get(char, char) if ic else char).lower()})
        return one, one
    if op in (sre_c.NOT_LITERAL, sre_c.IN, sre_c.CATEGORY):
        if op is sre_c.NOT_LITERAL:
            chars = _chars({c for c in _PLAIN_CHARS if c != chr(av)})
        else:
            chars = _chars(_class_chars(av if op is sre_c.IN else [(op, av)], ic))
        return chars, chars
    if op is sre_c.BRANCH:
        exact: set[str] | None = set()
        required: set[str] | None = set()
        for branch in av[1]:
            b_exact, b_required = _sequence(branch, ic)
            exact = None if exact is None or b_exact is None else exact | b_exact
            # one branch requiring nothing makes the alternation require nothing
            required = None if required is None or b_required is None else required | b_required
        if exact is not None and len(exact) > _MAX_EXACT:
            exact = None
        return (
            None if exact is None else frozenset(exact),
            None if required is None else frozenset(required),
        )
    if op is sre_c.SUBPATTERN:
        return _sequence(av[-1], ic)
    if op is sre_c.ATOMIC_GROUP:
        return _sequence(av, ic)
    if op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
        return _ZERO_WIDTH
    return None, None  # back-references, any character: no requirement


def _prefixes(items: list[tuple[Any, Any]], ic: bool, depth: int = 0) -> _Literals | None:
    """Strings one of which every match of ``items`` starts with (None: no such strings)."""
    if not items or depth > 64:
        return None
    (op, av), rest = items[0], items[1:]
    if op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
        return _prefixes(rest, ic, depth + 1)
    if op is sre_c.SUBPATTERN:
        return _prefixes(list(av[-1]) + rest, ic, depth + 1)
    if op is sre_c.ATOMIC_GROUP:
        return _prefixes(list(av) + rest, ic, depth + 1)
    if op in _REPEATS:
        low, high, body = av
        if low == high == 1:
            return _prefixes(list(body) + rest, ic, depth + 1)
        first = _prefixes(list(body), ic, depth + 1)  # a match starts with one repetition
        if low >= 1 or first is None:
            return first if low >= 1 else None
        after = _prefixes(rest, ic, depth + 1)  # ... or with what follows, repeated 0 times
        return None if after is None else first | after
    if op is sre_c.BRANCH:
        union: set[str] = set()
        for branch in av[1]:
            found = _prefixes(list(branch), ic, depth + 1)
            if found is None:
                return None
            union |= found
        return frozenset(union) if len(union) <= _MAX_EXACT else None
    analysis = _item(op, av, ic)
    exact = analysis[0] if isinstance(analysis, tuple) else None
    if exact is None or "" in exact:
        return None
    more = _prefixes(rest, ic, depth + 1)
    joined = None if more is None else _product(exact, more)
    return exact if joined is None else joined


#: The analyses of the built-in detectors' patterns, computed ahead (``write_table``): parsing
#: and reading some 700 expressions took most of a second per process, the table is read in a
#: few milliseconds. An entry is used only when the table was computed by this very analysis
#: code (a hash of this file) on this Python minor version (the parse trees differ between
#: versions); any pattern missing from it is analysed as before. tests/waf/test_prefilter.py
#: checks that the shipped table is current and equal to a fresh analysis.
TABLE_PATH = Path(__file__).with_name("_prefilter_table.json")
_TableKey = tuple[str, str, int]
#: What the analysis computed in this process (written out by ``write_table``).
_computed: dict[_TableKey, _Literals | None] = {}


def _table_stamp() -> str:
    source = Path(__file__).read_bytes()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}".encode()
    return hashlib.sha256(source + b"\0" + version).hexdigest()


@functools.cache
def _table() -> dict[_TableKey, _Literals | None]:
    try:
        data = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
        if data.get("stamp") != _table_stamp():
            return {}
        return {
            (kind, text, flags): None if found is None else frozenset(found)
            for kind, text, flags, found in data["entries"]
        }
    except (OSError, ValueError, TypeError, KeyError):
        return {}  # no usable table: every pattern is analysed


#: Non-empty while ``write_table`` analyses every pattern afresh.
_bypass: list[bool] = []


def _lookup(kind: str, text: str, flags: int) -> tuple[bool, _Literals | None]:
    if _bypass:
        return False, None
    key = (kind, text, flags)
    table = _table()
    if key in table:
        return True, table[key]
    return False, None


def write_table(path: Path | None = None) -> int:
    """Analyse the built-in detectors afresh and write the table; returns its entry count.

    Run after changing a detector's patterns or this module:
    ``python -c "from cognitionos.waf._prefilter import write_table; write_table()"``.
    """
    from cognitionos.waf._ruleset import BUILTIN_RULES

    _table.cache_clear()
    _required.cache_clear()
    _anchored.cache_clear()
    _computed.clear()
    stamp = _table_stamp()
    _bypass.append(True)  # no table: analyse everything
    try:
        LiteralPrefilter({r.detector: r.check for r in BUILTIN_RULES})
    finally:
        _bypass.pop()
    entries = sorted(
        [kind, text, flags, None if found is None else sorted(found)]
        for (kind, text, flags), found in _computed.items()
    )
    lines = ",\n".join(json.dumps(entry, ensure_ascii=True) for entry in entries)
    out = path or TABLE_PATH
    out.write_text(f'{{"stamp": "{stamp}", "entries": [\n{lines}\n]}}\n', encoding="utf-8")
    _required.cache_clear()
    _anchored.cache_clear()
    return len(entries)


def anchored_prefixes(pattern: str | re.Pattern[str]) -> _Literals | None:
    """For a pattern anchored at the start of the text (``^\\s*(?:cat|ls)\\b``): lowercased
    strings one of which the text, leading blanks stripped, starts with. None otherwise.

    >>> sorted(anchored_prefixes(r"^\\s{0,8}(?:sudo\\s+)?(?:cat|ls)\\b"))
    ['cat', 'ls', 'sudo ']
    """
    if isinstance(pattern, re.Pattern):
        return _anchored(pattern.pattern, pattern.flags)
    return _anchored(pattern, 0)


@functools.lru_cache(maxsize=4096)
def _anchored(text: str | bytes, flags: int) -> _Literals | None:
    if not isinstance(text, str):
        return None
    known, found = _lookup("a", text, flags)
    if not known:
        found = _computed["a", text, flags] = _analyse_anchored(text, flags)
    return found


def _analyse_anchored(text: str, flags: int) -> _Literals | None:
    try:
        parsed = sre_parse.parse(text, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    items = list(parsed)
    starts = (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING)
    if not items or items[0][0] is not sre_c.AT or items[0][1] not in starts:
        return None
    items = items[1:]
    # blanks the text may start with: the prefilter strips them before it compares
    while items and items[0][0] in _REPEATS and items[0][1][0] == 0:
        body = list(items[0][1][2])
        chars = (
            _item(body[0][0], body[0][1], bool(parsed.state.flags & re.IGNORECASE))
            if len(body) == 1
            else None
        )
        if not (isinstance(chars, tuple) and chars[0] is not None and chars[0] <= {" "}):
            break
        items = items[1:]
    found = _prefixes(items, bool(parsed.state.flags & re.IGNORECASE))
    if found is None or "" in found or any(c.isspace() for x in found for c in x[:1]):
        return None
    return frozenset(x.lower() for x in found)


def required_literals(pattern: str | re.Pattern[str]) -> _Literals | None:
    """Lowercased strings one of which every match of ``pattern`` on plain text contains.

    None: the pattern requires nothing; the empty set: it cannot match plain text at all.

    >>> sorted(required_literals(r"(?i)\\bunion\\s+(?:all\\s+)?select\\b"))
    ['union ']
    """
    if isinstance(pattern, re.Pattern):
        return _required(pattern.pattern, pattern.flags)
    return _required(pattern, 0)


@functools.lru_cache(maxsize=4096)
def _required(text: str | bytes, flags: int) -> _Literals | None:
    # cached: the detectors share many patterns
    if not isinstance(text, str):
        return None
    known, found = _lookup("r", text, flags)
    if not known:
        found = _computed["r", text, flags] = _analyse_required(text, flags)
    return found


def _analyse_required(text: str, flags: int) -> _Literals | None:
    try:
        parsed = sre_parse.parse(text, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    ic = bool(parsed.state.flags & re.IGNORECASE)
    exact, required = _sequence(list(parsed), ic)
    found = exact if exact is not None and "" not in exact else required
    if found is None or "" in found:
        return None
    return frozenset(s.lower() for s in found)


#: Methods that rewrite text: a pattern or string used through them never decides a match.
_TRANSFORMS = frozenset(
    {
        "sub",
        "subn",
        "split",
        "replace",
        "join",
        "strip",
        "lstrip",
        "rstrip",
        "translate",
        "format",
        "partition",
        "rpartition",
        "rsplit",
        "removeprefix",
        "removesuffix",
    }
)
_ATTRIBUTE_OPS = ("LOAD_ATTR", "LOAD_METHOD")


def _transform_argument(instructions: list[dis.Instruction], i: int) -> bool:
    """Whether the constant at ``i`` is an argument of a text-rewriting method call."""
    j = i - 1
    while j >= 0 and instructions[j].opname in ("LOAD_CONST", "LOAD_FAST", "LOAD_ATTR"):
        if instructions[j].opname == "LOAD_ATTR" and instructions[j].argval in _TRANSFORMS:
            return True
        j -= 1
    return (
        j >= 0
        and instructions[j].opname == "LOAD_METHOD"
        and (instructions[j].argval in _TRANSFORMS)
    )


def _reach(fn: Callable[..., Any]) -> tuple[list[re.Pattern[str]], set[str], set[str]]:
    """What ``fn``'s code can reach (through the functions it calls): regular expressions,
    strings, and the strings of code that calls the ``re`` module (possible patterns)."""
    patterns: list[re.Pattern[str]] = []
    strings: set[str] = set()
    dynamic: set[str] = set()
    seen: set[int] = set()

    def value(obj: Any, depth: int) -> None:
        if id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        if isinstance(obj, str):
            strings.add(obj)
        elif isinstance(obj, re.Pattern):
            patterns.append(obj)
        elif isinstance(obj, tuple | list | set | frozenset):
            for item in obj:
                value(item, depth + 1)
        elif isinstance(obj, dict):
            for key, item in obj.items():
                value(key, depth + 1)
                value(item, depth + 1)
        elif isinstance(obj, types.FunctionType):
            code(obj.__code__, obj.__globals__, depth + 1)
        elif isinstance(obj, types.CodeType):
            pass
        elif hasattr(obj, "__slots__") and not isinstance(obj, type):
            # helper objects holding patterns (e.g. gated pattern lists)
            for slot in obj.__slots__:
                value(getattr(obj, slot, None), depth + 1)

    def code(co: types.CodeType, globs: dict[str, Any], depth: int) -> None:
        if id(co) in seen:
            return
        seen.add(id(co))
        instructions = list(dis.get_instructions(co))
        for i, ins in enumerate(instructions):
            nxt = instructions[i + 1] if i + 1 < len(instructions) else None
            after = nxt.argval if nxt is not None and nxt.opname in _ATTRIBUTE_OPS else None
            if ins.opname == "LOAD_CONST":
                const = ins.argval
                if isinstance(const, types.CodeType):
                    code(const, globs, depth)
                elif isinstance(const, str) and (
                    after in _TRANSFORMS or _transform_argument(instructions, i)
                ):
                    continue  # a replacement or separator, never searched for
                else:
                    value(const, depth)
            elif ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in globs:
                target = globs[ins.argval]
                if isinstance(target, types.ModuleType):
                    if target is re and after is not None and after not in _TRANSFORMS:
                        # re.search(<string>, ...): the strings of this code may be patterns
                        dynamic.update(c for c in co.co_consts if isinstance(c, str))
                    elif after is not None and target is not re:
                        value(getattr(target, after, None), depth)
                elif after in _TRANSFORMS and isinstance(target, re.Pattern):
                    continue  # PATTERN.sub(...): rewrites the text, does not decide
                else:
                    value(target, depth)

    value(fn, 0)
    return patterns, strings, dynamic


#: Detectors that answer only with a regular-expression match (read in their code: every
#: non-None return is the snippet of a match), so their strings are gates, not answers: the
#: literals their expressions require are enough. A detector changed to answer on a substring
#: test alone must leave this set (tests/waf/test_shortcuts.py would catch it on the data).
REGEX_DECIDED = frozenset({"code_injection", "command_injection", "xss_attribute", "xss_tags"})
#: Detectors that answer nothing unless a gate pattern matches the text (read in their code:
#: the SQL tokenizer is not literal, but it starts only when its gate finds a SQL character or
#: keyword). The gate's literals stand for the detector. Given as module and name, resolved at
#: load: if the gate moved or is not a pattern, the detector simply runs on every value.
#: Several gate patterns: the detector starts when any of them matches (the SQL gate also lets
#: through a comparison word after a logic word, "1 and 1 not between 0 and 1", found by
#: _PREFILTER_COMPARISON first), so the literals of all of them stand for it.
GATED = {"sqli_syntax": ("cognitionos.waf._sqli", ("_PREFILTER", "_PREFILTER_COMPARISON"))}


def _gate_literals(name: str) -> _Literals | None:
    where = GATED.get(name)
    if where is None:
        return None
    import importlib

    literals: set[str] = set()
    for attribute in where[1]:
        try:
            gate = getattr(importlib.import_module(where[0]), attribute)
        except (ImportError, AttributeError):
            return None
        found = required_literals(gate) if isinstance(gate, re.Pattern) else None
        if found is None:
            return None
        literals |= found
    return frozenset(literals)


def detector_literals(
    fn: Callable[..., Any], *, regex_decided: bool = False
) -> tuple[_Literals, _Literals] | None:
    """Literals one of which ``fn`` needs in its text to fire, or None if it needs none.

    The union over everything the detector reaches: each regular expression's required
    literals, and every string it holds (a substring test or a set lookup fires only when the
    string is in the text; not counted with ``regex_decided``). One expression that requires
    nothing makes the whole detector unfilterable. The second set holds the prefixes of
    patterns anchored at the start of the text (compared with the text's start only).
    """
    patterns, strings, dynamic = _reach(fn)
    literals: set[str] = set()
    anchored: set[str] = set()
    for pattern in patterns:
        start = anchored_prefixes(pattern)
        if start is not None:
            anchored |= start
            continue
        found = required_literals(pattern)
        if found is None:
            return None
        literals |= found
    for text in () if regex_decided else strings:
        if text:
            literals.add(text.lower())
    for text in dynamic:
        # a string of code that calls the re module may be compiled there: a pattern too
        if not text:
            continue  # "" as a pattern matches everywhere, but it is a replacement, not a test
        try:
            re.compile(text)
        except re.error:
            continue  # not a valid pattern, so never compiled
        found = required_literals(text)
        if found is None:
            return None
        literals |= found
    return frozenset(literals), frozenset(anchored)


class LiteralPrefilter:
    """Which detectors can fire on a plain value, by one multi-literal scan.

    ``always``: detectors that are run on every value (no literal requirement, or not literal
    by nature).
    """

    def __init__(
        self, detectors: dict[str, Callable[..., Any]], always: Iterable[str] = ()
    ) -> None:
        import ahocorasick  # type: ignore[import-not-found]

        self.always = set(always)
        #: One bit per detector: the scan ORs the bits of the literals it finds.
        self.bits = {name: 1 << i for i, name in enumerate(detectors)}
        by_literal: dict[str, set[str]] = {}
        by_prefix: dict[str, set[str]] = {}
        for name, fn in detectors.items():
            if name in self.always:
                continue
            gate = _gate_literals(name)
            found = (
                (gate, frozenset())
                if gate
                else detector_literals(fn, regex_decided=name in REGEX_DECIDED)
            )
            if found is None:
                self.always.add(name)
                continue
            literals, anchored = found
            for literal in literals:
                by_literal.setdefault(literal, set()).add(name)
            for prefix in anchored:
                by_prefix.setdefault(prefix, set()).add(name)
        self._automaton = ahocorasick.Automaton()
        for literal, names in by_literal.items():
            self._automaton.add_word(literal, sum(self.bits[n] for n in names))
        self._automaton.make_automaton()
        #: the first three characters of every prefix (all of a shorter one): most texts start
        #: with none of them, and the trie walk is skipped
        self._heads = frozenset(prefix[:3] for prefix in by_prefix)  # empty: no prefixes
        #: the same trie as plain sets, walked with set lookups (cheaper than its method calls):
        #: every start of a prefix, and each prefix's bits
        self._stems = frozenset(p[:i] for p in by_prefix for i in range(1, len(p) + 1))
        self._prefix_bits = {p: sum(self.bits[n] for n in names) for p, names in by_prefix.items()}
        self.filterable = frozenset(detectors) - self.always
        self._always_mask = sum(self.bits[n] for n in self.always)

    def mask_for(self, value: str) -> int | None:
        """The bits of the detectors that may fire on ``value``; None when it is not plain."""
        if not value or len(value) > 8192 or _NOT_PLAIN.search(value) is not None:
            return None
        lower = value.lower()
        mask = self._always_mask
        scan = self._automaton.iter
        for _end, bits in scan(lower):
            mask |= bits
        if " " not in lower:
            starts: tuple[str, ...] = (lower,)
        else:
            # the detectors also read the value with its blanks removed, and squeezed
            compact = lower.replace(" ", "")
            for _end, bits in scan(compact):
                mask |= bits
            starts = (lower.lstrip(), compact)
            if "  " in lower:
                squeezed = _SPACES.sub(" ", lower)
                for _end, bits in scan(squeezed):
                    mask |= bits
                starts = (*starts, squeezed.lstrip())
        # anchored patterns: a prefix at the very start of the stripped text (a walk down the
        # trie from the text's first character, only when a prefix can start it)
        heads = self._heads
        for text in starts:
            if text[:3] in heads or text[:2] in heads or text[:1] in heads:
                mask |= self._anchored_bits(text)
        return mask

    def _anchored_bits(self, text: str) -> int:
        """The bits of every prefix ``text`` starts with (a walk down the prefix trie)."""
        stems = self._stems
        prefix_bits = self._prefix_bits
        mask = 0
        for length in range(1, min(len(text), _MAX_LENGTH) + 1):
            head = text[:length]
            if head not in stems:
                break
            mask |= prefix_bits.get(head, 0)
        return mask

    def detectors_for(self, value: str) -> set[str] | None:
        """The detectors that may fire on ``value``, or None when it is not plain (run all)."""
        mask = self.mask_for(value)
        if mask is None:
            return None
        return {name for name, bit in self.bits.items() if mask & bit}


@functools.cache
def literal_prefilter() -> LiteralPrefilter | None:
    """The prefilter over the built-in detectors, built once per process (it is immutable), or
    None when ``pyahocorasick`` is not installed (every detector then runs on every value)."""
    try:
        import ahocorasick  # noqa: F401
    except ImportError:
        return None
    from cognitionos.waf._ruleset import BUILTIN_RULES

    return LiteralPrefilter({r.detector: r.check for r in BUILTIN_RULES})
