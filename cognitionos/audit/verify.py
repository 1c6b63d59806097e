"""Offline verification of the audit log, written from the RFCs, independent of the writer.

This module shares no code with the writer (``cognitionos.audit.log`` and its
private modules): hashing, the leaf encoding and the tree-head bytes are
re-implemented here from their definitions, so a bug in one side cannot hide
the same bug in the other.

- Hashes (RFC 6962 2.1): leaf = SHA-256(0x00 || leaf bytes), node =
  SHA-256(0x01 || left || right).
- :func:`verify_inclusion` and :func:`verify_consistency` follow the
  verification algorithms that RFC 9162 (CT v2) sections 2.1.3.2 and 2.1.4.2
  state for the RFC 6962 proofs.
- :func:`verify_log` rebuilds every leaf from the exported entries, checks each
  against its recorded hash, checks indexes 0..n-1 without gaps, recomputes the
  root at the tree head's size and checks the tree head's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cognitionos.audit.models import SignedTreeHead, Verification
from cognitionos.errors import ConfigurationError

__all__ = [
    "canonical_leaf",
    "load_tree_head",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_tree_head",
]


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ConfigurationError(f"{what} is not hex: {value[:20]!r}") from None
    raise ConfigurationError(f"{what} must be bytes or hex, got {type(value).__name__}")


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes | str], root: bytes | str
) -> bool:
    """True if ``leaf`` (the leaf's bytes, not its hash) is entry ``index`` of the tree ``root``."""
    path = [_as_bytes(p, "proof node") for p in proof]
    expected = _as_bytes(root, "root")
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = _leaf(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, expected)


def verify_consistency(
    first: int,
    second: int,
    first_root: bytes | str,
    second_root: bytes | str,
    proof: Sequence[bytes | str],
) -> bool:
    """True if the tree of ``first`` entries with ``first_root`` is a prefix of ``second``'s."""
    path = [_as_bytes(p, "proof node") for p in proof]
    old, new = _as_bytes(first_root, "first root"), _as_bytes(second_root, "second root")
    if not 0 <= first <= second:
        return False
    if first == second:
        return not path and hmac.compare_digest(old, new)
    if first == 0:
        return not path  # the empty tree is a prefix of every tree
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [old, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, old) and hmac.compare_digest(sr, new)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, bottom-up: pair neighbours, carry an odd last node up unchanged.

    Carrying the odd node up gives the same tree as the RFC's split at the
    largest power of two (every left part is complete), in O(n) hashes.
    """
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _tree_head_bytes(sth: SignedTreeHead) -> bytes:
    # RFC 6962 3.5 TreeHeadSignature: version v1 = 0, signature_type tree_hash = 1,
    # uint64 timestamp, uint64 tree_size, opaque sha256_root_hash[32]
    return struct.pack(">BBQQ", 0, 1, sth.timestamp, sth.tree_size) + sth.root_hash


def verify_tree_head(
    sth: SignedTreeHead, *, public_key: bytes | None = None, hmac_key: bytes | None = None
) -> bool:
    """True if the signature of ``sth`` is valid under the given key.

    Ed25519 heads need ``public_key`` (32 raw bytes); HMAC heads need ``hmac_key``.
    """
    message = _tree_head_bytes(sth)
    if sth.algorithm == "ed25519":
        if public_key is None:
            raise ConfigurationError("an ed25519 tree head needs the log's public key")
        from cognitionos._optional import require

        ed = require("cryptography.hazmat.primitives.asymmetric.ed25519", extra="audit")
        exceptions = require("cryptography.exceptions", extra="audit")
        try:
            ed.Ed25519PublicKey.from_public_bytes(public_key).verify(sth.signature, message)
        except exceptions.InvalidSignature:
            return False
        except ValueError:
            raise ConfigurationError("the Ed25519 public key must be 32 raw bytes") from None
        return True
    if sth.algorithm == "hmac-sha256":
        if hmac_key is None:
            raise ConfigurationError("an hmac-sha256 tree head needs the log's HMAC key")
        good = hmac.new(hmac_key, message, hashlib.sha256).digest()
        return hmac.compare_digest(good, sth.signature)
    raise ConfigurationError(f"unknown tree head algorithm {sth.algorithm!r}")


def canonical_leaf(entry: Mapping[str, Any]) -> bytes:
    """The leaf bytes of an exported entry: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _exported(item: Any, position: int) -> tuple[int, bytes, bytes]:
    """(index, recorded leaf hash, rebuilt leaf bytes) of an exported entry or an AuditEntry."""
    if isinstance(item, Mapping):
        data = item
    elif hasattr(item, "to_json"):
        data = item.to_json()
    else:
        raise ConfigurationError(f"entry at position {position} is not an audit entry")
    try:
        index = data["index"]
        recorded = _as_bytes(data["leaf_hash"], f"entry {index} leaf_hash")
        leaf = canonical_leaf(data["entry"])
    except KeyError as exc:
        raise ConfigurationError(
            f"entry at position {position} lacks the field {exc.args[0]!r}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"entry at position {position} is malformed ({exc})") from None
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConfigurationError(f"entry at position {position}: index must be an integer")
    return index, recorded, leaf


def verify_log(
    entries: Iterable[Any],
    sth: SignedTreeHead | Sequence[SignedTreeHead],
    *,
    public_key: bytes | None = None,
    hmac_key: bytes | None = None,
) -> Verification:
    """Recompute the whole log against one or more signed tree heads; name the first bad entry.

    Checks, in order: every tree head's signature; entry ``i`` sits at position
    ``i``; each entry's rebuilt leaf hashes to its recorded hash (an edited row
    is named here); the log holds at least as many entries as each tree head
    covers (a truncation names the first missing index); and the recomputed root
    at each tree head's size equals the signed root (a row rewritten with a
    matching hash is caught here, and with several heads the first failing one
    bounds where). With no ``public_key``/``hmac_key`` signatures are skipped.
    """
    heads = [sth] if isinstance(sth, SignedTreeHead) else sorted(sth, key=lambda h: h.tree_size)
    for head in heads:
        if (public_key is not None or hmac_key is not None) and not verify_tree_head(
            head, public_key=public_key, hmac_key=hmac_key
        ):
            return Verification(
                False, head.tree_size, None, f"bad signature on tree head of size {head.tree_size}"
            )
    hashes: list[bytes] = []
    for position, item in enumerate(entries):
        index, recorded, leaf = _exported(item, position)
        if index != position:
            return Verification(
                False,
                position,
                position,
                f"entry {position} is missing or out of place (found index {index} there)",
            )
        if not hmac.compare_digest(_leaf(leaf), recorded):
            return Verification(
                False, position, position, f"entry {position}: content does not match its leaf hash"
            )
        hashes.append(recorded)
    previous = 0
    for head in heads:
        if head.tree_size > len(hashes):
            return Verification(
                False,
                len(hashes),
                len(hashes),
                f"log truncated: the tree head covers {head.tree_size} entries, "
                f"the log has {len(hashes)}",
            )
        root = root_from_leaf_hashes(hashes[: head.tree_size])
        if not hmac.compare_digest(root, head.root_hash):
            where = f"entries {previous}..{head.tree_size - 1}"
            return Verification(
                False,
                head.tree_size,
                None,
                f"root of the first {head.tree_size} entries differs from the signed tree head:"
                f" {where} were rewritten (with matching leaf hashes) or reordered",
            )
        previous = head.tree_size
    size = heads[-1].tree_size if heads else len(hashes)
    return Verification(True, size, None, "ok")


def load_tree_head(text: str) -> SignedTreeHead:
    """Parse a tree head from its JSON text."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"tree head is not JSON ({exc})") from None
    return SignedTreeHead.from_json(data)
