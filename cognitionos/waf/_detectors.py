"""Detectors: each takes a :class:`Subject` and returns the matched snippet or ``None``.

Every regular expression here is linear-time on hostile input: no nested
quantifiers over overlapping classes, bounded repetition where a gap is needed.
"""

from __future__ import annotations

import re

from cognitionos.waf._normalize import decode_js_escapes
from cognitionos.waf._regex import alternation as _alternation
from cognitionos.waf._regex import fold_ascii as _fold_ascii
from cognitionos.waf._sqli import detect_sqli
from cognitionos.waf._subject import Subject

__all__ = ["DETECTORS"]

_I = re.IGNORECASE


#: Needles of a :class:`_GatedPatterns` item searched whatever the text holds.
_ALWAYS = ("",)


class _GatedPatterns:
    """Many small patterns, each searched only when one of its literal needles occurs.

    One big alternation makes the regex engine try every branch at every position; gating
    each branch on a substring test (a C-speed scan) keeps long values cheap. Short values
    (most parameters) are searched with the plain alternation in one call instead.
    """

    __slots__ = ("_ascii_gate", "_items", "_union")

    #: Up to this length one search of the whole alternation is cheaper than the gates.
    SHORT = 256

    def __init__(
        self, items: list[tuple[tuple[str, ...], str]], flags: int = 0, *, ascii_gate: bool = False
    ) -> None:
        self._items = [(needles, re.compile(pattern, flags)) for needles, pattern in items]
        self._union = re.compile("|".join(f"(?:{pattern})" for _, pattern in items), flags)
        self._ascii_gate = ascii_gate

    def search(self, text: str) -> re.Match[str] | None:
        if len(text) <= self.SHORT:
            return self._union.search(text)
        best: re.Match[str] | None = None
        # A case-insensitive pattern also matches the few non-ASCII letters that fold to an ASCII
        # one ("\u0131" for "i", "\u017f" for "s"): needles are looked up in a copy where those
        # letters are folded, so a needle is present whenever a match can be.
        gate_text = text if text.isascii() else _fold_ascii(text)
        for needles, pattern in self._items:
            if _has_any(gate_text, needles):
                m = pattern.search(text)
                if m and (best is None or m.start() < best.start()):
                    best = m
        return best


