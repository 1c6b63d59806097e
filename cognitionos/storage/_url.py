"""Parsing and masking of storage URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["StoreURL", "mask_url", "parse_url"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")


@attrs.frozen(slots=True)
class StoreURL:
    """A parsed storage URL; ``scheme`` is lower-case and includes any ``+driver`` part."""

    raw: str
    scheme: str
    host: str | None
    port: int | None
    path: str
    query: dict[str, str]

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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        part = "port" if "port" in str(exc).lower() else "host"
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: bad {part} ({exc})"
        ) from None
    if parts.hostname:
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            raise ConfigurationError(
                f"malformed storage URL {mask_url(url)!r}: invalid host name {parts.hostname!r}"
            ) from None
    try:
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError:
        raise ConfigurationError(
            f"malformed storage URL {mask_url(url)!r}: bad query string {parts.query!r}"
        ) from None
    return StoreURL(
        raw=url,
        scheme=scheme.lower(),
        host=parts.hostname,
        port=port,
        path=parts.path,
        query=query,
    )
