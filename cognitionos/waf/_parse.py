"""Request parsing: every value the detectors see, with the location it came from.

Parsing is bounded by :class:`ParseLimits`; exceeding a limit truncates the
work and records an anomaly that protocol enforcement scores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.waf._normalize import url_decode
from cognitionos.waf.models import Request

__all__ = ["Anomaly", "Field", "ParseLimits", "ParsedRequest", "parse_request"]


@attrs.frozen(slots=True)
class ParseLimits:
    """Bounds on parsing and inspection work; anything beyond is flagged, never passed silently.

    The inspection budget bounds the detectors' work per request, so a hostile 100 KB body
    costs a bounded time: at most ``max_inspected_values`` distinct values go through the
    detectors (920910 beyond), each value at most ``max_value_length`` characters (920911
    beyond) and all of them together at most ``max_inspected_chars`` characters (920912
    beyond). With ``oversize="inspect_ends"`` (the default, like AWS WAF's "continue" oversize
    handling) a value over its allowance is inspected at both ends (its first and last halves
    of the allowance), so filler placed in front of an attack, the usual way to slip past a
    size limit, does not hide it, and the request gets one warning; when the values together
    exceed ``max_inspected_chars`` the budget is shared so that every value gets an equal
    allowance, short values in full. Every limit whose excess is not inspected at all (values
    past the count, headers, arguments, cookies, parts, nodes, nesting, body bytes) is critical
    in every mode: the request is blocked at the default threshold. With ``oversize="block"``
    the two end-inspected limits are critical too and nothing else is inspected.
    """

    max_body_bytes: int = 1_048_576
    max_args: int = 1000
    #: Longest value inspected in full (characters); a longer one is inspected at both ends.
    max_value_length: int = 32_768
    #: Characters run through the detectors per request, all values together.
    max_inspected_chars: int = 32_768
    #: Most distinct values run through the detectors per request (a short hostile value costs
    #: up to ~40 µs of detector work, so 512 bound that part to ~20 ms).
    max_inspected_values: int = 512
    #: What a request over the inspection budget gets: "block" or "inspect_ends".
    oversize: Literal["block", "inspect_ends"] = attrs.field(default="inspect_ends")

    @oversize.validator
    def _check_oversize(self, _attribute: object, value: str) -> None:
        if value not in ("block", "inspect_ends"):
            raise ConfigurationError(f"oversize must be 'block' or 'inspect_ends', got {value!r}")

    max_json_depth: int = 64
    max_xml_depth: int = 64
    max_multipart_parts: int = 200
    max_headers: int = 200

    def __attrs_post_init__(self) -> None:
        # a string or a negative bound would only fail later, inside inspect(), as a TypeError
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.name.startswith("max_") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"ParseLimits.{field.name} must be a positive integer, got {value!r}"
                )


class Field(NamedTuple):
    """One inspected value; ``kind`` selects the detectors (``arg``, ``arg_name``, ``header``).

    A named tuple: a 2 KB form builds ~70 of these per request, and tuple construction costs a
    fraction of a frozen attrs instance's.
    """

    location: str
    value: str
    kind: str
    name: str = ""


class Anomaly(NamedTuple):
    """A structural problem found while parsing (limit exceeded, malformed body...)."""

    code: str
    location: str
    detail: str


@attrs.define(slots=True)
class ParsedRequest:
    """The request broken into fields, plus parsing anomalies."""

    fields: list[Field] = attrs.field(factory=list)
    anomalies: list[Anomaly] = attrs.field(factory=list)
    arg_names: list[str] = attrs.field(factory=list)


def _form_decode(value: str) -> str:
    if "+" in value:
        value = value.replace("+", " ")
    return url_decode(value) if "%" in value else value


def parse_urlencoded(
    text: str, prefix: str, limits: ParseLimits, out: ParsedRequest, *, plus: bool = True
) -> None:
    """Split ``a=1&b=2`` into arg and arg-name fields under ``prefix`` (``args``, ``body:form``)."""
    if not text:
        return
    pairs = text.split("&")
    if len(pairs) > limits.max_args:
        out.anomalies.append(Anomaly("too-many-args", prefix, str(len(pairs))))
        pairs = pairs[: limits.max_args]
    decode = _form_decode if plus else url_decode
    fields = out.fields
    names = out.arg_names
    name_prefix = prefix + "_name:"
    value_prefix = prefix + ":"
    for pair in pairs:
        if not pair:
            continue
        raw_name, sep, value = pair.partition("=")
        # Most names and many values carry neither "%" nor "+": nothing to decode.
        name = decode(raw_name) if "%" in raw_name or "+" in raw_name else raw_name
        if "%" in value or "+" in value:
            value = decode(value)
        names.append(name)
        fields.append(Field(name_prefix + name, name, "arg_name", name))
        if sep:
            fields.append(Field(value_prefix + name, value, "arg", name))


_COOKIE_SPLIT = re.compile(r";\s*")
_ENTITY_SPLIT = re.compile(r"&(?:#[0-9]|#x[0-9a-f]|[a-z]{2,8};)", re.IGNORECASE)


def parse_cookies(header: str, limits: ParseLimits, out: ParsedRequest) -> None:
    """``a=1; b=2`` into cookie and cookie-name fields."""
    parts = _COOKIE_SPLIT.split(header)
    if len(parts) > limits.max_args:
        # the cookies past the limit are not inspected: that must not pass silently
        out.anomalies.append(Anomaly("too-many-args", "header:cookie", str(len(parts))))
        parts = parts[: limits.max_args]
    for part in parts:
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        out.fields.append(Field(f"cookie_name:{name}", name, "cookie_name", name))
        if sep:
            out.fields.append(
                Field(f"cookie:{name}", url_decode(value.strip().strip('"')), "cookie", name)
            )


def _walk_json(
    node: object, path: str, depth: int, limits: ParseLimits, out: ParsedRequest, budget: list[int]
) -> None:
    if budget[0] <= 0:
        if budget[0] == 0:
            out.anomalies.append(Anomaly("json-too-large", "limit:max_args", path))
            budget[0] = -1
        return
    budget[0] -= 1
    if depth > limits.max_json_depth:
        out.anomalies.append(Anomaly("json-too-deep", f"body:json:{path}", str(depth)))
        return
    if isinstance(node, dict):
        for key, value in node.items():
            key_s = str(key)
            out.arg_names.append(key_s)
            out.fields.append(Field(f"body:json_key:{path}.{key_s}", key_s, "arg_name", key_s))
            _walk_json(value, f"{path}.{key_s}", depth + 1, limits, out, budget)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk_json(value, f"{path}[{i}]", depth + 1, limits, out, budget)
    elif isinstance(node, str):
        out.fields.append(Field(f"body:json:{path}", node, "arg", path))
    elif node is not None and not isinstance(node, bool | int | float):
        out.fields.append(Field(f"body:json:{path}", str(node), "arg", path))


def parse_json(text: str, limits: ParseLimits, out: ParsedRequest) -> None:
    """Parse a JSON body and add one field per string value and per key."""
    try:
        doc = json.loads(text)
    except RecursionError:
        # the C decoder guards its own recursion: hostile nesting ends here, not in a crash
        out.anomalies.append(Anomaly("json-too-deep", "body:json", "recursion limit"))
        out.fields.append(Field("body:raw", text, "body", "body"))
        return
    except ValueError:
        out.anomalies.append(Anomaly("json-invalid", "body:json", text[:40]))
        out.fields.append(Field("body:raw", text, "body", "body"))
        return
    before = len(out.anomalies)
    _walk_json(doc, "$", 0, limits, out, [limits.max_args * 10])
    if any(a.code == "json-too-deep" for a in out.anomalies[before:]):
        # what lies below the depth limit is still inspected, as raw text
        out.fields.append(Field("body:raw", text, "body", "body"))


_XML_ATTR = re.compile(
    r"""([^\s=/<>"']{1,100})\s{0,8}=\s{0,8}(?:"([^"]{0,65536})"|'([^']{0,65536})')"""
)


def _xml_tokens(text: str) -> Iterator[tuple[str, str, str]]:
    """Linear scan of XML: ``(kind, name, content)`` for cdata, tags (open/close) and text."""
    i = 0
    n = len(text)
    while i < n:
        lt = text.find("<", i)
        if lt < 0:
            yield ("text", "", text[i:])
            return
        if lt > i:
            yield ("text", "", text[i:lt])
        if text.startswith("<![CDATA[", lt):
            end = text.find("]]>", lt + 9)
            stop = n if end < 0 else end
            yield ("cdata", "", text[lt + 9 : stop])
            i = n if end < 0 else end + 3
            continue
        if text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = text.find(">", lt + 1)
        if gt < 0:
            yield ("text", "", text[lt:])
            return
        inner = text[lt + 1 : gt]
        i = gt + 1
        if inner[:1] in ("!", "?"):
            continue
        closing = inner.startswith("/")
        body = inner[1:] if closing else inner
        name_end = 0
        while name_end < len(body) and body[name_end] not in " \t\r\n/>":
            name_end += 1
        yield ("close" if closing else "open", body[:name_end], body[name_end:])


def parse_xml(text: str, limits: ParseLimits, out: ParsedRequest) -> None:
    """Scan an XML body (no entity expansion, no DTD fetching): text nodes and attribute values.

    The raw body is kept too, so XXE detection sees DOCTYPE and ENTITY declarations.
    """
    import html

    out.fields.append(Field("body:raw", text, "body", "body"))
    stack: list[str] = []
    count = 0
    for kind, name, content in _xml_tokens(text):
        count += 1
        if count > limits.max_args * 4:
            out.anomalies.append(Anomaly("xml-too-large", "body:xml", str(count)))
            break
        where = "/" + "/".join(stack[-8:])
        if kind == "cdata":
            out.fields.append(Field(f"body:xml:{where}", content, "arg", where))
        elif kind == "close":
            if stack:
                stack.pop()
        elif kind == "open":
            if not name:
                continue
            if len(stack) >= limits.max_xml_depth:
                out.anomalies.append(Anomaly("xml-too-deep", "body:xml", str(len(stack))))
                break
            for am in _XML_ATTR.finditer(content):
                count += 1  # attributes count toward the node budget too (one tag can hold 10k)
                if count > limits.max_args * 4:
                    break
                value = am.group(2) if am.group(2) is not None else am.group(3)
                loc = f"{where}/{name}/@{am.group(1)}".replace("//", "/")
                out.fields.append(
                    Field(
                        f"body:xml:{loc}",
                        html.unescape(value) if "&" in value else value,
                        "arg",
                        am.group(1),
                    )
                )
            if count > limits.max_args * 4:
                out.anomalies.append(Anomaly("xml-too-large", "body:xml", str(count)))
                break
            if not content.rstrip().endswith("/"):
                stack.append(name)
        elif content.strip():
            out.fields.append(
                Field(f"body:xml:{where}", html.unescape(content.strip()), "arg", where)
            )


_BOUNDARY = re.compile(r"""boundary=(?:"([^"]+)"|([^\s;]+))""", re.IGNORECASE)
_DISPOSITION_NAME = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|([^\s;]+))""", re.IGNORECASE)
_DISPOSITION_FILE = re.compile(r"""\bfilename\*?\s*=\s*(?:"([^"]*)"|([^\s;]+))""", re.IGNORECASE)


