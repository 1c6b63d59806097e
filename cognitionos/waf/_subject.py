"""The value under inspection and its lazily computed normalized variants."""

from __future__ import annotations

import re

from cognitionos.waf._normalize import (
    decode_all,
    decode_base64_variants,
    decode_utf7,
    normalize_path,
    remove_sql_comments,
    strip_tags,
)

__all__ = ["Subject"]

_WS_RUN = re.compile(r"\s+")
_NEWLINES = re.compile(r"[\r\n]+")
_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]+")
_IFS = re.compile(r"\$(?:\{ifs\}|ifs)(?:\$9|\$\{9\})?")
_SHELL_NOISE = re.compile(r"""['"\\^]""")
_EMPTY_VARS = re.compile(r"\$(?:@|\*|\{[#!?]?\}|[0-9])(?=[a-z/])")
_BRACE_LIST = re.compile(r"\{,?([\w./-]{1,40}),([^{}]{1,200})\}")
_UTF7_HINT = re.compile(r"\+a[a-z0-9]{1,3}-", re.IGNORECASE)


class Subject:
    """One inspected value: ``raw`` as parsed, ``text`` fully decoded, and variants on demand.

    Variants are computed once per value and shared by every detector.
    """

    __slots__ = (
        "_b64",
        "_compact",
        "_nocomment",
        "_path",
        "_shell",
        "_squeezed",
        "_stripped",
        "_utf7",
        "kind",
        "lower",
        "name",
        "raw",
        "text",
    )

    def __init__(self, raw: str, kind: str = "arg", name: str = "") -> None:
        self.raw = raw
        self.kind = kind
        self.name = name
        self.text = decode_all(raw)
        self.lower = self.text.lower()
        self._compact: str | None = None
        self._shell: str | None = None
        self._squeezed: str | None = None
        self._path: str | None = None
        self._stripped: str | None = None
        self._nocomment: str | None = None
        self._b64: list[str] | None = None
        self._utf7: str | None = None

    @property
    def compact(self) -> str:
        """Lowercase with all whitespace and control characters removed (``java\\tscript:``)."""
        if self._compact is None:
            self._compact = _CONTROL.sub("", self.lower)
        return self._compact

    @property
    def shell(self) -> str:
        """Lowercase with shell quoting noise removed: ``c'a't $IFS/etc`` -> ``cat  /etc``."""
        if self._shell is None:
            # "+" is a space in form encoding; shells never need it between words.
            value = _IFS.sub(" ", self.lower).replace("+", " ")
            # A line break separates commands like ";"; other whitespace runs collapse to one space,
            # which also keeps every whitespace quantifier in the command regexes cheap.
            value = _WS_RUN.sub(" ", _NEWLINES.sub(";", value))
            value = _EMPTY_VARS.sub("", value)
            value = _SHELL_NOISE.sub("", value)
            value = _BRACE_LIST.sub(lambda m: f"{m.group(1)} {m.group(2).replace(',', ' ')}", value)
            self._shell = value
        return self._shell

    @property
    def squeezed(self) -> str:
        """Lowercase with every whitespace run (line breaks too) collapsed to one space."""
        if self._squeezed is None:
            self._squeezed = _WS_RUN.sub(" ", self.lower)
        return self._squeezed

    @property
    def path(self) -> str:
        """Lowercase path-normalized form (backslashes, ``0x2e``, ``//``, ``/./``, lenient escapes).

        Non-ASCII text is normalized before lowercasing: case folding would turn the overlong
        UTF-8 lead byte U+00C0 into U+00E0, the lead of the 3-byte form.
        """
        if self._path is None:
            text = self.text
            self._path = (
                normalize_path(self.lower) if text.isascii() else normalize_path(text).lower()
            )
        return self._path

    @property
    def stripped(self) -> str:
        """Lowercase with short tags removed (``o<x>nfocus`` -> ``onfocus``)."""
        if self._stripped is None:
            self._stripped = strip_tags(self.lower)
        return self._stripped

    @property
    def nocomment(self) -> str:
        """Lowercase with SQL/C comments replaced by spaces."""
        if self._nocomment is None:
            self._nocomment = remove_sql_comments(self.lower)
        return self._nocomment

    @property
    def utf7(self) -> str:
        """Lowercase UTF-7 decoding when the value carries UTF-7 shifted runs, else ``""``."""
        if self._utf7 is None:
            self._utf7 = decode_utf7(self.text).lower() if _UTF7_HINT.search(self.text) else ""
        return self._utf7

    @property
    def base64(self) -> list[str]:
        """Lowercased text decodings of embedded base64 runs."""
        if self._b64 is None:
            text = self.text
            # Only dense tokens can be base64 (prose and user agents have spaces every few chars).
            eligible = len(text) >= 16 and " " not in text[:64] and self.kind != "path"
            self._b64 = [v.lower() for v in decode_base64_variants(text)] if eligible else []
        return self._b64
