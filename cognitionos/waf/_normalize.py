"""Normalization: small composable ``str -> str`` transforms and the pipeline built from them.

Each transform is total (never raises), bounded in work (linear in its input)
and idempotent where the underlying encoding allows. ``decode_all`` applies the
decoding transforms the detectors rely on; ``explain_steps`` shows every step.
"""

from __future__ import annotations

import binascii
import functools
import html
import html.entities
import re
import unicodedata
from collections.abc import Callable, Sequence
from urllib.parse import unquote_to_bytes

__all__ = [
    "Transform",
    "compress_whitespace",
    "decode_all",
    "decode_base64_variants",
    "decode_js_escapes",
    "decode_overlong_utf8",
    "decode_utf7",
    "explain_steps",
    "html_entity_decode",
    "lowercase",
    "normalize_path",
    "plus_to_space",
    "remove_nulls",
    "remove_sql_comments",
    "strip_tags",
    "unicode_nfkc",
    "url_decode",
    "url_decode_repeated",
]

Transform = Callable[[str], str]

_PCT = re.compile(r"%(?:[0-9a-fA-F]{2}|[uU][0-9a-fA-F]{4})")
_PCT_RUN = re.compile(r"(?:%[0-9a-fA-F]{2})+")
_PCT_U = re.compile(r"%[uU]([0-9a-fA-F]{4})")
# Overlong UTF-8: 2-byte forms with lead C0/C1, 3-byte forms E0 80..9F and 4-byte forms
# F0 80..8F encode ASCII-range characters; some decoders accept them, so attackers use them to
# hide '.', '/', '<'.
_OVERLONG2 = re.compile(rb"[\xc0\xc1][\x80-\xbf]")
_OVERLONG3 = re.compile(rb"\xe0[\x80-\x9f][\x80-\xbf]")
_OVERLONG4 = re.compile(rb"\xf0[\x80-\x8f][\x80-\xbf][\x80-\xbf]")


# surrogateescape'd bytes (U+DC80..U+DCFF) back to the latin-1 character of the same byte
_ESCAPED_BYTES = {c: c - 0xDC00 for c in range(0xDC80, 0xDD00)}
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _fold_overlong(raw: bytes) -> bytes:
    if b"\xf0" in raw and _OVERLONG4.search(raw):
        # 4-byte forms F0 80..8F xx xx: their last byte for "/" (AF) would not survive NFKC as text
        raw = _OVERLONG4.sub(
            lambda m: bytes([((m.group()[2] & 0x3F) << 6 | (m.group()[3] & 0x3F)) & 0x7F]), raw
        )
    if _OVERLONG2.search(raw) or _OVERLONG3.search(raw):
        raw = _OVERLONG3.sub(
            lambda m: bytes([((m.group()[1] & 0x1F) << 6 | (m.group()[2] & 0x3F)) & 0xFF]), raw
        )
        raw = _OVERLONG2.sub(
            lambda m: bytes([((m.group()[0] & 0x1F) << 6 | (m.group()[1] & 0x3F)) & 0x7F]), raw
        )
    return raw


