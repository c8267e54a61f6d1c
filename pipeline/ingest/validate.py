"""Validate the rows of the import in DuckDB, in two steps.

1. When a file is staged (``stage_sql``), each row is read with the settings in force then
   (date formats, decimal separator, column names) and typed; the reasons that depend only on the
   row and those settings are decided once and stored with it. A later change of a format
   setting applies to new files only (``python -m pipeline.cli reprocess`` re-reads old ones).
2. Every refresh (``create_views``), the staged rows get the reasons that depend on the refresh:
   the as-of date, duplicates across rows, and references to the loaded customers and products.

Each row gets exactly one outcome: loaded, or quarantined with the first reason that applies, in
the order of ``REASONS``. Only canonical column names written in this module reach the SQL text;
date formats and file names are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.ingest.config import ImportConfig
from pipeline.warehouse import quote_ident as q
from pipeline.warehouse import quote_literal

# the quarantine reasons, in the order they are checked (a row gets the first that applies)
REASONS = (
    "wrong_field_count",  # a CSV line with more or fewer fields than the header
    "malformed_row",  # a CSV line the reader cannot split (e.g. an unterminated quote)
    "missing_key",  # a key column (id, code, date, year) is null or blank
    "unparseable_date",  # a date matches none of PIPELINE_IMPORT_DATE_FORMAT
    "non_numeric",  # a quantity, amount, price, cost, rate or year that is not a number
    "not_integer",  # a fractional quantity or year where the layout needs a whole number
    "negative",  # a negative quantity, amount, price, cost or rate
    "date_after_as_of",  # an order dated after the refresh's as-of date
    "exact_duplicate",  # the same line again: same order id and values, or a repeated dimension row
    "conflicting_order",  # an order id seen earlier with another customer or order date
    "duplicate_key",  # a dimension key already loaded with other values
    "unknown_customer",  # a customer_code not in the loaded customers
    "unknown_product",  # a product_code not in the loaded products
)


@dataclass(frozen=True)
class Rules:
    text: tuple[str, ...]
    keys: tuple[str, ...]
    dates: tuple[str, ...] = ()  # optional dates (blank allowed) unless also in keys
    orders_dated: tuple[str, ...] = ()  # dates that must not be after the as-of date
    integers: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    customer_ref: bool = False
    product_ref: bool = False
    month_grain: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.text + self.dates + self.integers + self.decimals


ATLIQ_RULES = {
    "customers": Rules(
        text=(
            "customer_code",
            "customer",
            "platform",
            "channel",
            "market",
            "sub_zone",
            "region",
            "city",
            "email",
            "occupation",
        ),
        keys=("customer_code",),
        dates=("date_of_birth",),
        unique=("customer_code",),
    ),
    "products": Rules(
        text=("product_code", "division", "segment", "category", "product", "variant"),
        keys=("product_code",),
        unique=("product_code",),
    ),
    "gross_prices": Rules(
        text=("product_code",),
        keys=("product_code", "fiscal_year"),
        integers=("fiscal_year",),
        decimals=("gross_price",),
        unique=("product_code", "fiscal_year"),
        product_ref=True,
    ),
    "manufacturing_costs": Rules(
        text=("product_code",),
        keys=("product_code", "cost_year"),
        integers=("cost_year",),
        decimals=("manufacturing_cost",),
        unique=("product_code", "cost_year"),
        product_ref=True,
    ),
    "pre_invoice_deductions": Rules(
        text=("customer_code",),
        keys=("customer_code", "fiscal_year"),
        integers=("fiscal_year",),
        decimals=("pre_invoice_discount_pct",),
        unique=("customer_code", "fiscal_year"),
        customer_ref=True,
    ),
    "sales": Rules(
        text=("product_code", "customer_code", "order_id"),
        keys=("date", "product_code", "customer_code"),
        dates=("date",),
        orders_dated=("date",),
        integers=("sold_quantity",),
        customer_ref=True,
        product_ref=True,
    ),
    "sales_monthly": Rules(
        text=("product_code", "customer_code"),
        keys=("date", "product_code", "customer_code"),
        dates=("date",),
        orders_dated=("date",),
        integers=("sold_quantity",),
        customer_ref=True,
        product_ref=True,
        month_grain=True,
    ),
}


def transaction_rules(config: ImportConfig) -> Rules:
    """The staged columns are the same for every file (unmapped ones stay null), so files
    loaded under different column settings share one table; the keys follow the mapping."""
    c = config.columns
    return Rules(
        text=("customer_code", "order_id", "product_code"),
        keys=("customer_code", "order_date")
        + (("order_id",) if c.order else ())
        + (("product_code",) if c.product else ()),
        dates=("order_date",),
        orders_dated=("order_date",),
        decimals=("amount", "quantity"),
    )


def rules_for(config: ImportConfig) -> dict[str, Rules]:
    return ATLIQ_RULES if config.layout == "atliq" else {"transactions": transaction_rules(config)}


def _blank(expr: str) -> str:
    return f"({expr} is null or trim({expr}) = '')"


def column_types(rules: Rules) -> dict[str, str]:
    """The staged (typed) columns of a kind and their DuckDB types."""
    types = {c: "varchar" for c in rules.text}
    types.update({c: "date" for c in rules.dates})
    types.update({c: "bigint" for c in rules.integers})
    types.update({c: "decimal(18, 4)" for c in rules.decimals})
    return types


def _number(text: str, decimal_comma: bool) -> str:
    """A number read strictly: the decimal separator is the setting's, the other mark may only
    group thousands in threes (1.234,50 with a decimal comma), and anything else is not a number
    (never 1.234 read as 1.23 under a decimal comma)."""
    t = f"trim({text})"
    if decimal_comma:
        plain, grouped, sep, group = r"[+-]?\d+(,\d+)?", r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?", ",", "."
    else:
        plain, grouped, sep, group = (
            r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?",
            r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?",
            ".",
            ",",
        )
    canonical = f"replace(replace({t}, '{group}', ''), '{sep}', '.')"
    return (
        f"case when regexp_full_match({t}, '{plain}') or regexp_full_match({t}, '{grouped}') "
        f"then try_cast({canonical} as decimal(18, 4)) end"
    )


def stage_sql(
    kind: str,
    rules: Rules,
    mapping: dict[str, str | None],
    source: str,
    *,
    decimal_comma: bool,
    parquet: bool,
) -> str:
    """INSERT of one file's rows into raw.import_<kind>, typed and with the reasons decided at
    load. ``source`` is a relation with ``_pos`` (1-based row), ``_row`` (the row as a struct)
    and the file's columns as text. Parameters: $file, $seq, $formats."""

    def src(c: str) -> str:
        return f"src.{q(mapping[c])}" if mapping.get(c) else "cast(null as varchar)"

    typed = [f"nullif(trim({src(c)}), '') as {q(c)}" for c in rules.text]
    for c in rules.dates:
        parsed = f"cast(try_strptime(trim({src(c)}), $formats) as date)"
        if parquet:  # Parquet dates and timestamps arrive as ISO text
            parsed = f"coalesce({parsed}, try_cast(try_cast(trim({src(c)}) as timestamp) as date))"
        if rules.month_grain:
            parsed = f"cast(date_trunc('month', {parsed}) as date)"
        typed.append(f"{parsed} as {q(c)}")
    numbers = [c for c in rules.integers + rules.decimals if mapping.get(c)]
    typed += [
        f"{_number(src(c), decimal_comma and not parquet)} as {q(c)}"
        for c in rules.integers + rules.decimals
    ]
    raw = [f"{src(c)} as {q('_raw_' + c)}" for c in dict.fromkeys(rules.keys + rules.dates)]

    checks = []
    if rules.keys:
        checks.append(("missing_key", " or ".join(_blank(q("_raw_" + c)) for c in rules.keys)))
    if rules.dates:
        checks.append(
            (
                "unparseable_date",
                " or ".join(
                    f"(not {_blank(q('_raw_' + c))} and {q(c)} is null)" for c in rules.dates
                ),
            )
        )
    if numbers:
        checks.append(("non_numeric", " or ".join(f"{q(c)} is null" for c in numbers)))
        integers = [c for c in rules.integers if c in numbers]
        if integers:
            checks.append(
                ("not_integer", " or ".join(f"{q(c)} <> floor({q(c)})" for c in integers))
            )
        checks.append(("negative", " or ".join(f"{q(c)} < 0" for c in numbers)))
    case = " ".join(f"when {cond} then '{reason}'" for reason, cond in checks)
    stored = [
        f"case when {q(c)} = floor({q(c)}) then cast({q(c)} as bigint) end"
        if c in rules.integers
        else q(c)
        for c in rules.columns
    ]
    columns = ", ".join(q(c) for c in rules.columns)
    return f"""
        insert into raw.{q("import_" + kind)} (file_name, file_seq, row_number, {columns}, reason, original)
        with typed as (
            select src._pos, src._row, {", ".join(typed + raw)} from {source} as src
        ),
        reasoned as (
            select *, case {case or "when false then null"} end as _reason from typed
        )
        select $file, $seq, _pos, {", ".join(stored)}, _reason,
            -- the file's own values, kept for quarantined rows only
            case when _reason is not null then cast(to_json(_row) as varchar) end
        from reasoned
    """


