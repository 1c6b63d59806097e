"""Casbin model text (``.conf``) parsed into an immutable :class:`Model`.

The format is INI-like: ``[section]`` headers, ``key = value`` lines, whole-line
comments starting with ``#`` or ``;`` and continuation lines ending in ``\\``.
Five sections are known (``request_definition``, ``policy_definition``,
``role_definition``, ``policy_effect``, ``matchers``); the first, second, fourth
and fifth are required. Every error names the section and the line.
"""

from __future__ import annotations

import enum
import re

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["Effect", "Model", "parse_model"]

_SECTIONS = {
    "request_definition": "r",
    "policy_definition": "p",
    "role_definition": "g",
    "policy_effect": "e",
    "matchers": "m",
}
_REQUIRED = ("request_definition", "policy_definition", "policy_effect", "matchers")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Effect(enum.Enum):
    """How the effects of matching policy rows combine into one decision."""

    #: ``some(where (p.eft == allow))``: allowed if any matching row allows
    ALLOW_OVERRIDE = "some(where(p.eft==allow))"
    #: ``!some(where (p.eft == deny))``: allowed unless a matching row denies
    DENY_OVERRIDE = "!some(where(p.eft==deny))"
    #: ``some(where (p.eft == allow)) && !some(where (p.eft == deny))``
    ALLOW_AND_DENY = "some(where(p.eft==allow))&&!some(where(p.eft==deny))"
    #: ``priority(p.eft) || deny``: the first matching row (in priority order) decides
    PRIORITY = "priority(p.eft)||deny"


@attrs.frozen(slots=True)
class Model:
    """A parsed model: token names per definition key, role arities, effects and matchers."""

    requests: dict[str, tuple[str, ...]]
    policies: dict[str, tuple[str, ...]]
    roles: dict[str, int]
    effects: dict[str, Effect]
    matchers: dict[str, str]
    #: line number of each ``key`` in its section, for error messages
    lines: dict[tuple[str, str], int]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending.rstrip()))
    return out


def _tokens(section: str, key: str, value: str, line: int) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(","))
    for name in names:
        if not _TOKEN.match(name):
            raise ConfigurationError(
                f"model [{section}] line {line}: {key} has an invalid field name {name!r}"
            )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"model [{section}] line {line}: {key} repeats a field name")
    return names


def parse_model(text: str) -> Model:
    """Parse Casbin model text; raise :class:`ConfigurationError` naming the section and line."""
    if not isinstance(text, str):
        raise ConfigurationError(f"model text must be a string, not {type(text).__name__}")
    sections: dict[str, dict[str, tuple[int, str]]] = {}
    current: str | None = None
    for line, content in _logical_lines(text):
        if content.startswith("["):
            if not content.endswith("]"):
                raise ConfigurationError(f"model line {line}: unterminated section header")
            current = content[1:-1].strip()
            if current not in _SECTIONS:
                raise ConfigurationError(f"model line {line}: unknown section [{current}]")
            if current in sections:
                raise ConfigurationError(f"model line {line}: section [{current}] appears twice")
            sections[current] = {}
            continue
        if current is None:
            raise ConfigurationError(f"model line {line}: {content!r} is outside any section")
        key, eq, value = content.partition("=")
        key, value = key.strip(), value.strip()
        prefix = _SECTIONS[current]
        if not eq or not value:
            raise ConfigurationError(f"model [{current}] line {line}: expected 'key = value'")
        if not re.fullmatch(re.escape(prefix) + r"[0-9]*", key):
            raise ConfigurationError(
                f"model [{current}] line {line}: key {key!r} must be {prefix!r}, "
                f"{prefix + '2'!r}, ... in this section"
            )
        if key in sections[current]:
            raise ConfigurationError(f"model [{current}] line {line}: {key!r} defined twice")
        sections[current][key] = (line, value)
    lines = {(s, k): ln for s, entries in sections.items() for k, (ln, _) in entries.items()}
    requests = {
        k: _tokens("request_definition", k, v, ln)
        for k, (ln, v) in sections.get("request_definition", {}).items()
    }
    policies = {
        k: _tokens("policy_definition", k, v, ln)
        for k, (ln, v) in sections.get("policy_definition", {}).items()
    }
    for name in _REQUIRED:
        if not sections.get(name):
            raise ConfigurationError(f"model: section [{name}] is missing or empty")

    roles: dict[str, int] = {}
    for k, (ln, v) in sections.get("role_definition", {}).items():
        parts = [part.strip() for part in v.split(",")]
        if len(parts) < 2 or any(part != "_" for part in parts):
            raise ConfigurationError(
                f"model [role_definition] line {ln}: {k} must be '_, _' or '_, _, _' (got {v!r})"
            )
        roles[k] = len(parts)
    effects: dict[str, Effect] = {}
    for k, (ln, v) in sections["policy_effect"].items():
        compact = "".join(v.split())
        try:
            effects[k] = Effect(compact)
        except ValueError:
            known = ", ".join(repr(e.value) for e in Effect)
            raise ConfigurationError(
                f"model [policy_effect] line {ln}: unsupported effect {v!r} (supported: {known})"
            ) from None
    matchers = {k: v for k, (ln, v) in sections["matchers"].items()}
    return Model(
        requests=requests,
        policies=policies,
        roles=roles,
        effects=effects,
        matchers=matchers,
        lines=lines,
    )
