"""The audit log: entries appended to a store's event log, hashed into an RFC 6962 Merkle tree.

Each entry is one event of the stream (``audit`` by default). Stores number the
events of a stream 1, 2, 3, ... without gaps in commit order, even with many
writer processes (SQLite serialises writers; PostgreSQL takes a per-stream
advisory lock; Redis runs one script), so an entry's index is its sequence
number minus one and concurrent appends get distinct consecutive indexes.

The event payload is a small JSON object ``{"h": <leaf hash hex>, "leaf": <leaf
JSON>}``: the leaf (see ``_leaf``) and the hash computed when it was written. A
row edited later no longer matches its recorded hash, which names it; a row
rewritten together with its hash still changes the tree root, which the signed
tree heads (checkpoints, kept in the stream ``<stream>.sth``) catch.

The log keeps the leaf hashes it has read in memory (32 bytes and about one
subtree hash per leaf) and reads only newer events on each call.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from cognitionos.audit import _core
from cognitionos.audit._merkle import MerkleTree
from cognitionos.audit._signing import Signer
from cognitionos.audit.models import AuditEntry, SignedTreeHead
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.storage import Capability

__all__ = ["AuditLog"]


def _check(store: Any, stream: str) -> None:
    require = getattr(store, "require", None)
    if require is None:
        raise ConfigurationError(f"AuditLog needs a store, got {type(store).__name__}")
    require(Capability.EVENT_LOG, needed_by="AuditLog")
    if not isinstance(stream, str) or not stream:
        raise ConfigurationError("stream must be a non-empty string")


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
        _check(store, stream)
        self.store = store
        self.signer = signer
        self.stream = stream
        self.sth_stream = f"{stream}.sth"
        self._clock: Clock = clock or SystemClock()
        self._tree = MerkleTree()
        self._heads: list[SignedTreeHead] = []
        self._heads_seq = 0
        self._lock = threading.Lock()

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
        leaf, hashed, payload, when = _core.prepare(
            tenant, actor, action, target, diff, at, self._clock.time_ns()
        )
        event = self.store.append(self.stream, payload)
        return _core.entry_of(
            event.seq - 1, tenant, actor, action, target, diff, when, leaf, hashed
        )

    def entries(self, *, after: int = -1, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``index > after``, oldest first (at most ``limit``)."""
        out: list[AuditEntry] = []
        cursor = after + 1
        while limit is None or len(out) < limit:
            batch = _core.READ_BATCH if limit is None else min(_core.READ_BATCH, limit - len(out))
            events = self.store.read(self.stream, after=cursor, limit=batch)
            out.extend(_core.decode_entry(e, self.stream) for e in events)
            if len(events) < batch:
                break
            cursor = events[-1].seq
        return out

    def _sync(self) -> MerkleTree:
        """Bring the cached tree up to the stored log (caller holds the lock)."""
        tree = self._tree
        while True:
            events = self.store.read(self.stream, after=len(tree), limit=_core.READ_BATCH)
            _core.extend_tree(tree, events, self.stream)
            if len(events) < _core.READ_BATCH:
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

    def sign_tree_head(self) -> SignedTreeHead:
        """Sign the current tree head and keep it as a checkpoint."""
        if self.signer is None:
            raise ConfigurationError("sign_tree_head needs AuditLog(signer=...)")
        with self._lock:
            sth = _core.sign_head(self._sync(), self.signer, self._clock.time_ns() // 1_000_000)
        self.store.append(self.sth_stream, _core.encode_tree_head(sth))
        return sth

    def sign_if_due(
        self, *, max_age: float = 300.0, max_entries: int = 1000
    ) -> SignedTreeHead | None:
        """Sign a checkpoint if entries were added since the last one and it is ``max_age``
        seconds old or ``max_entries`` entries behind; else None. Call it periodically."""
        latest = self.latest_tree_head()
        now_ms = self._clock.time_ns() // 1_000_000
        if _core.signing_due(latest, self.size(), now_ms, max_age, max_entries):
            return self.sign_tree_head()
        return None

    def tree_heads(self) -> list[SignedTreeHead]:
        """Every checkpoint signed so far, oldest first (read incrementally, then cached)."""
        while True:
            events = self.store.read(self.sth_stream, after=self._heads_seq, limit=_core.READ_BATCH)
            self._heads.extend(_core.decode_tree_head(e, self.sth_stream) for e in events)
            if events:
                self._heads_seq = events[-1].seq
            if len(events) < _core.READ_BATCH:
                return list(self._heads)

    def latest_tree_head(self) -> SignedTreeHead | None:
        """The newest checkpoint, or None if none was signed."""
        heads = self.tree_heads()
        return heads[-1] if heads else None

    def close(self) -> None:
        """Close the store if this log opened it from a URL."""
        if self._owns_store:
            self.store.close()
