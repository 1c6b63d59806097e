"""Server-side template injection (rule 934200)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import has_any, snip

__all__ = ["ssti"]

_SSTI = re.compile(
    r"\{\{[^{}]{0,200}(?:[*+/%()\[\]|]|\.__|\b(?:config|self|request|lipsum|cycler|joiner|namespace|"
    r"range|class|mro|constructor|_self|env|settings|environ|current_app|builtins|globals|"
    r"\w{0,30}secret(?:s|_?key|_?token)?)\b)[^{}]{0,200}\}\}|"
    # The session as a whole, or its credentials; "{{ session_title }}" stays template text.
    r"\{\{\s{0,8}(?:session|app|g)\s{0,8}\}\}|\{\{[^{}]{0,200}\bsession\s{0,8}\.\s{0,8}\w{0,30}"
    r"(?:token|csrf|key|auth|pass|cookie|sid|user_?id)|"
    r"\$\{\s{0,8}\d{1,10}\s{0,8}[*+/-]\s{0,8}\d{1,10}\s{0,8}\}|[#*@]\{\s{0,8}\d{1,10}\s{0,8}[*+/-]\s{0,8}\d{1,10}\s{0,8}\}|"
    r"<%=?[^%]{0,200}%>|\{%\s{0,8}(?:import|include|set|for|if|debug|load|extends|block|macro|raw|print|do|with|"
    r"filter|call)\b|"
    r"<#(?:assign|list|include|import|setting)\b|\?new\s{0,8}\(|freemarker\.template|"
    r"#set\s{0,8}\(\s{0,8}\$|\$\{\s{0,8}(?:request|session|application|self|class|\w{1,30}\.getclass)\b|"
    r"\{\{\s{0,8}=|\{php\}|\{\s{0,8}system\s{0,8}\(",
)


def ssti(s: Subject) -> str | None:
    """Server-side template injection: ``{{ }}``, ``${ }``, ``#{ }``, ``<% %>``, FreeMarker."""
    if not has_any(
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
    return snip(s.lower, m)