def parse_multipart(
    body: bytes, content_type: str, limits: ParseLimits, out: ParsedRequest
) -> None:
    """Split ``multipart/form-data``: each part's name, filename, headers, value become fields."""
    m = _BOUNDARY.search(content_type)
    if not m:
        out.anomalies.append(
            Anomaly("multipart-no-boundary", "header:content-type", content_type[:60])
        )
        return
    boundary = (m.group(1) or m.group(2)).encode("latin-1", "replace")
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        out.anomalies.append(Anomaly("multipart-malformed", "body:multipart", "boundary not found"))
        return
    parts = chunks[1:]
    if len(parts) > limits.max_multipart_parts:
        out.anomalies.append(Anomaly("too-many-parts", "body:multipart", str(len(parts))))
        parts = parts[: limits.max_multipart_parts]
    for chunk in parts:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        sep = b"\r\n\r\n" if b"\r\n\r\n" in chunk else b"\n\n"
        head, found, content = chunk.partition(sep)
        if not found:
            head, content = chunk, b""
        content = content.removesuffix(b"\r\n").removesuffix(b"\n")
        head_text = head.decode("utf-8", "replace")
        headers: dict[str, list[str]] = {}
        for line in re.split(r"\r?\n", head_text):
            if ":" in line:
                key, _, value = line.partition(":")
                headers.setdefault(key.strip().lower(), []).append(value.strip())
        disposition = " ".join(headers.get("content-disposition", []))
        nm = _DISPOSITION_NAME.search(disposition)
        name = (
            nm.group(1) if nm and nm.group(1) is not None else (nm.group(2) if nm else "")
        ) or ""
        fm = _DISPOSITION_FILE.search(disposition)
        loc = f"body:multipart:{name}"
        for key, values in headers.items():
            for value in values:
                out.fields.append(Field(f"{loc}:header:{key}", value, "part_header", key))
            if len(values) > 1:
                out.anomalies.append(Anomaly("multipart-duplicate-header", loc, key))
        out.arg_names.append(name)
        out.fields.append(Field(f"body:multipart_name:{name}", name, "arg_name", name))
        if fm:
            filename = fm.group(1) if fm.group(1) is not None else fm.group(2)
            out.fields.append(Field(f"{loc}:filename", filename, "filename", name))
        # an uploaded image or archive is not text an interpreter will parse: its name and
        # part headers are inspected (above), its bytes are not (as CRS leaves FILES content)
        if not (fm and _is_binary(content)):
            # at most both ends of a large upload: the engine inspects a too-long value at its
            # ends (and sees that it is too long), never the middle joined here
            keep = limits.max_value_length
            if len(content) > 2 * keep:
                content = content[:keep] + content[-keep:]
            text = content.decode("utf-8", "replace")
            out.fields.append(Field(loc, text, "arg", name))


