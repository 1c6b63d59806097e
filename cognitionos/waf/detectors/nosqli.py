"""NoSQL (MongoDB) operator injection (rule 934300)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import GatedPatterns, snip

__all__ = ["nosql_injection"]

_NOSQL_OP = (
    r"\$(?:where|ne|gt|gte|lt|lte|in|nin|or|and|not|nor|regex|exists|elemmatch|expr|function|"
    r"accumulator|lookup|eq|type|size|all|mod|text|jsonschema)\b"
)
# Each branch on its own (a literal first character lets the regex engine skip ahead) and gated
# on a literal every match of that branch contains.
_NOSQL_VALUE = GatedPatterns(
    [
        (("$",), r"\[\s{0,8}" + _NOSQL_OP + r"\s{0,8}\]"),
        (("return",), r"['\"]\s{0,8};\s{0,8}return\s{1,8}(?:true|false|1|0|this|db)\b"),
        (("$",), _NOSQL_OP + r"\s{0,8}[\"']?\s{0,8}:"),
        (("$",), r"\{\s{0,8}[\"']?" + _NOSQL_OP),
        (
            ("db.",),
            r"\bdb\.[\w$]{1,60}\.(?:find|insert|update|remove|drop|aggregate|count|delete|replace|save)"
            r"\w{0,20}\s{0,8}\(",
        ),
        (("this.",), r"\bthis\.\w{1,40}\s{0,8}(?:==|!=|\.match\s{0,8}\()"),
    ]
)
_NOSQL_NAME = re.compile(r"\[\s{0,8}" + _NOSQL_OP + r"\s{0,8}\]|^" + _NOSQL_OP)


def nosql_injection(s: Subject) -> str | None:
    """MongoDB operators in names or values (``user[$ne]=``, ``{"$where": ...}``), shell calls."""
    if (
        "$" not in s.lower
        and "db." not in s.lower
        and "this." not in s.lower
        and "return" not in s.lower
    ):
        return None
    if s.kind == "arg_name":
        m = _NOSQL_NAME.search(s.lower)
        return snip(s.lower, m)
    m = _NOSQL_VALUE.search(s.lower)
    return snip(s.lower, m)
