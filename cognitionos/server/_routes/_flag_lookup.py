"""Reading one flag of a tenant, shared by ``/v1/flags`` and its change requests."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cognitionos.flags import FlagDefinition
from cognitionos.server._http import Principal, state_of

__all__ = ["current_flag", "flag_doc"]


def current_flag(request: Request, p: Principal, key: str) -> FlagDefinition | None:
    """The tenant's flag ``key`` as stored now (the engine re-reads the store first), or None."""
    engine = state_of(request).flags(p.tenant_id)
    engine.refresh()
    return next((f for f in engine.definitions.flags if f.key == key), None)


def flag_doc(flag: FlagDefinition) -> dict[str, Any]:
    """The JSON form of a definition, as the API returns it and ETags are computed over."""
    doc: dict[str, Any] = flag.model_dump(mode="json")
    return doc
