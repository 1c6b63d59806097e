"""Cross-site scripting: hostile tags, event and URI attributes, script sinks (rules 9411xx)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._javascript import JS_SINK
from cognitionos.waf.detectors._match import GatedPatterns, distinct, has_any, snip

__all__ = ["xss_attribute", "xss_script", "xss_tags"]

_I = re.IGNORECASE

_DANGEROUS_TAGS = frozenset(
    {
        "script",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "form",
        "style",
        "svg",
        "math",
        "marquee",
        "meta",
        "base",
        "link",
        "body",
        "img",
        "image",
        "video",
        "audio",
        "isindex",
        "animate",
        "set",
        "bindings",
        "xml",
        "import",
        "layer",
        "ilayer",
        "bgsound",
        "portal",
        "xss",
        "html",
        "template",
        "param",
        "handler",
        "listener",
        "vmlframe",
        "xmp",
        "plaintext",
        "noscript",
        "animatetransform",
        "animatemotion",
        "foreignobject",
        "use",
        "title",
        "textarea",
    }
)
_TAG = re.compile(r"<\s{0,8}(/?)\s{0,8}([a-z][a-z0-9:_-]{0,40})([^<>]{0,2000})", _I)
_ATTR_EVENT = re.compile(r"(?:^|[\s\"'`/;,(+=])on[a-z]{3,40}\s{0,8}=", _I)
_EVENT_NOT = re.compile(
    r"(?:^|[\s\"'`/;,(+=])on(?:line|ly|ce|ion|ions|set|ward|wards|to|board|going|e|es)\s{0,8}=", _I
)
_JS_URI = re.compile(
    r"(?:java|vb|live|ecma|j)script:|data:(?:text/html|image/svg|application/(?:x-)?(?:javascript|xhtml))|data:[^,]{0,60};base64,"
)
_CSS = GatedPatterns(
    [
        (("expression",), r"expression\s{0,8}\("),
        (("-moz-binding",), r"-moz-binding"),
        (("binding",), r"\bbinding\s{0,8}:\s{0,8}url"),
        (("behavio",), r"\bbehaviou?r\s{0,8}:"),
        (("@import",), r"@import\b"),
        (("url",), r"url\s{0,8}\(\s{0,8}[\"']?\s{0,8}(?:java|vb)script"),
    ],
    _I,
)


_HIGH_LATIN = re.compile("[\u00bc\u00be]")
_STRIP_HIGH_BIT = {c: c & 0x7F for c in range(0x80, 0x100)}


_STYLE_ATTR = re.compile(
    r"style\s{0,8}=[^>]{0,400}?(?:url\s{0,8}\(|\\[0-9a-f]{2,6}|expression|behaviou?r|binding|@import)",
    _I,
)
_MARKUP_NAMESPACES = frozenset({"svg", "xsl", "xhtml", "html", "math", "vml", "v", "xlink", "xi"})
_CSS_ESCAPE = re.compile(r"\\([0-9a-f]{1,6})\s?", _I)


def _css_unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = int(m.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else ""

    return _CSS_ESCAPE.sub(one, text)


def _tag_is_hostile(closing: str, name: str, rest: str) -> bool:
    """One ``_TAG`` match (its three groups): a dangerous tag, event handler, script URI..."""
    if name.rsplit(":", 1)[-1] in _DANGEROUS_TAGS:
        return True
    if closing:
        return False
    if _ATTR_EVENT.search(rest) and not _EVENT_NOT.search(rest):
        return True
    if _JS_URI.search(_CONTROL_CHARS.sub("", rest)) or _CSS.search(rest):
        return True
    if "style" in rest and _STYLE_ATTR.search(rest):
        return True
    return ":" in name and name.split(":", 1)[0] in _MARKUP_NAMESPACES


def xss_tags(s: Subject) -> str | None:
    """HTML injection: dangerous tags, event handlers, script URIs and CSS expressions in markup."""
    if not s.utf7 and "<" not in s.lower and "data" not in s.lower:
        return None
    texts = [s.lower]
    if s.utf7:
        texts.append(s.utf7)
    if _HIGH_LATIN.search(s.lower):
        # 7-bit charsets drop the high bit: "\xbcscript\xbe" reads as "<script>".
        texts.append(s.lower.translate(_STRIP_HIGH_BIT))
    for text in texts:
        if "<" not in text:
            continue
        # A tag repeated verbatim gets the same answer: each distinct one is examined once
        # (findall in C, then one Python step per distinct tag, not per occurrence).
        for groups in dict.fromkeys(_TAG.findall(text)):
            if _tag_is_hostile(*groups):
                for m in _TAG.finditer(text):
                    if m.groups() == groups:
                        return snip(text, m)
    # Spaced-out tag names: "<f o r m", "<d i a l o g".
    m2 = _SPACED_TAG.search(s.lower)
    if m2 and re.sub(r"\s+", "", m2.group(1)).rsplit(":", 1)[-1] in _DANGEROUS_TAGS | _SPACED_EXTRA:
        return snip(s.lower, m2)
    m3 = _SPECIAL_MARKUP.search(s.lower)
    return snip(s.lower, m3)


_SPACED_TAG = re.compile(r"<\s{0,4}((?:[a-z:]\s{1,4}){2,12}[a-z])\b")
_SPACED_EXTRA = frozenset(
    {"dialog", "details", "input", "button", "select", "option", "a", "div", "span"}
)
_SPECIAL_MARKUP = GatedPatterns(
    [
        (("<?",), r"<\?(?:import|xml:namespace)\b"),
        (("vml", "shape"), r"<[a-z]{0,10}:(?:vmlframe|vml|shape)\b"),
        (("datasrc",), r"\bdatasrc\s{0,8}="),
        (("dataformatas",), r"\bdataformatas\s{0,8}="),
        (("<![cdata[",), r"<!\[cdata\[[^\]]{0,200}<"),
    ]
)


_CONTROL_CHARS = re.compile(r"[\s\x00-\x1f]+")
_FORMACTION = re.compile(r"(?:^|[\s\"'`/])(?:formaction|xlink:href|srcdoc)\s{0,8}=", _I)
_ENTITY_NAMES = re.compile(r"&(?:tab|newline|nbsp|zwj|zwnj|shy);?", _I)


_CSS_NEEDLES = ("expression", "binding", "behavio", "@import", "url")


def xss_attribute(s: Subject) -> str | None:
    """Attribute-context injection: ``" onmouseover=``, ``javascript:`` URIs, CSS expressions."""
    if not has_any(s.lower, ("=", ":", "(", "@import", "binding")):
        return None
    if "&" in s.lower and ":" in s.lower:
        m0 = _JS_URI.search(_ENTITY_NAMES.sub("", s.compact))
        if m0:
            return snip(s.compact, m0)
    name_like = s.kind in ("arg_name", "cookie_name")
    has_event = "on" in s.lower and "=" in s.lower
    for text in distinct(s.lower, s.stripped) if has_event else ():
        m = _ATTR_EVENT.search(text)
        if m and not _EVENT_NOT.search(text[m.start() : m.end()]):
            tail = text[m.end() : m.end() + 80].strip()
            quoted = m.group()[:1] in ("'", '"', "`")
            if (tail and tail[0] not in "&") or name_like or quoted:
                return snip(text, m)
    m1 = (
        _FORMACTION.search(s.lower) if has_any(s.lower, ("formaction", "xlink", "srcdoc")) else None
    )
    if m1:
        return snip(s.lower, m1)
    m2 = _JS_URI.search(s.compact) if ":" in s.lower else None
    if m2:
        return snip(s.compact, m2)
    m3 = _CSS.search(s.lower) if has_any(s.lower, _CSS_NEEDLES) else None
    if m3:
        return snip(s.lower, m3)
    if "\\" in s.lower:
        css = _css_unescape(s.lower)
        m4 = _CSS.search(css) or _JS_URI.search(_CONTROL_CHARS.sub("", css))
        return snip(css, m4)
    return None


_JS_NEEDLES = (
    "alert",
    "prompt",
    "confirm",
    "msgbox",
    "eval",
    "settimeout",
    "setinterval",
    "execscript",
    "import",
    "fromcharcode",
    "atob",
    "btoa",
    "document",
    "window",
    "self",
    "top",
    "parent",
    "frames",
    "globalthis",
    "this",
    "constructor",
    "function",
    "location",
    "innerhtml",
    "outerhtml",
    "srcdoc",
    "adjacent",
    "xmlhttprequest",
    "fetch",
    "reflect",
    ".call",
    ".apply",
    "$",
    "[",
    "new ",
)


def xss_script(s: Subject) -> str | None:
    """JavaScript execution sinks: ``alert(1)``, ``document.cookie``, ``eval(``, ``(alert)(1)``."""
    if not has_any(s.lower, _JS_NEEDLES):
        return None
    for text in distinct(s.lower, s.stripped, s.nocomment):
        m = JS_SINK.search(text)
        if m:
            return snip(text, m)
    return None
