"""OS command injection: Unix shells, Windows ``cmd``/PowerShell (rule 932100)."""

from __future__ import annotations

import re

from cognitionos.waf._regex import alternation as _alternation
from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import GatedPatterns, has_any, snip

__all__ = ["command_injection"]

_I = re.IGNORECASE

_UNIX_STRONG = (
    "whoami|uname|wget|curl|ncat|netcat|nc|bash|zsh|ksh|csh|tcsh|dash|python[23]?|perl|ruby|php|lua|"
    "nmap|nslookup|getent|telnet|tftp|chmod|chown|mkfifo|mknod|ifconfig|netstat|useradd|crontab|"
    "xxd|gawk|xargs|sudo|killall|pkill|printenv|systemctl|powershell|pwsh|cscript|wscript|certutil|"
    "bitsadmin|regsvr32|rundll32|mshta|wmic|systeminfo|tasklist|taskkill|ipconfig|icacls|findstr|"
    "lwp-download|lwp-request|fetch|socat|busybox|base64|openssl|passwd|sh|cmd|id|ls|dig|pwd|"
    "ping|traceroute|tracert|hostname|nohup|timeout|sleep|rm|chattr|uptime|whereis|which|awk|sed|"
    "strace|ltrace|gdb|ansible[\\w-]{0,20}|chef[\\w-]{0,20}|puppet|salt[\\w-]{0,10}|terraform|kubectl|docker|"
    "podman|lastlog(?:in)?|bsdtar|rmt|cscli|iex|iwr|irm|iwmi|invoke-\\w{2,30}|start-process|new-object|"
    "set-executionpolicy|downloadstring|bitsadmin|schtasks|msiexec|regedit|vssadmin|ntdsutil|mimikatz|"
    "psexec|rsync|sshpass|expect|tclsh|node|nodejs|deno|java|jshell|gcc|cc|make|apt|apt-get|yum|dnf|"
    "pip3?|npm|npx|gem|cpan|composer|useradd|usermod|userdel|groupadd|visudo|setfacl|iptables|nft|"
    "modprobe|insmod|mount|umount|fdisk|mkfs|shred|wipe|nsenter|unshare|chroot|capsh|setcap|getcap|"
    "dmesg|journalctl|sysctl|lsof|fuser|ss|arp|route|tcpdump|tshark|nping|hping3|zmap|whoami|"
    "base32|cpulimit|irb|c89|c99|perf|aptitude|bcdboot|visudo|chef-shell|busybox|rbash|ash|fish|"
    "pdksh|mksh|yash|posh|sash|esh|elvish|xonsh|nu|pwsh|tmux|screen|setsid|stdbuf|unbuffer|taskset|ionice"
)
_UNIX_WEAK = (
    "cat|tac|head|tail|more|less|nl|od|strings|grep|egrep|echo|printf|dir|touch|cp|mv|wc|sort|uniq|"
    "cut|tr|vi|vim|nano|ll|exec|eval|source|alias|type|copy|del|ren|set|ver|start|net|env|export|kill|"
    "find|tar|ps|ip|host|su|ssh|scp|ftp|at|sc|reg|call|unset|diff|file|stat|mail|date|time|tee|rev|"
    "zip|unzip|gzip|gunzip|mkdir|rmdir|ln|dd|chgrp|getfacl|whois|finger|last|who|w|df|du|free|top|"
    "column|fold|bridge|paste|join|split|shuf|xz|bzip2|zcat|bzcat|xzcat|hexdump|look|comm|expand|fmt|pr|ptx"
)
# The separator starts with one character class (";", "|", "&", a line break, a backtick, or
# the "$" / "<" / ">" of "$(", "<(", ">("), so the regex engine scans for it at C speed.
_SEP = (
    r"[;|&\n\r`$<>](?:(?<=[;|&\n\r`])|(?<=[$<>])\()"
    r"(?:\s{0,8}(?:time|nohup|sudo|env|nice|timeout\s{1,4}\d{1,4}|strace|"
    r"command|builtin|exec|xargs|busybox|watch)\b)?"
)
_CMD_STRONG = re.compile(
    _SEP
    + r"\s{0,16}[({!]{0,3}\s{0,8}(?:[\w./-]{0,40}/)?"
    + _alternation(_UNIX_STRONG)
    + r"(?:\.exe)?(?=$|[\s;|&`)<>}{,]|\$\{?ifs)"
)
_CMD_WEAK = re.compile(
    _SEP
    + r"\s{0,16}[({!]{0,3}\s{0,8}(?:[\w./-]{0,40}/)?"
    + _alternation(_UNIX_WEAK)
    + r"(?:\.exe)?"
    r"(?:\s{0,8}$|\s{0,8}[;|&`)]|\s{1,8}(?:[-/.~$%+]|[a-z]:(?:[\\/\s]|$)|\w{1,40}[/.][\w/.-]))"
)
# After an unambiguous separator (";", "|", "&&", newline, backtick) - not a lone "&", which
# prose uses ("Tom & Jerry") - even a common-word command with a plain argument counts.
_CMD_WEAK_STRICT_SEP = re.compile(
    r"(?:[;|\n\r`]|&&)\s{0,8}(?:echo|printf|cat|tac|nl|od|strings|grep|egrep|wc|uniq|cut|vi|vim|"
    r"nano|unset|diff|stat|tee|rev|unzip|gzip|gunzip|mkdir|rmdir|chgrp|getfacl|whois|finger|df|du|ll|"
    r"hexdump|zcat|bzcat|xzcat|shuf)\s{1,8}[a-z0-9_]{1,40}\b"
)
_CMD_START = re.compile(
    r"^\s{0,8}(?:(?:time|nohup|sudo|env|strace|nice)\s{1,8})?(?:"
    + _alternation(_UNIX_STRONG)
    + r"(?:\.exe)?\s{0,4}[;|&]|"
    + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK)
    + r"(?:\.exe)?"
    r"(?:\s{1,8}(?:-{1,2}[a-z]|/[a-z]|[a-z]:(?:[\\/\s]|$)|\.{0,2}/|~/|\$|[\w-]{1,30}\.[a-z]{2,6}\b|[a-z]{2,8}://|all\b)|\s{1,8}[a-z]:$))"
)
_CMD_PREFIXED = re.compile(
    r"^\s{0,8}(?:time|nohup|sudo|strace|ltrace|nice|env)\s{1,8}"
    + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK)
    + r"\b"
)
_CMD_SUBST = re.compile(
    r"\$\(\(?\s{0,8}[a-z0-9_/.$'\"-]|\$\[|[<>]\(\s{0,8}[a-z]{2,}|\$\{[a-z_]{1,30}:[-=?+]|\$'\\[x0-9]"
)
# Backtick pairs, taken left to right the way a shell (and Markdown) pairs them.
_BACKTICK_PAIR = re.compile(r"`([^`]{0,200})`")
# A pair is command substitution when its content starts like a command (a known command name,
# a path to one, "$(", "${", a brace list) or with a blank (code spans in prose hug their text:
# `code`, `user_id`, `README.md`; SQL fragments do not: "` AS `x` FROM"). Matched at the pair's
# opening backtick (which the pattern includes, so the literal prefilter knows it needs one):
# none of its branches can cross the closing backtick, so it reads the pair's content only.
_BACKTICK_COMMAND = re.compile(
    r"`(?:\s{1,8}[a-z/\\]|\$[({0@*]|\{|\\|(?:[\w./-]{0,40}/)?"
    + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK + "|cd|true|false")
    + r"(?:\.exe)?(?![\w.-]))"
)
# A value that is nothing but a backtick pair (maybe quoted) is a probe: "`true`", "`id`".
_BACKTICK_ALONE = re.compile(
    r"^\s{0,4}[\"']?\s{0,4}`\s{0,8}[a-z/][^`]{0,200}`\s{0,4}[\"']?\s{0,4}$"
)


