"""Value objects of the authz engine."""

from __future__ import annotations

import attrs

__all__ = ["EnforceContext"]


@attrs.frozen(slots=True)
class EnforceContext:
    """Which request, policy, effect and matcher definitions one enforcement uses.

    ``EnforceContext()`` is ``r``/``p``/``e``/``m``; ``EnforceContext.suffix("2")``
    is ``r2``/``p2``/``e2``/``m2``, as Casbin's ``NewEnforceContext("2")``.
    """

    rtype: str = "r"
    ptype: str = "p"
    etype: str = "e"
    mtype: str = "m"

    @classmethod
    def suffix(cls, suffix: str) -> EnforceContext:
        """The context whose four keys all end in ``suffix``."""
        return cls("r" + suffix, "p" + suffix, "e" + suffix, "m" + suffix)
