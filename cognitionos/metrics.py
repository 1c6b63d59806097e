"""Engine counters that cost nothing to keep and are read only when scraped.

Each counter is an ``itertools.count``: advancing it is one C call, atomic
under the GIL, with no lock and no ``labels()`` lookup on the hot path. The
Prometheus adapter (:mod:`cognitionos.integrations.prometheus`) reads the
values at scrape time.

    counters = CounterSet("decisions", ("allowed", "refused"))
    counters.inc("allowed")
    counters.labelled("flag", "variant").inc(("new-checkout", "on"))
    counters.snapshot()   # {"allowed": 1, "refused": 0}

Gauges (values that go up and down, e.g. the age of the last backup) are a
:class:`GaugeSet`: one callable returning every value, called only at scrape time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

__all__ = ["CounterSet", "GaugeSet", "LabelledCounter"]


def _read(counter: itertools.count[int]) -> int:
    # a count's reduce form carries its next value; reading it does not advance it
    return int(counter.__reduce__()[1][0])


class LabelledCounter:
    """A counter family keyed by a tuple of label values, created on first use."""

    __slots__ = ("_counts", "help", "labels")

    def __init__(self, labels: tuple[str, ...], help: str = "") -> None:
        self.labels = labels
        self.help = help
        self._counts: dict[tuple[str, ...], itertools.count[int]] = {}

    def inc(self, values: tuple[str, ...]) -> None:
        """Add one for this combination of label values."""
        counter = self._counts.get(values)
        if counter is None:
            # setdefault is atomic: two threads racing here share one counter
            counter = self._counts.setdefault(values, itertools.count())
        next(counter)

    def snapshot(self) -> dict[tuple[str, ...], int]:
        """Current totals per label combination."""
        return {values: _read(c) for values, c in list(self._counts.items())}


class CounterSet:
    """Monotonic totals of one engine instance.

    ``name`` prefixes the metric names; ``names`` are the plain counters. Hot
    paths keep the bound incrementer from :meth:`incrementer` and call it.
    """

    __slots__ = ("_counters", "_help", "_labelled", "name")

    def __init__(
        self, name: str, names: Iterable[str], *, help: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self._counters = {n: itertools.count() for n in names}
        self._help = dict(help or {})
        self._labelled: dict[str, LabelledCounter] = {}

    def inc(self, name: str) -> None:
        """Add one to ``name``."""
        next(self._counters[name])

    def incrementer(self, name: str) -> Callable[[], int]:
        """The fastest way to count ``name``: a bound method to call on the hot path."""
        return self._counters[name].__next__

    def labelled(self, name: str, *labels: str, help: str = "") -> LabelledCounter:
        """A labelled counter family ``name`` (created once, then returned as is)."""
        family = self._labelled.get(name)
        if family is None:
            family = self._labelled.setdefault(name, LabelledCounter(labels, help))
        return family

    def help_for(self, name: str) -> str:
        """The help text of counter ``name``."""
        return self._help.get(name, "")

    def snapshot(self) -> dict[str, int]:
        """Current totals of the plain counters."""
        return {n: _read(c) for n, c in self._counters.items()}

    def families(self) -> dict[str, LabelledCounter]:
        """The labelled counter families by name."""
        return dict(self._labelled)


class GaugeSet:
    """Point-in-time values of one engine instance, computed when read.

    ``read`` returns ``{gauge name: value}``; it runs at scrape time only, so nothing is
    kept up to date in between::

        gauges = GaugeSet("dr", lambda: {"last_backup_age_seconds": 42.0})
        gauges.snapshot()   # {"last_backup_age_seconds": 42.0}
    """

    __slots__ = ("_help", "_read", "name")

    def __init__(
        self,
        name: str,
        read: Callable[[], dict[str, float]],
        *,
        help: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._read = read
        self._help = dict(help or {})

    def help_for(self, name: str) -> str:
        """The help text of gauge ``name``."""
        return self._help.get(name, "")

    def snapshot(self) -> dict[str, float]:
        """Current values (calls ``read``)."""
        return {k: float(v) for k, v in self._read().items()}
