"""Small pure functions of the simulator."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import pipeline.synthetic as synthetic
from pipeline.synthetic import SimulationConfig, fiscal_year_of, fiscal_years
from pipeline.synthetic.dates import day_number, month_spans
from pipeline.synthetic.geography import MARKETS, market_weights
from pipeline.synthetic.personas import PERSONAS, PLATFORM_CHANNELS
from pipeline.synthetic.pools import ascii_handle, build_pools
from pipeline.synthetic.products import CATEGORY_KEYS, build_catalogue
from pipeline.synthetic.texts import TEXT, column, picked, spelled


@pytest.mark.parametrize(
    ("date", "fy"),
    [
        (dt.date(2023, 8, 31), 2023),
        (dt.date(2023, 9, 1), 2024),
        (dt.date(2024, 8, 31), 2024),
        (dt.date(2026, 11, 24), 2027),
        (dt.date(2024, 12, 31), 2025),
    ],
)
def test_fiscal_year_starts_in_september(date, fy):
    assert fiscal_year_of(date) == fy
    assert fiscal_years(np.array([day_number(date)]))[0] == fy


def test_month_spans_cover_whole_months():
    spans = month_spans(day_number(dt.date(2023, 9, 15)), day_number(dt.date(2024, 2, 3)))
    assert [(y, m) for y, m, _, _ in spans] == [
        (2023, 9),
        (2023, 10),
        (2023, 11),
        (2023, 12),
        (2024, 1),
        (2024, 2),
    ]
    assert spans[0][2] == day_number(dt.date(2023, 9, 1))
    assert spans[-1][3] == day_number(dt.date(2024, 2, 29))  # leap year


def test_config_is_validated():
    base = dict(
        customers=10,
        seed=1,
        start_date=dt.date(2024, 1, 1),
        history_days=10,
        as_of=dt.date(2024, 2, 1),
    )
    SimulationConfig(**base)
    with pytest.raises(ValueError, match="before start_date"):
        SimulationConfig(**{**base, "as_of": dt.date(2023, 12, 31)})
    with pytest.raises(ValueError, match="customers"):
        SimulationConfig(**{**base, "customers": 0})
    with pytest.raises(ValueError, match="truth_horizon_days"):
        SimulationConfig(**{**base, "truth_horizon_days": -1})


def test_config_from_settings():
    from pipeline import settings

    environ = {
        "PIPELINE_CUSTOMERS": "5",
        "PIPELINE_SEED": "2",
        "PIPELINE_HISTORY_DAYS": "30",
        "PIPELINE_TRUTH_HORIZON_DAYS": "10",
        "PIPELINE_START_DATE": "2024-01-01",
        "PIPELINE_AS_OF": "2024-03-01",
    }
    config = SimulationConfig.from_settings(settings.load(environ=environ))
    assert config == SimulationConfig(5, 2, dt.date(2024, 1, 1), 30, dt.date(2024, 3, 1), 10)


def test_catalogue_codes_are_unique_and_deterministic():
    a = build_catalogue(np.random.default_rng([1, 2]), 2024)
    b = build_catalogue(np.random.default_rng([1, 2]), 2024)
    assert a.frame.equals(b.frame) and np.array_equal(a.base_price, b.base_price)
    assert a.frame["product_code"].is_unique
    assert np.allclose(np.bincount(a.category_index, weights=a.popularity), 1.0)
    # Launch years (YY) are the four years before the first fiscal year.
    assert set(a.frame["product_code"].str[3:5].astype(int)) <= {20, 21, 22, 23}


def test_personas_are_well_formed():
    assert len(PERSONAS) >= 4
    assert sum(p.share for p in PERSONAS) == pytest.approx(1.0)
    for p in PERSONAS:
        assert p.category_vector().sum() == pytest.approx(1.0)
        assert set(p.category_weights) <= set(CATEGORY_KEYS)
        assert len(p.channel_mix) == len(PLATFORM_CHANNELS)
        assert sum(p.channel_mix) == pytest.approx(1.0)
        assert min(p.r, p.alpha, p.a, p.b) > 0


def test_markets_and_weights():
    assert [m.index for m in MARKETS] == list(range(1, 28))
    weights = market_weights()
    assert weights.sum() == pytest.approx(1.0)
    top = [MARKETS[i].name for i in np.argsort(-weights)[:2]]
    assert top == ["India", "USA"]


def test_pools_are_seeded():
    from faker import factory

    listing = factory.list_module
    build_pools.cache_clear()
    a = build_pools(3)
    assert factory.list_module is listing  # Faker's locale listing is cached only while building
    build_pools.cache_clear()
    b = build_pools(3)
    assert list(a.first_names.values) == list(b.first_names.values)
    assert list(a.cities.values) == list(b.cities.values)
    assert list(build_pools(4).first_names.values) != list(a.first_names.values)
    assert (a.cities.sizes >= 5).all() and len(a.occupations) >= 200
    assert ascii_handle("Stéphane-Ø O'Neil") == "stephaneoneil"
    assert ascii_handle("陈建军") == ""


def test_no_dagster_imports_in_the_simulator():
    for path in Path(synthetic.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0].startswith("dagster") for n in names), path.name


def test_texts_are_spelled_once_and_picked_as_pandas_text():
    """Codes and ids are spelled in Arrow and picked per row: the same text as Python's own
    formatting, by position or by slice, in pandas' ``str`` dtype."""
    numbers = np.array([7, 90600000001, 0, 123], dtype=np.int64)
    ids = spelled(numbers, "SO")
    assert ids.to_pylist() == [f"SO{n}" for n in numbers]
    assert spelled(numbers).to_pylist() == [str(n) for n in numbers]

    by_position = picked(ids, np.array([3, 3, 0]))
    assert list(by_position) == ["SO123", "SO123", "SO7"]
    assert str(by_position.dtype) == "str"
    assert list(picked(ids, slice(1, 3))) == ["SO90600000001", "SO0"]
    assert list(picked(["a", "b"], np.array([1, 0, 1]))) == ["b", "a", "b"]

    built = np.array(["x", "y"], dtype=object).astype(TEXT) + "@z"
    assert list(column(built)) == ["x@z", "y@z"] and str(column(built).dtype) == "str"
