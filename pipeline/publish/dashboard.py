"""The self-contained HTML dashboard: headline numbers and plotly charts over the marts.

Pure logic, no Dagster: ``build_dashboard(conn)`` reads the marts through a DuckDB connection
(read-only is enough) and returns one HTML page that opens offline: plotly.js is embedded once,
inline. Every query aggregates in DuckDB, so the page stays small at 1M customers (histograms
are binned and the Pareto curve sampled in SQL). A section whose mart is missing or empty shows a
note instead of a chart.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

SCHEMA = "marts"
CHART_CLASS = "chart"
TEMPLATE = "plotly_white"


@dataclass
class Page:
    """Sections of the page in order; counts the charts so a test can check they all drew."""

    sections: list[str] = field(default_factory=list)
    charts: int = 0

    def chart(self, fig: go.Figure, note: str = "") -> None:
        # the template (TEMPLATE) comes with the figure: build_dashboard makes it the default
        fig.update_layout(margin=dict(l=60, r=30, t=60, b=50), height=420)
        first = self.charts == 0
        self.charts += 1
        body = fig.to_html(
            full_html=False,
            include_plotlyjs=first,  # plotly.js inline once, so the file opens offline
            div_id=f"chart-{self.charts}",
            config={"displaylogo": False, "responsive": True},
        )
        caption = f'<p class="note">{html.escape(note)}</p>' if note else ""
        self.sections.append(f'<div class="{CHART_CLASS}">{body}{caption}</div>')

    def heading(self, text: str) -> None:
        self.sections.append(f"<h2>{html.escape(text)}</h2>")

    def missing(self, what: str) -> None:
        self.sections.append(f'<p class="missing">No data for {html.escape(what)} yet.</p>')


def _query(conn: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """The query's rows, or an empty frame when a mart it reads does not exist (yet)."""
    try:
        return conn.execute(sql).df()
    except duckdb.CatalogException:
        return pd.DataFrame()


def headline(conn: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """The numbers the page leads with."""
    row = _query(
        conn,
        f"""
        select
            count(*) as customers,
            count(*) filter (where has_orders) as customers_with_orders,
            sum(total_net_sales) as net_sales,
            sum(total_gross_margin) as gross_margin,
            max(as_of_date) as as_of_date
        from {SCHEMA}.customer_single_view
        """,
    )
    pareto = _query(conn, f"select * from {SCHEMA}.customer_pareto_summary")
    # the latest fiscal year against the same days a year earlier (like for like)
    growth = _query(
        conn,
        f"""
        select fiscal_year, bool_or(is_year_to_date) as is_year_to_date,
            sum(net_sales) / nullif(sum(net_sales_previous_year), 0) - 1 as net_sales_yoy_pct
        from {SCHEMA}.insight_finance_yearly
        where fiscal_year = (select max(fiscal_year) from {SCHEMA}.insight_finance_yearly)
        group by fiscal_year
        """,
    )
    out: dict[str, object] = {}
    if not row.empty:
        r = row.iloc[0]
        net = float(r["net_sales"] or 0)
        out = {
            "customers": int(r["customers"]),
            "customers_with_orders": int(r["customers_with_orders"]),
            "net_sales": net,
            "gross_margin_pct": float(r["gross_margin"] or 0) / net if net else None,
            "as_of_date": str(r["as_of_date"])[:10] if r["as_of_date"] is not None else "n/a",
        }
    if not pareto.empty:
        p = pareto.iloc[0]
        out["pareto_customer_share"] = float(p["pareto_customers"]) / max(int(p["customers"]), 1)
        out["pareto_net_sales_share"] = float(p["pareto_net_sales_share"])
    if not growth.empty:
        g = growth.iloc[0]
        out["fiscal_year"] = int(g["fiscal_year"])
        out["fiscal_year_to_date"] = bool(g["is_year_to_date"])
        out["net_sales_yoy_pct"] = (
            None if pd.isna(g["net_sales_yoy_pct"]) else float(g["net_sales_yoy_pct"])
        )
    return out


def _cards(numbers: dict[str, object]) -> str:
    def pct(v):
        return "n/a" if v is None else f"{float(v):.1%}"

    cards = [
        (
            "Customers",
            f"{numbers.get('customers', 0):,}",
            f"{numbers.get('customers_with_orders', 0):,} with orders",
        ),
        ("Net sales", f"{numbers.get('net_sales', 0):,.0f}", "after pre-invoice discounts"),
        ("Gross margin", pct(numbers.get("gross_margin_pct")), "of net sales"),
        (
            "Pareto",
            pct(numbers.get("pareto_customer_share")),
            f"of customers make {pct(numbers.get('pareto_net_sales_share'))} of net sales",
        ),
        (
            f"FY{numbers.get('fiscal_year', '')} net sales vs last year",
            "n/a"
            if numbers.get("net_sales_yoy_pct") is None
            else f"{numbers['net_sales_yoy_pct']:+.1%}",
            "year to date, same days a year earlier"
            if numbers.get("fiscal_year_to_date")
            else "whole fiscal year",
        ),
        ("As of", str(numbers.get("as_of_date", "n/a")), "every score is as of this date"),
    ]
    items = "".join(
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div><div class="sub">{html.escape(sub)}</div></div>'
        for label, value, sub in cards
    )
    return f'<div class="cards">{items}</div>'


def _revenue_over_time(page: Page, conn) -> None:
    df = _query(
        conn,
        f"""
        select month_start_date, sum(net_sales) as net_sales, sum(gross_margin) as gross_margin
        from {SCHEMA}.insight_finance_monthly group by 1 order by 1
        """,
    )
    if df.empty:
        return page.missing("revenue over time")
    df["margin_pct"] = df["gross_margin"].astype(float) / df["net_sales"].astype(float)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["month_start_date"], y=df["net_sales"].astype(float), name="Net sales")
    fig.add_bar(x=df["month_start_date"], y=df["gross_margin"].astype(float), name="Gross margin")
    fig.add_scatter(
        x=df["month_start_date"],
        y=df["margin_pct"],
        name="Margin %",
        mode="lines",
        secondary_y=True,
    )
    fig.update_yaxes(tickformat=".0%", secondary_y=True, rangemode="tozero")
    fig.update_layout(title="Net sales and gross margin by month", barmode="group")
    page.chart(fig)


