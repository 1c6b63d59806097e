"""Each normalization transform, on inputs whose outputs are worked out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognitionos.waf import _normalize as n


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("%27%20or%201%3D1", "' or 1=1"),
        ("100%", "100%"),  # a lone percent sign is data
        ("%zz%41", "%zzA"),  # invalid escape kept, valid one decoded
        ("%u003cscript%u003e", "<script>"),  # IIS %u escapes
        ("caf%C3%A9", "café"),  # multi-byte UTF-8
        ("%E9t%E9", "été"),  # not UTF-8: latin-1 fallback
    ],
)
def test_url_decode_single_pass(raw, expected):
    assert n.url_decode(raw) == expected


def test_url_decode_repeated_unwraps_double_and_triple_encoding():
    assert n.url_decode("%2527") == "%27"
    assert n.url_decode_repeated("%2527") == "'"
    assert n.url_decode_repeated("%252527") == "'"


def test_url_decode_repeated_is_bounded():
    deep = "'"
    for _ in range(10):
        deep = deep.replace("%", "%25") if "%" in deep else "%27"
    # ten levels of encoding: only max_rounds of them are peeled
    assert n.url_decode_repeated(deep, max_rounds=4).startswith("%25")


def test_plus_to_space():
    assert n.plus_to_space("a+b+c") == "a b c"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("%C0%AE%C0%AE%C0%AF", "../"),  # overlong 2-byte '.', '.', '/'
        ("%E0%80%AE", "."),  # overlong 3-byte '.'
    ],
)
def test_overlong_utf8_sequences_decode_to_ascii(raw, expected):
    assert n.url_decode(raw) == expected


def test_overlong_pairs_left_as_latin1_text_fold():
    assert n.decode_overlong_utf8("\u00c0\u00ae\u00c0\u00ae\u00c0\u00af") == "../"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("&lt;script&gt;", "<script>"),
        ("&#x3C;img&#62;", "<img>"),
        ("&#106&#97&#118&#97", "java"),  # numeric references without ';'
        ("&amp;lt;b&amp;gt;", "<b>"),  # double-escaped
        ("AT&T", "AT&T"),
    ],
)
def test_html_entity_decode(raw, expected):
    assert n.html_entity_decode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\\u0061lert", "alert"),
        ("\\x3cscript\\x3e", "<script>"),
        ("\\u{61}", "a"),
        ("\\141", "a"),  # octal
        ("C:\\new", "C:\\new"),  # not an escape sequence
    ],
)
def test_js_escapes(raw, expected):
    assert n.decode_js_escapes(raw) == expected


def test_utf7_decoding_of_markup():
    assert n.decode_utf7("+ADw-script+AD4-") == "<script>"
    # "+AND+" is an ordinary word between plus signs, not UTF-7 for ASCII punctuation
    assert n.decode_utf7("1+AND+2") == "1+AND+2"


def test_nfkc_folds_fullwidth():
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "select") + "\u3000" + "\uff1cscript\uff1e"
    assert n.unicode_nfkc(fullwidth) == "select <script>"


def test_remove_nulls():
    assert n.remove_nulls("ad\x00min") == "admin"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("un/**/ion", "un ion"),
        ("/*!50000select*/ 1", " select  1"),
        ("1 -- comment", "1  "),
        ("1 # comment\n2", "1  \n2"),
        ("/* unterminated", " "),
    ],
)
def test_remove_sql_comments(raw, expected):
    assert n.remove_sql_comments(raw) == expected


def test_compress_whitespace_and_lowercase():
    assert n.compress_whitespace(" a \t\n b\u00a0 c ") == "a b c"
    assert n.lowercase("SeLeCt") == "select"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("..\\..\\windows\\win.ini", "../../windows/win.ini"),
        ("/a//b/./c/././d", "/a/b/c/d"),
        ("0x2e0x2e0x2fetc", "../etc"),
        ("/../x", "/../x"),  # traversal segments are kept for the detector
    ],
)
def test_normalize_path(raw, expected):
    assert n.normalize_path(raw) == expected


def test_strip_tags_rejoins_split_keywords():
    assert n.strip_tags("o<x>nfocus=al<b>ert") == "onfocus=alert"


def test_base64_variants_find_text_at_any_alignment():
    import base64

    blob = base64.b64encode(b"xxjava.lang.Runtime").decode()
    assert any("java.lang.Runtime" in v for v in n.decode_base64_variants(blob))
    # shifted by one character the keyword is still found in one of the alignments
    assert any("Runtime" in v for v in n.decode_base64_variants(blob[1:]))
    assert n.decode_base64_variants("short") == []


@given(st.binary(min_size=12, max_size=80), st.integers(0, 3))
def test_base64_variants_keep_exactly_the_mostly_printable_decodings(payload, shift):
    import base64
    import binascii

    text = base64.b64encode(payload).decode()[shift:]
    # reference: decode each alignment, keep it when >= 80 % of its characters are printable
    expected = []
    run = text.rstrip("=")
    if len(run) >= 16:
        for pad in ("", "A", "AA", "AAA"):
            data = pad + run
            if len(data) % 4 == 1:
                data = data[:-1]
            data += "=" * (-len(data) % 4)
            try:
                decoded = base64.b64decode(data, validate=True).decode("latin-1")
            except binascii.Error:
                continue
            good = [c for c in decoded if " " <= c <= "~"]
            if decoded and len(good) >= 0.8 * len(decoded):
                expected.append(decoded)
    assert n.decode_base64_variants(text) == expected


def test_decode_all_chains_steps():
    # %26 -> '&', then '&#x27;' -> "'", then the full-width letters of "or" fold to ASCII
    assert n.decode_all("%26%23x27%3B%20%EF%BD%8F%EF%BD%92%201%3D1") == "' or 1=1"


def test_explain_steps_lists_every_step_in_order():
    names = [name for name, _ in n.explain_steps("x")]
    assert names[0] == "input"
    assert names[1:7] == [name for name, _ in n.DECODE_STEPS]
    assert "remove_sql_comments" in names and "normalize_path" in names


@given(st.text(max_size=200))
def test_transforms_are_total(text):
    for _, step in n.DECODE_STEPS:
        assert isinstance(step(text), str)
    for step in (
        n.remove_sql_comments,
        n.compress_whitespace,
        n.normalize_path,
        n.strip_tags,
        n.decode_utf7,
    ):
        assert isinstance(step(text), str)
    assert isinstance(n.decode_all(text), str)
