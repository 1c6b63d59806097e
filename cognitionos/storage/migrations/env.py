"""Alembic environment: runs on the connection cognitionos hands over (never reads alembic.ini)."""

from __future__ import annotations

from alembic import context

from cognitionos.storage._sql_schema import build_metadata

VERSION_TABLE = "cognitionos_alembic_version"

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=build_metadata(),
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