def _customers(page: Page, conn) -> None:
    top = _query(
        conn,
        f"""
        select customer_code, segment, total_net_sales
        from {SCHEMA}.customer_single_view where has_orders
        order by total_net_sales desc, customer_code limit 20
        """,
    )
    if top.empty:
        return page.missing("top customers")
    top["total_net_sales"] = top["total_net_sales"].astype(float)
    fig = px.bar(
        top,
        x="customer_code",
        y="total_net_sales",
        color="segment",
        title="Top 20 customers by net sales",
    )
    fig.update_xaxes(categoryorder="total descending")
    page.chart(fig)
    # the Pareto curve, sampled at ~200 points in SQL
    curve = _query(
        conn,
        f"""
        with ranked as (
            select
                row_number() over (order by total_net_sales desc, customer_code) as n,
                count(*) over () as customers,
                sum(total_net_sales) over (order by total_net_sales desc, customer_code
                    rows between unbounded preceding and current row) as cumulative,
                sum(total_net_sales) over () as total
            from {SCHEMA}.customer_single_view where has_orders
        )
        select n / customers as customer_share, cumulative / nullif(total, 0) as net_sales_share
        from ranked
        where n % greatest(1, cast(customers / 200 as bigint)) = 0 or n = 1 or n = customers
        order by n
        """,
    )
    fig = go.Figure(
        go.Scatter(
            x=curve["customer_share"].astype(float),
            y=curve["net_sales_share"].astype(float),
            mode="lines",
            name="Cumulative share",
        )
    )
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="50% of net sales")
    fig.update_layout(
        title="Pareto curve: share of net sales made by the top customers",
        xaxis=dict(title="Share of customers (best first)", tickformat=".0%"),
        yaxis=dict(title="Share of net sales", tickformat=".0%"),
    )
    page.chart(fig)


