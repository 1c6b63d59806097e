"""LDAP filter injection (rule 921200)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import snip

__all__ = ["ldap_injection"]

_I = re.IGNORECASE

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
    return snip(s.lower, m)
