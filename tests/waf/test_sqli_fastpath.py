"""The SQL detector's structural proof (``_cannot_be_sqli``) agrees with the tokenizer.

``detect_sqli`` skips the tokenizer on a value the proof clears (short ASCII text without
quotes, comments, symbolic operators and without any word the checks read). Whenever the proof
clears a value, the full tokenizer and checks (``_detect_tokenized``) must find nothing in it:
checked here on every value of the conformance data (as the detectors see it, decoded), on
generated browser, bot and client User-Agents and on generated values built from SQL words and
the characters the proof lets through.
"""

from __future__ import annotations

import json
import random
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.waf import Firewall
from cognitionos.waf._parse import parse_request
from cognitionos.waf._sqli import (
    _ATTACK_FUNCS,
    _INFO_FUNCS,
    _KEYWORDS,
    _LITERALS,
    _SQL_STRING_FUNCS,
    _STATEMENTS,
    _WORD_CMP,
    _WORD_OPS,
    _cannot_be_sqli,
    _detect_tokenized,
    _worth_tokenizing,
    detect_sqli,
)
from cognitionos.waf._subject import Subject


def _agrees(value: str) -> bool:
    """The proof never clears a value the tokenizer finds SQL injection in."""
    return not _cannot_be_sqli(value) or _detect_tokenized(value) is None


# ------------------------------------------------------------------ generated User-Agents

