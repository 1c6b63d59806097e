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


# Numeric context (``... WHERE id = <value>``): tautologies and extraction by comparison words,
# the shapes sqlmap and a hand-written extractor got through before (benchmarks/waf_sqlmap.py).
@pytest.mark.parametrize(
    "payload",
    [
        "1 AND 9711 LIKE 9711",
        "1 OR 1 GLOB 1",
        "1 AND 2 BETWEEN 2 AND 2",
        "0 OR 2 BETWEEN 1 AND 3",
        "1 AND 5674 NOT BETWEEN 0 AND 5673",
        "1 AND NOT 2 BETWEEN 3 AND 4",
        "1 AND 2 NOT LIKE 3",
        "1 AND 2 NOT GLOB 3",
        "1 AND 2 REGEXP 2",
        "1 AND 2 MATCH 2",
        "-1 OR 2 LIKE 2",
        "1 AND 7 NOT IN (8)",
        "1 AND x'41' LIKE 'A'",
        "1\nAND\n2\nLIKE\n2",
        "(SELECT name FROM users WHERE name GLOB 'a*')",
        "(SELECT id FROM users WHERE password GLOB 's*')",
        "(SELECT id FROM users WHERE name LIKE 'a%')",
        "(SELECT id FROM users LIMIT 1)",
        "(select id from users order by 1)",
        "1 AND substr((SELECT password FROM users LIMIT 1),1,1) GLOB 's'",
        "1 AND unicode(substr((SELECT password FROM users LIMIT 1),1,1)) NOT BETWEEN 0 AND 115",
    ],
)
def test_detects_numeric_context_comparison_words(payload: str) -> None:
    assert detect_sqli(payload) is not None, payload


@pytest.mark.parametrize(
    "benign",
    [
        "sizes 2 and 3 in stock",
        "Orders between 10 and 20 in 2024",
        "Apples and oranges between 2 and 3 dollars",
        "Tom and Jerry like cheese",
        "you and me like 3 things",
        "between 10 and 20 like new",
        "something like 2 or 3",
        "I like it and it is 5 stars",
        "cats in paris and dogs in rome",
        "the number is 2 and 3 is next",
        "(select one from the list)",
        "(select your country from the list below)",
        "Select name from the list where possible",
        "(select a file from your computer)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)",
    ],
)
def test_prose_with_comparison_words_is_not_sql(benign: str) -> None:
    assert detect_sqli(benign) is None, (benign, detect_sqli(benign))


def test_not_belongs_to_the_comparison_word() -> None:
    assert fp("1 and 2 not between 0 and 1") == "1&1o=1&1"
    found = detect_sqli("1 and 2 not between 0 and 1")
    assert found is not None and found.check == "logic-condition"


def test_prefixed_string_literals_lex_as_literals() -> None:
    assert fp("1 and x'41' like 'a'") == "1&1=s"
    assert fp("n'abc'") == "s"
    # only when the quote closes: "b'day" stays a word and a dangling quote
    assert fp("b'day") == "nS"


def test_order_by_split_by_line_comments() -> None:
    # sqlmap's space2dash tamper: "--<random>\n" between the words (recorded against SQLite)
    found = detect_sqli("1--fOdWAqCHoqqL\nORDER--GCfmnCwku\nBY--VlNOdlwgaPU\n1-- krDe")
    assert found is not None and found.check == "order-by-number"
