"""Reports built from the marts: pure functions, no Dagster imports."""
