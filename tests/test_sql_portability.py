"""The dbt SQL stays portable to Spark: no DuckDB-only spellings outside dispatched macros.

See DESIGN.md ("Portable SQL") and reference/sql-portability.md. Engine-specific SQL belongs in
adapter-dispatched macros named ``duckdb__*`` / ``spark__*`` (or another adapter's prefix); this
guard scans everything else: models, singular and generic tests, and the other macros. It reads
the SQL as the engine sees it: Jinja comments, Jinja expressions and statements (their Python
lists and strings are not SQL), SQL comments and SQL string literals are left out first.
No Spark needed; tests/spark/ checks the results on Spark itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
SCANNED = ["models", "macros", "tests"]
DISPATCHED_PREFIXES = ("duckdb__", "spark__")

# (name, pattern, fix), matched case-insensitively against SQL without comments or strings
# (string literals are kept as '' so a quoted unit after date_diff( still shows).
RULES = [
    ("'::' cast", r"::", "cast(x as type)"),
    ("QUALIFY", r"\bqualify\b", "a subquery with row_number() and where rn = 1"),
    ("select * exclude (...)", r"\bexclude\s*\(", "list the columns"),
    ("double-quoted identifier", r'"', 'unquoted identifiers (Spark reads "k" as a string)'),
    ("strftime / strptime", r"\bstr[fp]time\b", "a dispatched macro (date_format / to_date)"),
    (
        "date_diff / datediff with a quoted unit",
        r"\bdate_?diff\s*\(\s*'",
        "{{ dbt.datediff(a, b, 'day') }}",
    ),
    ("list literal / subscript", r"\[", "dbt.array_construct or a dispatched macro"),
    ("arg_max / arg_min", r"\barg_(max|min)\b", "max_by / min_by"),
    ("'//' integer division", r"//", "floor(a / b)"),
    ("string_agg", r"\bstring_agg\b", "{{ dbt.listagg(...) }}"),
    ("varchar / text type", r"\b(varchar|text)\b", "string or {{ dbt.type_string() }}"),
]


def _jinja_end(text: str, start: int) -> int:
    """The index just past the Jinja tag opening at ``start`` ({{, {% or {#})."""
    kind = text[start + 1]
    if kind == "#":
        end = text.find("#}", start + 2)
        return len(text) if end < 0 else end + 2
    closer = "}}" if kind == "{" else "%}"
    depth, i, quote = 0, start + 2, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif depth == 0 and text.startswith(closer, i):
            return i + 2
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return len(text)


def strip_jinja(text: str, skip_dispatched_macros: bool = False) -> str:
    """The SQL outside Jinja tags (each tag becomes a space; newlines are kept for line numbers).

    With ``skip_dispatched_macros``, the bodies of ``{% macro duckdb__x() %}`` and
    ``{% macro spark__x() %}`` are left out too.
    """
    out, i, skipping = [], 0, False
    while i < len(text):
        start = text.find("{", i)
        while start >= 0 and text[start + 1 : start + 2] not in ("{", "%", "#"):
            start = text.find("{", start + 1)
        if start < 0:
            if not skipping:
                out.append(text[i:])
            break
        if not skipping:
            out.append(text[i:start])
        end = _jinja_end(text, start)
        tag = text[start:end]
        macro = re.match(r"\{%-?\s*macro\s+(\w+)", tag)
        if skip_dispatched_macros and macro and macro.group(1).startswith(DISPATCHED_PREFIXES):
            skipping = True
        elif re.match(r"\{%-?\s*endmacro\b", tag):
            skipping = False
        out.append(" " + "\n" * tag.count("\n"))
        i = end
    return "".join(out)


def strip_sql_comments_and_strings(sql: str) -> str:
    """SQL with comments blanked and string literals emptied to ''."""

    def blank(match: re.Match) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return "''"
        return " " + "\n" * token.count("\n")

    return re.sub(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", blank, sql, flags=re.DOTALL)


def violations(text: str, skip_dispatched_macros: bool = False) -> list[tuple[int, str, str]]:
    """(line, rule, fix) for every forbidden spelling in a dbt SQL file's text."""
    sql = strip_sql_comments_and_strings(strip_jinja(text, skip_dispatched_macros))
    found = []
    for name, pattern, fix in RULES:
        for match in re.finditer(pattern, sql, flags=re.IGNORECASE):
            found.append((sql.count("\n", 0, match.start()) + 1, name, fix))
    return sorted(found)


def sql_files() -> list[Path]:
    files = [p for d in SCANNED for p in sorted((DBT_DIR / d).rglob("*.sql"))]
    assert files, f"no dbt SQL found under {DBT_DIR}"
    return files


@pytest.mark.parametrize("path", sql_files(), ids=lambda p: str(p.relative_to(DBT_DIR)))
def test_dbt_sql_is_portable(path):
    # dispatched macros are the exception, in macros/ (and tests/generic), never in a model
    relative = path.relative_to(DBT_DIR)
    found = violations(path.read_text(), skip_dispatched_macros=relative.parts[0] != "models")
    assert not found, f"{path.relative_to(DBT_DIR)} has DuckDB-only SQL:\n" + "\n".join(
        f"  line {line}: {rule} -> use {fix}" for line, rule, fix in found
    )


@pytest.mark.parametrize(
    "snippet, rule",
    [
        ("select '2024-02-29'::date", "'::' cast"),
        ("select * from t qualify row_number() over () = 1", "QUALIFY"),
        ("select * exclude (a) from t", "select * exclude (...)"),
        ('select "k" from t', "double-quoted identifier"),
        ("select strftime(d, '%Y') from t", "strftime / strptime"),
        ("select strptime(s, '%Y') from t", "strftime / strptime"),
        ("select date_diff('day', a, b) from t", "date_diff / datediff with a quoted unit"),
        ("select datediff( 'month', a, b) from t", "date_diff / datediff with a quoted unit"),
        ("select [1, 2, 3]", "list literal / subscript"),
        ("select arg_max(v, k) from t", "arg_max / arg_min"),
        ("select ARG_MIN(v, k) from t", "arg_max / arg_min"),
        ("select 7 // 2", "'//' integer division"),
        ("select string_agg(v, ',') from t", "string_agg"),
        ("select cast(x as varchar) from t", "varchar / text type"),
        ("select cast(x as TEXT) from t", "varchar / text type"),
    ],
)
def test_guard_catches_each_duckdb_ism(snippet, rule):
    assert rule in [r for _, r, _ in violations(snippet)]


def test_guard_reads_only_the_sql():
    text = """{#- "quoted" [list] in a Jinja comment -#}
{{ config(meta={"dagster": {"ref": {"name": "x"}}}, partition_by=['d']) }}
{%- set cutoff = "cast(" ~ dbt.dateadd('day', -1, "d") ~ " as date)" -%}
select
    concat(a, '//', '[x]', 'it''s "fine"') as s, -- a "comment" with ::
    {{ dbt.datediff('a', 'b', 'day') }} as days /* varchar [ */
from t
{% macro duckdb__f(x) %} {{ x }}::date, "k", strftime(d, '%Y') {% endmacro %}
{% macro default__f(x) %} cast({{ x }} as date) {% endmacro %}
"""
    assert violations(text, skip_dispatched_macros=True) == []
    # without the exemption (as for a model file), the dispatched macro is flagged
    assert {r for _, r, _ in violations(text)} == {
        "'::' cast",
        "double-quoted identifier",
        "strftime / strptime",
    }
    # line numbers survive the stripping
    assert violations("{# a\nb #}\nselect\n  x::int") == [(4, "'::' cast", "cast(x as type)")]


def model_files() -> list[Path]:
    return sorted((DBT_DIR / "models").rglob("*.sql"))


@pytest.mark.parametrize("path", model_files(), ids=lambda p: str(p.relative_to(DBT_DIR)))
def test_every_model_builds_on_both_engines(path):
    """Every model, marts/customers included, builds on Spark too (tests/spark runs them all):
    no dbt-duckdb-only materialization or file reader, and an incremental model names its
    strategy through a dispatched macro (Spark's default for a unique_key appends duplicates)."""
    text = path.read_text()
    config = re.sub(r"\s+", "", text)
    assert "materialized='external'" not in config, f"{path.name}: external is dbt-duckdb only"
    sql = strip_sql_comments_and_strings(strip_jinja(text))
    assert not re.search(r"\bread_(parquet|csv|csv_auto|json)\s*\(", sql, re.IGNORECASE), (
        f"{path.name}: reads a file with a DuckDB function; declare a source instead"
    )
    if "materialized='incremental'" in config:
        assert re.search(r"incremental_strategy=\w+\(\)", config), (
            f"{path.name}: incremental without a per-adapter strategy"
        )
