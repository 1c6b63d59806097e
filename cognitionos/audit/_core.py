"""Sans-I/O steps shared by the sync and async audit logs: encode, decode, extend, sign."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cognitionos.audit._leaf import encode_leaf, parse_time
from cognitionos.audit._merkle import MerkleTree, leaf_hash
from cognitionos.audit._signing import Signer, tree_head_message
from cognitionos.audit.models import AuditEntry, SignedTreeHead
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.storage import Event

__all__ = [
    "READ_BATCH",
    "decode_entry",
    "decode_tree_head",
    "encode_tree_head",
    "entry_of",
    "extend_tree",
    "prepare",
    "sign_head",
    "signing_due",
]

READ_BATCH = 1000


def prepare(
    tenant: str,
    actor: str,
    action: str,
    target: str,
    diff: Any,
    at: datetime | None,
    now_ns: int,
) -> tuple[bytes, bytes, bytes, datetime]:
    """(leaf, leaf hash, event payload, time in UTC) of an entry about to be appended."""
    if at is None:
        at = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
    elif not isinstance(at, datetime) or at.tzinfo is None:
        raise ConfigurationError(f"at must be a timezone-aware datetime, got {at!r}")
    leaf = encode_leaf(tenant, actor, action, target, diff, at)
    hashed = leaf_hash(leaf)
    # the same bytes as canonical JSON of {"h": ..., "leaf": ...}, without re-encoding
    payload = b'{"h":"' + hashed.hex().encode("ascii") + b'","leaf":' + leaf + b"}"
    return leaf, hashed, payload, at.astimezone(UTC)


def entry_of(
    index: int,
    tenant: str,
    actor: str,
    action: str,
    target: str,
    diff: Any,
    at: datetime,
    leaf: bytes,
    hashed: bytes,
) -> AuditEntry:
    """The AuditEntry of an appended leaf."""
    return AuditEntry(index, tenant, actor, action, target, diff, at, leaf, hashed)


def decode_entry(event: Event, stream: str) -> AuditEntry:
    """The entry stored in ``event`` with its *recorded* leaf hash (verify recomputes it)."""
    try:
        data = json.loads(event.payload)
        document = data["leaf"]
        recorded = bytes.fromhex(data["h"])
        leaf = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        return AuditEntry(
            index=event.seq - 1,
            tenant=document["tenant"],
            actor=document["actor"],
            action=document["action"],
            target=document["target"],
            diff=document["diff"],
            at=parse_time(document["at"]),
            leaf=leaf,
            leaf_hash=recorded,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(
            f"audit stream {stream!r}: event {event.seq} is not an audit entry ({exc})"
        ) from None


def extend_tree(tree: MerkleTree, events: list[Event], stream: str) -> None:
    """Append the recorded leaf hashes of ``events`` (the next ones, in order) to ``tree``."""
    for event in events:
        if event.seq != len(tree) + 1:
            raise StorageError(
                f"audit stream {stream!r}: expected event {len(tree) + 1}, found {event.seq}"
            )
        tree.append(decode_entry(event, stream).leaf_hash)


def sign_head(tree: MerkleTree, signer: Signer | None, timestamp_ms: int) -> SignedTreeHead:
    """Sign the head of the whole ``tree`` at ``timestamp_ms``."""
    if signer is None:
        raise ConfigurationError("sign_tree_head needs AuditLog(signer=...)")
    size = len(tree)
    root = tree.root(size)
    return SignedTreeHead(
        tree_size=size,
        timestamp=timestamp_ms,
        root_hash=root,
        signature=signer.sign(tree_head_message(size, timestamp_ms, root)),
        algorithm=signer.algorithm,
        key_id=signer.key_id,
    )


def encode_tree_head(sth: SignedTreeHead) -> bytes:
    """The checkpoint event payload."""
    return json.dumps(sth.to_json(), sort_keys=True).encode("utf-8")


def decode_tree_head(event: Event, stream: str) -> SignedTreeHead:
    """A checkpoint read back."""
    try:
        return SignedTreeHead.from_json(json.loads(event.payload))
    except ValueError as exc:
        raise StorageError(
            f"audit checkpoint {event.seq} in {stream!r} is malformed ({exc})"
        ) from None


def signing_due(
    latest: SignedTreeHead | None, size: int, now_ms: int, max_age: float, max_entries: int
) -> bool:
    """Whether a new checkpoint is due: entries were added since ``latest`` and it is old enough
    or enough entries came since."""
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age < 0:
        raise ConfigurationError(f"max_age must be seconds >= 0, got {max_age!r}")
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        raise ConfigurationError(f"max_entries must be an integer >= 1, got {max_entries!r}")
    if latest is None:
        return size > 0
    if size <= latest.tree_size:
        return False
    return size - latest.tree_size >= max_entries or now_ms - latest.timestamp >= max_age * 1000