def _view_sql(kind: str, rules: Rules, as_of) -> str:
    columns = ", ".join(q(c) for c in rules.columns)
    staged = f"raw.{q('import_' + kind)}"
    checks = []
    if rules.orders_dated:
        checks.append(
            (
                "date_after_as_of",
                " or ".join(
                    f"{q(c)} > cast({quote_literal(as_of.isoformat())} as date)"
                    for c in rules.orders_dated
                ),
            )
        )
    # identical rows are separate orders unless an order id says they are the same line; a
    # dimension row repeated is the same row
    conflict = None
    if rules.unique:
        ranked = (
            f"select *, case when reason is null then row_number() over (partition by reason is null, "
            f"{columns} order by file_seq, row_number) end as _dup_rank from {staged}"
        )
    elif "order_id" in rules.text:
        # ranked apart: a window over the rows without an order id would be all cost, no use.
        # An order has one customer and one date, which every model that counts orders relies
        # on: its first line (in file order) sets them, and a later line naming another customer
        # or date is quarantined, never loaded as a second order under the same id.
        (date,) = rules.orders_dated
        first_line = "over (partition by order_id order by file_seq, row_number)"
        ranked = (
            f"select *, row_number() over (partition by {columns} order by file_seq, row_number) as _dup_rank, "
            f"first_value(customer_code) {first_line} as _order_customer, "
            f"first_value({q(date)}) {first_line} as _order_date "
            f"from {staged} where reason is null and order_id is not null "
            f"union all by name select *, null as _dup_rank, null as _order_customer, "
            f"null as _order_date from {staged} "
            f"where reason is not null or order_id is null"
        )
        conflict = f"_order_customer is distinct from customer_code or _order_date is distinct from {q(date)}"
    else:
        ranked = f"select *, null as _dup_rank from {staged}"
    checks.append(("exact_duplicate", "_dup_rank > 1"))
    if conflict is not None:
        checks.append(("conflicting_order", f"_dup_rank is not null and ({conflict})"))
    case = " ".join(f"when {cond} then '{reason}'" for reason, cond in checks)
    key_rank = (
        f"case when _reason is null then row_number() over (partition by _reason is null, "
        f"{', '.join(q(c) for c in rules.unique)} order by file_seq, row_number) end"
        if rules.unique
        else "null"
    )
    refs = []
    for flag, column, reason, dim in (
        (rules.customer_ref, "customer_code", "unknown_customer", "customers"),
        (rules.product_ref, "product_code", "unknown_product", "products"),
    ):
        if flag:
            refs.append(
                f"when not exists (select 1 from {q('_valid_' + dim)} as d where d.reason is null "
                f"and d.{q(column)} = keyed.{q(column)}) then '{reason}'"
            )
    return f"""
        create or replace temp view {q("_valid_" + kind)} as
        with ranked as (
            {ranked}
        ),
        reasoned as (
            select *, coalesce(reason, case {case} end) as _reason from ranked
        ),
        keyed as (
            select *, coalesce(_reason, case when {key_rank} > 1 then 'duplicate_key' end) as _final from reasoned
        )
        select file_name, file_seq, row_number, {columns}, original,
            coalesce(_final, case {" ".join(refs) or "when false then null"} end) as reason
        from keyed
    """


