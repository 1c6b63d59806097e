"""Protocol enforcement: request-level checks on method, headers, framing and body structure."""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from cognitionos.waf._normalize import url_decode
from cognitionos.waf._parse import ParsedRequest
from cognitionos.waf._regex import fold_ascii
from cognitionos.waf.models import Match, Request, Severity

__all__ = ["ProtocolPolicy", "check_protocol"]

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


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$")
_BAD_ENCODING = re.compile(r"%(?![0-9a-fA-F]{2}|[uU][0-9a-fA-F]{4})")
_UNICODE_ESCAPE = re.compile(r"%[uU][fF]{2}[0-9a-fA-F]{2}")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_RANGE = re.compile(r"(?<![\d-])(\d{1,19})-(\d{1,19})")
# Names that end like a session id. Not here: a bare "sid" (analytics beacons send their own
# session number under it - GA4, Snowplow - to a collector on another domain, Referer and all)
# and other "session_*" names such as OpenID Connect's "session_state" on a login callback.
_SESSION_NAME = re.compile(
    r"sess(?:ion)?(?:[._-]?(?:id|key|token))?$|aspsessionid\w{0,12}$|[.-]sid$|(?:cf|j|php|asp)sid$|"
    r"^cftoken$|(?:login|auth)[._-]?token$|^cakephp$",
    re.IGNORECASE,
)
# Framework session cookie names: in a URL they mean session fixation even without a Referer.
_FRAMEWORK_SESSION = re.compile(
    r"^(?:jsessionid|phpsessid|aspsessionid\w{0,12}|asp\.net_sessionid|cfid|cftoken|laravel_session|_rails_session|_session_id|connect\.sid|koa[.:]sess|ci_session|symfony|jwsession|jservsession|weblogicsession)$",
    re.IGNORECASE,
)
_CTYPE_PARAMS = re.compile(
    r"^(?:\s?;?\s{0,4}(?:action|boundary|charset|component|start(?:-info)?|type|version)\s?=\s?[\"'\w.()+,/:=?<>@#*-]{1,200})*\s{0,4}$",
    re.IGNORECASE,
)
_NUMERIC_HOST = re.compile(r"^[\d.:\[\]]+$")
_MEDIA_TYPE_FULL = re.compile(r"^[\w.+*-]+/[\w.+*-]+$")
_CONTROL_CHAR = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f]")
_UNIX_SOCKET = re.compile(r"unix:[^|]{0,400}\|", re.IGNORECASE)
_LEGACY_COOKIE = re.compile(r"(?:^|;)\s*\$(?:version|path|domain)\b", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"\b[a-z]+/[\w.+-]+", re.IGNORECASE)
# \u escapes of printable ASCII: escaping "a" as \u0061 is evasion, escaping "é" is not.
_JS_UNICODE = re.compile(r"\\u00[2-7][0-9a-fA-F]")
_BAD_PART_NAME = re.compile(r"['\";=\\]")
_HOST_OF = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:?#]+)", re.IGNORECASE)


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


