"""Test helpers shipped with cognitionos, for its own tests and for yours.

- :mod:`cognitionos.testing.contract` - abstract test classes a storage backend
  subclasses to prove it honours the store contract (the fsspec pattern).
- :func:`shared_data` - locate the conformance suites and data sets kept beside
  the checkout (never inside the package).
"""

from __future__ import annotations

from cognitionos.testing._data import SharedDataMissing, shared_data

__all__ = ["SharedDataMissing", "shared_data"]
