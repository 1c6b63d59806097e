"""Signers for tree heads: Ed25519 (publicly verifiable) or HMAC-SHA256 (shared secret).

Ed25519 (via the ``cryptography`` package, the ``audit`` extra) is the default
choice: anyone holding the public key can check a tree head, so the log owner
cannot deny or quietly replace a checkpoint it published. HMAC-SHA256 needs no
extra package, but verifying needs the same secret that signs, so a verifier
could also forge: it proves integrity only to parties who already hold the key.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any, Protocol

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError

__all__ = ["Ed25519Signer", "HmacSigner", "Signer", "tree_head_message"]


def tree_head_message(tree_size: int, timestamp: int, root_hash: bytes) -> bytes:
    """RFC 6962 3.5 TreeHeadSignature: version 0, type tree_hash 1, uint64 ts, uint64 size, root."""
    return struct.pack(">BBQQ", 0, 1, timestamp, tree_size) + root_hash


class Signer(Protocol):
    """Signs tree heads."""

    algorithm: str
    key_id: str

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message``."""
        ...


class Ed25519Signer:
    """Ed25519 signatures (RFC 8032) with a 32-byte private seed.

    ``Ed25519Signer.generate()`` makes a new key; keep ``private_bytes()`` secret
    and publish ``public_bytes()`` for verifiers.
    """

    algorithm = "ed25519"

    def __init__(self, private_key: bytes) -> None:
        ed = require(
            "cryptography.hazmat.primitives.asymmetric.ed25519",
            extra="audit",
            purpose="Ed25519 tree head signatures",
        )
        if not isinstance(private_key, bytes) or len(private_key) != 32:
            raise ConfigurationError("an Ed25519 private key is 32 raw bytes")
        self._key: Any = ed.Ed25519PrivateKey.from_private_bytes(private_key)
        self.key_id = hashlib.sha256(self.public_bytes()).hexdigest()[:16]

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A signer with a fresh random key."""
        import os

        return cls(os.urandom(32))

    def private_bytes(self) -> bytes:
        """The 32-byte private seed."""
        ser = require("cryptography.hazmat.primitives.serialization", extra="audit")
        raw: bytes = self._key.private_bytes(
            ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption()
        )
        return raw

    def public_bytes(self) -> bytes:
        """The 32-byte public key verifiers need."""
        ser = require("cryptography.hazmat.primitives.serialization", extra="audit")
        raw: bytes = self._key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        return raw

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message``."""
        signature: bytes = self._key.sign(message)
        return signature


class HmacSigner:
    """HMAC-SHA256 with a shared secret of at least 16 bytes (see the module docstring)."""

    algorithm = "hmac-sha256"

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ConfigurationError("an HMAC key must be at least 16 bytes")
        self._key = key
        self.key_id = hashlib.sha256(key).hexdigest()[:16]

    def sign(self, message: bytes) -> bytes:
        """The 32-byte HMAC-SHA256 of ``message``."""
        return hmac.new(self._key, message, hashlib.sha256).digest()