def _decode_bytes(raw: bytes) -> str:
    raw = _fold_overlong(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# "%xx" hex pairs (either case) of ASCII bytes -> the character: the common case, decoded
# without the bytes round trip.
_HEX_ASCII = {
    f"{hi}{lo}": chr(int(hi + lo, 16)) for hi in "01234567" for lo in "0123456789abcdefABCDEF"
}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _url_decode_ascii(value: str) -> str | None:
    """Percent-decoding of an ASCII string whose escapes are all ASCII bytes, else None."""
    pieces = value.split("%")
    out = [pieces[0]]
    table = _HEX_ASCII
    for piece in pieces[1:]:
        char = table.get(piece[:2])
        if char is not None:
            out.append(char)
            out.append(piece[2:])
        elif len(piece) >= 2 and piece[0] in _HEX_DIGITS and piece[1] in _HEX_DIGITS:
            return None  # a non-ASCII byte: UTF-8 / latin-1 / overlong handling needed
        else:
            out.append("%")
            out.append(piece)
    return "".join(out)


def _unquote_ascii(value: str) -> bytes | None:
    """Percent-decoding of an ASCII ``value`` to bytes in C, or None to decode it the careful way.

    ``binascii.a2b_qp`` decodes quoted-printable ``=XX`` escapes at C speed: with every ``=``
    escaped as ``=3D`` and every ``%`` turned into ``=``, it decodes ``%XX`` exactly as
    ``unquote_to_bytes`` does, except around line breaks (soft line breaks) and invalid escapes
    (``%zz``, a trailing ``%``), which it treats differently. Values with line breaks are left
    to the careful path; an invalid escape always makes the result longer than ``len(value) -
    2 * value.count("%")`` (only a valid escape turns three characters into one byte), so the
    length says when to fall back.
    """
    if not value.isascii() or "\n" in value or "\r" in value:
        return None
    raw = binascii.a2b_qp(value.replace("=", "=3D").replace("%", "=").encode("ascii"))
    if len(raw) != len(value) - 2 * value.count("%"):
        return None
    return raw


def url_decode(value: str) -> str:
    """One pass of percent-decoding (``%XX`` as UTF-8 with latin-1 fallback, and ``%uXXXX``).

    Invalid escapes are left as they are: ``"%zz%41" -> "%zzA"``. Bytes that are not valid
    UTF-8 decode one by one as latin-1 (``%E9`` -> ``é``), overlong forms to ASCII.
    """
    if "%" not in value:
        return value
    if "%u" in value or "%U" in value:
        value = _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), value)
        if "%" not in value:
            return value
    raw = _unquote_ascii(value)
    if raw is not None and raw.isascii():
        return raw.decode("ascii")
    if raw is None and value.isascii():
        fast = _url_decode_ascii(value)  # invalid escapes or line breaks, all ASCII bytes
        if fast is not None:
            return fast
    if raw is None:
        try:
            raw = unquote_to_bytes(value)
        except UnicodeEncodeError:  # lone surrogates in the input: decode run by run instead
            return _PCT_RUN.sub(
                lambda m: _decode_bytes(bytes.fromhex(m.group().replace("%", ""))), value
            )
    if b"\xc0" in raw or b"\xc1" in raw or b"\xe0" in raw or b"\xf0" in raw:
        raw = _fold_overlong(raw)
    text = raw.decode("utf-8", "surrogateescape")
    if text.isascii():
        return text
    escaped = len(_ESCAPED_BYTE.findall(text))
    if not escaped:
        return text
    if escaped * 16 < len(text):
        # a few invalid bytes in a long text: one callback each beats a dict lookup per character
        return _ESCAPED_BYTE.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)
    return text.translate(_ESCAPED_BYTES)


def url_decode_repeated(value: str, max_rounds: int = 4) -> str:
    """Percent-decode until nothing changes or ``max_rounds`` passes (double encoding)."""
    for _ in range(max_rounds):
        if not _PCT.search(value):
            break
        decoded = url_decode(value)
        if decoded == value:
            break
        value = decoded
    return value


def plus_to_space(value: str) -> str:
    """``+`` as space, as in ``application/x-www-form-urlencoded``."""
    return value.replace("+", " ")


_OVERLONG_TEXT = re.compile("[\u00c0\u00c1][\u0080-\u00bf]")


def decode_overlong_utf8(value: str) -> str:
    """Fold overlong UTF-8 pairs that survived as latin-1 text (``\\xc0\\xae`` -> ``.``)."""
    if "\u00c0" not in value and "\u00c1" not in value:
        return value
    return _OVERLONG_TEXT.sub(
        lambda m: chr(((ord(m.group()[0]) & 0x1F) << 6 | (ord(m.group()[1]) & 0x3F)) & 0x7F), value
    )


