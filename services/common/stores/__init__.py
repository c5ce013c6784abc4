"""Operational state behind one interface (`Database`), on SQLite (embedded) or PostgreSQL
(`REVOPS_DATABASE_URL`), with versioned migrations per component."""
