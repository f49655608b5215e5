"""The online schema-change engine for SQLite: connections, time-boxed transactions,
online rebuilds, schema surgery, state, snapshots, operations described as stages,
the one-at-a-time lock and backups — for any schema, while it is in use."""