_WINDOWS = ["Windows NT 10.0; Win64; x64", "Windows NT 6.1; WOW64", "Windows NT 11.0; Win64; x64"]
_MACS = ["Macintosh; Intel Mac OS X 10_15_7", "Macintosh; Intel Mac OS X 14_4_1"]
_LINUX = ["X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "X11; CrOS x86_64 14541.0.0"]
_ANDROID = ["Linux; Android 10; K", "Linux; Android 14; Pixel 8 Pro", "Linux; Android 13; SM-S908B"]
_IOS = ["iPhone; CPU iPhone OS 17_4 like Mac OS X", "iPad; CPU OS 16_6 like Mac OS X"]


def _version(rng: random.Random, parts: int) -> str:
    return ".".join(str(rng.randint(0, 140 if i == 0 else 9999)) for i in range(parts))


def user_agents(count: int, seed: int = 9) -> list[str]:
    """Browser, crawler and HTTP-client User-Agents in the shapes those clients send."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        shape = rng.randrange(9)
        webkit = f"AppleWebKit/{rng.choice(['537.36', '605.1.15'])} (KHTML, like Gecko)"
        if shape == 0:  # Chrome
            platform = rng.choice(_WINDOWS + _MACS + _LINUX)
            ua = f"Mozilla/5.0 ({platform}) {webkit} Chrome/{_version(rng, 4)} Safari/537.36"
        elif shape == 1:  # Edge, Opera
            suffix = rng.choice(["Edg", "OPR", "YaBrowser"])
            ua = (
                f"Mozilla/5.0 ({rng.choice(_WINDOWS + _MACS)}) {webkit} Chrome/{_version(rng, 4)} "
                f"Safari/537.36 {suffix}/{_version(rng, 4)}"
            )
        elif shape == 2:  # Firefox
            platform = rng.choice(_WINDOWS + _MACS + _LINUX)
            v = f"{rng.randint(60, 130)}.0"
            ua = f"Mozilla/5.0 ({platform}; rv:{v}) Gecko/20100101 Firefox/{v}"
        elif shape == 3:  # Safari on iOS / macOS
            platform = rng.choice(_IOS + _MACS)
            ua = (
                f"Mozilla/5.0 ({platform}) {webkit} Version/{_version(rng, 2)} "
                f"Mobile/15E148 Safari/604.1"
            )
        elif shape == 4:  # Android Chrome, Samsung Internet, in-app browsers
            extra = rng.choice(
                ["", " SamsungBrowser/24.0", " [FBAN/FBIOS;FBAV/450.0.0.34.107]", " wv"]
            )
            ua = (
                f"Mozilla/5.0 ({rng.choice(_ANDROID)}) {webkit} Chrome/{_version(rng, 4)} "
                f"Mobile Safari/537.36{extra}"
            )
        elif shape == 5:  # crawlers
            bot = rng.choice(
                [
                    "Googlebot/2.1; +http://www.google.com/bot.html",
                    "bingbot/2.0; +http://www.bing.com/bingbot.htm",
                    "compatible; YandexBot/3.0; +http://yandex.com/bots",
                    "compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/",
                ]
            )
            ua = f"Mozilla/5.0 ({bot})"
        elif shape == 6:  # HTTP clients and libraries
            ua = rng.choice(
                [
                    f"curl/{_version(rng, 3)}",
                    f"python-requests/{_version(rng, 3)}",
                    f"okhttp/{_version(rng, 3)}",
                    "Go-http-client/2.0",
                    f"Wget/{_version(rng, 2)} (linux-gnu)",
                    f"Java/1.8.0_{rng.randint(100, 400)}",
                    f"axios/{_version(rng, 3)}",
                    f"PostmanRuntime/{_version(rng, 3)}",
                ]
            )
        elif shape == 7:  # legacy MSIE
            ua = (
                f"Mozilla/4.0 (compatible; MSIE {rng.randint(6, 10)}.0; "
                f"{rng.choice(_WINDOWS)}; Trident/{rng.randint(4, 7)}.0; .NET CLR 2.0.50727)"
            )
        else:  # apps
            ua = (
                f"MyShop/{_version(rng, 3)} ({rng.choice(['iPhone', 'Android'])}; "
                f"build {rng.randint(1, 9999)}; scale 3.00) CFNetwork/1490.0.4 Darwin/23.2.0"
            )
        out.append(ua)
    return out


def test_generated_user_agents_agree_and_take_the_fast_path() -> None:
    agents = user_agents(3000)
    cleared = 0
    for ua in agents:
        assert _agrees(ua), ua
        assert detect_sqli(ua) is None, ua  # none of them is SQL injection
        cleared += _cannot_be_sqli(ua)
    # the proof is what makes a User-Agent cheap: it must clear nearly all of them
    assert cleared >= 0.95 * len(agents), cleared


def test_values_the_proof_must_not_clear() -> None:
    # each is SQL the tokenizer finds, with only characters the proof lets through
    for value in [
        "1 union select 1,2",
        "sleep(5)",
        "foo(1) like 1",
        "1) or (2 between 1 and 3",
        "x;drop table users",
        "(select name from users where name glob 1)",
        "dbms_lock.sleep(5)",
        "1 order by 3",
        "3.2union select 1",
    ]:
        assert _detect_tokenized(value) is not None, value
        assert not _cannot_be_sqli(value), value


# ------------------------------------------------------------------ the conformance data


def test_conformance_values_agree(data_file) -> None:  # type: ignore[no-untyped-def]
    from tests.waf.test_conformance import crs_request

    fw = Firewall()
    checked = 0
    with data_file("waf/payloads_dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for value in {row["decoded"], Subject(row["decoded"]).text}:
                assert _agrees(value), row["id"]
                checked += 1
    with data_file("waf/crs_tests.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for field in parse_request(crs_request(row), fw.limits).fields:
                text = Subject(field.value, field.kind, field.name).text
                assert _agrees(text), (row.get("id"), field.location)
                checked += 1
    assert checked > 60_000


# ------------------------------------------------------------------ generated values

#: Every word the tokenizer classifies, and ordinary words.
_SQL_WORDS = sorted(
    _STATEMENTS
    | _KEYWORDS
    | _LITERALS
    | _WORD_CMP
    | _WORD_OPS
    | _ATTACK_FUNCS
    | _INFO_FUNCS
    | _SQL_STRING_FUNCS
    | {"union", "and", "or", "xor", "order", "group", "by", "mozilla", "gecko", "khtml"}
    | {"information_schema", "xp_cmdshell", "sp_oacreate", "analyse", "outfile"}
)
#: The characters the proof lets through (and a few it does not, to mix both).
_GLUE = [" ", "  ", "(", ")", ",", ";", ".", "/", "-", "+", "*", "%", "~", ":", "?", "\t", "_"]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_SQL_WORDS),
            st.sampled_from(_GLUE),
            st.from_regex(r"[0-9]{1,4}(?:\.[0-9]{1,3})?", fullmatch=True),
            st.text(alphabet=string.ascii_letters + string.digits + "_$.", max_size=6),
        ),
        min_size=1,
        max_size=14,
    ).map("".join)
)
def test_generated_values_agree(value: str) -> None:
    assert _agrees(value), value
    if len(value) >= 2 and _worth_tokenizing(value):  # past the older character/keyword gate
        assert detect_sqli(value) == _detect_tokenized(value), value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_arbitrary_text_agrees(value: str) -> None:
    assert _agrees(value), value
