"""The inspection budget: too many values or a too-long value is flagged, never passed silently."""

from __future__ import annotations

import json

import pytest

from cognitionos.waf import Firewall, Request
from cognitionos.waf._parse import ParseLimits

FORM = "application/x-www-form-urlencoded"


def _post(body: str, ctype: str = FORM) -> Request:
    return Request.from_raw(
        "POST",
        "/submit",
        headers=[("Host", "x"), ("Accept", "*/*"), ("User-Agent", "t"), ("Content-Type", ctype)],
        body=body.encode(),
    )


def _many(n: int, tail: str = "") -> str:
    # distinct, non-trivial values (each one costs a detector run)
    return "&".join(f"f{i}=hello world {i}." for i in range(n)) + tail


def _budget(rule_id: str, verdict_matches: tuple) -> list:  # type: ignore[type-arg]
    return [m for m in verdict_matches if m.rule_id == rule_id]


def test_too_many_values_block_in_block_mode() -> None:
    fw = Firewall(limits=ParseLimits(max_inspected_values=50, max_args=10_000, oversize="block"))
    v = fw.inspect(_post(_many(60)))
    assert v.blocked
    (m,) = _budget("920910", v.matches)
    assert m.category == "protocol"
    assert m.location == "limit:max_inspected_values"
    assert m.severity.points == 5


def test_too_long_value_blocks_in_block_mode() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="block"))
    v = fw.inspect(_post("a=" + "lorem ipsum. " * 100))
    assert v.blocked
    (m,) = _budget("920911", v.matches)
    assert m.category == "protocol"
    assert m.location == "limit:max_value_length"
    assert "body:form:a" in m.snippet


def test_too_long_json_and_raw_values_block_in_block_mode() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="block"))
    doc = json.dumps({"a": "x." * 600})
    assert fw.inspect(_post(doc, "application/json")).rule_ids >= {"920911"}
    assert fw.inspect(_post(doc, "application/json")).blocked
    assert fw.inspect(_post("<a>" + "y " * 600 + "</a>", "application/xml")).blocked


def test_default_limits_flag_a_100k_value_without_refusing_it() -> None:
    # a large legitimate document passes with a warning; the prefix is still inspected
    v = Firewall().inspect(_post("a=" + "z." * 50_000))
    assert not v.blocked
    (m,) = _budget("920911", v.matches)
    assert m.severity.points == 3
    hidden = Firewall().inspect(_post("a=<script>alert(1)</script>" + "z." * 50_000))
    assert hidden.blocked and "941100" in hidden.rule_ids


@pytest.mark.parametrize("where", ["start", "end"])
def test_inspect_prefix_warns_and_still_finds_an_attack_inside_the_prefix(where: str) -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="inspect_prefix"))
    attack = "<script>alert(1)</script>"
    filler = "lorem ipsum. " * 100
    value = attack + filler if where == "start" else filler[:900] + attack + filler
    v = fw.inspect(_post("a=" + value))
    (m,) = _budget("920911", v.matches)
    assert m.severity.points == 3  # a warning: not enough to block alone
    assert v.blocked and "941100" in v.rule_ids


def test_inspect_prefix_alone_does_not_block_benign_content() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="inspect_prefix"))
    v = fw.inspect(_post("a=" + "lorem ipsum. " * 100))
    assert not v.blocked
    assert v.score == 3 and "920911" in v.rule_ids


def test_inspect_prefix_values_within_the_count_budget_are_inspected() -> None:
    fw = Firewall(
        limits=ParseLimits(max_inspected_values=50, max_args=10_000, oversize="inspect_prefix")
    )
    v = fw.inspect(_post("x=1' or '1'='1&" + _many(60)))
    assert "920910" in v.rule_ids
    assert v.blocked and "942100" in v.rule_ids
    benign = fw.inspect(_post(_many(60)))
    assert not benign.blocked and benign.score == 3


def test_values_under_the_limits_are_unaffected() -> None:
    fw = Firewall(limits=ParseLimits(max_inspected_values=50, max_value_length=1000))
    v = fw.inspect(_post(_many(40) + "&long=" + "lorem ipsum. " * 70))
    assert not v.blocked
    assert not v.rule_ids & {"920910", "920911"}
    attack = fw.inspect(_post(_many(40) + "&q=<script>alert(1)</script>"))
    assert attack.blocked and not attack.rule_ids & {"920910", "920911"}


def test_repeated_values_count_once() -> None:
    fw = Firewall(limits=ParseLimits(max_inspected_values=20, max_args=10_000))
    body = "&".join(f"f{i}=same value here." for i in range(200))
    assert not fw.inspect(_post(body)).blocked


def test_disabling_the_budget_rule_inspects_everything() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000), disabled_rules=["920911"])
    v = fw.inspect(_post("a=" + "lorem ipsum. " * 100 + "<script>alert(1)</script>"))
    assert v.blocked and "941100" in v.rule_ids and "920911" not in v.rule_ids


def test_high_threshold_block_mode_still_inspects_the_prefix() -> None:
    fw = Firewall(threshold=8, limits=ParseLimits(max_value_length=1000, oversize="block"))
    v = fw.inspect(_post("a=<script>alert(1)</script>" + "lorem ipsum. " * 100))
    assert v.blocked and {"920911", "941100"} <= v.rule_ids


def test_json_node_budget_is_flagged() -> None:
    fw = Firewall(limits=ParseLimits(max_args=10, oversize="block"))
    v = fw.inspect(_post(json.dumps([str(i) for i in range(500)]), "application/json"))
    assert v.blocked and "920910" in v.rule_ids
    relaxed = Firewall(limits=ParseLimits(max_args=10))
    assert (
        "920910"
        in relaxed.inspect(
            _post(json.dumps([str(i) for i in range(500)]), "application/json")
        ).rule_ids
    )


def test_binary_upload_content_is_not_inspected_but_its_name_is() -> None:
    import random

    rng = random.Random(7)
    payload = bytes(rng.getrandbits(8) for _ in range(200_000)) + b"\x00"
    boundary = "XyZ"

    def upload(filename: str, content: bytes) -> Request:
        body = (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return Request.from_raw(
            "POST",
            "/upload",
            headers=[
                ("Host", "app.example"),
                ("Content-Type", f"multipart/form-data; boundary={boundary}"),
                ("Content-Length", str(len(body))),
            ],
            body=body,
        )

    fw = Firewall()
    assert not fw.inspect(upload("photo.jpg", payload)).blocked
    # a text upload is still read: a web shell is text an interpreter will run
    assert fw.inspect(upload("notes.txt", b"<?php system($_GET['c']); ?>")).blocked
    # and the file name is inspected whatever the content
    assert fw.inspect(upload("../../etc/passwd", payload)).blocked
