"""SQL injection detection: a SQL lexer and a grammar check over token fingerprints.

The idea is libinjection's: an injected value, read in the context the
application pastes it into (bare, after a single quote, after a double quote),
turns into a short sequence of SQL tokens, and an attack is a sequence that
both *breaks out* of that context and *continues* as SQL (a condition, a UNION,
a stacked statement, a comment truncating the rest). The lexer and the checks
below are our own; there is no fingerprint list - each check is a small piece
of SQL grammar.

Token kinds (one character each, joined into a *fingerprint*)::

    s string    1 number/literal   n name     v @variable   f function name
    k keyword   E statement verb   U union    B order/group by
    & and/or    = comparison       o operator ( ) , ;        c comment
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

from cognitionos.waf._regex import alternation

__all__ = ["SqliFinding", "detect_sqli", "fingerprint", "tokenize"]


class Token(NamedTuple):
    kind: str
    text: str


class SqliFinding(NamedTuple):
    """Why a value is SQL injection: the check that fired, the context and the fingerprint."""

    check: str
    context: str
    fingerprint: str
    snippet: str


_UNION = frozenset({"union", "intersect", "except"})
_STATEMENTS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "drop",
        "create",
        "alter",
        "truncate",
        "exec",
        "execute",
        "declare",
        "waitfor",
        "shutdown",
        "begin",
        "grant",
        "revoke",
        "rename",
        "merge",
        "handler",
        "load",
        "call",
        "prepare",
        "deallocate",
        "kill",
        "backup",
    }
)
_LOGIC = frozenset({"and", "or", "xor", "&&", "||"})
_WORD_CMP = frozenset({"like", "rlike", "regexp", "is", "in", "between", "sounds", "glob", "match"})
_WORD_OPS = frozenset({"div", "mod", "not", "collate", "escape", "binary"})
_LITERALS = frozenset(
    {
        "null",
        "true",
        "false",
        "unknown",
        "current_user",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
        "session_user",
        "system_user",
        "utc_date",
        "utc_time",
    }
)
_KEYWORDS = frozenset(
    {
        "from",
        "where",
        "having",
        "limit",
        "offset",
        "into",
        "values",
        "table",
        "procedure",
        "then",
        "when",
        "case",
        "end",
        "else",
        "all",
        "distinct",
        "as",
        "on",
        "join",
        "top",
        "exists",
        "any",
        "some",
        "outfile",
        "dumpfile",
        "delay",
        "asc",
        "desc",
        "set",
        "if",
        "elseif",
        "while",
        "do",
        "using",
        "inner",
        "outer",
        "left",
        "right",
        "cross",
        "natural",
        "straight_join",
        "for",
        "go",
        "use",
        "with",
        "returning",
        "fetch",
        "next",
        "rows",
        "only",
        "analyse",
        "cast",
        "convert",
        "char",
        "varchar",
        "nvarchar",
        "int",
        "integer",
        "unsigned",
        "signed",
    }
)
# Functions whose only everyday use in a parameter value is an attack (timing, file and
# network access, error-based extraction, command execution).
_ATTACK_FUNCS = frozenset(
    {
        "sleep",
        "benchmark",
        "pg_sleep",
        "pg_sleep_for",
        "load_file",
        "extractvalue",
        "updatexml",
        "xp_cmdshell",
        "sys_eval",
        "sys_exec",
        "dbms_pipe.receive_message",
        "receive_message",
        "utl_inaddr.get_host_address",
        "get_host_address",
        "utl_http.request",
        "dbms_lock.sleep",
        "ctxsys.drithsx.sn",
        "drithsx.sn",
        "make_set",
        "elt",
        "exp",
        "geometrycollection",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "linestring",
        "json_keys",
        "name_const",
        "gtid_subset",
        "st_latfromgeohash",
        "randomblob",
        "pg_read_file",
        "lo_import",
        "lo_export",
        "dblink",
        "openrowset",
        "opendatasource",
        "xmltype",
        "dbms_xmlgen.getxml",
        "sp_executesql",
        "sp_oacreate",
        "lo_get",
        "pg_ls_dir",
        "json_extract",
        "json_depth",
        "sqlite_version",
        "load_extension",
        "group_concat",
        "concat_ws",
        "unhex",
        "aes_decrypt",
        "compress",
        "uncompress",
        "inet_aton",
        "extract",
    }
)
_INFO_FUNCS = frozenset(
    {
        "version",
        "database",
        "user",
        "schema",
        "current_user",
        "system_user",
        "session_user",
        "@@version",
        "db_name",
        "user_name",
        "connection_id",
        "last_insert_id",
        "row_count",
        "found_rows",
        "getdate",
        "suser_name",
    }
)
_CATALOG = re.compile(
    r"information_schema|mysql\.user|mysql\.db\b|sysobjects|syscolumns|sysdatabases|"
    r"sys\.(?:objects|tables|columns|databases)|pg_catalog|pg_shadow|pg_user|pg_tables|"
    r"sqlite_master|sqlite_schema|all_tables|user_tables|all_tab_columns|msysobjects|"
    r"dba_users|v\$version|sys\.user\$"
)
_SMART_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00b4": "'",
        "\uff07": "'",
        "\uff02": '"',
    }
)
_QUOTE_LIKE = re.compile("[" + "".join(chr(c) for c in _SMART_QUOTES) + "]")


def _fold_quotes(value: str) -> str:
    """Smart and full-width quotes as ASCII quotes (``str.translate`` only when one occurs:
    on non-ASCII text it costs a dictionary lookup per character)."""
    return value.translate(_SMART_QUOTES) if _QUOTE_LIKE.search(value) else value


# Possessive quantifiers: a long digit run that is not a number ("111…1x") fails in one pass
# instead of trying every split of the run between two digit quantifiers (O(n²)).
_NUMBER = re.compile(
    r"(?:0x[0-9a-f]++|0b[01]++|\d++(?:\.\d*+)?(?:e[+-]?\d++)?|\.\d++(?:e[+-]?\d++)?)\Z"
)
_NUMBER_PREFIX = re.compile(r"\d+(?:\.\d*)?")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_$.")
_SPACE = frozenset(" \t\r\n\x0b\x0c\xa0")
#: Runs of _WORD_CHARS, found at C speed (a per-character loop dominated the cost
#: of tokenizing a long header such as a browser's User-Agent). Same characters as the sets.
_WORD_RUN = re.compile(r"[a-z0-9_$.]*")
_TWO_CHAR_OPS = {
    "<=>": "=",
    "<>": "=",
    "!=": "=",
    "<=": "=",
    ">=": "=",
    "==": "=",
    "!<": "=",
    "!>": "=",
    "||": "&",
    "&&": "&",
    "<<": "o",
    ">>": "o",
    ":=": "o",
    "::": "o",
    "->": "o",
}
_MAX_TOKENS = 400
#: A letter right before a quoted literal changes what the literal is: its token kind.
_PREFIXED_STRINGS = {"x": "1", "b": "1", "n": "s"}


def _skip_space_and_comments(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        if s[i] in _SPACE:
            i += 1
        elif s.startswith("/*", i) and not s.startswith("/*!", i):
            end = s.find("*/", i + 2)
            if end < 0:
                return n
            i = end + 2
        elif s.startswith("--", i) or s[i] == "#":
            # a line comment ended by a line break: "order--x\nby" is still ORDER BY
            end = s.find("\n", i)
            if end < 0:
                return n
            i = end + 1
        else:
            return i
    return i


def _read_string(s: str, i: int, quote: str) -> tuple[int, bool]:
    """Index after the string starting at ``i`` (past the opening quote), and whether closed."""
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and s[i + 1] == quote:
                i += 2
                continue
            return i + 1, True
        i += 1
    return n, False


def tokenize(value: str, quote: str | None = None) -> list[Token] | None:
    """Lex ``value`` as the application would see it after an opening ``quote`` (or bare).

    Returns ``None`` when the context does not apply (quote context with no such quote).
    """
    s = (value if value.isascii() else _fold_quotes(value)).lower()
    tokens: list[Token] = []
    i = 0
    n = len(s)
    if quote is not None:
        if quote not in s:
            return None
        end, _closed = _read_string(s, 0, quote)
        tokens.append(Token("s", s[:end]))
        i = end
    while i < n and len(tokens) < _MAX_TOKENS:
        c = s[i]
        # words first: the most frequent tokens (no other branch's character is a word character)
        if c in _WORD_CHARS:
            j = _WORD_RUN.match(s, i).end()  # type: ignore[union-attr]  # "*" always matches
            word = s[i:j]
            # exponent sign: 1e+5
            if (
                j < n
                and s[j] in "+-"
                and word[-1] == "e"
                and word[0].isdigit()
                and j + 1 < n
                and s[j + 1].isdigit()
            ):
                j += 1
                while j < n and s[j].isdigit():
                    j += 1
                word = s[i:j]
            i = j
            if word in _PREFIXED_STRINGS and i < n and s[i] == "'":
                # x'41' / b'01' (a number spelled as a string), n'text' (a national string)
                end, closed = _read_string(s, i + 1, "'")
                if closed:
                    tokens.append(Token(_PREFIXED_STRINGS[word], s[i - 1 : end]))
                    i = end
                    continue
            if word[0].isdigit() or word[0] == ".":
                if _NUMBER.match(word):
                    tokens.append(Token("1", word))
                    continue
                # "3.2union" lexes as a number then a keyword, as MySQL reads it.
                prefix = _NUMBER_PREFIX.match(word)
                rest = word[prefix.end() :] if prefix else ""
                if prefix and (rest in _UNION or rest in _LOGIC or rest in _STATEMENTS):
                    tokens.append(Token("1", prefix.group()))
                    tokens.append(_classify_word(rest, False, s, i))
                else:
                    tokens.append(Token("n", word))
                continue
            nxt = _skip_space_and_comments(s, i)
            paren = nxt < n and s[nxt] == "("
            tokens.append(_classify_word(word, paren, s, nxt))
            if tokens[-1].kind == "B":
                # consume the "by" of "order by" / "group by"
                i = nxt + 2
            continue
        if c in _SPACE:
            i += 1
            continue
        if c == "/" and s.startswith("/*", i):
            if s.startswith("/*!", i):
                # MySQL executable comment: its content is code.
                i += 3
                while i < n and s[i].isdigit():
                    i += 1
                continue
            end = s.find("*/", i + 2)
            tokens.append(Token("c", s[i : (n if end < 0 else end + 2)]))
            i = n if end < 0 else end + 2
            continue
        if c == "*" and s.startswith("*/", i):
            i += 2
            continue
        if (c == "-" and s.startswith("--", i)) or c == "#":
            end = s.find("\n", i)
            tokens.append(Token("c", s[i : (n if end < 0 else end)]))
            i = n if end < 0 else end
            continue
        if c in "'\"":
            end, closed = _read_string(s, i + 1, c)
            # An unterminated string is valid only if the application's own quote closes it.
            kind = "s" if closed or c == quote else "S"
            tokens.append(Token(kind, s[i:end]))
            i = end
            continue
        if c == "`":
            end = s.find("`", i + 1)
            end = n if end < 0 else end + 1
            tokens.append(Token("n", s[i:end]))
            i = end
            continue
        if c == "@":
            j = i + 1
            if j < n and s[j] == "@":
                j += 1
            k = j
            while k < n and s[k] in _WORD_CHARS:
                k += 1
            if k > j:
                tokens.append(Token("v", s[i:k]))
                i = k
            else:
                tokens.append(Token("o", "@"))
                i += 1
            continue
        three = s[i : i + 3]
        if three == "<=>":
            tokens.append(Token("=", three))
            i += 3
            continue
        two = s[i : i + 2]
        if two in _TWO_CHAR_OPS:
            tokens.append(Token(_TWO_CHAR_OPS[two], two))
            i += 2
            continue
        if c in "=<>":
            tokens.append(Token("=", c))
        elif c in "+-*/%^|&~!":
            tokens.append(Token("o", c))
        elif c in "(),;":
            tokens.append(Token(c, c))
        elif c == "\\" and s.startswith("\\n", i):
            tokens.append(Token("1", "\\n"))
            i += 2
            continue
        else:
            tokens.append(Token("?", c))
        i += 1
    return tokens


def _classify_word(word: str, paren: bool, s: str, nxt: int) -> Token:
    if word in _UNION:
        return Token("U", word)
    if word in _STATEMENTS:
        return Token("E", word)
    if word in _LOGIC:
        return Token("&", word)
    if word in _WORD_CMP:
        return Token("=", word)
    if word in _WORD_OPS:
        return Token("o", word)
    if word in _LITERALS:
        return Token("1", word)
    if (
        word in ("order", "group")
        and s.startswith("by", nxt)
        and (nxt + 2 >= len(s) or s[nxt + 2] not in _WORD_CHARS)
    ):
        return Token("B", word + " by")
    if paren and word not in ("in", "exists", "values", "any", "some", "all", "as", "on", "using"):
        return Token("f", word)
    if word in _KEYWORDS:
        return Token("k", word)
    return Token("n", word)


_OPERAND = frozenset("1snvf")
_UNARY = frozenset({"-", "+", "!", "~", "not"})


def _compact(tokens: list[Token]) -> list[Token]:
    """Drop comments (remembering one trailing comment) and unary operators."""
    out: list[Token] = []
    trailing_comment = bool(tokens) and tokens[-1].kind == "c"
    for tok in tokens:
        if tok.kind == "c":
            continue
        if tok.kind == "o" and tok.text in _UNARY and (not out or out[-1].kind in "&=o(,;UEkB"):
            continue
        out.append(tok)
    if trailing_comment:
        out.append(Token("c", tokens[-1].text))
    return out


def fingerprint(tokens: list[Token]) -> str:
    """The token kinds joined: ``' or 1=1--`` in single-quote context is ``s&1=1c``."""
    return "".join(t.kind for t in tokens)


