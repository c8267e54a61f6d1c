"""Small helpers for asset metadata."""

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table for the Dagster UI."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
