"""The compatibility layer: old (v1) names keep working while the schema is v2."""
