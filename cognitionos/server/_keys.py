"""API key format: ``cos_<env>_<id><secret><checksum>``, shown once, stored as a hash.

The layout follows GitHub's token format: a type prefix a scanner can grep for, a random
body and a CRC32 checksum in base62 so a typo is rejected without a database lookup::

    token = new_token("live")          # "cos_live_" + 8 id + 32 secret + 6 checksum chars
    parsed = parse_token(token.text)   # ParsedToken(environment="live", key_id=..., ...)
    verify_secret(parsed, stored_hash) # hmac.compare_digest of SHA-256 digests

The key id (the first 8 body characters) is public: it names the key in listings and is
how the server finds the row; the rest is secret. Only ``sha256(token)`` is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

import attrs

from cognitionos.errors import ConfigurationError

__all__ = [
    "ENVIRONMENTS",
    "ParsedToken",
    "checksum",
    "new_token",
    "parse_token",
    "token_hash",
    "verify_secret",
]

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
ENVIRONMENTS = ("live", "test")
ID_LEN = 8
SECRET_LEN = 32
CHECKSUM_LEN = 6  # 62**6 > 2**32: every CRC32 fits


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """CRC32 of ``body`` in 6 base62 digits (left-padded with ``0``)."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LEN)


@attrs.frozen(slots=True)
class ParsedToken:
    """A token split into its parts; ``text`` is the whole token."""

    environment: str
    key_id: str
    text: str


def new_token(environment: str = "live") -> ParsedToken:
    """A fresh random token for ``environment`` (``live`` or ``test``)."""
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    body = "".join(secrets.choice(ALPHABET) for _ in range(ID_LEN + SECRET_LEN))
    text = f"cos_{environment}_{body}{checksum(body)}"
    return ParsedToken(environment, body[:ID_LEN], text)


def parse_token(text: str) -> ParsedToken | None:
    """The parts of ``text``; ``None`` unless it is well-formed with a valid checksum."""
    for env in ENVIRONMENTS:
        prefix = f"cos_{env}_"
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            break
    else:
        return None
    if len(rest) != ID_LEN + SECRET_LEN + CHECKSUM_LEN or any(c not in ALPHABET for c in rest):
        return None
    body, check = rest[:-CHECKSUM_LEN], rest[-CHECKSUM_LEN:]
    if not hmac.compare_digest(checksum(body), check):
        return None
    return ParsedToken(env, body[:ID_LEN], text)


def token_hash(text: str) -> str:
    """Hex SHA-256 of the whole token: what the database keeps (the secret has 190 bits)."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def verify_secret(token: ParsedToken, stored_hash: str) -> bool:
    """Constant-time comparison of the token's hash with the stored one."""
    return hmac.compare_digest(token_hash(token.text), stored_hash)
