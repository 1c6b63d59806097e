"""JavaScript sink patterns, shared by the XSS detectors and the code-injection detector."""

from __future__ import annotations

import re

from cognitionos.waf.detectors._match import GatedPatterns

__all__ = ["JS_SINK"]

_I = re.IGNORECASE

JS_SINK = GatedPatterns(
    [
        (
            ("alert", "prompt", "confirm", "eval"),
            r"(?:alert|prompt|confirm|eval)\s{0,8}\?\.\s{0,8}\(",
        ),
        (
            ("alert", "prompt", "confirm", "msgbox"),
            r"(?:alert|prompt|confirm|msgbox)\s{0,8}(?:\(\s{0,8}(?:[\"'`\d/)\[{-]|document|window|this|self|"
            r"top|parent|location|string|[a-z_$][\w$.]{0,40}\s{0,8}\))|`|\.(?:call|apply|bind)\s{0,8}\()",
        ),
        (("(",), r"\(\s{0,8}(?:alert|prompt|confirm|eval)\s{0,8}\)"),
        # A sink bound to a name and called through it: "(a=prompt,a())", "x=confirm;x(1)",
        # "(c=alert,c)(1)" - what a scanner sends to leave a JS string without "alert(".
        (
            ("alert", "prompt", "confirm", "eval", "settimeout", "setinterval"),
            r"(?<![\w$.])(?P<alias>[a-z_$][\w$]{0,30})\s{0,8}=\s{0,8}"
            r"(?:(?:window|self|top|parent|globalthis|this|frames)\s{0,8}\.\s{0,8})?"
            r"(?:alert|prompt|confirm|eval|settimeout|setinterval)(?![\w$])"
            r"[^\n]{0,40}?(?<![\w$.])(?P=alias)\s{0,8}(?:\)\s{0,8})?[(`]",
        ),
        (
            (
                "eval",
                "settimeout",
                "setinterval",
                "execscript",
                "importscripts",
                "fromcharcode",
                "atob",
            ),
            r"\b(?:eval|settimeout|setinterval|execscript|importscripts|fromcharcode|atob)\s{0,8}(?:\(|`)",
        ),
        (
            ("document",),
            r"document\s{0,8}\.\s{0,8}(?:cookie|domain|write|writeln|location|body|queryselector\w{0,8}|"
            r"getelement\w{0,12}|createelement|forms|images|scripts|all|head|documentelement)\b",
        ),
        (
            ("window", "frames", "globalthis", "document"),
            r"\b(?:window|frames|globalthis|document)\s{0,8}\[\s{0,8}[\"'`a-z]",
        ),
        (("self", "top", "parent", "this"), r"\b(?:self|top|parent|this)\s{0,8}\[\s{0,8}[\"'`]"),
        # JSFuck needs several ![] / +[] atoms
        (("[",), r"[!+]\s{0,4}\[\s{0,4}\][^\n]{0,40}?[!+]\s{0,4}\[\s{0,4}\]"),
        (("constructor",), r"\.constructor\s{0,8}\("),
        (("new",), r"\bnew\s+(?:function|image|worker|websocket|eventsource)\s{0,8}\("),
        (
            ("location", "innerhtml", "outerhtml", "srcdoc", "insertadjacenthtml"),
            r"\b(?:location|location\.href|innerhtml|outerhtml|srcdoc)\s{0,8}=|"
            r"\.(?:innerhtml|outerhtml|insertadjacenthtml)\b|\bsrcdoc\b",
        ),
        (("xmlhttprequest",), r"\bxmlhttprequest\b"),
        (("fetch",), r"\bfetch\s{0,8}\(\s{0,8}[\"'`]"),
        (
            ("document", "window", "self", "top", "this", "parent"),
            r"\(\s{0,8}(?:document|window|self|top|this|parent)\s{0,8}\)\s{0,8}[\[.]"
            r"|\bwindow\s{0,8}\.\s{0,8}(?:location|name|open)\b",
        ),
        (("reflect",), r"\breflect\s{0,8}\.\s{0,8}\w"),
        (("call", "apply"), r"\.\s{0,8}(?:call|apply)\s{0,8}`"),
        (("btoa",), r"\bbtoa\s{0,8}\("),
        (("$",), r"\$\s{0,8}\.\s{0,8}(?:getscript|globaleval|ajax)\b"),
        (("import",), r"\bimport\s{0,8}\(\s{0,8}[\"'`]"),
    ],
    _I,
)