def _has_any(text: str, needles: tuple[str, ...]) -> bool:
    # A plain loop: measurably faster than any() over a generator on this hot path.
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def _distinct(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        if text not in out:
            out.append(text)
    return out


def _snip(text: str, m: re.Match[str] | None, width: int = 60) -> str | None:
    if m is None:
        return None
    start = max(0, m.start() - 10)
    return text[start : start + width]


# ---------------------------------------------------------------- SQL injection


def sqli_syntax(s: Subject) -> str | None:
    """SQL tokenizer + grammar (see :mod:`cognitionos.waf._sqli`)."""
    found = detect_sqli(s.text)
    if found is None and s.utf7:
        found = detect_sqli(s.utf7)
    if found is None:
        return None
    return f"{found.check} [{found.context}:{found.fingerprint}] {found.snippet[:60]}"


_SQL_FUNCS_DISTINCT = (
    "db_name|user_name|schema_name|current_user|session_user|system_user|concat_ws|group_concat|concat|"
    "substring_index|substring|substr|unhex|char_length|octet_length|bit_length|instr|locate|lpad|rpad|"
    "ltrim|rtrim|lcase|ucase|strcmp|soundex|sleep|benchmark|ceiling|asin|acos|atan|log10|log2|sqrt|ifnull|"
    "nullif|isnull|coalesce|iif|last_insert_id|connection_id|row_count|found_rows|sysdate|curdate|curtime|"
    "current_timestamp|utc_timestamp|date_format|from_unixtime|unix_timestamp|extractvalue|updatexml|"
    "load_file|aes_encrypt|aes_decrypt|uncompress|json_extract|json_keys|json_object|json_array|"
    "jsonb_pretty|json_build_object|pg_sleep|pg_read_file|current_database|current_schema|inet_server_addr|"
    "quote_ident|quote_literal|string_agg|array_agg|xmlelement|xmlagg|to_char|to_number|sys_context|"
    "userenv|nvl2?|unistr|strpos|make_set|elt|name_const|exp|mid|ascii|ord|hex|conv|md5|sha1|sha2|crc32|"
    "collation|coercibility|charset|nchar|chr|greatest|least"
)
_SQL_FUNCS_WORDS = (
    "database|version|schema|char|length|sin|cos|tan|cot|rand|mod|pi|now|floor|power|pow|reverse|"
    "repeat|position|overlay|encode|decode|count"
)
_SQL_FUNC_CALL = _GatedPatterns(
    [
        (_ALWAYS, _alternation(_SQL_FUNCS_DISTINCT, not_after=r"[\w.$@]") + r"\s{0,8}\("),
        (_ALWAYS, _alternation(_SQL_FUNCS_WORDS, not_after=r"[^\s(,=+*/|&'\"<>-]") + r"\("),
        (
            _ALWAYS,
            r"^\s{0,4}" + _alternation(_SQL_FUNCS_WORDS + "|user|space") + r"\s{0,4}\(\s{0,4}$",
        ),
    ]
)
_SQL_CATALOG = _GatedPatterns(
    [
        (
            (
                "information_schema",
                "pg_",
                "msdb",
                "tempdb",
                "mysql.",
                "msys",
                "sys",
                "sqlite_",
                "_tab",
                "dba_users",
            ),
            r"\b(?:information_schema|pg_catalog|pg_shadow|pg_user|msdb|tempdb|mysql\.(?:db|user)|"
            r"msysaccessobjects|msysobjects|sysobjects|syscolumns|sysdatabases|sqlite_master|"
            r"sqlite_schema|all_tables|user_tables|all_tab_columns|dba_users)\b",
        )
    ]
)


def sqli_function_call(s: Subject) -> str | None:
    """Calls of SQL built-in functions (``database(``, ``substring(``) and system catalog names."""
    text = s.nocomment
    m = ("(" in text and _SQL_FUNC_CALL.search(text)) or _SQL_CATALOG.search(text)
    return _snip(text, m or None)


_SQL_KEYWORDS_DENSE = re.compile(
    r"\b(?:select|union|insert|update|delete|drop|from|where|having|group\s+by|order\s+by|"
    r"information_schema|concat|char|substring|ascii|sleep|benchmark|waitfor|exec)\b"
)


def sqli_keyword_density(s: Subject) -> str | None:
    """Several SQL keywords in one value (paranoia 2: prose about SQL trips it)."""
    hits = _SQL_KEYWORDS_DENSE.findall(s.nocomment)
    if len(set(hits)) >= 3:
        return " ".join(sorted(set(hits)))[:60]
    return None


# ---------------------------------------------------------------- XSS

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
_JS_SINK = _GatedPatterns(
    [
        (
            ("alert", "prompt", "confirm", "eval"),
            r"(?:alert|prompt|confirm|eval)\s{0,8}\?\.\s{0,8}\(",
        ),
        (
            ("alert", "prompt", "confirm", "msgbox"),
            r"(?:alert|prompt|confirm|msgbox)\s{0,8}(?:\(\s{0,8}(?:[\"'`\d/)\[{-]|document|window|this|self|"
            r"top|parent|location|string|[a-z_$][\w$.]{0,40}\s{0,8}\))|`|\.(?:call|apply|bind)\s{0,8}\()",
        ),
        (("(",), r"\(\s{0,8}(?:alert|prompt|confirm|eval)\s{0,8}\)"),
        (
            (
                "eval",
                "settimeout",
                "setinterval",
                "execscript",
                "importscripts",
                "fromcharcode",
                "atob",
            ),
            r"\b(?:eval|settimeout|setinterval|execscript|importscripts|fromcharcode|atob)\s{0,8}(?:\(|`)",
        ),
        (
            ("document",),
            r"document\s{0,8}\.\s{0,8}(?:cookie|domain|write|writeln|location|body|queryselector\w{0,8}|"
            r"getelement\w{0,12}|createelement|forms|images|scripts|all|head|documentelement)\b",
        ),
        (
            ("window", "frames", "globalthis", "document"),
            r"\b(?:window|frames|globalthis|document)\s{0,8}\[\s{0,8}[\"'`a-z]",
        ),
        (("self", "top", "parent", "this"), r"\b(?:self|top|parent|this)\s{0,8}\[\s{0,8}[\"'`]"),
        # JSFuck needs several ![] / +[] atoms
        (("[",), r"[!+]\s{0,4}\[\s{0,4}\][^\n]{0,40}?[!+]\s{0,4}\[\s{0,4}\]"),
        (("constructor",), r"\.constructor\s{0,8}\("),
        (("new",), r"\bnew\s+(?:function|image|worker|websocket|eventsource)\s{0,8}\("),
        (
            ("location", "innerhtml", "outerhtml", "srcdoc", "insertadjacenthtml"),
            r"\b(?:location|location\.href|innerhtml|outerhtml|srcdoc)\s{0,8}=|"
            r"\.(?:innerhtml|outerhtml|insertadjacenthtml)\b|\bsrcdoc\b",
        ),
        (("xmlhttprequest",), r"\bxmlhttprequest\b"),
        (("fetch",), r"\bfetch\s{0,8}\(\s{0,8}[\"'`]"),
        (
            ("document", "window", "self", "top", "this", "parent"),
            r"\(\s{0,8}(?:document|window|self|top|this|parent)\s{0,8}\)\s{0,8}[\[.]"
            r"|\bwindow\s{0,8}\.\s{0,8}(?:location|name|open)\b",
        ),
        (("reflect",), r"\breflect\s{0,8}\.\s{0,8}\w"),
        (("call", "apply"), r"\.\s{0,8}(?:call|apply)\s{0,8}`"),
        (("btoa",), r"\bbtoa\s{0,8}\("),
        (("$",), r"\$\s{0,8}\.\s{0,8}(?:getscript|globaleval|ajax)\b"),
        (("import",), r"\bimport\s{0,8}\(\s{0,8}[\"'`]"),
    ],
    _I,
)
_CSS = _GatedPatterns(
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
                        return _snip(text, m)
    # Spaced-out tag names: "<f o r m", "<d i a l o g".
    m2 = _SPACED_TAG.search(s.lower)
    if m2 and re.sub(r"\s+", "", m2.group(1)).rsplit(":", 1)[-1] in _DANGEROUS_TAGS | _SPACED_EXTRA:
        return _snip(s.lower, m2)
    m3 = _SPECIAL_MARKUP.search(s.lower)
    return _snip(s.lower, m3)


_SPACED_TAG = re.compile(r"<\s{0,4}((?:[a-z:]\s{1,4}){2,12}[a-z])\b")
_SPACED_EXTRA = frozenset(
    {"dialog", "details", "input", "button", "select", "option", "a", "div", "span"}
)
_SPECIAL_MARKUP = _GatedPatterns(
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
    if not _has_any(s.lower, ("=", ":", "(", "@import", "binding")):
        return None
    if "&" in s.lower and ":" in s.lower:
        m0 = _JS_URI.search(_ENTITY_NAMES.sub("", s.compact))
        if m0:
            return _snip(s.compact, m0)
    name_like = s.kind in ("arg_name", "cookie_name")
    has_event = "on" in s.lower and "=" in s.lower
    for text in _distinct(s.lower, s.stripped) if has_event else ():
        m = _ATTR_EVENT.search(text)
        if m and not _EVENT_NOT.search(text[m.start() : m.end()]):
            tail = text[m.end() : m.end() + 80].strip()
            quoted = m.group()[:1] in ("'", '"', "`")
            if (tail and tail[0] not in "&") or name_like or quoted:
                return _snip(text, m)
    m1 = (
        _FORMACTION.search(s.lower)
        if _has_any(s.lower, ("formaction", "xlink", "srcdoc"))
        else None
    )
    if m1:
        return _snip(s.lower, m1)
    m2 = _JS_URI.search(s.compact) if ":" in s.lower else None
    if m2:
        return _snip(s.compact, m2)
    m3 = _CSS.search(s.lower) if _has_any(s.lower, _CSS_NEEDLES) else None
    if m3:
        return _snip(s.lower, m3)
    if "\\" in s.lower:
        css = _css_unescape(s.lower)
        m4 = _CSS.search(css) or _JS_URI.search(_CONTROL_CHARS.sub("", css))
        return _snip(css, m4)
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
    if not _has_any(s.lower, _JS_NEEDLES):
        return None
    for text in _distinct(s.lower, s.stripped, s.nocomment):
        m = _JS_SINK.search(text)
        if m:
            return _snip(text, m)
    return None


# ---------------------------------------------------------------- path traversal / LFI / RFI

_TRAVERSAL = re.compile(r"(?:^|[/=:;,|\s])\.{2,3}[/;]|/\.\.(?=$|[^\w.-])|/\.\.\./|\.{4,}/|\.{6,}")
# Every branch is gated on literals its matches must contain: the unanchored last branches
# would otherwise be tried at every word boundary of a long value.
_SENSITIVE_FILE = _GatedPatterns(
    [
        (
            (
                "etc/",
                "proc/",
                ".ini",
                "windows/",
                "winnt/",
                "system32/",
                ".ht",
                ".ssh/",
                "id_",
                "authorized_keys",
                ".bash",
                ".git",
                ".svn/",
                ".hg/",
                ".env",
                "config",
                ".aws/",
                ".docker",
                ".kube/",
                "var/log/",
                "usr/local/",
                "inetpub/",
                ".npmrc",
                ".pypirc",
                ".netrc",
                "_history",
                "settings.php",
                "-inf",
                "sys/",
                "global.asa",
                ".boto",
                ".s3cfg",
                ".pgpass",
                ".my.cnf",
            ),
            r"(?:^|[/\\\s=:'\"]|\.\.)(?:etc/(?:passwd|shadow|group|hosts|issue|motd|sudoers|crontab|fstab|"
            r"security|ssh|nginx|apache2|httpd|mysql|php)|proc/(?:self|\d+)/|boot\.ini|win\.ini|system\.ini|"
            r"windows/(?:system32|win\.ini|repair)|winnt/|system32/|\.htaccess|\.htpasswd|\.ssh/|id_rsa|id_dsa|"
            r"authorized_keys|\.bash_history|\.bashrc|\.git/|\.svn/|\.hg/|\.env(?:$|[./])|wp-config\.php|"
            r"web\.config|\.aws/|\.docker/|\.kube/|var/log/|usr/local/|inetpub/|\.npmrc|\.pypirc|\.netrc|"
            r"\.gitconfig|\.mysql_history|\.psql_history|localsettings\.php|config\.inc\.php|web-inf/|meta-inf/|"
            r"sys/(?:class|kernel|devices|module|firmware|power)\b|proc/(?:interrupts|version|cpuinfo|meminfo|mounts|net/|sched_debug|kcore)|"
            r"etc/master\.passwd|web-inf\b|global\.asa\b|\.boto|\.s3cfg|\.pgpass|\.my\.cnf|\.dockercfg|\.git-credentials|\.bash_profile|\.zsh_history)",
        ),
        ((".ini",), r"(?:win|system|boot)\.ini\b"),
        (("passwd", "shadow"), r"\betc[/\\]{0,2}(?:passwd|shadow)\b"),
        (
            (".sql.", ".bak.", ".dump.", ".db.", ".sqlite"),
            r"\b[\w.-]{1,60}\.(?:sql|bak|dump|db|sqlite3?)\.(?:zip|gz|tgz|tar|bz2|7z|rar|xz)\b",
        ),
    ]
)
_WRAPPERS = _GatedPatterns(
    [
        (
            ("://",),
            r"\b(?:php|phar|zip|expect|glob|data|jar|netdoc|zlib|compress\.\w+|ssh2\.\w+|rar|ogg|input)://",
        ),
        (("file:",), r"\bfile:/{1,3}[a-z.~%/\\]"),
    ],
    _I,
)


def path_traversal(s: Subject) -> str | None:
    """``../`` segments (any encoding: %2e, overlong UTF-8, backslash, 0x2e)."""
    if ".." not in s.lower and "0x2e" not in s.lower and "\u2025" not in s.lower:
        return None
    m = _TRAVERSAL.search(s.path)
    return _snip(s.path, m)


def sensitive_file(s: Subject) -> str | None:
    """Access to well-known sensitive files: /etc/passwd, win.ini, .git/, .ssh/, .env..."""
    m = _SENSITIVE_FILE.search(s.path)
    return _snip(s.path, m)


def stream_wrapper(s: Subject) -> str | None:
    """Stream wrappers used for LFI/RFI: ``php://filter``, ``phar://``, ``file://``, ``expect://``."""
    if ":/" not in s.lower:
        return None
    m = _WRAPPERS.search(s.lower)
    return _snip(s.lower, m)


_RFI_IP = re.compile(
    r"^\s{0,4}(?:https?|ftps?)://(?:[^/@]{0,64}@)?(?:\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\]?)(?::\d+)?(?:/|$)",
    _I,
)
_RFI_TRAIL = re.compile(r"^(?:https?|ftps?|file)(?::/{0,3}[^?#\s]{0,200})?\?+$", _I)


def rfi_url(s: Subject) -> str | None:
    """Remote file inclusion: a URL parameter with an IP host or a trailing ``?`` (truncation)."""
    if "://" not in s.lower and "?" not in s.lower:
        return None
    m = _RFI_IP.search(s.lower) or _RFI_TRAIL.search(s.lower)
    return _snip(s.lower, m)


# ---------------------------------------------------------------- OS command injection

_UNIX_STRONG = (
    "whoami|uname|wget|curl|ncat|netcat|nc|bash|zsh|ksh|csh|tcsh|dash|python[23]?|perl|ruby|php|lua|"
    "nmap|nslookup|getent|telnet|tftp|chmod|chown|mkfifo|mknod|ifconfig|netstat|useradd|crontab|"
    "xxd|gawk|xargs|sudo|killall|pkill|printenv|systemctl|powershell|pwsh|cscript|wscript|certutil|"
    "bitsadmin|regsvr32|rundll32|mshta|wmic|systeminfo|tasklist|taskkill|ipconfig|icacls|findstr|"
    "lwp-download|lwp-request|fetch|socat|busybox|base64|openssl|passwd|sh|cmd|id|ls|dig|pwd|"
    "ping|traceroute|tracert|hostname|nohup|timeout|sleep|rm|chattr|uptime|whereis|which|awk|sed|"
    "strace|ltrace|gdb|ansible[\\w-]{0,20}|chef[\\w-]{0,20}|puppet|salt[\\w-]{0,10}|terraform|kubectl|docker|"
    "podman|lastlog(?:in)?|bsdtar|rmt|cscli|iex|iwr|irm|iwmi|invoke-\\w{2,30}|start-process|new-object|"
    "set-executionpolicy|downloadstring|bitsadmin|schtasks|msiexec|regedit|vssadmin|ntdsutil|mimikatz|"
    "psexec|rsync|sshpass|expect|tclsh|node|nodejs|deno|java|jshell|gcc|cc|make|apt|apt-get|yum|dnf|"
    "pip3?|npm|npx|gem|cpan|composer|useradd|usermod|userdel|groupadd|visudo|setfacl|iptables|nft|"
    "modprobe|insmod|mount|umount|fdisk|mkfs|shred|wipe|nsenter|unshare|chroot|capsh|setcap|getcap|"
    "dmesg|journalctl|sysctl|lsof|fuser|ss|arp|route|tcpdump|tshark|nping|hping3|zmap|whoami|"
    "base32|cpulimit|irb|c89|c99|perf|aptitude|bcdboot|visudo|chef-shell|busybox|rbash|ash|fish|"
    "pdksh|mksh|yash|posh|sash|esh|elvish|xonsh|nu|pwsh|tmux|screen|setsid|stdbuf|unbuffer|taskset|ionice"
)
_UNIX_WEAK = (
    "cat|tac|head|tail|more|less|nl|od|strings|grep|egrep|echo|printf|dir|touch|cp|mv|wc|sort|uniq|"
    "cut|tr|vi|vim|nano|ll|exec|eval|source|alias|type|copy|del|ren|set|ver|start|net|env|export|kill|"
    "find|tar|ps|ip|host|su|ssh|scp|ftp|at|sc|reg|call|unset|diff|file|stat|mail|date|time|tee|rev|"
    "zip|unzip|gzip|gunzip|mkdir|rmdir|ln|dd|chgrp|getfacl|whois|finger|last|who|w|df|du|free|top|"
    "column|fold|bridge|paste|join|split|shuf|xz|bzip2|zcat|bzcat|xzcat|hexdump|look|comm|expand|fmt|pr|ptx"
)
# The separator starts with one character class (";", "|", "&", a line break, a backtick, or
# the "$" / "<" / ">" of "$(", "<(", ">("), so the regex engine scans for it at C speed.
_SEP = (
    r"[;|&\n\r`$<>](?:(?<=[;|&\n\r`])|(?<=[$<>])\()"
    r"(?:\s{0,8}(?:time|nohup|sudo|env|nice|timeout\s{1,4}\d{1,4}|strace|"
    r"command|builtin|exec|xargs|busybox|watch)\b)?"
)
_CMD_STRONG = re.compile(
    _SEP
    + r"\s{0,16}[({!]{0,3}\s{0,8}(?:[\w./-]{0,40}/)?"
    + _alternation(_UNIX_STRONG)
    + r"(?:\.exe)?(?=$|[\s;|&`)<>}{,]|\$\{?ifs)"
)
_CMD_WEAK = re.compile(
    _SEP
    + r"\s{0,16}[({!]{0,3}\s{0,8}(?:[\w./-]{0,40}/)?"
    + _alternation(_UNIX_WEAK)
    + r"(?:\.exe)?"
    r"(?:\s{0,8}$|\s{0,8}[;|&`)]|\s{1,8}(?:[-/.~$%+]|[a-z]:(?:[\\/\s]|$)|\w{1,40}[/.][\w/.-]))"
)
# After an unambiguous separator (";", "|", "&&", newline, backtick) - not a lone "&", which
# prose uses ("Tom & Jerry") - even a common-word command with a plain argument counts.
_CMD_WEAK_STRICT_SEP = re.compile(
    r"(?:[;|\n\r`]|&&)\s{0,8}(?:echo|printf|cat|tac|nl|od|strings|grep|egrep|wc|uniq|cut|vi|vim|"
    r"nano|unset|diff|stat|tee|rev|unzip|gzip|gunzip|mkdir|rmdir|chgrp|getfacl|whois|finger|df|du|ll|"
    r"hexdump|zcat|bzcat|xzcat|shuf)\s{1,8}[a-z0-9_]{1,40}\b"
)
_CMD_START = re.compile(
    r"^\s{0,8}(?:(?:time|nohup|sudo|env|strace|nice)\s{1,8})?(?:"
    + _alternation(_UNIX_STRONG)
    + r"(?:\.exe)?\s{0,4}[;|&]|"
    + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK)
    + r"(?:\.exe)?"
    r"(?:\s{1,8}(?:-{1,2}[a-z]|/[a-z]|[a-z]:(?:[\\/\s]|$)|\.{0,2}/|~/|\$|[\w-]{1,30}\.[a-z]{2,6}\b|[a-z]{2,8}://|all\b)|\s{1,8}[a-z]:$))"
)
_CMD_PREFIXED = re.compile(
    r"^\s{0,8}(?:time|nohup|sudo|strace|ltrace|nice|env)\s{1,8}"
    + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK)
    + r"\b"
)
_CMD_SUBST = re.compile(
    r"\$\(\(?\s{0,8}[a-z0-9_/.$'\"-]|\$\[|[<>]\(\s{0,8}[a-z]{2,}|`\s{0,8}[a-z/][^`]{0,200}`|\$\{[a-z_]{1,30}:[-=?+]|\$'\\[x0-9]"
)
_CMD_PATH = re.compile(
    r"(?:^|[\s;|&=:'\"])/(?:etc|bin|usr|sbin|proc|dev|tmp|var|home|root|opt|lib)(?:/[\w.-]{0,40}){0,4}[\w/.-]{0,40}(?:\[[^\]/]{1,12}\]|[?*])|(?:^|[\s;|&`'\"(=:<>])/?(?:usr/)?(?:local/)?s?bin/[a-z]|/dev/(?:tcp|udp)/|(?:^|[\s/])(?:/[a-z?*]{0,6}[?*][a-z?*]{0,6}){2,}"
)
_WIN_CMD = _GatedPatterns(
    [
        (("%comspec%",), r"%comspec%"),
        (("cmd",), r"\bcmd(?:\.exe)?\s{1,8}/[ckr]\b"),
        (("powershell",), r"\bpowershell(?:\.exe)?\s{1,8}[-/]\w"),
        (
            ("for",),
            r"(?:^|[;&|])\s{0,8}for\s{1,8}/[fdlr]\b|\bfor\s{1,8}/[fdlr]\s|"
            r"\bfor\s{1,40}(?:/[a-z]\s{1,40}(?:\"[^\"]{0,80}\"\s{1,40})?)?%%?[\w@\]\[~]{1,30}\s{1,40}in\s{0,40}\(",
        ),
        (
            ("if",),
            r"\bif\s{1,8}(?:/i\s{1,8})?(?:not\s{1,8})?(?:exist|defined|errorlevel|%[\w~]{1,30}%|\S{1,40}==)|"
            r"\bif\s{1,40}(?:/i\s{1,40})?(?:not\s{1,40})?(?:\"[^\"]{0,60}\"|\{[^}]{0,30}\}|\(?[\w%!~]{1,40})\s{0,40}"
            r"(?:==|equ|neq|lss|leq|gtr|geq)(?:\s|\{|\"|$)",
        ),
        (("goto",), r"\bgoto\s{1,8}:?\w"),
        (("%",), r"%[a-z_]{2,30}:~-?\d"),
        (("set",), r"\bset\s{1,8}/[ap]\s"),
    ],
    _I,
    ascii_gate=True,
)
# A value that starts by terminating a command and naming a new (lowercase: shells are
# case-sensitive) command: ";htop", "| flock -u /".
_CMD_LEADING = re.compile(
    r"^\s{0,4}['\"]?\s{0,4}[;|&`]\s{0,4}['\"]?[a-z][a-z0-9.+-]{1,30}(?:\s|$|<|['\"])"
)
_CMD_MISC = _GatedPatterns(
    [
        (("$",), r"\$\{?ifs\b|\$\{?(?:shell|comspec|bash|0)\b"),
        (
            ("net",),
            r"(?:^|[;|&])\s{0,8}net\s{1,8}(?:user|localgroup|group|share|view|use|session|accounts|config)\b",
        ),
        (("'", '"'), r"[;|&`]\s{0,4}(?P<q>['\"])[a-z][^'\";|&]{0,80}(?P=q)"),
        (("alias",), r"(?:^|[;|&\n])\s{0,8}alias\s{1,8}(?:[+-]\w|\S{1,40}=)"),
        (("{",), r"\{,?\s{0,4}" + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK + "|cd") + ","),
        (("cd",), r"(?:^|[;|&\n])\s{0,8}cd\s{1,8}(?:/|\.\.|~)"),
    ]
)
_SHELL_EXEC_WORDS = _GatedPatterns(
    [
        (("-c",), r"\b(?:sh|bash|zsh|cmd|powershell)\s{1,8}-c\s"),
        (("sh",), r"\|\s{0,8}(?:ba)?sh\b"),
        (("/dev/",), r"<\s{0,8}/dev/"),
        (("/tmp/", "/dev/", "/var/", "/etc/"), r">\s{0,8}/(?:tmp|dev|var|etc)/"),
        (("2>&1",), r"\b2>&1\b"),
    ]
)


