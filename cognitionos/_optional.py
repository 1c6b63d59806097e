"""Lazy imports of heavy or optional dependencies.

``import cognitionos`` and any engine package stay light: numpy, scipy,
sqlalchemy, redis and friends are imported inside the functions that need
them, through :func:`require`, which names the pip extra when a package is
missing::

    sa = require("sqlalchemy", extra="sql")
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cognitionos.errors import MissingDependency

__all__ = ["require"]


#: import name -> the distribution to ``pip install`` where the two differ
_DISTRIBUTIONS = {"yaml": "PyYAML", "re2": "google-re2", "psycopg": "psycopg[binary]"}


def require(
    module: str,
    *,
    extra: str | None = None,
    purpose: str | None = None,
    package: str | None = None,
) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra that provides it.

    Without ``extra`` the hint names the distribution to install: ``package`` if given, else
    the known distribution of that import name (``yaml`` -> ``PyYAML``), else the module name.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but one of *its* imports failed: show the real error
        what = f" for {purpose}" if purpose else ""
        dist = package or _DISTRIBUTIONS.get(top, top)
        hint = f"pip install 'cognitionos[{extra}]'" if extra else f"pip install {dist}"
        raise MissingDependency(f"{module!r} is required{what}; install it with: {hint}") from exc
