"""A rename migration's lifecycle, online, for any :class:`~compat.renames.RenameDeclaration`.

``spec`` pairs a declaration with what the application adds (its baseline, extra
checks, where backups go); ``actions`` is the change itself as planned actions
(prepare, backfill, cut-over, rollback); ``checks`` the prerequisites; ``engine``
plans and runs it (resumably) on the generic machinery of :mod:`migration`;
``rollback`` reverses it; ``status`` says where a database stands. The window's
own operations (``compat install``/``retire``) are :mod:`compat.install` and
:mod:`compat.retire`.
"""
