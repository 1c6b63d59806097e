"""``cognitionos audit ...``: append to, export, prove and verify the tamper-evident audit log.

Every command takes ``--store URL`` (before or after the command name; else
``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``) and ``--stream``::

    cognitionos audit keygen --out audit.key            # prints the public key
    cognitionos audit sign --key-file audit.key --json  # a signed tree head (checkpoint)
    cognitionos audit export --json > log.json
    cognitionos audit verify --file log.json --public-key <hex>   # exit 1 names the bad entry
    cognitionos audit proof --index 3 --json
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from cognitionos._cli_common import CommandGroup, echo_json, note, pick_store, progress
from cognitionos.errors import ConfigurationError

__all__ = ["audit"]


def _store_opt(func: Any) -> Any:
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="Store URL [env COGNITIONOS_STORE; default sqlite:///cognitionos.db].",
    )(func)


def _stream_opt(func: Any) -> Any:
    return click.option("--stream", default=None, help="Event stream of the log [default: audit].")(
        func
    )


def _json_opt(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(func)


@click.group(name="audit", cls=CommandGroup)
@_store_opt
@_stream_opt
@click.pass_context
def audit(ctx: click.Context, store_url: str | None, stream: str | None) -> None:
    """Tamper-evident audit log: export, checkpoints, proofs and offline verification."""
    ctx.obj = {"store": store_url, "stream": stream}


def _signer(key_file: str | None, hmac_key_file: str | None) -> Any:
    from cognitionos.audit import Ed25519Signer, HmacSigner

    if key_file and hmac_key_file:
        raise ConfigurationError("give --key-file or --hmac-key-file, not both")
    if key_file:
        return Ed25519Signer(_read_hex(key_file, "--key-file"))
    if hmac_key_file:
        return HmacSigner(_read_hex(hmac_key_file, "--hmac-key-file"))
    return None


def _read_hex(path: str, option: str) -> bytes:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{option} {path!r}: cannot read ({exc})") from None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"{option} {path!r}: expected a hex key") from None


@contextmanager
def _log(
    ctx: click.Context, store_url: str | None, stream: str | None, signer: Any = None
) -> Iterator[Any]:
    from cognitionos.audit import AuditLog

    url = pick_store(store_url or ctx.obj["store"])
    log = AuditLog(url, signer=signer, stream=stream or ctx.obj["stream"] or "audit")
    try:
        yield log
    finally:
        log.close()


@audit.command("append")
@click.argument("tenant")
@click.argument("actor")
@click.argument("action")
@click.argument("target")
@click.option("--diff", default=None, help="JSON document describing the change.")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def append_cmd(
    ctx: click.Context,
    tenant: str,
    actor: str,
    action: str,
    target: str,
    diff: str | None,
    store_url: str | None,
    stream: str | None,
    as_json: bool,
) -> None:
    """Append one entry (TENANT ACTOR ACTION TARGET) and print its index and leaf hash."""
    try:
        change = json.loads(diff) if diff is not None else None
    except ValueError as exc:
        raise ConfigurationError(f"--diff is not JSON ({exc})") from None
    with _log(ctx, store_url, stream) as log:
        entry = log.append(tenant, actor, action, target, change)
    if as_json:
        echo_json(entry.to_json())
    else:
        click.echo(f"{entry.index}\t{entry.leaf_hash.hex()}")


@audit.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Private key file.")
@click.option("--hmac", "hmac_key", is_flag=True, help="A 32-byte HMAC key instead of Ed25519.")
def keygen(out: str, hmac_key: bool) -> None:
    """Write a new signing key (hex, mode 0600); print the public key (Ed25519)."""
    if os.path.exists(out):
        raise ConfigurationError(f"--out {out!r} exists; refusing to overwrite a key")
    if hmac_key:
        secret = os.urandom(32)
        public = None
    else:
        from cognitionos.audit import Ed25519Signer

        signer = Ed25519Signer.generate()
        secret, public = signer.private_bytes(), signer.public_bytes()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret.hex() + "\n")
    if public is not None:
        click.echo(public.hex())
        note(f"private key written to {out}; give verifiers the public key above")
    else:
        note(f"HMAC key written to {out}; verifiers need this same file")


@audit.command("sign")
@click.option("--key-file", default=None, help="Ed25519 private key (hex) from `audit keygen`.")
@click.option("--hmac-key-file", default=None, help="HMAC-SHA256 key (hex) instead.")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def sign(
    ctx: click.Context,
    key_file: str | None,
    hmac_key_file: str | None,
    store_url: str | None,
    stream: str | None,
    as_json: bool,
) -> None:
    """Sign the current tree head and keep it as a checkpoint."""
    signer = _signer(key_file, hmac_key_file)
    if signer is None:
        raise ConfigurationError("sign needs --key-file or --hmac-key-file")
    with _log(ctx, store_url, stream, signer) as log:
        sth = log.sign_tree_head()
    if as_json:
        echo_json(sth.to_json())
    else:
        click.echo(f"tree_size={sth.tree_size} root={sth.root_hash.hex()} ts={sth.timestamp}")


@audit.command("heads")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def heads(ctx: click.Context, store_url: str | None, stream: str | None, as_json: bool) -> None:
    """List the signed tree heads (checkpoints), oldest first."""
    with _log(ctx, store_url, stream) as log:
        found = log.tree_heads()
    if as_json:
        echo_json([h.to_json() for h in found])
        return
    if not found:
        note("no signed tree heads")
    for h in found:
        click.echo(f"{h.tree_size}\t{h.timestamp}\t{h.root_hash.hex()}\t{h.algorithm}")


@audit.command("export")
@click.option("--out", "-o", default=None, type=click.Path(dir_okay=False), help="Write here.")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def export(
    ctx: click.Context, out: str | None, store_url: str | None, stream: str | None, as_json: bool
) -> None:
    """Export every entry and tree head as one JSON document (stdout with --json, or --out)."""
    with _log(ctx, store_url, stream) as log:
        size = log.size()
        entries = [e.to_json() for e in progress(log.entries(), size, "exporting")]
        document = {
            "format": "cognitionos-audit-export/1",
            "stream": log.stream,
            "entries": entries,
            "tree_heads": [h.to_json() for h in log.tree_heads()],
        }
    if out:
        Path(out).write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
        note(f"exported {len(entries)} entries to {out}")
    if as_json or not out:
        echo_json(document)


def _load_export(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"--file {path!r}: not a readable JSON export ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ConfigurationError(f"--file {path!r}: no 'entries' list (not an audit export)")
    return data


@audit.command("verify")
@click.option("--file", "file_", default=None, help="An `audit export` JSON file (else --store).")
@click.option(
    "--proof",
    "proof_file",
    default=None,
    help="A consistency proof JSON file (as the server's /v1/audit/proof/consistency answers): "
    "checked offline, with no log; with --sth, the head must be one end of the proof.",
)
@click.option("--sth", "sth_file", default=None, help="A signed tree head JSON file to check.")
@click.option("--public-key", default=None, help="The log's Ed25519 public key (hex).")
@click.option("--hmac-key-file", default=None, help="The log's HMAC key file (hex).")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def verify(
    ctx: click.Context,
    file_: str | None,
    proof_file: str | None,
    sth_file: str | None,
    public_key: str | None,
    hmac_key_file: str | None,
    store_url: str | None,
    stream: str | None,
    as_json: bool,
) -> None:
    """Recompute the log against signed tree heads; exit 1 naming the first tampered entry.

    Tree heads: the --sth file if given, else every checkpoint in the log or export.
    Signatures are checked when --public-key or --hmac-key-file is given.
    """
    from cognitionos.audit.models import SignedTreeHead
    from cognitionos.audit.verify import load_tree_head, verify_log

    if proof_file:
        ok, reason = _check_proof_file(proof_file, sth_file, public_key, hmac_key_file)
        if as_json:
            echo_json({"ok": ok, "reason": reason})
        else:
            click.echo(f"ok: {reason}" if ok else f"INVALID: {reason}")
        if not ok:
            ctx.exit(1)
        return
    if file_:
        data = _load_export(file_)
        entries: list[Any] = data["entries"]
        stored_heads = [SignedTreeHead.from_json(h) for h in data.get("tree_heads", [])]
    else:
        with _log(ctx, store_url, stream) as log:
            entries = [e.to_json() for e in log.entries()]
            stored_heads = log.tree_heads()
    if sth_file:
        try:
            text = Path(sth_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"--sth {sth_file!r}: cannot read ({exc})") from None
        heads_to_check = [load_tree_head(text)]
    else:
        heads_to_check = stored_heads
    if not heads_to_check:
        raise ConfigurationError("no signed tree head to verify against (give --sth FILE)")
    try:
        key = bytes.fromhex(public_key) if public_key else None
    except ValueError:
        raise ConfigurationError("--public-key must be hex (as `audit keygen` prints it)") from None
    hkey = _read_hex(hmac_key_file, "--hmac-key-file") if hmac_key_file else None
    if key is None and hkey is None:
        note("warning: no --public-key/--hmac-key-file: tree head signatures are not checked")
    verdict = verify_log(entries, heads_to_check, public_key=key, hmac_key=hkey)
    if as_json:
        echo_json(verdict.to_json())
    elif verdict.ok:
        click.echo(f"ok: {len(entries)} entries, tree head of size {verdict.tree_size} verified")
    else:
        click.echo(f"TAMPERED: {verdict.reason}")
    if not verdict.ok:
        ctx.exit(1)


def _check_proof_file(
    proof_file: str, sth_file: str | None, public_key: str | None, hmac_key_file: str | None
) -> tuple[bool, str]:
    """(valid, why) for a consistency proof document, optionally tied to a signed head."""
    from cognitionos.audit.verify import load_tree_head, verify_consistency, verify_tree_head

    try:
        doc = json.loads(Path(proof_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(
            f"--proof {proof_file!r}: not a readable JSON file ({exc})"
        ) from None
    if not isinstance(doc, dict) or doc.get("kind", "consistency") != "consistency":
        raise ConfigurationError(f"--proof {proof_file!r}: not a consistency proof document")
    try:
        first, second = doc["first"], doc["second"]
        first_root, second_root = doc["first_root"], doc["second_root"]
        path = doc["proof"]
        if not (isinstance(first, int) and isinstance(second, int) and isinstance(path, list)):
            raise TypeError("first, second must be integers and proof a list")
        valid = verify_consistency(first, second, first_root, second_root, path)
    except KeyError as exc:
        raise ConfigurationError(f"--proof {proof_file!r}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"--proof {proof_file!r}: malformed ({exc})") from None
    if not valid:
        return False, f"the tree of {first} entries is not a prefix of the tree of {second}"
    if sth_file is None:
        return True, f"the tree of {first} entries is a prefix of the tree of {second}"
    try:
        sth = load_tree_head(Path(sth_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"--sth {sth_file!r}: cannot read ({exc})") from None
    ends = {(first, str(first_root).lower()), (second, str(second_root).lower())}
    if (sth.tree_size, sth.root_hash.hex()) not in ends:
        return False, f"the signed head (size {sth.tree_size}) is neither end of the proof"
    try:
        key = bytes.fromhex(public_key) if public_key else None
    except ValueError:
        raise ConfigurationError("--public-key must be hex (as `audit keygen` prints it)") from None
    hkey = _read_hex(hmac_key_file, "--hmac-key-file") if hmac_key_file else None
    if key is None and hkey is None:
        raise ConfigurationError("checking a signed head needs --public-key or --hmac-key-file")
    if not verify_tree_head(sth, public_key=key, hmac_key=hkey):
        return False, f"the signature of the tree head of size {sth.tree_size} is invalid"
    return True, (
        f"signed head of size {sth.tree_size} verified; the tree of {first} entries is a "
        f"prefix of the tree of {second}"
    )


@audit.command("proof")
@click.option("--index", type=int, default=None, help="Inclusion proof of this entry.")
@click.option("--from", "first", type=int, default=None, help="Consistency proof from this size.")
@click.option("--size", type=int, default=None, help="Tree size [default: the whole log].")
@_store_opt
@_stream_opt
@_json_opt
@click.pass_context
def proof(
    ctx: click.Context,
    index: int | None,
    first: int | None,
    size: int | None,
    store_url: str | None,
    stream: str | None,
    as_json: bool,
) -> None:
    """An inclusion proof (--index) or a consistency proof (--from), checked before printing."""
    from cognitionos.audit.verify import verify_consistency, verify_inclusion

    if (index is None) == (first is None):
        raise ConfigurationError("give exactly one of --index or --from")
    with _log(ctx, store_url, stream) as log:
        n = log.size() if size is None else size
        root = log.root_hash(n)
        if index is not None:
            path = log.inclusion_proof(index, n)
            (entry,) = log.entries(after=index - 1, limit=1) or [None]
            if entry is None:
                raise ConfigurationError(f"--index {index}: no such entry")
            ok = verify_inclusion(entry.leaf, index, n, path, root)
            result: dict[str, Any] = {
                "kind": "inclusion",
                "index": index,
                "tree_size": n,
                "leaf_hash": entry.leaf_hash.hex(),
                "root_hash": root.hex(),
                "proof": [p.hex() for p in path],
                "verified": ok,
            }
        else:
            assert first is not None
            old_root = log.root_hash(first)
            path = log.consistency_proof(first, n)
            ok = verify_consistency(first, n, old_root, root, path)
            result = {
                "kind": "consistency",
                "first": first,
                "second": n,
                "first_root": old_root.hex(),
                "second_root": root.hex(),
                "proof": [p.hex() for p in path],
                "verified": ok,
            }
    if as_json:
        echo_json(result)
    else:
        for key, value in result.items():
            shown = "\n  ".join(value) if isinstance(value, list) else value
            click.echo(f"{key}: {shown}")
    if not ok:
        ctx.exit(1)