def create_views(conn: duckdb.DuckDBPyConnection, config: ImportConfig) -> dict[str, Rules]:
    """Temp views _valid_<kind>: every staged row, typed, with its reason this refresh (null = loaded)."""
    rules = rules_for(config)
    for kind, rule in rules.items():  # customers and products first: the others refer to them
        conn.execute(_view_sql(kind, rule, config.as_of))
    return rules


def _fiscal_year(expr: str) -> str:
    return f"cast(extract(year from {expr} + interval 4 month) as integer)"


def build_raw_tables(conn: duckdb.DuckDBPyConnection, config: ImportConfig) -> dict[str, int]:
    """Rebuild raw.* (the same tables and columns the simulator writes) from the loaded rows."""
    if config.layout == "atliq":
        statements = {
            "customers": "select customer_code, customer, platform, channel, market, sub_zone, region, city, "
            "email, occupation, date_of_birth from _valid_customers where reason is null",
            "products": "select product_code, division, segment, category, product, variant "
            "from _valid_products where reason is null",
            "gross_prices": "select product_code, cast(fiscal_year as integer) as fiscal_year, gross_price "
            "from _valid_gross_prices where reason is null",
            "manufacturing_costs": "select product_code, cast(cost_year as integer) as cost_year, manufacturing_cost "
            "from _valid_manufacturing_costs where reason is null",
            "pre_invoice_deductions": "select customer_code, cast(fiscal_year as integer) as fiscal_year, "
            "pre_invoice_discount_pct from _valid_pre_invoice_deductions where reason is null",
            "order_lines": """
                with lines as (
                    select 0 as grain, file_seq, row_number, date, customer_code, product_code, sold_quantity,
                        coalesce(order_id, customer_code || '-' || strftime(date, '%Y-%m-%d')) as order_id
                    from _valid_sales where reason is null
                    union all
                    select 1, file_seq, row_number, date, customer_code, product_code, sold_quantity,
                        customer_code || '-' || strftime(date, '%Y-%m') || '-M'
                    from _valid_sales_monthly where reason is null
                )
                select order_id,
                    cast(row_number() over (partition by order_id order by grain, file_seq, row_number) as integer) as line_number,
                    date as order_date, customer_code, product_code, sold_quantity
                from lines
            """,
        }
    else:
        fy = _fiscal_year("order_date")
        base = "(select * from _valid_transactions where reason is null)"
        # per row, not per setting: each file keeps the columns it was loaded with
        product = "coalesce(product_code, 'ALL')"
        order = "coalesce(order_id, file_name || ':' || cast(row_number as varchar))"
        years = f"(select unnest(range(coalesce((select min({fy}) from {base}), $as_of_fy), $as_of_fy + 1)) as fiscal_year)"
        products = f"(select distinct {product} as product_code from {base})"
        customers = f"(select distinct customer_code from {base})"
        statements = {
            "customers": f"select customer_code, customer_code as customer, cast($platform as varchar) as platform, "
            "cast($channel as varchar) as channel, 'Unknown' as market, 'Unknown' as sub_zone, cast($region as varchar) as region, cast(null as varchar) as city, "
            "cast(null as varchar) as email, cast(null as varchar) as occupation, cast(null as date) as date_of_birth "
            f"from {customers}",
            "products": "select product_code, 'P & A' as division, 'Accessories' as segment, 'Unknown' as category, "
            f"product_code as product, 'Unknown' as variant from {products}",
            "gross_prices": "select p.product_code, cast(y.fiscal_year as integer) as fiscal_year, "
            f"cast(0.01 as decimal(18, 4)) as gross_price from {products} as p cross join {years} as y",
            "manufacturing_costs": "select p.product_code, cast(y.fiscal_year as integer) as cost_year, "
            f"cast(0 as decimal(18, 4)) as manufacturing_cost from {products} as p cross join {years} as y",
            "pre_invoice_deductions": "select c.customer_code, cast(y.fiscal_year as integer) as fiscal_year, "
            f"cast(0 as decimal(18, 4)) as pre_invoice_discount_pct from {customers} as c cross join {years} as y",
            "order_lines": f"""
                with lines as (
                    select {order} as order_id, b.order_id is not null as has_order_id, file_seq, row_number,
                        order_date, customer_code, {product} as product_code,
                        -- the amount in cents at a unit price of 0.01: quantity x price = amount exactly
                        cast(round(amount * 100) as bigint) as sold_quantity
                    from {base} as b
                )
                select order_id,
                    cast(row_number() over (partition by order_id order by file_seq, row_number) as integer) as line_number,
                    order_date, customer_code, product_code, sold_quantity
                from lines where has_order_id
                union all
                select order_id, 1, order_date, customer_code, product_code, sold_quantity
                from lines where not has_order_id
            """,
        }
    counts = {}
    as_of_fy = config.as_of.year + (1 if config.as_of.month >= 9 else 0)
    for table, select in statements.items():
        platform, channel, region = config.customer_defaults
        values = {"as_of_fy": as_of_fy, "platform": platform, "channel": channel, "region": region}
        params = {k: v for k, v in values.items() if f"${k}" in select}
        # unsorted: raw tables are sets, and sorting millions of rows buys nothing downstream
        conn.execute(f"create or replace table raw.{q(table)} as {select}", params)
        (counts[table],) = conn.execute(f"select count(*) from raw.{q(table)}").fetchone()
    return counts


