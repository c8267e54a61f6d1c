"""The two comparisons, on the warehouse a benchmarked refresh left behind (opened read-only).

1. **lifetimes' own path** against our CLTV stage. lifetimes, as its documentation runs it:
   ``summary_data_from_transaction_data`` over the order lines of ``marts.fact_sales``, then
   ``BetaGeoFitter.fit`` on every customer with orders (one row per customer), then
   ``GammaGammaFitter.fit`` on the repeat customers with positive spend, then
   ``customer_lifetime_value`` (12 months, ``freq='D'``, the monthly rate that compounds to the
   pipeline's annual rate). Ours: ``pipeline.analytics.cltv`` on ``intermediate.customer_summary`` (the
   SQL summary), timed in this process on the same data, beside the CLTV stage of the run.
   Both sides read their input from DuckDB before the clock starts.

   Agreement is checked at three levels:

   - *summary*: lifetimes' summary equals ``customer_summary`` (frequency, recency and T
     exactly; monetary value to ``SUMMARY_RTOL``, sums in another order);
   - *scoring*: lifetimes' ``customer_lifetime_value`` evaluated with *our* fitted models on its
     own summary equals our ``clv_12m`` to ``SCORING_RTOL`` (same parameters: any difference
     would be a formula difference);
   - *end to end*: its independently fitted models give parameters and ``clv_12m`` within
     ``FIT_RTOL`` (relative) and ``p_alive`` within ``FIT_ATOL_P_ALIVE`` (absolute) of ours.
     They are fit on the same likelihood (ours on unique histories with weights, theirs row by
     row) with the same penalizer, so they differ only by where the optimiser stops.

2. **The floor**: a bare DuckDB scan of ``marts.fact_sales``, one GROUP BY customer computing
   count, min and max date and sum of net sales, into a temporary table; the best of a few
   repeats. Our customer-summary/RFM stage is reported as a multiple of it.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.rss import TreeSampler

# lifetimes' summary vs customer_summary: counts and days must match exactly; monetary values
# are means of sums taken in a different order (pandas vs DuckDB).
SUMMARY_RTOL = 1e-9
# lifetimes' CLV formula with our fitted models vs our clv_12m: the same arithmetic.
SCORING_RTOL = 1e-9
# Independently fitted models: parameters and clv_12m within this relative difference, p_alive
# (a probability) within FIT_ATOL_P_ALIVE. Both sides minimise the same mean log-likelihood from
# the same starting point with lifetimes' optimiser (tol 1e-7); at 20,000 customers they agree
# to ~1e-13, so anything above 1e-6 means the fits went different ways.
FIT_RTOL = 1e-6
FIT_ATOL_P_ALIVE = 1e-6

SPEND_AMOUNT = {"margin": "gross_margin_amount", "revenue": "net_sales_amount"}


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start


def max_rel_diff(a, b, floor: float = 1e-12) -> float:
    """Largest |a - b| / max(|a|, |b|, floor) over aligned arrays; NaN on both sides counts as equal."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    diff = np.where(both_nan, 0.0, np.abs(a - b) / scale)
    if diff.size == 0:
        return 0.0
    return float(np.nan_to_num(diff, nan=np.inf).max())


def max_abs_diff(a, b) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    diff = np.abs(a - b)
    if diff.size == 0:
        return 0.0
    return float(np.nan_to_num(diff, nan=np.inf).max())


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse), read_only=True)


def table_exists(conn, schema: str, table: str) -> bool:
    (n,) = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return n > 0


# --- 1. lifetimes ---------------------------------------------------------------------------