def _skip_call(tokens: list[Token], i: int) -> int:
    """``tokens[i]`` is a function name: index after its balanced argument list."""
    j = i + 1
    if j >= len(tokens) or tokens[j].kind != "(":
        return j
    depth = 0
    while j < len(tokens):
        if tokens[j].kind == "(":
            depth += 1
        elif tokens[j].kind == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return j


def _operand_end(tokens: list[Token], i: int) -> int:
    """If an operand expression starts at ``i``, the index after it; else ``-1``."""
    n = len(tokens)
    opened = 0
    while i < n and tokens[i].kind == "(":
        opened += 1
        i += 1
    if i < n and tokens[i].kind == "E" and opened:
        # subquery: (select ...) - up to its closing parenthesis or the end
        depth = opened
        while i < n and depth:
            depth += tokens[i].kind == "("
            depth -= tokens[i].kind == ")"
            i += 1
        return i
    if i >= n or tokens[i].kind not in _OPERAND:
        return -1
    i = _skip_call(tokens, i) if tokens[i].kind == "f" else i + 1
    # arithmetic continuation: a+1, a*b
    while i + 1 < n and tokens[i].kind == "o" and tokens[i + 1].kind in _OPERAND:
        i = _skip_call(tokens, i + 1) if tokens[i + 1].kind == "f" else i + 2
    while opened and i < n and tokens[i].kind == ")":
        opened -= 1
        i += 1
    return i


