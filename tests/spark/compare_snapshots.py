"""Compare two published BI snapshots mart by mart: the same tables, columns and rows.

Three kinds of columns:
- exact: integers, decimals (money), strings (keys, segments), dates, booleans on both sides;
- floating point on both sides (model scores, fitted parameters, averages): ``rtol``;
- floating point on one side and decimal on the other: quotients of decimals, which DuckDB
  returns as doubles and Spark as decimals rounded to 6 places or more: ``quotient_atol``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

SNAPSHOT = Path("current") / "customer_analytics.duckdb"


def read_marts(serve_dir: Path) -> dict[str, tuple[pd.DataFrame, dict[str, str]]]:
    """{mart: (rows, {column: DuckDB type})} of the snapshot BI reads."""
    out = {}
    with duckdb.connect(str(serve_dir / SNAPSHOT), read_only=True) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by 1"
        ).fetchall()
        for (table,) in tables:
            relation = conn.sql(f"select * from marts.{table}")
            types = {c: str(t) for c, t in zip(relation.columns, relation.types)}
            out[table] = (relation.df(), types)
    return out


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("DOUBLE", "FLOAT"))


def differences(
    expected: Path, actual: Path, rtol: float, quotient_atol: float = 1e-6
) -> list[str]:
    """What differs between two snapshots (empty: the same marts), by the kinds of columns above.
    Rows are matched after sorting both on every exact column."""
    left, right = read_marts(expected), read_marts(actual)
    problems = []
    if set(left) != set(right):
        problems.append(
            f"tables differ: only expected {set(left) - set(right)}, only actual {set(right) - set(left)}"
        )
    for table in sorted(set(left) & set(right)):
        (a, a_types), (b, b_types) = left[table], right[table]
        if set(a.columns) != set(b.columns):
            problems.append(f"{table}: columns differ {set(a.columns) ^ set(b.columns)}")
            continue
        if len(a) != len(b):
            problems.append(f"{table}: {len(a)} rows expected, {len(b)} actual")
            continue
        floats = [c for c in a.columns if _is_float(a_types[c]) and _is_float(b_types[c])]
        quotients = [
            c
            for c in a.columns
            if c not in floats and (_is_float(a_types[c]) or _is_float(b_types[c]))
        ]
        exact = [c for c in a.columns if c not in floats and c not in quotients]
        order = exact + quotients + floats
        a = a[order].sort_values(order, ignore_index=True, na_position="first")
        b = b[order].sort_values(order, ignore_index=True, na_position="first")
        for column in exact:
            x, y = a[column], b[column]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                # decimals arrive as floats from both files: the same decimal gives the same float
                same = (x.isna() & y.isna()) | (x.astype(float) == y.astype(float))
            else:
                same = (x.isna() & y.isna()) | (x.astype(object) == y.astype(object))
            if not same.all():
                i = int(np.flatnonzero(~same.to_numpy())[0])
                problems.append(
                    f"{table}.{column}: {int((~same).sum())} rows differ, e.g. {x.iloc[i]!r} vs {y.iloc[i]!r}"
                )
        for columns, tolerance in (
            (floats, {"rtol": rtol, "atol": 0.0}),
            (quotients, {"rtol": 0.0, "atol": quotient_atol}),
        ):
            for column in columns:
                x, y = a[column].astype(float).to_numpy(), b[column].astype(float).to_numpy()
                close = np.isclose(x, y, equal_nan=True, **tolerance)
                if not close.all():
                    i = int(np.flatnonzero(~close)[0])
                    problems.append(
                        f"{table}.{column}: {int((~close).sum())} rows beyond {tolerance}, e.g. {x[i]!r} vs {y[i]!r}"
                    )
    return problems


if __name__ == "__main__":
    import sys

    for line in differences(Path(sys.argv[1]), Path(sys.argv[2]), rtol=1e-9) or ["same marts"]:
        print(line)
