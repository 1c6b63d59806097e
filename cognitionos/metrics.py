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

Latency distributions are histogram families: the engine registers a function that
returns its mergeable distributions (``LatencySketch`` objects, or anything with
``count``, ``sum``, ``count_at_most(bound)`` and ``quantile(q)``) and the collector turns
them into Prometheus ``le`` buckets and quantiles at scrape time; the request path keeps
recording into its sketches and never touches a metric object.

    counters.histogram("request_duration_seconds", "route", read=recorder.totals)
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from cognitionos.errors import ConfigurationError

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_QUANTILES",
    "CounterSet",
    "Distribution",
    "GaugeSet",
    "HistogramFamily",
    "LabelledCounter",
]

#: Prometheus client's default histogram bounds (seconds)
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
DEFAULT_QUANTILES = (0.5, 0.9, 0.99, 0.999)


class Distribution(Protocol):
    """What a histogram family reads: a mergeable distribution such as ``LatencySketch``."""

    @property
    def count(self) -> int:
        """How many values."""
        ...

    @property
    def sum(self) -> float:
        """Their sum."""
        ...

    def count_at_most(self, bound: float) -> int:
        """How many values are <= ``bound``."""
        ...

    def quantile(self, q: float) -> float:
        """The ``q``-quantile."""
        ...


class HistogramFamily:
    """A histogram family computed at scrape time from distributions keyed by label values.

    ``read()`` returns ``{label values: distribution}``; the distributions must be
    cumulative over the process's life (Prometheus histograms only grow).
    """

    __slots__ = ("buckets", "help", "labels", "quantiles", "read")

    def __init__(
        self,
        labels: tuple[str, ...],
        read: Callable[[], Mapping[tuple[str, ...], Distribution]],
        *,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
        help: str = "",
    ) -> None:
        if not callable(read):
            raise ConfigurationError("read must be a callable returning {labels: distribution}")
        self.labels = labels
        self.read = read
        self.buckets = tuple(sorted(float(b) for b in buckets))
        if not self.buckets or any(b != b or b == float("inf") for b in self.buckets):
            raise ConfigurationError(f"buckets must be finite numbers, got {self.buckets!r}")
        self.quantiles = tuple(float(q) for q in quantiles)
        for q in self.quantiles:
            if not 0 <= q <= 1:
                raise ConfigurationError(f"quantiles must be in [0, 1], got {q!r}")
        self.help = help

    def snapshot(self) -> dict[tuple[str, ...], Distribution]:
        """The distributions now, by label values (empty ones left out)."""
        return {k: d for k, d in self.read().items() if d.count}


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

    __slots__ = ("_counters", "_help", "_histograms", "_labelled", "name")

    def __init__(
        self, name: str, names: Iterable[str], *, help: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self._counters = {n: itertools.count() for n in names}
        self._help = dict(help or {})
        self._labelled: dict[str, LabelledCounter] = {}
        self._histograms: dict[str, HistogramFamily] = {}

    def inc(self, name: str) -> None:
        """Add one to ``name``."""
        next(self._counters[name])

    def add(self, name: str, amount: int) -> None:
        """Add ``amount`` (an int >= 0) to ``name`` in one call (a C loop, no Python one)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ConfigurationError(f"counter increments must be ints >= 0, got {amount!r}")
        collections.deque(itertools.islice(self._counters[name], amount), maxlen=0)

    def incrementer(self, name: str) -> Callable[[], int]:
        """The fastest way to count ``name``: a bound method to call on the hot path."""
        return self._counters[name].__next__

    @classmethod
    def merged(
        cls,
        name: str,
        sets: Iterable[CounterSet],
        *,
        names: Iterable[str] = (),
        help: dict[str, str] | None = None,
    ) -> CounterSet:
        """One set holding the sums of ``sets`` (e.g. one engine per tenant), for a scrape.

        Plain counters and labelled families are summed; ``names`` are counters present
        even when ``sets`` is empty (so their series exist at 0). Histogram families are
        not carried (a sum of sketches belongs to the sketches' own merge).
        """
        sets = list(sets)
        all_names = dict.fromkeys(names)
        merged_help = dict(help or {})
        for cs in sets:
            all_names.update(dict.fromkeys(cs._counters))
            for key, text in cs._help.items():
                merged_help.setdefault(key, text)
        out = cls(name, all_names, help=merged_help)
        for cs in sets:
            for key, value in cs.snapshot().items():
                out.add(key, value)
            for key, family in cs.families().items():
                target = out.labelled(key, *family.labels, help=family.help)
                for values, value in family.snapshot().items():
                    total = _read(target._counts[values]) if values in target._counts else 0
                    target._counts[values] = itertools.count(total + value)
        return out

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

    def histogram(
        self,
        name: str,
        *labels: str,
        read: Callable[[], Mapping[tuple[str, ...], Distribution]],
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
        help: str = "",
    ) -> HistogramFamily:
        """Register histogram family ``name`` read at scrape time (see :class:`HistogramFamily`)."""
        family = HistogramFamily(labels, read, buckets=buckets, quantiles=quantiles, help=help)
        self._histograms[name] = family
        return family

    def histograms(self) -> dict[str, HistogramFamily]:
        """The histogram families by name."""
        return dict(self._histograms)


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
