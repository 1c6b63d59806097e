"""RFC 6962 section 2.1 Merkle tree hashes, inclusion paths and consistency proofs (writer side).

``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
the hash of n leaves splits at k, the largest power of two smaller than n.
:class:`MerkleTree` keeps the hash of every complete, aligned power-of-two
subtree as leaves arrive. Every left part of the RFC's recursion is such a
subtree, so a root or a proof costs O(log² n) hashes at most instead of O(n).
"""

from __future__ import annotations

import hashlib

from cognitionos.errors import ConfigurationError

__all__ = ["MerkleTree", "leaf_hash", "node_hash"]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only list of leaf hashes with its complete subtrees' hashes cached."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        # _levels[k][i] = hash of leaves [i * 2**k, (i + 1) * 2**k)
        self._levels: list[list[bytes]] = [[]]

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, hashed_leaf: bytes) -> int:
        """Add a leaf hash; returns its index."""
        index = len(self._levels[0])
        self._levels[0].append(hashed_leaf)
        level, position = 0, index
        while position % 2 == 1:
            row = self._levels[level]
            parent = node_hash(row[position - 1], row[position])
            level += 1
            if len(self._levels) == level:
                self._levels.append([])
            self._levels[level].append(parent)
            position //= 2
        return index

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        return self._levels[0][index]

    def _hash(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            return self._levels[level][lo >> level]
        k = _split(n)
        return node_hash(self._hash(lo, lo + k), self._hash(lo + k, hi))

    def _check_size(self, tree_size: int, what: str = "tree_size") -> None:
        if isinstance(tree_size, bool) or not isinstance(tree_size, int):
            raise ConfigurationError(f"{what} must be an integer, got {tree_size!r}")
        if not 0 <= tree_size <= len(self):
            raise ConfigurationError(f"{what} {tree_size} is outside 0..{len(self)} (the log size)")

    def root(self, tree_size: int | None = None) -> bytes:
        """MTH of the first ``tree_size`` leaves (all by default); SHA-256 of nothing if empty."""
        size = len(self) if tree_size is None else tree_size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._hash(0, size)

    def inclusion_path(self, index: int, tree_size: int) -> list[bytes]:
        """PATH(m, D[n]) of RFC 6962 2.1.1, nearest sibling first."""
        self._check_size(tree_size)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < tree_size:
            raise ConfigurationError(f"index {index!r} is outside 0..{tree_size - 1}")
        path: list[bytes] = []
        lo, hi, m = 0, tree_size, index
        # walk down from the root, collecting siblings; reversed at the end (leaf first)
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                path.append(self._hash(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._hash(lo, lo + k))
                lo, m = lo + k, m - k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(m, D[n]) of RFC 6962 2.1.2 (empty when ``first`` is 0 or equals ``second``)."""
        self._check_size(second, "second")
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= second:
            raise ConfigurationError(f"first {first!r} is outside 0..{second}")
        if first == 0 or first == second:
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, second, first, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._hash(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self._hash(lo, hi))
        proof.reverse()
        return proof