_SHELL_META = re.compile(r"[;|&\n\r`$<>(){}/\\%'\"\[\]*?~!^=+]")
_SEPARATORS = (";", "|", "&", "\n", "\r", "`", "$", "<(", ">(")
_WIN_NEEDLES = ("%", "/", "if ", "for ", "goto", "set ", "powershell", "cmd")


def command_injection(s: Subject) -> str | None:
    """Shell commands after a separator, substitutions, binary paths, Windows cmd syntax."""
    if not _SHELL_META.search(s.text):
        # no metacharacters, quotes or paths: only "command -flags ..." at the start can match
        sq = s.squeezed
        m0 = (
            _CMD_START.search(sq)
            or _CMD_PREFIXED.search(sq)
            or (_has_any(sq, _WIN_NEEDLES) and _WIN_CMD.search(sq))
            or (_has_any(sq, ("net", "cd", "alias")) and _CMD_MISC.search(sq))
            or None
        )
        return _snip(sq, m0)
    shell = s.shell
    separators = _has_any(shell, _SEPARATORS)
    m = (
        (
            separators
            and (
                _CMD_STRONG.search(shell)
                or _CMD_WEAK.search(shell)
                or _CMD_SUBST.search(shell)
                or _CMD_WEAK_STRICT_SEP.search(shell)
            )
        )
        or ("/" in shell and _CMD_PATH.search(shell))
        or (_has_any(shell, ("-c", "|", "<", ">")) and _SHELL_EXEC_WORDS.search(shell))
        or (_has_any(s.lower, _WIN_NEEDLES) and _WIN_CMD.search(s.squeezed))
        or (
            _has_any(s.lower, ("'", '"', "$", "alias", "{", "cd", "net"))
            and _CMD_MISC.search(s.lower)
        )
    )
    if m:
        return _snip(shell, m)
    m = _CMD_START.search(shell) or _CMD_PREFIXED.search(shell) or _CMD_LEADING.search(s.text)
    if m:
        return _snip(shell, m)
    for decoded in s.base64:
        m = _CMD_STRONG.search(decoded) or _CMD_SUBST.search(decoded)
        if m:
            return "base64: " + (_snip(decoded, m) or "")
    return None


