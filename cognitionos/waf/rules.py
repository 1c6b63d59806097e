"""User-supplied rules and exclusions, validated with pydantic.

Custom rules and exclusions are plain data (JSON/YAML/dicts)::

    fw = Firewall(rules=[{"id": "block-wp", "pattern": "wp-login\\\\.php", "locations": ["path"]}],
                  exclusions=[{"path": "/cms/*", "locations": ["body:form:html"],
                               "categories": ["xss"]}])
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.waf._normalize import (
    compress_whitespace,
    decode_all,
    lowercase,
    remove_sql_comments,
)
from cognitionos.waf.models import Severity

__all__ = ["CustomRule", "Exclusion", "load_rules"]

_TRANSFORMS = {
    "decode": decode_all,
    "lowercase": lowercase,
    "compress_whitespace": compress_whitespace,
    "remove_sql_comments": remove_sql_comments,
}
#: Custom regexes see at most this many characters of a value, bounding the cost of any pattern.
CUSTOM_RULE_INPUT_LIMIT = 8192


class CustomRule(BaseModel):
    """A declarative rule: an operator applied to values at matching locations.

    ``locations`` are glob patterns over match locations (``args:*``, ``header:user-agent``,
    ``path``, ``body:json:$.comment``); ``*`` means every value.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    pattern: str
    operator: Literal["regex", "contains", "equals", "startswith", "endswith"] = "regex"
    category: str = "custom"
    severity: Severity = Severity.CRITICAL
    paranoia: int = Field(default=1, ge=1, le=4)
    locations: tuple[str, ...] = ("*",)
    transforms: tuple[
        Literal["decode", "lowercase", "compress_whitespace", "remove_sql_comments"], ...
    ] = (
        "decode",
        "lowercase",
    )
    negate: bool = False
    message: str = ""

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str, info: Any) -> str:
        if info.data.get("operator", "regex") == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value

    def applies_to(self, location: str) -> bool:
        """Whether ``location`` matches one of the rule's location globs."""
        return any(fnmatch.fnmatchcase(location, pat) for pat in self.locations)

    def evaluate(self, value: str, compiled: re.Pattern[str] | None) -> str | None:
        """The matched snippet, or ``None``."""
        text = value[:CUSTOM_RULE_INPUT_LIMIT]
        for name in self.transforms:
            text = _TRANSFORMS[name](text)
        pattern = (
            self.pattern.lower()
            if "lowercase" in self.transforms and self.operator != "regex"
            else self.pattern
        )
        hit: str | None
        if self.operator == "regex":
            assert compiled is not None
            m = compiled.search(text)
            hit = m.group()[:80] if m else None
        elif self.operator == "contains":
            hit = pattern if pattern in text else None
        elif self.operator == "equals":
            hit = text[:80] if text == pattern else None
        elif self.operator == "startswith":
            hit = text[:80] if text.startswith(pattern) else None
        else:
            hit = text[-80:] if text.endswith(pattern) else None
        if self.negate:
            return None if hit is not None else text[:80]
        return hit


class Exclusion(BaseModel):
    """Switch rules off where they misfire: for a route (glob on the path) and/or some locations.

    An exclusion with no ``rule_ids`` and no ``categories`` disables every rule in its scope.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = "*"
    methods: tuple[str, ...] = ()
    locations: tuple[str, ...] = ("*",)
    rule_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def covers(self, method: str, path: str, location: str, rule_id: str, category: str) -> bool:
        """Whether this exclusion silences ``rule_id`` at ``location`` on this route."""
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        if not any(fnmatch.fnmatchcase(location, pat) for pat in self.locations):
            return False
        if not self.rule_ids and not self.categories:
            return True
        return rule_id in self.rule_ids or category in self.categories


def _listed(items: Any, what: str) -> list[Any]:
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ConfigurationError(f"WAF {what} must be a list, got {items!r:.80}")
    return list(items)


def coerce_rules(items: Iterable[CustomRule | Mapping[str, Any]]) -> tuple[CustomRule, ...]:
    """Validate dicts into :class:`CustomRule` (ConfigurationError on bad input)."""
    out: list[CustomRule] = []
    for item in _listed(items, "rules"):
        try:
            out.append(item if isinstance(item, CustomRule) else CustomRule.model_validate(item))
        except ValueError as exc:
            raise ConfigurationError(f"invalid WAF rule {item!r}: {exc}") from exc
    return tuple(out)


def coerce_exclusions(items: Iterable[Exclusion | Mapping[str, Any]]) -> tuple[Exclusion, ...]:
    """Validate dicts into :class:`Exclusion` (ConfigurationError on bad input)."""
    out: list[Exclusion] = []
    for item in _listed(items, "exclusions"):
        try:
            out.append(item if isinstance(item, Exclusion) else Exclusion.model_validate(item))
        except ValueError as exc:
            raise ConfigurationError(f"invalid WAF exclusion {item!r}: {exc}") from exc
    return tuple(out)


def load_rules(path: str | Path) -> tuple[tuple[CustomRule, ...], tuple[Exclusion, ...]]:
    """Read ``{"rules": [...], "exclusions": [...]}`` from a JSON or YAML file.

    >>> rules, exclusions = load_rules("waf.yaml")   # doctest: +SKIP
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read WAF rule file {str(p)!r}: {exc}") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        yaml = require("yaml", purpose="YAML WAF rule files")
        try:
            doc = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise ConfigurationError(f"{p}: not valid YAML: {exc}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{p}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise ConfigurationError(f"{p}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{p}: expected a mapping with 'rules' and/or 'exclusions'")
    return coerce_rules(doc.get("rules", [])), coerce_exclusions(doc.get("exclusions", []))