def check_protocol(req: Request, parsed: ParsedRequest, policy: ProtocolPolicy) -> Iterator[Match]:
    """Every protocol-level finding for ``req`` (the engine filters by paranoia)."""
    method = req.method.upper()
    if not _TOKEN.match(req.method):
        yield _m("920100", _CRIT, "request-line", req.method, "invalid request method token")
    elif method not in policy.allowed_methods:
        yield _m("911100", _CRIT, "request-line", req.method, "method not allowed by policy")
    if req.http_version not in policy.allowed_http_versions:
        yield _m(
            "920430", _CRIT, "request-line", req.http_version, "HTTP protocol version not allowed"
        )
    if req.target.lower().startswith(("http://", "https://")):
        yield _m(
            "920100",
            _CRIT,
            "request-line",
            req.target,
            "absolute-form request target (proxy request)",
        )
    elif not req.target.startswith(("/", "*")):
        yield _m("920100", _WARN, "request-line", req.target, "invalid request target")
    if "#" in req.target:
        # Browsers never send a fragment; alone it is only a warning (clients do mis-encode '#').
        yield _m("920610", _WARN, "request-line", req.target, "raw fragment in request target")

    headers: dict[str, list[str]] = {}
    for key, value in req.headers:
        headers.setdefault(key.lower(), []).append(value)

    def one(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    # Framing and smuggling signals.
    cl = headers.get("content-length", [])
    te = one("transfer-encoding")
    for value in cl:
        if not value.strip().isdigit():
            yield _m(
                "920160", _CRIT, "header:content-length", value, "Content-Length is not numeric"
            )
    if len(set(cl)) > 1:
        yield _m(
            "920165",
            _CRIT,
            "header:content-length",
            ",".join(cl),
            "conflicting Content-Length headers",
        )
    if method in ("GET", "HEAD"):
        if req.body or any(v.strip() not in ("", "0") for v in cl):
            yield _m("920170", _CRIT, "body", str(len(req.body)), "GET or HEAD request with a body")
        if te is not None:
            yield _m(
                "920171",
                _CRIT,
                "header:transfer-encoding",
                te,
                "GET or HEAD request with Transfer-Encoding",
            )
    if te is not None and cl:
        yield _m(
            "920181",
            _WARN,
            "header:transfer-encoding",
            te,
            "both Transfer-Encoding and Content-Length (smuggling)",
        )
    if te is not None and te.strip().lower() not in (
        "chunked",
        "gzip, chunked",
        "deflate, chunked",
    ):
        yield _m(
            "920182", _CRIT, "header:transfer-encoding", te, "unexpected Transfer-Encoding value"
        )
    if method == "POST" and not cl and te is None and not req.body:
        yield _m(
            "920180",
            _NOTE,
            "headers",
            "",
            "POST without Content-Length or Transfer-Encoding",
            paranoia=2,
        )

    # Host, Accept, User-Agent.
    host = one("host")
    # HTTP/1.1 requires Host (RFC 9112 3.2): clients that omit it are tools, not browsers.
    if host is None:
        yield _m("920280", _CRIT, "header:host", "", "missing Host header")
    elif not host.strip():
        yield _m("920290", _CRIT, "header:host", "", "empty Host header")
    elif _NUMERIC_HOST.match(host.strip()):
        yield _m("920350", _WARN, "header:host", host, "Host header is a numeric IP address")
    accept = one("accept")
    if accept is None and method != "OPTIONS":
        yield _m("920300", _NOTE, "header:accept", "", "missing Accept header", paranoia=2)
    elif accept is not None and not accept.strip():
        yield _m("920310", _CRIT, "header:accept", "", "empty Accept header")
    elif accept is not None:
        for cs in _CHARSET.findall(accept):
            if cs.lower() not in policy.allowed_charsets:
                yield _m(
                    "920600",
                    _CRIT,
                    "header:accept",
                    accept,
                    "charset in Accept not allowed by policy",
                )
                break
    ua = one("user-agent")
    if ua is None:
        yield _m("920320", _NOTE, "header:user-agent", "", "missing User-Agent header", paranoia=2)
    elif not ua.strip():
        yield _m("920330", _NOTE, "header:user-agent", "", "empty User-Agent header")
    connection = (one("connection") or "").lower()
    if "keep-alive" in connection and "close" in connection:
        yield _m(
            "920210", _WARN, "header:connection", connection, "conflicting Connection header values"
        )
    rng = one("range") or one("request-range")
    if rng:
        pairs = _RANGE.findall(rng)
        if any(int(a) > int(b) for a, b in pairs):
            yield _m("920190", _WARN, "header:range", rng, "invalid Range: last byte before first")
        if rng.count(",") >= 5:
            yield _m("920200", _WARN, "header:range", rng, "too many Range fields", paranoia=2)
    for name in headers:
        if name in policy.restricted_headers:
            yield _m("920450", _CRIT, f"header:{name}", name, "restricted HTTP header")
    accept_encoding = one("accept-encoding")
    if accept_encoding is not None and len(accept_encoding) > 100:
        yield _m(
            "920520",
            _CRIT,
            "header:accept-encoding",
            accept_encoding,
            "Accept-Encoding header too long",
        )
    for name, values in headers.items():
        for value in values:
            if "\x00" in value or "\x00" in url_decode(value):
                yield _m("920274", _CRIT, f"header:{name}", value, "NUL byte in header")

    # Content type and charset.
    ctype_raw = one("content-type")
    if ctype_raw is not None:
        ctype = ctype_raw.split(";", 1)[0].strip().lower()
        if not _MEDIA_TYPE_FULL.match(ctype) or not _CTYPE_PARAMS.match(
            ctype_raw.split(";", 1)[1] if ";" in ctype_raw else ""
        ):
            yield _m("920470", _CRIT, "header:content-type", ctype_raw, "malformed Content-Type")
        elif ctype not in policy.allowed_content_types:
            yield _m(
                "920420",
                _CRIT,
                "header:content-type",
                ctype_raw,
                "Content-Type not allowed by policy",
            )
        if len(_MEDIA_TYPE.findall(ctype_raw.split(";", 1)[-1] if ";" in ctype_raw else "")) > 0:
            yield _m(
                "921422",
                _CRIT,
                "header:content-type",
                ctype_raw,
                "media type inside a Content-Type parameter",
            )
        charsets = [c.lower() for c in _CHARSET.findall(ctype_raw)]
        if any(c not in policy.allowed_charsets for c in charsets):
            yield _m(
                "920480", _CRIT, "header:content-type", ctype_raw, "charset not allowed by policy"
            )
        if len(charsets) > 1:
            yield _m(
                "920530",
                _CRIT,
                "header:content-type",
                ctype_raw,
                "multiple charsets in Content-Type",
            )
    elif req.body:
        yield _m("920340", _NOTE, "header:content-type", "", "request body without Content-Type")

    # Path: restricted extensions, backups, hidden files, encoding abuse.
    path = url_decode(req.path)
    lower_path = path.lower()
    last = lower_path.rsplit("/", 1)[-1]
    if "." in last:
        ext = last.rsplit(".", 1)[-1]
        if ext in policy.restricted_extensions:
            yield _m("920440", _CRIT, "path", path, f"restricted file extension .{ext}")
    if any(seg.endswith("~") or seg.startswith(".#") for seg in lower_path.split("/")):
        yield _m("920500", _CRIT, "path", path, "backup or editor working file")
    for segment in lower_path.split("/"):
        if (
            len(segment) > 1
            and segment.startswith(".")
            and segment not in ("..", "...", ".well-known")
        ):
            yield _m(
                "930130",
                _CRIT,
                "path",
                path,
                "access to a hidden file or directory",
                category="path-traversal",
            )
            break
    if "\x00" in path:
        yield _m("920270", _CRIT, "path", path, "NUL byte in path")
    for raw, where in ((req.query, "args"), (req.path, "path")):
        if _BAD_ENCODING.search(raw):
            yield _m("920220", _WARN, where, raw, "invalid percent-encoding")
        if _UNICODE_ESCAPE.search(raw):
            yield _m("920260", _WARN, where, raw, "%u full-width Unicode encoding abuse")

    # Values: NUL bytes and control characters, sizes. Dispatch on the kind once per field; the
    # per-request constants are hoisted out of the loop.
    session_names: list[str] = []
    max_name = policy.max_arg_name_length
    max_value = policy.max_arg_value_length
    form_body = bool(req.body) and (ctype_raw or "").split(";", 1)[0].strip().lower() in (
        "",
        "application/x-www-form-urlencoded",
    )
    for f in parsed.fields:
        kind = f.kind
        value = f.value
        if kind == "arg":
            if "\x00" in value:
                yield _m("920270", _CRIT, f.location, value, "NUL byte in parameter")
            elif not value.isprintable() and _CONTROL_CHAR.search(value):
                yield _m(
                    "920271",
                    _CRIT,
                    f.location,
                    value,
                    "control character in parameter",
                    paranoia=2,
                )
            if len(value) > max_value:
                yield _m("920370", _CRIT, f.location, value[:40], "argument value too long")
            if (
                "\\u" in value
                and not f.location.startswith("body:json")
                and _JS_UNICODE.search(value)
            ):
                yield _m(
                    "920540",
                    _CRIT,
                    f.location,
                    value,
                    "JavaScript \\u escape in parameter (Unicode bypass)",
                )
            if f.name == "_charset_" and value.strip().lower() not in policy.allowed_charsets:
                yield _m("922110", _CRIT, f.location, value, "multipart _charset_ not allowed")
        elif kind == "arg_name":
            if "\x00" in value:
                yield _m("920270", _CRIT, f.location, value, "NUL byte in parameter")
            if len(value) > max_name:
                yield _m("920360", _CRIT, f.location, value, "argument name too long")
            loc = f.location
            if loc.startswith(
                ("args_name:", "body:form_name:", "body:json_key:")
            ) and _is_session_name(value):
                session_names.append(value)
            elif loc.startswith("body:multipart_name:") and _BAD_PART_NAME.search(value):
                yield _m("920120", _CRIT, loc, value, "invalid character in multipart part name")
        elif kind in ("cookie", "body"):
            if "\x00" in value:
                yield _m("920270", _CRIT, f.location, value, "NUL byte in parameter")
            if (
                kind == "body"
                and form_body
                and f.location == "body:raw"
                and _BAD_ENCODING.search(req.body.decode("latin-1"))
            ):
                yield _m("920240", _WARN, "body", value, "invalid percent-encoding in form body")
        elif kind == "filename":
            if _BAD_PART_NAME.search(value):
                yield _m(
                    "920120", _CRIT, f.location, value, "invalid character in multipart file name"
                )
        elif kind == "part_header":
            if f.name == "content-type":
                for cs in _CHARSET.findall(value.lower()):
                    if cs not in policy.allowed_charsets:
                        yield _m(
                            "922100",
                            _CRIT,
                            f.location,
                            value,
                            "multipart part charset not allowed",
                        )
            elif f.name == "content-transfer-encoding":
                yield _m(
                    "922120",
                    _CRIT,
                    f.location,
                    value,
                    "deprecated Content-Transfer-Encoding in multipart part",
                )
    if len(parsed.arg_names) > policy.max_args:
        yield _m("920380", _CRIT, "args", str(len(parsed.arg_names)), "too many arguments")

    if session_names:
        referer = one("referer")
        ref_host = None
        if referer:
            m = _HOST_OF.match(referer.strip())
            ref_host = m.group(1).lower() if m else None
        own = (host or "").split(":", 1)[0].lower()
        if referer is None and _FRAMEWORK_SESSION.match(session_names[0]):
            yield _m(
                "943120",
                _WARN,  # a bookmarked URL with a session id is not yet an attack
                "args_name:" + session_names[0],
                session_names[0],
                "session id in parameters without Referer",
                category="session-fixation",
            )
        elif ref_host and ref_host != own and not ref_host.endswith("." + own):
            yield _m(
                "943110",
                _CRIT,
                "args_name:" + session_names[0],
                session_names[0],
                "session id in parameters with off-domain Referer",
                category="session-fixation",
            )

    cookie_header = one("cookie")
    if cookie_header is not None and "$" in cookie_header and _LEGACY_COOKIE.search(cookie_header):
        yield _m(
            "921250",
            _CRIT,
            "header:cookie",
            cookie_header,
            "legacy $Version cookie syntax (cookie parsing confusion)",
        )
    if "unix" in req.target.lower() and _UNIX_SOCKET.search(url_decode(req.target)):
        yield _m(
            "921240",
            _CRIT,
            "request-line",
            req.target,
            "mod_proxy unix socket SSRF (unix:...|)",
            category="ssrf",
        )

    for anomaly in parsed.anomalies:
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