def _backtick_substitution(text: str) -> re.Match[str] | None:
    if "`" not in text:
        return None
    m = _BACKTICK_ALONE.search(text)
    if m:
        return m
    for pair in _BACKTICK_PAIR.finditer(text):
        if _BACKTICK_COMMAND.match(text, pair.start()):
            return pair
    return None


_CMD_PATH = re.compile(
    r"(?:^|[\s;|&=:'\"])/(?:etc|bin|usr|sbin|proc|dev|tmp|var|home|root|opt|lib)(?:/[\w.-]{0,40}){0,4}[\w/.-]{0,40}(?:\[[^\]/]{1,12}\]|[?*])|(?:^|[\s;|&`'\"(=:<>])/?(?:usr/)?(?:local/)?s?bin/[a-z]|/dev/(?:tcp|udp)/|(?:^|[\s/])(?:/[a-z?*]{0,6}[?*][a-z?*]{0,6}){2,}"
)
_WIN_CMD = GatedPatterns(
    [
        (("%comspec%",), r"%comspec%"),
        (("cmd",), r"\bcmd(?:\.exe)?\s{1,8}/[ckr]\b"),
        (("powershell",), r"\bpowershell(?:\.exe)?\s{1,8}[-/]\w"),
        (
            ("for",),
            r"(?:^|[;&|])\s{0,8}for\s{1,8}/[fdlr]\b|\bfor\s{1,8}/[fdlr]\s|"
            r"\bfor\s{1,40}(?:/[a-z]\s{1,40}(?:\"[^\"]{0,80}\"\s{1,40})?)?%%?[\w@\]\[~]{1,30}\s{1,40}in\s{0,40}\(",
        ),
        (
            ("if",),
            r"\bif\s{1,8}(?:/i\s{1,8})?(?:not\s{1,8})?(?:exist|defined|errorlevel|%[\w~]{1,30}%|\S{1,40}==)|"
            r"\bif\s{1,40}(?:/i\s{1,40})?(?:not\s{1,40})?(?:\"[^\"]{0,60}\"|\{[^}]{0,30}\}|\(?[\w%!~]{1,40})\s{0,40}"
            r"(?:==|equ|neq|lss|leq|gtr|geq)(?:\s|\{|\"|$)",
        ),
        (("goto",), r"\bgoto\s{1,8}:?\w"),
        (("%",), r"%[a-z_]{2,30}:~-?\d"),
        (("set",), r"\bset\s{1,8}/[ap]\s"),
    ],
    _I,
    ascii_gate=True,
)
# A value that starts by terminating a command and naming a new (lowercase: shells are
# case-sensitive) command: ";htop", "| flock -u /".
_CMD_LEADING = re.compile(
    r"^\s{0,4}['\"]?\s{0,4}[;|&`]\s{0,4}['\"]?[a-z][a-z0-9.+-]{1,30}(?:\s|$|<|['\"])"
)
_CMD_MISC = GatedPatterns(
    [
        # "$0" is the running shell, but "$0.00" and "costs $0" are prices: it counts where a
        # command can start (after a separator) or with shell arguments after it.
        (
            ("$",),
            r"\$\{?ifs\b|\$\{?(?:shell|comspec|bash)\b|(?:^|[;|&`(\n]\s{0,8})\$\{?0\}?(?![\w.,])|"
            r"\$\{?0\}?\s{0,8}(?:-[a-z]|<|\||;)",
        ),
        (
            ("net",),
            r"(?:^|[;|&])\s{0,8}net\s{1,8}(?:user|localgroup|group|share|view|use|session|accounts|config)\b",
        ),
        (("'", '"'), r"[;|&`]\s{0,4}(?P<q>['\"])[a-z][^'\";|&]{0,80}(?P=q)"),
        (("alias",), r"(?:^|[;|&\n])\s{0,8}alias\s{1,8}(?:[+-]\w|\S{1,40}=)"),
        (("{",), r"\{,?\s{0,4}" + _alternation(_UNIX_STRONG + "|" + _UNIX_WEAK + "|cd") + ","),
        (("cd",), r"(?:^|[;|&\n])\s{0,8}cd\s{1,8}(?:/|\.\.|~)"),
    ]
)
_SHELL_EXEC_WORDS = GatedPatterns(
    [
        (("-c",), r"\b(?:sh|bash|zsh|cmd|powershell)\s{1,8}-c\s"),
        (("sh",), r"\|\s{0,8}(?:ba)?sh\b"),
        (("/dev/",), r"<\s{0,8}/dev/"),
        (("/tmp/", "/dev/", "/var/", "/etc/"), r">\s{0,8}/(?:tmp|dev|var|etc)/"),
        (("2>&1",), r"\b2>&1\b"),
    ]
)


