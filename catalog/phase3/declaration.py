"""Phase 3 declared: the v1 <-> v2 names of the catalog, the one place that states them.

Everything that knows about the rename reads :data:`PHASE3`: the SQLAlchemy
synonyms in ``catalog.models``, the statement translator that lets the models
run on a v1 database, the migration, the database shims, the backups' reports
and the code scanner. A later migration of the catalog is another declaration
like this one, plus its tests.
"""

from __future__ import annotations

from compat.renames import ColumnRename, IndexRename, RenameDeclaration, TableRename

PHASE3 = RenameDeclaration(
    name="Phase 3",
    tables=(
        TableRename(
            old="sessions",
            new="imaging_sessions",
            columns=(ColumnRename("session_id", "id"), ColumnRename("session_date", "date")),
            model="ImagingSession",
            model_alias="Session",
        ),
        TableRename(
            old="fits_files",
            new="fits_files",
            columns=(
                ColumnRename("x", "width_pixels"),
                ColumnRename("y", "height_pixels"),
                ColumnRename("session_id", "imaging_session_id"),
            ),
            model="FitsFile",
        ),
    ),
    # Indexes whose name changes; the others keep their name (their columns
    # follow the column renames). SQLite's ALTER TABLE rewrites the foreign key
    # fits_files.imaging_session_id -> imaging_sessions(id) itself.
    indexes=(
        IndexRename(
            table="fits_files",
            old="idx_session",
            new="idx_fits_imaging_session",
            columns_v2=("imaging_session_id",),
        ),
    ),
    from_version=1,
    to_version=2,
    from_description="Phase 2: models mapped onto legacy names",
    to_description="Phase 3: Renamed tables and columns",
    version_table="schema_version",
    models_module="catalog.models",
)

SCHEMA_V1 = PHASE3.from_version
SCHEMA_V2 = PHASE3.to_version
SESSIONS = PHASE3.renamed_tables()[0]
FITS = PHASE3.table("fits_files")
