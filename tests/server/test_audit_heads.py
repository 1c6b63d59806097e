"""Signed tree heads and consistency proofs of the server's audit log, checked offline.

The server signs heads with an Ed25519 key file; a client keeps an old head, later asks for
a consistency proof from its size to the new head's, and ``cognitionos audit verify --proof``
checks proof and signature with no access to the log. A rewritten past fails.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from cognitionos.audit import Ed25519Signer
from cognitionos.cli import main

from .conftest import bearer


def _verify(tmp_path, proof: dict, sth: dict | None, public_key: str | None) -> tuple[int, dict]:
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    args = ["audit", "verify", "--proof", str(tmp_path / "proof.json"), "--json"]
    if sth is not None:
        (tmp_path / "sth.json").write_text(json.dumps(sth))
        args += ["--sth", str(tmp_path / "sth.json")]
    if public_key is not None:
        args += ["--public-key", public_key]
    result = CliRunner().invoke(main, args)
    return result.exit_code, json.loads(result.stdout)


def test_signed_heads_and_consistency_proofs_verify_offline(server_factory, tmp_path):
    key_file = tmp_path / "audit.key"
    server = server_factory(audit_key_file=str(key_file), audit_sth_interval=0.001)
    c, root = server.client, bearer(server.root)
    old = c.get("/v1/audit/sth", headers=root)
    assert old.status_code == 200, old.text
    old_head = old.json()
    assert key_file.stat().st_mode & 0o777 == 0o600  # made on first use, private
    assert old_head["algorithm"] == "ed25519" and old_head["tree_size"] >= 2  # the bootstrap
    public_key = old_head.pop("public_key")

    for i in range(5):  # audited changes
        r = c.post("/v1/flags", json={"key": f"f{i}", "default_value": i}, headers=root)
        assert r.status_code == 201
    new_head = c.get("/v1/audit/sth", headers=root).json()
    assert new_head.pop("public_key") == public_key
    assert new_head["tree_size"] == old_head["tree_size"] + 5

    r = c.get(
        "/v1/audit/proof/consistency",
        params={"first": old_head["tree_size"], "second": new_head["tree_size"]},
        headers=root,
    )
    assert r.status_code == 200, r.text
    proof = r.json()
    assert proof["first_root"] == old_head["root_hash"]
    assert proof["second_root"] == new_head["root_hash"]

    # offline: the proof, and each signed head as one of its ends
    assert _verify(tmp_path, proof, None, None)[0] == 0
    assert _verify(tmp_path, proof, old_head, public_key)[0] == 0
    code, verdict = _verify(tmp_path, proof, new_head, public_key)
    assert code == 0 and verdict["ok"] is True

    # a past rewritten: the kept old head no longer matches a proof from the new log
    forged = {**proof, "first_root": "00" * 32}
    code, verdict = _verify(tmp_path, forged, None, None)
    assert code == 1 and verdict["ok"] is False
    # a head signed by another key
    other_key = Ed25519Signer.generate().public_bytes().hex()
    code, verdict = _verify(tmp_path, proof, new_head, other_key)
    assert code == 1 and "signature" in verdict["reason"]
    # a head that is neither end of the proof
    stray = {**new_head, "tree_size": new_head["tree_size"] + 1}
    assert _verify(tmp_path, proof, stray, public_key)[0] == 1


def test_consistency_proof_bounds(server):
    root = bearer(server.root)
    size = server.client.get("/v1/audit/sth", headers=root).json()["tree_size"]
    for params in ({"first": size + 1}, {"first": 2, "second": 1}, {"first": 0}):
        r = server.client.get("/v1/audit/proof/consistency", params=params, headers=root)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    whole = server.client.get("/v1/audit/proof/consistency", params={"first": 1}, headers=root)
    assert whole.json()["second"] == size


def test_heads_need_the_audit_scope(server):
    _tenant, owner = server.new_tenant("acme")
    viewer = server.key(owner, "viewer")
    for path in ("/v1/audit/sth", "/v1/audit/proof/consistency?first=1"):
        assert server.client.get(path, headers=bearer(viewer)).status_code == 403
        assert server.client.get(path, headers=bearer(owner)).status_code == 200
