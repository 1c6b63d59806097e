"""Access control as data: Casbin's model and policy format, evaluated by our own enforcer.

A model (``.conf`` text) declares the request and policy fields, role
inheritance (optionally per domain, i.e. per tenant), how matching rows'
effects combine, and a matcher expression; a policy lists the rows. Matchers are
parsed by a small safe parser (never Python's ``eval``) and compiled once::

    from cognitionos.authz import Enforcer
    e = Enforcer(MODEL_TEXT, "p, alice, data1, read")
    e.enforce("alice", "data1", "read")   # True
"""

from __future__ import annotations

from cognitionos.authz._functions import (
    glob_match,
    ip_match,
    key_match,
    key_match2,
    key_match3,
    key_match4,
    key_match5,
    regex_match,
)
from cognitionos.authz._model import Effect, Model, parse_model
from cognitionos.authz.enforcer import Enforcer
from cognitionos.authz.models import EnforceContext

__all__ = [
    "Effect",
    "EnforceContext",
    "Enforcer",
    "Model",
    "glob_match",
    "ip_match",
    "key_match",
    "key_match2",
    "key_match3",
    "key_match4",
    "key_match5",
    "parse_model",
    "regex_match",
]
