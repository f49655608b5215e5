"""The rename lifecycle on PostgreSQL: the same declaration, phases, state and
shims as on SQLite (:mod:`compat.lifecycle`), in PostgreSQL's terms: short
``lock_timeout`` transactions with retries, PL/pgSQL triggers, ``CREATE INDEX
CONCURRENTLY``. psycopg is imported by these modules: load them only for a
PostgreSQL database."""
