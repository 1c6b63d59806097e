"""SQL injection: the grammar of :mod:`cognitionos.waf._sqli`, functions, keyword density.

Rules 942xxx.
"""

from __future__ import annotations

import re

from cognitionos.waf._regex import alternation as _alternation
from cognitionos.waf._sqli import detect_sqli
from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import ALWAYS, GatedPatterns, snip

__all__ = ["sqli_function_call", "sqli_keyword_density", "sqli_syntax"]


def sqli_syntax(s: Subject) -> str | None:
    """SQL tokenizer + grammar (see :mod:`cognitionos.waf._sqli`)."""
    found = detect_sqli(s.text)
    if found is None and s.utf7:
        found = detect_sqli(s.utf7)
    if found is None:
        return None
    return f"{found.check} [{found.context}:{found.fingerprint}] {found.snippet[:60]}"


_SQL_FUNCS_DISTINCT = (
    "db_name|user_name|schema_name|current_user|session_user|system_user|concat_ws|group_concat|concat|"
    "substring_index|substring|substr|unhex|char_length|octet_length|bit_length|instr|locate|lpad|rpad|"
    "ltrim|rtrim|lcase|ucase|strcmp|soundex|sleep|benchmark|ceiling|asin|acos|atan|log10|log2|sqrt|ifnull|"
    "nullif|isnull|coalesce|iif|last_insert_id|connection_id|row_count|found_rows|sysdate|curdate|curtime|"
    "current_timestamp|utc_timestamp|date_format|from_unixtime|unix_timestamp|extractvalue|updatexml|"
    "load_file|aes_encrypt|aes_decrypt|uncompress|json_extract|json_keys|json_object|json_array|"
    "jsonb_pretty|json_build_object|pg_sleep|pg_read_file|current_database|current_schema|inet_server_addr|"
    "quote_ident|quote_literal|string_agg|array_agg|xmlelement|xmlagg|to_char|to_number|sys_context|"
    "userenv|nvl2?|unistr|strpos|make_set|elt|name_const|exp|mid|ascii|ord|hex|conv|md5|sha1|sha2|crc32|"
    "collation|coercibility|charset|nchar|chr|greatest|least"
)
_SQL_FUNCS_WORDS = (
    "database|version|schema|char|length|sin|cos|tan|cot|rand|mod|pi|now|floor|power|pow|reverse|"
    "repeat|position|overlay|encode|decode|count"
)
_SQL_FUNC_CALL = GatedPatterns(
    [
        # With a blank before "(" the argument must look like SQL: "sleep (5)", "least (1,2)";
        # "better sleep (2024 update)" and "at least (most of) it" are prose.
        (
            ALWAYS,
            _alternation(_SQL_FUNCS_DISTINCT, not_after=r"[\w.$@]")
            + r"(?:\(|\s{1,8}\(\s{0,8}(?:$|\d[\d.e]{0,20}\s{0,8}[),*+/%-]|['\"@(]|0x|select\b|"
            r"[a-z_][\w.]{0,30}\s{0,8}\())",
        ),
        (ALWAYS, _alternation(_SQL_FUNCS_WORDS, not_after=r"[^\s(,=+*/|&'\"<>-]") + r"\("),
        (
            ALWAYS,
            r"^\s{0,4}" + _alternation(_SQL_FUNCS_WORDS + "|user|space") + r"\s{0,4}\(\s{0,4}$",
        ),
    ]
)
_SQL_CATALOG = GatedPatterns(
    [
        (
            (
                "information_schema",
                "pg_",
                "msdb",
                "tempdb",
                "mysql.",
                "msys",
                "sys",
                "sqlite_",
                "_tab",
                "dba_users",
            ),
            r"\b(?:information_schema|pg_catalog|pg_shadow|pg_user|msdb|tempdb|mysql\.(?:db|user)|"
            r"msysaccessobjects|msysobjects|sysobjects|syscolumns|sysdatabases|sqlite_master|"
            r"sqlite_schema|all_tables|user_tables|all_tab_columns|dba_users)\b",
        ),
        # A MySQL-quoted table name between FROM and the next clause (blanks maybe still "+"): SQL,
        # not Markdown.
        (
            ("`",),
            r"\bfrom[\s+]{1,8}`[\w$.]{1,64}`[\s+]{1,8}(?:where|limit|join|inner|left|right|union|"
            r"order[\s+]{1,8}by|group[\s+]{1,8}by)\b",
        ),
    ]
)


def sqli_function_call(s: Subject) -> str | None:
    """Calls of SQL built-in functions (``database(``, ``substring(``) and system catalog names."""
    text = s.nocomment
    m = ("(" in text and _SQL_FUNC_CALL.search(text)) or _SQL_CATALOG.search(text)
    return snip(text, m or None)


_SQL_KEYWORDS_DENSE = re.compile(
    r"\b(?:select|union|insert|update|delete|drop|from|where|having|group\s+by|order\s+by|"
    r"information_schema|concat|char|substring|ascii|sleep|benchmark|waitfor|exec)\b"
)


def sqli_keyword_density(s: Subject) -> str | None:
    """Several SQL keywords in one value (paranoia 2: prose about SQL trips it)."""
    hits = _SQL_KEYWORDS_DENSE.findall(s.nocomment)
    if len(set(hits)) >= 3:
        return " ".join(sorted(set(hits)))[:60]
    return None
