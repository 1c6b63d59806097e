"""OpenFeature provider: a thin mapping from the OpenFeature API onto :meth:`FlagEngine.evaluate`.

Needs the ``openfeature`` extra (``openfeature-sdk``); importing this module
without it raises :class:`~cognitionos.errors.MissingDependency`::

    from openfeature import api
    api.set_provider(CognitionProvider(engine))
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("u1"))

The evaluation context's targeting key is passed as ``targetingKey`` (what
flagd targeting reads) and as the attributes named in
``targeting_key_attributes`` (``id`` by default, the GrowthBook hash
attribute; use ``("userId",)`` for Unleash payloads). A flag's static
``metadata`` (flagd ``metadata``) is returned as ``flag_metadata``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cognitionos._optional import require
from cognitionos.flags import ErrorCode, Evaluation, FlagEngine, Reason

require("openfeature", extra="openfeature", purpose="the OpenFeature provider")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode as OFErrorCode  # noqa: E402
from openfeature.flag_evaluation import FlagResolutionDetails  # noqa: E402
from openfeature.provider import AbstractProvider, Metadata  # noqa: E402

__all__ = ["CognitionProvider"]

_ERRORS = {
    ErrorCode.FLAG_NOT_FOUND: OFErrorCode.FLAG_NOT_FOUND,
    ErrorCode.TYPE_MISMATCH: OFErrorCode.TYPE_MISMATCH,
    ErrorCode.INVALID_CONTEXT: OFErrorCode.INVALID_CONTEXT,
    ErrorCode.TARGETING_KEY_MISSING: OFErrorCode.TARGETING_KEY_MISSING,
    ErrorCode.PARSE_ERROR: OFErrorCode.PARSE_ERROR,
    ErrorCode.GENERAL: OFErrorCode.GENERAL,
    ErrorCode.CYCLIC_PREREQUISITE: OFErrorCode.GENERAL,
}


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _is_str(v: Any) -> bool:
    return type(v) is str


def _is_int(v: Any) -> bool:
    return type(v) is int or (type(v) is float and v.is_integer())


def _is_float(v: Any) -> bool:
    return type(v) in (int, float)


def _is_object(v: Any) -> bool:
    return isinstance(v, (Mapping, list, tuple))


class CognitionProvider(AbstractProvider):
    """OpenFeature provider (sync and async resolution) backed by a :class:`FlagEngine`."""

    def __init__(
        self, engine: FlagEngine, *, targeting_key_attributes: Sequence[str] = ("id",)
    ) -> None:
        super().__init__()
        self._engine = engine
        self._key_attrs = tuple(targeting_key_attributes)
        # flag metadata per key, rebuilt when the engine swaps in a new snapshot
        self._meta_for: Any = None
        self._meta: dict[str, dict[str, Any]] = {}

    def get_metadata(self) -> Metadata:
        """Provider name shown by OpenFeature."""
        return Metadata(name="cognitionos")

    def _attributes(self, ctx: EvaluationContext | None) -> dict[str, Any]:
        if ctx is None:
            return {}
        attrs = dict(ctx.attributes)
        if ctx.targeting_key is not None:
            attrs.setdefault("targetingKey", ctx.targeting_key)
            for name in self._key_attrs:
                attrs.setdefault(name, ctx.targeting_key)
        return attrs

    def _flag_metadata(self, key: str) -> dict[str, Any]:
        snap = self._engine.snapshot
        if self._meta_for is not snap:
            self._meta = {f.key: dict(f.metadata) for f in snap.definitions.flags if f.metadata}
            self._meta_for = snap
        return dict(self._meta.get(key, {}))

    def _resolve(
        self, key: str, default: Any, ctx: EvaluationContext | None, check: Any, cast: Any = None
    ) -> FlagResolutionDetails[Any]:
        # flags that ignore attributes skip building them (unless evaluations are counted)
        engine = self._engine
        static = engine.snapshot.static(key) if engine._stats is None else None
        if static is not None and static.value is not None:
            ev: Evaluation = static
        else:
            ev = engine.evaluate(key, self._attributes(ctx), default)
        if ev.error_code is not None:
            message = ev.error_message
            if ev.error_code is ErrorCode.FLAG_NOT_FOUND:
                message = f"flag {key} not found"
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR.value,
                error_code=_ERRORS.get(ev.error_code, OFErrorCode.GENERAL),
                error_message=message,
            )
        value = ev.value
        if not check(value):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR.value,
                error_code=OFErrorCode.TYPE_MISMATCH,
                error_message=f"flag {key!r} is {type(value).__name__}, not the requested type",
            )
        meta = self._flag_metadata(key)
        if ev.rule_id:
            meta["ruleId"] = ev.rule_id
        payload = ev.metadata.get("payload") if ev.metadata else None
        if isinstance(payload, Mapping) and isinstance(
            payload.get("value"), (str, int, float, bool)
        ):
            meta["payload"] = payload["value"]
        return FlagResolutionDetails(
            value=cast(value) if cast is not None else value,
            reason=ev.reason.value,
            variant=ev.variant,
            flag_metadata=meta,
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag."""
        return self._resolve(flag_key, default_value, evaluation_context, _is_bool)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """Resolve a string flag."""
        return self._resolve(flag_key, default_value, evaluation_context, _is_str)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """Resolve an integer flag (whole floats from JSON count as integers)."""
        return self._resolve(flag_key, default_value, evaluation_context, _is_int, int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Resolve a float flag (integers are widened)."""
        return self._resolve(flag_key, default_value, evaluation_context, _is_float, float)

    def resolve_object_details(  # type: ignore[override]
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        """Resolve a JSON object or list flag."""
        return self._resolve(flag_key, default_value, evaluation_context, _is_object)

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Async twin of :meth:`resolve_boolean_details` (evaluation is CPU-only)."""
        return self.resolve_boolean_details(flag_key, default_value, evaluation_context)

    async def resolve_string_details_async(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """Async twin of :meth:`resolve_string_details`."""
        return self.resolve_string_details(flag_key, default_value, evaluation_context)

    async def resolve_integer_details_async(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """Async twin of :meth:`resolve_integer_details`."""
        return self.resolve_integer_details(flag_key, default_value, evaluation_context)

    async def resolve_float_details_async(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Async twin of :meth:`resolve_float_details`."""
        return self.resolve_float_details(flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(  # type: ignore[override]
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        """Async twin of :meth:`resolve_object_details`."""
        return self.resolve_object_details(flag_key, default_value, evaluation_context)
