"""Nothing beyond a parse limit passes silently: an attack placed just past each limit blocks.

For every limit the default either inspects what is over it (a too-long value at its ends) or
scores the request at the blocking level (critical, 5 points); ``oversize="block"`` blocks
every one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cognitionos.waf import Firewall, Request
from cognitionos.waf._parse import ParseLimits

BASE = [("Host", "app.example.com"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*")]
XSS = "<script>alert(1)</script>"


def _post(body: str | bytes, ctype: str, extra: list[tuple[str, str]] | None = None) -> Request:
    return Request.from_raw(
        "POST", "/submit", headers=[*BASE, ("Content-Type", ctype), *(extra or [])], body=body
    )


def _headers() -> Request:
    # 200 headers (the default max_headers), then the attack in the 201st
    filler = [(f"X-Filler-{i}", f"value {i}") for i in range(200 - len(BASE))]
    return Request.from_raw("GET", "/", headers=[*BASE, *filler, ("X-Comment", XSS)])


def _query_args() -> Request:
    args = "&".join(f"a{i}=v" for i in range(1000))
    return Request.from_raw("GET", f"/?{args}&q=%3Cscript%3Ealert(1)%3C/script%3E", headers=BASE)


def _form_args() -> Request:
    body = "&".join(f"a{i}=v" for i in range(1000)) + "&q=" + XSS
    return _post(body, "application/x-www-form-urlencoded")


def _cookies() -> Request:
    cookie = "; ".join(f"c{i}=v" for i in range(1000)) + "; evil=" + XSS
    return Request.from_raw("GET", "/", headers=[*BASE, ("Cookie", cookie)])


def _multipart_parts() -> Request:
    parts = [f'--B\r\nContent-Disposition: form-data; name="p{i}"\r\n\r\nv\r\n' for i in range(200)]
    parts.append(f'--B\r\nContent-Disposition: form-data; name="evil"\r\n\r\n{XSS}\r\n')
    return _post("".join(parts) + "--B--\r\n", "multipart/form-data; boundary=B")


def _json_depth() -> Request:
    doc: object = XSS
    for _ in range(65):  # max_json_depth is 64
        doc = {"a": doc}
    return _post(json.dumps(doc), "application/json")


def _xml_depth() -> Request:
    return _post("<a>" * 65 + XSS.replace("<", "&lt;") + "</a>" * 65, "application/xml")


def _json_nodes() -> Request:
    # max_args * 10 = 10,000 nodes, then the attack
    return _post(json.dumps([*(["v"] * 10_000), XSS]), "application/json")


def _xml_nodes() -> Request:
    # max_args * 4 = 4,000 tokens, then the attack
    body = "<r>" + "<i>v</i>" * 1400 + "<i>" + XSS.replace("<", "&lt;") + "</i></r>"
    return _post(body, "application/xml")


def _inspected_values(n: int = 512, last: str = XSS) -> Request:
    # 512 distinct values inspected (max_inspected_values), then the attack in the next one
    # (a JSON array: no parameter names, so the 255-argument limit is not what catches it)
    return _post(json.dumps([*(f"value {i}" for i in range(n)), last]), "application/json")


def _value_length() -> Request:
    return _post("a=" + "lorem ipsum " * 2731 + XSS, "application/x-www-form-urlencoded")


def _char_budget() -> Request:
    # 32,768 characters over 16 values, the attack in the 17th: every value is inspected at
    # its ends, and a short value in full
    body = "&".join(f"f{i}=" + f"filler {i} " * 230 for i in range(16)) + "&q=" + XSS
    return _post(body, "application/x-www-form-urlencoded")


def _body_size() -> Request:
    body = "a=" + "x" * 1_048_576 + "&q=" + XSS
    return _post(body, "application/x-www-form-urlencoded")


#: limit -> (request with an attack just past it, the rule that reports the limit, whether the
#: attack itself is still inspected by default)
LIMITS: dict[str, tuple[Callable[[], Request], str, bool]] = {
    "max_headers": (_headers, "920908", False),
    "max_args (query)": (_query_args, "920380", False),
    "max_args (form body)": (_form_args, "920380", False),
    "max_args (cookies)": (_cookies, "920380", False),
    "max_multipart_parts": (_multipart_parts, "920907", False),
    "max_json_depth": (_json_depth, "920902", True),
    "max_xml_depth": (_xml_depth, "920903", False),
    "json node budget": (_json_nodes, "920910", False),
    "xml node budget": (_xml_nodes, "920904", False),
    "max_inspected_values": (_inspected_values, "920910", False),
    "max_value_length": (_value_length, "920911", True),
    "max_inspected_chars": (_char_budget, "920912", True),
    "max_body_bytes": (_body_size, "920400", False),
}


@pytest.mark.parametrize("limit", LIMITS)
def test_attack_just_past_a_limit_blocks_by_default(limit: str) -> None:
    build, rule_id, inspected = LIMITS[limit]
    verdict = Firewall().inspect(build())
    assert rule_id in verdict.rule_ids
    assert verdict.blocked
    if inspected:
        assert "941100" in verdict.rule_ids  # the attack itself was seen (at the value's end)
    else:
        # not inspected: the limit alone scores at the blocking level
        (limit_match,) = [m for m in verdict.matches if m.rule_id == rule_id][:1]
        assert limit_match.points >= 5


@pytest.mark.parametrize("limit", LIMITS)
def test_oversize_block_blocks_every_limit(limit: str) -> None:
    build, rule_id, _ = LIMITS[limit]
    fw = Firewall(limits=ParseLimits(oversize="block"))
    verdict = fw.inspect(build())
    assert verdict.blocked and rule_id in verdict.rule_ids
    assert max(m.points for m in verdict.matches if m.rule_id == rule_id) == 5


def test_under_every_limit_the_same_requests_pass() -> None:
    # the benign twins (no attack past the limit) of the checks that inspect the excess
    fw = Firewall()
    ok = _post("a=" + "lorem ipsum " * 2731 + "end", "application/x-www-form-urlencoded")
    verdict = fw.inspect(ok)
    assert not verdict.blocked and verdict.rule_ids == {"920911"}
    few = fw.inspect(_inspected_values(500, "the end"))
    assert not few.blocked and few.score == 0
