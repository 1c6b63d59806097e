"""Request parsing: every value gets a location; limits truncate and are flagged."""

from __future__ import annotations

import json

from cognitionos.waf import ParseLimits, Request
from cognitionos.waf._parse import parse_request


def _fields(req, limits=None):
    parsed = parse_request(req, limits or ParseLimits())
    return {(f.location, f.value) for f in parsed.fields}, parsed


def test_request_from_raw_splits_target():
    req = Request.from_raw(
        "GET", "/search?q=%27x", headers=[("Host", "a")], client_ip="203.0.113.9"
    )
    assert (req.path, req.query) == ("/search", "q=%27x")
    assert req.header("host") == "a" and req.header("HOST") == "a"
    assert req.header("missing", "d") == "d"
    absolute = Request.from_raw("GET", "http://example.com/p?x=1")
    assert (absolute.path, absolute.query) == ("/p", "x=1")


def test_query_args_and_names_are_decoded_with_locations():
    fields, parsed = _fields(Request.from_raw("GET", "/p?a=1+2&b%5B%5D=%3Cx%3E&flag"))
    assert ("args:a", "1 2") in fields
    assert ("args:b[]", "<x>") in fields
    assert ("args_name:flag", "flag") in fields
    assert parsed.arg_names == ["a", "b[]", "flag"]


def test_cookies_and_headers():
    req = Request.from_raw(
        "GET", "/", headers=[("Cookie", "sid=abc; theme=%3Cdark%3E"), ("User-Agent", "UA")]
    )
    fields, _ = _fields(req)
    assert ("cookie:sid", "abc") in fields
    assert ("cookie:theme", "<dark>") in fields
    assert ("cookie_name:theme", "theme") in fields
    assert ("header:user-agent", "UA") in fields


def test_urlencoded_body():
    req = Request.from_raw(
        "POST",
        "/",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"u=a%20b&p=x",
    )
    fields, _ = _fields(req)
    assert ("body:form:u", "a b") in fields and ("body:form:p", "x") in fields


def test_json_body_values_and_keys():
    body = json.dumps({"a": {"b": ["x", {"c": "deep"}]}, "n": 5}).encode()
    req = Request.from_raw("POST", "/", headers=[("Content-Type", "application/json")], body=body)
    fields, _ = _fields(req)
    assert ("body:json:$.a.b[0]", "x") in fields
    assert ("body:json:$.a.b[1].c", "deep") in fields
    assert ("body:json_key:$.a", "a") in fields


def test_json_depth_limit_flags_and_keeps_raw():
    body = ("[" * 100 + "]" * 100).encode()
    req = Request.from_raw("POST", "/", headers=[("Content-Type", "application/json")], body=body)
    _, parsed = _fields(req, ParseLimits(max_json_depth=10))
    assert any(a.code == "json-too-deep" for a in parsed.anomalies)
    assert any(f.location == "body:raw" for f in parsed.fields)


def test_invalid_json_is_an_anomaly():
    req = Request.from_raw(
        "POST", "/", headers=[("Content-Type", "application/json")], body=b"{nope"
    )
    _, parsed = _fields(req)
    assert [a.code for a in parsed.anomalies] == ["json-invalid"]


def test_xml_text_and_attributes():
    body = b'<?xml version="1.0"?><root><a probe="x &amp; y">text</a><![CDATA[<raw>]]></root>'
    req = Request.from_raw("POST", "/", headers=[("Content-Type", "application/xml")], body=body)
    fields, _ = _fields(req)
    assert ("body:xml:/root/a/@probe", "x & y") in fields
    assert ("body:xml:/root/a", "text") in fields
    assert ("body:xml:/root", "<raw>") in fields


def test_multipart_parts_filenames_and_part_headers():
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="up"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n"
    )
    req = Request.from_raw(
        "POST", "/", headers=[("Content-Type", "multipart/form-data; boundary=XyZ")], body=body
    )
    fields, _ = _fields(req)
    assert ("body:multipart:title", "hello") in fields
    assert ("body:multipart:up:filename", "a.txt") in fields
    assert ("body:multipart:up", "file body") in fields
    assert ("body:multipart:up:header:content-type", "text/plain") in fields


def test_arg_count_and_body_size_limits():
    many = "&".join(f"a{i}=1" for i in range(50))
    _, parsed = _fields(Request.from_raw("GET", "/?" + many), ParseLimits(max_args=10))
    assert any(a.code == "too-many-args" for a in parsed.anomalies)
    assert len([f for f in parsed.fields if f.kind == "arg"]) == 10
    big = Request.from_raw("POST", "/", headers=[("Content-Type", "text/plain")], body=b"x" * 5000)
    _, parsed = _fields(big, ParseLimits(max_body_bytes=1000))
    assert any(a.code == "body-too-large" for a in parsed.anomalies)
    assert max(len(f.value) for f in parsed.fields) == 1000


def test_value_length_limit_is_left_to_the_inspection_budget():
    # the parser keeps long values whole; Firewall.inspect enforces max_value_length (920911)
    _, parsed = _fields(
        Request.from_raw("GET", "/?a=" + "x" * 500), ParseLimits(max_value_length=100)
    )
    values = [f.value for f in parsed.fields if f.location == "args:a"]
    assert values == ["x" * 500]


def test_xml_attributes_count_toward_the_node_budget():
    # one tag with thousands of attributes: parsing stops at 4 * max_args nodes and says so
    body = ("<a " + "b='1' " * 5000 + "/>").encode()
    req = Request.from_raw("POST", "/x", headers=[("Content-Type", "application/xml")], body=body)
    parsed = parse_request(req, ParseLimits(max_args=100))
    attrs_seen = [f for f in parsed.fields if "/@b" in f.location]
    assert len(attrs_seen) == 399  # the tag is node 1, its attributes nodes 2..400
    assert [a.code for a in parsed.anomalies] == ["xml-too-large"]
