"""``cognitionos waf`` commands: scan, explain, bans.

The main CLI registers :data:`waf` lazily; this module imports click and the
engine only, never a web framework.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from cognitionos.waf.blacklist import AutoBlacklist
from cognitionos.waf.engine import Firewall
from cognitionos.waf.models import Request, Verdict

__all__ = ["waf"]


def _request_from_json(doc: dict[str, Any]) -> Request | str:
    """A JSONL line is a request (method/uri/headers/body) or a bare value (payload/value)."""
    if "uri" in doc or "target" in doc:
        headers = doc.get("headers") or []
        if isinstance(headers, dict):
            headers = list(headers.items())
        body = doc.get("body") or ""
        return Request.from_raw(
            str(doc.get("method", "GET")),
            str(doc.get("uri") or doc.get("target")),
            headers=[(str(k), str(v)) for k, v in headers],
            body=body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body),
            client_ip=doc.get("client_ip"),
        )
    for key in ("payload", "value", "decoded", "sent"):
        if key in doc:
            return str(doc[key])
    raise click.ClickException(f"line has neither uri/target nor payload/value: {str(doc)[:80]}")


def _raw_http_requests(data: bytes) -> Iterator[Request]:
    """Parse one or more raw HTTP/1.x requests (bodies framed by Content-Length)."""
    pos = 0
    while pos < len(data):
        while data.startswith((b"\r\n", b"\n"), pos):
            pos += 2 if data.startswith(b"\r\n", pos) else 1
        if pos >= len(data):
            break
        end = data.find(b"\r\n\r\n", pos)
        sep = 4
        if end < 0:
            end, sep = data.find(b"\n\n", pos), 2
        if end < 0:
            end, sep = len(data), 0
        lines = data[pos:end].decode("latin-1").replace("\r\n", "\n").split("\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            raise click.ClickException(f"not an HTTP request line: {lines[0][:80]!r}")
        headers = [
            (k.strip(), v.strip())
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)
        ]
        length = next(
            (int(v) for k, v in headers if k.lower() == "content-length" and v.isdigit()), 0
        )
        body_start = end + sep
        body = data[body_start : body_start + length]
        pos = body_start + length
        version = parts[2].split("/", 1)[-1] if len(parts) > 2 else "0.9"
        yield Request.from_raw(parts[0], parts[1], headers=headers, body=body, http_version=version)


def _firewall(paranoia: int, threshold: int) -> Firewall:
    return Firewall(paranoia=paranoia, threshold=threshold)


@click.group(name="waf")
def waf() -> None:
    """Web application firewall: scan requests, explain payloads, manage bans."""


@waf.command("scan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--paranoia", type=click.IntRange(1, 4), default=1, show_default=True)
@click.option("--threshold", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON verdict per line.")
def scan(file: Path, paranoia: int, threshold: int, as_json: bool) -> None:
    """Inspect every request in FILE (JSONL, or raw HTTP requests) and summarize."""
    fw = _firewall(paranoia, threshold)
    data = file.read_bytes()
    verdicts: list[tuple[str, Verdict]] = []
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            item = _request_from_json(json.loads(line))
            if isinstance(item, Request):
                verdicts.append((f"{number}: {item.method} {item.target[:60]}", fw.inspect(item)))
            else:
                verdicts.append((f"{number}: {item[:60]!r}", fw.inspect_value(item)))
    else:
        for number, req in enumerate(_raw_http_requests(data), 1):
            verdicts.append((f"{number}: {req.method} {req.target[:60]}", fw.inspect(req)))
    categories: Counter[str] = Counter()
    blocked = 0
    for label, v in verdicts:
        blocked += v.blocked
        categories.update(v.categories)
        if as_json:
            click.echo(
                json.dumps(
                    {
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
                )
            )
        else:
            rules = ",".join(sorted(v.rule_ids)) or "-"
            click.echo(f"{'BLOCK' if v.blocked else 'pass '} {v.score:>3}  {label}  [{rules}]")
    click.echo(
        f"\n{len(verdicts)} requests, {blocked} blocked "
        f"({100.0 * blocked / max(1, len(verdicts)):.1f}%)"
    )
    for category, count in categories.most_common():
        click.echo(f"  {category:<20}{count:>6}")


@waf.command("explain")
@click.argument("payload")
@click.option("--paranoia", type=click.IntRange(1, 4), default=1, show_default=True)
def explain(payload: str, paranoia: int) -> None:
    """Show each normalization step of PAYLOAD, its SQL fingerprints and the rules that fire."""
    fw = _firewall(paranoia, 5)
    result = fw.explain(payload)
    click.echo("normalization:")
    for name, value in result.steps:
        click.echo(f"  {name:<22}{value!r}")
    click.echo("sql fingerprints:")
    for context, fp in result.sql_fingerprints:
        click.echo(f"  {context:<22}{fp}")
    v = result.verdict
    click.echo(
        f"verdict: {'BLOCK' if v.blocked else 'pass'} (score {v.score}, threshold {v.threshold})"
    )
    for m in v.matches:
        click.echo(f"  {m.rule_id} {m.category:<16} {m.severity.value:<9} {m.snippet!r}")


@waf.command("bans")
@click.option(
    "--store",
    "store_url",
    default="sqlite:///cognitionos.db",
    show_default=True,
    help="Storage URL holding the bans.",
)
@click.option("--ban", "ban_ip", metavar="IP", help="Ban this client IP.")
@click.option("--unban", "unban_ip", metavar="IP", help="Lift the ban on this client IP.")
@click.option(
    "--seconds", type=float, default=None, help="Ban duration (default: the blacklist's)."
)
@click.option("--reason", default="manual (cli)", show_default=True)
def bans(
    store_url: str, ban_ip: str | None, unban_ip: str | None, seconds: float | None, reason: str
) -> None:
    """List active bans; ban or unban a client."""
    from cognitionos.storage import open_store

    blacklist = AutoBlacklist(open_store(store_url))
    if ban_ip:
        ban = blacklist.ban(ban_ip, seconds=seconds, reason=reason)
        click.echo(f"banned {ban.client} for {ban.remaining(ban.created_ns):g}s")
    if unban_ip:
        click.echo(
            f"unbanned {unban_ip}" if blacklist.unban(unban_ip) else f"{unban_ip} was not banned"
        )
    now = blacklist.clock.time_ns()
    active = blacklist.bans()
    click.echo(f"{len(active)} active ban(s)")
    for ban in active:
        click.echo(f"  {ban.client:<40} {ban.remaining(now):>9.0f}s  {ban.reason}")
