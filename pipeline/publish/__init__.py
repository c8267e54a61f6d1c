"""Publishing for BI: the read-only snapshot of the marts (snapshot) and the HTML dashboard
(dashboard). Pure functions over a DuckDB connection, no Dagster imports."""
