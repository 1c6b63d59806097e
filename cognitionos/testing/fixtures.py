"""pytest fixtures shipped for tests of cognitionos-based code and third-party backends.

Import the ones you need into a test module or ``conftest.py`` (pytest finds fixtures by
name in the module namespace), or list this module as a plugin::

    from cognitionos.testing.fixtures import clock

    pytest_plugins = ["cognitionos.testing.fixtures"]   # in the root conftest.py, instead

The storage contract classes in :mod:`cognitionos.testing.contract` expect a ``clock``
fixture for backends that keep time in this process; this is the one they are written for.
"""

from __future__ import annotations

import pytest

from cognitionos.clock import ManualClock

__all__ = ["REALISTIC_EPOCH", "clock"]

#: the ManualClock's start: a realistic epoch second, so TTL and window arithmetic on
#: wall-clock values is exercised (not a suspicious 0)
REALISTIC_EPOCH = 1_700_000_000


@pytest.fixture
def clock() -> ManualClock:
    """A ManualClock at a realistic epoch; ``clock.advance(seconds)`` moves it."""
    return ManualClock(start=REALISTIC_EPOCH)