_SHELL_META = re.compile(r"[;|&\n\r`$<>(){}/\\%'\"\[\]*?~!^=+]")
_SEPARATORS = (";", "|", "&", "\n", "\r", "`", "$", "<(", ">(")
_WIN_NEEDLES = ("%", "/", "if ", "for ", "goto", "set ", "powershell", "cmd")


def command_injection(s: Subject) -> str | None:
    """Shell commands after a separator, substitutions, binary paths, Windows cmd syntax."""
    if not _SHELL_META.search(s.text):
        # no metacharacters, quotes or paths: only "command -flags ..." at the start can match
        sq = s.squeezed
        m0 = (
            _CMD_START.search(sq)
            or _CMD_PREFIXED.search(sq)
            or (has_any(sq, _WIN_NEEDLES) and _WIN_CMD.search(sq))
            or (has_any(sq, ("net", "cd", "alias")) and _CMD_MISC.search(sq))
            or None
        )
        return snip(sq, m0)
    shell = s.shell
    separators = has_any(shell, _SEPARATORS)
    m = (
        (
            separators
            and (
                _CMD_STRONG.search(shell)
                or _CMD_WEAK.search(shell)
                or _CMD_SUBST.search(shell)
                or _backtick_substitution(shell)
                or _CMD_WEAK_STRICT_SEP.search(shell)
            )
        )
        or ("/" in shell and _CMD_PATH.search(shell))
        or (has_any(shell, ("-c", "|", "<", ">")) and _SHELL_EXEC_WORDS.search(shell))
        or (has_any(s.lower, _WIN_NEEDLES) and _WIN_CMD.search(s.squeezed))
        or (
            has_any(s.lower, ("'", '"', "$", "alias", "{", "cd", "net"))
            and _CMD_MISC.search(s.lower)
        )
    )
    if m:
        return snip(shell, m)
    m = _CMD_START.search(shell) or _CMD_PREFIXED.search(shell) or _CMD_LEADING.search(s.text)
    if m:
        return snip(shell, m)
    for decoded in s.base64:
        m = (
            _CMD_STRONG.search(decoded)
            or _CMD_SUBST.search(decoded)
            or _backtick_substitution(decoded)
        )
        if m:
            return "base64: " + (snip(decoded, m) or "")
    return None
