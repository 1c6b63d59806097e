"""Log4Shell: JNDI lookups, also spelled with nested lookups (rule 944150)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import snip

__all__ = ["log4shell"]

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
    return snip(text, m)
