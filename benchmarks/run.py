"""Benchmark one full refresh at a given scale: ``make bench CUSTOMERS=1000000``, or

    .venv/bin/python -m benchmarks.run --customers 1000000

Runs the refresh exactly as ``make run`` does (``python -m pipeline.cli refresh``) in a
temporary directory with a fixed as-of date, and prints one row per stage: wall seconds, rows,
rows per second and the peak RSS of the refresh's process tree (Python, dbt and their children,
sampled every 0.2 s). Then, on the refreshed warehouse, the two comparisons of
``benchmarks.compare``: lifetimes' own CLTV path against ours, and a bare DuckDB GROUP BY
against our customer-summary/RFM stage. The same figures, the machine and the git commit go to
``benchmarks/results/<UTC timestamp>_<customers>.json`` (commit the ones worth keeping by hand).

Timings are for reading, never asserted: the machine may be busy (the load average at the start
and end of the run is recorded beside them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import report
from benchmarks.refresh import RefreshRun, dbt_phases, run_refresh, tail
from benchmarks.rss import peak_in
from benchmarks.stages import STAGES, Stage, build_stages

DEFAULT_AS_OF = "2026-11-24"
SUMMARY_RFM_STAGE = "customer summary and RFM"
CLTV_STAGE = "CLTV fit and score"
SUMMARY_MODEL = "customer_summary"


def stage_dicts(stages: list[Stage], run: RefreshRun) -> list[dict]:
    out = []
    for stage in stages:
        peaks = [peak_in(run.samples, start, end) for start, end in stage.windows]
        peaks = [p for p in peaks if p is not None]
        out.append(
            {
                "stage": stage.name,
                "seconds": stage.seconds,
                "rows": stage.rows,
                "rows_per_second": stage.rows_per_second,
                "rows_of": stage.rows_of,
                "peak_rss_bytes": max(peaks) if peaks else None,
                "steps": stage.steps,
                "carved_in": stage.carved,
                "windows": [
                    [round(s - run.process_start, 3), round(e - run.process_start, 3)]
                    for s, e in stage.windows
                ],
            }
        )
    return out


def overhead_dict(run: RefreshRun) -> dict:
    """The wall time outside every step: Python start-up, imports and definitions until the run's
    first event; the run's creation until it starts (Dagster logs a planned materialization for
    every asset and check); Dagster between steps; the process's exit after the run ends."""
    imports = (run.first_event - run.process_start) if run.first_event else None
    creation = (run.run_start - run.first_event) if run.run_start and run.first_event else None
    exit_ = (run.process_end - run.run_end) if run.run_end else None
    between = None
    if run.run_start and run.run_end:
        between = (run.run_end - run.run_start) - sum(s.end - s.start for s in run.steps)
    return {
        "imports and definitions": imports,
        "run creation": creation,
        "between steps": between,
        "exit": exit_,
    }


def dbt_step_dicts(run: RefreshRun) -> list[dict]:
    out = []
    for step in run.steps:
        phases = dbt_phases(step, run.dbt_nodes, run.dbt_logs.get(step.key))
        if phases:
            out.append(phases)
    return out


def total_dicts(stages: list[dict], run: RefreshRun) -> list[dict]:
    total = run.process_end - run.process_start
    overhead = total - sum(s["seconds"] for s in stages)
    return [
        {
            "stage": "startup, orchestration, exit",
            "seconds": overhead,
            "rows": None,
            "rows_per_second": None,
            "rows_of": "outside the steps: see below",
            "peak_rss_bytes": None,
        },
        {
            "stage": "total (make run)",
            "seconds": total,
            "rows": None,
            "rows_per_second": None,
            "rows_of": "",
            "peak_rss_bytes": peak_in(run.samples, None, None),
        },
    ]


def resolved_settings(run: RefreshRun) -> dict:
    """Every pipeline setting of the refresh, defaults included (the data dir is a temp dir)."""
    from pipeline import settings as settings_module

    current = settings_module.load(environ=run.env)
    return {k: str(v) for k, v in current.by_name().items() if k != "data_dir"}


def model_seconds(run: RefreshRun, model: str) -> float | None:
    """Wall seconds of one dbt model's own node (its tests excluded)."""
    nodes = [n for n in run.dbt_nodes if n["resource_type"] == "model" and n["model"] == model]
    return sum(n["end"] - n["start"] for n in nodes) if nodes else None


