"""Code injection in Python, Node.js, Perl, Ruby and YAML (rule 934100)."""

from __future__ import annotations

from cognitionos.waf._normalize import decode_js_escapes
from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._javascript import JS_SINK
from cognitionos.waf.detectors._match import GatedPatterns, distinct, has_any, snip

__all__ = ["code_injection"]

_CODE = GatedPatterns(
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
    if has_any(s.lower, _CODE_NEEDLES):
        for text in distinct(s.lower, s.nocomment):
            m = _CODE.search(text)
            if m:
                return snip(text, m)
    for decoded in s.base64:
        decoded = decode_js_escapes(decoded)
        m = _CODE.search(decoded) or JS_SINK.search(decoded)
        if m:
            return "base64: " + (snip(decoded, m) or "")
    return None
