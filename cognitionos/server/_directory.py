"""Tenants, users, API keys, idempotency records and rate-limit policies in the SQL database.

Plain SQLAlchemy Core on the engine of the server's SQL store. Every method that reads or
writes tenant data takes the tenant id and filters on it: a caller can reach only rows of
the tenant its key belongs to. Updates carry the version the caller saw (optimistic
concurrency); a stale version raises :class:`StaleVersion`.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cognitionos.clock import Clock
from cognitionos.server._keys import (
    ParsedToken,
    new_token,
    parse_token,
    token_hash,
    verify_secret,
)
from cognitionos.server._tables import build_tables

__all__ = ["Directory", "NotFound", "Conflict", "StaleVersion", "Page", "decode_cursor"]

#: ``last_used_at`` is written at most this often per key (no write per request)
TOUCH_INTERVAL_NS = 60 * 1_000_000_000


class NotFound(Exception):
    """No such row in this tenant."""


class Conflict(Exception):
    """A unique value is taken (e.g. an e-mail address in the tenant)."""


class StaleVersion(Exception):
    """The row changed since the caller read it."""


Page = tuple[list[dict[str, Any]], str | None]


def encode_cursor(value: str) -> str:
    """Opaque cursor for the last id of a page."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a cursor stands for (``None`` for the first page); bad cursors raise ValueError."""
    if not cursor:
        return None
    try:
        raw = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        return base64.b64decode(raw, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


#: how long a process reuses a rate-limit policy it read for checks (see policy_for_checks)
POLICY_CACHE_SECONDS = 1.0
#: policies cached per process at most (the cache starts over when full)
POLICY_CACHE_SIZE = 10_000
_monotonic = time.monotonic


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 20 random url-safe characters."""
    return f"{prefix}_{secrets.token_urlsafe(15)}"


class Directory:
    """Data access for the server's own tables (see :mod:`cognitionos.server._tables`)."""

    def __init__(self, engine: Any, clock: Clock) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.engine = engine
        self.clock = clock
        self.t = build_tables(sa.MetaData())
        # the statements of the per-request lookups, built once (bound values per call)
        keys, policies = self.t["keys"], self.t["policies"]
        self._key_by_id = sa.select(keys).where(keys.c.key_id == sa.bindparam("key_id"))
        # (tenant, policy) -> (monotonic deadline, row), see policy_for_checks
        self._policy_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._policy_by_name = sa.select(policies).where(
            (policies.c.tenant_id == sa.bindparam("tenant_id"))
            & (policies.c.name == sa.bindparam("name"))
        )

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A connection for single-statement reads: no transaction of their own.

        A SELECT is atomic by itself; on SQLite a transaction would take the write lock
        (the store opens ``BEGIN IMMEDIATE``) and serialise every request's key lookup.
        """
        with self.engine.connect() as conn:
            yield conn.execution_options(cos_readonly=True)

    def _now(self) -> int:
        return self.clock.time_ns()

    def _page(self, table: Any, id_col: str, where: Any, limit: int, cursor: str | None) -> Page:
        sa = self.sa
        col = table.c[id_col]
        q = sa.select(table)
        if where is not None:
            q = q.where(where)
        after = decode_cursor(cursor)
        if after is not None:
            q = q.where(col > after)
        q = q.order_by(col).limit(limit + 1)
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1][id_col]) if more and rows else None)

    def _one(self, q: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(q, params).first()
        if row is None:
            raise NotFound
        return dict(row._mapping)

    def _update(self, table: Any, where: Any, version: int, values: dict[str, Any]) -> None:
        sa = self.sa
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.version).where(where)).scalar_one_or_none()
            if current is None:
                raise NotFound
            if current != version:
                raise StaleVersion
            conn.execute(
                sa.update(table).where(where).values(**values, version=table.c.version + 1)
            )

    # -- tenants -------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when no tenant exists yet (first start)."""
        with self._read() as conn:
            return (
                conn.execute(self.sa.select(self.t["tenants"].c.tenant_id).limit(1)).first() is None
            )

    def create_tenant(self, name: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Insert a tenant; ``tenant_id`` defaults to a new random id."""
        row = {
            "tenant_id": tenant_id or new_id("t"),
            "name": name,
            "created_at": self._now(),
            "version": 1,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(self.sa.insert(self.t["tenants"]).values(**row))
        except self.sa.exc.IntegrityError as exc:
            raise Conflict(f"tenant {row['tenant_id']!r} exists") from exc
        return row

    def get_tenant(self, tenant_id: str) -> dict[str, Any]:
        """One tenant or :class:`NotFound`."""
        t = self.t["tenants"]
        return self._one(self.sa.select(t).where(t.c.tenant_id == tenant_id))

    def list_tenants(self, limit: int, cursor: str | None, only: str | None = None) -> Page:
        """Every tenant (``only`` restricts the listing to that one tenant)."""
        t = self.t["tenants"]
        where = t.c.tenant_id == only if only is not None else None
        return self._page(t, "tenant_id", where, limit, cursor)

    def update_tenant(self, tenant_id: str, version: int, name: str) -> dict[str, Any]:
        """Rename a tenant if it is still at ``version``."""
        t = self.t["tenants"]
        self._update(t, t.c.tenant_id == tenant_id, version, {"name": name})
        return self.get_tenant(tenant_id)

    # -- users ---------------------------------------------------------------------------------

    def create_user(self, tenant_id: str, email: str, role: str) -> dict[str, Any]:
        """Insert a user; the e-mail address is unique within the tenant."""
        row = {
            "user_id": new_id("u"),
            "tenant_id": tenant_id,
            "email": email,
            "role": role,
            "created_at": self._now(),
            "version": 1,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(self.sa.insert(self.t["users"]).values(**row))
        except self.sa.exc.IntegrityError as exc:
            raise Conflict(f"a user with e-mail {email!r} exists in this tenant") from exc
        return row

    def _user_where(self, tenant_id: str, user_id: str) -> Any:
        u = self.t["users"]
        return (u.c.tenant_id == tenant_id) & (u.c.user_id == user_id)

    def get_user(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        """One user of the tenant or :class:`NotFound`."""
        u = self.t["users"]
        return self._one(self.sa.select(u).where(self._user_where(tenant_id, user_id)))

    def list_users(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """The tenant's users by id."""
        u = self.t["users"]
        return self._page(u, "user_id", u.c.tenant_id == tenant_id, limit, cursor)

    def update_user(
        self, tenant_id: str, user_id: str, version: int, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a user's fields if it is still at ``version``."""
        try:
            self._update(self.t["users"], self._user_where(tenant_id, user_id), version, values)
        except self.sa.exc.IntegrityError as exc:
            raise Conflict("a user with that e-mail exists in this tenant") from exc
        return self.get_user(tenant_id, user_id)

    def delete_user(self, tenant_id: str, user_id: str) -> None:
        """Delete a user and revoke its keys."""
        k = self.t["keys"]
        with self.engine.begin() as conn:
            gone = conn.execute(
                self.sa.delete(self.t["users"]).where(self._user_where(tenant_id, user_id))
            ).rowcount
            if not gone:
                raise NotFound
            conn.execute(
                self.sa.update(k)
                .where((k.c.tenant_id == tenant_id) & (k.c.user_id == user_id))
                .where(k.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )

    # -- API keys ------------------------------------------------------------------------------

    def create_key(
        self,
        tenant_id: str,
        *,
        name: str,
        role: str,
        environment: str = "live",
        user_id: str | None = None,
        expires_in: float | None = None,
        created_by: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Insert a key; returns its row and the token text (shown once, never stored).

        ``expires_in`` is in seconds from now (``None``: the key never expires).
        """
        token = new_token(environment)
        now = self._now()
        expires_at = now + round(expires_in * 1e9) if expires_in is not None else None
        row = {
            "key_id": token.key_id,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "name": name,
            "role": role,
            "environment": environment,
            "secret_hash": _hash(token),
            "created_by": created_by,
            "created_at": now,
            "expires_at": expires_at,
            "revoked_at": None,
            "last_used_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(self.sa.insert(self.t["keys"]).values(**row))
        return row, token.text

    def _key_where(self, tenant_id: str, key_id: str) -> Any:
        k = self.t["keys"]
        return (k.c.tenant_id == tenant_id) & (k.c.key_id == key_id)

    def get_key(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        """One key of the tenant (without its hash) or :class:`NotFound`."""
        k = self.t["keys"]
        return _public_key(self._one(self.sa.select(k).where(self._key_where(tenant_id, key_id))))

    def list_keys(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """The tenant's keys by id (without hashes)."""
        k = self.t["keys"]
        rows, nxt = self._page(k, "key_id", k.c.tenant_id == tenant_id, limit, cursor)
        return [_public_key(r) for r in rows], nxt

    def revoke_key(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        """Revoke a key now (idempotent: a revoked key keeps its first revocation time)."""
        k = self.t["keys"]
        with self.engine.begin() as conn:
            found = conn.execute(
                self.sa.select(k.c.key_id).where(self._key_where(tenant_id, key_id))
            ).first()
            if found is None:
                raise NotFound
            conn.execute(
                self.sa.update(k)
                .where(self._key_where(tenant_id, key_id) & k.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
        return self.get_key(tenant_id, key_id)

    def rotate_key(
        self,
        tenant_id: str,
        key_id: str,
        *,
        overlap: float,
        expires_in: float | None = None,
        created_by: str | None = None,
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """A new key like ``key_id`` (same role, environment, user and name); the old one
        stays valid for ``overlap`` more seconds, then expires (never later than it would
        have). Returns (new row, new token, old row after the change).

        :class:`NotFound` for no such key; :class:`Conflict` for a revoked or expired one.
        """
        k = self.t["keys"]
        now = self._now()
        until = now + round(overlap * 1e9)
        with self.engine.begin() as conn:
            found = conn.execute(
                self.sa.select(k).where(self._key_where(tenant_id, key_id))
            ).first()
            if found is None:
                raise NotFound
            old = dict(found._mapping)
            if old["revoked_at"] is not None or (
                old["expires_at"] is not None and old["expires_at"] <= now
            ):
                raise Conflict(f"key {key_id!r} is revoked or expired; create a new key instead")
            token = new_token(old["environment"])
            row = {
                "key_id": token.key_id,
                "tenant_id": tenant_id,
                "user_id": old["user_id"],
                "name": old["name"],
                "role": old["role"],
                "environment": old["environment"],
                "secret_hash": _hash(token),
                "created_by": created_by,
                "created_at": now,
                "expires_at": now + round(expires_in * 1e9) if expires_in is not None else None,
                "revoked_at": None,
                "last_used_at": None,
            }
            conn.execute(self.sa.insert(k).values(**row))
            new_expiry = until if old["expires_at"] is None else min(old["expires_at"], until)
            conn.execute(
                self.sa.update(k)
                .where(self._key_where(tenant_id, key_id))
                .values(expires_at=new_expiry)
            )
        return _public_key(row), token.text, self.get_key(tenant_id, key_id)

    def authenticate(self, text: str) -> dict[str, Any] | None:
        """The key row for a presented token, or ``None`` (malformed, unknown, revoked, expired).

        The checksum rejects typos before the database is asked; the stored hash is compared
        in constant time. ``last_used_at`` is refreshed at most once a minute.
        """
        token = parse_token(text)
        if token is None:
            return None
        k = self.t["keys"]
        with self._read() as conn:
            row = conn.execute(self._key_by_id, {"key_id": token.key_id}).first()
        if row is None:
            return None
        key = dict(row._mapping)
        if not verify_secret(token, key["secret_hash"]) or key["environment"] != token.environment:
            return None
        now = self._now()
        if key["revoked_at"] is not None or (
            key["expires_at"] is not None and key["expires_at"] <= now
        ):
            return None
        if key["last_used_at"] is None or now - key["last_used_at"] >= TOUCH_INTERVAL_NS:
            with self.engine.begin() as conn:
                conn.execute(
                    self.sa.update(k).where(k.c.key_id == key["key_id"]).values(last_used_at=now)
                )
            key["last_used_at"] = now
        return _public_key(key)

    # -- idempotency ---------------------------------------------------------------------------

    def idempotency_begin(
        self, tenant_id: str, scope: str, request_hash: str, ttl_ns: int
    ) -> dict[str, Any] | None:
        """Claim ``scope`` for a request; ``None`` when claimed now, else the existing record."""
        sa = self.sa
        t = self.t["idempotency"]
        now = self._now()
        where = (t.c.tenant_id == tenant_id) & (t.c.scope == scope)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t).where(where & (t.c.expires_at <= now)))
            existing = conn.execute(sa.select(t).where(where)).first()
            if existing is not None:
                return dict(existing._mapping)
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(t).values(
                            tenant_id=tenant_id,
                            scope=scope,
                            request_hash=request_hash,
                            status=None,
                            response=None,
                            created_at=now,
                            expires_at=now + ttl_ns,
                        )
                    )
            except sa.exc.IntegrityError:
                row = conn.execute(sa.select(t).where(where)).first()
                return dict(row._mapping) if row is not None else None
        return None

    def idempotency_finish(
        self, tenant_id: str, scope: str, status: int | None, response: bytes | None
    ) -> None:
        """Store the response of a claimed request, or drop the claim (``status=None``)."""
        t = self.t["idempotency"]
        where = (t.c.tenant_id == tenant_id) & (t.c.scope == scope)
        with self.engine.begin() as conn:
            if status is None:
                conn.execute(self.sa.delete(t).where(where))
            else:
                conn.execute(
                    self.sa.update(t).where(where).values(status=status, response=response)
                )

    # -- rate-limit policies -------------------------------------------------------------------

    def _policy_where(self, tenant_id: str, name: str) -> Any:
        p = self.t["policies"]
        return (p.c.tenant_id == tenant_id) & (p.c.name == name)

    def create_policy(self, tenant_id: str, name: str, limits: str) -> dict[str, Any]:
        """Insert a named policy (unique per tenant)."""
        row = {
            "tenant_id": tenant_id,
            "name": name,
            "limits": limits,
            "created_at": self._now(),
            "version": 1,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(self.sa.insert(self.t["policies"]).values(**row))
        except self.sa.exc.IntegrityError as exc:
            raise Conflict(f"policy {name!r} exists") from exc
        return row

    def get_policy(self, tenant_id: str, name: str) -> dict[str, Any]:
        """One policy of the tenant or :class:`NotFound`."""
        return self._one(self._policy_by_name, {"tenant_id": tenant_id, "name": name})

    def policy_for_checks(self, tenant_id: str, name: str) -> dict[str, Any]:
        """:meth:`get_policy` for the per-request rate-limit checks, read at most once per
        :data:`POLICY_CACHE_SECONDS` per policy and process.

        A change made through this process applies at once (its cached copy is dropped); one
        made through another process applies here within ``POLICY_CACHE_SECONDS``. Reads
        that return the policy itself (GET, ETags) never use the cache.
        """
        key = (tenant_id, name)
        now = _monotonic()
        hit = self._policy_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = self.get_policy(tenant_id, name)  # NotFound is not cached
        if len(self._policy_cache) >= POLICY_CACHE_SIZE:
            self._policy_cache.clear()
        self._policy_cache[key] = (now + POLICY_CACHE_SECONDS, row)
        return row

    def list_policies(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """The tenant's policies by name."""
        p = self.t["policies"]
        return self._page(p, "name", p.c.tenant_id == tenant_id, limit, cursor)

    def update_policy(
        self, tenant_id: str, name: str, version: int, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a policy if it is still at ``version``."""
        self._update(self.t["policies"], self._policy_where(tenant_id, name), version, values)
        self._policy_cache.pop((tenant_id, name), None)
        return self.get_policy(tenant_id, name)

    def delete_policy(self, tenant_id: str, name: str) -> None:
        """Delete a policy or raise :class:`NotFound`."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                self.sa.delete(self.t["policies"]).where(self._policy_where(tenant_id, name))
            ).rowcount
        self._policy_cache.pop((tenant_id, name), None)
        if not gone:
            raise NotFound


def _hash(token: ParsedToken) -> str:
    return token_hash(token.text)


def _public_key(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "secret_hash"}
