"""XML external entities (rule 934400)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import has_any, snip

__all__ = ["xxe"]

_XXE = re.compile(
    r"<!entity\b|<!doctype[^>\[]{0,200}\[|<!doctype\s{1,8}\S{1,60}\s{1,8}(?:system|public)\b|"
    r"\bsystem\s{1,8}[\"'](?:file|https?|ftp|php|expect|jar|netdoc|gopher|data|//)|"
    r"<xi:include\b|(?:schemalocation|xs:include|xs:import|xs:redefine)[^>]{0,300}?(?:https?|ftp|file)://|"
    r"<\?xml[^>]{0,100}encoding\s{0,8}=\s{0,8}[\"']utf-7",
)


def xxe(s: Subject) -> str | None:
    """XML external entities and external schema/XInclude references."""
    if not s.utf7 and not has_any(s.lower, ("<!", "<xi", "schemaloc", "xs:", "<?xml")):
        return None
    for text in (s.lower, s.utf7) if s.utf7 else (s.lower,):
        m = _XXE.search(text)
        if m:
            return snip(text, m)
    return None
