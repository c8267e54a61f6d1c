"""The data simulator: a seeded synthetic AtliQ Hardware world with a known ground truth.

Pure functions (numpy, pandas, Faker); no Dagster imports. Use::

    from pipeline.synthetic import SimulationConfig, simulate

    data = simulate(SimulationConfig(customers=20_000, seed=42, start_date=date(2023, 9, 1),
                                     history_days=1095, as_of=date(2026, 11, 24)))
    data.tables()["raw"]["order_lines"]
"""

from .dates import fiscal_year_of, fiscal_years
from .personas import PERSONAS, Persona
from .simulator import SimulationConfig, SyntheticData, simulate

__all__ = [
    "PERSONAS",
    "Persona",
    "SimulationConfig",
    "SyntheticData",
    "fiscal_year_of",
    "fiscal_years",
    "simulate",
]
