"""Access control as data: the shipped Casbin model and policy, and the questions the server asks.

The default policy lives in ``cognitionos/server/policy/`` (``model.conf`` + ``policy.csv``,
RBAC with domains = tenants) and is evaluated by :class:`cognitionos.authz.Enforcer`.
:class:`AccessPolicy` asks it two questions: may ``role`` use ``scope`` in ``tenant``
(:meth:`allows`), and which scopes does a role have there (:meth:`scopes`; used so nobody
creates a key or user stronger than themselves).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cognitionos.authz import Enforcer

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
    "audit:read",
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
    "experiments:read",
    "experiments:write",
    "experiments:assign",
    "pricing:compute",
    "apm:read",
    "apm:ingest",
    "autoscale:compute",
    "dr:plan",
    "dr:backups:read",
    "waf:rules:write",
    "flags:approve",
)


class AccessPolicy:
    """Role x tenant x scope decisions of a Casbin model and policy.

    ``AccessPolicy.default()`` loads the shipped files::

        policy = AccessPolicy.default()
        policy.allows("developer", "t_123", "flags:write")   # True
        policy.allows("viewer", "t_123", "flags:write")      # False
    """

    def __init__(self, model_text: str, policy_text: str) -> None:
        self.enforcer = Enforcer(model_text, policy_text)

    @classmethod
    def default(cls) -> AccessPolicy:
        """The policy shipped in ``cognitionos/server/policy/``."""
        return cls.from_files(POLICY_DIR / "model.conf", POLICY_DIR / "policy.csv")

    @classmethod
    def from_files(cls, model_path: str | Path, policy_path: str | Path) -> AccessPolicy:
        """Read a model ``.conf`` and a policy ``.csv``."""
        return cls(Path(model_path).read_text("utf-8"), Path(policy_path).read_text("utf-8"))

    def allows(self, role: str, tenant: str, scope: str) -> bool:
        """Whether ``role`` may use ``scope`` in ``tenant``."""
        return self.enforcer.enforce(role, tenant, scope)

    def scopes(self, role: str, tenant: str) -> frozenset[str]:
        """Every scope ``role`` has in ``tenant``."""
        rows = self.enforcer.get_implicit_permissions_for_user(role)
        return frozenset(row[2] for row in rows if row[1] in ("*", tenant))

    def covers(self, role: str, other: str, tenant: str) -> bool:
        """Whether ``role`` has every scope ``other`` has in ``tenant`` (not weaker)."""
        return self.scopes(other, tenant) <= self.scopes(role, tenant)

    def matrix(self, tenant: str, roles: Iterable[str] = ROLES) -> dict[str, frozenset[str]]:
        """Role -> scopes in ``tenant``; the table docs/server.md prints."""
        return {role: self.scopes(role, tenant) for role in roles}
