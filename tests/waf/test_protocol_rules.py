"""Protocol rules: one registered function per rule, and the RFC 9110 media-type parser."""

from __future__ import annotations

import pytest

from cognitionos.waf import Firewall, Request
from cognitionos.waf._protocol import (
    FIELD_CHECKS,
    LATE_CHECKS,
    REQUEST_CHECKS,
    _backwards_ranges,
    _charsets,
    _fullwidth_escape,
    _legacy_cookie,
    _names_a_media_type,
    _unix_socket,
    parse_media_type,
)

BASE = [("Host", "app.example.com"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*")]


def test_every_rule_is_a_documented_function() -> None:
    checks = [*REQUEST_CHECKS, *LATE_CHECKS, *(c for cs in FIELD_CHECKS.values() for c in cs)]
    assert len(checks) >= 40
    for check in checks:
        # each names the rule ids it reports
        assert check.__doc__ and any(ch.isdigit() for ch in check.__doc__), check.__name__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("text/html", ("text/html", [])),
        ("Text/HTML;Charset=UTF-8", ("text/html", [("charset", "UTF-8")])),
        ('text/html; charset="utf-8"', ("text/html", [("charset", '"utf-8"')])),
        ("text/html ; charset=utf-8 ;", ("text/html", [("charset", "utf-8")])),
        ("text/html;;charset=utf-8", ("text/html", [("charset", "utf-8")])),
        (
            'multipart/form-data; boundary="a;b\\"c"',
            ("multipart/form-data", [("boundary", '"a;b\\"c"')]),
        ),
        ("application/vnd.api+json", ("application/vnd.api+json", [])),
    ],
)
def test_media_types_rfc_9110_accepts(text: str, expected: object) -> None:
    assert parse_media_type(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "text",  # no subtype
        "text/",  # empty subtype
        "/html",  # empty type
        "text/html charset=utf-8",  # parameters need ";"
        "text/html; charset",  # a parameter needs "="
        "text/html; charset=",  # ... and a value
        'text/html; charset="utf-8',  # unterminated quoted-string
        "text/html; charset=  utf-8",  # more than one blank after "="
        "text/html; char set=utf-8",  # a name is a token
        "text/h tml",
        "text/html; charset=utf-8<script>",
    ],
)
def test_media_types_rfc_9110_rejects(text: str) -> None:
    assert parse_media_type(text) is None


def _post(ctype: str) -> Request:
    return Request.from_raw("POST", "/", headers=[*BASE, ("Content-Type", ctype)], body=b"a=1")


def test_content_type_rules_through_the_firewall() -> None:
    fw = Firewall()
    assert not fw.inspect(_post("application/x-www-form-urlencoded; charset=utf-8")).rule_ids
    assert "920470" in fw.inspect(_post("application/x-www-form-urlencoded; foo=bar")).rule_ids
    assert "920470" in fw.inspect(_post("application/x-www-form-urlencoded;;=")).rule_ids
    assert "920420" in fw.inspect(_post("text/plain")).rule_ids
    assert "920480" in fw.inspect(_post("application/json; charset=utf-7")).rule_ids
    assert "920530" in fw.inspect(_post("application/json; charset=utf-8; charset=utf-8")).rule_ids
    assert "921422" in fw.inspect(_post("application/json; x=text/html")).rule_ids


def test_small_header_parsers() -> None:
    assert _charsets("text/html; charset = 'UTF-8'; charset=latin1") == ["UTF-8", "latin1"]
    assert _charsets("text/html") == []
    assert _names_a_media_type(' type="text/xml"') and not _names_a_media_type(" boundary=a1/")
    assert not _names_a_media_type(" x=1a/b")  # a digit before the slash: not a type name
    assert _backwards_ranges("bytes=500-100") and not _backwards_ranges("bytes=0-499, 500-")
    assert _fullwidth_escape("/%uff0e%uFF0E/") and not _fullwidth_escape("%u0041")
    assert _unix_socket("/?x=unix:/run/a.sock|http://x/") and not _unix_socket("unix:/a")
    assert _legacy_cookie("$Version=1; a=b") and _legacy_cookie("a=b;  $Path=/")
    assert not _legacy_cookie("a=$Version") and not _legacy_cookie("$versions=1")