def lifetimes_comparison(
    warehouse: Path,
    as_of: str,
    spend: str,
    annual_discount_rate: float,
    cltv_stage_seconds: float | None,
    summary_sql_seconds: float | None,
    interval: float = 0.2,
    echo=print,
) -> dict:
    """Run lifetimes' path and ours on the refreshed warehouse; timings, ratios and agreement."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from pipeline.analytics.cltv import gamma_gamma, scoring, transactions

    amount = SPEND_AMOUNT[spend]
    monthly = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    load = Timer()
    with _connect(warehouse) as conn:
        with load("order lines"):
            lines = conn.execute(
                f"select customer_code, date, {amount} from marts.fact_sales where date <= ?",
                [as_of],
            ).df()
        with load("customer_summary"):
            summary = conn.execute("select * from intermediate.customer_summary").df()
        run_scores, run_models = None, {}
        if table_exists(conn, "analytics", "customer_cltv"):
            run_scores = conn.execute(
                "select customer_code, p_alive, clv_12m from analytics.customer_cltv"
            ).df()
        if table_exists(conn, "analytics", "cltv_model_selection"):
            # the models the run's backtest chose; this process re-runs BG/NBD + Gamma-Gamma
            run_models = dict(
                conn.execute(
                    "select kind, model from analytics.cltv_model_selection "
                    "where chosen and as_of_date = ?",
                    [as_of],
                ).fetchall()
            )

    # ours, in this process
    echo("  ... ours: pipeline.analytics.cltv on intermediate.customer_summary")
    ours = Timer()
    with TreeSampler(os.getpid(), interval=interval) as our_memory, warnings.catch_warnings():
        with ours("BG/NBD fit"):
            our_bgnbd = transactions.fit_bgnbd(summary)
        with ours("Gamma-Gamma fit"):
            our_gamma_gamma = gamma_gamma.fit_gamma_gamma(summary, spend=spend)
        with ours("score (p_alive, 90/365 d, CLV, tiers)"):
            our_scores = scoring.score_customers(
                summary, our_bgnbd, our_gamma_gamma, annual_discount_rate
            )

    # theirs
    echo(f"  ... lifetimes: summary over {len(lines):,} order lines, fits on every customer, CLV")
    theirs = Timer()
    with TreeSampler(os.getpid(), interval=interval) as their_memory, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            with theirs("summary_data_from_transaction_data"):
                their_summary = summary_data_from_transaction_data(
                    lines,
                    "customer_code",
                    "date",
                    monetary_value_col=amount,
                    observation_period_end=pd.Timestamp(as_of),
                    freq="D",
                )
            f, r, T, m = (their_summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
            with theirs("BetaGeoFitter.fit"):
                bgf = BetaGeoFitter(penalizer_coef=our_bgnbd.penalizer).fit(f, r, T)
            repeat = (f > 0) & (m > 0)
            with theirs("GammaGammaFitter.fit"):
                ggf = GammaGammaFitter(penalizer_coef=our_gamma_gamma.penalizer).fit(
                    f[repeat], m[repeat]
                )
            with theirs("customer_lifetime_value"):
                their_clv = ggf.customer_lifetime_value(
                    bgf, f, r, T, m, time=12, discount_rate=monthly, freq="D"
                )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with theirs("p_alive (extra)"):
                their_alive = bgf.conditional_probability_alive(f, r, T)
            # the same CLV formula with our fitted models, untimed
            with contextlib.redirect_stdout(io.StringIO()):
                same_model_clv = our_gamma_gamma.model.customer_lifetime_value(
                    our_bgnbd.model, f, r, T, m, time=12, discount_rate=monthly, freq="D"
                )

    their_path = sum(v for k, v in theirs.seconds.items() if "extra" not in k)
    our_fit_score = sum(ours.seconds.values())
    ratios = {"lifetimes / ours in this process (fit + score)": their_path / our_fit_score}
    if cltv_stage_seconds:
        ratios["lifetimes / our CLTV stage in the run"] = their_path / cltv_stage_seconds
        if summary_sql_seconds:
            ratios["lifetimes / (our CLTV stage + SQL customer_summary)"] = their_path / (
                cltv_stage_seconds + summary_sql_seconds
            )

    agreement = _agreement(
        summary,
        their_summary,
        spend,
        our_bgnbd,
        our_gamma_gamma,
        bgf,
        ggf,
        our_scores,
        run_scores,
        run_models,
        their_clv,
        their_alive,
        same_model_clv,
    )
    return {
        "order_lines": len(lines),
        "customers_with_orders": int(len(their_summary)),
        "spend": spend,
        "spend_amount_column": amount,
        "annual_discount_rate": annual_discount_rate,
        "monthly_discount_rate": monthly,
        "penalizers": {"bgnbd": our_bgnbd.penalizer, "gamma_gamma": our_gamma_gamma.penalizer},
        "load_seconds": load.seconds,
        "lifetimes_seconds": theirs.seconds,
        "lifetimes_path_seconds": their_path,
        "ours_seconds": ours.seconds,
        "ours_fit_score_seconds": our_fit_score,
        "our_cltv_stage_seconds": cltv_stage_seconds,
        "our_summary_sql_seconds": summary_sql_seconds,
        "ratios": ratios,
        "peak_rss_bytes": {"lifetimes": their_memory.peak(), "ours": our_memory.peak()},
        "bgnbd_rows": {
            "ours (unique histories)": our_bgnbd.n_rows,
            "lifetimes (customers)": int(len(f)),
        },
        "agreement": agreement,
    }


def _agreement(
    summary,
    their_summary,
    spend,
    bgnbd,
    gamma_gamma,
    bgf,
    ggf,
    our_scores,
    run_scores,
    run_models,
    their_clv,
    their_alive,
    same_model_clv,
) -> dict:
    buyers = summary.loc[summary["has_orders"].fillna(False).astype(bool)].set_index(
        "customer_code"
    )
    theirs = their_summary.reindex(buyers.index)
    column = "monetary_value_gross_margin" if spend == "margin" else "monetary_value_net_sales"
    same_customers = set(buyers.index) == set(their_summary.index)
    summary_check = {
        "same_customers": same_customers,
        "frequency_max_abs_diff": max_abs_diff(buyers["frequency"], theirs["frequency"]),
        "recency_max_abs_diff": max_abs_diff(buyers["recency"], theirs["recency"]),
        "t_max_abs_diff": max_abs_diff(buyers["t"], theirs["T"]),
        "monetary_max_rel_diff": max_rel_diff(buyers[column], theirs["monetary_value"]),
        "tolerance": f"frequency, recency, T exact; monetary value relative {SUMMARY_RTOL:g}",
    }
    summary_check["passed"] = bool(
        same_customers
        and summary_check["frequency_max_abs_diff"] == 0
        and summary_check["recency_max_abs_diff"] == 0
        and summary_check["t_max_abs_diff"] == 0
        and summary_check["monetary_max_rel_diff"] <= SUMMARY_RTOL
    )

    ours = our_scores.set_index("customer_code").reindex(buyers.index)
    same = same_model_clv.reindex(buyers.index)
    # Customers without repeat purchases get a fallback spend in ours when Gamma-Gamma's q <= 1.
    comparable = np.ones(len(buyers), dtype=bool)
    if not gamma_gamma.population_mean_defined:
        comparable = (buyers["frequency"] > 0).to_numpy()
    scoring = {
        "clv_12m_max_rel_diff": max_rel_diff(ours["clv_12m"][comparable], same[comparable]),
        "customers_compared": int(comparable.sum()),
        "tolerance": f"relative {SCORING_RTOL:g}",
    }
    scoring["passed"] = scoring["clv_12m_max_rel_diff"] <= SCORING_RTOL

    their_params = {
        **{k: float(v) for k, v in bgf.params_.items()},
        **{k: float(v) for k, v in ggf.params_.items()},
    }
    our_params = {**bgnbd.params, **gamma_gamma.params}
    param_diff = {
        k: abs(our_params[k] - their_params[k]) / abs(their_params[k]) for k in their_params
    }
    alive = (
        their_alive
        if isinstance(their_alive, pd.Series)
        else pd.Series(their_alive, index=their_summary.index)
    )
    clv = their_clv.reindex(buyers.index)
    end_to_end = {
        "our_params": our_params,
        "lifetimes_params": their_params,
        "params_max_rel_diff": max(param_diff.values()),
        "p_alive_max_abs_diff": max_abs_diff(ours["p_alive"], alive.reindex(buyers.index)),
        "p_alive_max_rel_diff": max_rel_diff(ours["p_alive"], alive.reindex(buyers.index)),
        "clv_12m_max_rel_diff": max_rel_diff(ours["clv_12m"][comparable], clv[comparable]),
        "total_clv_12m": {"ours": float(ours["clv_12m"].sum()), "lifetimes": float(clv.sum())},
        "tolerance": f"relative {FIT_RTOL:g} on parameters and clv_12m, absolute {FIT_ATOL_P_ALIVE:g} on p_alive",
    }
    end_to_end["passed"] = bool(
        end_to_end["params_max_rel_diff"] <= FIT_RTOL
        and end_to_end["p_alive_max_abs_diff"] <= FIT_ATOL_P_ALIVE
        and end_to_end["clv_12m_max_rel_diff"] <= FIT_RTOL
    )
    result = {"summary": summary_check, "scoring": scoring, "end_to_end": end_to_end}
    if run_scores is not None:
        # like with like only: p_alive comes from the run's transaction model, clv_12m also
        # from its spend model, and the backtest may have chosen others than the two re-run here
        run = run_scores.set_index("customer_code").reindex(buyers.index)
        chosen = {
            "transaction": run_models.get("transaction", "bgnbd"),
            "spend": run_models.get("spend", "gamma_gamma"),
        }
        same_transaction = chosen["transaction"] == "bgnbd"
        same_spend = same_transaction and chosen["spend"] == "gamma_gamma"
        result["run_vs_this_process"] = {
            "run_models": chosen,
            "p_alive_max_rel_diff": (
                max_rel_diff(run["p_alive"], ours["p_alive"]) if same_transaction else None
            ),
            "clv_12m_max_rel_diff": (
                max_rel_diff(run["clv_12m"], ours["clv_12m"]) if same_spend else None
            ),
            "note": "analytics.customer_cltv written by the run vs BG/NBD + Gamma-Gamma re-run "
            "here; a figure is None where the run chose another model",
        }
    return result


# --- 2. the floor ---------------------------------------------------------------------------

FLOOR_SQL = """
create or replace temp table bench_floor as
select
    customer_code,
    count(*) as lines,
    min(date) as first_date,
    max(date) as last_date,
    sum(net_sales_amount) as net_sales
