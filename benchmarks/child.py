"""The refresh as the benchmark runs it: ``python -m pipeline.cli refresh`` (what ``make run``
runs), in a child process, with timing marks around a few functions.

The marks are appended as JSON lines ``{"name", "start", "end"}`` (``time.time()``, Dagster's
clock) to the file named by ``BENCH_MARKS_FILE``. Today one function is marked:
``pipeline.defs.assets.raw.simulate``, so that the raw step splits into *simulate* and *load raw*.
A function that is no longer there is skipped; the step is then reported whole.

Run by ``benchmarks.refresh``; by hand::

    BENCH_MARKS_FILE=/tmp/marks.jsonl python -m benchmarks.child refresh
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import time

MARKS_ENV = "BENCH_MARKS_FILE"
# (module, attribute, mark name): functions whose every call is recorded as a window.
MARKED = [("pipeline.defs.assets.raw", "simulate", "simulate")]


def record(name: str, start: float, end: float) -> None:
    path = os.environ.get(MARKS_ENV)
    if not path:
        return
    with open(path, "a") as out:
        out.write(json.dumps({"name": name, "start": start, "end": end}) + "\n")


def timed(function, name: str):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            record(name, start, time.time())

    return wrapper


def install_marks() -> list[str]:
    """Wrap every function of ``MARKED`` that exists; return the marks installed."""
    installed = []
    for module_name, attribute, name in MARKED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        function = getattr(module, attribute, None)
        if callable(function):
            setattr(module, attribute, timed(function, name))
            installed.append(name)
    return installed


def main(argv: list[str] | None = None) -> int:
    install_marks()
    from pipeline import cli

    return cli.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    from pipeline import cli

    cli.exit_now(main())  # as `python -m pipeline.cli` leaves
