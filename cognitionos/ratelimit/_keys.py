"""Caller keys as stored by the shared backends: one encoding for every query of every backend.

A caller key is any non-empty ``str``: NUL bytes, lone surrogates, braces and a megabyte
of text are all valid keys and never reach a backend as they are. :func:`encode_key`
turns a key into printable ASCII of at most :data:`MAX_KEY_LENGTH` characters, and the
SQL and Redis backends use it for every state key, ban record and violation list, so no
key can make a query fail (which would trip ``on_backend_error`` for every caller).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

from cognitionos.errors import ConfigurationError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "check_key",
    "decode_key",
    "encode_key",
    "encode_name",
]

#: Longer caller keys are stored as a prefix plus a SHA-256 digest of the whole key.
MAX_KEY_LENGTH = 200
#: Encoded limit names (part of every storage key) longer than this are digested too.
MAX_NAME_LENGTH = 40

_UNSAFE = re.compile(r"[^\x21-\x7e]|[{}%]")
# Marks the digest form. A short encoded key never holds "%~": every "%" it holds starts a
# two-hex-digit escape. So no short key can be crafted to equal a long key's stored form.
_DIGEST_MARK = "%~"


def check_key(key: object) -> str:
    """Validate a caller's key: a non-empty string."""
    if not isinstance(key, str):
        raise ConfigurationError(f"a rate-limit key must be a string, got {type(key).__name__}")
    if not key:
        raise ConfigurationError("a rate-limit key must not be empty")
    return key


def _escape(match: re.Match[str]) -> str:
    # surrogatepass: a lone surrogate gets bytes no valid character encodes to (ED A0..BF)
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8", "surrogatepass"))


def _digest(key: str, size: int) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:size]


def encode_key(key: str) -> str:
    """Printable ASCII without braces (they delimit Redis hash tags) and at most 200 characters.

    ``encode_key("ip:1.2.3.4") == "ip:1.2.3.4"``; spaces, braces, ``%``, control characters,
    non-ASCII and lone surrogates are percent-encoded (UTF-8, surrogates passed through), so
    distinct short keys stay distinct. A longer result keeps its first 128 characters, then
    ``%~`` and the SHA-256 of the whole key: 194 characters whatever the key's size.
    """
    if len(key) <= MAX_KEY_LENGTH and _UNSAFE.search(key) is None:
        return key  # the common case: nothing to encode
    # encoding is per character, so the head of a huge key is the encoding of its head
    encoded = _UNSAFE.sub(_escape, key[: MAX_KEY_LENGTH + 1])
    if len(encoded) > MAX_KEY_LENGTH or len(key) > MAX_KEY_LENGTH:
        encoded = f"{encoded[:128]}{_DIGEST_MARK}{_digest(key, 64)}"
    return encoded


def encode_name(name: str) -> str:
    """A limit name as it appears in storage keys: :func:`encode_key`, at most 40 characters.

    Longer names keep 6 characters, ``%~`` and 32 hex digits (128 bits) of SHA-256.
    """
    encoded = _UNSAFE.sub(_escape, name[: MAX_NAME_LENGTH + 1])
    if len(encoded) > MAX_NAME_LENGTH or len(name) > MAX_NAME_LENGTH:
        encoded = f"{encoded[:6]}{_DIGEST_MARK}{_digest(name, 32)}"
    return encoded


def decode_key(stored: str) -> str:
    """The caller key of a stored key (exact for keys stored whole; long keys stay digested)."""
    if _DIGEST_MARK in stored:
        return stored
    return unquote(stored, errors="surrogatepass")