#: Comparison words that take a ``not`` in front: ``x not like y``, ``x not between a and b``.
_NEGATABLE_CMP = frozenset({"like", "rlike", "regexp", "glob", "between", "in", "match"})
#: What may follow a complete comparison in injected SQL: the end, a logic operator, a comment,
#: a closing parenthesis, a statement separator, UNION, ORDER/GROUP BY, a clause keyword, ESCAPE.
_AFTER_WORD_COMPARISON = frozenset("&c);UBk,o")


def _word_comparison_ends(tokens: list[Token], k: int, word: str) -> bool:
    """A comparison by ``word`` (``like``, ``in``, ``between``...), right operand at ``k``.

    Prose uses these words too, so the comparison counts only when it reads as SQL: the right
    operand is not a plain word ("sizes 2 and 3 in stock", "cats in paris"), and nothing but SQL
    follows it ("you and me like 3 things" goes on with a word).
    """
    n = len(tokens)
    if tokens[k].kind == "n" or (word == "in" and tokens[k - 1].text == "in"):
        # SQL's IN takes a parenthesised list ("2 in (2)"): "between 10 and 20 in 2024" is prose.
        return False
    after = _operand_end(tokens, k)
    if word == "between" and 0 < after < n - 1 and tokens[after].text == "and":
        after = _operand_end(tokens, after + 1)
    return after < 0 or after >= n or tokens[after].kind in _AFTER_WORD_COMPARISON


