"""Regular-expression conditions: worst case and everyday cost, RE2 (ours) against Python's ``re``.

Prints, for the catastrophic pattern ``(a+)+$`` against ``"a" * n + "!"``, how long one
evaluation takes with our RE2-backed ``$regex`` and with a plain ``re.search`` (the old
engine; stopped at a size budget since it doubles per character), then the median cost of
a typical user-agent condition with both. Run: ``python benchmarks/flags_regex.py``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import timeit

from cognitionos.flags._conditions import compile_condition

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _once(fn: object, arg: object) -> float:
    start = time.perf_counter()
    fn(arg)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--re-budget", type=float, default=2.0, help="stop re after this many s")
    args = parser.parse_args()

    ours = compile_condition({"ua": {"$regex": "(a+)+$"}})
    theirs = re.compile("(a+)+$").search
    print("pathological (a+)+$ on 'a'*n + '!' (seconds per evaluation)")
    print(f"{'n':>9} {'cognitionos (RE2)':>18} {'python re':>12}")
    re_done = False
    for n in (16, 18, 20, 22, 24, 1_000, 100_000, 1_000_000):
        value = "a" * n + "!"
        t_ours = _once(ours, {"ua": value})
        t_re = "-"
        if not re_done:
            spent = _once(theirs, value)
            t_re = f"{spent:.4f}"
            re_done = spent > args.re_budget / 4  # the next step doubles or more
        print(f"{n:>9} {t_ours:>18.6f} {t_re:>12}")

    cond = compile_condition({"ua": {"$regex": "(Mobile|Tablet)"}})
    plain = re.compile("(Mobile|Tablet)").search
    attrs = {"ua": UA}
    runs = 7
    n = 20_000
    ours_us = [t / n * 1e6 for t in timeit.repeat(lambda: cond(attrs), number=n, repeat=runs)]

    def with_re(a: dict[str, str]) -> bool:
        # the same attribute lookup and coercion as our predicate, matched by re instead
        v = a.get("ua")
        return plain(v if type(v) is str else str(v)) is not None

    re_us = [t / n * 1e6 for t in timeit.repeat(lambda: with_re(attrs), number=n, repeat=runs)]
    m_ours, m_re = statistics.median(ours_us), statistics.median(re_us)
    print(f"\neveryday condition on a {len(UA)}-char user agent (median of {runs}, us/eval)")
    print(
        f"cognitionos $regex (RE2): {m_ours:.2f}   same predicate on re: {m_re:.2f}   "
        f"ratio {m_ours / m_re:.2f}x"
    )


if __name__ == "__main__":
    main()
