"""The SQL lexer and the grammar checks over its fingerprints."""

from __future__ import annotations

import pytest

from cognitionos.waf._sqli import _compact, detect_sqli, fingerprint, tokenize


def fp(value, quote=None):
    toks = tokenize(value, quote)
    assert toks is not None
    return fingerprint(_compact(toks))


def test_token_kinds():
    # number, logic, number, comparison, number, trailing comment
    assert fp("1 or 1=1--") == "1&1=1c"
    # in single-quote context the leading text is the string the attacker closed
    assert fp("x' union select @@version,2#", "'") == "sUEv,1c"
    assert fp("sleep(5)") == "f(1)"
    assert fp("a.b order by 3") == "nB1"


def test_quote_context_requires_the_quote():
    assert tokenize("no quotes here", "'") is None


def test_comments_and_mysql_executable_comments():
    # /*! ... */ content is code, plain comments vanish, a trailing comment is kept once
    assert fp("1 /*!50000union*/ /*x*/ select 2 -- z") == "1UE1c"


def test_unterminated_foreign_quote_is_marked():
    toks = tokenize('a "b', "'")  # no single quote: context not applicable
    assert toks is None
    assert "S" in fingerprint(tokenize("x' and \"y", "'") or [])


def test_number_then_keyword_lexes_like_mysql():
    assert fp("3.2union select 1") == "1UE1"


@pytest.mark.parametrize(
    "payload",
    [
        "1' or '1'='1",
        "' or 1=1--",
        "admin'--",
        "1 union all select null,null--",
        "-1 UNION SELECT username, password FROM users",
        "1; drop table users",
        "1 and sleep(5)",
        "1' AND extractvalue(1,concat(0x5c,version()))#",
        "HOPE AND 8=3",
        "1 order by 5--",
        "1) or (1=1",
        "'; exec master..xp_cmdshell 'dir'--",
        "1 waitfor delay '0:0:5'--",
        "x' AND 1=(SELECT COUNT(*) FROM information_schema.tables)#",
        "1 or benchmark(10000000,md5(1))",
        "' || 'a'='a",
        "a'or'b",
        "1' into outfile '/tmp/x'#",
        "1 and ascii(substring(user(),1,1))>64",
    ],
)
def test_detects_injection(payload):
    assert detect_sqli(payload) is not None, payload


@pytest.mark.parametrize(
    "benign",
    [
        "O'Brien",
        "select a union rep",
        "Rock 'n' roll",
        "1060 OR 70S",
        "7 AND HALF",
        '"foo" AND "bar"',
        "JACK-O'-LANTERN?",
        "20% off -- today only",
        "price > 10 and price < 20",
        "I'm here; you're there",
        "Tom & Jerry",
        "Drop the ball",
        "2' x 4' board",
        'a 15" laptop',
    ],
)
def test_near_miss_benign(benign):
    assert detect_sqli(benign) is None, (benign, detect_sqli(benign))


def test_finding_names_check_and_context():
    found = detect_sqli("1' or '1'='1")
    assert found is not None
    assert found.context == "'"
    assert found.fingerprint.startswith("s&")


@pytest.mark.parametrize("filler", ["(", "\\", "<", "lorem ipsum, "])
def test_injection_behind_more_tokens_than_the_tokenizer_reads_is_found(filler: str) -> None:
    # padding in front of a keyword-only injection used to hide it past the 400-token cap
    found = detect_sqli(filler * 3000 + " 1 union select password from users--")
    assert found is not None and found.check == "union-select"
    assert found.snippet.endswith("from users--")


@pytest.mark.parametrize("filler", ["(", "lorem ipsum, "])
def test_long_benign_text_ending_in_sql_words_stays_clean(filler: str) -> None:
    assert detect_sqli(filler * 3000 + " please select a union rep") is None


def test_keyword_sql_behind_a_line_comment_is_not_sql() -> None:
    # "--" (and "#") comment out the rest of the line: no statement left to inject into
    assert detect_sqli("-" * 3000 + " 1 union select password from users--") is None
