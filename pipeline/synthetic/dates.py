"""Calendar helpers: AtliQ fiscal years, month spans and the seasonal rate multiplier.

Dates inside the simulator are integer day numbers (days since 1970-01-01, i.e. the integer
value of ``datetime64[D]``) so that whole columns can be shifted and compared with numpy.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

# AtliQ's fiscal year starts on 1 September: FY2024 = Sep 2023 .. Aug 2024.
FISCAL_YEAR_START_MONTH = 9

# Relative to flat baseline months, AtliQ sells about x1.25 in October, x1.6 in November and
# x1.75 in December. Normalised below so that the 12-month mean is 1: the latent purchase rate
# then stays the long-run mean rate, which is what BG/NBD estimates.
_RAW_SEASONALITY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.25, 1.6, 1.75])
SEASONALITY: np.ndarray = _RAW_SEASONALITY / _RAW_SEASONALITY.mean()


def fiscal_year_of(date: dt.date) -> int:
    """AtliQ fiscal year of one date: ``YEAR(date + 4 months)``."""
    return date.year + (1 if date.month >= FISCAL_YEAR_START_MONTH else 0)


def fiscal_years(days: np.ndarray) -> np.ndarray:
    """AtliQ fiscal year of each day number (vectorised :func:`fiscal_year_of`).

    Parameters
    ----------
    days
        Integer day numbers (days since 1970-01-01).

    Returns
    -------
    numpy.ndarray
        int64 fiscal years.
    """
    months = np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]")
    month_number = months.astype("int64")  # months since 1970-01
    year = month_number // 12 + 1970
    month = month_number % 12 + 1
    return year + (month >= FISCAL_YEAR_START_MONTH)


def day_number(date: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return int(np.datetime64(date, "D").astype("int64"))


def to_datetime64(days: np.ndarray) -> np.ndarray:
    """Day numbers as ``datetime64[ns]`` at midnight, the dtype the frames expose."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[ns]")


def month_spans(first_day: int, last_day: int) -> list[tuple[int, int, int, int]]:
    """Every calendar month touching ``[first_day, last_day]``, whole.

    The simulator always draws whole months, so a month's random stream is used the same way
    whatever the as-of date: that is what makes runs with different as-of dates agree.

    Returns
    -------
    list of (year, month, first day number, last day number)
    """
    first_month = np.datetime64(int(first_day), "D").astype("datetime64[M]")
    last_month = np.datetime64(int(last_day), "D").astype("datetime64[M]")
    spans = []
    month = first_month
    while month <= last_month:
        start = int(month.astype("datetime64[D]").astype("int64"))
        end = int((month + 1).astype("datetime64[D]").astype("int64")) - 1
        number = int(month.astype("int64"))
        spans.append((number // 12 + 1970, number % 12 + 1, start, end))
        month = month + 1
    return spans
