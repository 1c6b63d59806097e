"""Parsing and masking of storage URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["CLUSTER_SCHEMES", "StoreURL", "mask_url", "parse_url"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
#: Redis Cluster URLs: ``redis+cluster://host:port[,host:port...]/`` (seed nodes)
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


@attrs.frozen(slots=True)
class StoreURL:
    """A parsed storage URL; ``scheme`` is lower-case and includes any ``+driver`` part."""

    raw: str
    scheme: str
    host: str | None
    port: int | None
    path: str
    query: dict[str, str]
    #: ``(host, port)`` of every seed node of a ``redis+cluster://`` URL; empty otherwise
    seeds: tuple[tuple[str, int], ...] = ()

    @property
    def is_cluster(self) -> bool:
        """A ``redis+cluster://`` or ``rediss+cluster://`` URL."""
        return self.scheme in CLUSTER_SCHEMES

    @property
    def base_scheme(self) -> str:
        """``postgresql`` for ``postgresql+psycopg``."""
        return self.scheme.split("+", 1)[0]

    @property
    def masked(self) -> str:
        """The URL with any password replaced by ``***`` (safe for logs and errors)."""
        return mask_url(self.raw)


def mask_url(url: str) -> str:
    """Replace the password of ``url`` with ``***``; leaves unparsable input unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "," in parts.netloc:
        # several hosts (a cluster's seed nodes): mask the password in place
        userinfo, at, hosts = parts.netloc.rpartition("@")
        if not at or ":" not in userinfo:
            return url
        netloc = userinfo.split(":", 1)[0] + ":***@" + hosts
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_url(url: str) -> StoreURL:
    """Parse and validate ``url``; ConfigurationError names the part that is wrong."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"storage URL must be a non-empty string, got {url!r}")
    # a NUL or a lone surrogate would reach a driver and fail there as a raw ValueError/UnicodeError
    if "\x00" in url:
        raise ConfigurationError(f"malformed storage URL {mask_url(url)!r}: contains a NUL byte")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: character {url[exc.start]!r} at "
            f"position {exc.start} cannot be encoded"
        ) from None
    if "://" not in url:
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: missing '://' after the scheme "
            "(e.g. 'memory://', 'sqlite:///app.db', 'redis://localhost:6379/0')"
        )
    scheme = url.split("://", 1)[0]
    if not _SCHEME.match(scheme):
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: invalid scheme {scheme!r}"
        )
    if scheme.lower() in CLUSTER_SCHEMES:
        return _parse_cluster(url, scheme.lower())
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        part = "port" if "port" in str(exc).lower() else "host"
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: bad {part} ({exc})"
        ) from None
    if parts.hostname:
        _check_host(url, parts.hostname)
    query = _query(url, parts.query)
    return StoreURL(
        raw=url,
        scheme=scheme.lower(),
        host=parts.hostname,
        port=port,
        path=parts.path,
        query=query,
    )


def _check_host(url: str, host: str) -> None:
    try:
        host.encode("idna")
    except UnicodeError:
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: invalid host name {host!r}"
        ) from None


def _query(url: str, text: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError:
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: bad query string {text!r}"
        ) from None


def _parse_cluster(url: str, scheme: str) -> StoreURL:
    """``redis+cluster://[user:pass@]host:port[,host:port...]/[?options]``: seeds parsed one by one.

    Every seed needs a port (cluster nodes rarely listen on 6379 alone); the path may only
    name database 0, the one database a cluster has.
    """
    masked = mask_url(url)
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        seed = urlsplit(f"//{item}")
        try:
            port = seed.port
        except ValueError as exc:
            raise ConfigurationError(
                f"malformed storage URL {masked!r}: bad port in seed {item!r} ({exc})"
            ) from None
        if not seed.hostname or port is None:
            raise ConfigurationError(
                f"malformed storage URL {masked!r}: seed {item!r} must be host:port "
                f"(write {scheme}://127.0.0.1:7000,127.0.0.1:7001/)"
            )
        _check_host(url, seed.hostname)
        seeds.append((seed.hostname, port))
    return StoreURL(
        raw=url,
        scheme=scheme,
        host=seeds[0][0],
        port=seeds[0][1],
        path=parts.path,
        query=_query(url, parts.query),
        seeds=tuple(seeds),
    )
