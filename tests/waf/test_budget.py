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
    # a large legitimate document passes with a warning; its ends are still inspected
    v = Firewall().inspect(_post("a=" + "z." * 50_000))
    assert not v.blocked
    (m,) = _budget("920911", v.matches)
    assert m.severity.points == 3
    hidden = Firewall().inspect(_post("a=<script>alert(1)</script>" + "z." * 50_000))
    assert hidden.blocked and "941100" in hidden.rule_ids


@pytest.mark.parametrize("where", ["start", "near the start", "end", "near the end"])
def test_inspect_ends_warns_and_still_finds_an_attack_at_either_end(where: str) -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="inspect_ends"))
    attack = "<script>alert(1)</script>"
    filler = "lorem ipsum. " * 100  # 1,300 characters
    value = {
        "start": attack + filler,
        "near the start": filler[:400] + attack + filler,
        "end": filler + attack,
        "near the end": filler + attack + filler[:400],
    }[where]
    v = fw.inspect(_post("a=" + value))
    (m,) = _budget("920911", v.matches)
    assert m.severity.points == 3  # a warning: not enough to block alone
    assert v.blocked and "941100" in v.rule_ids


def test_inspect_ends_leaves_the_middle_of_a_too_long_value_uninspected() -> None:
    # the documented price of the budget: a value over max_value_length is seen at its first
    # and last 500 characters here, so an attack 1,300 characters from both ends is not seen
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="inspect_ends"))
    filler = "lorem ipsum. " * 100
    v = fw.inspect(_post("a=" + filler + "<script>alert(1)</script>" + filler))
    assert not v.blocked and v.rule_ids == {"920911"}


def test_padding_a_first_parameter_does_not_hide_an_attack_in_a_second_one() -> None:
    # over max_inspected_chars the budget is shared: the short value is inspected in full
    fw = Firewall(limits=ParseLimits(max_value_length=50_000, max_inspected_chars=10_000))
    v = fw.inspect(_post("pad=" + "lorem ipsum. " * 3000 + "&q=<script>alert(1)</script>"))
    assert "920912" in v.rule_ids
    (m,) = _budget("920912", v.matches)
    assert m.severity.points == 3 and m.location == "limit:max_inspected_chars"
    assert v.blocked and "941100" in v.rule_ids
    # and an attack at the end of the padded value itself is still seen
    tail = fw.inspect(_post("pad=" + "lorem ipsum. " * 3000 + "<script>alert(1)</script>"))
    assert tail.blocked and "941100" in tail.rule_ids


def test_char_budget_blocks_in_block_mode() -> None:
    limits = ParseLimits(max_value_length=50_000, max_inspected_chars=10_000, oversize="block")
    v = Firewall(limits=limits).inspect(_post("a=" + "lorem ipsum. " * 1000))
    assert v.blocked and v.rule_ids == {"920912"}


def test_budget_shares_give_short_values_their_full_length() -> None:
    from cognitionos.waf.engine import _shares

    assert _shares([10, 5000, 20, 7000], 1000) == [10, 485, 20, 485]
    assert _shares([100, 100], 1000) == [100, 100]
    assert sum(_shares([3000] * 7, 1000)) <= 1000


def test_oversize_must_be_a_known_mode() -> None:
    from cognitionos.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="inspect_ends"):
        ParseLimits(oversize="inspect_prefix")  # type: ignore[arg-type]


def test_inspect_ends_alone_does_not_block_benign_content() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000, oversize="inspect_ends"))
    v = fw.inspect(_post("a=" + "lorem ipsum. " * 100))
    assert not v.blocked
    assert v.score == 3 and "920911" in v.rule_ids


def test_inspect_ends_values_within_the_count_budget_are_inspected() -> None:
    fw = Firewall(
        limits=ParseLimits(max_inspected_values=50, max_args=10_000, oversize="inspect_ends")
    )
    v = fw.inspect(_post("x=1' or '1'='1&" + _many(60)))
    assert "920910" in v.rule_ids
    assert v.blocked and "942100" in v.rule_ids
    # the values past the count limit are never inspected: critical, not a warning
    benign = fw.inspect(_post(_many(60)))
    assert benign.blocked and benign.rule_ids == {"920910"} and benign.score == 5


def test_values_under_the_limits_are_unaffected() -> None:
    # 40 names and 40 values, each distinct: 80 values (names are inspected too)
    fw = Firewall(limits=ParseLimits(max_inspected_values=100, max_value_length=1000))
    v = fw.inspect(_post(_many(40) + "&long=" + "lorem ipsum. " * 70))
    assert not v.blocked
    assert not v.rule_ids & {"920910", "920911"}
    attack = fw.inspect(_post(_many(40) + "&q=<script>alert(1)</script>"))
    assert attack.blocked and not attack.rule_ids & {"920910", "920911"}


def test_repeated_values_count_once() -> None:
    fw = Firewall(limits=ParseLimits(max_inspected_values=20, max_args=10_000))
    body = "&".join(f"f{i % 10}=same value here." for i in range(200))
    assert not fw.inspect(_post(body)).blocked


def test_disabling_the_budget_rule_inspects_everything() -> None:
    fw = Firewall(limits=ParseLimits(max_value_length=1000), disabled_rules=["920911"])
    v = fw.inspect(_post("a=" + "lorem ipsum. " * 100 + "<script>alert(1)</script>"))
    assert v.blocked and "941100" in v.rule_ids and "920911" not in v.rule_ids


def test_high_threshold_block_mode_still_inspects_within_the_budget() -> None:
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


def test_a_request_over_several_limits_gets_one_warning() -> None:
    # one long document and a few more values: over max_value_length and max_inspected_chars,
    # reported once (3 points), so a large legitimate request is not blocked by the budget alone
    body = "doc=" + "lorem ipsum. " * 4000 + "&" + _many(30)
    v = Firewall().inspect(_post(body))
    assert not v.blocked and v.score == 3
    assert v.rule_ids == {"920911"}
    strict = Firewall(limits=ParseLimits(oversize="block")).inspect(_post(body))
    assert strict.blocked and "920911" in strict.rule_ids
