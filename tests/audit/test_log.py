"""The audit log on every backend: indexes, proofs, checkpoints, tampering, concurrent writers."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
import uuid
from datetime import UTC, datetime

import pytest

from cognitionos.audit import AuditLog, Ed25519Signer, HmacSigner, SignedTreeHead
from cognitionos.audit.verify import (
    verify_consistency,
    verify_inclusion,
    verify_log,
    verify_tree_head,
)
from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError, UnsupportedCapability

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SEED = bytes(range(32))


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    # RFC 6962 2.1, recursively, over leaf bytes
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def stream() -> str:
    return f"audit-test-{uuid.uuid4().hex[:12]}"


def test_leaf_encoding_is_the_documented_canonical_json() -> None:
    log = AuditLog("memory://", stream=stream())
    entry = log.append("acme", "alice", "flag.toggle", "flags/ü", {"on": [False, True]}, at=AT)
    # written by hand from the encoding in docs/audit.md: sorted keys, no spaces, UTF-8
    expected = (
        '{"action":"flag.toggle","actor":"alice","at":"2026-01-02T03:04:05.678901Z",'
        '"diff":{"on":[false,true]},"target":"flags/ü","tenant":"acme","v":1}'
    ).encode()
    assert entry.leaf == expected
    assert entry.leaf_hash == sha(b"\x00" + expected)
    assert entry.index == 0


def test_append_prove_and_verify_on_every_backend(store: object) -> None:
    clock = ManualClock(start=1_700_000_000)
    log = AuditLog(store, signer=Ed25519Signer(SEED), stream=stream(), clock=clock)
    entries = [
        log.append("t1", f"user{i}", "key.create", f"keys/k{i}", {"i": i}, at=AT) for i in range(11)
    ]
    assert [e.index for e in entries] == list(range(11))
    leaves = [e.leaf for e in entries]
    assert log.size() == 11
    assert log.root_hash() == mth(leaves)
    first = log.sign_tree_head()
    assert (first.tree_size, first.root_hash) == (11, mth(leaves))
    public = Ed25519Signer(SEED).public_bytes()
    assert verify_tree_head(first, public_key=public)
    for e in entries:
        path = log.inclusion_proof(e.index, 11)
        assert verify_inclusion(e.leaf, e.index, 11, path, first.root_hash)
    more = [log.append("t2", "bob", "ban", f"ip/{i}", None, at=AT) for i in range(6)]
    clock.advance(5)
    second = log.sign_tree_head()
    assert second.tree_size == 17 and second.timestamp == first.timestamp + 5000
    assert second.root_hash == mth(leaves + [e.leaf for e in more])
    assert verify_consistency(
        11, 17, first.root_hash, second.root_hash, log.consistency_proof(11, 17)
    )
    assert [h.tree_size for h in log.tree_heads()] == [11, 17]
    assert log.latest_tree_head() == second
    exported = [e.to_json() for e in log.entries()]
    assert verify_log(exported, log.tree_heads(), public_key=public).ok
    assert [e.index for e in log.entries(after=14)] == [15, 16]
    assert len(log.entries(limit=3)) == 3


def test_a_fresh_log_object_reads_what_another_wrote(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    name = stream()
    writer = AuditLog(url, stream=name)
    leaves = [writer.append("t", "a", "x", str(i), at=AT).leaf for i in range(5)]
    reader = AuditLog(url, stream=name)
    assert reader.root_hash() == mth(leaves)
    writer.append("t", "a", "x", "5", at=AT)
    assert reader.size() == 6  # picks up the newer entry incrementally
    writer.close()
    reader.close()


def test_signatures_and_keys() -> None:
    log = AuditLog("memory://", signer=HmacSigner(b"k" * 32), stream=stream())
    log.append("t", "a", "x", "y")
    sth = log.sign_tree_head()
    assert sth.algorithm == "hmac-sha256"
    assert verify_tree_head(sth, hmac_key=b"k" * 32)
    assert not verify_tree_head(sth, hmac_key=b"j" * 32)
    forged = SignedTreeHead.from_json({**sth.to_json(), "tree_size": 2})
    assert not verify_tree_head(forged, hmac_key=b"k" * 32)
    ed = AuditLog("memory://", signer=Ed25519Signer(SEED), stream=stream())
    ed_sth = ed.sign_tree_head()  # the empty tree can be signed too
    assert ed_sth.root_hash == sha(b"")
    assert not verify_tree_head(ed_sth, public_key=Ed25519Signer.generate().public_bytes())
    with pytest.raises(ConfigurationError, match="needs the log's public key"):
        verify_tree_head(ed_sth)
    with pytest.raises(ConfigurationError, match="needs AuditLog"):
        AuditLog("memory://").sign_tree_head()
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        HmacSigner(b"short")
    with pytest.raises(ConfigurationError, match="32 raw bytes"):
        Ed25519Signer(b"x")


def test_bad_input_names_it() -> None:
    log = AuditLog("memory://", stream=stream())
    with pytest.raises(ConfigurationError, match="audit tenant must be a string"):
        log.append(1, "a", "x", "y")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"diff\.v: nan is not a finite number"):
        log.append("t", "a", "x", "y", {"v": float("nan")})
    with pytest.raises(ConfigurationError, match="diff: set is not JSON data"):
        log.append("t", "a", "x", "y", {1, 2})
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        log.append("t", "a", "x", "y", at=datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError, match="index 3 is outside"):
        log.inclusion_proof(3, 0)
    with pytest.raises(ConfigurationError, match="tree head: missing field 'root_hash'"):
        SignedTreeHead.from_json({"tree_size": 1, "timestamp": 1})


def test_missing_capability_is_refused() -> None:
    from cognitionos.storage import Capability, open_store

    store = open_store("memory://")
    store.capabilities = frozenset({Capability.KV, Capability.COUNTERS})  # type: ignore[misc]
    with pytest.raises(
        UnsupportedCapability, match="'memory' does not support capability 'event_log'"
    ):
        AuditLog(store)


def _rows(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path)


def test_tampered_sqlite_row_is_named(tmp_path: object) -> None:
    path = f"{tmp_path}/audit.db"
    name = stream()
    signer = Ed25519Signer(SEED)
    log = AuditLog(f"sqlite:///{path}", signer=signer, stream=name)
    for i in range(9):
        log.append("acme", "alice", "key.create", f"keys/{i}", {"n": i})
    sth = log.sign_tree_head()
    log.close()
    public = signer.public_bytes()

    conn = _rows(path)
    (payload,) = conn.execute(
        "SELECT payload FROM cos_events WHERE stream = ? AND seq = 6", (name,)
    ).fetchone()
    doc = json.loads(payload)
    doc["leaf"]["action"] = "key.delete"  # an edit that keeps the recorded hash
    conn.execute(
        "UPDATE cos_events SET payload = ? WHERE stream = ? AND seq = 6",
        (json.dumps(doc).encode(), name),
    )
    conn.commit()
    reread = AuditLog(f"sqlite:///{path}", stream=name)
    verdict = verify_log([e.to_json() for e in reread.entries()], sth, public_key=public)
    assert not verdict.ok
    assert verdict.first_bad_index == 5
    assert "entry 5" in verdict.reason

    # now also rewrite the recorded hash: the row looks self-consistent, the signed root is not
    leaf = json.dumps(doc["leaf"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["h"] = sha(b"\x00" + leaf.encode()).hex()
    conn.execute(
        "UPDATE cos_events SET payload = ? WHERE stream = ? AND seq = 6",
        (json.dumps(doc).encode(), name),
    )
    conn.commit()
    verdict = verify_log([e.to_json() for e in reread.entries()], sth, public_key=public)
    assert not verdict.ok and verdict.first_bad_index is None
    assert "differs from the signed tree head" in verdict.reason

    # a deleted row is named as the first missing index
    conn.execute("DELETE FROM cos_events WHERE stream = ? AND seq = 3", (name,))
    conn.commit()
    conn.close()
    events = AuditLog(f"sqlite:///{path}", stream=name).entries()
    verdict = verify_log([e.to_json() for e in events], sth, public_key=public)
    assert (verdict.ok, verdict.first_bad_index) == (False, 2)


def _append_many(url: str, name: str, who: str, n: int) -> list[int]:
    log = AuditLog(url, stream=name)
    try:
        return [log.append("t", who, "x", f"{who}/{i}").index for i in range(n)]
    finally:
        log.close()


def _concurrent(url: str) -> None:
    name = stream()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_append_many, [(url, name, "p1", 40), (url, name, "p2", 40)])
    indexes = sorted(results[0] + results[1])
    assert indexes == list(range(80))
    log = AuditLog(url, stream=name)
    entries = log.entries()
    assert [e.index for e in entries] == list(range(80))
    # each process saw its own indexes increase
    for got in results:
        assert got == sorted(got)
    signer = HmacSigner(b"s" * 16)
    log.signer = signer
    sth = log.sign_tree_head()
    assert verify_log([e.to_json() for e in entries], sth, hmac_key=b"s" * 16).ok
    assert sth.root_hash == mth([e.leaf for e in entries])
    log.close()


def test_two_processes_get_consecutive_indexes_sqlite(tmp_path: object) -> None:
    _concurrent(f"sqlite:///{tmp_path}/multi.db")


@pytest.mark.postgresql
def test_two_processes_get_consecutive_indexes_postgresql(postgres_url: str) -> None:
    _concurrent(postgres_url)
