"""Java injection: class names, expression languages, serialized objects (rule 944100)."""

from __future__ import annotations

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import GatedPatterns, has_any, snip

__all__ = ["java_injection"]

_JAVA = GatedPatterns(
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
    if has_any(s.lower, _JAVA_NEEDLES):
        for text in (s.lower, s.compact):
            m = _JAVA.search(text)
            if m:
                return snip(text, m)
    for decoded in s.base64:
        m = _JAVA.search(decoded)
        if m:
            return "base64: " + (snip(decoded, m) or "")
    return None
