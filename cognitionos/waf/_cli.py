"""``cognitionos waf`` commands: scan, explain, ban, unban, bans.

The main CLI registers :data:`waf` lazily; this module imports click and the
engine only, never a web framework.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from cognitionos._cli_common import (
    CommandGroup,
    FiniteFloat,
    echo_json,
    json_option,
    note,
    pick_store,
    store_option,
)
from cognitionos._cli_common import progress as _progress
from cognitionos.errors import CognitionError
from cognitionos.waf.blacklist import AutoBlacklist, Ban
from cognitionos.waf.engine import Firewall
from cognitionos.waf.models import Request, Verdict

__all__ = ["waf"]


def _request_from_json(doc: Any, where: str) -> Request | str:
    """A JSONL line is a request (method/uri/headers/body) or a bare value (payload/value)."""
    if not isinstance(doc, dict):
        raise click.ClickException(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if "uri" in doc or "target" in doc:
        headers = doc.get("headers") or []
        if isinstance(headers, dict):
            headers = list(headers.items())
        if not isinstance(headers, list) or not all(
            isinstance(h, list | tuple) and len(h) == 2 for h in headers
        ):
            raise click.ClickException(
                f"{where}: headers must be an object or a list of [name, value] pairs"
            )
        body = doc.get("body") or ""
        if not isinstance(body, str):
            raise click.ClickException(f"{where}: body must be a string")
        client_ip = doc.get("client_ip")
        try:
            return Request.from_raw(
                str(doc.get("method", "GET")),
                str(doc.get("uri") or doc.get("target")),
                headers=[(str(k), str(v)) for k, v in headers],
                body=body.encode("utf-8", "surrogateescape"),
                client_ip=None if client_ip is None else str(client_ip),
            )
        except CognitionError as exc:
            raise click.ClickException(f"{where}: {exc}") from exc
    for key in ("payload", "value", "decoded", "sent"):
        if key in doc:
            return str(doc[key])
    raise click.ClickException(f"{where}: line has neither uri/target nor payload/value")


def _jsonl_items(data: bytes, name: str) -> list[tuple[str, Request | str]]:
    items: list[tuple[str, Request | str]] = []
    for number, raw_line in enumerate(data.split(b"\n"), 1):
        where = f"{name}:{number}"
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise click.ClickException(f"{where}: not UTF-8 ({exc.reason})") from None
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.ClickException(
                f"{where}: not JSON ({exc.msg} at column {exc.colno}): {line.strip()[:60]!r}"
            ) from None
        except RecursionError:
            raise click.ClickException(f"{where}: JSON nested too deeply") from None
        item = _request_from_json(doc, where)
        if isinstance(item, Request):
            items.append((f"{number}: {item.method} {item.target[:60]}", item))
        else:
            items.append((f"{number}: {item[:60]!r}", item))
    return items


def _raw_http_requests(data: bytes) -> Iterator[Request]:
    """Parse one or more raw HTTP/1.x requests (bodies framed by Content-Length)."""
    pos = 0
    number = 0
    while pos < len(data):
        while data.startswith((b"\r\n", b"\n"), pos):
            pos += 2 if data.startswith(b"\r\n", pos) else 1
        if pos >= len(data):
            break
        number += 1
        end = data.find(b"\r\n\r\n", pos)
        sep = 4
        if end < 0:
            end, sep = data.find(b"\n\n", pos), 2
        if end < 0:
            end, sep = len(data), 0
        lines = data[pos:end].decode("latin-1").replace("\r\n", "\n").split("\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            raise click.ClickException(
                f"request {number}: not an HTTP request line: {lines[0][:80]!r}"
            )
        headers = [
            (k.strip(), v.strip())
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)
        ]
        length = next(
            (
                int(v)
                for k, v in headers
                if k.lower() == "content-length" and v.isascii() and v.isdigit() and len(v) < 16
            ),
            0,
        )
        body_start = end + sep
        body = data[body_start : body_start + length]
        pos = body_start + length
        version = parts[2].split("/", 1)[-1] if len(parts) > 2 else "0.9"
        try:
            yield Request.from_raw(
                parts[0], parts[1], headers=headers, body=body, http_version=version
            )
        except CognitionError as exc:
            raise click.ClickException(f"request {number}: {exc}") from exc


def _firewall(paranoia: int, threshold: int) -> Firewall:
    return Firewall(paranoia=paranoia, threshold=threshold)


@click.group(name="waf", cls=CommandGroup)
def waf() -> None:
    """Web application firewall: scan requests, explain payloads, manage bans."""


def _verdict_json(label: str, v: Verdict) -> dict[str, Any]:
    return {
        "request": label,
        "blocked": v.blocked,
        "score": v.score,
        "matches": [
            {
                "rule_id": m.rule_id,
                "category": m.category,
                "location": m.location,
                "severity": m.severity.value,
                "snippet": m.snippet,
            }
            for m in v.matches
        ],
    }


@waf.command("scan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--paranoia", type=click.IntRange(1, 4), default=1, show_default=True)
@click.option("--threshold", type=click.IntRange(1), default=5, show_default=True)
@json_option
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress on stderr [default: on a terminal, for more than 100 requests].",
)
@click.option("--fail-on-block", is_flag=True, help="Exit 1 when any request is blocked.")
def scan(
    file: Path,
    paranoia: int,
    threshold: int,
    as_json: bool,
    progress: bool | None,
    fail_on_block: bool,
) -> None:
    """Inspect every request in FILE (JSONL, or raw HTTP requests) and summarize.

    A JSONL line is a request (``method``, ``uri``, ``headers``, ``body``) or a bare value
    (``payload``). With --json stdout is one JSON document: ``{"requests": [...],
    "summary": {...}}``; the summary also goes to stderr.
    """
    fw = _firewall(paranoia, threshold)
    data = file.read_bytes()
    items: list[tuple[str, Request | str]]
    if data.lstrip().startswith(b"{"):
        items = _jsonl_items(data, file.name)
    else:
        items = [
            (f"{number}: {req.method} {req.target[:60]}", req)
            for number, req in enumerate(_raw_http_requests(data), 1)
        ]
    if not items:
        note(f"{file.name}: no requests to scan")
    categories: Counter[str] = Counter()
    blocked = 0
    reports: list[dict[str, Any]] = []
    for label, item in _progress(items, len(items), "scanned", enabled=progress):
        v = fw.inspect(item) if isinstance(item, Request) else fw.inspect_value(item)
        blocked += v.blocked
        categories.update(v.categories)
        if as_json:
            reports.append(_verdict_json(label, v))
        else:
            rules = ",".join(sorted(v.rule_ids)) or "-"
            click.echo(f"{'BLOCK' if v.blocked else 'pass '} {v.score:>3}  {label}  [{rules}]")
    summary = (
        f"{len(items)} requests, {blocked} blocked ({100.0 * blocked / max(1, len(items)):.1f}%)"
    )
    if as_json:
        echo_json(
            {
                "requests": reports,
                "summary": {
                    "requests": len(items),
                    "blocked": blocked,
                    "categories": dict(categories.most_common()),
                },
            }
        )
        note(summary)
    else:
        click.echo(f"\n{summary}")
        for category, count in categories.most_common():
            click.echo(f"  {category:<20}{count:>6}")
    if fail_on_block and blocked:
        raise click.exceptions.Exit(1)


@waf.command("explain")
@click.argument("payload")
@click.option("--paranoia", type=click.IntRange(1, 4), default=1, show_default=True)
@json_option
def explain(payload: str, paranoia: int, as_json: bool) -> None:
    """Show each normalization step of PAYLOAD, its SQL fingerprints and the rules that fire."""
    fw = _firewall(paranoia, 5)
    result = fw.explain(payload)
    v = result.verdict
    if as_json:
        echo_json(
            {
                "steps": [{"step": name, "value": value} for name, value in result.steps],
                "sql_fingerprints": [
                    {"context": context, "fingerprint": fp}
                    for context, fp in result.sql_fingerprints
                ],
                **_verdict_json(payload, v),
                "threshold": v.threshold,
            }
        )
        return
    click.echo("normalization:")
    for name, value in result.steps:
        click.echo(f"  {name:<22}{value!r}")
    click.echo("sql fingerprints:")
    for context, fp in result.sql_fingerprints:
        click.echo(f"  {context:<22}{fp}")
    click.echo(
        f"verdict: {'BLOCK' if v.blocked else 'pass'} (score {v.score}, threshold {v.threshold})"
    )
    for m in v.matches:
        click.echo(f"  {m.rule_id} {m.category:<16} {m.severity.value:<9} {m.snippet!r}")


def _blacklist(store_url: str | None, legacy: str | None = None) -> AutoBlacklist:
    from cognitionos.storage import open_store

    return AutoBlacklist(open_store(pick_store(store_url, legacy=legacy)))


def _ban_json(ban: Ban, now: int) -> dict[str, Any]:
    remaining = ban.remaining(now)
    return {
        "key": ban.client,
        "remaining": None if math.isinf(remaining) else remaining,
        "reason": ban.reason,
    }


@waf.command("ban")
@click.argument("ip")
@store_option
@click.option(
    "--seconds",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Ban duration [default: the blacklist's, 600].",
)
@click.option("--reason", default="manual (cli)", show_default=True)
@json_option
def ban_command(
    ip: str, store_url: str | None, seconds: float | None, reason: str, as_json: bool
) -> None:
    """Ban client IP on every host sharing the store."""
    blacklist = _blacklist(store_url)
    try:
        ban = blacklist.ban(ip, seconds=seconds, reason=reason)
        if as_json:
            echo_json(_ban_json(ban, ban.created_ns))
        else:
            click.echo(f"banned {ban.client} for {ban.remaining(ban.created_ns):g} s")
    finally:
        blacklist.store.close()


@waf.command("unban")
@click.argument("ip")
@store_option
def unban_command(ip: str, store_url: str | None) -> None:
    """Lift the ban on client IP."""
    blacklist = _blacklist(store_url)
    try:
        click.echo(f"unbanned {ip}" if blacklist.unban(ip) else f"{ip} was not banned")
    finally:
        blacklist.store.close()


@waf.command("bans")
@store_option
@json_option
@click.option("--ban", "ban_ip", metavar="IP", hidden=True)
@click.option("--unban", "unban_ip", metavar="IP", hidden=True)
@click.option("--seconds", type=FiniteFloat(min=0, min_open=True), default=None, hidden=True)
@click.option("--reason", default="manual (cli)", hidden=True)
def bans(
    store_url: str | None,
    as_json: bool,
    ban_ip: str | None,
    unban_ip: str | None,
    seconds: float | None,
    reason: str,
) -> None:
    """List the clients banned right now."""
    blacklist = _blacklist(store_url)
    try:
        # the 0.x spellings ``bans --ban IP`` / ``bans --unban IP`` still work, with a note
        if ban_ip:
            note("deprecated: use 'cognitionos waf ban IP' instead of 'waf bans --ban IP'")
            ban = blacklist.ban(ban_ip, seconds=seconds, reason=reason)
            note(f"banned {ban.client} for {ban.remaining(ban.created_ns):g}s")
        if unban_ip:
            note("deprecated: use 'cognitionos waf unban IP' instead of 'waf bans --unban IP'")
            lifted = blacklist.unban(unban_ip)
            note(f"unbanned {unban_ip}" if lifted else f"{unban_ip} was not banned")
        now = blacklist.clock.time_ns()
        active = blacklist.bans()
    finally:
        blacklist.store.close()
    if as_json:
        echo_json([_ban_json(b, now) for b in active])
        return
    if not active:
        click.echo("no bans")
        return
    click.echo(f"{len(active)} active ban(s)")
    for b in active:
        remaining = b.remaining(now)
        left = "permanent" if math.isinf(remaining) else f"{remaining:.0f} s left"
        click.echo(f"  {b.client:<40} {left:>12}  {b.reason}")
