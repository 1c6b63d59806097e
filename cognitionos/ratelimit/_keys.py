"""Storage keys for shared backends: safely encoded, length-capped, cluster hash-tagged."""

from __future__ import annotations

import hashlib
import re

from cognitionos.errors import ConfigurationError

__all__ = ["MAX_KEY_LENGTH", "check_key", "encode_key"]

#: Longer caller keys are stored as a prefix plus a SHA-256 digest.
MAX_KEY_LENGTH = 200

_UNSAFE = re.compile(r"[^\x21-\x7e]|[{}%]")


def check_key(key: object) -> str:
    """Validate a caller's key: a non-empty string."""
    if not isinstance(key, str):
        raise ConfigurationError(f"a rate-limit key must be a string, got {type(key).__name__}")
    if not key:
        raise ConfigurationError("a rate-limit key must not be empty")
    return key


def encode_key(key: str) -> str:
    """Printable ASCII without braces (they delimit Redis hash tags) and at most 200 characters.

    ``encode_key("ip:1.2.3.4") == "ip:1.2.3.4"``; spaces, braces, ``%`` and non-ASCII are
    percent-encoded (UTF-8); a longer result keeps 128 characters and a digest of the rest.
    """
    if len(key) <= MAX_KEY_LENGTH and _UNSAFE.search(key) is None:
        return key  # the common case: nothing to encode
    encoded = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), key)
    if len(encoded) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        encoded = f"{encoded[:128]}~{digest}"
    return encoded
