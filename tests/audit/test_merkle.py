"""RFC 6962 hashing, paths and proofs: writer and verifier against a naive reading of the RFC.

The naive functions below are the RFC's recursive definitions (section 2.1,
2.1.1, 2.1.2) transcribed literally; they share nothing with the package.
Published Certificate Transparency vectors pin the absolute values.
"""

from __future__ import annotations

import hashlib

import pytest

from cognitionos.audit._merkle import MerkleTree
from cognitionos.audit.verify import root_from_leaf_hashes, verify_consistency, verify_inclusion
from cognitionos.errors import ConfigurationError


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = k_of(n)
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = k_of(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_of(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


LEAVES = [bytes([i, i * 3 % 256, 7]) * (i % 4) for i in range(64)]


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    t = MerkleTree()
    for leaf in LEAVES:
        t.append(sha(b"\x00" + leaf))
    return t


def test_roots_every_size(tree: MerkleTree) -> None:
    assert tree.root(0) == sha(b"")
    for n in range(1, 65):
        expected = mth(LEAVES[:n])
        assert tree.root(n) == expected, n
        assert root_from_leaf_hashes([sha(b"\x00" + x) for x in LEAVES[:n]]) == expected, n


def test_inclusion_every_size_and_index(tree: MerkleTree) -> None:
    for n in range(1, 65):
        root = mth(LEAVES[:n])
        for m in range(n):
            expected = path(m, LEAVES[:n])
            got = tree.inclusion_path(m, n)
            assert got == expected, (m, n)
            assert verify_inclusion(LEAVES[m], m, n, got, root)
            assert not verify_inclusion(LEAVES[m] + b"x", m, n, got, root)
            if n > 1:
                assert not verify_inclusion(LEAVES[m], (m + 1) % n, n, got, root)
                assert not verify_inclusion(LEAVES[m], m, n, got[:-1], root)
                broken = [bytes(32), *got[1:]]
                assert not verify_inclusion(LEAVES[m], m, n, broken, root)
            assert not verify_inclusion(LEAVES[m], m, n, [*got, bytes(32)], root)
        assert not verify_inclusion(LEAVES[0], n, n, [], root)


def test_consistency_every_pair(tree: MerkleTree) -> None:
    for n in range(1, 65):
        new_root = mth(LEAVES[:n])
        for m in range(1, n + 1):
            expected = proof(m, LEAVES[:n]) if m < n else []
            got = tree.consistency_proof(m, n)
            assert got == expected, (m, n)
            old_root = mth(LEAVES[:m])
            assert verify_consistency(m, n, old_root, new_root, got), (m, n)
            assert not verify_consistency(m, n, sha(b"other"), new_root, got), (m, n)
            assert not verify_consistency(m, n, old_root, sha(b"other"), got), (m, n)
            if got:
                assert not verify_consistency(m, n, old_root, new_root, got[:-1]), (m, n)
                assert not verify_consistency(m, n, old_root, new_root, [bytes(32), *got[1:]])
    assert verify_consistency(0, 5, sha(b""), mth(LEAVES[:5]), [])
    assert not verify_consistency(3, 2, mth(LEAVES[:3]), mth(LEAVES[:2]), [])


def test_bad_sizes_are_configuration_errors(tree: MerkleTree) -> None:
    with pytest.raises(ConfigurationError, match=r"outside 0\.\.64"):
        tree.root(65)
    with pytest.raises(ConfigurationError, match=r"index 5 is outside 0\.\.4"):
        tree.inclusion_path(5, 5)
    with pytest.raises(ConfigurationError, match=r"first 6 is outside 0\.\.5"):
        tree.consistency_proof(6, 5)


# Certificate Transparency's reference tree (the C++/Go implementations' test data):
# eight leaves and the published roots of their prefixes, and some published proofs.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (0-based index, tree size, path)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


@pytest.fixture(scope="module")
def ct_tree() -> MerkleTree:
    t = MerkleTree()
    for leaf in CT_LEAVES:
        t.append(sha(b"\x00" + leaf))
    return t


def test_ct_reference_roots(ct_tree: MerkleTree) -> None:
    assert ct_tree.root(0).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    for n in range(1, 9):
        assert ct_tree.root(n).hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_ct_inclusion_vectors(
    ct_tree: MerkleTree, index: int, size: int, expected: list[str]
) -> None:
    assert [p.hex() for p in ct_tree.inclusion_path(index, size)] == expected
    assert verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "expected"), CT_CONSISTENCY)
def test_ct_consistency_vectors(
    ct_tree: MerkleTree, first: int, second: int, expected: list[str]
) -> None:
    assert [p.hex() for p in ct_tree.consistency_proof(first, second)] == expected
    assert verify_consistency(first, second, CT_ROOTS[first - 1], CT_ROOTS[second - 1], expected)


def test_verifier_does_not_import_the_writer() -> None:
    import ast
    from pathlib import Path

    import cognitionos.audit.verify as verifier

    tree = ast.parse(Path(verifier.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    writer = {
        "cognitionos.audit._merkle",
        "cognitionos.audit._leaf",
        "cognitionos.audit.log",
        "cognitionos.audit._signing",
        "cognitionos.audit",
    }
    assert not imported & writer, imported & writer