def _rfm_grid(page: Page, conn) -> None:
    """The R x FM map: customers per cell, labelled with the cell's segment."""
    cells = _query(
        conn,
        f"""
        select r_score, fm_score, max(segment) as segment, count(*) as customers
        from {SCHEMA}.customer_single_view
        where has_orders and not is_new_customer
        group by 1, 2 order by 1, 2
        """,
    )
    if cells.empty:
        return page.missing("the RFM map")
    new = _query(
        conn,
        f"select count(*) as n from {SCHEMA}.customer_single_view where is_new_customer",
    )
    grid = cells.pivot_table(index="r_score", columns="fm_score", values="customers", fill_value=0)
    grid = grid.reindex(index=[5, 4, 3, 2, 1], columns=[1, 2, 3, 4, 5], fill_value=0)
    names = cells.pivot(index="r_score", columns="fm_score", values="segment")
    names = names.reindex(index=grid.index, columns=grid.columns).fillna("")
    text = [[f"{names.iat[i, j]}<br>{int(grid.iat[i, j]):,}" for j in range(5)] for i in range(5)]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[f"FM {c}" for c in grid.columns],
            y=[f"R {r}" for r in grid.index],
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title="RFM map: customers per R x FM cell (FM = mean of F and M, rounded half up)",
        height=480,
    )
    n_new = int(new["n"].iloc[0]) if not new.empty else 0
    page.chart(
        fig,
        f"New Customers (first order within the new-customer window, any scores): {n_new:,}; "
        "customers without orders are not on the map.",
    )


def _rfm(page: Page, conn) -> None:
    _rfm_grid(page, conn)
    seg = _query(
        conn,
        f"select segment, customers, net_sales from {SCHEMA}.customer_segment_summary "
        "where customers > 0 order by segment",
    )
    if seg.empty:
        page.missing("RFM segments")
    else:
        seg["net_sales"] = seg["net_sales"].astype(float)
        fig = px.treemap(
            seg,
            path=["segment"],
            values="customers",
            color="net_sales",
            color_continuous_scale="Blues",
            title="RFM segments (size = customers, colour = net sales)",
        )
        page.chart(fig)
    mig = _query(
        conn,
        f"""
        select from_segment, to_segment, customers, previous_as_of_date
        from {SCHEMA}.customer_segment_migration
        order by from_segment, to_segment
        """,
    )
    if mig.empty:
        return page.missing("segment migration")
    matrix = mig.pivot_table(
        index="from_segment", columns="to_segment", values="customers", fill_value=0
    )
    since = mig["previous_as_of_date"].dropna()
    label = f"since {str(since.iloc[0])[:10]}" if len(since) else "(first refresh: everyone is New)"
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            colorscale="Blues",
            text=matrix.to_numpy(),
            texttemplate="%{text}",
        )
    )
    fig.update_layout(
        title=f"Segment migration {label}", xaxis_title="Segment now", yaxis_title="Segment before"
    )
    page.chart(fig)


def _actions(page: Page, conn) -> None:
    """The two actions: the next categories to suggest and the discount offers."""
    nxt = _query(
        conn,
        f"""
        select category, segment, count(*) as customers
        from {SCHEMA}.customer_next_categories where recommendation_rank = 1
        group by 1, 2 order by 1, 2
        """,
    )
    if nxt.empty:
        page.missing("next categories")
    else:
        fig = px.bar(
            nxt,
            x="category",
            y="customers",
            color="segment",
            title="Next best category: customers it is the first suggestion for, by RFM segment",
        )
        fig.update_xaxes(categoryorder="total descending")
        page.chart(
            fig,
            "A customer's next categories are the ones most bought in their RFM segment "
            "that they have not bought yet.",
        )
    offers = _query(
        conn,
        f"""
        select segment, discount_reason, count(*) as customers,
            -- in decimals: a float sum changes in its last bits with the order rows come in
            sum(cast(expected_margin_12m as decimal(18, 2))) as expected_margin_12m,
            avg(cast(suggested_discount_pct as decimal(18, 6))) as avg_discount_pct
        from {SCHEMA}.customer_single_view where is_offer
        group by 1, 2 order by 1, 2
        """,
    )
    totals = _query(
        conn,
        f"""
        select count(*) filter (where is_offer) as offers,
            count(*) filter (where has_orders) as customers_with_orders,
            sum(cast(expected_margin_12m as decimal(18, 2))) filter (where is_offer)
                / nullif(sum(cast(expected_margin_12m as decimal(18, 2))), 0) as margin_share
        from {SCHEMA}.customer_single_view
        """,
    )
    if offers.empty:
        return page.missing("discount offers")
    offers["expected_margin_12m"] = offers["expected_margin_12m"].astype(float)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Customers offered a discount", "Their expected 12-month margin"),
    )
    for reason, rows in offers.groupby("discount_reason"):
        by_segment = rows.set_index("segment")
        fig.add_bar(
            x=by_segment.index,
            y=by_segment["customers"],
            name=reason,
            legendgroup=reason,
            row=1,
            col=1,
        )
        fig.add_bar(
            x=by_segment.index,
            y=by_segment["expected_margin_12m"],
            name=reason,
            legendgroup=reason,
            showlegend=False,
            row=1,
            col=2,
        )
    fig.update_layout(title="Discount offers by RFM segment and reason", barmode="stack")
    note = ""
    if not totals.empty:
        t = totals.iloc[0]
        share = t["margin_share"]
        note = (
            f"{int(t['offers']):,} of {int(t['customers_with_orders']):,} customers with orders get an offer "
            f"(the top 30% by expected 12-month margin, capped at their margin rate)"
            + ("" if pd.isna(share) else f"; they hold {float(share):.0%} of the expected margin")
            + "."
        )
    page.chart(fig, note)


