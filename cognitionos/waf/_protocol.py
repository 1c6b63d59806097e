"""Protocol enforcement: request-level checks on method, headers, framing and body structure.

One function per rule (or per small group of rules reading the same header), registered like
the detectors: ``@request_rule`` functions read the request once, ``@field_rule(kind)``
functions read each parsed value of that kind (one pass over the values), ``@late_rule``
functions read what that pass found. Header grammars are parsed by small functions written from
RFC 9110 (tokens, media types, parameters), not matched with regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

import attrs

from cognitionos.waf._normalize import url_decode
from cognitionos.waf._parse import Field, ParsedRequest
from cognitionos.waf._regex import fold_ascii
from cognitionos.waf.models import Match, Request, Severity

__all__ = [
    "FIELD_CHECKS",
    "FIELD_PRECHECKS",
    "LATE_CHECKS",
    "REQUEST_CHECKS",
    "ProtocolPolicy",
    "check_protocol",
    "field_precheck",
    "field_rule",
    "late_rule",
    "parse_media_type",
    "request_rule",
]

_CRIT, _ERR, _WARN, _NOTE = Severity.CRITICAL, Severity.ERROR, Severity.WARNING, Severity.NOTICE


@attrs.frozen(slots=True)
class ProtocolPolicy:
    """What the application accepts. Defaults follow the OWASP CRS defaults."""

    # CRS allows GET HEAD POST OPTIONS only; REST APIs need PUT, PATCH and DELETE, so they are in.
    allowed_methods: frozenset[str] = frozenset(
        {"GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"}
    )
    allowed_content_types: frozenset[str] = frozenset(
        {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/related",
            "text/xml",
            "application/xml",
            "application/soap+xml",
            "application/json",
        }
    )
    allowed_charsets: frozenset[str] = frozenset(
        {"utf-8", "iso-8859-1", "iso-8859-15", "windows-1252"}
    )
    allowed_http_versions: frozenset[str] = frozenset({"1.0", "1.1", "2", "2.0", "3", "3.0"})
    restricted_extensions: frozenset[str] = frozenset(
        {
            "asa",
            "asax",
            "ascx",
            "backup",
            "bak",
            "bat",
            "cdx",
            "cer",
            "cfg",
            "cmd",
            "com",
            "config",
            "conf",
            "cs",
            "csproj",
            "csr",
            "dat",
            "db",
            "dbf",
            "dll",
            "dos",
            "htr",
            "htw",
            "ida",
            "idc",
            "idq",
            "inc",
            "ini",
            "key",
            "licx",
            "lnk",
            "log",
            "mdb",
            "old",
            "pass",
            "pdb",
            "pol",
            "printer",
            "pwd",
            "rdb",
            "resources",
            "resx",
            "sql",
            "swp",
            "sys",
            "vb",
            "vbs",
            "vbproj",
            "vsdisco",
            "webinfo",
            "xsd",
            "xsx",
            "sqlite",
            "sqlite3",
            "tmp",
            "orig",
            "save",
            "pem",
            "kdbx",
            "p12",
        }
    )
    restricted_headers: frozenset[str] = frozenset(
        {
            "proxy",
            "lock-token",
            "content-range",
            "if",
            "x-http-method-override",
            "x-method-override",
            "x-http-method",
            "translate",
            "back-end-server",
            "x-middleton",
            "content-encoding",
            "x-middleware-subrequest",
        }
    )
    max_arg_name_length: int = 100
    max_arg_value_length: int = 400_000
    max_args: int = 255


# ------------------------------------------------------------------ small parsers (RFC 9110)

#: RFC 9110 5.6.2 tchar: the characters of a token (methods, media types, parameter names).
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdefABCDEF")
_OWS = " \t"
#: Content-Type parameters a request may carry (RFC 2046 multipart, RFC 2387 multipart/related,
#: RFC 3902 application/soap+xml, charset everywhere); anything else is a malformed header.
_KNOWN_PARAMETERS = frozenset(
    {"action", "boundary", "charset", "component", "start", "start-info", "type", "version"}
)
#: Longest parameter value accepted (a multipart boundary is at most 70 characters).
_MAX_PARAMETER_VALUE = 200
_NUMERIC_HOST_CHARS = frozenset("0123456789.:[]")
#: RFC 2046 5.1.1 boundary characters that are not token characters.
_BOUNDARY_EXTRA = "/():,=?"


def _token_end(text: str, i: int, extra: str = "") -> int:
    """Index after the run of token characters (and ``extra``) starting at ``i``."""
    n = len(text)
    while i < n and (text[i] in _TCHAR or text[i] in extra):
        i += 1
    return i


def _skip_one_blank(text: str, i: int) -> int:
    return i + 1 if i < len(text) and text[i] in _OWS else i


def _skip_ows(text: str, i: int) -> int:
    while i < len(text) and text[i] in _OWS:
        i += 1
    return i


def _quoted_string_end(text: str, i: int) -> int:
    """Index after the quoted-string starting at ``text[i] == '"'``, or -1 if unterminated."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if (c < " " and c != "\t") or c == "\x7f":
            return -1  # qdtext excludes control characters
        i += 1
    return -1