_SMTP = re.compile(
    r"[\r\n]\s{0,8}(?:rcpt\s{1,8}to|mail\s{1,8}from|data|quit|helo|ehlo|auth\s|starttls|bcc|cc|to|subject|"
    r"[a-z0-9]{1,10}\s{1,8}(?:capability|fetch|login|select|examine|list|uid|store|logout|append))\b",
    _I,
)


# The look-behind starts a match only at the first blank of a run: without it every position
# inside a long run of blanks not followed by a line break rescans the rest of the run (O(n²)).
_LINE_BREAKS = re.compile(r"(?<![ \t])[ \t]*[\r\n]\s*")


def _lines(text: str) -> str:
    """Whitespace around line breaks collapsed to a single newline (bounds the regex work)."""
    return _LINE_BREAKS.sub("\n", text)


def mail_injection(s: Subject) -> str | None:
    """SMTP/IMAP/POP commands after a line break (mail header and command injection)."""
    if "\n" not in s.text and "\r" not in s.text:
        return None
    text = _lines(s.text)
    m = _SMTP.search(text)
    return _snip(text, m)


# ---------------------------------------------------------------- code injection

_PHP_OPEN = re.compile(
    r"<\?(?:php\b|=|\s|$|[^x\s]|x(?!ml\s{1,5}version))|\[\s{0,4}[/\\]?\s{0,4}php\s{0,4}\]"
)
# Common English words among PHP function names only count when "(" follows immediately.
_PHP_WORD_FUNCS = (
    "pack|ord|chr|glob|extract|header|mail|compact|define|constant|empty|trim|rand|unset|"
    "isset|explode|implode|serialize|copy|unlink|system|exec|eval|assert|include|require|printf|readline|"
    "dl|strrev|symlink|scandir|opendir|putenv|getenv|usort|intval|strval|md5|sha1|crc32|mktime|uniqid"
)
_PHP_FUNCS_ALL = (
    "system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|create_function|"
    "call_user_func(?:_array)?|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile|"
    "show_source|highlight_file|phpinfo|base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|"
    "unserialize|preg_replace|include(?:_once)?|require(?:_once)?|move_uploaded_file|"
    "register_shutdown_function|array_map|array_filter|usort|uasort|uksort|array_walk|putenv|ini_set|"
    "ini_get|getenv|scandir|opendir|glob|symlink|unlink|var_dump|print_r|var_export|extract|parse_str|"
    "get_defined_vars|get_defined_functions|convert_uuencode|hex2bin|pack|ord|chr|strrev|implode|"
    "intval|strval|strlen|substr|str_replace|sprintf|vsprintf|md5|sha1|crc32|base64_encode|urldecode|"
    "rawurldecode|htmlspecialchars|strip_tags|json_decode|json_encode|serialize|array_merge|in_array|"
    "is_array|is_numeric|isset|unset|empty|explode|trim|strtolower|strtoupper|ucfirst|nl2br|addslashes|"
    "stripslashes|date_add|date_create|mktime|strtotime|microtime|uniqid|rand|mt_rand|random_bytes|"
    "define|constant|compact|settype|gettype|class_exists|function_exists|method_exists|is_callable|"
    "debug_zval_dump|debug_backtrace|error_log|mail|header|setcookie|curl_exec|curl_init|fsockopen|"
    "stream_socket_client|socket_create|dl|apache_setenv|posix_getpwuid|posix_kill|proc_nice|"
    "escapeshellcmd|escapeshellarg|opcache_get_status|ob_start|readline"
)
_PHP_FUNCS = "|".join(sorted(set(_PHP_FUNCS_ALL.split("|")) - set(_PHP_WORD_FUNCS.split("|"))))
_PHP_INDEX = r"(?:[\s)\]]{0,4}[\[{]\s{0,4}\d{1,3}\s{0,4}[\]}]){0,2}\s{0,8}\)?\s{0,8}"
_PHP_CALL = _GatedPatterns(
    [
        (_ALWAYS, _alternation(_PHP_FUNCS) + r"\s{0,8}[\"')\]]{0,2}" + _PHP_INDEX + r"\("),
        (
            ("[", "("),
            r"[\[(]\s{0,4}[\"']?\s{0,4}"
            + _alternation(_PHP_WORD_FUNCS)
            + r"\s{0,4}[\"']?\s{0,4}\]"
            + _PHP_INDEX
            + r"\(",
        ),
        # A word function at a word start: the character before it (if any) is none of
        # [\w$>.:-]. (A quote, bracket or blank before it, which calls often have, is such a
        # character already.)
        (
            _ALWAYS,
            _alternation(_PHP_WORD_FUNCS, not_after=r"[\w$>.:-]")
            + r"(?:\s{0,4}[\"')\]]{1,2}\s{0,8}(?:\[\s{0,4}\d{1,3}\s{0,4}\]\s{0,8})?)?"
            r"(?:/\*[^*]{0,40}\*/)?\(",
        ),
    ]
)
_PHP_CONCAT = re.compile(
    r"[\"'][a-z_]{1,12}[\"']\s{0,8}\.\s{0,8}[\"'][a-z_]{1,12}[\"']|\$\s{0,40}\{\s{0,40}[$'\"@]|\$\s{1,40}\{|\$\{[^}]{0,40}\}\s{0,8}\(|\(\s{0,8}\$\w{1,30}\s{0,8}\)\s{0,8}\("
)
_PHP_INI = re.compile(
    r"^\s{0,4}(?:(?:opcache|mbstring|zend|pcre|xdebug|phar|suhosin|session)\.[\w.]{2,60}|"
    r"allow_url_(?:include|fopen)|auto_(?:prepend|append)_file|open_basedir|disable_functions|"
    r"safe_mode|register_globals|file_uploads|upload_tmp_dir)\s{0,8}="
)
_PHP_UPLOAD = re.compile(
    r"\.\s{0,4}(?:php\d?|phtml|phar|pht|phpt|phps|pgif|shtml|htaccess|user\.ini)[\s.]{0,10}$|(?:^|[/\\\s])sess_[\w-]{6,}"
)
_PHP_PREFIXED = re.compile(
    r"\b(?:odbc|mysqli?|pg|posix|pcntl|proc|stream|curl|ftp|ldap|socket|ssh2|gz|bz|zip|openssl|mb|"
    r"iconv|ob|session|ini|apache|imap|exif|shm|sem|msg|dba|mcrypt|sodium|preg|call_user|func|create|"
    r"fsockopen|pfsockopen|xmlrpc|simplexml|libxml|dom|phar|spl|get|set)_\w{2,40}\s{0,8}\("
)
_PHP_VARS = re.compile(
    r"\$_(?:get|post|request|cookie|server|files|env|session)\b|\$globals\b|\$this->|\$\{[^}]{0,40}\}\s{0,8}\(|"
    r"\$[a-z_]\w{0,40}\s{0,8}(?:[\[{][^\]}]{0,40}[\]}]\s{0,8}){0,4}\(|@\$\w{0,40}\s{0,8}\["
)
_PHP_SERIAL = re.compile(r"(?:^|[;{])[oc]:\d{1,4}:\"[\w\\]{1,100}\":\d{1,4}:\{|a:\d{1,4}:\{[isdb]:")


