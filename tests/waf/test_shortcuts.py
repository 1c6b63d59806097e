"""Shortcuts do not change verdicts: the shortcut path against the full detector set.

``Firewall()`` takes two shortcuts: it skips the detectors on values proven to pass them
(numbers, tokens of at most two letters, digits or hyphens, the path ``/``), and on other plain
values it runs only the detectors whose required literals the value holds (the literal
prefilter, cognitionos/waf/_prefilter.py). ``Firewall(shortcuts=False)`` runs every detector on
every value. The proof is exhaustive over the short tokens and differential over the
conformance data and a generated corpus.
"""

from __future__ import annotations

import itertools
import json
import re
import string
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.waf import Firewall, Request
from cognitionos.waf._parse import parse_request
from cognitionos.waf._prefilter import anchored_prefixes, literal_prefilter, required_literals
from cognitionos.waf._ruleset import BUILTIN_RULES
from cognitionos.waf._subject import Subject

HEADERS = [("Host", "app.example.com"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*")]
#: Every kind of value a shortcut applies to (headers never take one).
KINDS = ("arg", "arg_name", "cookie", "cookie_name", "path", "query", "body", "filename")
DETECTOR_RULES = frozenset(r.rule_id for r in BUILTIN_RULES)


def _detector_hits(fw: Firewall, kind: str, value: str) -> list[str]:
    subject = Subject(value, kind, "q")
    return [r.rule_id for r in fw._rules_for(kind, "q") if r.check(subject) is not None]


def _verdict(fw: Firewall, req: Request) -> tuple[bool, int, list[str]]:
    v = fw.inspect(req)
    return v.blocked, v.score, sorted(v.rule_ids)


def test_every_shortcut_token_passes_every_detector() -> None:
    fw = Firewall(paranoia=4)  # every rule, every paranoia level
    alphabet = string.ascii_letters + string.digits + "-"
    tokens = ["", "/", *alphabet, *("".join(p) for p in itertools.product(alphabet, repeat=2))]
    numbers = [str(n) for n in range(0, 20_000, 7)] + ["2130706433", "0" * 64, "9" * 64]
    for kind in KINDS:
        for value in tokens + numbers:
            assert fw.passes_shortcut(kind, value), value
            assert _detector_hits(fw, kind, value) == [], (kind, value)


@pytest.mark.parametrize(
    "value",
    [
        "localhost",  # an SSRF host name
        "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3RvckkACXRocmVzaG9sZHhw",
        "sqlmap",  # a scanner name
        "import os",
        "msysaccessobjects",
        "web-inf",
        "shutdown--",
        "visudo\n",  # "$" in the old shortcut pattern matched before a final newline
    ],
)
def test_values_the_old_shortcuts_skipped_agree_with_inspect_value(value: str) -> None:
    fw = Firewall(paranoia=4)
    assert not fw.passes_shortcut("arg", value)
    direct = fw.inspect_value(value).rule_ids
    via_request = fw.inspect(
        Request.from_raw("GET", "/?q=" + urllib.parse.quote(value), headers=HEADERS)
    ).rule_ids
    assert direct  # each of them fires a detector
    assert direct == via_request & DETECTOR_RULES


def test_shortcut_switch_runs_the_detectors_on_every_value() -> None:
    fw = Firewall(shortcuts=False)
    assert not fw.passes_shortcut("arg", "42")
    assert Firewall().passes_shortcut("arg", "42")
    assert not Firewall().passes_shortcut("header", "42")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet=string.ascii_letters + string.digits + " ,-\n", max_size=40),
        st.from_regex(r"[0-9]{1,64}|[A-Za-z0-9-]{1,3}", fullmatch=True),
    )
)
def test_generated_values_same_verdict_with_and_without_shortcuts(value: str) -> None:
    req = Request.from_raw(
        "POST",
        "/" + urllib.parse.quote(value[:8]) + "?" + urllib.parse.urlencode({value: value}),
        headers=[*HEADERS, ("Cookie", f"c={urllib.parse.quote(value)}")],
        body=urllib.parse.urlencode({"f": value, value: "x"}),
    )
    assert _verdict(SHORT, req) == _verdict(FULL, req)
    assert SHORT.inspect_value(value).rule_ids == FULL.inspect_value(value).rule_ids


SHORT = Firewall(paranoia=4)
FULL = Firewall(paranoia=4, shortcuts=False)

