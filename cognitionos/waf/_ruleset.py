"""The built-in rule set: which detector runs on which values, at which severity and paranoia."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors import DETECTORS
from cognitionos.waf.models import Severity

__all__ = ["BUILTIN_RULES", "BuiltinRule"]

VALUES = frozenset({"arg", "cookie", "body", "filename"})
NAMES = frozenset({"arg_name", "cookie_name"})
PATH = frozenset({"path"})
QUERY = frozenset({"query"})
ALL_HEADERS = "*"
#: Every header except the structured ones whose syntax the protocol rules already check.
OTHER_HEADERS = "other"
STRUCTURED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-charset",
        "connection",
        "cookie",
        "te",
        "transfer-encoding",
        "cache-control",
        "pragma",
        "upgrade-insecure-requests",
        "if-modified-since",
        "if-none-match",
        "if-match",
        "range",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-fetch-user",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "dnt",
        "priority",
        "keep-alive",
        "proxy-connection",
        "origin",
        "content-encoding",
        "authorization",
        "user-agent",
    }
)
UA_REF = frozenset({"user-agent", "referer"})


@attrs.frozen(slots=True)
class BuiltinRule:
    """A detector bound to the kinds of values it inspects, with a severity and paranoia level."""

    rule_id: str
    category: str
    detector: str
    severity: Severity
    paranoia: int
    kinds: frozenset[str]
    headers: frozenset[str] | str = frozenset()
    message: str = ""
    header_extra: frozenset[str] = frozenset()
    check: Callable[[Subject], str | None] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "check", DETECTORS[self.detector])

    def applies(self, kind: str, name: str) -> bool:
        """Whether this rule inspects a value of ``kind`` (headers match by header name)."""
        if kind == "header":
            if self.headers == ALL_HEADERS:
                return True
            if self.headers == OTHER_HEADERS:
                return name not in STRUCTURED_HEADERS or name in self.header_extra
            return name in self.headers
        return kind in self.kinds


def _r(
    rule_id: str,
    category: str,
    detector: str,
    kinds: frozenset[str],
    *,
    sev: Severity = Severity.CRITICAL,
    pl: int = 1,
    headers: frozenset[str] | str = frozenset(),
    extra: frozenset[str] = frozenset(),
) -> BuiltinRule:
    doc = (DETECTORS[detector].__doc__ or "").strip().splitlines()[0]
    return BuiltinRule(rule_id, category, detector, sev, pl, kinds, headers, doc, extra)


BUILTIN_RULES: tuple[BuiltinRule, ...] = (
    _r("942100", "sqli", "sqli_syntax", VALUES | NAMES | PATH),
    _r("942101", "sqli", "sqli_syntax", frozenset(), headers=UA_REF),
    _r("942140", "sqli", "sqli_function_call", VALUES | NAMES),
    _r("942200", "sqli", "sqli_keyword_density", VALUES, sev=Severity.WARNING, pl=2),
    _r(
        "941100",
        "xss",
        "xss_tags",
        VALUES | NAMES | PATH | QUERY,
        headers=OTHER_HEADERS,
        extra=UA_REF,
    ),
    _r(
        "941110",
        "xss",
        "xss_attribute",
        VALUES | NAMES | PATH | QUERY,
        headers=OTHER_HEADERS,
        extra=UA_REF,
    ),
    _r("941120", "xss", "xss_script", VALUES | NAMES, headers=OTHER_HEADERS),
    _r("930100", "path-traversal", "path_traversal", VALUES | PATH, headers=OTHER_HEADERS),
    _r("930120", "path-traversal", "sensitive_file", VALUES | PATH | NAMES, headers=OTHER_HEADERS),
    _r("930110", "path-traversal", "stream_wrapper", VALUES | PATH),
    _r("931100", "rfi", "rfi_url", VALUES),
    _r("932100", "cmdi", "command_injection", VALUES | NAMES, headers=OTHER_HEADERS),
    _r("932200", "mail-injection", "mail_injection", VALUES),
    _r("933100", "php", "php_injection", VALUES | NAMES | PATH, headers=OTHER_HEADERS),
    _r("944100", "java", "java_injection", VALUES | NAMES | PATH, headers=ALL_HEADERS),
    _r("934100", "code-injection", "code_injection", VALUES | NAMES, headers=OTHER_HEADERS),
    _r("944150", "log4shell", "log4shell", VALUES | NAMES | PATH, headers=ALL_HEADERS),
    _r("934200", "ssti", "ssti", VALUES),
    _r("934300", "nosqli", "nosql_injection", VALUES | frozenset({"arg_name"})),
    _r("921200", "ldapi", "ldap_injection", VALUES | NAMES),
    _r("934400", "xxe", "xxe", VALUES),
    _r("934110", "ssrf", "ssrf", VALUES),
    _r("934120", "ssrf", "ssrf_private", VALUES, sev=Severity.WARNING, pl=2),
    _r("921130", "crlf", "crlf_injection", VALUES | NAMES, headers=OTHER_HEADERS),
    _r("921150", "crlf", "newline_in_name", PATH | NAMES),
    _r("932170", "shellshock", "shellshock", VALUES, headers=ALL_HEADERS),
    _r("932180", "ssi", "ssi_injection", VALUES | NAMES),
    _r("913100", "scanner", "scanner_signature", frozenset(), headers=frozenset({"user-agent"})),
    _r("913110", "scanner", "scanner_tool", VALUES),
    _r("913120", "scanner", "oast_domain", VALUES | NAMES, headers=ALL_HEADERS),
)