def php_injection(s: Subject) -> str | None:
    """PHP code: ``<?php``, risky calls, superglobals, variable functions, serialized objects."""
    text = s.nocomment
    paren = "(" in text
    m = (
        (("<?" in text or "php" in text) and _PHP_OPEN.search(text))
        or (paren and _PHP_CALL.search(text))
        or (("$" in text or "@" in text) and _PHP_VARS.search(text))
        or ("{" in text and _PHP_SERIAL.search(s.lower))
        or (("$" in text or "." in text) and _PHP_CONCAT.search(text))
        or ("=" in text and _PHP_INI.search(text))
    )
    if m:
        return _snip(text, m)
    if s.kind in ("filename", "header"):
        m = _PHP_UPLOAD.search(s.lower)
        if m:
            return _snip(s.lower, m)
    m = _PHP_PREFIXED.search(text) if paren else None
    return _snip(text, m)


_JAVA = _GatedPatterns(
    [
        (("java.",), r"\bjava\.(?:[a-z]{2,12}\.)?[a-z]{2,30}\b"),
        (("runtime.",), r"\bruntime\.[a-z]{3,}"),
        (
            ("org.",),
            r"\borg\.(?:apache|omg|springframework|codehaus|hibernate|jboss|mozilla\.javascript|python|"
            r"aspectj|slf4j)\.\w",
        ),
        (
            ("com.",),
            r"\bcom\.(?:opensymphony|sun|alibaba\.fastjson|fasterxml\.jackson|mchange|zaxxer|caucho|"
            r"rometools|ibm\.(?:ws|jtc))\b",
        ),
        ((".jsp",), r"\.jspx?[\s.]{0,10}$"),
        (("javax.",), r"\bjavax\.(?:script|naming|management|el)\b"),
        (("getruntime",), r"runtime\s{0,8}\.\s{0,8}getruntime"),
        (
            (
                "process",
                "classloader",
                "object",
                "transformer",
                "instantiatefactory",
                "transformedmap",
                "lazymap",
                "templatesimpl",
                "jdbcrowsetimpl",
                "scriptengine",
                "bsh.",
                "groovy.",
                "xstream",
                "commons.",
                "sun.",
                "org.apache.",
                "springframework.",
            ),
            r"\b(?:processbuilder|processimpl|classloader|urlclassloader|"
            r"objectinputstream|objectoutputstream|invokertransformer|chainedtransformer|constanttransformer|"
            r"instantiatetransformer|instantiatefactory|transformedmap|lazymap|templatesimpl|jdbcrowsetimpl|"
            r"scriptengine(?:manager)?|bsh\.interpreter|groovy\.lang|xstream|commons\.collections|"
            r"sun\.misc|com\.sun\.\w|org\.apache\.(?:xalan|commons\.collections|tomcat)|"
            r"springframework\.(?:expression|context|beans))",
        ),
        (
            (".get", ".for", ".new"),
            r"\.(?:getclass|forname|getmethod|getdeclaredmethod|getdeclaredfield|newinstance|getruntime|"
            r"getconstructor)\s{0,8}\(",
        ),
        (("#_memberaccess",), r"#_memberaccess"),
        (("@java.",), r"@java\."),
        (("classloader",), r"\bclass\.(?:module\.)?classloader"),
        (("%{",), r"%\{\s{0,8}[#(@]"),
        (("${",), r"\$\{\s{0,8}(?:#|@|new\s|t\s{0,8}\()"),
        (("aced0005", "ro0ab"), r"\b(?:aced0005|ro0ab)"),
        (("\xac\xed\x00\x05",), r"\xac\xed\x00\x05"),
    ]
)