def _is_condition(tokens: list[Token], i: int) -> bool:
    """A comparison ``x = y`` (or ``x like y``...) or a function-call condition starts at ``i``."""
    n = len(tokens)
    j = i
    while j < n and tokens[j].kind == "(":
        j += 1
    end = _operand_end(tokens, i)
    if end < 0:
        return False
    first = tokens[j] if j < n else None
    if (
        end + 1 < n
        and tokens[end].text == "not"
        and tokens[end + 1].kind == "="
        and tokens[end + 1].text in _NEGATABLE_CMP
    ):
        # "2 not between 0 and 1", "2 not like 3": the negation belongs to the comparison word.
        end += 1
    if end < n and tokens[end].kind == "=":
        cmp_tok = tokens[end]
        k = end + 1
        while k < n and tokens[k].kind in "=(" and tokens[k].text in ("(", "not"):
            k += 1
        if k < n and tokens[k].kind == "E" and k > end + 1:
            return True
        if k < n and tokens[k].kind in _OPERAND:
            if not cmp_tok.text.isalpha():
                return True
            if cmp_tok.text == "is":
                # prose like "cats is paris": a word operator between two plain names
                return not (first is not None and first.kind == "n" and tokens[k].kind == "n")
            return _word_comparison_ends(tokens, k, cmp_tok.text)
        if k < n and tokens[k].kind == "(":
            return True
        return cmp_tok.text == "is"
    if first is not None and first.kind == "f":
        return True
    return first is not None and first.kind == "E" and j > i


_PG_TYPES = frozenset(
    {
        "int",
        "integer",
        "int4",
        "int8",
        "bigint",
        "smallint",
        "text",
        "varchar",
        "char",
        "json",
        "jsonb",
        "numeric",
        "bool",
        "boolean",
        "regclass",
        "oid",
        "bytea",
        "float",
        "double",
        "real",
        "date",
        "timestamp",
        "uuid",
        "xml",
        "inet",
        "money",
    }
)
_DDL_OBJECTS = frozenset(
    {"table", "database", "schema", "function", "procedure", "view", "trigger"}
)
_SQL_STRING_FUNCS = frozenset(
    {
        "ascii",
        "ord",
        "hex",
        "length",
        "len",
        "char",
        "chr",
        "mid",
        "substr",
        "substring",
        "left",
        "right",
        "lower",
        "upper",
        "concat",
        "unicode",
        "cast",
        "convert",
        "count",
        "bin",
        "conv",
        "reverse",
        "lpad",
        "rpad",
    }
)


def _statement_follows(toks: list[Token], i: int) -> bool:
    """``toks[i]`` is a statement verb: do the next tokens look like that statement?"""
    n = len(toks)
    verb = toks[i].text
    nxt = toks[i + 1] if i + 1 < n else None
    after = toks[i + 2] if i + 2 < n else None
    if verb == "select":
        if nxt is None:
            return False
        if nxt.kind in "1vfs(" or nxt.text in ("*", "all", "distinct", "top"):
            return True
        return nxt.kind == "n" and (
            after is None or after.kind in ",c" or after.text in ("from", "as")
        )
    if verb == "insert":
        return nxt is not None and nxt.text == "into"
    if verb == "update":
        return nxt is not None and after is not None and nxt.kind == "n" and after.text == "set"
    if verb == "delete":
        return nxt is not None and nxt.text == "from"
    if verb in ("drop", "create", "alter", "truncate"):
        return nxt is not None and nxt.text in _DDL_OBJECTS
    if verb in ("exec", "execute"):
        return nxt is not None and (
            nxt.kind in "v(f" or "_" in nxt.text or "." in nxt.text or nxt.text == "immediate"
        )
    if verb == "declare":
        return nxt is not None and nxt.kind == "v"
    if verb == "waitfor":
        return nxt is not None and nxt.text in ("delay", "time")
    if verb == "shutdown":
        return nxt is None or nxt.kind in "c;"
    if verb == "begin":
        return nxt is not None and (nxt.kind in "Ef" or "." in nxt.text)
    if verb in ("grant", "revoke"):
        return nxt is not None and nxt.text in (
            "all",
            "select",
            "insert",
            "update",
            "delete",
            "execute",
        )
    if verb == "call":
        return nxt is not None and nxt.kind == "f"
    return False


