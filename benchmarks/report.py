"""The printed table, the machine and code the figures come from, and the JSON file."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "dagster",
    "dagster-dbt",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "Lifetimes",
    "pandas",
    "numpy",
    "scipy",
)


# --- formatting -----------------------------------------------------------------------------


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def fmt_count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_bytes(value: int | None) -> str:
    """Binary units, as `free -h` prints them: MiB below a GiB, GiB above."""
    if value is None:
        return "-"
    if value >= 2**30:
        return f"{value / 2**30:,.2f} GiB"
    return f"{value / 2**20:,.0f} MiB"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A plain aligned text table; ``align`` has one letter per column, ``l`` or ``r``
    (default: first column left, the rest right). Rows of ``None`` draw a rule."""
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError("align needs one letter per column")
    body = [list(map(str, r)) for r in rows if r is not None]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(headers), rule]
    for r in rows:
        lines.append(rule if r is None else line(list(map(str, r))))
    return "\n".join(lines)


STAGE_HEADERS = ("stage", "wall s", "rows", "rows/s", "peak RSS", "rows are")


def stage_rows(stages: Sequence[dict], totals: Sequence[dict] = ()) -> list:
    """Table rows of the stage dicts (as in the JSON), a rule, then the total rows."""
    rows: list = []
    for s in [*stages, None, *totals] if totals else stages:
        if s is None:
            rows.append(None)
            continue
        rows.append(
            (
                s["stage"],
                fmt_seconds(s.get("seconds")),
                fmt_count(s.get("rows")),
                fmt_count(s.get("rows_per_second")),
                fmt_bytes(s.get("peak_rss_bytes")),
                s.get("rows_of") or "",
            )
        )
    return rows


def stage_table(stages: Sequence[dict], totals: Sequence[dict] = ()) -> str:
    return table(STAGE_HEADERS, stage_rows(stages, totals), align="lrrrrl")


# --- where the figures come from ------------------------------------------------------------


def _meminfo_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_average() -> list[float] | None:
    try:
        return [float(x) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_bytes": _meminfo_bytes("MemTotal"),
        "memory_available_bytes_at_start": _meminfo_bytes("MemAvailable"),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git(repo: Path = REPO_ROOT) -> dict:
    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, check=True
            ).stdout.rstrip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = run("status", "--porcelain")  # lines start with a space: strip only the end
    return {
        "commit": run("rev-parse", "HEAD"),
        "describe": run("describe", "--always", "--dirty", "--abbrev=12"),
        "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "changed_files": status.splitlines() if status else [],
    }


# --- the JSON file --------------------------------------------------------------------------


def result_path(created: dt.datetime, customers: int, folder: Path = RESULTS_DIR) -> Path:
    """``<folder>/<UTC timestamp>_<customers>.json``, e.g. ``20261124T101500Z_1000000.json``."""
    stamp = created.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return folder / f"{stamp}_{customers}.json"


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (dt.date, dt.datetime, Path)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite(value):
    """``value`` with every NaN / infinity (invalid in JSON) replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(finite(result), indent=2, default=_json_default, allow_nan=False)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    return path
