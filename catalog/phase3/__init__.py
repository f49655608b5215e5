"""Phase 3, the catalog's first schema migration: v1 ("Phase 2") to v2.

``baseline`` holds the upstream application's v1 DDL and derives v2 from it;
``actions`` the change itself (prepare, backfill, cut-over, rollback) as
actions; ``checks`` the prerequisites; ``engine`` plans, runs (resumably) and
rolls it back online on the generic machinery of :mod:`migration`; ``verify``
is the guide's verification suite plus the before/after judgement; ``repair``
rebuilds a ``fits_files`` damaged by the original hand-written migration.
"""
