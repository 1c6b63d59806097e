"""Head samplers: decide at span start whether a trace is recorded and exported.

The decisions match the OpenTelemetry SDK's samplers of the same names, so a mixed fleet
(some services on the SDK, some on cognitionos) keeps or drops the same traces:

- ``ALWAYS_ON`` / ``ALWAYS_OFF``;
- :class:`TraceIdRatioBased`: kept when the low 64 bits of the trace id are below
  ``round(ratio * 2**64)``, so every service keeps the same traces at one ratio;
- :class:`ParentBased`: a child follows its parent's sampled flag (one sampler per case:
  remote/local parent, sampled/not), the root decides with ``root``.
"""

from __future__ import annotations

from opentelemetry.trace import SpanContext

from cognitionos.errors import ConfigurationError

__all__ = [
    "ALWAYS_OFF",
    "ALWAYS_ON",
    "AlwaysOff",
    "AlwaysOn",
    "ParentBased",
    "Sampler",
    "TraceIdRatioBased",
]

_LOW64 = (1 << 64) - 1


class Sampler:
    """Base of every sampler: ``should_sample(parent, trace_id, name) -> bool``.

    ``parent`` is the parent's span context, or None for a root span.
    """

    __slots__ = ()

    def should_sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        """True to record and export the span."""
        raise ConfigurationError(f"{type(self).__name__} does not implement should_sample")

    def describe(self) -> str:
        """A short description, as the SDK's ``get_description``."""
        return type(self).__name__


class AlwaysOn(Sampler):
    """Record every span."""

    __slots__ = ()

    def should_sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        """Always True."""
        return True

    def describe(self) -> str:
        """``AlwaysOnSampler``."""
        return "AlwaysOnSampler"


class AlwaysOff(Sampler):
    """Record no span (context still propagates)."""

    __slots__ = ()

    def should_sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        """Always False."""
        return False

    def describe(self) -> str:
        """``AlwaysOffSampler``."""
        return "AlwaysOffSampler"


ALWAYS_ON = AlwaysOn()
ALWAYS_OFF = AlwaysOff()


class TraceIdRatioBased(Sampler):
    """Keep a deterministic share ``ratio`` of traces, decided by the trace id alone."""

    __slots__ = ("bound", "ratio")

    def __init__(self, ratio: float) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ConfigurationError(f"sampling ratio must be in [0, 1], got {ratio!r}")
        self.ratio = float(ratio)
        self.bound = round(self.ratio * (1 << 64))

    def should_sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        """True when the low 64 bits of ``trace_id`` fall below the bound."""
        return trace_id & _LOW64 < self.bound

    def describe(self) -> str:
        """``TraceIdRatioBased{ratio}``."""
        return f"TraceIdRatioBased{{{self.ratio}}}"


class ParentBased(Sampler):
    """Follow the parent's decision; ``root`` decides for spans without a parent."""

    __slots__ = (
        "local_parent_not_sampled",
        "local_parent_sampled",
        "remote_parent_not_sampled",
        "remote_parent_sampled",
        "root",
    )

    def __init__(
        self,
        root: Sampler,
        *,
        remote_parent_sampled: Sampler = ALWAYS_ON,
        remote_parent_not_sampled: Sampler = ALWAYS_OFF,
        local_parent_sampled: Sampler = ALWAYS_ON,
        local_parent_not_sampled: Sampler = ALWAYS_OFF,
    ) -> None:
        for name, value in (
            ("root", root),
            ("remote_parent_sampled", remote_parent_sampled),
            ("remote_parent_not_sampled", remote_parent_not_sampled),
            ("local_parent_sampled", local_parent_sampled),
            ("local_parent_not_sampled", local_parent_not_sampled),
        ):
            if not isinstance(value, Sampler):
                raise ConfigurationError(f"{name} must be a Sampler, got {type(value).__name__}")
        self.root = root
        self.remote_parent_sampled = remote_parent_sampled
        self.remote_parent_not_sampled = remote_parent_not_sampled
        self.local_parent_sampled = local_parent_sampled
        self.local_parent_not_sampled = local_parent_not_sampled

    def should_sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        """Delegate to the sampler for this parent's case."""
        if parent is None or not parent.is_valid:
            delegate = self.root
        elif parent.is_remote:
            delegate = (
                self.remote_parent_sampled
                if parent.trace_flags.sampled
                else self.remote_parent_not_sampled
            )
        else:
            delegate = (
                self.local_parent_sampled
                if parent.trace_flags.sampled
                else self.local_parent_not_sampled
            )
        return delegate.should_sample(parent, trace_id, name)

    def describe(self) -> str:
        """``ParentBased{root:...}``."""
        return f"ParentBased{{root:{self.root.describe()}}}"
