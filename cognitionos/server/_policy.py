"""Access control as data: the shipped Casbin model and policy, and the questions the server asks.

The default policy lives in ``cognitionos/server/policy/`` (``model.conf`` + ``policy.csv``,
RBAC with domains = tenants). :class:`AccessPolicy` answers two questions of it:
may ``role`` use ``scope`` in ``tenant`` (:meth:`allows`), and which scopes does a role
have there (:meth:`scopes`; used so nobody creates a key or user stronger than themselves).

Until the general Casbin enforcer (``cognitionos.authz``) is merged, the rows are read
here for the one model shape shipped (``p = sub, dom, obj`` with ``g = _, _`` role
inheritance and ``*`` as "every tenant"); a different model file is refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from cognitionos.errors import ConfigurationError

__all__ = ["POLICY_DIR", "ROLES", "SCOPES", "AccessPolicy"]

POLICY_DIR = Path(__file__).parent / "policy"

#: roles from the strongest to the weakest (``service`` is a machine role beside them)
ROLES = ("owner", "admin", "developer", "viewer", "service")

#: every scope the server checks, for documentation and the RBAC matrix test
SCOPES = (
    "tenants:read",
    "tenants:write",
    "tenants:manage",
    "users:read",
    "users:write",
    "keys:read",
    "keys:write",
    "roles:read",
    "flags:read",
    "flags:write",
    "flags:evaluate",
    "waf:read",
    "waf:inspect",
    "waf:bans:read",
    "waf:bans:write",
    "ratelimit:read",
    "ratelimit:write",
    "ratelimit:check",
)

_SHIPPED_MATCHER = 'g(r.sub, p.sub) && (p.dom == "*" || r.dom == p.dom) && r.obj == p.obj'


class AccessPolicy:
    """Role x tenant x scope decisions from Casbin-format policy rows.

    ``AccessPolicy.default()`` loads the shipped files::

        policy = AccessPolicy.default()
        policy.allows("developer", "t_123", "flags:write")   # True
        policy.allows("viewer", "t_123", "flags:write")      # False
    """

    def __init__(self, model_text: str, policy_text: str) -> None:
        matchers = [
            line.split("=", 1)[1].strip()
            for line in model_text.splitlines()
            if line.strip().startswith("m ") or line.strip().startswith("m=")
        ]
        if matchers != [_SHIPPED_MATCHER]:
            raise ConfigurationError(
                f"access policy model: expected the shipped matcher {_SHIPPED_MATCHER!r}, "
                f"got {matchers!r}"
            )
        self._grants: dict[str, set[tuple[str, str]]] = {}
        self._parents: dict[str, set[str]] = {}
        for number, row in enumerate(csv.reader(io.StringIO(policy_text)), start=1):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if cells[0] == "p" and len(cells) == 4:
                self._grants.setdefault(cells[1], set()).add((cells[2], cells[3]))
            elif cells[0] == "g" and len(cells) == 3:
                self._parents.setdefault(cells[1], set()).add(cells[2])
            else:
                raise ConfigurationError(f"access policy line {number}: cannot read {row!r}")

    @classmethod
    def default(cls) -> AccessPolicy:
        """The policy shipped in ``cognitionos/server/policy/``."""
        return cls.from_files(POLICY_DIR / "model.conf", POLICY_DIR / "policy.csv")

    @classmethod
    def from_files(cls, model_path: str | Path, policy_path: str | Path) -> AccessPolicy:
        """Read a model ``.conf`` and a policy ``.csv``."""
        return cls(Path(model_path).read_text("utf-8"), Path(policy_path).read_text("utf-8"))

    def _roles(self, role: str) -> set[str]:
        """``role`` and every role it inherits from (``g`` rows, transitively)."""
        seen = {role}
        todo = [role]
        while todo:
            for parent in self._parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def allows(self, role: str, tenant: str, scope: str) -> bool:
        """Whether ``role`` may use ``scope`` in ``tenant``."""
        return any(
            (dom == "*" or dom == tenant) and obj == scope
            for r in self._roles(role)
            for dom, obj in self._grants.get(r, ())
        )

    def scopes(self, role: str, tenant: str) -> frozenset[str]:
        """Every scope ``role`` has in ``tenant``."""
        return frozenset(
            obj
            for r in self._roles(role)
            for dom, obj in self._grants.get(r, ())
            if dom in ("*", tenant)
        )

    def covers(self, role: str, other: str, tenant: str) -> bool:
        """Whether ``role`` has every scope ``other`` has in ``tenant`` (not weaker)."""
        return self.scopes(other, tenant) <= self.scopes(role, tenant)

    def matrix(self, tenant: str, roles: Iterable[str] = ROLES) -> dict[str, frozenset[str]]:
        """Role -> scopes in ``tenant``; the table docs/server.md prints."""
        return {role: self.scopes(role, tenant) for role in roles}