from marts.fact_sales
group by customer_code
"""


def duckdb_floor(
    warehouse: Path,
    summary_rfm_seconds: float | None,
    summary_sql_seconds: float | None,
    repeats: int = 3,
) -> dict:
    """Best-of-``repeats`` time of the bare GROUP BY over ``marts.fact_sales``."""
    times = []
    with _connect(warehouse) as conn:
        (lines,) = conn.execute("select count(*) from marts.fact_sales").fetchone()
        for _ in range(repeats):
            start = time.perf_counter()
            conn.execute(FLOOR_SQL)
            times.append(time.perf_counter() - start)
        (customers,) = conn.execute("select count(*) from bench_floor").fetchone()
        (threads,) = conn.execute("select current_setting('threads')").fetchone()
    best = min(times)
    ratios = {}
    if summary_rfm_seconds:
        ratios["customer summary and RFM stage / floor"] = summary_rfm_seconds / best
    if summary_sql_seconds:
        ratios["SQL customer_summary alone / floor"] = summary_sql_seconds / best
    return {
        "sql": " ".join(FLOOR_SQL.split()),
        "order_lines": int(lines),
        "customers": int(customers),
        "threads": int(threads),
        "seconds": times,
        "best_seconds": best,
        "rows_per_second": lines / best if best > 0 else None,
        "our_summary_rfm_seconds": summary_rfm_seconds,
        "our_summary_sql_seconds": summary_sql_seconds,
        "ratios": ratios,
    }
