"""Tamper-evident audit log: entries are leaves of an RFC 6962 (CT) Merkle tree.

Entries go to a store's append-only event log; signed tree heads are
checkpoints; inclusion and consistency proofs show that an entry is in the log
and that a later log extends an earlier one. :mod:`cognitionos.audit.verify`
checks all of it offline, with code independent of the writer::

    from cognitionos.audit import AuditLog, Ed25519Signer
    log = AuditLog("sqlite:///audit.db", signer=Ed25519Signer.generate())
    entry = log.append("acme", "alice", "key.create", "keys/k1", {"role": "admin"})
    sth = log.sign_tree_head()
"""

from __future__ import annotations

from cognitionos.audit._signing import Ed25519Signer, HmacSigner, Signer
from cognitionos.audit.log import AuditLog
from cognitionos.audit.models import AuditEntry, SignedTreeHead, Verification

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Ed25519Signer",
    "HmacSigner",
    "SignedTreeHead",
    "Signer",
    "Verification",
]
