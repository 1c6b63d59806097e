"""Detectors: each takes a ``Subject`` and returns the matched snippet or ``None``.

One module per attack family, grouped as the rule ids group them (``sqli`` for 942xxx,
``xss`` for 941xxx, ``traversal`` for 930xxx, ...). :data:`DETECTORS` maps the name a rule
definition uses to its detector.

Every regular expression here is linear-time on hostile input: no nested
quantifiers over overlapping classes, bounded repetition where a gap is needed.
"""

from __future__ import annotations

import typing

from cognitionos.waf.detectors import (
    cmdi,
    code_injection,
    crlf,
    java,
    ldapi,
    log4shell,
    mail,
    nosqli,
    php,
    rfi,
    scanner,
    shellshock,
    sqli,
    ssi,
    ssrf,
    ssti,
    traversal,
    xss,
    xxe,
)

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    from cognitionos.waf._subject import Subject

__all__ = ["DETECTORS"]

#: name -> detector, for rule definitions and ``waf explain``.
DETECTORS: dict[str, Callable[[Subject], str | None]] = {
    "sqli_syntax": sqli.sqli_syntax,
    "sqli_keyword_density": sqli.sqli_keyword_density,
    "sqli_function_call": sqli.sqli_function_call,
    "xss_tags": xss.xss_tags,
    "xss_attribute": xss.xss_attribute,
    "xss_script": xss.xss_script,
    "path_traversal": traversal.path_traversal,
    "sensitive_file": traversal.sensitive_file,
    "stream_wrapper": traversal.stream_wrapper,
    "rfi_url": rfi.rfi_url,
    "command_injection": cmdi.command_injection,
    "mail_injection": mail.mail_injection,
    "php_injection": php.php_injection,
    "java_injection": java.java_injection,
    "code_injection": code_injection.code_injection,
    "log4shell": log4shell.log4shell,
    "ssti": ssti.ssti,
    "nosql_injection": nosqli.nosql_injection,
    "ldap_injection": ldapi.ldap_injection,
    "xxe": xxe.xxe,
    "ssrf": ssrf.ssrf,
    "ssrf_private": ssrf.ssrf_private,
    "crlf_injection": crlf.crlf_injection,
    "newline_in_name": crlf.newline_in_name,
    "shellshock": shellshock.shellshock,
    "ssi_injection": ssi.ssi_injection,
    "scanner_signature": scanner.scanner_signature,
    "scanner_tool": scanner.scanner_tool,
    "oast_domain": scanner.oast_domain,
}