def parse_media_type(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``type/subtype`` (lowercased) and its parameters, or None when ``text`` is malformed.

    RFC 9110 8.3.1: ``media-type = type "/" subtype *( OWS ";" OWS [ parameter ] )`` with a
    parameter ``token "=" ( token / quoted-string )``. Two leniencies real clients need: one
    blank on either side of ``=`` (two are malformed), and the characters RFC 2046 allows in a
    multipart boundary inside an unquoted value (``boundary=a(1):b,c/d?``,
    ``type=application/xop+xml``).

    >>> parse_media_type('multipart/form-data; boundary="a b"')
    ('multipart/form-data', [('boundary', '"a b"')])
    """
    text = text.strip(_OWS)
    slash = _token_end(text, 0)
    if slash == 0 or slash >= len(text) or text[slash] != "/":
        return None
    end = _token_end(text, slash + 1)
    if end == slash + 1:
        return None
    params: list[tuple[str, str]] = []
    i = end
    while True:
        i = _skip_ows(text, i)
        if i == len(text):
            return text[:end].lower(), params
        if text[i] != ";":
            return None
        i = _skip_ows(text, i + 1)
        if i == len(text) or text[i] == ";":
            continue  # an empty parameter
        name_end = _token_end(text, i)
        if name_end == i:
            return None
        name = text[i:name_end].lower()
        i = _skip_one_blank(text, name_end)
        if i == len(text) or text[i] != "=":
            return None
        i = _skip_one_blank(text, i + 1)
        if i < len(text) and text[i] == '"':
            value_end = _quoted_string_end(text, i)
            if value_end < 0:
                return None
        else:
            value_end = _token_end(text, i, extra=_BOUNDARY_EXTRA)
            if value_end == i:
                return None
        if value_end - i > _MAX_PARAMETER_VALUE:
            return None
        params.append((name, text[i:value_end]))
        i = value_end


def _charsets(text: str) -> list[str]:
    """The values of every ``charset=`` parameter in ``text`` (a media type or an Accept list),
    quotes removed, as written."""
    found: list[str] = []
    lower = text.lower()
    start = lower.find("charset")
    while start >= 0:
        i = _skip_ows(lower, start + 7)
        while i < len(lower) and lower[i].isspace():
            i += 1
        if i < len(lower) and lower[i] == "=":
            i += 1
            while i < len(lower) and lower[i].isspace():
                i += 1
            if i < len(lower) and lower[i] in "\"'":
                i += 1
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] in "_.:-"):
                j += 1
            if j > i:
                found.append(text[i:j])
        start = lower.find("charset", start + 7)
    return found


def _names_a_media_type(text: str) -> bool:
    """Whether ``text`` holds a ``type/subtype`` word pair (letters, then a slash, then a name)."""
    slash = text.find("/")
    while slash >= 0:
        i = slash
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            i -= 1
        word = text[i:slash]
        after = text[slash + 1 : slash + 2]
        if (
            word
            and fold_ascii(word).isascii()
            and fold_ascii(word).isalpha()
            and after
            and (after.isalnum() or after in "_.+-")
        ):
            return True
        slash = text.find("/", slash + 1)
    return False


def _backwards_ranges(value: str) -> bool:
    """Whether a byte range of a Range header ends before it starts (``bytes=500-100``)."""
    _unit, _, ranges = value.partition("=")
    for spec in (ranges or value).split(","):
        first, dash, last = spec.strip().partition("-")
        if dash and first.isdigit() and last.isdigit() and int(first) > int(last):
            return True
    return False


def _bad_percent(text: str) -> bool:
    """A ``%`` not followed by two hex digits (nor by ``u`` and four): invalid URL encoding."""
    i = text.find("%")
    while i >= 0:
        pair = text[i + 1 : i + 3]
        if not (len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX):
            quad = text[i + 2 : i + 6]
            if not (pair[:1] in ("u", "U") and len(quad) == 4 and all(c in _HEX for c in quad)):
                return True
        i = text.find("%", i + 1)
    return False


def _fullwidth_escape(text: str) -> bool:
    """A ``%uFFxx`` escape: the IIS spelling of a full-width form (``%uff0e`` for ``.``)."""
    lower = text.lower()
    i = lower.find("%u")
    while i >= 0:
        quad = lower[i + 2 : i + 6]
        if len(quad) == 4 and quad[:2] == "ff" and quad[2] in _HEX and quad[3] in _HEX:
            return True
        i = lower.find("%u", i + 2)
    return False


def _unix_socket(text: str) -> bool:
    """``unix:<path>|<url>``: Apache mod_proxy's syntax for a backend on a Unix socket."""
    lower = text.lower()
    i = lower.find("unix:")
    while i >= 0:
        if text.find("|", i + 5, i + 5 + 401) >= 0:
            return True
        i = lower.find("unix:", i + 5)
    return False


def _legacy_cookie(header: str) -> bool:
    """An RFC 2109 attribute (``$Version``, ``$Path``, ``$Domain``) as a cookie name."""
    for part in header.split(";"):
        name = part.lstrip()
        if not name.startswith("$"):
            continue
        word = name[1:].lower()
        for attribute in ("version", "path", "domain"):
            if word.startswith(attribute):
                after = word[len(attribute) : len(attribute) + 1]
                if not after or not (after.isalnum() or after == "_"):
                    return True
    return False


def _control_character(value: str) -> bool:
    """A C0 control character other than tab, line feed and carriage return."""
    return any(c < " " and c not in "\t\n\r\x00" for c in value)


def _js_ascii_escape(value: str) -> bool:
    """A ``\\u00XX`` escape of printable ASCII (escaping ``a`` is evasion, ``é`` is not)."""
    i = value.find("\\u")
    while i >= 0:
        quad = value[i + 2 : i + 6]
        if len(quad) == 4 and quad[:2] == "00" and quad[2] in "234567" and quad[3] in _HEX:
            return True
        i = value.find("\\u", i + 2)
    return False


def _bad_part_name(value: str) -> bool:
    """Quote, semicolon, equals sign or backslash in a multipart part or file name."""
    return any(c in value for c in "'\";=\\")


def _referer_host(referer: str) -> str | None:
    """The host of an absolute URL (``scheme://[userinfo@]host[:port]/...``), lowercased."""
    scheme, sep, rest = referer.strip().partition("://")
    if not sep or not scheme[:1].isalpha() or not all(c.isalnum() or c in "+.-" for c in scheme):
        return None
    at, slash = rest.find("@"), rest.find("/")
    if at >= 0 and (slash < 0 or at < slash):
        rest = rest[at + 1 :]  # userinfo@
    end = 0
    while end < len(rest) and rest[end] not in "/:?#":
        end += 1
    return rest[:end].lower() or None


# Names that end like a session id. Not here: a bare "sid" (analytics beacons send their own
# session number under it - GA4, Snowplow - to a collector on another domain, Referer and all)
# and other "session_*" names such as OpenID Connect's "session_state" on a login callback.
_SESSION_NAME = re.compile(
    r"sess(?:ion)?(?:[._-]?(?:id|key|token))?$|aspsessionid\w{0,12}$|[.-]sid$|(?:cf|j|php|asp)sid$|"
    r"^cftoken$|(?:login|auth)[._-]?token$|^cakephp$",
    re.IGNORECASE,
)
# Framework session cookie names: in a URL they mean session fixation even without a Referer.
_FRAMEWORK_SESSIONS = frozenset(
    {
        "jsessionid",
        "phpsessid",
        "asp.net_sessionid",
        "cfid",
        "cftoken",
        "laravel_session",
        "_rails_session",
        "_session_id",
        "connect.sid",
        "koa.sess",
        "koa:sess",
        "ci_session",
        "symfony",
        "jwsession",
        "jservsession",
        "weblogicsession",
    }
)


def _framework_session(name: str) -> bool:
    low = name.lower()
    if low in _FRAMEWORK_SESSIONS:
        return True
    # ASP classic: ASPSESSIONID followed by up to 12 word characters
    tail = low[len("aspsessionid") :]
    return (
        low.startswith("aspsessionid")
        and len(tail) <= 12
        and all(c.isalnum() or c == "_" for c in tail)
    )


def _m(
    rule: str,
    sev: Severity,
    location: str,
    snippet: str,
    message: str,
    paranoia: int = 1,
    category: str = "protocol",
) -> Match:
    return Match(
        rule_id=rule,
        category=category,
        location=location,
        snippet=snippet[:80],
        severity=sev,
        paranoia=paranoia,
        message=message,
    )


# ------------------------------------------------------------------ the request, read once


class _Facts:
    """What several protocol rules read, computed once per request."""

    __slots__ = (
        "content_type",
        "form_body",
        "headers",
        "host",
        "method",
        "parsed",
        "path",
        "policy",
        "req",
        "session_names",
    )

    def __init__(self, req: Request, parsed: ParsedRequest, policy: ProtocolPolicy) -> None:
        self.req = req
        self.parsed = parsed
        self.policy = policy
        self.method = req.method.upper()
        self.headers: dict[str, list[str]] = {}
        for key, value in req.headers:
            self.headers.setdefault(key.lower(), []).append(value)
        self.host = self.one("host")
        self.content_type = self.one("content-type")
        self.form_body = bool(req.body) and (self.content_type or "").split(";", 1)[
            0
        ].strip().lower() in ("", "application/x-www-form-urlencoded")
        self.path = url_decode(req.path)
        #: parameter names that look like session ids (filled by the field checks)
        self.session_names: list[str] = []

    def one(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


#: Request-level rules, in the order they report; each takes the request's facts.
_RequestCheck = Callable[[_Facts], Iterator[Match]]
#: Value-level rules by field kind; each takes the facts and one field and returns its matches
#: (a list, not a generator: these run once per value, and most find nothing).
_FieldCheck = Callable[[_Facts, Field], Sequence[Match]]
REQUEST_CHECKS: list[_RequestCheck] = []
FIELD_CHECKS: dict[str, list[_FieldCheck]] = {}
#: Request-level rules that read what the field checks found (run after them).
LATE_CHECKS: list[_RequestCheck] = []
#: Per field kind, a test proving that none of the field rules it was written for can fire on a
#: field (one call instead of several for the common value), and those rules. It is used only
#: while it covers every rule registered for the kind: a rule added later runs as before.
_FieldPrecheck = Callable[[_Facts, Field], bool]
FIELD_PRECHECKS: dict[str, tuple[_FieldPrecheck, frozenset[_FieldCheck]]] = {}


def request_rule(fn: _RequestCheck) -> _RequestCheck:
    """Register a request-level protocol rule."""
    REQUEST_CHECKS.append(fn)
    return fn


def late_rule(fn: _RequestCheck) -> _RequestCheck:
    """Register a request-level rule that runs after the field rules."""
    LATE_CHECKS.append(fn)
    return fn


def field_rule(*kinds: str) -> Callable[[_FieldCheck], _FieldCheck]:
    """Register a protocol rule for fields of ``kinds``."""

    def register(fn: _FieldCheck) -> _FieldCheck:
        for kind in kinds:
            FIELD_CHECKS.setdefault(kind, []).append(fn)
        return fn

    return register


def field_precheck(kind: str, *covers: _FieldCheck) -> Callable[[_FieldPrecheck], _FieldPrecheck]:
    """Register the precheck of the field rules ``covers`` of ``kind`` (True: none can fire)."""

    def register(fn: _FieldPrecheck) -> _FieldPrecheck:
        FIELD_PRECHECKS[kind] = (fn, frozenset(covers))
        return fn

    return register


def _active_prechecks() -> dict[str, _FieldPrecheck]:
    """The prechecks that cover every field rule now registered for their kind."""
    return {
        kind: fn
        for kind, (fn, covers) in FIELD_PRECHECKS.items()
        if covers.issuperset(FIELD_CHECKS.get(kind, ()))
    }


def check_protocol(req: Request, parsed: ParsedRequest, policy: ProtocolPolicy) -> Iterator[Match]:
    """Every protocol-level finding for ``req`` (the engine filters by paranoia).

    The request-level rules run first, then the field rules over every parsed value (one
    pass, dispatched on the value's kind, skipped where a precheck proves none can fire), then
    the rules that need what that pass found.
    """
    facts = _Facts(req, parsed, policy)
    for check in REQUEST_CHECKS:
        yield from check(facts)
    field_checks = FIELD_CHECKS
    prechecks = _active_prechecks() if FIELD_PRECHECKS else {}
    for field in parsed.fields:
        precheck = prechecks.get(field.kind)
        if precheck is not None and precheck(facts, field):
            continue
        for field_check in field_checks.get(field.kind, ()):
            found = field_check(facts, field)
            if found:
                yield from found
    for check in LATE_CHECKS:
        yield from check(facts)


# ------------------------------------------------------------------ request line


@request_rule
def method_token(f: _Facts) -> Iterator[Match]:
    """920100: the method is an RFC 9110 token; 911100: the policy allows it."""
    method = f.req.method
    if not (0 < len(method) <= 20 and all(c in _TCHAR for c in method)):
        yield _m("920100", _CRIT, "request-line", method, "invalid request method token")
    elif f.method not in f.policy.allowed_methods:
        yield _m("911100", _CRIT, "request-line", method, "method not allowed by policy")


@request_rule
def http_version(f: _Facts) -> Iterator[Match]:
    """920430: the HTTP version is one the policy allows."""
    if f.req.http_version not in f.policy.allowed_http_versions:
        yield _m(
            "920430", _CRIT, "request-line", f.req.http_version, "HTTP protocol version not allowed"
        )


@request_rule
def request_target(f: _Facts) -> Iterator[Match]:
    """920100: an absolute-form target (a proxy request) or one not starting with ``/``."""
    target = f.req.target
    if target.lower().startswith(("http://", "https://")):
        yield _m(
            "920100", _CRIT, "request-line", target, "absolute-form request target (proxy request)"
        )
    elif not target.startswith(("/", "*")):
        yield _m("920100", _WARN, "request-line", target, "invalid request target")


@request_rule
def raw_fragment(f: _Facts) -> Iterator[Match]:
    """920610: a ``#`` in the target (browsers never send a fragment)."""
    if "#" in f.req.target:
        # alone it is only a warning: clients do mis-encode '#'
        yield _m("920610", _WARN, "request-line", f.req.target, "raw fragment in request target")


# ------------------------------------------------------------------ framing (smuggling signals)


@request_rule
def content_length_numeric(f: _Facts) -> Iterator[Match]:
    """920160: every Content-Length is a number."""
    for value in f.headers.get("content-length", []):
        if not value.strip().isdigit():
            yield _m(
                "920160", _CRIT, "header:content-length", value, "Content-Length is not numeric"
            )


@request_rule
def content_length_conflict(f: _Facts) -> Iterator[Match]:
    """920165: two different Content-Length values."""
    lengths = f.headers.get("content-length", [])
    if len(set(lengths)) > 1:
        yield _m(
            "920165",
            _CRIT,
            "header:content-length",
            ",".join(lengths),
            "conflicting Content-Length headers",
        )


@request_rule
def bodiless_method(f: _Facts) -> Iterator[Match]:
    """920170 / 920171: a GET or HEAD with a body, or with Transfer-Encoding."""
    if f.method not in ("GET", "HEAD"):
        return
    lengths = f.headers.get("content-length", [])
    if f.req.body or any(v.strip() not in ("", "0") for v in lengths):
        yield _m("920170", _CRIT, "body", str(len(f.req.body)), "GET or HEAD request with a body")
    te = f.one("transfer-encoding")
    if te is not None:
        yield _m(
            "920171",
            _CRIT,
            "header:transfer-encoding",
            te,
            "GET or HEAD request with Transfer-Encoding",
        )


@request_rule
def transfer_encoding_with_length(f: _Facts) -> Iterator[Match]:
    """920181: both Transfer-Encoding and Content-Length."""
    te = f.one("transfer-encoding")
    if te is not None and f.headers.get("content-length"):
        yield _m(
            "920181",
            _WARN,
            "header:transfer-encoding",
            te,
            "both Transfer-Encoding and Content-Length (smuggling)",
        )


@request_rule
def transfer_encoding_value(f: _Facts) -> Iterator[Match]:
    """920182: a Transfer-Encoding other than chunked (possibly after one compression)."""
    te = f.one("transfer-encoding")
    if te is not None and te.strip().lower() not in (
        "chunked",
        "gzip, chunked",
        "deflate, chunked",
    ):
        yield _m(
            "920182", _CRIT, "header:transfer-encoding", te, "unexpected Transfer-Encoding value"
        )


@request_rule
def post_without_length(f: _Facts) -> Iterator[Match]:
    """920180 (paranoia 2): a POST with neither Content-Length nor Transfer-Encoding."""
    if (
        f.method == "POST"
        and not f.headers.get("content-length")
        and f.one("transfer-encoding") is None
        and not f.req.body
    ):
        yield _m(
            "920180",
            _NOTE,
            "headers",
            "",
            "POST without Content-Length or Transfer-Encoding",
            paranoia=2,
        )


# ------------------------------------------------------------------ Host, Accept, User-Agent


@request_rule
def host_header(f: _Facts) -> Iterator[Match]:
    """920280 / 920290 / 920350: Host missing, empty, or a numeric address."""
    host = f.host
    # HTTP/1.1 requires Host (RFC 9112 3.2): clients that omit it are tools, not browsers.
    if host is None:
        yield _m("920280", _CRIT, "header:host", "", "missing Host header")
    elif not host.strip():
        yield _m("920290", _CRIT, "header:host", "", "empty Host header")
    elif all(c in _NUMERIC_HOST_CHARS for c in host.strip()):
        yield _m("920350", _WARN, "header:host", host, "Host header is a numeric IP address")


@request_rule
def accept_header(f: _Facts) -> Iterator[Match]:
    """920300 (paranoia 2) / 920310 / 920600: Accept missing, empty, or with a foreign charset."""
    accept = f.one("accept")
    if accept is None:
        if f.method != "OPTIONS":
            yield _m("920300", _NOTE, "header:accept", "", "missing Accept header", paranoia=2)
    elif not accept.strip():
        yield _m("920310", _CRIT, "header:accept", "", "empty Accept header")
    elif any(cs.lower() not in f.policy.allowed_charsets for cs in _charsets(accept)):
        yield _m(
            "920600", _CRIT, "header:accept", accept, "charset in Accept not allowed by policy"
        )


@request_rule
def user_agent_header(f: _Facts) -> Iterator[Match]:
    """920320 (paranoia 2) / 920330: User-Agent missing or empty."""
    ua = f.one("user-agent")
    if ua is None:
        yield _m("920320", _NOTE, "header:user-agent", "", "missing User-Agent header", paranoia=2)
    elif not ua.strip():
        yield _m("920330", _NOTE, "header:user-agent", "", "empty User-Agent header")


@request_rule
def connection_header(f: _Facts) -> Iterator[Match]:
    """920210: Connection asks for both keep-alive and close."""
    connection = (f.one("connection") or "").lower()
    if "keep-alive" in connection and "close" in connection:
        yield _m(
            "920210", _WARN, "header:connection", connection, "conflicting Connection header values"
        )


@request_rule
def range_header(f: _Facts) -> Iterator[Match]:
    """920190: a byte range ending before it starts; 920200 (paranoia 2): many ranges."""
    rng = f.one("range") or f.one("request-range")
    if rng:
        if _backwards_ranges(rng):
            yield _m("920190", _WARN, "header:range", rng, "invalid Range: last byte before first")
        if rng.count(",") >= 5:
            yield _m("920200", _WARN, "header:range", rng, "too many Range fields", paranoia=2)


@request_rule
def restricted_headers(f: _Facts) -> Iterator[Match]:
    """920450: a header the policy restricts."""
    for name in f.headers:
        if name in f.policy.restricted_headers:
            yield _m("920450", _CRIT, f"header:{name}", name, "restricted HTTP header")


@request_rule
def accept_encoding_length(f: _Facts) -> Iterator[Match]:
    """920520: an Accept-Encoding longer than 100 characters."""
    accept_encoding = f.one("accept-encoding")
    if accept_encoding is not None and len(accept_encoding) > 100:
        yield _m(
            "920520",
            _CRIT,
            "header:accept-encoding",
            accept_encoding,
            "Accept-Encoding header too long",
        )


@request_rule
def header_nul(f: _Facts) -> Iterator[Match]:
    """920274: a NUL byte in a header value (raw or percent-encoded)."""
    for name, values in f.headers.items():
        for value in values:
            if "\x00" in value or "\x00" in url_decode(value):
                yield _m("920274", _CRIT, f"header:{name}", value, "NUL byte in header")


# ------------------------------------------------------------------ content type and charset


@request_rule
def content_type_syntax(f: _Facts) -> Iterator[Match]:
    """920470: Content-Type is not an RFC 9110 media type with known parameters;
    920420: the policy does not allow the media type."""
    raw = f.content_type
    if raw is None:
        return
    parsed = parse_media_type(raw)
    if parsed is None or any(name not in _KNOWN_PARAMETERS for name, _ in parsed[1]):
        yield _m("920470", _CRIT, "header:content-type", raw, "malformed Content-Type")
    elif parsed[0] not in f.policy.allowed_content_types:
        yield _m("920420", _CRIT, "header:content-type", raw, "Content-Type not allowed by policy")


@request_rule
def media_type_in_parameter(f: _Facts) -> Iterator[Match]:
    """921422: a parameter of Content-Type names a media type (a second Content-Type)."""
    raw = f.content_type
    if raw is not None and ";" in raw and _names_a_media_type(raw.split(";", 1)[1]):
        yield _m(
            "921422",
            _CRIT,
            "header:content-type",
            raw,
            "media type inside a Content-Type parameter",
        )


@request_rule
def content_type_charset(f: _Facts) -> Iterator[Match]:
    """920480: a charset the policy does not allow; 920530: more than one charset."""
    raw = f.content_type
    if raw is None:
        return
    charsets = [c.lower() for c in _charsets(raw)]
    if any(c not in f.policy.allowed_charsets for c in charsets):
        yield _m("920480", _CRIT, "header:content-type", raw, "charset not allowed by policy")
    if len(charsets) > 1:
        yield _m("920530", _CRIT, "header:content-type", raw, "multiple charsets in Content-Type")


@request_rule
def body_without_content_type(f: _Facts) -> Iterator[Match]:
    """920340: a body without Content-Type."""
    if f.content_type is None and f.req.body:
        yield _m("920340", _NOTE, "header:content-type", "", "request body without Content-Type")


# ------------------------------------------------------------------ path


@request_rule
def restricted_extension(f: _Facts) -> Iterator[Match]:
    """920440: the last path segment ends with a restricted extension."""
    last = f.path.lower().rsplit("/", 1)[-1]
    if "." in last:
        ext = last.rsplit(".", 1)[-1]
        if ext in f.policy.restricted_extensions:
            yield _m("920440", _CRIT, "path", f.path, f"restricted file extension .{ext}")


@request_rule
def backup_file(f: _Facts) -> Iterator[Match]:
    """920500: a segment that is a backup (``x~``) or editor lock file (``.#x``)."""
    if any(seg.endswith("~") or seg.startswith(".#") for seg in f.path.lower().split("/")):
        yield _m("920500", _CRIT, "path", f.path, "backup or editor working file")


@request_rule
def hidden_file(f: _Facts) -> Iterator[Match]:
    """930130: a segment starting with a dot (``.git``, ``.env``), except ``.well-known``."""
    for segment in f.path.lower().split("/"):
        if (
            len(segment) > 1
            and segment.startswith(".")
            and segment not in ("..", "...", ".well-known")
        ):
            yield _m(
                "930130",
                _CRIT,
                "path",
                f.path,
                "access to a hidden file or directory",
                category="path-traversal",
            )
            return


@request_rule
def path_nul(f: _Facts) -> Iterator[Match]:
    """920270: a NUL byte in the decoded path."""
    if "\x00" in f.path:
        yield _m("920270", _CRIT, "path", f.path, "NUL byte in path")


@request_rule
def url_encoding(f: _Facts) -> Iterator[Match]:
    """920220: invalid percent-encoding; 920260: ``%uFFxx`` full-width escapes."""
    for raw, where in ((f.req.query, "args"), (f.req.path, "path")):
        if "%" not in raw:
            continue
        if _bad_percent(raw):
            yield _m("920220", _WARN, where, raw, "invalid percent-encoding")
        if _fullwidth_escape(raw):
            yield _m("920260", _WARN, where, raw, "%u full-width Unicode encoding abuse")


# ------------------------------------------------------------------ values


@field_rule("arg")
def argument_nul_or_control(f: _Facts, field: Field) -> Sequence[Match]:
    """920270: a NUL byte in a parameter; 920271 (paranoia 2): another control character."""
    value = field.value
    if "\x00" in value:
        return [_m("920270", _CRIT, field.location, value, "NUL byte in parameter")]
    if not value.isprintable() and _control_character(value):
        return [_m("920271", _CRIT, field.location, value, "control character in parameter", 2)]
    return ()


@field_rule("arg")
def argument_length(f: _Facts, field: Field) -> Sequence[Match]:
    """920370: a parameter value longer than the policy allows."""
    if len(field.value) > f.policy.max_arg_value_length:
        return [_m("920370", _CRIT, field.location, field.value[:40], "argument value too long")]
    return ()


@field_rule("arg")
def javascript_unicode_escape(f: _Facts, field: Field) -> Sequence[Match]:
    """920540: a ``\\u00XX`` escape of printable ASCII outside a JSON body."""
    value = field.value
    if "\\u" in value and not field.location.startswith("body:json") and _js_ascii_escape(value):
        message = "JavaScript \\u escape in parameter (Unicode bypass)"
        return [_m("920540", _CRIT, field.location, value, message)]
    return ()


@field_rule("arg")
def multipart_charset_field(f: _Facts, field: Field) -> Sequence[Match]:
    """922110: a ``_charset_`` field naming a charset the policy does not allow."""
    if field.name == "_charset_" and field.value.strip().lower() not in f.policy.allowed_charsets:
        return [_m("922110", _CRIT, field.location, field.value, "multipart _charset_ not allowed")]
    return ()


@field_precheck(
    "arg",
    argument_nul_or_control,
    argument_length,
    javascript_unicode_escape,
    multipart_charset_field,
)
def ordinary_argument(f: _Facts, field: Field) -> bool:
    """No argument rule above can fire: printable (so no NUL or other control character), not
    longer than the policy allows, no ``\\u``, not a ``_charset_`` field."""
    value = field.value
    return (
        value.isprintable()
        and len(value) <= f.policy.max_arg_value_length
        and "\\u" not in value
        and field.name != "_charset_"
    )


@field_rule("arg_name")
def argument_name(f: _Facts, field: Field) -> Sequence[Match]:
    """920270: a NUL byte in a name; 920360: a name longer than the policy allows; session ids
    in names (collected for 943110/943120); 920120: a bad character in a part name."""
    value = field.value
    loc = field.location
    out: list[Match] = []
    if "\x00" in value:
        out.append(_m("920270", _CRIT, loc, value, "NUL byte in parameter"))
    if len(value) > f.policy.max_arg_name_length:
        out.append(_m("920360", _CRIT, loc, value, "argument name too long"))
    if loc.startswith(("args_name:", "body:form_name:", "body:json_key:")):
        if _is_session_name(value):
            f.session_names.append(value)
    elif loc.startswith("body:multipart_name:") and _bad_part_name(value):
        out.append(_m("920120", _CRIT, loc, value, "invalid character in multipart part name"))
    return out


@field_rule("cookie", "body")
def cookie_or_body_nul(f: _Facts, field: Field) -> Sequence[Match]:
    """920270: a NUL byte in a cookie or a raw body."""
    if "\x00" in field.value:
        return [_m("920270", _CRIT, field.location, field.value, "NUL byte in parameter")]
    return ()


@field_rule("body")
def form_body_encoding(f: _Facts, field: Field) -> Sequence[Match]:
    """920240: invalid percent-encoding in a url-encoded body that is not key=value pairs."""
    if f.form_body and field.location == "body:raw" and _bad_percent(f.req.body.decode("latin-1")):
        return [_m("920240", _WARN, "body", field.value, "invalid percent-encoding in form body")]
    return ()


@field_rule("filename")
def multipart_filename(f: _Facts, field: Field) -> Sequence[Match]:
    """920120: a bad character in a multipart file name."""
    if _bad_part_name(field.value):
        message = "invalid character in multipart file name"
        return [_m("920120", _CRIT, field.location, field.value, message)]
    return ()


@field_rule("part_header")
def multipart_part_header(f: _Facts, field: Field) -> Sequence[Match]:
    """922100: a part charset the policy does not allow; 922120: Content-Transfer-Encoding."""
    if field.name == "content-type":
        return [
            _m("922100", _CRIT, field.location, field.value, "multipart part charset not allowed")
            for cs in _charsets(field.value.lower())
            if cs not in f.policy.allowed_charsets
        ]
    if field.name == "content-transfer-encoding":
        message = "deprecated Content-Transfer-Encoding in multipart part"
        return [_m("922120", _CRIT, field.location, field.value, message)]
    return ()


# ------------------------------------------------------------------ after the values


@late_rule
def too_many_arguments(f: _Facts) -> Iterator[Match]:
    """920380: more parameter names than the policy allows."""
    if len(f.parsed.arg_names) > f.policy.max_args:
        yield _m("920380", _CRIT, "args", str(len(f.parsed.arg_names)), "too many arguments")


@late_rule
def session_fixation(f: _Facts) -> Iterator[Match]:
    """943120: a framework session id in the URL without Referer; 943110: a session id with an
    off-site Referer."""
    if not f.session_names:
        return
    first = f.session_names[0]
    referer = f.one("referer")
    ref_host = _referer_host(referer) if referer else None
    own = (f.host or "").split(":", 1)[0].lower()
    if referer is None and _framework_session(first):
        yield _m(
            "943120",
            _WARN,  # a bookmarked URL with a session id is not yet an attack
            "args_name:" + first,
            first,
            "session id in parameters without Referer",
            category="session-fixation",
        )
    elif ref_host and ref_host != own and not ref_host.endswith("." + own):
        yield _m(
            "943110",
            _CRIT,
            "args_name:" + first,
            first,
            "session id in parameters with off-domain Referer",
            category="session-fixation",
        )


@late_rule
def legacy_cookie(f: _Facts) -> Iterator[Match]:
    """921250: RFC 2109 ``$Version`` cookie syntax (parsers disagree on it)."""
    cookie = f.one("cookie")
    if cookie is not None and "$" in cookie and _legacy_cookie(cookie):
        yield _m(
            "921250",
            _CRIT,
            "header:cookie",
            cookie,
            "legacy $Version cookie syntax (cookie parsing confusion)",
        )


@late_rule
def unix_socket_target(f: _Facts) -> Iterator[Match]:
    """921240: mod_proxy's ``unix:...|`` in the target (SSRF to a local socket)."""
    target = f.req.target
    if "unix" in target.lower() and _unix_socket(url_decode(target)):
        yield _m(
            "921240",
            _CRIT,
            "request-line",
            target,
            "mod_proxy unix socket SSRF (unix:...|)",
            category="ssrf",
        )


@late_rule
def parse_anomalies(f: _Facts) -> Iterator[Match]:
    """920380, 920400, 920901-920910, 922130: the parser's findings (limits, malformed
    bodies), each under its rule (see ``_ANOMALY_RULES``)."""
    for anomaly in f.parsed.anomalies:
        rule_id, severity = _ANOMALY_RULES.get(anomaly.code, ("920900", _WARN))
        yield _m(
            rule_id,
            severity,
            anomaly.location,
            anomaly.detail,
            f"request structure: {anomaly.code}",
        )


def _is_session_name(name: str) -> bool:
    """``_SESSION_NAME.search(name)``, with the regex run only when one of its words occurs.

    (The regex has no literal prefix: searched on every parameter name it was a sizeable part
    of the protocol checks of a 40-parameter request.)
    """
    low = (name if name.isascii() else fold_ascii(name)).lower()
    if "sess" in low or "sid" in low or "token" in low or "cakephp" in low:
        return _SESSION_NAME.search(name) is not None
    return False


#: Parse anomalies -> (rule id, severity). An unparsable or oversized body hides its content
#: from inspection, so it blocks (as ModSecurity's REQBODY_ERROR does); so does every count or
#: depth limit (headers, arguments, cookies, parts, nodes, nesting): what lies past it is never
#: inspected, so it must not pass on a warning.
_ANOMALY_RULES: dict[str, tuple[str, Severity]] = {
    "json-invalid": ("920901", _CRIT),
    "json-too-deep": ("920902", _CRIT),
    "xml-too-deep": ("920903", _CRIT),
    "xml-too-large": ("920904", _CRIT),
    "multipart-malformed": ("920905", _CRIT),
    "multipart-no-boundary": ("920906", _CRIT),
    "too-many-parts": ("920907", _CRIT),
    "multipart-duplicate-header": ("922130", _CRIT),
    "too-many-args": ("920380", _CRIT),
    "body-too-large": ("920400", _CRIT),
    "json-too-large": ("920910", _CRIT),
    "too-many-headers": ("920908", _CRIT),
}
