"""Web application firewall: is this HTTP request an attack?

Parses every value of a request (query, cookies, headers, form, multipart,
JSON, XML), normalizes it (repeated percent-decoding, entities, escapes,
NFKC, overlong UTF-8...), runs detectors (SQL tokenizer, HTML/JS analysis,
traversal, command, code, template, JNDI, NoSQL, LDAP, XXE, SSRF, CRLF...)
and sums CRS-style anomaly points against a threshold::

    from cognitionos.waf import Firewall, Request
    fw = Firewall(paranoia=1, threshold=5)
    verdict = fw.inspect(Request.from_raw("GET", "/search?q=%27%20or%201%3D1--"))
    verdict.blocked                     # True
"""

from __future__ import annotations

from cognitionos.waf._parse import ParseLimits
from cognitionos.waf._protocol import ProtocolPolicy
from cognitionos.waf.blacklist import AutoBlacklist, Ban
from cognitionos.waf.engine import Explanation, Firewall
from cognitionos.waf.models import Match, Request, Severity, Verdict
from cognitionos.waf.rules import CustomRule, Exclusion, load_rules

__all__ = [
    "AutoBlacklist",
    "Ban",
    "CustomRule",
    "Exclusion",
    "Explanation",
    "Firewall",
    "Match",
    "ParseLimits",
    "ProtocolPolicy",
    "Request",
    "Severity",
    "Verdict",
    "load_rules",
]