def _is_binary(content: bytes) -> bool:
    """Binary file content: NUL bytes, or not UTF-8, within the first 8 KiB."""
    head = content[:8192]
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the 8 KiB boundary is still text
        return exc.start < len(head) - 3
    return False


def parse_request(req: Request, limits: ParseLimits) -> ParsedRequest:
    """Break ``req`` into inspected fields: path, query args, cookies, headers and the body."""
    out = ParsedRequest()
    out.fields.append(Field("path", url_decode(req.path), "path", "path"))
    parse_urlencoded(req.query, "args", limits, out)
    if "&" in req.query:
        # A raw "&" that starts an HTML entity splits the value into bogus parameters; the whole
        # query string is then inspected once more as a single value.
        whole = url_decode(req.query)
        if _ENTITY_SPLIT.search(whole):
            out.fields.append(Field("query", whole, "query", "query"))
    headers = req.headers
    if len(headers) > limits.max_headers:
        out.anomalies.append(Anomaly("too-many-headers", "headers", str(len(headers))))
        headers = headers[: limits.max_headers]
    for key, value in headers:
        lkey = key.lower()
        if lkey == "cookie":
            parse_cookies(value, limits, out)
        else:
            out.fields.append(Field(f"header:{lkey}", value, "header", lkey))
    body = req.body
    if not body:
        return out
    if len(body) > limits.max_body_bytes:
        out.anomalies.append(Anomaly("body-too-large", "body", str(len(body))))
        body = body[: limits.max_body_bytes]
    content_type = (req.header("content-type") or "").strip()
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype.startswith("multipart/"):
        parse_multipart(body, content_type, limits, out)
        return out
    text = body.decode("utf-8", "replace")
    if ctype in ("", "application/x-www-form-urlencoded"):
        parse_urlencoded(text, "body:form", limits, out)
        if "=" not in text:
            out.fields.append(Field("body:raw", _form_decode(text), "body", "body"))
    elif ctype == "application/json" or ctype.endswith("+json"):
        parse_json(text, limits, out)
    elif ctype in ("application/xml", "text/xml") or ctype.endswith("+xml"):
        parse_xml(text, limits, out)
    else:
        out.fields.append(Field("body:raw", text, "body", "body"))
    return out
