"""Shellshock: a bash function definition as a value (rule 932170)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import snip

__all__ = ["shellshock"]

_SHELLSHOCK = re.compile(r"^\s{0,8}\(\s{0,8}\)\s{0,8}\{")


def shellshock(s: Subject) -> str | None:
    """Bash function-definition prefix ``() {`` (CVE-2014-6271)."""
    if "(" not in s.text or "{" not in s.text:
        return None
    m = _SHELLSHOCK.search(s.text)
    return snip(s.text, m)