#: Attack functions that are also English words: first or after a bare word, and with a word
#: for an argument, they are prose ("5 tips for better sleep (2024 update)" is a title).
_PROSE_FUNCS = frozenset({"sleep", "benchmark"})


def _sql_call_args(toks: list[Token], i: int) -> bool:
    """Whether the call at ``toks[i]`` has SQL arguments: ``sleep(5)``, ``sleep(if(...))``,
    ``benchmark(1e7,md5(1))`` - a value, variable, call or subquery, then ``)``, ``,`` or an
    operator (prose has a word there)."""
    if i + 2 >= len(toks):
        return True
    arg = toks[i + 2]
    if arg.kind in "f(":
        return True
    after = toks[i + 3] if i + 3 < len(toks) else None
    return arg.kind in "1vs)" and (after is None or after.kind in "),o")


def _filters_rows(toks: list[Token], i: int) -> bool:
    """``toks[i:]`` is a select list of names: does a FROM follow that filters or limits rows?

    ``(select name from users where name glob 'a*')`` is a whole subquery pasted as a numeric
    value (boolean extraction, one character at a time). A parenthesised "(select one from the
    list)" in prose has no WHERE condition, LIMIT or ORDER BY after its FROM.
    """
    n = len(toks)
    j = i
    while j < n and j < i + 12 and toks[j].kind in "n,o":
        j += 1
    if j + 2 >= n or toks[j].text != "from" or toks[j + 1].kind != "n":
        return False
    m = j + 2
    if toks[m].text == "as" and m + 1 < n:
        m += 2
    elif toks[m].kind == "n":
        m += 1
    if m + 1 >= n:
        return False
    clause, nxt = toks[m], toks[m + 1]
    if clause.text in ("where", "having"):
        return _is_condition(toks, m + 1)
    if clause.text in ("limit", "offset") or clause.kind == "B":
        return nxt.kind in "1n"
    return False


#: The token kinds a check of _strong_word_checks starts at (each branch tests one of them).
_STRONG_KINDS = frozenset("fv;kEno")


def _strong_word_checks(toks: list[Token], fp: str) -> str | None:
    if "U" in fp:
        for i, t in enumerate(toks):
            if t.kind == "U":
                for nxt in toks[i + 1 : i + 6]:
                    if nxt.kind == "E" and nxt.text == "select":
                        return "union-select"
                    if nxt.kind not in "k(":
                        break
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind not in _STRONG_KINDS:
            continue  # no check below starts at such a token (most tokens of plain text)
        if t.kind == "f":
            name = t.text.rsplit(".", 1)[-1]
            if (
                t.text in _ATTACK_FUNCS
                or name in _ATTACK_FUNCS
                or name.startswith(("xp_", "sp_oa"))
            ) and (
                name not in _PROSE_FUNCS
                or _sql_call_args(toks, i)
                or not (i == 0 or toks[i - 1].kind == "n")
            ):
                return "attack-function"
            if name in ("iif", "if") and i + 2 < n and _is_condition(toks, i + 2):
                return "conditional-function"
            if name in _SQL_STRING_FUNCS and i + 2 < n and toks[i + 2].kind == "f":
                inner = toks[i + 2].text.rsplit(".", 1)[-1]
                if inner in _SQL_STRING_FUNCS or inner in _INFO_FUNCS:
                    return "nested-sql-functions"
        elif t.kind == "v" and t.text.startswith("@@") and len(t.text) > 3:
            return "system-variable"
        elif t.kind == ";" and i + 1 < n:
            nxt = toks[i + 1]
            if nxt.kind == "E" and _statement_follows(toks, i + 1):
                return "stacked-query"
            if (
                nxt.kind == "f"
                and nxt.text in ("if", "iif")
                and i + 3 < n
                and _is_condition(toks, i + 3)
            ):
                return "stacked-query"
            if nxt.kind == "k" and nxt.text == "if" and i + 2 < n and _is_condition(toks, i + 2):
                return "stacked-query"
        elif (
            t.kind == "k"
            and t.text == "into"
            and i + 1 < n
            and toks[i + 1].text in ("outfile", "dumpfile")
        ):
            return "into-outfile"
        elif (
            t.kind == "E"
            and t.text in ("waitfor", "exec", "execute")
            and _statement_follows(toks, i)
            and (t.text == "waitfor" or toks[i + 1].text.startswith(("xp_", "sp_", "master.")))
        ):
            return "exec-procedure"
        elif (
            t.kind in "nfk"
            and ("_" in t.text or "." in t.text or "$" in t.text)
            and _CATALOG.search(t.text)
        ):
            return "catalog-access"
        elif (
            t.kind == "o"
            and t.text == "::"
            and i + 1 < n
            and toks[i + 1].text in _PG_TYPES
            and i > 0
        ):
            return "pg-cast"
        elif (
            t.kind == "k" and t.text == "procedure" and i + 1 < n and toks[i + 1].text == "analyse"
        ):
            return "procedure-analyse"
        elif t.kind == ";" and i + 2 < n and toks[i + 1].text == "set" and toks[i + 2].kind == "v":
            return "stacked-query"
        elif (
            t.kind == "f"
            and t.text in ("concat", "char", "make_set", "elt")
            and i + 2 < n
            and any(
                (a.kind == "1" and a.text.startswith("0x") and len(a.text) > 5)
                or (a.kind == "f" and a.text in _INFO_FUNCS)
                for a in toks[i + 2 : i + 12]
            )
        ):
            return "hex-concat"
        elif (
            t.kind == "k"
            and t.text == "case"
            and i + 2 < n
            and toks[i + 1].text == "when"
            and _is_condition(toks, i + 2)
        ):
            return "case-when"
        elif t.kind == "E" and t.text == "select" and i + 1 < n:
            nxt = toks[i + 1]
            if nxt.kind == "f" and nxt.text.rsplit(".", 1)[-1] in _INFO_FUNCS:
                return "select-info"
            if nxt.kind == "n" and nxt.text in ("pg_sleep", "load_file"):
                return "attack-function"
            if (
                nxt.kind in "1vf("
                or nxt.text == "*"
                or (nxt.kind == "n" and i + 2 < n and toks[i + 2].kind == ",")
            ):
                if any(tt.text == "from" for tt in toks[i + 1 : i + 12]):
                    return "select-from"
                if i > 0 and toks[i - 1].kind in "(;&=o,":
                    return "subselect"
            if nxt.kind == "n" and i > 0 and toks[i - 1].kind == "(" and _filters_rows(toks, i + 1):
                return "subselect"
    return None


