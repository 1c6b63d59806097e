"""Server-side request forgery: URLs to internal hosts and dangerous schemes (rules 9341xx)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import GatedPatterns, snip

__all__ = ["ssrf", "ssrf_private"]

_INTERNAL_HOST = (
    r"(?:localhost|127(?:\.\d{1,3}){1,3}|0\.0\.0\.0|0{1,4}(?=[:/]|$)|\[[0:]{0,20}(?:1|ffff:[^\]]{1,40})?\]|"
    r"\[fe[89ab][0-9a-f]:[^\]]{0,60}\]|\[f[cd][0-9a-f]{2}:[^\]]{0,60}\]|169\.254\.\d{1,3}\.\d{1,3}|"
    r"metadata(?:\.google)?\.internal|metadata\.azure\.com|100\.100\.100\.200|fd00:ec2::254|"
    r"[\w-]{1,30}\.(?:docker|containers)\.internal|kubernetes\.default[\w.]{0,40}|localhost\.localdomain|ip6?-localhost|ipv6-localhost|"
    r"\[[0-9a-f:.]{2,45}(?:%[\w.-]{1,20})?\]|localhost\d?(?:\.localdomain\d?)?|(?:[\w-]{1,40}\.)?(?:localtest\.me|lvh\.me|nip\.io|sslip\.io|xip\.io)|"
    r"metadata\.[\w-]{2,30}\.[a-z]{2,10}|"
    # The short names and fixed addresses the clouds document for their metadata services
    # (GCP "metadata", "metadata.goog"; AWS "instance-data"; Oracle 192.0.0.192; Azure's
    # host endpoint 168.63.129.16; IBM's metadata API).
    r"(?:metadata(?:\.goog)?|instance-data(?:\.ec2\.internal)?)\.?(?=$|[:/?#\s])|192\.0\.0\.192|"
    r"168\.63\.129\.16|(?:api\.)?metadata\.cloud\.ibm\.com|"
    r"(?:0x[0-9a-f]{1,8}|0[0-7]{1,11})(?:\.(?:0x[0-9a-f]{1,2}|0[0-7]{0,3}|\d{1,3})){0,3}|\d{8,10}|"
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.(?:nip\.io|xip\.io|sslip\.io))"
)
_SSRF_URL = re.compile(
    # "scheme:host" without slashes (http:127.1) counts only for URL schemes that fetch: with any
    # word as the scheme, ordinary keys like "user:0" or "tenant:0:user:12" read as host 0
    r"(?:^|[\s\"'=(<])(?:[a-z][a-z0-9+.-]{1,12}://|"
    r"(?:https?|ftps?|gopher|dict|file|ldaps?|tftp|sftp|jar|netdoc|wss?):(?=[\d\[])|//)"
    r"(?:[^/@\s]{0,64}@)?" + _INTERNAL_HOST + r"(?=$|[:/?#\]\s])"
)
_SSRF_DATA = re.compile(r"^\s{0,4}data:(?:text|application)/[\w.+-]{1,40}")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_WIDE_DOT = re.compile("[\u3002\uff0e\uff61]")
_SSRF_BARE = re.compile(
    r"^\s{0,4}(?:169\.254\.169\.254|localhost\d?(?:\.localdomain\d?)?|(?:[\w-]{1,40}\.)?(?:localtest\.me|lvh\.me)|metadata(?:\.google)?\.internal|[\w-]{1,30}\.(?:docker|containers)\.internal|100\.100\.100\.200|localhost(?:\.localdomain)?|ip6?-localhost|ipv6-localhost|ip6-loopback|kubernetes\.default[\w.]{0,40}|metadata\.goog|instance-data\.ec2\.internal|192\.0\.0\.192|168\.63\.129\.16)(?=$|[:/])|"
    # Alone, "metadata" is a word: without a scheme it counts only before a metadata path.
    r"^\s{0,4}(?:metadata|instance-data)(?::\d{1,5})?/(?:computemetadata|latest|opc|metadata|v1)\b"
)
_SSRF_SCHEME = GatedPatterns(
    [
        (
            ("p:/", "t:/", "r:/", "c:/"),
            r"(?:^|[\s\"'=(<])(?:gopher|dict|ldap|tftp|sftp|netdoc|jar):/{1,3}[^\s]",
        )
    ]
)


def ssrf(s: Subject) -> str | None:
    """URLs aimed at internal targets: loopback, link-local, metadata, encoded IPs, gopher/dict."""
    text = s.lower
    if not text.isascii() and _WIDE_DOT.search(text):
        text = text.translate(_DOTS)
    m = (
        _SSRF_URL.search(text)
        or _SSRF_BARE.search(text)
        or _SSRF_SCHEME.search(text)
        or _SSRF_DATA.search(text)
    )
    return snip(text, m)


_PRIVATE_URL = re.compile(
    r"(?:^|[\s\"'=(<])(?:https?:)?//(?:[^/@\s]{0,64}@)?(?:10(?:\.\d{1,3}){3}|192\.168(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2})(?=$|[:/?#])"
)


def ssrf_private(s: Subject) -> str | None:
    """URLs with RFC 1918 private addresses (paranoia 2: internal links can be legitimate)."""
    m = _PRIVATE_URL.search(s.lower)
    return snip(s.lower, m)