def _cltv(page: Page, conn) -> None:
    bins = _query(
        conn,
        f"""
        with v as (
            select clv_12m from {SCHEMA}.customer_single_view where has_orders and clv_12m is not null
        ),
        bounds as (select quantile_cont(clv_12m, 0.99) as hi from v)
        select
            least(floor(v.clv_12m / nullif(bounds.hi, 0) * 40), 39) as bin,
            any_value(bounds.hi) as hi,
            count(*) as customers
        from v cross join bounds
        group by 1 order by 1
        """,
    )
    if bins.empty:
        page.missing("CLTV")
    else:
        hi = float(bins["hi"].iloc[0] or 0) or 1.0
        x = (bins["bin"].astype(float) + 0.5) * hi / 40
        fig = go.Figure(go.Bar(x=x, y=bins["customers"], width=hi / 40, name="Customers"))
        fig.update_layout(
            title="12-month CLV distribution (top 1% in the last bin)",
            xaxis_title="CLV (12 months)",
            yaxis_title="Customers",
        )
        page.chart(fig)
    tiers = _query(
        conn,
        f"""
        select value_tier, count(*) as customers, sum(cast(clv_12m as decimal(18, 2))) as clv_12m
        from {SCHEMA}.customer_single_view where value_tier <> 'none'
        group by 1 order by case value_tier when 'high' then 1 when 'medium' then 2 else 3 end
        """,
    )
    if tiers.empty:
        return page.missing("value tiers")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Customers", "Predicted 12-month CLV"))
    fig.add_bar(x=tiers["value_tier"], y=tiers["customers"], row=1, col=1, name="Customers")
    fig.add_bar(x=tiers["value_tier"], y=tiers["clv_12m"].astype(float), row=1, col=2, name="CLV")
    fig.update_layout(title="Value tiers", showlegend=False)
    page.chart(fig)


def _backtest(page: Page, conn) -> None:
    df = _query(
        conn,
        f"""
        select model, metric, value from {SCHEMA}.model_evaluation
        where model_family = 'cltv' and evaluation = 'backtest'
            and as_of_date = (select max(as_of_date) from {SCHEMA}.model_evaluation)
        order by model, metric
        """,
    )
    if df.empty:
        return page.missing("the CLTV backtest")
    totals = df[df["metric"].isin(["purchases_total", "value_total"])]
    if totals.empty:  # fall back to whatever totals the evaluation reports
        totals = df[df["metric"].str.endswith("total")]
    fig = px.bar(
        totals,
        x="model",
        y="value",
        color="model",
        facet_col="metric",
        title="Backtest over the holdout: predicted (CLTV candidates, baselines) vs actual",
    )
    fig.update_yaxes(matches=None, showticklabels=True)  # purchases and value on their own scales
    errors = df[df["metric"] == "purchases_rmse"]
    note = "; ".join(f"{r.model} {r.metric} = {r.value:,.3f}" for r in errors.itertuples())
    page.chart(fig, note)


