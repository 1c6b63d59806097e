"""``cognitionos tenant|user|key``: administer the reference server's tenants, users and keys.

Each command talks to the database directly (``--store URL``, else ``$COGNITIONOS_STORE``,
else ``sqlite:///cognitionos.db``: the server's own default database) or to a running server
(``--url URL --key TOKEN``, or ``$COGNITIONOS_URL`` / ``$COGNITIONOS_KEY``)::

    cognitionos tenant create acme --owner-email ops@acme.test
    cognitionos key create --tenant t_abc --role viewer --name dashboard --json
    cognitionos key rotate K1234567 --tenant t_abc --overlap 3600
    cognitionos user list --url https://api.example --key "$ADMIN_KEY" --json

Direct access is the database owner's: every role can be granted, and changes are audited
with the actor ``cli``. Through a server the key's role limits what it may do (nobody grants
a role stronger than their own) and ``--tenant`` is the key's tenant. A new key's token is
printed once, on stdout; store it then.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from cognitionos._cli_common import FINITE, CommandGroup, echo_json, json_option, note, pick_store
from cognitionos.errors import CognitionError, ConfigurationError

__all__ = ["key", "tenant", "user"]

ROLES = ("owner", "admin", "developer", "viewer", "service")
F = TypeVar("F", bound=Callable[..., Any])


class AdminError(CognitionError):
    """A refused admin command (the message names what was refused)."""


def connection_options(func: F) -> F:
    """``--store`` (database) or ``--url`` + ``--key`` (a server)."""
    func = click.option(
        "--key",
        "api_key",
        metavar="TOKEN",
        default=None,
        help="API key for --url [env COGNITIONOS_KEY].",
    )(func)
    func = click.option(
        "--url",
        metavar="URL",
        default=None,
        help="Talk to this server instead of the database [env COGNITIONOS_URL].",
    )(func)
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="The server's database [env COGNITIONOS_STORE; default sqlite:///cognitionos.db].",
    )(func)


def tenant_option(func: F) -> F:
    """``--tenant ID`` (needed with --store; through a server, the key's tenant)."""
    return click.option(
        "--tenant", "tenant_id", metavar="ID", default=None, help="Tenant id (with --store)."
    )(func)


# -- backends ----------------------------------------------------------------------------------


class Direct:
    """The database itself: the server's directory and audit log."""

    def __init__(self, store_url: str) -> None:
        from cognitionos.storage import open_store
        from cognitionos.storage._sql import SQLStore

        self.store = open_store(store_url)
        if not isinstance(self.store, SQLStore):
            self.store.close()
            raise ConfigurationError(
                f"--store must be the server's SQLite or PostgreSQL database, got {store_url!r}"
            )
        from cognitionos.audit import AuditLog
        from cognitionos.clock import SystemClock
        from cognitionos.server._directory import Directory
        from cognitionos.server._state import AUDIT_STREAM

        clock = SystemClock()
        self.directory = Directory(self.store.engine, clock)
        self.audit = AuditLog(self.store, stream=AUDIT_STREAM, clock=clock)

    def close(self) -> None:
        self.store.close()

    def _tenant(self, tenant_id: str | None) -> str:
        from cognitionos.server._directory import NotFound

        if not tenant_id:
            raise AdminError("--tenant is required with --store (the tenant id)")
        try:
            self.directory.get_tenant(tenant_id)
        except NotFound:
            raise AdminError(f"no tenant {tenant_id!r} in this database") from None
        return tenant_id

    def _record(self, tenant: str, action: str, target: str, before: Any, after: Any) -> None:
        self.audit.append(tenant, "cli", action, target, {"before": before, "after": after})

    def _all(self, fetch: Callable[[str | None], Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            rows, cursor = fetch(cursor)
            out.extend(rows)
            if cursor is None:
                return out

    def create_tenant(self, name: str, owner_email: str | None) -> dict[str, Any]:
        from cognitionos.server._directory import Conflict

        tenant = self.directory.create_tenant(name)
        tid = tenant["tenant_id"]
        user_id = None
        if owner_email:
            try:
                user_id = self.directory.create_user(tid, owner_email, "owner")["user_id"]
            except Conflict as exc:
                raise AdminError(str(exc)) from None
        row, token = self.directory.create_key(
            tid, name="owner key", role="owner", user_id=user_id, created_by="cli"
        )
        self._record(tid, "tenant.create", f"tenants/{tid}", None, name)
        self._record(tid, "key.create", f"keys/{row['key_id']}", None, {"role": "owner"})
        tenant.pop("version", None)
        return {**tenant, "owner_key": {"key_id": row["key_id"], "token": token}}

    def list_tenants(self) -> list[dict[str, Any]]:
        return self._all(lambda c: self.directory.list_tenants(200, c))

    def create_user(self, tenant_id: str | None, email: str, role: str) -> dict[str, Any]:
        from cognitionos.server._directory import Conflict

        tid = self._tenant(tenant_id)
        try:
            row = self.directory.create_user(tid, email, role)
        except Conflict as exc:
            raise AdminError(str(exc)) from None
        self._record(
            tid, "user.create", f"users/{row['user_id']}", None, {"email": email, "role": role}
        )
        return row

    def list_users(self, tenant_id: str | None) -> list[dict[str, Any]]:
        tid = self._tenant(tenant_id)
        return self._all(lambda c: self.directory.list_users(tid, 200, c))

    def set_role(self, tenant_id: str | None, user_id: str, role: str) -> dict[str, Any]:
        from cognitionos.server._directory import NotFound, StaleVersion

        tid = self._tenant(tenant_id)
        for _ in range(5):
            try:
                current = self.directory.get_user(tid, user_id)
                row = self.directory.update_user(tid, user_id, current["version"], {"role": role})
            except NotFound:
                raise AdminError(f"no user {user_id!r} in tenant {tid!r}") from None
            except StaleVersion:
                continue
            self._record(
                tid, "user.update", f"users/{user_id}", {"role": current["role"]}, {"role": role}
            )
            return row
        raise AdminError(f"user {user_id!r} keeps changing; try again")

    def delete_user(self, tenant_id: str | None, user_id: str) -> None:
        from cognitionos.server._directory import NotFound

        tid = self._tenant(tenant_id)
        try:
            current = self.directory.get_user(tid, user_id)
            self.directory.delete_user(tid, user_id)
        except NotFound:
            raise AdminError(f"no user {user_id!r} in tenant {tid!r}") from None
        self._record(
            tid,
            "user.delete",
            f"users/{user_id}",
            {"email": current["email"], "role": current["role"]},
            None,
        )

    def create_key(self, tenant_id: str | None, **fields: Any) -> dict[str, Any]:
        from cognitionos.server._directory import NotFound

        tid = self._tenant(tenant_id)
        if fields.get("user_id"):
            try:
                self.directory.get_user(tid, fields["user_id"])
            except NotFound:
                raise AdminError(f"no user {fields['user_id']!r} in tenant {tid!r}") from None
        row, token = self.directory.create_key(tid, created_by="cli", **fields)
        self._record(
            tid,
            "key.create",
            f"keys/{row['key_id']}",
            None,
            {k: fields.get(k) for k in ("name", "role", "environment", "user_id")},
        )
        return {**row, "token": token}

    def list_keys(self, tenant_id: str | None) -> list[dict[str, Any]]:
        tid = self._tenant(tenant_id)
        return self._all(lambda c: self.directory.list_keys(tid, 200, c))

    def revoke_key(self, tenant_id: str | None, key_id: str) -> dict[str, Any]:
        from cognitionos.server._directory import NotFound

        tid = self._tenant(tenant_id)
        try:
            before = self.directory.get_key(tid, key_id)
            row = self.directory.revoke_key(tid, key_id)
        except NotFound:
            raise AdminError(f"no key {key_id!r} in tenant {tid!r}") from None
        if before["revoked_at"] is None:
            self._record(
                tid,
                "key.revoke",
                f"keys/{key_id}",
                {"revoked_at": None},
                {"revoked_at": row["revoked_at"]},
            )
        return row

    def rotate_key(
        self, tenant_id: str | None, key_id: str, overlap: float, expires_in: float | None
    ) -> dict[str, Any]:
        from cognitionos.server._directory import Conflict, NotFound

        tid = self._tenant(tenant_id)
        try:
            row, token, old = self.directory.rotate_key(
                tid, key_id, overlap=overlap, expires_in=expires_in, created_by="cli"
            )
        except NotFound:
            raise AdminError(f"no key {key_id!r} in tenant {tid!r}") from None
        except Conflict as exc:
            raise AdminError(str(exc)) from None
        self._record(
            tid,
            "key.rotate",
            f"keys/{key_id}",
            {"key_id": key_id},
            {"key_id": row["key_id"], "old_expires_at": old["expires_at"]},
        )
        return {
            **row,
            "token": token,
            "rotated_from": key_id,
            "old_key_expires_at": old["expires_at"],
        }


class Remote:
    """A running server, through its REST API (the key's tenant and role apply)."""

    def __init__(self, url: str, api_key: str | None) -> None:
        if not api_key:
            raise AdminError("--url needs --key (or $COGNITIONOS_KEY): an API key of the server")
        if not url.startswith(("http://", "https://")):
            raise AdminError(f"--url must be an http:// or https:// address, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key

    def close(self) -> None:
        """Nothing to close (one connection per call)."""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.api_key}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail", exc.reason)
            except ValueError:
                detail = exc.reason
            raise AdminError(f"{method} {path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach {self.url}: {reason}") from None
        return json.loads(raw) if raw else None

    def _all(self, path: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.call(
                "GET", path + "?limit=200" + (f"&cursor={quote(cursor)}" if cursor else "")
            )
            out.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def _mine(self, tenant_id: str | None) -> None:
        if tenant_id is None:
            return
        me = self.call("GET", "/v1/whoami")
        if me["tenant_id"] != tenant_id:
            raise AdminError(
                f"--tenant {tenant_id!r}: through a server the key's tenant applies "
                f"({me['tenant_id']!r})"
            )

    def create_tenant(self, name: str, owner_email: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if owner_email:
            body["owner_email"] = owner_email
        doc: dict[str, Any] = self.call("POST", "/v1/tenants", body)
        doc.pop("etag", None)
        return doc

    def list_tenants(self) -> list[dict[str, Any]]:
        return self._all("/v1/tenants")

    def create_user(self, tenant_id: str | None, email: str, role: str) -> dict[str, Any]:
        self._mine(tenant_id)
        doc: dict[str, Any] = self.call("POST", "/v1/users", {"email": email, "role": role})
        return doc

    def list_users(self, tenant_id: str | None) -> list[dict[str, Any]]:
        self._mine(tenant_id)
        return self._all("/v1/users")

    def set_role(self, tenant_id: str | None, user_id: str, role: str) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        self._mine(tenant_id)
        path = f"/v1/users/{user_id}"
        for _ in range(5):
            current = self.call("GET", path)
            req = urllib.request.Request(
                self.url + path, data=json.dumps({"role": role}).encode(), method="PATCH"
            )
            req.add_header("Authorization", f"Bearer {self.api_key}")
            req.add_header("Content-Type", "application/json")
            req.add_header("If-Match", current["etag"])
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    doc: dict[str, Any] = json.loads(resp.read())
                    return doc
            except urllib.error.HTTPError as exc:
                if exc.code == 412:
                    continue
                try:
                    detail = json.loads(exc.read()).get("detail", exc.reason)
                except ValueError:
                    detail = exc.reason
                raise AdminError(f"PATCH {path}: {exc.code} {detail}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise AdminError(f"cannot reach {self.url}: {exc}") from None
        raise AdminError(f"user {user_id!r} keeps changing; try again")

    def delete_user(self, tenant_id: str | None, user_id: str) -> None:
        self._mine(tenant_id)
        self.call("DELETE", f"/v1/users/{user_id}")

    def create_key(self, tenant_id: str | None, **fields: Any) -> dict[str, Any]:
        self._mine(tenant_id)
        body = {k: v for k, v in fields.items() if v is not None}
        doc: dict[str, Any] = self.call("POST", "/v1/keys", body)
        return doc

    def list_keys(self, tenant_id: str | None) -> list[dict[str, Any]]:
        self._mine(tenant_id)
        return self._all("/v1/keys")

    def revoke_key(self, tenant_id: str | None, key_id: str) -> dict[str, Any]:
        self._mine(tenant_id)
        doc: dict[str, Any] = self.call("DELETE", f"/v1/keys/{key_id}")
        return doc

    def rotate_key(
        self, tenant_id: str | None, key_id: str, overlap: float, expires_in: float | None
    ) -> dict[str, Any]:
        self._mine(tenant_id)
        body: dict[str, Any] = {"overlap": overlap}
        if expires_in is not None:
            body["expires_in"] = expires_in
        doc: dict[str, Any] = self.call("POST", f"/v1/keys/{key_id}/rotate", body)
        return doc


@contextmanager
def backend(store_url: str | None, url: str | None, api_key: str | None) -> Iterator[Any]:
    """The database (``--store``) or a server (``--url``), closed afterwards."""
    url = url or os.environ.get("COGNITIONOS_URL")
    api_key = api_key or os.environ.get("COGNITIONOS_KEY")
    if url and store_url:
        raise AdminError("give --store (the database) or --url (a server), not both")
    chosen: Any = Remote(url, api_key) if url else Direct(pick_store(store_url))
    try:
        yield chosen
    finally:
        chosen.close()


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show_token(doc: dict[str, Any], as_json: bool, token: str) -> None:
    if as_json:
        echo_json(doc)
        return
    note("the API key below is shown once: store it now (only its hash is kept)")
    click.echo(token)


def _rows(items: list[dict[str, Any]], as_json: bool, empty: str, line: Callable[..., str]) -> None:
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo(empty)
        return
    for item in items:
        click.echo(line(item))


def _connected(func: F) -> F:
    """Pass ``backend`` (opened from the connection options) instead of them."""

    @functools.wraps(func)
    def wrapper(store_url: str | None, url: str | None, api_key: str | None, **kw: Any) -> Any:
        with backend(store_url, url, api_key) as b:
            return func(b, **kw)

    return connection_options(wrapper)  # type: ignore[return-value]


# -- tenant ------------------------------------------------------------------------------------


@click.group(cls=CommandGroup)
def tenant() -> None:
    """Tenants of the reference server."""


@tenant.command("create")
@click.argument("name")
@click.option("--owner-email", default=None, help="Also create this owner user.")
@json_option
@_connected
def tenant_create(b: Any, name: str, owner_email: str | None, as_json: bool) -> None:
    """Create tenant NAME with an owner key (printed once)."""
    if not name.strip() or len(name) > 200:
        raise AdminError(f"tenant name must be 1-200 characters, got {name!r}")
    doc = b.create_tenant(name, owner_email)
    note(f"tenant {doc['tenant_id']} ({name}) created")
    _show_token(doc, as_json, doc["owner_key"]["token"])


@tenant.command("list")
@json_option
@_connected
def tenant_list(b: Any, as_json: bool) -> None:
    """Every tenant (through a server: those the key may see)."""
    _rows(
        b.list_tenants(),
        as_json,
        "no tenants",
        lambda t: f"{t['tenant_id']}  {t['name']}  created {_when(t['created_at'])}",
    )


# -- user --------------------------------------------------------------------------------------


@click.group(cls=CommandGroup)
def user() -> None:
    """Users of a tenant."""


@user.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@tenant_option
@json_option
@_connected
def user_create(b: Any, email: str, role: str, tenant_id: str | None, as_json: bool) -> None:
    """Add a user with EMAIL and a role."""
    if "@" not in email or len(email) > 320:
        raise AdminError(f"not an e-mail address: {email!r}")
    row = b.create_user(tenant_id, email, role)
    if as_json:
        echo_json(row)
        return
    click.echo(row["user_id"])


@user.command("list")
@tenant_option
@json_option
@_connected
def user_list(b: Any, tenant_id: str | None, as_json: bool) -> None:
    """The tenant's users."""
    _rows(
        b.list_users(tenant_id),
        as_json,
        "no users",
        lambda u: f"{u['user_id']}  {u['email']}  {u['role']}",
    )


@user.command("set-role")
@click.argument("user_id")
@click.argument("role", type=click.Choice(ROLES))
@tenant_option
@json_option
@_connected
def user_set_role(b: Any, user_id: str, role: str, tenant_id: str | None, as_json: bool) -> None:
    """Give USER_ID another role."""
    row = b.set_role(tenant_id, user_id, role)
    if as_json:
        echo_json(row)
        return
    click.echo(f"{row['user_id']}  {row['role']}")


@user.command("delete")
@click.argument("user_id")
@tenant_option
@_connected
def user_delete(b: Any, user_id: str, tenant_id: str | None) -> None:
    """Remove USER_ID and revoke every key of theirs."""
    b.delete_user(tenant_id, user_id)
    note(f"user {user_id} removed; their keys are revoked")


# -- key ---------------------------------------------------------------------------------------


@click.group(cls=CommandGroup)
def key() -> None:
    """API keys: shown once, stored as hashes."""


def _seconds(value: float | None, option: str) -> float | None:
    import math

    if value is not None and (not math.isfinite(value) or value <= 0 or value > 10 * 365 * 86400):
        raise AdminError(f"{option} must be between 0 and ten years in seconds, got {value!r}")
    return value


@key.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="cli key", show_default=True)
@click.option("--environment", type=click.Choice(["live", "test"]), default="live")
@click.option("--user-id", default=None, help="The user the key belongs to.")
@click.option("--expires-in", type=FINITE, default=None, help="Seconds until it expires.")
@tenant_option
@json_option
@_connected
def key_create(
    b: Any,
    role: str,
    name: str,
    environment: str,
    user_id: str | None,
    expires_in: float | None,
    tenant_id: str | None,
    as_json: bool,
) -> None:
    """Create a key (its token is printed once)."""
    doc = b.create_key(
        tenant_id,
        name=name,
        role=role,
        environment=environment,
        user_id=user_id,
        expires_in=_seconds(expires_in, "--expires-in"),
    )
    note(f"key {doc['key_id']} ({role}) created")
    _show_token(doc, as_json, doc["token"])


@key.command("list")
@tenant_option
@json_option
@_connected
def key_list(b: Any, tenant_id: str | None, as_json: bool) -> None:
    """The tenant's keys (never their secrets)."""

    def line(k: dict[str, Any]) -> str:
        state = "revoked" if k["revoked_at"] else f"expires {_when(k['expires_at'])}"
        return (
            f"{k['key_id']}  {k['role']:<9}  {k['name']}  {state}  "
            f"last used {_when(k['last_used_at'])}"
        )

    _rows(b.list_keys(tenant_id), as_json, "no keys", line)


@key.command("revoke")
@click.argument("key_id")
@tenant_option
@json_option
@_connected
def key_revoke(b: Any, key_id: str, tenant_id: str | None, as_json: bool) -> None:
    """Revoke KEY_ID now."""
    row = b.revoke_key(tenant_id, key_id)
    if as_json:
        echo_json(row)
        return
    note(f"key {key_id} revoked at {_when(row['revoked_at'])}")


@key.command("rotate")
@click.argument("key_id")
@click.option(
    "--overlap",
    type=FINITE,
    default=86400.0,
    show_default=True,
    help="Seconds the old key stays valid beside the new one.",
)
@click.option("--expires-in", type=FINITE, default=None, help="Seconds until the new key expires.")
@tenant_option
@json_option
@_connected
def key_rotate(
    b: Any,
    key_id: str,
    overlap: float,
    expires_in: float | None,
    tenant_id: str | None,
    as_json: bool,
) -> None:
    """A new key like KEY_ID (printed once); KEY_ID expires after the overlap."""
    import math

    if not math.isfinite(overlap) or not 0 <= overlap <= 30 * 86400:
        raise AdminError(f"--overlap must be 0 to 30 days in seconds, got {overlap!r}")
    doc = b.rotate_key(tenant_id, key_id, overlap, _seconds(expires_in, "--expires-in"))
    note(f"key {doc['key_id']} replaces {key_id}, which expires {_when(doc['old_key_expires_at'])}")
    _show_token(doc, as_json, doc["token"])
