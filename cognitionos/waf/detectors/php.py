"""PHP injection: open tags, dangerous functions, ``php.ini`` settings, serialized objects.

Rule 933100.
"""

from __future__ import annotations

import re

from cognitionos.waf._regex import alternation as _alternation
from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import ALWAYS, GatedPatterns, snip

__all__ = ["php_injection"]

_PHP_OPEN = re.compile(
    r"<\?(?:php\b|=|\s|$|[^x\s]|x(?!ml\s{1,5}version))|\[\s{0,4}[/\\]?\s{0,4}php\s{0,4}\]"
)
# Common English words among PHP function names only count when "(" follows immediately.
_PHP_WORD_FUNCS = (
    "pack|ord|chr|glob|extract|header|mail|compact|define|constant|empty|trim|rand|unset|"
    "isset|explode|implode|serialize|copy|unlink|system|exec|eval|assert|include|require|printf|readline|"
    "dl|strrev|symlink|scandir|opendir|putenv|getenv|usort|intval|strval|md5|sha1|crc32|mktime|uniqid"
)
_PHP_FUNCS_ALL = (
    "system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|create_function|"
    "call_user_func(?:_array)?|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile|"
    "show_source|highlight_file|phpinfo|base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|"
    "unserialize|preg_replace|include(?:_once)?|require(?:_once)?|move_uploaded_file|"
    "register_shutdown_function|array_map|array_filter|usort|uasort|uksort|array_walk|putenv|ini_set|"
    "ini_get|getenv|scandir|opendir|glob|symlink|unlink|var_dump|print_r|var_export|extract|parse_str|"
    "get_defined_vars|get_defined_functions|convert_uuencode|hex2bin|pack|ord|chr|strrev|implode|"
    "intval|strval|strlen|substr|str_replace|sprintf|vsprintf|md5|sha1|crc32|base64_encode|urldecode|"
    "rawurldecode|htmlspecialchars|strip_tags|json_decode|json_encode|serialize|array_merge|in_array|"
    "is_array|is_numeric|isset|unset|empty|explode|trim|strtolower|strtoupper|ucfirst|nl2br|addslashes|"
    "stripslashes|date_add|date_create|mktime|strtotime|microtime|uniqid|rand|mt_rand|random_bytes|"
    "define|constant|compact|settype|gettype|class_exists|function_exists|method_exists|is_callable|"
    "debug_zval_dump|debug_backtrace|error_log|mail|header|setcookie|curl_exec|curl_init|fsockopen|"
    "stream_socket_client|socket_create|dl|apache_setenv|posix_getpwuid|posix_kill|proc_nice|"
    "escapeshellcmd|escapeshellarg|opcache_get_status|ob_start|readline"
)
_PHP_FUNCS = "|".join(sorted(set(_PHP_FUNCS_ALL.split("|")) - set(_PHP_WORD_FUNCS.split("|"))))
_PHP_INDEX = r"(?:[\s)\]]{0,4}[\[{]\s{0,4}\d{1,3}\s{0,4}[\]}]){0,2}\s{0,8}\)?\s{0,8}"
_PHP_CALL = GatedPatterns(
    [
        (ALWAYS, _alternation(_PHP_FUNCS) + r"\s{0,8}[\"')\]]{0,2}" + _PHP_INDEX + r"\("),
        (
            ("[", "("),
            r"[\[(]\s{0,4}[\"']?\s{0,4}"
            + _alternation(_PHP_WORD_FUNCS)
            + r"\s{0,4}[\"']?\s{0,4}\]"
            + _PHP_INDEX
            + r"\(",
        ),
        # A word function at a word start: the character before it (if any) is none of
        # [\w$>.:-]. (A quote, bracket or blank before it, which calls often have, is such a
        # character already.)
        (
            ALWAYS,
            _alternation(_PHP_WORD_FUNCS, not_after=r"[\w$>.:-]")
            + r"(?:\s{0,4}[\"')\]]{1,2}\s{0,8}(?:\[\s{0,4}\d{1,3}\s{0,4}\]\s{0,8})?)?"
            r"(?:/\*[^*]{0,40}\*/)?\(",
        ),
    ]
)
_PHP_CONCAT = re.compile(
    r"[\"'][a-z_]{1,12}[\"']\s{0,8}\.\s{0,8}[\"'][a-z_]{1,12}[\"']|\$\s{0,40}\{\s{0,40}[$'\"@]|\$\s{1,40}\{|\$\{[^}]{0,40}\}\s{0,8}\(|\(\s{0,8}\$\w{1,30}\s{0,8}\)\s{0,8}\("
)
_PHP_INI = re.compile(
    r"^\s{0,4}(?:(?:opcache|mbstring|zend|pcre|xdebug|phar|suhosin|session)\.[\w.]{2,60}|"
    r"allow_url_(?:include|fopen)|auto_(?:prepend|append)_file|open_basedir|disable_functions|"
    r"safe_mode|register_globals|file_uploads|upload_tmp_dir)\s{0,8}="
)
_PHP_UPLOAD = re.compile(
    r"\.\s{0,4}(?:php\d?|phtml|phar|pht|phpt|phps|pgif|shtml|htaccess|user\.ini)[\s.]{0,10}$|(?:^|[/\\\s])sess_[\w-]{6,}"
)
_PHP_PREFIXED = re.compile(
    r"\b(?:odbc|mysqli?|pg|posix|pcntl|proc|stream|curl|ftp|ldap|socket|ssh2|gz|bz|zip|openssl|mb|"
    r"iconv|ob|session|ini|apache|imap|exif|shm|sem|msg|dba|mcrypt|sodium|preg|call_user|func|create|"
    r"fsockopen|pfsockopen|xmlrpc|simplexml|libxml|dom|phar|spl|get|set)_\w{2,40}\s{0,8}\("
)
_PHP_VARS = re.compile(
    r"\$_(?:get|post|request|cookie|server|files|env|session)\b|\$globals\b|\$this->|\$\{[^}]{0,40}\}\s{0,8}\(|"
    r"\$[a-z_]\w{0,40}\s{0,8}(?:[\[{][^\]}]{0,40}[\]}]\s{0,8}){0,4}\(|@\$\w{0,40}\s{0,8}\["
)
_PHP_SERIAL = re.compile(r"(?:^|[;{])[oc]:\d{1,4}:\"[\w\\]{1,100}\":\d{1,4}:\{|a:\d{1,4}:\{[isdb]:")


def php_injection(s: Subject) -> str | None:
    """PHP code: ``<?php``, risky calls, superglobals, variable functions, serialized objects."""
    text = s.nocomment
    paren = "(" in text
    m = (
        (("<?" in text or "php" in text) and _PHP_OPEN.search(text))
        or (paren and _PHP_CALL.search(text))
        or (("$" in text or "@" in text) and _PHP_VARS.search(text))
        or ("{" in text and _PHP_SERIAL.search(s.lower))
        or (("$" in text or "." in text) and _PHP_CONCAT.search(text))
        or ("=" in text and _PHP_INI.search(text))
    )
    if m:
        return snip(text, m)
    if s.kind in ("filename", "header"):
        m = _PHP_UPLOAD.search(s.lower)
        if m:
            return snip(s.lower, m)
    m = _PHP_PREFIXED.search(text) if paren else None
    return snip(text, m)
