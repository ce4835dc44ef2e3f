"""Alembic migrations; run through `sopbot db upgrade`."""
