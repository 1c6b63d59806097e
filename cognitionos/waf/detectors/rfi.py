"""Remote file inclusion: URLs to IP hosts or ending in ``?`` (rule 931100)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import snip

__all__ = ["rfi_url"]

_I = re.IGNORECASE

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
    return snip(s.lower, m)
