"""The async twin of :class:`~cognitionos.audit.AuditLog`: same methods, as coroutines.

It runs on an async store (``open_async_store``); the hashing and proofs are the
same sans-I/O steps the sync log uses (``_core``), so both give the same answers::

    log = AsyncAuditLog("postgresql+psycopg://.../app", signer=signer)
    entry = await log.append("acme", "alice", "key.revoke", "keys/k1")
    proof = await log.inclusion_proof(entry.index)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio

from cognitionos.audit import _core
from cognitionos.audit._merkle import MerkleTree
from cognitionos.audit._signing import Signer
from cognitionos.audit.log import _check
from cognitionos.audit.models import AuditEntry, SignedTreeHead
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError

__all__ = ["AsyncAuditLog"]


class AsyncAuditLog:
    """Async audit log over an async store (or a store URL)."""

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
            from cognitionos.storage import open_async_store

            store = open_async_store(store)
        _check(store, stream)
        self.store = store
        self.signer = signer
        self.stream = stream
        self.sth_stream = f"{stream}.sth"
        self._clock: Clock = clock or SystemClock()
        self._tree = MerkleTree()
        self._heads: list[SignedTreeHead] = []
        self._heads_seq = 0
        self._lock = anyio.Lock()

    async def append(
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
        event = await self.store.append(self.stream, payload)
        return _core.entry_of(
            event.seq - 1, tenant, actor, action, target, diff, when, leaf, hashed
        )

    async def entries(self, *, after: int = -1, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``index > after``, oldest first (at most ``limit``)."""
        out: list[AuditEntry] = []
        cursor = after + 1
        while limit is None or len(out) < limit:
            batch = _core.READ_BATCH if limit is None else min(_core.READ_BATCH, limit - len(out))
            events = await self.store.read(self.stream, after=cursor, limit=batch)
            out.extend(_core.decode_entry(e, self.stream) for e in events)
            if len(events) < batch:
                break
            cursor = events[-1].seq
        return out

    async def _sync(self) -> MerkleTree:
        tree = self._tree
        while True:
            events = await self.store.read(self.stream, after=len(tree), limit=_core.READ_BATCH)
            _core.extend_tree(tree, events, self.stream)
            if len(events) < _core.READ_BATCH:
                return tree

    async def size(self) -> int:
        """The number of entries in the log now."""
        async with self._lock:
            return len(await self._sync())

    async def root_hash(self, tree_size: int | None = None) -> bytes:
        """MTH of the first ``tree_size`` entries (the whole log by default)."""
        async with self._lock:
            return (await self._sync()).root(tree_size)

    async def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """The RFC 6962 audit path of entry ``index``."""
        async with self._lock:
            tree = await self._sync()
            return tree.inclusion_path(index, len(tree) if tree_size is None else tree_size)

    async def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """The RFC 6962 proof that the tree of ``first`` entries is a prefix of ``second``'s."""
        async with self._lock:
            tree = await self._sync()
            return tree.consistency_proof(first, len(tree) if second is None else second)

    async def sign_tree_head(self) -> SignedTreeHead:
        """Sign the current tree head and keep it as a checkpoint."""
        if self.signer is None:
            raise ConfigurationError("sign_tree_head needs AsyncAuditLog(signer=...)")
        async with self._lock:
            tree = await self._sync()
            sth = _core.sign_head(tree, self.signer, self._clock.time_ns() // 1_000_000)
        await self.store.append(self.sth_stream, _core.encode_tree_head(sth))
        return sth

    async def sign_if_due(
        self, *, max_age: float = 300.0, max_entries: int = 1000
    ) -> SignedTreeHead | None:
        """Sign a checkpoint if one is due (see :meth:`AuditLog.sign_if_due`); else None."""
        latest = await self.latest_tree_head()
        now_ms = self._clock.time_ns() // 1_000_000
        if _core.signing_due(latest, await self.size(), now_ms, max_age, max_entries):
            return await self.sign_tree_head()
        return None

    async def tree_heads(self) -> list[SignedTreeHead]:
        """Every checkpoint signed so far, oldest first (read incrementally, then cached)."""
        while True:
            events = await self.store.read(
                self.sth_stream, after=self._heads_seq, limit=_core.READ_BATCH
            )
            self._heads.extend(_core.decode_tree_head(e, self.sth_stream) for e in events)
            if events:
                self._heads_seq = events[-1].seq
            if len(events) < _core.READ_BATCH:
                return list(self._heads)

    async def latest_tree_head(self) -> SignedTreeHead | None:
        """The newest checkpoint, or None if none was signed."""
        heads = await self.tree_heads()
        return heads[-1] if heads else None

    async def aclose(self) -> None:
        """Close the store if this log opened it from a URL."""
        if self._owns_store:
            await self.store.aclose()
