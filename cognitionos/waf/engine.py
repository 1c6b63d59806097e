"""The firewall: parse, normalize, run the rule set, score, decide.

fw = Firewall(paranoia=1, threshold=5)
verdict = fw.inspect(Request.from_raw("GET", "/?q=%27%20or%201%3D1--"))
verdict.blocked, verdict.score     # (True, 5)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.metrics import CounterSet
from cognitionos.waf._normalize import explain_steps
from cognitionos.waf._parse import Field, ParseLimits, parse_request
from cognitionos.waf._prefilter import literal_prefilter
from cognitionos.waf._protocol import ProtocolPolicy, check_protocol
from cognitionos.waf._ruleset import BUILTIN_RULES, BuiltinRule
from cognitionos.waf._sqli import _compact, fingerprint, tokenize
from cognitionos.waf._subject import Subject
from cognitionos.waf.models import Match, Request, Severity, Verdict
from cognitionos.waf.rules import CustomRule, Exclusion, coerce_exclusions, coerce_rules

__all__ = ["Explanation", "Firewall"]

# Values the detectors are known to pass: decimal numbers, and tokens of at most two letters,
# digits or hyphens (``id``, ``q``, ``en``). Every built-in detector was run over all such
# tokens (63**2 + 63 of them), the path "/" and 120k numbers without a match, and
# tests/waf/test_shortcuts.py reruns that proof on every change. Longer words are not
# shortcuts: ``localhost``, ``sqlmap``, ``web-inf``, ``msdb`` and base64 text all fire.
_SHORTCUT = re.compile(r"[0-9]{0,64}|[A-Za-z0-9-]{0,2}|/")
#: Inspection budget rules (see ParseLimits): too many values, one value too long, all values
#: too long together.
RULE_TOO_MANY_VALUES = "920910"
RULE_VALUE_TOO_LONG = "920911"
RULE_OVER_CHAR_BUDGET = "920912"

#: The counters every :class:`Firewall` keeps (``fw.counters``), with their help text.
_COUNTER_HELP = {
    "inspected": "Requests inspected by the firewall (one per decision)",
    "blocked": "Requests the verdict blocks",
    "would_block": "Requests whose score reached the threshold (also in detect mode)",
    "too_large": "Requests refused before inspection: body over the middleware's max_body_bytes",
}

#: (id of the rule list, value kind, value): one detector run per request and key.
InspectKey = tuple[int, str, str]


def _ends(value: str, allowance: int) -> list[str]:
    """``value`` if it fits ``allowance`` characters, else its first and last halves of it.

    Both ends: filler in front of an attack, the usual way past a size limit, does not hide it.
    """
    if len(value) <= allowance:
        return [value]
    tail = allowance // 2
    return [value[: allowance - tail], value[len(value) - tail :]] if tail else [value[:allowance]]


def _shares(lengths: list[int], budget: int) -> list[int]:
    """Split ``budget`` characters over values of ``lengths``: shortest first, equal shares."""
    out = [0] * len(lengths)
    left = budget
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for rank, i in enumerate(order):
        out[i] = min(lengths[i], left // (len(order) - rank))
        left -= out[i]
    return out


@attrs.frozen(slots=True)
class Explanation:
    """What ``Firewall.explain`` reports: decoding steps, SQL fingerprints, matches."""

    payload: str
    steps: tuple[tuple[str, str], ...]
    sql_fingerprints: tuple[tuple[str, str], ...]
    verdict: Verdict


class Firewall:
    """Anomaly-scoring web application firewall (sync; pure CPU, no I/O).

    ``paranoia`` (1-4) enables stricter rules; a request is blocked when the sum of
    its match points (critical 5, error 4, warning 3, notice 2) reaches ``threshold``.
    ``mode="detect"`` never blocks but reports ``would_block``.

        fw = Firewall(paranoia=2, exclusions=[{"path": "/wiki/*", "categories": ["xss"]}])
        fw.inspect(req).blocked
    """

    def __init__(
        self,
        paranoia: int = 1,
        threshold: int = 5,
        *,
        mode: Literal["block", "detect"] = "block",
        rules: Iterable[CustomRule | Mapping[str, Any]] = (),
        exclusions: Iterable[Exclusion | Mapping[str, Any]] = (),
        disabled_rules: Iterable[str] = (),
        limits: ParseLimits | None = None,
        policy: ProtocolPolicy | None = None,
        shortcuts: bool = True,
    ) -> None:
        if paranoia not in (1, 2, 3, 4):
            raise ConfigurationError(f"paranoia must be 1..4, got {paranoia!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ConfigurationError(f"threshold must be an integer >= 1, got {threshold!r}")
        if mode not in ("block", "detect"):
            raise ConfigurationError(f"mode must be 'block' or 'detect', got {mode!r}")
        self.paranoia = paranoia
        self.threshold = threshold
        self.mode = mode
        self.limits = limits or ParseLimits()
        self.policy = policy or ProtocolPolicy()
        #: Skip the detectors on values proven to pass them (numbers, 1-2 character tokens).
        #: ``False`` runs every detector on every value (equal-work benchmarks, differential tests).
        self.shortcuts = bool(shortcuts)
        self._prefilter = literal_prefilter() if self.shortcuts else None
        #: (rule list, detector bits) -> the rules of the list the prefilter keeps
        self._selected: dict[tuple[int, int], tuple[BuiltinRule, ...]] = {}
        self.counters = CounterSet("waf", _COUNTER_HELP, help=_COUNTER_HELP)
        self._count_inspected = self.counters.incrementer("inspected")
        self._count_blocked = self.counters.incrementer("blocked")
        self._count_would_block = self.counters.incrementer("would_block")
        self._attacks = self.counters.labelled(
            "attacks", "category", help="Requests reaching the threshold, by rule family"
        )
        if isinstance(disabled_rules, str) or not isinstance(disabled_rules, Iterable):
            raise ConfigurationError(
                f"disabled_rules must be a list of rule ids, got {disabled_rules!r}"
            )
        disabled = frozenset(str(rule_id) for rule_id in disabled_rules)
        self.disabled_rules = disabled
        self._rules: tuple[BuiltinRule, ...] = tuple(
            r for r in BUILTIN_RULES if r.paranoia <= paranoia and r.rule_id not in disabled
        )
        self.custom_rules = tuple(
            r for r in coerce_rules(rules) if r.paranoia <= paranoia and r.id not in disabled
        )
        self._compiled = {
            r.id: re.compile(r.pattern, re.IGNORECASE if "lowercase" in r.transforms else 0)
            for r in self.custom_rules
            if r.operator == "regex"
        }
        self.exclusions = coerce_exclusions(exclusions)
        # Rule lists per value kind, resolved once.
        self._by_kind: dict[tuple[str, str], tuple[BuiltinRule, ...]] = {}
        self._rule_sets: dict[tuple[str, str], tuple[BuiltinRule, ...]] = {}

    def __repr__(self) -> str:
        return f"Firewall(paranoia={self.paranoia}, threshold={self.threshold}, mode={self.mode!r})"

    @property
    def rules(self) -> tuple[BuiltinRule, ...]:
        """The built-in rules active at this paranoia level."""
        return self._rules

    def _rule_set(self, kind: str, name: str) -> tuple[BuiltinRule, ...]:
        """The rules for values of ``kind`` (headers: by name), cached per kind and header."""
        found = self._rules_for(kind, name)
        self._rule_sets[(kind, name if kind == "header" else "")] = found
        return found

    def _rules_for(self, kind: str, name: str) -> tuple[BuiltinRule, ...]:
        key = (kind, name if kind == "header" else "")
        found = self._by_kind.get(key)
        if found is None:
            found = tuple(r for r in self._rules if r.applies(kind, name))
            self._by_kind[key] = found
        return found

    def _excluded(self, req: Request, location: str, rule_id: str, category: str) -> bool:
        return any(
            e.covers(req.method, req.path, location, rule_id, category) for e in self.exclusions
        )

    def passes_shortcut(self, kind: str, value: str) -> bool:
        """Whether ``value`` skips the built-in detectors (proven to pass them; never headers)."""
        return self.shortcuts and kind != "header" and _SHORTCUT.fullmatch(value) is not None

    def inspect(self, request: Request) -> Verdict:
        """Inspect one request and return the verdict (never raises on hostile input).

        Every call is counted in :attr:`counters` (inspected, blocked, would_block, and the
        categories of a request reaching the threshold under ``attacks``).
        """
        verdict = self._inspect(request)
        self._count_inspected()
        if verdict.would_block:
            self._count_would_block()
            if verdict.blocked:
                self._count_blocked()
            for category in verdict.categories:
                self._attacks.inc((category,))
        return verdict

    def _inspect(self, request: Request) -> Verdict:
        parsed = parse_request(request, self.limits)
        matches: list[Match] = []
        seen: set[tuple[str, str]] = set()

        def add(match: Match) -> None:
            key = (match.rule_id, match.location)
            if key in seen or match.paranoia > self.paranoia:
                return
            if self.exclusions and self._excluded(
                request, match.location, match.rule_id, match.category
            ):
                return
            seen.add(key)
            matches.append(match)

        limits = self.limits
        partial = limits.oversize == "inspect_ends"
        for match in check_protocol(request, parsed, self.policy):
            if match.rule_id not in self.disabled_rules:
                add(match)

        budget_flagged: list[str] = []

        def over_budget(
            rule_id: str, location: str, snippet: str, message: str, *, ends: bool = True
        ) -> str:
            """Record a budget match and say what to do with the request.

            ``ends``: what is over this limit can still be inspected at its ends (value
            length, character budget); with ``oversize="inspect_ends"`` the match is then a
            warning. A limit whose excess cannot be inspected (``ends=False``: the count of
            values) is critical in every mode: what lies beyond it is never seen, so it must
            not pass on a warning.

            ``"stop"``: the match decides the verdict by itself (``oversize="block"``, kept,
            reaching the threshold), nothing else is inspected. ``"partial"``: the match is
            kept, inspect what fits the budget (with ``oversize="inspect_ends"`` only the
            first end-inspected limit a request exceeds is reported: two warnings would block a
            large legitimate request). ``"all"``: the rule is disabled or excluded for this
            request, that limit does not apply.
            """
            if rule_id in self.disabled_rules:
                return "all"
            warn = partial and ends
            if warn and budget_flagged:
                return "partial"  # one warning per request says it was inspected in part
            severity = Severity.WARNING if warn else Severity.CRITICAL
            before = len(matches)
            add(Match(rule_id, "protocol", location, snippet[:80], severity, 1, message))
            if len(matches) == before:
                return "all"
            if warn:
                budget_flagged.append(rule_id)
            elif not partial and matches[-1].points >= self.threshold:
                return "stop"
            return "partial"

        # What the detectors will see: each distinct (rule list, kind, value) once per request,
        # so a value repeated across parameters, JSON items or parts is inspected once.
        plan: list[tuple[Field, tuple[BuiltinRule, ...], InspectKey | None]] = []
        first_field: dict[InspectKey, Field] = {}
        count_limit = limits.max_inspected_values
        rule_sets = self._rule_sets
        any_custom = bool(self.custom_rules)
        shortcut = _SHORTCUT.fullmatch if self.shortcuts else None
        for field in parsed.fields:
            kind = field.kind
            plain = kind != "header"
            rules = rule_sets.get((kind, "" if plain else field.name))
            if rules is None:
                rules = self._rule_set(kind, field.name)
            if not rules and not any_custom:
                continue
            value = field.value
            key: InspectKey | None = None
            if rules and not (plain and shortcut is not None and shortcut(value)):
                key = (id(rules), kind, value)
                if key not in first_field:
                    if len(first_field) == count_limit:
                        action = over_budget(
                            RULE_TOO_MANY_VALUES,
                            "limit:max_inspected_values",
                            f"{field.location} (more than {count_limit} values)",
                            "more values than the inspection limit (max_inspected_values)",
                            ends=False,
                        )
                        if action == "stop":
                            return self._verdict(matches)
                        if action == "partial":
                            break  # the rest of the request is not inspected (920910 says so)
                        count_limit = -1  # rule disabled or excluded: no count limit
                    first_field[key] = field
            plan.append((field, rules, key))
        allowance = self._allowances(list(first_field.items()), over_budget)
        if allowance is None:
            return self._verdict(matches)  # a budget match decided the verdict

        found_for: dict[InspectKey, list[tuple[BuiltinRule, str]]] = {}
        max_length = limits.max_value_length
        custom_rules = self.custom_rules
        for field, rules, key in plan:
            value = field.value
            if key is not None:
                limit = allowance.get(key)
                hits = found_for.get(key)
                if hits is None and limit is not None:
                    hits = []
                    for piece in (value,) if len(value) <= limit else _ends(value, limit):
                        hits += self._hits(rules, piece, field.kind, field.name)
                    found_for[key] = hits
                for rule, snippet in hits or ():
                    add(
                        Match(
                            rule.rule_id,
                            rule.category,
                            field.location,
                            snippet,
                            rule.severity,
                            rule.paranoia,
                            rule.message,
                        )
                    )
            for custom in custom_rules:
                if custom.applies_to(field.location):
                    for piece in _ends(value, max_length):
                        found = custom.evaluate(piece, self._compiled.get(custom.id))
                        if found is not None:
                            add(
                                Match(
                                    custom.id,
                                    custom.category,
                                    field.location,
                                    found,
                                    custom.severity,
                                    custom.paranoia,
                                    custom.message,
                                )
                            )
                            break
        return self._verdict(matches)

    def _allowances(
        self, values: list[tuple[InspectKey, Field]], over_budget: Callable[..., str]
    ) -> dict[InspectKey, int] | None:
        """Characters of each distinct value the detectors see, or None to inspect nothing.

        Each value gets up to ``max_value_length`` characters (920911 beyond), all of them
        together up to ``max_inspected_chars`` (920912 beyond: the budget is shared out
        shortest value first, every value getting an equal share of what is left, so short
        values are inspected in full and only the longest are inspected at their ends).
        """
        limits = self.limits
        caps = [len(key[2]) for key, _ in values]
        longest = max(range(len(caps)), key=caps.__getitem__, default=-1)
        if longest >= 0 and caps[longest] > limits.max_value_length:
            field = values[longest][1]
            action = over_budget(
                RULE_VALUE_TOO_LONG,
                "limit:max_value_length",
                f"{field.location} ({caps[longest]} > {limits.max_value_length} chars)",
                "value longer than the inspection limit (max_value_length)",
            )
            if action == "stop":
                return None
            if action == "partial":
                caps = [min(n, limits.max_value_length) for n in caps]
        total = sum(caps)
        if total > limits.max_inspected_chars:
            action = over_budget(
                RULE_OVER_CHAR_BUDGET,
                "limit:max_inspected_chars",
                f"{total} > {limits.max_inspected_chars} chars in {len(caps)} values",
                "values longer together than the inspection limit (max_inspected_chars)",
            )
            if action == "stop":
                return None
            if action == "partial":
                caps = _shares(caps, limits.max_inspected_chars)
        return {key: cap for (key, _), cap in zip(values, caps, strict=True)}

    def _verdict(self, matches: list[Match]) -> Verdict:
        """Score the matches and decide against the threshold and mode."""
        score = sum(m.points for m in matches)
        would_block = score >= self.threshold
        return Verdict(
            blocked=would_block and self.mode == "block",
            score=score,
            matches=tuple(matches),
            would_block=would_block,
            threshold=self.threshold,
        )

    def inspect_value(self, value: str, location: str = "args:q") -> Verdict:
        """Inspect one parameter value as if sent as ``GET /?q=<value>`` (already decoded once).

        >>> Firewall().inspect_value("<script>alert(1)</script>").blocked
        True
        """
        if not isinstance(value, str):
            raise ConfigurationError(f"inspect_value takes a str, got {type(value).__name__}")
        matches: list[Match] = []
        rules = self._rules_for("arg", "")
        if self.passes_shortcut("arg", value):
            rules = ()
        for rule, snippet in self._hits(rules, value, "arg", location.split(":", 1)[-1]):
            if not self._excluded_value(location, rule):
                matches.append(
                    Match(
                        rule.rule_id,
                        rule.category,
                        location,
                        snippet,
                        rule.severity,
                        rule.paranoia,
                        rule.message,
                    )
                )
        for custom in self.custom_rules:
            if custom.applies_to(location):
                found = custom.evaluate(value, self._compiled.get(custom.id))
                if found is not None:
                    matches.append(
                        Match(
                            custom.id,
                            custom.category,
                            location,
                            found,
                            custom.severity,
                            custom.paranoia,
                            custom.message,
                        )
                    )
        return self._verdict(matches)

    def _hits(
        self, rules: tuple[BuiltinRule, ...], value: str, kind: str, name: str
    ) -> list[tuple[BuiltinRule, str]]:
        """The rules of ``rules`` that fire on ``value`` (of ``kind``), with their snippets.

        With shortcuts on, the literal prefilter names the detectors that can fire on a plain
        value; the others are skipped (the same answer, proven by tests/waf/test_shortcuts.py).
        """
        hits: list[tuple[BuiltinRule, str]] = []
        if not rules:
            return hits
        prefilter = self._prefilter
        subject: Subject | None = None
        if prefilter is not None:
            mask = prefilter.mask_for(value)
            if mask is not None:
                # decoded base64 is not plain text: every detector reads it
                may_hold_base64 = len(value) >= 16 and " " not in value[:64] and kind != "path"
                if may_hold_base64:
                    subject = Subject(value, kind, name)
                    if subject.base64:
                        mask = None
            if mask is not None:
                key = (id(rules), mask)
                selected = self._selected.get(key)
                if selected is None:
                    bits = prefilter.bits
                    selected = tuple(r for r in rules if bits.get(r.detector, -1) & mask)
                    if len(self._selected) < 4096:  # bounded: hostile values vary the bits
                        self._selected[key] = selected
                rules = selected
                if not rules:
                    return hits  # no detector can fire: the value is not even decoded
        if subject is None:
            subject = Subject(value, kind, name)
        for rule in rules:
            snippet = rule.check(subject)
            if snippet is not None:
                hits.append((rule, snippet))
        return hits

    def _excluded_value(self, location: str, rule: BuiltinRule) -> bool:
        return any(
            e.covers("GET", "/", location, rule.rule_id, rule.category) for e in self.exclusions
        )

    def explain(self, payload: str) -> Explanation:
        """Each normalization step, the SQL fingerprints and the rules that fire for ``payload``."""
        steps = tuple(explain_steps(payload))
        decoded = Subject(payload).text
        fps: list[tuple[str, str]] = []
        for quote in (None, "'", '"'):
            toks = tokenize(decoded, quote)
            if toks is not None:
                fps.append((quote or "bare", fingerprint(_compact(toks))))
        return Explanation(payload, steps, tuple(fps), self.inspect_value(payload))
