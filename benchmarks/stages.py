"""From what a refresh recorded (Dagster steps, dbt nodes, timing marks) to the report's stages.

A stage is one row of the report. Its wall time is a set of windows:

- the Dagster steps whose key matches the stage's step patterns (``STAGES``); a step that no
  stage claims becomes a stage of its own, under its step key (new assets show up by themselves);
- windows *carved out* of a step and given to another stage: the dbt models named in a stage's
  ``dbt_models`` (with their tests), taken from dbt's ``run_results.json``, and the timing marks
  the refresh child records (``simulate``, carved out of the raw step).

Within one step, every instant belongs to exactly one stage, so the stages' seconds add up to
the steps' seconds: an instant covered by carved windows of several stages (dbt runs two
threads) is split equally among them; an instant covered by none belongs to the step's own
stage. Peak RSS is the largest sample inside any of a stage's windows (overlaps included).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageSpec:
    """One row of the report and how to find it in a run.

    Attributes
    ----------
    name
        The row's name.
    steps
        fnmatch patterns of Dagster step keys whose whole window (minus carve-outs) is the stage's.
    dbt_models
        dbt models (names) carved out of dbt steps into this stage, with the tests attached to them.
    marks
        Timing marks (see ``benchmarks.child``) carved out of steps into this stage.
    rows
        fnmatch patterns of asset keys (``"schema/table"``) whose ``dagster/row_count`` sum is the
        stage's rows; when none matches, the rows materialized by the stage's own steps.
    rows_of
        What the rows count, for the table's legend.
    """

    name: str
    steps: tuple[str, ...] = ()
    dbt_models: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    rows_of: str = "rows written"


# The report's rows, in order. Step keys today: synthetic_raw_data, star_schema,
# analytics__customer_rfm, customer_rfm_checks, customer_cltv, analytics__cltv_evaluation (the
# backtest), customer_clusters, customer_marts, serve__bi_snapshot. A step is matched by its key,
# else by the keys of the assets it materializes or checks ("analytics/customer_cltv" ->
# "analytics__customer_cltv"), so renamed ops and check steps land in the right row; a step
# nothing matches is reported under its own key.
STAGES: tuple[StageSpec, ...] = (
    StageSpec("simulate", marks=("simulate",), rows=("raw/*", "truth/*"), rows_of="rows generated"),
    StageSpec("load raw", steps=("synthetic_raw_data",), rows=("raw/*", "truth/*")),
    # marts.fact_sales is a view (no row count) of the priced order lines
    StageSpec(
        "dbt star schema",
        steps=("star_schema",),
        rows=("intermediate/int_order_lines_priced",),
        rows_of="order lines",
    ),
    StageSpec(
        "customer summary and RFM",
        steps=("analytics__customer_rfm", "*customer_rfm*check*"),
        dbt_models=("customer_summary",),
        rows=("analytics/customer_rfm",),
        rows_of="customers",
    ),
    StageSpec(
        "CLTV fit and score",
        steps=("analytics__customer_cltv", "*customer_cltv*check*"),
        rows=("analytics/customer_cltv",),
        rows_of="customers",
    ),
    StageSpec(
        "backtest",
        steps=("analytics__cltv_backtest*", "analytics__cltv_evaluation*", "*backtest*"),
        dbt_models=("customer_backtest_summary",),
        rows=("intermediate/customer_backtest_summary",),
        rows_of="customers",
    ),
    StageSpec(
        "clusters",
        steps=("analytics__customer_clusters*", "*cluster*check*"),
        dbt_models=("customer_cluster_features", "customer_category_spend"),
        rows=("analytics/customer_clusters",),
        rows_of="customers",
    ),
    StageSpec(
        "customer marts",
        steps=("customer_marts",),
        rows=("marts/customer_single_view",),
        rows_of="customers",
    ),
    StageSpec(
        "publish", steps=("serve__bi_snapshot",), rows=("serve/bi_snapshot",), rows_of="rows copied"
    ),
    StageSpec("dashboard", steps=("*dashboard*",)),
)


@dataclass
class Step:
    """A Dagster step of the run: its window (first start to last end, retries included)."""

    key: str
    start: float
    end: float
    status: str = "success"
    attempts: int = 1
    # asset key ("schema/table") -> dagster/row_count (None when the event had none)
    materializations: dict[str, int | None] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)  # asset keys of asset check evaluations
    events: int = 0  # events the step logged (each is a write to the run's event log)


@dataclass(frozen=True)
class Carve:
    """A window inside a step that belongs to another stage: a dbt node or a timing mark."""

    kind: str  # "dbt" or "mark"
    name: str  # dbt model name (for a test: the model it is attached to) or mark name
    start: float
    end: float
    step: str | None = None  # the step it ran in; None = whichever step contains it
    detail: str = ""  # e.g. the dbt node's unique_id


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    windows: list[tuple[float, float]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    carved: list[str] = field(default_factory=list)  # dbt models / marks carved into it
    rows: int | None = None
    rows_of: str = "rows written"
    peak_rss: int | None = None

    @property
    def rows_per_second(self) -> float | None:
        if self.rows is None or self.seconds <= 0:
            return None
        return self.rows / self.seconds

    @property
    def start(self) -> float:
        return min((w[0] for w in self.windows), default=float("inf"))


def step_key_of_asset(asset_key: str) -> str:
    """The op name Dagster gives a single asset: ``analytics/customer_rfm`` -> ``analytics__customer_rfm``."""
    return asset_key.replace("/", "__")


def spec_for_step(step: Step, specs: Sequence[StageSpec] = STAGES) -> StageSpec | None:
    """The first spec whose step patterns match the step's key, or else the key of an asset the
    step materialized or checked (a check step belongs with the asset it checks)."""
    candidates = [step.key] + [
        step_key_of_asset(k) for k in [*step.checked, *step.materializations]
    ]
    for candidate in candidates:
        for spec in specs:
            if any(fnmatch.fnmatchcase(candidate, p) for p in spec.steps):
                return spec
    return None


def spec_for_carve(carve: Carve, specs: Sequence[StageSpec] = STAGES) -> StageSpec | None:
    for spec in specs:
        names = spec.dbt_models if carve.kind == "dbt" else spec.marks
        if carve.name in names:
            return spec
    return None


def _attribute(
    window: tuple[float, float], carved: list[tuple[float, float, str]], owner: str
) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """Split ``window`` among stages: each elementary interval goes equally to the stages of
    the carved windows covering it, or to ``owner`` when none does.

    Returns the seconds per stage and the owner's own (uncarved) intervals, merged.
    """
    start, end = window
    cuts = sorted({start, end, *(t for s, e, _ in carved for t in (s, e) if start < t < end)})
    shares: dict[str, float] = {}
    own: list[tuple[float, float]] = []
    for low, high in zip(cuts, cuts[1:]):
        active = sorted({name for s, e, name in carved if s <= low and e >= high})
        names = active or [owner]
        for name in names:
            shares[name] = shares.get(name, 0.0) + (high - low) / len(names)
        if not active:
            if own and own[-1][1] == low:
                own[-1] = (own[-1][0], high)
            else:
                own.append((low, high))
    if start == end:  # an instantaneous step still has a window
        own = [(start, end)]
    return shares, own


def build_stages(
    steps: Iterable[Step],
    carves: Iterable[Carve] = (),
    specs: Sequence[StageSpec] = STAGES,
) -> list[Stage]:
    """Stages of a run: known ones in ``specs`` order, then unknown steps in start order.

    Rows are the ``dagster/row_count`` sum over the run's materializations whose asset key
    matches the stage's ``rows`` patterns (else over its own steps' materializations).
    """
    steps = sorted(steps, key=lambda s: s.start)
    carves = list(carves)
    stages: dict[str, Stage] = {}
    owners: dict[str, StageSpec | None] = {}

    def stage(name: str, spec: StageSpec | None) -> Stage:
        if name not in stages:
            stages[name] = Stage(name, rows_of=spec.rows_of if spec else "rows written")
            owners[name] = spec
        return stages[name]

    for step in steps:
        spec = spec_for_step(step, specs)
        own = stage(spec.name if spec else step.key, spec)
        own.steps.append(step.key)
        inside: list[tuple[float, float, str]] = []
        for carve in carves:
            if carve.step not in (None, step.key):
                continue
            low, high = max(carve.start, step.start), min(carve.end, step.end)
            if high <= low:
                continue
            carve_spec = spec_for_carve(carve, specs)
            if carve_spec is None or carve_spec.name == own.name:
                continue
            target = stage(carve_spec.name, carve_spec)
            target.windows.append((low, high))
            if carve.name not in target.carved:
                target.carved.append(carve.name)
            inside.append((low, high, carve_spec.name))
        shares, own_windows = _attribute((step.start, step.end), inside, own.name)
        for name, seconds in shares.items():
            stages[name].seconds += seconds
        own.windows.extend(own_windows)

    all_rows = {k: v for step in steps for k, v in step.materializations.items()}
    for name, st in stages.items():
        spec = owners[name]
        patterns = spec.rows if spec else ()
        matched = [
            v for k, v in all_rows.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)
        ]
        matched = [v for v in matched if v is not None]
        if matched:
            st.rows = int(sum(matched))
        else:
            own_rows = [
                v
                for step in steps
                if step.key in st.steps
                for v in step.materializations.values()
                if v is not None
            ]
            st.rows = int(sum(own_rows)) if own_rows else None
            if spec and spec.rows and own_rows:
                st.rows_of = "rows written"

    order = {spec.name: i for i, spec in enumerate(specs)}
    known = sorted((s for s in stages.values() if s.name in order), key=lambda s: order[s.name])
    unknown = sorted((s for s in stages.values() if s.name not in order), key=lambda s: s.start)
    return [s for s in known + unknown if s.seconds > 0 or s.windows]