def stage_seconds(stages: list[dict], name: str) -> float | None:
    return next((s["seconds"] for s in stages if s["stage"] == name), None)


def slowest_dbt_nodes(run: RefreshRun, n: int = 10) -> list[dict]:
    nodes = sorted(run.dbt_nodes, key=lambda x: x["end"] - x["start"], reverse=True)[:n]
    return [
        {
            "node": x["unique_id"],
            "step": x["step"],
            "seconds": x["end"] - x["start"],
            "status": x["status"],
        }
        for x in nodes
    ]


def print_lifetimes(result: dict) -> None:
    t, o = result["lifetimes_seconds"], result["ours_seconds"]
    rows = [
        (
            "summary from order lines",
            report.fmt_seconds(t["summary_data_from_transaction_data"]),
            report.fmt_seconds(result["our_summary_sql_seconds"]) + " (SQL in the run)"
            if result["our_summary_sql_seconds"] is not None
            else "-",
        ),
        (
            "BG/NBD fit",
            report.fmt_seconds(t["BetaGeoFitter.fit"]),
            report.fmt_seconds(o["BG/NBD fit"]),
        ),
        (
            "Gamma-Gamma fit",
            report.fmt_seconds(t["GammaGammaFitter.fit"]),
            report.fmt_seconds(o["Gamma-Gamma fit"]),
        ),
        (
            "12-month CLV / scores",
            report.fmt_seconds(t["customer_lifetime_value"]),
            report.fmt_seconds(o["score (p_alive, 90/365 d, CLV, tiers)"]),
        ),
        None,
        (
            "lifetimes' path / ours (fit + score)",
            report.fmt_seconds(result["lifetimes_path_seconds"]),
            report.fmt_seconds(result["ours_fit_score_seconds"]),
        ),
        ("our CLTV stage in the run", "", report.fmt_seconds(result["our_cltv_stage_seconds"])),
        (
            "peak RSS of this process",
            report.fmt_bytes(result["peak_rss_bytes"]["lifetimes"]),
            report.fmt_bytes(result["peak_rss_bytes"]["ours"]),
        ),
    ]
    print(
        f"\nlifetimes' own path vs ours: {result['order_lines']:,} order lines, "
        f"{result['customers_with_orders']:,} customers with orders, spend = {result['spend']} "
        f"({result['spend_amount_column']}), monthly discount {result['monthly_discount_rate']:.6f}"
    )
    print(report.table(("", "lifetimes s", "ours s"), rows))
    print(
        f"  (p_alive, not in lifetimes' CLV path, takes it another "
        f"{report.fmt_seconds(t['p_alive (extra)'])} s; BG/NBD rows: ours "
        f"{result['bgnbd_rows']['ours (unique histories)']:,} unique histories, lifetimes "
        f"{result['bgnbd_rows']['lifetimes (customers)']:,} customers)"
    )
    for name, value in result["ratios"].items():
        print(f"  {name}: {report.fmt_ratio(value)}")
    a = result["agreement"]
    s, sc, e = a["summary"], a["scoring"], a["end_to_end"]

    def ok(passed: bool) -> str:
        return "agree" if passed else "DIFFER"

    print(
        f"  summary: {ok(s['passed'])} (frequency/recency/T max abs diff "
        f"{s['frequency_max_abs_diff']:g}/{s['recency_max_abs_diff']:g}/{s['t_max_abs_diff']:g}, "
        f"monetary max rel diff {s['monetary_max_rel_diff']:.1e}; tolerance: {s['tolerance']})"
    )
    print(
        f"  CLV formula, same fitted models: {ok(sc['passed'])} (clv_12m max rel diff "
        f"{sc['clv_12m_max_rel_diff']:.1e}; tolerance {sc['tolerance']})"
    )
    print(
        f"  end to end, models fitted independently: {ok(e['passed'])} (parameters max rel diff "
        f"{e['params_max_rel_diff']:.1e}, p_alive max abs diff {e['p_alive_max_abs_diff']:.1e}, clv_12m "
        f"{e['clv_12m_max_rel_diff']:.1e}; tolerance {e['tolerance']})"
    )
    if "run_vs_this_process" in a:
        r = a["run_vs_this_process"]
        models = r.get("run_models", {})

        def diff(key: str, kind: str) -> str:
            value = r[key]
            return (
                f"{value:.1e}"
                if value is not None
                else f"not compared (the run chose {models[kind]})"
            )

        print(
            f"  the run's analytics.customer_cltv ({models.get('transaction')} + {models.get('spend')}) "
            f"vs BG/NBD + Gamma-Gamma re-run here, max rel diff: p_alive {diff('p_alive_max_rel_diff', 'transaction')}, "
            f"clv_12m {diff('clv_12m_max_rel_diff', 'spend')}"
        )


