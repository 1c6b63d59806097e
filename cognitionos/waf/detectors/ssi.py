"""Server-side includes (rule 932180)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import snip

__all__ = ["ssi_injection"]

_SSI = re.compile(
    r"<!--\s{0,8}#\s{0,8}(?:exec|include|echo|config|set|printenv|fsize|flastmod|if|elif)\b"
)


def ssi_injection(s: Subject) -> str | None:
    """Server-side include directives ``<!--#exec cmd=...-->``."""
    if "<!--" not in s.lower:
        return None
    m = _SSI.search(s.lower)
    return snip(s.lower, m)
