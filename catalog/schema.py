"""Creating the catalog's tables (the layout and phase are read by :mod:`compat.phases`)."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from catalog.db import lock_for_writing, sqlite_connection
from catalog.orm import SchemaVersion, utcnow
from catalog.phase3.baseline import v1_objects, v2_objects
from catalog.phase3.declaration import PHASE3
from compat.phases import EMPTY, V1, SchemaState, read_state, read_state_of
from migration.postgres.schema import create_statements, schema_of_statements


def state_of(connection: Connection) -> SchemaState:
    """:func:`read_state` for a SQLAlchemy connection, SQLite or PostgreSQL."""
    if connection.dialect.name == "sqlite":
        return read_state(sqlite_connection(connection), PHASE3)
    return read_state_of(connection, PHASE3)


def create_missing_tables(engine: Engine) -> SchemaState:
    """Create the catalog tables that are missing, in the database's own layout.

    The DDL is the upstream schema itself (``catalog.phase3.baseline``), not the models'
    rendering of it: on an empty database this creates schema v2 exactly as the
    migration leaves it and records versions 1 and 2. On a v1 database it never
    creates ``imaging_sessions`` next to ``sessions`` (that would split the data in
    two); it only adds the tables (and their indexes) an older catalog lacks. The
    tables that exist are never touched. On PostgreSQL the same DDL is created in
    PostgreSQL's types (:mod:`migration.postgres.schema`).
    """
    with engine.begin() as connection:
        lock_for_writing(connection)
        state = state_of(connection)
        objects = v1_objects() if state.layout == V1 else v2_objects()
        missing = {o.table for o in objects if o.type == "table"} - set(state.tables)
        if state.layout == V1:
            missing -= {t.new for t in PHASE3.renamed_tables()}
        if connection.dialect.name == "sqlite":
            statements = [o.sql for o in objects if o.table in missing]
        else:
            schema = schema_of_statements(o.sql for o in objects if o.type in ("table", "index"))
            statements = create_statements(schema, missing)
        for statement in statements:
            connection.exec_driver_sql(statement)
        if state.layout == EMPTY:
            now = utcnow()
            connection.execute(
                SchemaVersion.__table__.insert(),
                [
                    {
                        "version": PHASE3.from_version,
                        "applied_at": now,
                        "description": PHASE3.from_description,
                    },
                    {"version": PHASE3.to_version, "applied_at": now, "description": PHASE3.to_description},
                ],
            )
        return state_of(connection)
