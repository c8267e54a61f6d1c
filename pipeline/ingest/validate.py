"""Validate every staged row in DuckDB and rebuild raw.* and raw.quarantine from the good ones.

Each staged row gets exactly one outcome: loaded, or quarantined with the first reason that
applies, in the order of ``REASONS``. Only canonical column names written in this module reach
the SQL text; dates formats and the as-of date are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.ingest.config import ImportConfig
from pipeline.warehouse import quote_ident as q

# the quarantine reasons, in the order they are checked (a row gets the first that applies)
REASONS = (
    "missing_key",  # a key column (id, code, date, year) is null or blank
    "unparseable_date",  # a date matches none of PIPELINE_IMPORT_DATE_FORMAT
    "date_after_as_of",  # an order dated after the refresh's as-of date
    "non_numeric",  # a quantity, amount, price, cost, rate or year that is not a number
    "negative",  # a negative quantity, amount, price, cost or rate
    "exact_duplicate",  # the same values as an earlier row (earlier file, or earlier in the file)
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
        text=("customer_code", "customer", "platform", "channel", "market", "sub_zone", "region", "city", "email", "occupation"),
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
        text=("product_code",), keys=("product_code", "fiscal_year"), integers=("fiscal_year",),
        decimals=("gross_price",), unique=("product_code", "fiscal_year"), product_ref=True,
    ),
    "manufacturing_costs": Rules(
        text=("product_code",), keys=("product_code", "cost_year"), integers=("cost_year",),
        decimals=("manufacturing_cost",), unique=("product_code", "cost_year"), product_ref=True,
    ),
    "pre_invoice_deductions": Rules(
        text=("customer_code",), keys=("customer_code", "fiscal_year"), integers=("fiscal_year",),
        decimals=("pre_invoice_discount_pct",), unique=("customer_code", "fiscal_year"), customer_ref=True,
    ),
    "sales": Rules(
        text=("product_code", "customer_code", "order_id"), keys=("date", "product_code", "customer_code"),
        dates=("date",), orders_dated=("date",), integers=("sold_quantity",),
        customer_ref=True, product_ref=True,
    ),
    "sales_monthly": Rules(
        text=("product_code", "customer_code"), keys=("date", "product_code", "customer_code"),
        dates=("date",), orders_dated=("date",), integers=("sold_quantity",),
        customer_ref=True, product_ref=True, month_grain=True,
    ),
}


def transaction_rules(config: ImportConfig) -> Rules:
    c = config.columns
    return Rules(
        text=("customer_code",) + (("order_id",) if c.order else ()) + (("product_code",) if c.product else ()),
        keys=("customer_code", "order_date") + (("order_id",) if c.order else ()) + (("product_code",) if c.product else ()),
        dates=("order_date",),
        orders_dated=("order_date",),
        decimals=("amount",) + (("quantity",) if c.quantity else ()),
    )


def rules_for(config: ImportConfig) -> dict[str, Rules]:
    return ATLIQ_RULES if config.layout == "atliq" else {"transactions": transaction_rules(config)}


def _blank(expr: str) -> str:
    return f"({expr} is null or trim({expr}) = '')"


def _validate_sql(kind: str, rules: Rules, staged_columns: tuple[str, ...], decimal_comma: bool) -> str:
    def s(c: str) -> str:
        return f"s.{q(c)}"

    typed = [f"nullif(trim({s(c)}), '') as {q(c)}" for c in rules.text]
    for c in rules.dates:
        parsed = (
            f"coalesce(cast(try_strptime(trim({s(c)}), $formats) as date), case when s.file_format = 'parquet' "
            f"then try_cast(try_cast(trim({s(c)}) as timestamp) as date) end)"
        )
        if rules.month_grain:
            parsed = f"cast(date_trunc('month', {parsed}) as date)"
        typed.append(f"{parsed} as {q(c)}")
    typed += [f"try_cast(trim({s(c)}) as bigint) as {q(c)}" for c in rules.integers]
    for c in rules.decimals:
        text = f"replace(trim({s(c)}), ',', '.')" if decimal_comma else f"trim({s(c)})"
        typed.append(f"try_cast({text} as decimal(18, 4)) as {q(c)}")
    raw = [f"{s(c)} as {q('_raw_' + c)}" for c in rules.dates]
    everything = ", ".join(s(c) for c in staged_columns)

    checks = []
    if rules.keys:
        checks.append(("missing_key", " or ".join(_blank(q("_raw_" + c) if c in rules.dates else f"t.{q('_k_' + c)}") for c in rules.keys)))
    if rules.dates:
        checks.append(("unparseable_date", " or ".join(f"(not {_blank(q('_raw_' + c))} and t.{q(c)} is null)" for c in rules.dates)))
    if rules.orders_dated:
        checks.append(("date_after_as_of", " or ".join(f"t.{q(c)} > $as_of" for c in rules.orders_dated)))
    numbers = rules.integers + rules.decimals
    if numbers:
        checks.append(("non_numeric", " or ".join(f"t.{q(c)} is null" for c in numbers)))
        checks.append(("negative", " or ".join(f"t.{q(c)} < 0" for c in numbers)))
    checks.append(("exact_duplicate", "t._dup_rank > 1"))
    case = " ".join(f"when {cond} then '{reason}'" for reason, cond in checks)
    key_raw = ", ".join(f"{s(c)} as {q('_k_' + c)}" for c in rules.keys if c not in rules.dates)
    columns = ", ".join(q(c) for c in rules.columns)
    unique = ", ".join(q(c) for c in rules.unique)
    key_rank = (
        f"case when _reason is null then row_number() over (partition by _reason is null, {unique} "
        "order by file_seq, row_number) end"
        if rules.unique
        else "null"
    )
    return f"""
        create or replace temp table {q('_valid_' + kind)} as
        with typed as (
            select s.file_name, s.file_seq, s.row_number, s.original, {', '.join(typed)},
                {', '.join(raw) + ',' if raw else ''} {key_raw + ',' if key_raw else ''}
                row_number() over (partition by {everything} order by s.file_seq, s.row_number) as _dup_rank
            from raw.{q('import_' + kind)} as s
        ),
        reasoned as (
            select t.*, case {case} end as _reason from typed as t
        ),
        keyed as (
            select *, {key_rank} as _key_rank from reasoned
        )
        select file_name, file_seq, row_number, original, {columns},
            coalesce(_reason, case when _key_rank > 1 then 'duplicate_key' end) as reason
        from keyed
    """


def validate(conn: duckdb.DuckDBPyConnection, config: ImportConfig, staged_columns: dict[str, tuple[str, ...]]) -> dict[str, Rules]:
    """Build temp tables _valid_<kind>: typed values and a reason (null = loaded)."""
    rules = rules_for(config)
    decimal_comma = config.csv.decimal_separator == ","
    for kind, rule in rules.items():
        sql = _validate_sql(kind, rule, staged_columns[kind], decimal_comma)
        params = {}
        if "$formats" in sql:
            params["formats"] = list(config.date_formats)
        if "$as_of" in sql:
            params["as_of"] = config.as_of
        conn.execute(sql, params)
    # references, once the dimensions are settled
    for kind, rule in rules.items():
        for flag, column, reason, dim in (
            (rule.customer_ref, "customer_code", "unknown_customer", "customers"),
            (rule.product_ref, "product_code", "unknown_product", "products"),
        ):
            if flag:
                conn.execute(
                    f"update {q('_valid_' + kind)} as v set reason = '{reason}' where reason is null "
                    f"and not exists (select 1 from {q('_valid_' + dim)} as d where d.reason is null "
                    f"and d.{q(column)} = v.{q(column)})"
                )
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
        product = "coalesce(product_code, 'ALL')" if config.columns.product else "'ALL'"
        order = "order_id" if config.columns.order else "file_name || ':' || cast(row_number as varchar)"
        years = (
            f"(select unnest(range(coalesce((select min({fy}) from {base}), $as_of_fy), $as_of_fy + 1)) as fiscal_year)"
        )
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
                    select {order} as order_id, file_seq, row_number, order_date, customer_code,
                        {product} as product_code,
                        -- the amount in cents at a unit price of 0.01: quantity x price = amount exactly
                        cast(round(amount * 100) as bigint) as sold_quantity
                    from {base}
                )
                select order_id,
                    cast(row_number() over (partition by order_id order by file_seq, row_number) as integer) as line_number,
                    order_date, customer_code, product_code, sold_quantity
                from lines
            """,
        }
    counts = {}
    as_of_fy = config.as_of.year + (1 if config.as_of.month >= 9 else 0)
    for table, select in statements.items():
        platform, channel, region = config.customer_defaults
        values = {"as_of_fy": as_of_fy, "platform": platform, "channel": channel, "region": region}
        params = {k: v for k, v in values.items() if f"${k}" in select}
        conn.execute(f"create or replace table raw.{q(table)} as {select} order by all", params)
        (counts[table],) = conn.execute(f"select count(*) from raw.{q(table)}").fetchone()
    return counts


def build_quarantine(conn: duckdb.DuckDBPyConnection, config: ImportConfig, kinds: list[str]) -> None:
    union = " union all ".join(
        f"select file_name, row_number, '{kind}' as input_table, reason, original as original_values "
        f"from {q('_valid_' + kind)} where reason is not null"
        for kind in kinds
    )
    conn.execute(
        f"create or replace table raw.quarantine as select *, cast($as_of as date) as as_of_date "
        f"from ({union}) order by file_name, row_number",
        {"as_of": config.as_of},
    )


def file_outcomes(conn: duckdb.DuckDBPyConnection, kinds: list[str]) -> dict[str, tuple[int, int, dict[str, int]]]:
    """file name -> (loaded, quarantined, {reason: rows})."""
    union = " union all ".join(f"select file_name, reason from {q('_valid_' + kind)}" for kind in kinds)
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
