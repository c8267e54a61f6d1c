"""Text columns of the simulated tables, kept in Arrow from start to end.

A code or id is spelled once (customer codes: one per customer; order ids: one per order) and
then picked per row by position. Picking from an Arrow array copies bytes; picking from a numpy
object array makes a Python object per row, which pandas then converts to Arrow again: 3.7 s
against 0.5 s for the customer codes of 6.8M order lines. The columns come out with pandas'
``str`` dtype, Arrow-backed, which DuckDB scans without copying.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# numpy's variable-width string dtype: text built with numpy operations, no Python objects
TEXT = np.dtypes.StringDType()


def spelled(numbers: np.ndarray, prefix: str = "") -> pa.Array:
    """``prefix`` followed by each integer in decimal."""
    text = pc.cast(pa.array(numbers, type=pa.int64()), pa.string())
    return pc.binary_join_element_wise(prefix, text, "") if prefix else text


def column(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A numpy array of text (``TEXT`` or objects) as a pandas ``str`` column in Arrow."""
    return pd.array(pa.array(values, type=pa.string()), dtype="str")


def picked(
    texts: pa.Array | np.ndarray | list[str], positions: np.ndarray | slice
) -> pd.api.extensions.ExtensionArray:
    """The column of ``texts[positions]`` (positions: integers, or a step-1 slice)."""
    if not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.string())
    if isinstance(positions, slice):
        start, stop, _ = positions.indices(len(texts))
        chosen = texts.slice(start, max(stop - start, 0))
    else:
        chosen = texts.take(pa.array(positions, type=pa.int64()))
    return pd.array(chosen, dtype="str")
