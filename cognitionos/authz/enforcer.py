"""The enforcer: a Casbin model plus policy rows answering ``enforce(sub, obj, act)``.

Compilation happens once per model (matchers become closures; see ``_expr``);
enforcement walks the policy rows of the context's policy type in order and
combines the effects of the matching rows as ``[policy_effect]`` says:

=========================================================  ===============================
effect                                                     allowed when
=========================================================  ===============================
``some(where (p.eft == allow))``                           some matching row allows
``!some(where (p.eft == deny))``                           no matching row denies
``some(where (p.eft == allow)) && !some(where (...deny))`` some row allows, none denies
``priority(p.eft) || deny``                                the first matching row (rows
                                                           sorted by ``p.priority``) allows
=========================================================  ===============================

A row's effect is its ``eft`` field (``allow`` / ``deny``; anything else is
ignored) or ``allow`` when the policy definition has no ``eft`` field. With no
rows at all the matcher is evaluated once with empty policy fields, as Casbin does.

Mutations (``add_policy`` ...) build new row tuples and role graphs and swap them
in under a lock, so concurrent ``enforce`` calls always see a consistent policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cognitionos.authz._expr import Compiled, Scope, compile_expression
from cognitionos.authz._functions import BUILTIN_FUNCTIONS
from cognitionos.authz._model import Effect, Model, parse_model
from cognitionos.authz._policy import rows_from
from cognitionos.authz._roles import RoleGraph
from cognitionos.authz.models import EnforceContext
from cognitionos.errors import ConfigurationError

__all__ = ["Enforcer"]

Row = tuple[str, ...]
_DEFAULT = EnforceContext()


class _Compiled:
    __slots__ = ("effect", "eft", "matcher", "ptype", "width")

    def __init__(self, matcher: Compiled, effect: Effect, ptype: str, eft: int | None, width: int):
        self.matcher = matcher
        self.effect = effect
        self.ptype = ptype
        self.eft = eft
        self.width = width


class Enforcer:
    """Casbin-format access control, evaluated by our own safe matcher compiler.

    Example::

        e = Enforcer(MODEL, "p, alice, data1, read")
        e.enforce("alice", "data1", "read")      # True
        e.enforce_ex("bob", "data1", "read")     # (False, ())
    """

    def __init__(
        self,
        model_text: str,
        policy: str | Iterable[Sequence[str]] = (),
        *,
        max_role_depth: int = 10,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        if not isinstance(max_role_depth, int) or max_role_depth < 0:
            raise ConfigurationError(f"max_role_depth must be an int >= 0, got {max_role_depth!r}")
        self.model: Model = parse_model(model_text)
        self._max_depth = max_role_depth
        self._lock = threading.RLock()
        self._functions: dict[str, Callable[..., Any]] = dict(BUILTIN_FUNCTIONS)
        for name, fn in (functions or {}).items():
            self._check_function(name, fn)
            self._functions[name] = fn
        self._rows: dict[str, tuple[Row, ...]] = dict.fromkeys(self.model.policies, ())
        self._rows.update(dict.fromkeys(self.model.roles, ()))
        self._graphs: dict[str, RoleGraph] = {
            k: RoleGraph(max_role_depth) for k in self.model.roles
        }
        for key in self.model.roles:
            self._functions[key] = self._role_function(key)
        self._compiled: dict[EnforceContext, _Compiled] = {}
        self._compile(_DEFAULT) if _DEFAULT.mtype in self.model.matchers else None
        for mkey in self.model.matchers:
            suffix = mkey[1:]
            ctx = EnforceContext.suffix(suffix)
            if all(
                (
                    ctx.rtype in self.model.requests,
                    ctx.ptype in self.model.policies,
                    ctx.etype in self.model.effects,
                )
            ):
                self._compile(ctx)
        self._load(policy, source="policy")

    @classmethod
    def from_files(
        cls, model_path: str | Path, policy_path: str | Path | None = None, **kwargs: Any
    ) -> Enforcer:
        """Build an enforcer from a ``.conf`` model file and an optional CSV policy file."""
        model_text = _read(model_path, "model")
        policy_text = _read(policy_path, "policy") if policy_path is not None else ""
        return cls(model_text, policy_text, **kwargs)

    # -- compilation -------------------------------------------------------------------------

    @staticmethod
    def _check_function(name: object, fn: object) -> None:
        if not isinstance(name, str) or not name.isidentifier() or not callable(fn):
            raise ConfigurationError(f"function {name!r} must be a callable under an identifier")

    def _role_function(self, key: str) -> Callable[..., bool]:
        graphs = self._graphs

        def has_role(name: object, role: object, domain: object = "", *_: object) -> bool:
            return graphs[key].has_link(name, role, domain)

        return has_role

    def _compile(self, ctx: EnforceContext) -> _Compiled:
        model = self.model
        for key, known, section in (
            (ctx.rtype, model.requests, "request_definition"),
            (ctx.ptype, model.policies, "policy_definition"),
            (ctx.etype, model.effects, "policy_effect"),
            (ctx.mtype, model.matchers, "matchers"),
        ):
            if key not in known:
                raise ConfigurationError(f"model has no {key!r} in [{section}]")
        line = model.lines[("matchers", ctx.mtype)]
        scope = Scope(
            ctx.rtype,
            model.requests[ctx.rtype],
            ctx.ptype,
            model.policies[ctx.ptype],
            self._functions,
        )
        matcher = compile_expression(
            model.matchers[ctx.mtype], scope, f"model [matchers] line {line} ({ctx.mtype})"
        )
        tokens = model.policies[ctx.ptype]
        eft = tokens.index("eft") if "eft" in tokens else None
        compiled = _Compiled(matcher, model.effects[ctx.etype], ctx.ptype, eft, len(tokens))
        self._compiled[ctx] = compiled
        return compiled

    def add_function(self, name: str, fn: Callable[..., Any]) -> None:
        """Make ``fn`` callable from matchers as ``name(...)`` (recompiles the matchers)."""
        self._check_function(name, fn)
        with self._lock:
            self._functions[name] = fn
            for ctx in list(self._compiled):
                self._compile(ctx)

    # -- policy storage ----------------------------------------------------------------------

    def _width(self, ptype: str) -> int:
        if ptype in self.model.policies:
            return len(self.model.policies[ptype])
        return self.model.roles[ptype]

    def _validate(self, row: Row, where: str) -> tuple[str, Row]:
        if not row:
            raise ConfigurationError(f"{where}: empty row")
        ptype, fields = row[0], row[1:]
        if ptype not in self._rows:
            known = ", ".join(sorted(self._rows))
            raise ConfigurationError(f"{where}: unknown policy type {ptype!r} (model has {known})")
        width = self._width(ptype)
        if len(fields) != width:
            raise ConfigurationError(
                f"{where}: {ptype} rows have {width} fields, this one has {len(fields)}"
            )
        if ptype in self.model.policies and "priority" in self.model.policies[ptype]:
            value = fields[self.model.policies[ptype].index("priority")]
            try:
                int(value)
            except ValueError:
                raise ConfigurationError(f"{where}: priority {value!r} is not an integer") from None
        return ptype, fields

    def _load(self, policy: str | Iterable[Sequence[str]], *, source: str) -> None:
        staged: dict[str, list[Row]] = {k: list(v) for k, v in self._rows.items()}
        for number, row in rows_from(policy, source=source):
            where = (
                f"{source} line {number}" if isinstance(policy, str) else f"{source} row {number}"
            )
            ptype, fields = self._validate(row, where)
            if fields not in staged[ptype]:
                staged[ptype].append(fields)
        self._install(staged)

    def _install(self, staged: Mapping[str, Sequence[Row]]) -> None:
        with self._lock:
            for ptype, rows in staged.items():
                ordered = list(rows)
                tokens = self.model.policies.get(ptype, ())
                if "priority" in tokens:
                    index = tokens.index("priority")
                    ordered.sort(key=lambda row: int(row[index]))
                self._rows[ptype] = tuple(ordered)
            for gtype in self.model.roles:
                graph = RoleGraph(self._max_depth)
                for fields in self._rows[gtype]:
                    graph.add_link(fields[0], fields[1], fields[2] if len(fields) > 2 else "")
                self._graphs[gtype] = graph

    def _change(self, ptype: str, params: tuple[Any, ...], add: bool) -> bool:
        fields = _params(params)
        _, fields = self._validate((ptype, *fields), f"{'add' if add else 'remove'} {ptype}")
        with self._lock:
            rows = list(self._rows[ptype])
            present = fields in rows
            if present == add:
                return False
            if add:
                rows.append(fields)
            else:
                rows.remove(fields)
            staged = dict(self._rows)
            staged[ptype] = tuple(rows)
            self._install(staged)
            return True

    def add_policy(self, *params: Any) -> bool:
        """Add a ``p`` row (fields as arguments or one sequence); False if it was already there."""
        return self._change("p", params, True)

    def remove_policy(self, *params: Any) -> bool:
        """Remove a ``p`` row; False if it was not there."""
        return self._change("p", params, False)

    def add_named_policy(self, ptype: str, *params: Any) -> bool:
        """Add a row of policy type ``ptype`` (``p2``...)."""
        return self._change(ptype, params, True)

    def remove_named_policy(self, ptype: str, *params: Any) -> bool:
        """Remove a row of policy type ``ptype``."""
        return self._change(ptype, params, False)

    def add_grouping_policy(self, *params: Any) -> bool:
        """Add a ``g`` row (``user, role`` or ``user, role, domain``)."""
        return self._change("g", params, True)

    def remove_grouping_policy(self, *params: Any) -> bool:
        """Remove a ``g`` row."""
        return self._change("g", params, False)

    def add_named_grouping_policy(self, gtype: str, *params: Any) -> bool:
        """Add a row of role type ``gtype`` (``g2``...)."""
        return self._change(gtype, params, True)

    def remove_named_grouping_policy(self, gtype: str, *params: Any) -> bool:
        """Remove a row of role type ``gtype``."""
        return self._change(gtype, params, False)

    def load_policy(self, policy: str | Iterable[Sequence[str]]) -> None:
        """Replace every row with those of ``policy`` (CSV text or rows starting with the type)."""
        empty: dict[str, tuple[Row, ...]] = dict.fromkeys(self._rows, ())
        saved = self._rows
        self._rows = empty
        try:
            self._load(policy, source="policy")
        except ConfigurationError:
            self._rows = saved
            raise

    def get_policy(self, ptype: str = "p") -> list[Row]:
        """The rows of ``ptype`` in evaluation order."""
        self._known(ptype)
        return list(self._rows[ptype])

    def get_grouping_policy(self, gtype: str = "g") -> list[Row]:
        """The rows of role type ``gtype``."""
        self._known(gtype)
        return list(self._rows[gtype])

    def has_policy(self, *params: Any) -> bool:
        """True if the ``p`` row is present."""
        return _params(params) in self._rows.get("p", ())

    def to_csv(self) -> str:
        """Every row as CSV policy text that this class (and Casbin's file adapter) reads back."""
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for ptype in sorted(self._rows):
            for row in self._rows[ptype]:
                writer.writerow((ptype, *row))
        return out.getvalue()

    def _known(self, ptype: str) -> None:
        if ptype not in self._rows:
            raise ConfigurationError(f"unknown policy type {ptype!r}")

    # -- roles -------------------------------------------------------------------------------

    def get_roles_for_user(self, user: str, gtype: str = "g") -> list[str]:
        """Direct roles of ``user`` (no domain)."""
        self._known(gtype)
        return self._graphs[gtype].roles(user)

    def get_roles_for_user_in_domain(self, user: str, domain: str, gtype: str = "g") -> list[str]:
        """Direct roles of ``user`` inside ``domain``."""
        self._known(gtype)
        return self._graphs[gtype].roles(user, domain)

    def get_users_for_role_in_domain(self, role: str, domain: str, gtype: str = "g") -> list[str]:
        """Names that hold ``role`` directly inside ``domain``."""
        self._known(gtype)
        return self._graphs[gtype].users(role, domain)

    def get_implicit_roles_for_user(
        self, user: str, domain: str = "", gtype: str = "g"
    ) -> list[str]:
        """Every role ``user`` holds in ``domain``, through inheritance too (breadth-first)."""
        self._known(gtype)
        return self._graphs[gtype].reachable(user, domain)

    def get_implicit_permissions_for_user(
        self, user: str, domain: str | None = None, ptype: str = "p"
    ) -> list[Row]:
        """The ``ptype`` rows whose subject is ``user`` or one of its implicit roles.

        With ``domain`` only rows of that domain count (the ``dom`` field of the
        policy definition, else its second field) and roles are those held there.
        """
        self._known(ptype)
        tokens = self.model.policies[ptype]
        subjects = [user]
        if "g" in self._graphs:
            subjects += self.get_implicit_roles_for_user(user, domain or "")
        dom_index = tokens.index("dom") if "dom" in tokens else 1
        rows = self._rows[ptype]
        out: list[Row] = []
        for subject in subjects:
            for row in rows:
                if row[0] == subject and (domain is None or row[dom_index] == domain):
                    out.append(row)
        return out

    # -- enforcement -------------------------------------------------------------------------

    def enforce(self, *rvals: Any) -> bool:
        """True if the request (one value per ``r`` field) is allowed."""
        return self._enforce(_DEFAULT, rvals)[0]

    def enforce_ex(self, *rvals: Any) -> tuple[bool, Row]:
        """The decision and the policy row that decided it (``()`` when no single row did)."""
        return self._enforce(_DEFAULT, rvals)

    def enforce_with(self, context: EnforceContext, *rvals: Any) -> tuple[bool, Row]:
        """Like :meth:`enforce_ex` with other definitions (``EnforceContext.suffix("2")``)."""
        compiled = self._compiled.get(context)
        if compiled is None:
            with self._lock:
                compiled = self._compile(context)
        return self._enforce(context, rvals, compiled)

    def _enforce(
        self, ctx: EnforceContext, rvals: tuple[Any, ...], compiled: _Compiled | None = None
    ) -> tuple[bool, Row]:
        if compiled is None:
            compiled = self._compiled.get(ctx)
            if compiled is None:
                raise ConfigurationError(f"model has no matcher {ctx.mtype!r}")
        width = len(self.model.requests[ctx.rtype])
        if len(rvals) != width:
            raise ConfigurationError(
                f"request needs {width} values ({', '.join(self.model.requests[ctx.rtype])}),"
                f" got {len(rvals)}"
            )
        matcher, effect, eft = compiled.matcher, compiled.effect, compiled.eft
        rows = self._rows[compiled.ptype]
        if not rows:
            matched = _truth(matcher(rvals, ("",) * compiled.width), ctx)
            return (True if effect is Effect.DENY_OVERRIDE else matched), ()
        allow_row: Row | None = None
        for row in rows:
            if not _truth(matcher(rvals, row), ctx):
                continue
            verdict = "allow" if eft is None else row[eft]
            if verdict == "allow":
                if effect is Effect.ALLOW_OVERRIDE or effect is Effect.PRIORITY:
                    return True, row
                if allow_row is None:
                    allow_row = row
            elif verdict == "deny" and effect is not Effect.ALLOW_OVERRIDE:
                return False, row
        if effect is Effect.DENY_OVERRIDE:
            return True, ()
        if effect is Effect.ALLOW_AND_DENY and allow_row is not None:
            return True, allow_row
        return False, ()


def _truth(value: Any, ctx: EnforceContext) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    raise ConfigurationError(
        f"matcher {ctx.mtype!r} must give a boolean or a number, got {value!r}"
    )


def _params(params: tuple[Any, ...]) -> Row:
    if len(params) == 1 and not isinstance(params[0], str):
        params = tuple(params[0])
    if not params or not all(isinstance(v, str) for v in params):
        raise ConfigurationError(f"policy fields must be strings, got {params!r}")
    return tuple(v.strip() for v in params)


def _read(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} file {str(path)!r}: {exc}") from None
