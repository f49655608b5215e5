"""The migration engine: moves a catalog from schema v1 to v2 while it is in use."""