def build_quarantine(
    conn: duckdb.DuckDBPyConnection, config: ImportConfig, rules: dict[str, Rules]
) -> None:
    """raw.quarantine: the rows not loaded this refresh. original_values is the file's own text:
    the row's values as JSON, or the raw line when the reader could not split it; a row refused
    only this refresh (as-of date, duplicate, reference) shows its loaded values as JSON."""
    union = " union all ".join(
        f"select file_name, row_number, '{kind}' as input_table, reason, coalesce(original, "
        f"cast(to_json(struct_pack({', '.join(f'{q(c)} := {q(c)}' for c in rule.columns)})) as varchar)) "
        f"as original_values from {q('_valid_' + kind)} where reason is not null"
        for kind, rule in rules.items()
    )
    conn.execute(
        f"create or replace table raw.quarantine as select *, cast($as_of as date) as as_of_date "
        f"from ({union}) order by file_name, row_number",
        {"as_of": config.as_of},
    )


def file_outcomes(
    conn: duckdb.DuckDBPyConnection, kinds: list[str]
) -> dict[str, tuple[int, int, dict[str, int]]]:
    """file name -> (loaded, quarantined, {reason: rows})."""
    union = " union all ".join(
        f"select file_name, reason from {q('_valid_' + kind)}" for kind in kinds
    )
    rows = conn.execute(
        f"select file_name, reason, count(*) from ({union}) group by all order by all"
    ).fetchall()
    out: dict[str, tuple[int, int, dict[str, int]]] = {}
    for file_name, reason, n in rows:
        loaded, quarantined, reasons = out.get(file_name, (0, 0, {}))
        if reason is None:
            loaded += n
        else:
            quarantined += n
            reasons[reason] = n
        out[file_name] = (loaded, quarantined, reasons)
    return out
