from __future__ import annotations

import os
from pathlib import Path

from cognitionos.errors import ConfigurationError

__all__ = ["SharedDataMissing", "shared_data"]


class SharedDataMissing(ConfigurationError, FileNotFoundError):
    """The shared conformance data folder, or a file in it, is not on this machine."""


def _candidates() -> list[Path]:
    env = os.environ.get("COGNITIONOS_SHARED_DATA")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve()
    # <checkout>/cognitionos/testing/_data.py -> <checkout>/../shared/data
    found = [p.parent / "shared" / "data" for p in here.parents]
    return [Path.cwd().parent / "shared" / "data", *found]


def shared_data(relative: str = "") -> Path:
    """Path of ``relative`` inside the shared data folder.

    The folder is ``$COGNITIONOS_SHARED_DATA`` if set, else ``../shared/data``
    beside the checkout. Raises :class:`SharedDataMissing` when it is absent, so
    a test can turn that into a clean skip::

        path = shared_data("flags/growthbook_cases.json")
    """
    for root in _candidates():
        if root.is_dir():
            target = root / relative
            if target.exists():
                return target
            raise SharedDataMissing(f"{relative!r} not found under shared data folder {root}")
    raise SharedDataMissing(
        "shared data folder not found: set COGNITIONOS_SHARED_DATA or place it at ../shared/data"
    )
