"""Path traversal and local file inclusion: ``../``, sensitive files, stream wrappers.

Rules 9301xx.
"""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import GatedPatterns, snip

__all__ = ["path_traversal", "sensitive_file", "stream_wrapper"]

_I = re.IGNORECASE

_TRAVERSAL = re.compile(r"(?:^|[/=:;,|\s])\.{2,3}[/;]|/\.\.(?=$|[^\w.-])|/\.\.\./|\.{4,}/|\.{6,}")
# Every branch is gated on literals its matches must contain: the unanchored last branches
# would otherwise be tried at every word boundary of a long value.
_SENSITIVE_FILE = GatedPatterns(
    [
        (
            (
                "etc/",
                "proc/",
                ".ini",
                "windows/",
                "winnt/",
                "system32/",
                ".ht",
                ".ssh/",
                "id_",
                "authorized_keys",
                ".bash",
                ".git",
                ".svn/",
                ".hg/",
                ".env",
                "config",
                ".aws/",
                ".docker",
                ".kube/",
                "var/log/",
                "usr/local/",
                "inetpub/",
                ".npmrc",
                ".pypirc",
                ".netrc",
                "_history",
                "settings.php",
                "-inf",
                "sys/",
                "global.asa",
                ".boto",
                ".s3cfg",
                ".pgpass",
                ".my.cnf",
            ),
            r"(?:^|[/\\\s=:'\"]|\.\.)(?:etc/(?:passwd|shadow|group|hosts|issue|motd|sudoers|crontab|fstab|"
            r"security|ssh|nginx|apache2|httpd|mysql|php)|proc/(?:self|\d+)/|boot\.ini|win\.ini|system\.ini|"
            r"windows/(?:system32|win\.ini|repair)|winnt/|system32/|\.htaccess|\.htpasswd|\.ssh/|id_rsa|id_dsa|"
            r"authorized_keys|\.bash_history|\.bashrc|\.git/|\.svn/|\.hg/|\.env(?:$|[./])|wp-config\.php|"
            r"web\.config|\.aws/|\.docker/|\.kube/|var/log/|usr/local/|inetpub/|\.npmrc|\.pypirc|\.netrc|"
            r"\.gitconfig|\.mysql_history|\.psql_history|localsettings\.php|config\.inc\.php|web-inf/|meta-inf/|"
            r"sys/(?:class|kernel|devices|module|firmware|power)\b|proc/(?:interrupts|version|cpuinfo|meminfo|mounts|net/|sched_debug|kcore)|"
            r"etc/master\.passwd|web-inf\b|global\.asa\b|\.boto|\.s3cfg|\.pgpass|\.my\.cnf|\.dockercfg|\.git-credentials|\.bash_profile|\.zsh_history)",
        ),
        ((".ini",), r"(?:win|system|boot)\.ini\b"),
        (("passwd", "shadow"), r"\betc[/\\]{0,2}(?:passwd|shadow)\b"),
        (
            (".sql.", ".bak.", ".dump.", ".db.", ".sqlite"),
            r"\b[\w.-]{1,60}\.(?:sql|bak|dump|db|sqlite3?)\.(?:zip|gz|tgz|tar|bz2|7z|rar|xz)\b",
        ),
    ]
)
_WRAPPERS = GatedPatterns(
    [
        (
            ("://",),
            r"\b(?:php|phar|zip|expect|glob|data|jar|netdoc|zlib|compress\.\w+|ssh2\.\w+|rar|ogg|input)://",
        ),
        (("file:",), r"\bfile:/{1,3}[a-z.~%/\\]"),
    ],
    _I,
)


def path_traversal(s: Subject) -> str | None:
    """``../`` segments (any encoding: %2e, %u, overlong UTF-8, look-alikes, backslash, 0x2e)."""
    low = s.lower
    if (
        ".." not in low
        and "0x2e" not in low
        and "\u2025" not in low
        # leftover escapes and non-ASCII spellings can still normalize to ".."
        and "%" not in low
        and low.isascii()
    ):
        return None
    m = _TRAVERSAL.search(s.path)
    return snip(s.path, m)


def sensitive_file(s: Subject) -> str | None:
    """Access to well-known sensitive files: /etc/passwd, win.ini, .git/, .ssh/, .env..."""
    m = _SENSITIVE_FILE.search(s.path)
    return snip(s.path, m)


def stream_wrapper(s: Subject) -> str | None:
    """Stream wrappers used for LFI/RFI: ``php://filter``, ``phar://``, ``file://``, ``expect://``."""
    if ":/" not in s.lower:
        return None
    m = _WRAPPERS.search(s.lower)
    return snip(s.lower, m)