_JAVA_NEEDLES = (
    "java",
    "runtime",
    "org.",
    "com.",
    "class",
    "process",
    "loader",
    "stream",
    "transformer",
    "factory",
    "map",
    "templates",
    "rowset",
    "scriptengine",
    "bsh.",
    "groovy",
    "xstream",
    "commons",
    "sun.",
    ".get",
    ".for",
    ".new",
    "#_",
    "@",
    "%{",
    "${",
    "aced",
    "ro0ab",
    "\xac\xed",
    ".jsp",
    "spring",
)


def java_injection(s: Subject) -> str | None:
    """Java deserialization gadgets, reflection, OGNL/SpEL/EL expressions, class-loader abuse."""
    if _has_any(s.lower, _JAVA_NEEDLES):
        for text in (s.lower, s.compact):
            m = _JAVA.search(text)
            if m:
                return _snip(text, m)
    for decoded in s.base64:
        m = _JAVA.search(decoded)
        if m:
            return "base64: " + (_snip(decoded, m) or "")
    return None


_CODE = _GatedPatterns(
    [
        (
            ("__",),
            r"__(?:class|mro|subclasses|globals|builtins|import|init|dict|base|bases|getattribute|reduce|"
            r"code|proto)__|__js_function|\[\s{0,8}__proto__\s{0,8}\]",
        ),
        (("_$$",), r"_\$\$nd_func\$\$_"),
        (("import",), r"\bimport\s{1,8}(?:os|subprocess|socket|sys|pty|ctypes)\b"),
        (("os.",), r"\bos\.(?:system|popen|exec\w{0,4}|spawn\w{0,4}|remove|unlink)\s{0,8}\("),
        (("subprocess",), r"\bsubprocess\.\w{1,20}\s{0,8}\("),
        (("compile",), r"\beval\s{0,8}\(\s{0,8}compile\s{0,8}\("),
        (("child_process",), r"\bchild_process\b"),
        (
            ("process",),
            r"\bprocess\s{0,8}(?:\.\s{0,8}(?:env|argv|cwd|exit|kill|spawn|exec|chdir|dlopen|mainmodule|"
            r"binding)\b|\[)|\bglobal\.process\b",
        ),
        (("require",), r"\brequire\s{0,8}(?:\(\s{0,8}[\"'`]|\.\s{0,8}main\b|\[)"),
        (
            ("constructor", "prototype"),
            r"\bconstructor\s{0,8}(?:\.\s{0,8}(?:constructor|prototype\b)|\[\s{0,8}[\"']prototype)"
            r"|\bprototype\s{0,8}\[|\[\s{0,8}constructor\s{0,8}\]\s{0,8}\[\s{0,8}prototype",
        ),
        (("module.exports",), r"\bmodule\.exports\b"),
        (("@{",), r"@\{\s{0,8}\["),
        (("!!", "!ruby"), r"!!python/|!ruby/|!!javax?\."),
        (
            ("while",),
            r"\bwhile\s{0,8}\([^)]{0,60}\)\s{0,8}[;{]|\bdo\s{0,8}\{[^}]{0,200}\}\s{0,8}while\s{0,8}\(|"
            r"\bwhile\([!(]{0,4}(?:true|false|1|nan|null|undefined|\+?infinity|!)\b",
        ),
        (("date",), r"\bnew\s+date\s{0,8}\(\s{0,8}\)\s{0,8};"),
        (("system",), r"\bsystem\s{0,8}\(\s{0,8}[\"'`]"),
        (("open",), r"\bopen\s{1,8}\w{1,20}\s{0,8},\s{0,8}['\"]?[|<>]"),
        (("kernel", "io.", "runtime"), r"\b(?:kernel|io)\.(?:popen|system|exec)|\bruntime\.exec"),
        (("console",), r"\bconsole\s{0,8}\["),
        (
            ("spawn", "fork", "sync"),
            r"\.(?:spawn|fork|execsync|spawnsync|readdirsync|readfilesync)\s{0,8}\(",
        ),
        (("$",), r"\$\d{1,3}:[a-z_]\w{0,30}:(?:prototype|constructor)\b"),
        (("#{",), r"#\{[^}]{0,80}\b(?:exec|spawn|system|eval|require)\s{0,8}\("),
    ]
)


_CODE_NEEDLES = (
    "__",
    "import",
    "os.",
    "subprocess",
    "eval",
    "child_process",
    "process",
    "require",
    "constructor",
    "module",
    "global",
    "@{",
    "!!",
    "!ruby",
    "while",
    "do",
    "new date",
    "system",
    "open",
    "kernel",
    "io.",
    "runtime",
    "console",
    "_$$",
    "prototype",
    "$",
    "#{",
    ".spawn",
    ".fork",
    "sync",
    "__proto__",
)


def code_injection(s: Subject) -> str | None:
    """Python/Node/Perl/Ruby/YAML code: dunders, ``child_process``, ``@{[...]}``, ``!!python/``."""
    if _has_any(s.lower, _CODE_NEEDLES):
        for text in _distinct(s.lower, s.nocomment):
            m = _CODE.search(text)
            if m:
                return _snip(text, m)
    for decoded in s.base64:
        decoded = decode_js_escapes(decoded)
        m = _CODE.search(decoded) or _JS_SINK.search(decoded)
        if m:
            return "base64: " + (_snip(decoded, m) or "")
    return None


_LOOKUP_DEFAULT = re.compile(r"\$\{[^${}]{0,80}:-([^${}]{0,80})\}")
_LOOKUP_CASE = re.compile(r"\$\{(?:lower|upper|date|base64):([^${}]{0,80})\}")
_JNDI = re.compile(
    r"\$\{\s{0,8}(?:jndi|ctx|env|sys|java|main|bundle|docker|k8s|log4j|spring|marker|web|event|sd|map|jvmrunargs)\s{0,8}:|jndi:(?:ldaps?|rmi|dns|iiop|https?|corba|nds|nis)\b"
)


def log4shell(s: Subject) -> str | None:
    """Log4j lookups (``${jndi:...}``), after unwrapping ``${lower:j}``/``${::-j}`` obfuscation."""
    if "jndi" not in s.lower and not ("$" in s.lower and "{" in s.lower):
        return None
    text = s.compact
    for _ in range(12):
        unwrapped = _LOOKUP_CASE.sub(r"\1", _LOOKUP_DEFAULT.sub(r"\1", text))
        if unwrapped == text:
            break
        text = unwrapped
    m = _JNDI.search(text)
    return _snip(text, m)


_SSTI = re.compile(
    r"\{\{[^{}]{0,200}(?:[*+/%()\[\]|]|\.__|\b(?:config|self|request|lipsum|cycler|joiner|namespace|"
    r"range|class|mro|constructor|_self|env)\b)[^{}]{0,200}\}\}|"
    r"\$\{\s{0,8}\d{1,10}\s{0,8}[*+/-]\s{0,8}\d{1,10}\s{0,8}\}|[#*@]\{\s{0,8}\d{1,10}\s{0,8}[*+/-]\s{0,8}\d{1,10}\s{0,8}\}|"
    r"<%=?[^%]{0,200}%>|\{%\s{0,8}(?:import|include|set|for|if|debug|load|extends|block|macro|raw)\b|"
    r"<#(?:assign|list|include|import|setting)\b|\?new\s{0,8}\(|freemarker\.template|"
    r"#set\s{0,8}\(\s{0,8}\$|\$\{\s{0,8}(?:request|session|application|self|class|\w{1,30}\.getclass)\b|"
    r"\{\{\s{0,8}=|\{php\}|\{\s{0,8}system\s{0,8}\(",
)


