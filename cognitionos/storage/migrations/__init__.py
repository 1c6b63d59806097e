"""Alembic migrations of the SQL backend, shipped in the wheel; run by ``cognitionos db upgrade``."""