@functools.cache
def _entity_pattern() -> re.Pattern[str]:
    """Every character reference ``html.unescape`` decodes, as one regex (built on first use).

    Named references are a trie of the HTML5 names, so the engine takes the longest name that
    starts at an ``&``, as ``html.unescape`` does, and an ``&`` that starts no reference costs
    one failed step instead of ``html.unescape``'s dictionary lookups of up to 32 prefixes.
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for name in html.entities.html5:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return (
            body + "?"
            if "" in node and len(branches) > 1
            else ("(?:" + body + ")?" if "" in node else body)
        )

    return re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|" + emit(trie) + ")")


@functools.lru_cache(maxsize=4096)
def _decode_reference(ref: str) -> str:
    return html.unescape(ref)


def _one_reference(m: re.Match[str]) -> str:
    return _decode_reference(m.group())


def html_entity_decode(value: str) -> str:
    """Decode HTML character references, also padded numeric ones and ones without ``;``.

    The same decoding as ``html.unescape``; applied twice so ``&amp;lt;`` becomes ``<``.
    """
    if "&" not in value:
        return value
    pattern = _entity_pattern()
    for _ in range(2):
        decoded = pattern.sub(_one_reference, value)
        if decoded == value:
            break
        value = decoded
    return value


_JS_ESCAPE = re.compile(
    r"\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([0-7]{3}))"
)


def _js_char(m: re.Match[str]) -> str:
    for group in (m.group(1), m.group(2), m.group(3)):
        if group is not None:
            code = int(group, 16)
            return chr(code) if code <= 0x10FFFF else m.group()
    return chr(int(m.group(4), 8))


def decode_js_escapes(value: str) -> str:
    """Decode ``\\uXXXX``, ``\\u{X}``, ``\\xHH`` and ``\\NNN`` (octal) escapes."""
    if "\\" not in value:
        return value
    return _JS_ESCAPE.sub(_js_char, value)


_UTF7_RUN = re.compile(r"\+([A-Za-z0-9/]{2,64})-?")


def decode_utf7(value: str) -> str:
    """Decode UTF-7 runs (``+ADw-script+AD4-`` -> ``<script>``) that decode to ASCII punctuation."""
    if "+" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        try:
            text = ("+" + m.group(1) + "-").encode("ascii").decode("utf-7")
        except (UnicodeDecodeError, UnicodeEncodeError):
            return m.group()
        # Plain base64-looking words (``+AND+``) are not UTF-7 text; keep only decodings to ASCII.
        if text and all(32 <= ord(c) < 127 or c in "\r\n\t" for c in text):
            return text
        return m.group()

    return _UTF7_RUN.sub(repl, value)


def unicode_nfkc(value: str) -> str:
    """Unicode NFKC: full-width and compatibility forms fold to ASCII (U+FF53 -> ``s``)."""
    if value.isascii():
        return value
    return unicodedata.normalize("NFKC", value)


def remove_nulls(value: str) -> str:
    """Drop NUL bytes, which C-based backends treat as terminators."""
    return value.replace("\x00", "") if "\x00" in value else value


# Where a comment construct may start: the text between two of them is copied in one slice.
_COMMENT_MARK = re.compile(r"/\*|\*/|--|#")


def remove_sql_comments(value: str) -> str:
    """Replace SQL comments (``/* */``, ``--``, ``#``) by a space; keep ``/*! ... */`` contents."""
    if "/*" not in value and "--" not in value and "#" not in value:
        return value
    out: list[str] = []
    search = _COMMENT_MARK.search
    i = 0
    n = len(value)
    while True:
        m = search(value, i)
        if m is None:
            out.append(value[i:])
            return "".join(out)
        j = m.start()
        out.append(value[i:j])
        out.append(" ")
        mark = m.group()
        if mark == "/*":
            if value.startswith("!", j + 2):
                # MySQL executable comment: the marker (and a version number) go, the body stays
                i = j + 3
                while i < n and value[i].isdigit():
                    i += 1
            else:
                end = value.find("*/", j + 2)
                i = n if end < 0 else end + 2
        elif mark == "*/":
            i = j + 2
        else:  # "--" or "#": to the end of the line
            end = value.find("\n", j)
            i = n if end < 0 else end


_WS = re.compile(r"\s+")


def compress_whitespace(value: str) -> str:
    """Collapse runs of whitespace (including vertical tab, form feed, NBSP) to one space."""
    return _WS.sub(" ", value.replace("\u00a0", " ")).strip()


def lowercase(value: str) -> str:
    """Case folding (``str.lower``)."""
    return value.lower()


_HEX_DOT = re.compile(r"0x(2e|2f|5c)", re.IGNORECASE)
_SLASHES = re.compile(r"/{2,}")
_SELF = re.compile(r"/(?:\./)+")

# Escapes a strict decoder leaves alone but lenient ones read: "%" and two letters or digits
# that are not both hex. Decoders that take a digit's value as "letter - 'a' + 10" with no range
# check (IIS once did) read "%1u" as 0x2e ("."), "%c0%qf" as an overlong "/".
_LENIENT_ESCAPE = re.compile(r"%([0-9a-z][g-z]|[g-z][0-9a-z])", re.IGNORECASE)
# A "%" that starts no escape at all ("%%2e", "%."): lenient decoders drop it.
# Matched as runs (a run backtracks to leave its last "%" before a real escape): one match per
# run instead of one per character of a long "%%%%" run.
_STRAY_PERCENT = re.compile(r"%+(?![0-9a-zA-Z]{2})")
# Overlong UTF-8 that survived decoding as latin-1 text (the bytes were invalid UTF-8), case
# folded either way: 2-byte C0/C1 xx, 3-byte E0 80..9F xx, 4-byte F0 80..8F xx xx; and a
# 2-byte lead followed by an ASCII byte instead of a continuation byte ("%c0%2e"), which
# decoders that keep the low six bits read as that ASCII character. One leading character class
# (the engine skips other characters at C speed); _fold_overlong_text sorts the forms out.
_OVERLONG_TEXT_ANY = re.compile(
    "[\u00c0\u00c1\u00d0\u00e0\u00e1\u00f0](?:[\u0080-\u00bf]{1,3}|(?=[./\\\\]))"
)
#: Characters that some decoders and best-fit code-page conversions turn into "." / "/" / "\\"
#: (the NFKC step already folds the full-width and small forms of each).
_PATH_LOOKALIKES = (
    ("\u2024", "."),  # one dot leader
    ("\u3002", "."),  # ideographic full stop
    ("\uff61", "."),  # halfwidth ideographic full stop
    ("\ufe52", "."),  # small full stop
    ("\uff0e", "."),  # fullwidth full stop
    ("\u2215", "/"),  # division slash
    ("\u2044", "/"),  # fraction slash
    ("\u29f8", "/"),  # big solidus
    ("\uff0f", "/"),  # fullwidth solidus
    ("\u2216", "\\"),  # set minus
    ("\u29f5", "\\"),  # reverse solidus operator
    ("\uff3c", "\\"),  # fullwidth reverse solidus
    ("\ufe68", "\\"),  # small reverse solidus
)


_PATH_LOOKALIKE = re.compile("[" + "".join(char for char, _ in _PATH_LOOKALIKES) + "]")


def _lenient_digit(char: str) -> int:
    return int(char) if char.isdigit() else ord(char.lower()) - ord("a") + 10


def _lenient_table() -> dict[str, str]:
    """Two lenient digits -> what they stand for in a path (an escape's text is kept unless it
    reads as a separator, a dot, or a byte of an overlong sequence)."""
    alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    table = {}
    for hi in alnum:
        for lo in alnum:
            value = (_lenient_digit(hi) * 16 + _lenient_digit(lo)) & 0xFF
            keep = value >= 0x80 or chr(value) in "./\\"
            table[hi + lo] = chr(value) if keep else "%" + hi + lo
    return table


_LENIENT = _lenient_table()


def _lenient_byte(m: re.Match[str]) -> str:
    return _LENIENT[m.group(1)]


_CONTINUATION_MAX = {"\u00f0": "\u008f", "\u00d0": "\u008f", "\u00e0": "\u009f", "\u00c0": "\u009f"}


def _fold_overlong_text(m: re.Match[str]) -> str:
    return _fold_overlong_form(m.group())


@functools.lru_cache(maxsize=2048)
def _fold_overlong_form(text: str) -> str:
    lead, tail = text[0], text[1:]
    if not tail:  # an overlong lead before an ASCII byte: the byte stands
        return ""
    # The longest form this lead starts whose second byte is in range: 4 bytes (F0 80..8F),
    # 3 bytes (E0 80..9F), else 2 bytes (C0/C1 xx). Case folding made C0/C1 into E0/E1 and
    # F0 into D0 on the way, so both spellings of each lead are read.
    size = 2
    if lead in "\u00f0\u00d0" and len(tail) == 3 and tail[0] <= _CONTINUATION_MAX[lead]:
        size = 4
    elif lead in "\u00e0\u00c0" and len(tail) >= 2 and tail[0] <= _CONTINUATION_MAX[lead]:
        size = 3
    elif lead in "\u00f0\u00d0":
        return text
    value = 0
    for char in text[1:size]:
        value = value << 6 | (ord(char) & 0x3F)
    if size == 2:
        value |= (ord(lead) & 0x01) << 6
    return chr(value & 0x7F) + text[size:]


def _decode_path_spellings(value: str) -> str:
    """What lenient decoders make of a value's leftover escapes, overlong and look-alike forms."""
    if "%" in value:
        value = _LENIENT_ESCAPE.sub(_lenient_byte, value)
        value = _STRAY_PERCENT.sub("", value)
        if "%" in value:
            value = url_decode_repeated(value)
    if not value.isascii():
        value = _OVERLONG_TEXT_ANY.sub(_fold_overlong_text, value)
        # str.replace per character present: C speed, where translate() costs a dictionary
        # lookup per character of the whole (non-ASCII) value
        if _PATH_LOOKALIKE.search(value):
            for char, ascii_char in _PATH_LOOKALIKES:
                if char in value:
                    value = value.replace(char, ascii_char)
    return value


def normalize_path(value: str) -> str:
    """Backslashes to ``/``, hex-spelled dots/slashes (``0x2e``) decoded, ``//``/``/./`` collapsed.

    Also what lenient decoders read in a decoded value: stray ``%`` dropped, IIS-style
    non-hex escapes (``%1u`` is ``.``), overlong UTF-8 left as latin-1 text (2-, 3- and 4-byte,
    and a 2-byte lead before an ASCII byte), look-alike dots and slashes from other Unicode
    blocks. ``..`` segments are kept: they are what path traversal detection looks for.
    """
    if "%" in value or not value.isascii():
        value = _decode_path_spellings(value)
    value = _HEX_DOT.sub(lambda m: {"2e": ".", "2f": "/", "5c": "/"}[m.group(1).lower()], value)
    value = value.replace("\\", "/")
    value = _SLASHES.sub("/", value)
    previous = None
    while previous != value:
        previous = value
        value = _SELF.sub("/", value)
    return value


_TAG = re.compile(r"<[^<>]{0,40}>")


def strip_tags(value: str) -> str:
    """Remove short markup tags (``o<x>nfocus`` -> ``onfocus``), for split-keyword evasion."""
    if "<" not in value:
        return value
    return _TAG.sub("", value)


_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_PRINTABLE_BYTES = bytes(range(32, 127))


def decode_base64_variants(value: str, limit: int = 4096) -> list[str]:
    """Text decodings of base64 runs (>= 16 chars), at each of the 4 alignments.

    A keyword embedded at an arbitrary offset of an encoded blob shows up in one
    of the alignments. Non-text results are discarded.
    """
    import base64
    import binascii

    out: list[str] = []
    for m in _B64.finditer(value[:limit]):
        run = m.group().rstrip("=").replace("-", "+").replace("_", "/")
        for pad in ("", "A", "AA", "AAA"):
            data = pad + run
            if len(data) % 4 == 1:
                data = data[:-1]
            data += "=" * (-len(data) % 4)
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                continue
            # printable ASCII bytes: what deleting them leaves is the rest
            printable = len(raw) - len(raw.translate(None, _PRINTABLE_BYTES))
            if raw and printable >= 0.8 * len(raw):
                out.append(raw.decode("latin-1"))
    return out


#: The decoding steps every value goes through before detection, in order.
DECODE_STEPS: Sequence[tuple[str, Transform]] = (
    ("url_decode_repeated", url_decode_repeated),
    ("decode_overlong_utf8", decode_overlong_utf8),
    ("html_entity_decode", html_entity_decode),
    ("decode_js_escapes", decode_js_escapes),
    ("unicode_nfkc", unicode_nfkc),
    ("remove_nulls", remove_nulls),
)


def decode_all(value: str) -> str:
    """Apply :data:`DECODE_STEPS` twice at most (an entity may hide a %-escape and vice versa)."""
    if (
        value.isascii()
        and "%" not in value
        and "&" not in value
        and "\\" not in value
        and "\x00" not in value
    ):
        return value  # every step is the identity on such a value
    for _ in range(2):
        before = value
        for _name, step in DECODE_STEPS:
            value = step(value)
        if value == before:
            break
    return value


def explain_steps(value: str) -> list[tuple[str, str]]:
    """Each decoding step's name and output, for ``waf explain``."""
    steps: list[tuple[str, str]] = [("input", value)]
    for _name, step in DECODE_STEPS:
        value = step(value)
        steps.append((_name, value))
    steps.append(("remove_sql_comments", remove_sql_comments(value)))
    steps.append(("compress_whitespace", compress_whitespace(value)))
    steps.append(("lowercase", lowercase(value)))
    steps.append(("normalize_path", normalize_path(value)))
    return steps
