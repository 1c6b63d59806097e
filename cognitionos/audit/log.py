"""The audit log: entries appended to a store's event log, hashed into an RFC 6962 Merkle tree.

Each entry is one event of the stream (``audit`` by default). Stores number the
events of a stream 1, 2, 3, ... without gaps in commit order, even with many
writer processes (SQLite serialises writers; PostgreSQL takes a per-stream
advisory lock; Redis runs one script), so an entry's index is its sequence
number minus one and concurrent appends get distinct consecutive indexes.

The event payload is a small JSON object ``{"leaf": <leaf JSON>, "h": <leaf hash
hex>}``: the leaf (see ``_leaf``) and the hash computed when it was written. A
row edited later no longer matches its recorded hash, which names it; a row
rewritten together with its hash still changes the tree root, which the signed
tree heads (checkpoints, kept in the stream ``<stream>.sth``) catch.

The log keeps the leaf hashes it has read in memory (32 bytes and about one
subtree hash per leaf) and reads only newer events on each call.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from cognitionos.audit._leaf import encode_leaf, parse_time
from cognitionos.audit._merkle import MerkleTree, leaf_hash
from cognitionos.audit._signing import Signer, tree_head_message
from cognitionos.audit.models import AuditEntry, SignedTreeHead
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.storage import Capability, Event

__all__ = ["AuditLog"]

_READ_BATCH = 1000


class AuditLog:
    """Append-only, tamper-evident audit log on any store with an event log.

    Example::

        log = AuditLog(open_store("sqlite:///audit.db"), signer=Ed25519Signer(seed))
        entry = log.append("acme", "alice", "flag.toggle", "flags/new-ui", {"on": [False, True]})
        sth = log.sign_tree_head()
        proof = log.inclusion_proof(entry.index, sth.tree_size)
    """

    def __init__(
        self,
        store: Any,
        *,
        signer: Signer | None = None,
        stream: str = "audit",
        clock: Clock | None = None,
    ) -> None:
        self._owns_store = isinstance(store, str)
        if isinstance(store, str):
            from cognitionos.storage import open_store

            store = open_store(store)
        require = getattr(store, "require", None)
        if require is None:
            raise ConfigurationError(f"AuditLog needs a store, got {type(store).__name__}")
        require(Capability.EVENT_LOG, needed_by="AuditLog")
        if not isinstance(stream, str) or not stream:
            raise ConfigurationError("stream must be a non-empty string")
        self.store = store
        self.signer = signer
        self.stream = stream
        self.sth_stream = f"{stream}.sth"
        self._clock: Clock = clock or SystemClock()
        self._tree = MerkleTree()
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        tenant: str,
        actor: str,
        action: str,
        target: str,
        diff: Any = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry and return it with its index and leaf hash."""
        if at is None:
            at = datetime.fromtimestamp(self._clock.time_ns() / 1e9, tz=UTC)
        elif not isinstance(at, datetime) or at.tzinfo is None:
            raise ConfigurationError(f"at must be a timezone-aware datetime, got {at!r}")
        leaf = encode_leaf(tenant, actor, action, target, diff, at)
        hashed = leaf_hash(leaf)
        # the same bytes as canonical JSON of {"h": ..., "leaf": ...}, without re-encoding
        payload = b'{"h":"' + hashed.hex().encode("ascii") + b'","leaf":' + leaf + b"}"
        event = self.store.append(self.stream, payload)
        return AuditEntry(
            index=event.seq - 1,
            tenant=tenant,
            actor=actor,
            action=action,
            target=target,
            diff=diff,
            at=at.astimezone(UTC),
            leaf=leaf,
            leaf_hash=hashed,
        )

    # -- reading ---------------------------------------------------------------------------

    def _decode(self, event: Event) -> AuditEntry:
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
                f"audit stream {self.stream!r}: event {event.seq} is not an audit entry ({exc})"
            ) from None

    def entries(self, *, after: int = -1, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``index > after``, oldest first (at most ``limit``)."""
        out: list[AuditEntry] = []
        cursor = after + 1
        while limit is None or len(out) < limit:
            batch = _READ_BATCH if limit is None else min(_READ_BATCH, limit - len(out))
            events = self.store.read(self.stream, after=cursor, limit=batch)
            out.extend(self._decode(e) for e in events)
            if len(events) < batch:
                break
            cursor = events[-1].seq
        return out

    def _sync(self) -> MerkleTree:
        """Bring the cached tree up to the stored log; returns it (caller holds the lock)."""
        tree = self._tree
        while True:
            events = self.store.read(self.stream, after=len(tree), limit=_READ_BATCH)
            for event in events:
                if event.seq != len(tree) + 1:
                    raise StorageError(
                        f"audit stream {self.stream!r}: expected event {len(tree) + 1}, "
                        f"found {event.seq}"
                    )
                tree.append(self._decode(event).leaf_hash)
            if len(events) < _READ_BATCH:
                return tree

    def size(self) -> int:
        """The number of entries in the log now."""
        with self._lock:
            return len(self._sync())

    def root_hash(self, tree_size: int | None = None) -> bytes:
        """MTH of the first ``tree_size`` entries (the whole log by default)."""
        with self._lock:
            return self._sync().root(tree_size)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """The RFC 6962 audit path of entry ``index`` in the tree of ``tree_size`` entries."""
        with self._lock:
            tree = self._sync()
            return tree.inclusion_path(index, len(tree) if tree_size is None else tree_size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """The RFC 6962 proof that the tree of ``first`` entries is a prefix of ``second``'s."""
        with self._lock:
            tree = self._sync()
            return tree.consistency_proof(first, len(tree) if second is None else second)

    # -- checkpoints -----------------------------------------------------------------------

    def sign_tree_head(self) -> SignedTreeHead:
        """Sign the current tree head and keep it as a checkpoint."""
        if self.signer is None:
            raise ConfigurationError("sign_tree_head needs AuditLog(signer=...)")
        with self._lock:
            tree = self._sync()
            size = len(tree)
            root = tree.root(size)
        timestamp = self._clock.time_ns() // 1_000_000
        sth = SignedTreeHead(
            tree_size=size,
            timestamp=timestamp,
            root_hash=root,
            signature=self.signer.sign(tree_head_message(size, timestamp, root)),
            algorithm=self.signer.algorithm,
            key_id=self.signer.key_id,
        )
        self.store.append(
            self.sth_stream, json.dumps(sth.to_json(), sort_keys=True).encode("utf-8")
        )
        return sth

    def tree_heads(self) -> list[SignedTreeHead]:
        """Every checkpoint signed so far, oldest first."""
        out: list[SignedTreeHead] = []
        after = 0
        while True:
            events = self.store.read(self.sth_stream, after=after, limit=_READ_BATCH)
            for event in events:
                try:
                    out.append(SignedTreeHead.from_json(json.loads(event.payload)))
                except ValueError as exc:
                    raise StorageError(
                        f"audit checkpoint {event.seq} in {self.sth_stream!r} is malformed ({exc})"
                    ) from None
            if len(events) < _READ_BATCH:
                return out
            after = events[-1].seq

    def latest_tree_head(self) -> SignedTreeHead | None:
        """The newest checkpoint, or None if none was signed."""
        heads = self.tree_heads()
        return heads[-1] if heads else None

    def close(self) -> None:
        """Close the store if this log opened it from a URL."""
        if self._owns_store:
            self.store.close()