def ssti(s: Subject) -> str | None:
    """Server-side template injection: ``{{ }}``, ``${ }``, ``#{ }``, ``<% %>``, FreeMarker."""
    if not _has_any(
        s.lower,
        (
            "{{",
            "${",
            "#{",
            "*{",
            "@{",
            "<%",
            "{%",
            "<#",
            "?new",
            "freemarker",
            "#set",
            "{php}",
            "system",
        ),
    ):
        return None
    m = _SSTI.search(s.lower)
    return _snip(s.lower, m)


_NOSQL_OP = (
    r"\$(?:where|ne|gt|gte|lt|lte|in|nin|or|and|not|nor|regex|exists|elemmatch|expr|function|"
    r"accumulator|lookup|eq|type|size|all|mod|text|jsonschema)\b"
)
# Each branch on its own (a literal first character lets the regex engine skip ahead) and gated
# on a literal every match of that branch contains.
_NOSQL_VALUE = _GatedPatterns(
    [
        (("$",), r"\[\s{0,8}" + _NOSQL_OP + r"\s{0,8}\]"),
        (("return",), r"['\"]\s{0,8};\s{0,8}return\s{1,8}(?:true|false|1|0|this|db)\b"),
        (("$",), _NOSQL_OP + r"\s{0,8}[\"']?\s{0,8}:"),
        (("$",), r"\{\s{0,8}[\"']?" + _NOSQL_OP),
        (
            ("db.",),
            r"\bdb\.[\w$]{1,60}\.(?:find|insert|update|remove|drop|aggregate|count|delete|replace|save)"
            r"\w{0,20}\s{0,8}\(",
        ),
        (("this.",), r"\bthis\.\w{1,40}\s{0,8}(?:==|!=|\.match\s{0,8}\()"),
    ]
)
_NOSQL_NAME = re.compile(r"\[\s{0,8}" + _NOSQL_OP + r"\s{0,8}\]|^" + _NOSQL_OP)


def nosql_injection(s: Subject) -> str | None:
    """MongoDB operators in names or values (``user[$ne]=``, ``{"$where": ...}``), shell calls."""
    if (
        "$" not in s.lower
        and "db." not in s.lower
        and "this." not in s.lower
        and "return" not in s.lower
    ):
        return None
    if s.kind == "arg_name":
        m = _NOSQL_NAME.search(s.lower)
        return _snip(s.lower, m)
    m = _NOSQL_VALUE.search(s.lower)
    return _snip(s.lower, m)


_LDAP = re.compile(
    r"\)\s{0,8}\(\s{0,8}[|&!]|\)\s{0,8}[|&!]\s{0,8}\(\s{0,8}[\w.-]{1,60}\s{0,8}[~<>]?=|\(\s{0,8}[|&!]\s{0,8}\(|\*\s{0,8}\)\s{0,8}\(|\)\s{0,8}\(\s{0,8}[\w.-]{1,60}\s{0,8}[~<>]?=|"
    r"^\s{0,8}\*?\s{0,8}\(\s{0,8}[|&]|\w:\d+(?:\.\d+){2,}:=|:dn:[\w.]{0,40}:?=|\(\s{0,8}objectclass\s{0,8}=",
    _I,
)


def ldap_injection(s: Subject) -> str | None:
    """LDAP filter injection: ``*)(uid=*``, ``)(|(``, extensible matches."""
    if "(" not in s.lower and ":" not in s.lower:
        return None
    m = _LDAP.search(s.lower)
    return _snip(s.lower, m)


_XXE = re.compile(
    r"<!entity\b|<!doctype[^>\[]{0,200}\[|<!doctype\s{1,8}\S{1,60}\s{1,8}(?:system|public)\b|"
    r"\bsystem\s{1,8}[\"'](?:file|https?|ftp|php|expect|jar|netdoc|gopher|data|//)|"
    r"<xi:include\b|(?:schemalocation|xs:include|xs:import|xs:redefine)[^>]{0,300}?(?:https?|ftp|file)://|"
    r"<\?xml[^>]{0,100}encoding\s{0,8}=\s{0,8}[\"']utf-7",
)


def xxe(s: Subject) -> str | None:
    """XML external entities and external schema/XInclude references."""
    if not s.utf7 and not _has_any(s.lower, ("<!", "<xi", "schemaloc", "xs:", "<?xml")):
        return None
    for text in (s.lower, s.utf7) if s.utf7 else (s.lower,):
        m = _XXE.search(text)
        if m:
            return _snip(text, m)
    return None


