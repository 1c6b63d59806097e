"""The firewall: parse, normalize, run the rule set, score, decide.

fw = Firewall(paranoia=1, threshold=5)
verdict = fw.inspect(Request.from_raw("GET", "/?q=%27%20or%201%3D1--"))
verdict.blocked, verdict.score     # (True, 5)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.waf._normalize import explain_steps
from cognitionos.waf._parse import ParseLimits, parse_request
from cognitionos.waf._protocol import ProtocolPolicy, check_protocol
from cognitionos.waf._ruleset import BUILTIN_RULES, BuiltinRule
from cognitionos.waf._sqli import _compact, fingerprint, tokenize
from cognitionos.waf._subject import Subject
from cognitionos.waf.models import Match, Request, Severity, Verdict
from cognitionos.waf.rules import CustomRule, Exclusion, coerce_exclusions, coerce_rules

__all__ = ["Explanation", "Firewall"]

# Values made only of these characters cannot carry any attack the rules look for.
_TRIVIAL = re.compile(r"^[A-Za-z0-9-]{0,64}$")
# Plain prose (letters, digits, spaces, commas, hyphens) can only carry word-level attacks:
# SQL keyword sequences, a shell command with flags, a scanner name.
_PROSE = re.compile(r"^[A-Za-z0-9 ,-]{0,8192}$")
_PROSE_DETECTORS = frozenset(
    {"sqli_syntax", "sqli_keyword_density", "command_injection", "scanner_tool"}
)
#: Inspection budget rules (see ParseLimits): too many values, one value too long.
RULE_TOO_MANY_VALUES = "920910"
RULE_VALUE_TOO_LONG = "920911"


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
    ) -> None:
        if paranoia not in (1, 2, 3, 4):
            raise ConfigurationError(f"paranoia must be 1..4, got {paranoia!r}")
        if threshold < 1:
            raise ConfigurationError(f"threshold must be >= 1, got {threshold!r}")
        if mode not in ("block", "detect"):
            raise ConfigurationError(f"mode must be 'block' or 'detect', got {mode!r}")
        self.paranoia = paranoia
        self.threshold = threshold
        self.mode = mode
        self.limits = limits or ParseLimits()
        self.policy = policy or ProtocolPolicy()
        disabled = frozenset(disabled_rules)
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

    def __repr__(self) -> str:
        return f"Firewall(paranoia={self.paranoia}, threshold={self.threshold}, mode={self.mode!r})"

    @property
    def rules(self) -> tuple[BuiltinRule, ...]:
        """The built-in rules active at this paranoia level."""
        return self._rules

    def _rules_for(self, kind: str, name: str) -> tuple[BuiltinRule, ...]:
        key = (kind, name if kind == "header" else "")
        found = self._by_kind.get(key)
        if found is None:
            found = tuple(r for r in self._rules if r.applies(kind, name))
            self._by_kind[key] = found
        return found

    def _prose_rules_for(
        self, kind: str, rules: tuple[BuiltinRule, ...]
    ) -> tuple[BuiltinRule, ...]:
        key = ("prose", kind)
        found = self._by_kind.get(key)
        if found is None:
            found = tuple(r for r in rules if r.detector in _PROSE_DETECTORS)
            self._by_kind[key] = found
        return found

    def _excluded(self, req: Request, location: str, rule_id: str, category: str) -> bool:
        return any(
            e.covers(req.method, req.path, location, rule_id, category) for e in self.exclusions
        )

    def inspect(self, request: Request) -> Verdict:
        """Inspect one request and return the verdict (never raises on hostile input)."""
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
        prefix_only = limits.oversize == "inspect_prefix"
        budget_severity = Severity.WARNING if prefix_only else Severity.CRITICAL
        for match in check_protocol(request, parsed, self.policy):
            if match.rule_id not in self.disabled_rules:
                if match.rule_id == RULE_TOO_MANY_VALUES and prefix_only:
                    match = attrs.evolve(match, severity=Severity.WARNING)
                add(match)

        def over_budget(rule_id: str, location: str, snippet: str, message: str) -> str:
            """Record a budget match and say what to do with the rest of the request.

            ``"stop"``: the match decides the verdict by itself (``oversize="block"``, kept,
            reaching the threshold), nothing more is inspected. ``"prefix"``: the match is kept
            but does not decide, inspect what fits the budget. ``"all"``: the rule is disabled
            or excluded for this request, inspect everything.
            """
            if rule_id in self.disabled_rules:
                return "all"
            before = len(matches)
            add(Match(rule_id, "protocol", location, snippet[:80], budget_severity, 1, message))
            if len(matches) == before:
                return "all"
            if not prefix_only and matches[-1].points >= self.threshold:
                return "stop"
            return "prefix"

        max_length = limits.max_value_length
        inspected_left = limits.max_inspected_values
        length_action = ""  # decided at the first over-long value
        count_action = ""
        # Detector results per (rule list, value): a value repeated across parameters, JSON
        # array items or multipart parts is decoded and inspected once per request.
        found_for: dict[tuple[int, str, str], list[tuple[BuiltinRule, str]]] = {}
        for field in parsed.fields:
            rules = self._rules_for(field.kind, field.name)
            if not rules and not self.custom_rules:
                continue
            value = field.value
            if len(value) > max_length:
                if not length_action:
                    length_action = over_budget(
                        RULE_VALUE_TOO_LONG,
                        "limit:max_value_length",
                        f"{field.location} ({len(value)} > {max_length} chars)",
                        "value longer than the inspection limit (max_value_length)",
                    )
                if length_action == "stop":
                    break
                if length_action == "prefix":
                    value = value[:max_length]
            plain = field.kind != "header"
            if rules and value != "/" and not (plain and _TRIVIAL.match(value)):
                if plain and _PROSE.match(value):
                    rules = self._prose_rules_for(field.kind, rules)
                key = (id(rules), field.kind, value)
                hits = found_for.get(key)
                if hits is None:
                    if inspected_left <= 0 and not count_action:
                        count_action = over_budget(
                            RULE_TOO_MANY_VALUES,
                            "limit:max_inspected_values",
                            f"{field.location} (more than {limits.max_inspected_values} values)",
                            "more values than the inspection limit (max_inspected_values)",
                        )
                    if count_action in ("stop", "prefix"):
                        break
                    inspected_left -= 1
                    subject = Subject(value, field.kind, field.name)
                    hits = []
                    for rule in rules:
                        snippet = rule.check(subject)
                        if snippet is not None:
                            hits.append((rule, snippet))
                    found_for[key] = hits
                for rule, snippet in hits:
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
            for custom in self.custom_rules:
                if custom.applies_to(field.location):
                    snippet = custom.evaluate(value, self._compiled.get(custom.id))
                    if snippet is not None:
                        add(
                            Match(
                                custom.id,
                                custom.category,
                                field.location,
                                snippet,
                                custom.severity,
                                custom.paranoia,
                                custom.message,
                            )
                        )
        return self._verdict(matches)

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
        matches: list[Match] = []
        subject = Subject(value, "arg", location.split(":", 1)[-1])
        for rule in self._rules_for("arg", ""):
            snippet = rule.check(subject)
            if snippet is not None and not self._excluded_value(location, rule):
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
                snippet = custom.evaluate(value, self._compiled.get(custom.id))
                if snippet is not None:
                    matches.append(
                        Match(
                            custom.id,
                            custom.category,
                            location,
                            snippet,
                            custom.severity,
                            custom.paranoia,
                            custom.message,
                        )
                    )
        return self._verdict(matches)

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