_CONTINUATION = frozenset("&=c);UBk,o")


def _clause_follows(toks: list[Token], b: int) -> bool:
    """``toks[b]`` is a clause keyword right after the break-out."""
    n = len(toks)
    word = toks[b].text
    if b + 1 >= n:
        return False
    nxt = toks[b + 1]
    if word in ("where", "having"):
        return _is_condition(toks, b + 1) or nxt.kind == "("
    if word in ("limit", "offset"):
        return nxt.kind == "1"
    if word == "into":
        return nxt.text in ("outfile", "dumpfile") or nxt.kind == "v"
    if word == "procedure":
        return nxt.kind == "f"
    if word == "as" and nxt.kind == "n" and b + 2 < n:
        return toks[b + 2].kind in "k;&" and (
            toks[b + 2].kind != "k" or _clause_follows(toks, b + 2)
        )
    return False


def _left_is_condition(toks: list[Token], i: int) -> bool:
    """Whether the expression ending just before ``toks[i]`` contains a comparison."""
    j = i - 1
    while j >= 0 and toks[j].kind in "1snvfo()":
        j -= 1
    return (
        j >= 0 and toks[j].kind == "=" and toks[j].text in ("=", "<", ">", "<=", ">=", "<>", "!=")
    )


def _closes_between(toks: list[Token], i: int) -> bool:
    """Whether ``toks[i]`` is the ``and`` of a ``between ... and ...``."""
    if toks[i].text != "and":
        return False
    j = i - 1
    while j >= 0 and toks[j].kind in "1snvfo()":
        j -= 1
    return j >= 0 and toks[j].text == "between"


def _breakout_checks(toks: list[Token], fp: str, quoted: bool) -> str | None:
    n = len(toks)
    if quoted:
        b = 1
    else:
        # Bare context: skip the leading operand (the value the application expected).
        b = _operand_end(toks, 0)
        if b < 0:
            b = 0
    closers = 0
    while b < n and toks[b].kind == ")":
        b += 1
        closers += 1
    if b >= n:
        return None
    t = toks[b]
    if quoted:
        if t.kind == "c" and b == n - 1:
            body = t.text.lstrip("-#")
            if (
                t.text.startswith("/*")
                or not body.strip()
                or (t.text.startswith("--") and body[0] in " \t\r\n")
            ):
                return "quote-comment"
        if t.kind == "&":
            k = b + 1
            if k < n and _is_condition(toks, k):
                return "quote-condition"
            end = _operand_end(toks, k)
            if end > 0 and toks[k].kind in "1vf(" and (end == n or toks[end].kind in "&c);"):
                return "quote-logic"
            if end > 0 and toks[k].kind == "s" and end < n and toks[end].kind in "&c;":
                return "quote-logic"
        if t.kind in "=o" and t.text != "not":
            k = b + 1
            end = _operand_end(toks, k)
            # A "word" op "word" pattern in double quotes is search syntax, not SQL: in double-quote
            # context only non-string operands and a terminal continuation count.
            single = toks[0].text.endswith("'")
            valid_operand = (k < n and toks[k].kind in "1vf(") or (
                single and k < n and toks[k].kind == "s" and toks[k].text.startswith("'")
            )
            follow = _CONTINUATION if single else "&c;U)"
            word_op_on_empty = t.text.isalpha() and toks[0].text in ("'", '"')
            continues = end > 0 and (end == n or toks[end].kind in follow)
            if continues and valid_operand and not word_op_on_empty:
                return "quote-expression"
        if t.kind == ";" and b + 1 < n and toks[b + 1].kind in "Ec":
            return "quote-stacked"
        if (
            t.kind == ","
            and b + 1 < n
            and toks[b + 1].kind == "f"
            and b + 3 < n
            and _is_condition(toks, b + 3)
        ):
            return "quote-argument"
        if t.kind == "B" and b + 1 < n and toks[b + 1].kind in "1f":
            return "quote-order-by"
        if t.kind == "k" and _clause_follows(toks, b):
            return "quote-clause"
        if t.kind == "E" and _statement_follows(toks, b):
            return "quote-statement"
    else:
        if t.kind == "B" and b + 1 < n and toks[b + 1].kind == "1":
            return "order-by-number"
        if t.kind == "k" and b > 0 and _clause_follows(toks, b) and t.text != "as":
            return "clause-condition"
        if t.kind == "k" and t.text == "as" and closers and _clause_follows(toks, b):
            return "clause-condition"
        if closers and t.kind == "&" and b + 1 < n and _is_condition(toks, b + 1):
            return "paren-condition"
        if t.kind == "=" and toks[0].kind == "f" and b + 1 < n and toks[b + 1].kind in "1vfs(":
            return "function-comparison"
    if (
        t.kind == "&"
        and b + 1 < n
        and toks[b + 1].kind == "1"
        and toks[b + 1].text in ("true", "false", "null")
        and (b + 2 == n or toks[b + 2].kind in "c&)")
    ):
        return "logic-literal"
    if (
        not quoted
        and toks[0].kind == "E"
        and toks[0].text not in ("begin", "call", "load", "kill")
        and _statement_follows(toks, 0)
        and (toks[0].text != "select" or toks[1].kind in "fv(" or toks[1].text == "*")
    ):
        return "statement"
    # logic operator followed by a condition, anywhere
    if "(1=1)" in fp:
        for i in range(n - 4):
            if (
                toks[i + 2].text in ("=", "<>", "!=", "<", ">")
                and toks[i + 1].kind == toks[i + 3].kind == "1"
            ):
                return "literal-comparison"
    for i in range(n):
        if (
            toks[i].kind == "&"
            and (i == 0 or toks[i - 1].kind in "1snvf)")
            and _is_condition(toks, i + 1)
        ):
            # "a > 1 and b < 2" joins two conditions: a filter expression, not a break-out.
            if not quoted and _left_is_condition(toks, i):
                continue
            # The AND of "x between 1 and 2" is part of the comparison, not a logic operator.
            if _closes_between(toks, i):
                continue
            return "logic-condition"
    if (
        not quoted
        and fp.endswith("c")
        and n >= 3
        and toks[0].kind in "1v("
        and all(t.kind in "1v()o=&" for t in toks[:-1])
        and any(t.kind in "o=&" for t in toks[:-1])
    ):
        c = toks[-1].text
        if c.startswith(("--", "#", "/*")):
            return "expression-comment"
    return None


