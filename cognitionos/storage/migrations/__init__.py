"""Alembic migrations of the SQL backend, shipped in the wheel (``cognitionos db upgrade``)."""