def _clusters(page: Page, conn) -> None:
    prof = _query(
        conn,
        f"""
        select * from {SCHEMA}.cluster_profiles
        where as_of_date = (select max(as_of_date) from {SCHEMA}.cluster_profiles)
        order by cluster_id
        """,
    )
    if prof.empty:
        return page.missing("clusters")
    size_col = next((c for c in ("customers", "size", "n_customers") if c in prof.columns), None)
    if size_col:
        fig = px.bar(prof, x="name", y=size_col, title="Clusters: customers per cluster")
        page.chart(fig)
    means = [c for c in prof.columns if c.endswith("_mean")]
    if means:
        z = prof[means].astype(float)
        z = (z - z.mean()) / z.std(ddof=0).replace(0, 1)
        fig = go.Figure(
            go.Heatmap(
                z=z.to_numpy(),
                x=[m.removesuffix("_mean") for m in means],
                y=prof["name"],
                colorscale="RdBu",
                zmid=0,
                text=prof[means].astype(float).round(2).to_numpy(),
                texttemplate="%{text}",
            )
        )
        fig.update_layout(
            title="Cluster profiles: feature means (colour = z-score across clusters)"
        )
        page.chart(fig)


def _segments(page: Page, conn) -> None:
    df = _query(
        conn,
        f"select * from {SCHEMA}.insight_segment_performance order by platform, channel, region",
    )
    if df.empty:
        return page.missing("customer segments")
    df["label"] = df["platform"] + " / " + df["channel"] + " / " + df["region"]
    for c in ("net_sales_share_last_12m", "net_sales_growth_pct", "net_sales", "gross_margin_pct"):
        df[c] = df[c].astype(float)
    fig = px.scatter(
        df,
        x="net_sales_share_last_12m",
        y="net_sales_growth_pct",
        size="customers",
        color="growth_quadrant",
        hover_name="label",
        text="label",
        title="Segment contribution vs growth (last 12 months vs the 12 before)",
    )
    fig.update_traces(textposition="top center", textfont_size=9)
    avg = df["average_segment_share"].dropna()
    total = df["total_net_sales_growth_pct"].dropna()
    if len(avg):
        fig.add_vline(x=float(avg.iloc[0]), line_dash="dot", annotation_text="average share")
    if len(total):
        fig.add_hline(y=float(total.iloc[0]), line_dash="dot", annotation_text="overall growth")
    fig.update_layout(
        xaxis=dict(tickformat=".0%", title="Share of net sales"),
        yaxis=dict(tickformat=".0%", title="Net sales growth"),
    )
    page.chart(
        fig,
        "Growth opportunity = share below the average segment share and growth above the overall growth.",
    )
    df = df.sort_values("net_sales", ascending=False, kind="stable")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["label"], y=df["net_sales"], name="Net sales")
    fig.add_scatter(
        x=df["label"], y=df["gross_margin_pct"], name="Margin %", mode="markers", secondary_y=True
    )
    fig.update_yaxes(tickformat=".0%", secondary_y=True, rangemode="tozero")
    fig.update_layout(title="Net sales and margin % by segment (platform / channel / region)")
    page.chart(fig)


def _products(page: Page, conn) -> None:
    best = _query(
        conn,
        f"""
        with latest as (select max(fiscal_year) as fy from {SCHEMA}.insight_product_bestsellers)
        select product || ' ' || variant as product, fiscal_year,
            sum(sold_quantity) as sold_quantity, sum(gross_margin) as gross_margin
        from {SCHEMA}.insight_product_bestsellers, latest
        where fiscal_year = latest.fy
        group by 1, 2 order by 1, 2
        """,
    )
    if best.empty:
        return page.missing("bestsellers")
    fy = int(best["fiscal_year"].iloc[0])
    best["gross_margin"] = best["gross_margin"].astype(float)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("By quantity", "By gross margin"))
    q = best.nlargest(10, "sold_quantity").iloc[::-1]
    m = best.nlargest(10, "gross_margin").iloc[::-1]
    fig.add_bar(y=q["product"], x=q["sold_quantity"], orientation="h", row=1, col=1)
    fig.add_bar(y=m["product"], x=m["gross_margin"], orientation="h", row=1, col=2)
    fig.update_layout(title=f"Bestsellers, FY{fy} (all markets)", showlegend=False, height=480)
    page.chart(fig)
    trends = _query(
        conn,
        f"select fiscal_year, category, net_sales from {SCHEMA}.insight_category_trends order by 1, 2",
    )
    if not trends.empty:
        trends["net_sales"] = trends["net_sales"].astype(float)
        trends["fiscal_year"] = "FY" + trends["fiscal_year"].astype(str)
        fig = px.line(
            trends,
            x="fiscal_year",
            y="net_sales",
            color="category",
            markers=True,
            title="Category trends: net sales by fiscal year (last year to date)",
        )
        page.chart(fig)


