"""Security scanners and out-of-band testing domains (rules 9131xx)."""

from __future__ import annotations

import re

from cognitionos.waf._subject import Subject
from cognitionos.waf.detectors._match import has_any, snip

__all__ = ["oast_domain", "scanner_signature", "scanner_tool"]

_I = re.IGNORECASE

_SCANNERS = re.compile(
    r"\b(?:sqlmap|nikto|nmap|nessus|openvas|acunetix|netsparker|w3af|wpscan|dirbuster|gobuster|"
    r"dirsearch|feroxbuster|ffuf|fuzz faster u fool|nuclei|masscan|zgrab|havij|arachni|skipfish|"
    r"wfuzz|"
    r"whatweb|jaeles|commix|xsstrike|nosqlmap|joomscan|droopescan|burp(?:suite| collaborator)|"
    r"owasp zap|zaproxy|appscan|webinspect|qualys|paros|webscarab|grabber|vega|metasploit|hydra|"
    r"medusa|brutus|sqlninja|bbqsql|jbrofuzz|dotdotpwn|fimap|wapiti|morfeus|zmeu|nasl|"
    r"interactsh|projectdiscovery)|openvas|\.nasl\b",
    _I,
)
_OAST = re.compile(
    r"\b(?:burpcollaborator\.net|oastify\.com|oast\.(?:me|pro|live|site|online|fun)|interact\.sh|"
    r"dnslog\.(?:cn|link)|ceye\.io|canarytokens\.com|requestbin\.(?:net|com)|pipedream\.net|"
    r"webhook\.site|xss\.ht|bxss\.me)\b",
    _I,
)


_SCANNER_TOOLS = re.compile(
    r"\b(?:sqlmap|nikto|nessus|openvas|acunetix|netsparker|w3af|wpscan|dirbuster|gobuster|dirsearch|"
    r"feroxbuster|ffuf|fuzz faster u fool|nuclei|masscan|zgrab|havij|arachni|skipfish|wfuzz|commix|"
    r"xsstrike|nosqlmap|joomscan|droopescan|burpsuite|sqlninja|bbqsql|dotdotpwn|fimap|wapiti|zmeu|"
    r"interactsh|projectdiscovery)|openvas|\.nasl\b",
    _I,
)


#: security tool names both the User-Agent scanner check and the tool-name check look for
_SECURITY_TOOLS = (
    "sqlmap",
    "nikto",
    "nessus",
    "openvas",
    "acunetix",
    "netsparker",
    "w3af",
    "wpscan",
    "dirbuster",
    "gobuster",
    "dirsearch",
    "feroxbuster",
    "ffuf",
    "fuzz faster",
    "nuclei",
    "masscan",
    "zgrab",
    "havij",
    "arachni",
    "skipfish",
    "wfuzz",
    "commix",
    "xsstrike",
    "nosqlmap",
    "joomscan",
    "droopescan",
    "burp",
    "sqlninja",
    "bbqsql",
    "dotdotpwn",
    "fimap",
    "wapiti",
    "zmeu",
    "interactsh",
    "projectdiscovery",
)

_SCANNER_NEEDLES = (
    *_SECURITY_TOOLS,
    "nmap",
    "whatweb",
    "jaeles",
    "zap",
    "appscan",
    "webinspect",
    "qualys",
    "paros",
    "webscarab",
    "grabber",
    "vega",
    "metasploit",
    "hydra",
    "medusa",
    "brutus",
    "jbrofuzz",
    "morfeus",
    "nasl",
)


def scanner_signature(s: Subject) -> str | None:
    """Security scanner names and out-of-band interaction (OAST) domains (User-Agent)."""
    m = (
        (has_any(s.lower, _SCANNER_NEEDLES) and _SCANNERS.search(s.text))
        or (has_any(s.lower, _OAST_NEEDLES) and _OAST.search(s.text))
        or None
    )
    return snip(s.text, m)


_OAST_NEEDLES = (
    "burp",
    "oast",
    "interact",
    "dnslog",
    "ceye",
    "canary",
    "requestbin",
    "pipedream",
    "webhook",
    "xss.ht",
    "bxss",
)
# Tool names in values: the security tools (among them "burp"), a few more and the OAST domains.
_TOOL_NEEDLES = (
    *_SECURITY_TOOLS,
    "burpsuite",
    ".nasl",
    *(needle for needle in _OAST_NEEDLES if needle != "burp"),
)


def scanner_tool(s: Subject) -> str | None:
    """Unmistakable attack-tool names in a value (``sqlmap/1.7``, ``Nuclei``, ``.nasl``)."""
    if not has_any(s.lower, _TOOL_NEEDLES):
        return None
    m = _SCANNER_TOOLS.search(s.text) or _OAST.search(s.text)
    return snip(s.text, m)


def oast_domain(s: Subject) -> str | None:
    """Out-of-band testing domains (Burp Collaborator, interactsh, dnslog...) anywhere."""
    if not has_any(s.lower, _OAST_NEEDLES):
        return None
    m = _OAST.search(s.text)
    return snip(s.text, m)
