"""Mail command injection: SMTP/IMAP/POP commands after a line break (rule 932200)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import collapse_line_breaks, snip

__all__ = ["mail_injection"]

_I = re.IGNORECASE

_SMTP = re.compile(
    r"[\r\n]\s{0,8}(?:rcpt\s{1,8}to|mail\s{1,8}from|data|quit|helo|ehlo|auth\s|starttls|bcc|cc|to|subject|"
    r"[a-z0-9]{1,10}\s{1,8}(?:capability|fetch|login|select|examine|list|uid|store|logout|append))\b",
    _I,
)


def mail_injection(s: Subject) -> str | None:
    """SMTP/IMAP/POP commands after a line break (mail header and command injection)."""
    if "\n" not in s.text and "\r" not in s.text:
        return None
    text = collapse_line_breaks(s.text)
    m = _SMTP.search(text)
    return snip(text, m)
