"""Value objects of the audit log: entries, signed tree heads, proofs and verification reports."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["AuditEntry", "SignedTreeHead", "Verification"]


@attrs.frozen(slots=True)
class AuditEntry:
    """One appended entry: its index (0-based leaf position), leaf bytes and leaf hash."""

    index: int
    tenant: str
    actor: str
    action: str
    target: str
    diff: Any
    at: datetime
    leaf: bytes = attrs.field(repr=False)
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """The exported form: index, leaf hash (hex) and the entry's fields as in the leaf."""
        import json

        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "entry": json.loads(self.leaf),
        }


@attrs.frozen(slots=True)
class SignedTreeHead:
    """A checkpoint: tree size, time (ms since the epoch), root hash and its signature.

    The signed bytes are RFC 6962's ``TreeHeadSignature`` (section 3.5): version
    v1 (0), signature type tree_hash (1), timestamp (uint64 ms), tree_size
    (uint64), the 32-byte root hash, all big-endian.
    """

    tree_size: int
    timestamp: int
    root_hash: bytes
    signature: bytes
    #: "ed25519" or "hmac-sha256"
    algorithm: str
    #: first 8 bytes (hex) of SHA-256 of the public key (Ed25519) or of the key (HMAC)
    key_id: str

    def to_json(self) -> dict[str, Any]:
        """JSON form: hashes in hex, the signature in base64."""
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "root_hash": self.root_hash.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "algorithm": self.algorithm,
            "key_id": self.key_id,
        }

    @classmethod
    def from_json(cls, data: Any) -> SignedTreeHead:
        """Parse :meth:`to_json` output; ConfigurationError naming the bad field."""
        if not isinstance(data, dict):
            raise ConfigurationError("a signed tree head must be a JSON object")
        try:
            tree_size, timestamp = data["tree_size"], data["timestamp"]
            if not isinstance(tree_size, int) or not isinstance(timestamp, int) or tree_size < 0:
                raise ConfigurationError("tree head: tree_size and timestamp must be integers >= 0")
            root = bytes.fromhex(data["root_hash"])
            if len(root) != 32:
                raise ConfigurationError("tree head: root_hash must be 32 bytes of hex")
            return cls(
                tree_size=tree_size,
                timestamp=timestamp,
                root_hash=root,
                signature=base64.b64decode(data["signature"], validate=True),
                algorithm=str(data["algorithm"]),
                key_id=str(data["key_id"]),
            )
        except KeyError as exc:
            raise ConfigurationError(f"tree head: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"tree head: malformed field ({exc})") from None


@attrs.frozen(slots=True)
class Verification:
    """The verdict of :func:`cognitionos.audit.verify.verify_log`.

    ``ok`` is True only if every check passed. Otherwise ``first_bad_index`` names
    the first entry found tampered, missing or out of place when it can be named
    (``None`` when the log was rewritten consistently and only the signed root
    disagrees), and ``reason`` says what failed.
    """

    ok: bool
    tree_size: int
    first_bad_index: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form of the verdict."""
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "first_bad_index": self.first_bad_index,
            "reason": self.reason,
        }