def _cohorts(page: Page, conn) -> None:
    df = _query(
        conn,
        f"""
        select cohort_month, months_since_first_order, retention_rate
        from {SCHEMA}.insight_customer_cohorts where months_since_first_order <= 24
        order by 1, 2
        """,
    )
    if df.empty:
        return page.missing("cohorts")
    matrix = df.pivot_table(
        index="cohort_month", columns="months_since_first_order", values="retention_rate"
    )
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=[str(i)[:7] for i in matrix.index],
            colorscale="Viridis",
            zmin=0,
            zmax=max(
                0.01, float(df.loc[df.months_since_first_order > 0, "retention_rate"].max() or 0.01)
            ),
        )
    )
    fig.update_layout(
        title="Acquisition cohorts: share of the cohort ordering N months after its first order",
        xaxis_title="Months since first order",
        yaxis_title="Cohort (first order month)",
        height=520,
    )
    page.chart(fig, "Month 0 (100%) is off the colour scale's top.")


CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1320px; color: #1f2933; }
h1 { margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #d9e2ec; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.card { flex: 1 1 200px; background: #f0f4f8; border-radius: 8px; padding: 14px 18px; }
.card .label { font-size: 13px; text-transform: uppercase; color: #52606d; }
.card .value { font-size: 30px; font-weight: 600; margin: 4px 0; }
.card .sub, .note, .meta { font-size: 13px; color: #52606d; }
.missing { color: #9f580a; }
"""


def build_dashboard(
    conn: duckdb.DuckDBPyConnection, generated_at: dt.datetime | None = None
) -> str:
    """The whole page as one HTML string."""
    with _default_template(TEMPLATE):
        return _page(conn, generated_at)


@contextmanager
def _default_template(name: str):
    """Plotly's default template, for the block: every figure starts with the page's template.
    Setting it on each finished figure instead made plotly validate and copy a whole template
    twice per chart (the default one, then its replacement): a third of the page's time."""
    previous = pio.templates.default
    pio.templates.default = name
    try:
        yield
    finally:
        pio.templates.default = previous


def _page(conn: duckdb.DuckDBPyConnection, generated_at: dt.datetime | None) -> str:
    numbers = headline(conn)
    page = Page()
    page.heading("Revenue and margin")
    _revenue_over_time(page, conn)
    page.heading("Customers: top customers and the Pareto curve")
    _customers(page, conn)
    page.heading("RFM segments")
    _rfm(page, conn)
    page.heading("Actions: next categories and discount offers")
    _actions(page, conn)
    page.heading("Customer lifetime value")
    _cltv(page, conn)
    page.heading("CLTV model backtest")
    _backtest(page, conn)
    page.heading("Clusters")
    _clusters(page, conn)
    page.heading("Segments: contribution and growth")
    _segments(page, conn)
    page.heading("Products")
    _products(page, conn)
    page.heading("Acquisition cohorts")
    _cohorts(page, conn)
    stamp = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Customer analytics dashboard</title>"
        f"<style>{CSS}</style></head>"
        f'<body data-charts="{page.charts}">'
        "<h1>Customer analytics</h1>"
        f'<p class="meta">As of {html.escape(str(numbers.get("as_of_date", "n/a")))}; generated {stamp}.</p>'
        + _cards(numbers)
        + "".join(page.sections)
        + "</body></html>\n"
    )


def write_dashboard(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Write the page to ``path`` atomically (temp name, then ``os.replace``); returns its size."""
    text = build_dashboard(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return len(text.encode("utf-8"))
