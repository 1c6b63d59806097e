"""Role inheritance per domain, as the ``g`` rows of a policy declare it.

``g, alice, admin`` makes alice a member of admin; ``g, alice, admin, t1``
does so only inside domain ``t1``. Links are transitive up to ``max_depth``
hops (Casbin's default is 10), and breadth-first search visits each name once
per query, so cycles cannot loop.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RoleGraph"]


class RoleGraph:
    """Direct role links per domain (``""`` when the role definition has no domain)."""

    __slots__ = ("_answers", "_links", "max_depth")

    #: memoised has_link answers kept per graph (the enforcer builds a new graph on change)
    MAX_ANSWERS = 65536

    def __init__(self, max_depth: int = 10) -> None:
        self.max_depth = max_depth
        self._links: dict[str, dict[str, set[str]]] = {}
        self._answers: dict[tuple[str, str, str], bool] = {}

    def clear(self) -> None:
        self._links.clear()
        self._answers.clear()

    def add_link(self, name: str, role: str, domain: str = "") -> None:
        self._links.setdefault(domain, {}).setdefault(name, set()).add(role)
        self._answers.clear()

    def remove_link(self, name: str, role: str, domain: str = "") -> None:
        roles = self._links.get(domain, {}).get(name)
        if roles is not None:
            roles.discard(role)
        self._answers.clear()

    def roles(self, name: str, domain: str = "") -> list[str]:
        """Direct roles of ``name`` in ``domain``, sorted."""
        return sorted(self._links.get(domain, {}).get(name, ()))

    def users(self, role: str, domain: str = "") -> list[str]:
        """Names holding ``role`` directly in ``domain``, sorted."""
        links = self._links.get(domain, {})
        return sorted(name for name, roles in links.items() if role in roles)

    def reachable(self, name: str, domain: str = "") -> list[str]:
        """Every role ``name`` holds, directly or through up to ``max_depth`` hops, in BFS order."""
        links = self._links.get(domain, {})
        seen = {name}
        order: list[str] = []
        frontier = [name]
        for _ in range(self.max_depth):
            following: list[str] = []
            for member in frontier:
                for role in sorted(links.get(member, ())):
                    if role not in seen:
                        seen.add(role)
                        order.append(role)
                        following.append(role)
            if not following:
                break
            frontier = following
        return order

    def has_link(self, name: object, role: object, domain: object = "") -> bool:
        """True if ``name`` is ``role`` or reaches it within ``max_depth`` hops in ``domain``."""
        if name == role:
            return True
        if not isinstance(domain, str) or not isinstance(name, str) or not isinstance(role, str):
            return False
        links = self._links.get(domain)
        if not links or name not in links:
            return False
        key = (name, role, domain)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._search(links, name, role)
            if len(self._answers) >= self.MAX_ANSWERS:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _search(self, links: dict[str, set[str]], name: str, role: str) -> bool:
        seen = {name}
        frontier: Iterable[str] = (name,)
        for _ in range(self.max_depth):
            following: list[str] = []
            for member in frontier:
                for parent in links.get(member, ()):
                    if parent == role:
                        return True
                    if parent not in seen:
                        seen.add(parent)
                        following.append(parent)
            if not following:
                return False
            frontier = following
        return False
