"""Column tables → Parquet, deterministically (no pandas metadata, fixed writer options)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Categorical", "write_table", "to_arrow"]


class Categorical(NamedTuple):
    """A string column stored as small integer codes into ``categories`` (a Parquet dictionary)."""

    codes: npt.NDArray[np.integer[Any]]
    categories: tuple[str, ...]

    def to_numpy(self) -> npt.NDArray[np.object_]:
        names: npt.NDArray[np.object_] = np.array(self.categories, dtype=object)
        out: npt.NDArray[np.object_] = names[self.codes]
        return out


def to_arrow(columns: Mapping[str, npt.ArrayLike | Categorical]) -> pa.Table:
    """Columns (numpy arrays, object arrays of str, :class:`Categorical`) as an Arrow table."""
    arrays = {}
    for k, v in columns.items():
        if isinstance(v, Categorical):
            arrays[k] = pa.DictionaryArray.from_arrays(pa.array(np.asarray(v.codes, dtype=np.int32)),
                                                       pa.array(list(v.categories), type=pa.string()))
        elif isinstance(v, np.ndarray) and v.dtype == object:
            arrays[k] = pa.array(v.tolist(), type=pa.string())
        else:
            arrays[k] = pa.array(v)
    return pa.table(arrays)


def write_table(columns: Mapping[str, npt.ArrayLike | Categorical], path: Path) -> None:
    """Write columns to Parquet (zstd), byte-identical for identical input."""
    pq.write_table(to_arrow(columns), path, compression="zstd", write_statistics=True, use_dictionary=True)
