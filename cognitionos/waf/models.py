"""Value objects of the WAF: the request it inspects and the verdict it returns.

``Request.from_raw`` takes the request as it came off the wire (target still
percent-encoded, headers as a list of pairs, body as bytes)::

    req = Request.from_raw("GET", "/search?q=%27%20or%201%3D1--", headers=[("Host", "x")])
    req.path, req.query        # ('/search', "q=%27%20or%201%3D1--")
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["Match", "Request", "Severity", "Verdict"]


class Severity(enum.StrEnum):
    """How much a rule match adds to the anomaly score (CRS scale)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    @property
    def points(self) -> int:
        """Anomaly points: critical 5, error 4, warning 3, notice 2."""
        return _POINTS[self]


_POINTS = {Severity.CRITICAL: 5, Severity.ERROR: 4, Severity.WARNING: 3, Severity.NOTICE: 2}


def _headers_converter(
    value: Iterable[tuple[str, str]] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    try:
        return tuple((str(k), str(v)) for k, v in items)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"headers must be a mapping or (name, value) pairs, got {_short(value)}"
        ) from None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@attrs.frozen(slots=True)
class Request:
    """One HTTP request as the WAF sees it.

    ``target`` is the request-target exactly as sent (percent-encoding intact);
    ``path`` and ``query`` are its two halves, still encoded.

        req = Request.from_raw("POST", "/login", headers=[("Content-Type", "application/json")],
                               body=b'{"user": "admin"}', client_ip="203.0.113.9")
    """

    method: str
    target: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...] = attrs.field(converter=_headers_converter, factory=tuple)
    body: bytes = b""
    client_ip: str | None = None
    http_version: str = "1.1"

    @classmethod
    def from_raw(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes | str = b"",
        client_ip: str | None = None,
        http_version: str = "1.1",
    ) -> Request:
        """Build a request from the wire form of its request line, headers and body.

        Arguments of the wrong type raise ConfigurationError naming the argument.
        """
        for name, arg in (("method", method), ("target", target), ("http_version", http_version)):
            if not isinstance(arg, str):
                raise ConfigurationError(f"request {name} must be a str, got {_short(arg)}")
        if client_ip is not None and not isinstance(client_ip, str):
            raise ConfigurationError(f"request client_ip must be a str, got {_short(client_ip)}")
        if isinstance(body, bytearray | memoryview):
            body = bytes(body)
        elif not isinstance(body, bytes | str):
            raise ConfigurationError(f"request body must be bytes or str, got {_short(body)}")
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogateescape")
        raw = target
        # An absolute-form target (proxies) carries scheme and authority: keep only the path part.
        lowered = raw[:8].lower()
        if lowered.startswith(("http://", "https://")):
            after = raw.split("://", 1)[1]
            slash = after.find("/")
            raw = after[slash:] if slash >= 0 else "/"
        path, sep, query = raw.partition("?")
        # A fragment is never sent by browsers; if present it is still data to inspect.
        return cls(
            method=method,
            target=target,
            path=path,
            query=query if sep else "",
            headers=_headers_converter(headers),
            body=body,
            client_ip=client_ip,
            http_version=http_version,
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``default``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]


@attrs.frozen(slots=True)
class Match:
    """One rule that fired on one inspected value.

    ``location`` names where the value came from: ``args:q``, ``header:user-agent``,
    ``cookie:sid``, ``body:json:$.a.b``, ``body:form:name``, ``path``, ``request-line``.
    """

    rule_id: str
    category: str
    location: str
    snippet: str
    severity: Severity = Severity.CRITICAL
    paranoia: int = 1
    message: str = ""

    @property
    def points(self) -> int:
        """Anomaly points this match contributes."""
        return self.severity.points


@attrs.frozen(slots=True)
class Verdict:
    """The firewall's answer for one request.

    ``blocked`` is what the caller should enforce. In detect-only mode it is
    always False and ``would_block`` tells what block mode would have done.
    """

    blocked: bool
    score: int
    matches: tuple[Match, ...] = ()
    would_block: bool = False
    threshold: int = 5

    @property
    def categories(self) -> frozenset[str]:
        """The distinct categories of the matches."""
        return frozenset(m.category for m in self.matches)

    @property
    def rule_ids(self) -> frozenset[str]:
        """The distinct rule ids of the matches."""
        return frozenset(m.rule_id for m in self.matches)