def print_floor(result: dict) -> None:
    print(
        f"\nfloor: bare DuckDB GROUP BY customer over marts.fact_sales ({result['order_lines']:,} lines, "
        f"{result['threads']} threads): best of {len(result['seconds'])} "
        f"{report.fmt_seconds(result['best_seconds'])} s, {report.fmt_count(result['rows_per_second'])} lines/s"
    )
    for name, value in result["ratios"].items():
        print(f"  {name}: {report.fmt_ratio(value)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--customers", type=int, default=100_000, help="PIPELINE_CUSTOMERS of the refresh"
    )
    parser.add_argument(
        "--as-of",
        default=DEFAULT_AS_OF,
        help=f"as-of date (default {DEFAULT_AS_OF}, fixed so runs compare)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="folder for the temporary directory (default: the system's)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (warehouse, logs)"
    )
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the lifetimes and DuckDB comparisons"
    )
    parser.add_argument(
        "--interval", type=float, default=0.2, help="RSS sampling interval in seconds"
    )
    parser.add_argument(
        "--floor-repeats", type=int, default=3, help="repeats of the DuckDB floor query"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=report.RESULTS_DIR, help="where the JSON goes"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no JSON")
    args = parser.parse_args(argv)
    if args.customers < 1:
        parser.error("--customers must be >= 1")
    try:
        dt.date.fromisoformat(args.as_of)
    except ValueError:
        parser.error(f"--as-of {args.as_of!r} is not a date (YYYY-MM-DD)")

    created = dt.datetime.now(dt.timezone.utc)
    load_start = report.load_average()
    machine = report.machine()
    code = report.git()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{args.customers}-", dir=args.workdir))
    print(
        f"Benchmark: full refresh of {args.customers:,} customers as of {args.as_of} in {workdir}\n"
        f"  {machine['cores']} cores, {report.fmt_bytes(machine['memory_bytes'])} memory, "
        f"load average {load_start}, commit {code['describe']}"
    )
    try:
        return _run(args, created, load_start, machine, code, workdir)
    finally:
        if args.keep:
            print(f"\nKept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args, created, load_start, machine, code, workdir: Path) -> int:
    run = run_refresh(workdir, args.customers, args.as_of, interval=args.interval)
    if not run.succeeded:
        print(
            f"\nThe refresh failed (exit {run.returncode}, run {run.run_id} {run.run_status}).\n"
            f"--- stderr (last lines; all in {run.stderr_path} with --keep) ---\n{tail(run.stderr_path)}",
            file=sys.stderr,
        )
        return 1
    stages = stage_dicts(build_stages(run.steps, run.carves, STAGES), run)
    totals = total_dicts(stages, run)
    print(f"\nRefresh {run.run_id}: {args.customers:,} customers, as of {args.as_of}")
    print(report.stage_table(stages, totals))
    if run.retried_steps:
        print(
            f"  note: steps retried (DuckDB lock held by another process?): {', '.join(run.retried_steps)}"
        )
    if run.cpu_seconds is not None:
        print(f"  CPU (user + system) of the refresh's processes: {run.cpu_seconds:.1f} s")
    overhead = overhead_dict(run)
    if None not in overhead.values():
        print("  outside the steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in overhead.items()))
    dbt_steps = dbt_step_dicts(run)
    for d in dbt_steps:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in d["phases"].items())
        print(
            f"  dbt step {d['step']} ({d['seconds']:.1f} s, {d['nodes']} nodes, "
            f"{d['dagster_events']} Dagster events): {parts}"
        )
    slow = slowest_dbt_nodes(run, 5)
    if slow:
        print(
            "  slowest dbt nodes: "
            + ", ".join(f"{n['node'].split('.')[2]} {n['seconds']:.1f} s" for n in slow)
        )

    summary_sql = model_seconds(run, SUMMARY_MODEL)
    comparisons: dict = {}
    from pipeline import settings as settings_module

    current = settings_module.load(environ=run.env)
    if current.engine.engine != "duckdb" and not args.no_compare:
        # both comparisons read the DuckDB warehouse file, which a Spark refresh does not write
        reason = f"PIPELINE_ENGINE={current.engine.engine}: there is no DuckDB warehouse to read"
        comparisons = {"lifetimes": {"skipped": reason}, "duckdb_floor": {"skipped": reason}}
        print(f"\nComparisons skipped ({reason}).")
    elif not args.no_compare:
        from benchmarks import compare

        print("\nComparisons on the refreshed warehouse (read-only):")
        try:
            comparisons["lifetimes"] = compare.lifetimes_comparison(
                run.warehouse,
                args.as_of,
                current.models.cltv_spend,
                current.models.cltv_discount_rate,
                cltv_stage_seconds=stage_seconds(stages, CLTV_STAGE),
                summary_sql_seconds=summary_sql,
                interval=args.interval,
            )
            print_lifetimes(comparisons["lifetimes"])
        except ImportError as error:  # pipeline.analytics.cltv not there (yet)
            comparisons["lifetimes"] = {"skipped": str(error)}
            print(f"  lifetimes comparison skipped: {error}")
        comparisons["duckdb_floor"] = compare.duckdb_floor(
            run.warehouse,
            summary_rfm_seconds=stage_seconds(stages, SUMMARY_RFM_STAGE),
            summary_sql_seconds=summary_sql,
            repeats=args.floor_repeats,
        )
        print_floor(comparisons["duckdb_floor"])

    result = {
        "benchmark": "full refresh (make run)",
        "created_at": created.isoformat(),
        "customers": args.customers,
        "as_of": args.as_of,
        "settings": resolved_settings(run),
        "machine": machine,
        "load_average": {"start": load_start, "end": report.load_average()},
        "git": code,
        "run": {
            "run_id": run.run_id,
            "status": run.run_status,
            "process_seconds": run.process_end - run.process_start,
            "cpu_seconds": run.cpu_seconds,
            "startup_seconds": (run.run_start - run.process_start) if run.run_start else None,
            "run_seconds": (run.run_end - run.run_start) if run.run_start and run.run_end else None,
            "peak_rss_bytes": peak_in(run.samples, None, None),
            "kernel_max_rss_single_process_bytes": run.kernel_max_rss,
            "rss_samples": len(run.samples),
            "rss_interval_seconds": args.interval,
            "retried_steps": run.retried_steps,
        },
        "stages": stages,
        "totals": totals,
        "steps": [
            {
                "step": s.key,
                "seconds": s.end - s.start,
                "status": s.status,
                "attempts": s.attempts,
                "start": round(s.start - run.process_start, 3),
                "events": s.events,
                "rows": s.materializations,
            }
            for s in run.steps
        ],
        "outside_steps_seconds": overhead,
        "dbt_steps": dbt_steps,
        "slowest_dbt_nodes": slowest_dbt_nodes(run, 15),
        "comparisons": comparisons,
        "notes": [
            "Stage seconds partition each step's wall clock: dbt models carved into other stages "
            "(customer_summary, customer_backtest_summary, customer_cluster_features, "
            "customer_category_spend, with their tests) are taken from dbt's run_results.json; "
            "'simulate' is timed around pipeline.synthetic.simulate inside the raw step.",
            "Peak RSS sums VmRSS over the refresh's process tree (shared pages counted per "
            "process), sampled every rss_interval_seconds; kernel_max_rss_single_process_bytes "
            "is the kernel's exact peak of the largest single process.",
        ],
    }
    if not args.no_write:
        path = report.write_json(
            result, report.result_path(created, args.customers, args.results_dir)
        )
        print(
            f"\nWrote {path.relative_to(report.REPO_ROOT) if path.is_relative_to(report.REPO_ROOT) else path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