#: Characters of plain values (the prefilter judges only these) and words detectors look for.
PLAIN = string.ascii_letters + string.digits + " ,_.:;=()!?@*/-"
WORDS = [
    "select",
    "union",
    "from",
    "sleep",
    "cat",
    "ls",
    "id",
    "wget",
    "curl",
    "localhost",
    "metadata",
    "sqlmap",
    "nikto",
    "import",
    "os",
    "system",
    "eval",
    "alert",
    "document",
    "cookie",
    "etc",
    "passwd",
    "win.ini",
    "web-inf",
    "java.lang",
    "runtime",
    "exec",
    "jndi",
    "ldap",
    "onload",
    "onerror",
    "javascript:",
    "script",
    "svg",
    "iframe",
    "169.254.169.254",
    "127.0.0.1",
    "0",
    "1",
    "or",
    "and",
    "if",
    "for",
    "do",
    "sh",
    "bash",
    "powershell",
    "cmd",
]


def _firing(fw: Firewall, kind: str, value: str) -> set[str]:
    subject = Subject(value, kind, "q")
    return {r.detector for r in fw._rules_for(kind, "q") if r.check(subject) is not None}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(alphabet=PLAIN, min_size=1, max_size=60),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map("/".join),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(";".join),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map("=".join),
    ),
    st.sampled_from(["arg", "arg_name", "path", "cookie"]),
)
def test_prefilter_names_every_detector_that_fires(value: str, kind: str) -> None:
    prefilter = literal_prefilter()
    assert prefilter is not None
    names = prefilter.detectors_for(value)
    if names is None or (len(value) >= 16 and Subject(value, kind).base64):
        return  # not plain: every detector runs
    assert _firing(FULL, kind, value) <= names, value


def test_required_literals_of_patterns() -> None:
    assert required_literals(r"(?i)\bunion\s+(?:all\s+)?select\b") == {"union "}
    assert required_literals(r"\$(?:where|ne)") == {"$where", "$ne"}
    assert required_literals(r"ab?c") == {"abc", "ac"}
    assert required_literals(r"\w+") is None
    assert required_literals(r"(?i)\u017fystem") == {"system"}  # (?i) long s matches "s"
    assert required_literals(r"[\u0100-\u0200]x") == frozenset()  # never on plain text
    assert anchored_prefixes(r"^\s{0,8}(?:sudo\s+)?(?:cat|ls)\b") == {"sudo ", "cat", "ls"}
    assert anchored_prefixes(r"(?:cat|ls)\b") is None


@pytest.mark.slow
def test_conformance_data_same_verdict_with_and_without_shortcuts(data_file) -> None:  # type: ignore[no-untyped-def]
    from tests.waf.test_conformance import crs_request, dev_request

    short, full = Firewall(), Firewall(shortcuts=False)
    prefilter = literal_prefilter()
    assert prefilter is not None
    checked = 0
    with data_file("waf/payloads_dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            req = dev_request(row["sent"], row.get("encoding", "raw"))
            assert _verdict(short, req) == _verdict(full, req), row["id"]
            checked += 1
    with data_file("waf/crs_tests.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            req = crs_request(row)
            assert _verdict(short, req) == _verdict(full, req), row["id"]
            # and value by value, at paranoia 4: every value the shortcut skips passes every
            # detector, and the prefilter names every detector that fires on a plain value
            for field in parse_request(req, short.limits).fields:
                if short.passes_shortcut(field.kind, field.value):
                    assert _detector_hits(SHORT, field.kind, field.value) == []
                elif field.kind != "header":
                    names = prefilter.detectors_for(field.value)
                    if names is not None and not (
                        len(field.value) >= 16 and Subject(field.value, field.kind).base64
                    ):
                        assert _firing(FULL, field.kind, field.value) <= names, field.value
            checked += 1
    assert checked > 40_000


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["`", " ", "  ", "\t", "$(", "${", "{", "\\", "/", ".", "-", "exe"]),
            st.sampled_from([*WORDS, "true", "false", "cd", "ls", "id", "x"]),
            st.text(alphabet="`$ {}\\/.-_ab", max_size=4),
        ),
        max_size=12,
    ).map("".join)
)
def test_backtick_command_reads_only_the_pair_it_starts(text: str) -> None:
    # The pattern is matched at a pair's opening backtick (so that the literal prefilter sees
    # that it needs one); matching the pair's content alone, with the backtick taken off the
    # pattern, must give the same answer: no branch crosses the closing backtick.
    from cognitionos.waf.detectors import cmdi

    pattern = cmdi._BACKTICK_COMMAND.pattern
    assert pattern.startswith("`")
    content_only = re.compile(pattern[1:])
    for pair in cmdi._BACKTICK_PAIR.finditer(text):
        at_pair = cmdi._BACKTICK_COMMAND.match(text, pair.start()) is not None
        assert at_pair == (content_only.match(pair.group(1)) is not None), text