_PREFILTER_WORDS = "union|select|sleep|waitfor|benchmark|exec|order|group|having|where|into"
_PREFILTER = re.compile(
    r"['\"`();=<>|&#@\u2018\u2019\u201c\u201d\uff07]|--|/\*|\*/|\b(?:" + _PREFILTER_WORDS + r")\b",
    re.IGNORECASE,
)
# The same test for ASCII text, in parts the regex engine scans at C speed: one character class,
# three substrings, and the keywords as a trie on the lowercased text (one alternation with a
# leading \b makes the engine try every branch at every position: ~3 µs for a 40-character value).
_PREFILTER_ASCII = re.compile(r"['\"`();=<>|&#@]")
_PREFILTER_KEYWORDS = re.compile(alternation(_PREFILTER_WORDS, not_after=r"\w") + r"\b")


# A tautology needs neither punctuation nor one of the keywords above when it compares with a
# word: "1 and 2 like 2", "1 or 3 between 1 and 4". A comparison word with a logic word shortly
# before it lets such a value through the gate ("is" and "in" are left out: prose is full of
# them, and SQL's IN needs a parenthesis, which the gate already lets through). Two linear
# scans: one regex with a gap between the two words would rescan the gap after every logic word.
# The comparison word must be followed by what its right operand can start with and prose
# rarely has there: a number, a sign, a dot, NULL/TRUE/FALSE ("and more like this" is not).
_PREFILTER_COMPARISON = re.compile(
    alternation("like|rlike|regexp|glob|between|match", not_after=r"\w")
    + r"\b\s*+(?:[-+.\d]|(?:null|true|false)\b)"
)
_PREFILTER_LOGIC = re.compile(alternation("and|or|xor", not_after=r"\w") + r"\b")
#: How far before a comparison word its logic word may start ("or 123456789 between").
_LOGIC_REACH = 84


def _logic_then_comparison(lower: str) -> bool:
    """Whether a comparison word of the gate has a logic word shortly before it."""
    if not (
        "like" in lower
        or "glob" in lower
        or "between" in lower
        or "regexp" in lower
        or "match" in lower
    ):
        return False  # substring tests at C speed settle most values
    comparisons = _PREFILTER_COMPARISON.finditer(lower)
    first = next(comparisons, None)
    if first is None:
        return False
    # Both match sequences come sorted: one lazy merge-like walk, linear in the text.
    logic = _PREFILTER_LOGIC.finditer(lower)
    upcoming = next(logic, None)
    last_end = -1
    for m in itertools.chain((first,), comparisons):
        start = m.start()
        while upcoming is not None and upcoming.end() <= start:
            last_end = upcoming.end()
            upcoming = next(logic, None)
        if last_end >= 0 and start - last_end <= _LOGIC_REACH:
            return True
        if upcoming is None:
            return False  # no logic word left to come before a later comparison word
    return False