_INTERNAL_HOST = (
    r"(?:localhost|127(?:\.\d{1,3}){1,3}|0\.0\.0\.0|0{1,4}(?=[:/]|$)|\[[0:]{0,20}(?:1|ffff:[^\]]{1,40})?\]|"
    r"\[fe[89ab][0-9a-f]:[^\]]{0,60}\]|\[f[cd][0-9a-f]{2}:[^\]]{0,60}\]|169\.254\.\d{1,3}\.\d{1,3}|"
    r"metadata(?:\.google)?\.internal|metadata\.azure\.com|100\.100\.100\.200|fd00:ec2::254|"
    r"[\w-]{1,30}\.(?:docker|containers)\.internal|kubernetes\.default[\w.]{0,40}|localhost\.localdomain|ip6?-localhost|ipv6-localhost|"
    r"\[[0-9a-f:.]{2,45}(?:%[\w.-]{1,20})?\]|localhost\d?(?:\.localdomain\d?)?|(?:[\w-]{1,40}\.)?(?:localtest\.me|lvh\.me|nip\.io|sslip\.io|xip\.io)|"
    r"metadata\.[\w-]{2,30}\.[a-z]{2,10}|"
    r"(?:0x[0-9a-f]{1,8}|0[0-7]{1,11})(?:\.(?:0x[0-9a-f]{1,2}|0[0-7]{0,3}|\d{1,3})){0,3}|\d{8,10}|"
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.(?:nip\.io|xip\.io|sslip\.io))"
)
_SSRF_URL = re.compile(
    r"(?:^|[\s\"'=(<])(?:[a-z][a-z0-9+.-]{1,12}:(?://|(?=[\d\[]))|//)(?:[^/@\s]{0,64}@)?"
    + _INTERNAL_HOST
    + r"(?=$|[:/?#\]\s])"
)
_SSRF_DATA = re.compile(r"^\s{0,4}data:(?:text|application)/[\w.+-]{1,40}")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_WIDE_DOT = re.compile("[\u3002\uff0e\uff61]")
_SSRF_BARE = re.compile(
    r"^\s{0,4}(?:169\.254\.169\.254|localhost\d?(?:\.localdomain\d?)?|(?:[\w-]{1,40}\.)?(?:localtest\.me|lvh\.me)|metadata(?:\.google)?\.internal|[\w-]{1,30}\.(?:docker|containers)\.internal|100\.100\.100\.200|localhost(?:\.localdomain)?|ip6?-localhost|ipv6-localhost|ip6-loopback|kubernetes\.default[\w.]{0,40})(?=$|[:/])"
)
_SSRF_SCHEME = _GatedPatterns(
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
    return _snip(text, m)


_PRIVATE_URL = re.compile(
    r"(?:^|[\s\"'=(<])(?:https?:)?//(?:[^/@\s]{0,64}@)?(?:10(?:\.\d{1,3}){3}|192\.168(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2})(?=$|[:/?#])"
)


def ssrf_private(s: Subject) -> str | None:
    """URLs with RFC 1918 private addresses (paranoia 2: internal links can be legitimate)."""
    m = _PRIVATE_URL.search(s.lower)
    return _snip(s.lower, m)


_CRLF_HEADER = re.compile(
    r"[\r\n][\t ]{0,8}[a-z][\w-]{1,40}[\t ]{0,8}:|[\r\n]\s{0,8}http/\d|[\r\n]{2}\s{0,8}<|"
    r"(?:^|[\r\n])\s{0,8}(?:get|post|head|put|delete|options|patch|trace|connect)\s{1,8}\S{1,400}\s{1,8}http/\d",
    _I,
)


# Characters above U+00FF whose low byte is a line feed or carriage return: a backend that
# keeps only the low byte ("\u010a" -> "\n") turns them into line breaks.
# (A class of BMP characters only compiles to a lookup table; astral ones are checked apart.)
_TRUNCATING_NEWLINE = re.compile(
    "[" + "".join(chr(hi << 8 | lo) for hi in range(1, 0x100) for lo in (0x0A, 0x0D)) + "]"
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _truncate_newlines(text: str) -> str:
    """``text`` with every truncating newline (see above) as ``"\n"``."""
    if _TRUNCATING_NEWLINE.search(text):
        text = _TRUNCATING_NEWLINE.sub("\n", text)
    if _ASTRAL.search(text):
        text = _ASTRAL.sub(
            lambda m: "\n" if (ord(m.group()) & 0xFF) in (0x0A, 0x0D) else m.group(), text
        )
    return text


def crlf_injection(s: Subject) -> str | None:
    """Header/response splitting: a line break followed by a header or status line."""
    if "\n" not in s.text and "\r" not in s.text and " http/" not in s.lower and s.text.isascii():
        return None
    text = s.text
    if not text.isascii():
        text = _truncate_newlines(text)
    text = _lines(text)
    m = _CRLF_HEADER.search(text)
    return _snip(text, m)


def newline_in_name(s: Subject) -> str | None:
    """A line break in a path or parameter name: never legitimate, a header injection vector."""
    if "\n" in s.text or "\r" in s.text:
        return s.text[:60]
    return None


_SHELLSHOCK = re.compile(r"^\s{0,8}\(\s{0,8}\)\s{0,8}\{")


def shellshock(s: Subject) -> str | None:
    """Bash function-definition prefix ``() {`` (CVE-2014-6271)."""
    if "(" not in s.text or "{" not in s.text:
        return None
    m = _SHELLSHOCK.search(s.text)
    return _snip(s.text, m)


_SSI = re.compile(
    r"<!--\s{0,8}#\s{0,8}(?:exec|include|echo|config|set|printenv|fsize|flastmod|if|elif)\b"
)


def ssi_injection(s: Subject) -> str | None:
    """Server-side include directives ``<!--#exec cmd=...-->``."""
    if "<!--" not in s.lower:
        return None
    m = _SSI.search(s.lower)
    return _snip(s.lower, m)


_SCANNERS = re.compile(
    r"\b(?:sqlmap|nikto|nmap|nessus|openvas|acunetix|netsparker|w3af|wpscan|dirbuster|gobuster|"
    r"dirsearch|feroxbuster|ffuf|fuzz faster u fool|nuclei|masscan|zgrab|havij|arachni|skipfish|"
    r"wfuzz|"
    r"whatweb|jaeles|commix|xsstrike|nosqlmap|joomscan|droopescan|burp(?:suite| collaborator)|"
    r"owasp zap|zaproxy|appscan|webinspect|qualys|paros|webscarab|grabber|vega|metasploit|hydra|"
    r"medusa|brutus|sqlninja|bbqsql|jbrofuzz|dotdotpwn|fimap|wapiti|morfeus|zmeu|nasl|"
    r"interactsh|projectdiscovery)|openvas|\.nasl\b",
    _I,
)
_OAST = re.compile(
    r"\b(?:burpcollaborator\.net|oastify\.com|oast\.(?:me|pro|live|site|online|fun)|interact\.sh|"
    r"dnslog\.(?:cn|link)|ceye\.io|canarytokens\.com|requestbin\.(?:net|com)|pipedream\.net|"
    r"webhook\.site|xss\.ht|bxss\.me)\b",
    _I,
)


_SCANNER_TOOLS = re.compile(
    r"\b(?:sqlmap|nikto|nessus|openvas|acunetix|netsparker|w3af|wpscan|dirbuster|gobuster|dirsearch|"
    r"feroxbuster|ffuf|fuzz faster u fool|nuclei|masscan|zgrab|havij|arachni|skipfish|wfuzz|commix|"
    r"xsstrike|nosqlmap|joomscan|droopescan|burpsuite|sqlninja|bbqsql|dotdotpwn|fimap|wapiti|zmeu|"
    r"interactsh|projectdiscovery)|openvas|\.nasl\b",
    _I,
)


#: security tool names both the User-Agent scanner check and the tool-name check look for
_SECURITY_TOOLS = (
    "sqlmap",
    "nikto",
    "nessus",
    "openvas",
    "acunetix",
    "netsparker",
    "w3af",
    "wpscan",
    "dirbuster",
    "gobuster",
    "dirsearch",
    "feroxbuster",
    "ffuf",
    "fuzz faster",
    "nuclei",
    "masscan",
    "zgrab",
    "havij",
    "arachni",
    "skipfish",
    "wfuzz",
    "commix",
    "xsstrike",
    "nosqlmap",
    "joomscan",
    "droopescan",
    "burp",
    "sqlninja",
    "bbqsql",
    "dotdotpwn",
    "fimap",
    "wapiti",
    "zmeu",
    "interactsh",
    "projectdiscovery",
)

_SCANNER_NEEDLES = (
    *_SECURITY_TOOLS,
    "nmap",
    "whatweb",
    "jaeles",
    "zap",
    "appscan",
    "webinspect",
    "qualys",
    "paros",
    "webscarab",
    "grabber",
    "vega",
    "metasploit",
    "hydra",
    "medusa",
    "brutus",
    "jbrofuzz",
    "morfeus",
    "nasl",
)


def scanner_signature(s: Subject) -> str | None:
    """Security scanner names and out-of-band interaction (OAST) domains (User-Agent)."""
    m = (
        (_has_any(s.lower, _SCANNER_NEEDLES) and _SCANNERS.search(s.text))
        or (_has_any(s.lower, _OAST_NEEDLES) and _OAST.search(s.text))
        or None
    )
    return _snip(s.text, m)


_OAST_NEEDLES = (
    "burp",
    "oast",
    "interact",
    "dnslog",
    "ceye",
    "canary",
    "requestbin",
    "pipedream",
    "webhook",
    "xss.ht",
    "bxss",
)
# Tool names in values: the security tools (among them "burp"), a few more and the OAST domains.
_TOOL_NEEDLES = (
    *_SECURITY_TOOLS,
    "burpsuite",
    ".nasl",
    *(needle for needle in _OAST_NEEDLES if needle != "burp"),
)


def scanner_tool(s: Subject) -> str | None:
    """Unmistakable attack-tool names in a value (``sqlmap/1.7``, ``Nuclei``, ``.nasl``)."""
    if not _has_any(s.lower, _TOOL_NEEDLES):
        return None
    m = _SCANNER_TOOLS.search(s.text) or _OAST.search(s.text)
    return _snip(s.text, m)


def oast_domain(s: Subject) -> str | None:
    """Out-of-band testing domains (Burp Collaborator, interactsh, dnslog...) anywhere."""
    if not _has_any(s.lower, _OAST_NEEDLES):
        return None
    m = _OAST.search(s.text)
    return _snip(s.text, m)


#: name -> detector, for rule definitions and ``waf explain``.
DETECTORS = {
    "sqli_syntax": sqli_syntax,
    "sqli_keyword_density": sqli_keyword_density,
    "sqli_function_call": sqli_function_call,
    "xss_tags": xss_tags,
    "xss_attribute": xss_attribute,
    "xss_script": xss_script,
    "path_traversal": path_traversal,
    "sensitive_file": sensitive_file,
    "stream_wrapper": stream_wrapper,
    "rfi_url": rfi_url,
    "command_injection": command_injection,
    "mail_injection": mail_injection,
    "php_injection": php_injection,
    "java_injection": java_injection,
    "code_injection": code_injection,
    "log4shell": log4shell,
    "ssti": ssti,
    "nosql_injection": nosql_injection,
    "ldap_injection": ldap_injection,
    "xxe": xxe,
    "ssrf": ssrf,
    "ssrf_private": ssrf_private,
    "crlf_injection": crlf_injection,
    "newline_in_name": newline_in_name,
    "shellshock": shellshock,
    "ssi_injection": ssi_injection,
    "scanner_signature": scanner_signature,
    "scanner_tool": scanner_tool,
    "oast_domain": oast_domain,
}