def _worth_tokenizing(value: str) -> bool:
    """Whether ``value`` has any character or keyword SQL injection needs (a cheap gate)."""
    if not value.isascii():
        return _PREFILTER.search(value) is not None or _logic_then_comparison(value.lower())
    if (
        _PREFILTER_ASCII.search(value) is not None
        or "--" in value
        or "/*" in value
        or "*/" in value
    ):
        return True
    lower = value.lower()
    return _PREFILTER_KEYWORDS.search(lower) is not None or _logic_then_comparison(lower)


# 'a'or'b' - a logic keyword glued between quotes, a classic space-less break-out.
_ADJACENT_LOGIC = re.compile(
    r"[\w)\\]['\"`](?:or|and|xor|div|like|rlike|regexp)['\"`(]", re.IGNORECASE
)


# A structural proof that the checks cannot fire, for short ASCII values the gate lets through
# only for their parentheses, semicolons and commas: browser User-Agents ("Mozilla/5.0 (Windows
# NT 10.0; Win64; x64) ... (KHTML, like Gecko)"), Accept headers. Read from the checks above:
# with no quote there is only the bare context; with no comment, "@", symbolic comparison or
# logic operator, and "::", every check needs a token made from one of the words below (UNION,
# a statement verb, AND/OR/XOR, ORDER/GROUP BY, the clause keywords the checks read, the
# function names they read), or a catalog name, or a comparison word when the first token can
# be a function call (function-comparison). A value shorter than the token cap is tokenized to
# its end, so the tail pass never runs. Token texts are runs of word characters, or a run's
# rest after a number prefix ("3.2union"), or a dotted name's last part: every such text is a
# full run or a sub-word below. tests/waf/test_sqli_fastpath.py checks the proof against the
# tokenizer on the conformance data, generated User-Agents and generated values.
_NOT_PLAIN_SQL = re.compile(r"['\"`@#=<>!|&\\]|--|/\*|\*/|::")
_RUNS = re.compile(r"[a-z0-9_$.]+")
_SUBWORDS = re.compile(r"[a-z_$][a-z0-9_$]*")
#: The first token can be a call: nothing but blanks, unary operators and words before a "(".
_MAY_OPEN_WITH_CALL = re.compile(r"[\s+~!a-z0-9_$.-]*\(")
_CHECKED_WORDS = (
    _UNION
    | _STATEMENTS
    | {"and", "or", "xor", "order", "group"}
    | {"into", "outfile", "dumpfile", "procedure", "analyse", "case", "when"}
    | {"where", "having", "limit", "offset", "as", "if", "iif", "set"}
    | _ATTACK_FUNCS
    | _SQL_STRING_FUNCS
    | {"concat", "char", "make_set", "elt"}
)


def _cannot_be_sqli(value: str) -> bool:
    """Whether no check can fire on ``value`` (a proof from its words, see above)."""
    if len(value) >= _MAX_TOKENS or not value.isascii() or _NOT_PLAIN_SQL.search(value):
        return False
    lower = value.lower()
    if _CATALOG.search(lower):
        return False
    words = set(_RUNS.findall(lower))
    words.update(_SUBWORDS.findall(lower))
    if not words.isdisjoint(_CHECKED_WORDS):
        return False
    if any(w.startswith(("xp_", "sp_")) for w in words):
        return False
    return words.isdisjoint(_WORD_CMP) or _MAY_OPEN_WITH_CALL.match(lower) is None


def detect_sqli(value: str) -> SqliFinding | None:
    """The first SQL injection finding for ``value`` (already decoded), or ``None``.

    >>> detect_sqli("1' or '1'='1").check
    'quote-condition'
    """
    if len(value) < 2 or not _worth_tokenizing(value) or _cannot_be_sqli(value):
        return None
    return _detect_tokenized(value)


def _detect_tokenized(value: str) -> SqliFinding | None:
    """:func:`detect_sqli` without the gates: the tokenizer and the checks on every value."""
    adjacent = _ADJACENT_LOGIC.search(value)
    if adjacent:
        return SqliFinding("quote-adjacent-logic", "'", "s&s", value[:120])
    found, capped = _tokenized_finding(value)
    if found is None and capped:
        # The tokenizer stops after _MAX_TOKENS tokens: padding put in front of an injection
        # would hide it. The value's end is tokenized on its own too (from a blank, so the
        # cut does not fall inside a word).
        start = len(value) - _TAIL_CHARS
        blank = value.find(" ", start)
        tail = value[blank + 1 if 0 <= blank < start + 64 else start :]
        found, _ = _tokenized_finding(tail)
        if found is not None:
            found = found._replace(snippet=tail[-120:])
    return found


#: How much of a long value's end is tokenized again when the tokenizer stopped early: no more
#: characters than the token cap, so that tokenization always reaches the end.
_TAIL_CHARS = _MAX_TOKENS


def _tokenized_finding(value: str) -> tuple[SqliFinding | None, bool]:
    """The first finding of the three quote contexts, and whether a tokenization was cut."""
    capped = False
    for quote in (None, "'", '"'):
        raw = tokenize(value, quote)
        if raw is None:
            continue
        capped = capped or len(raw) >= _MAX_TOKENS
        toks = _compact(raw)
        if not toks:
            continue
        fp = fingerprint(toks)
        check = _strong_word_checks(toks, fp)
        # A string the application cannot close is not valid SQL in this context.
        if not check and "S" not in fp:
            check = _breakout_checks(toks, fp, quote is not None)
        if check:
            return SqliFinding(check, quote or "bare", fp[:40], value[:120]), capped
    return None, capped
