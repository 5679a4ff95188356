"""Small helpers for ragged arrays in CSR form (``indptr`` int64 (n+1,), ``values`` (nnz,))."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["assemble", "take", "segment_sum", "segment_lengths"]


def segment_lengths(indptr: np.ndarray) -> np.ndarray:
    """Length of every segment."""
    return np.diff(indptr)


def segment_sum(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of ``values[indptr[i]:indptr[i+1]]`` for every segment (0 for empty ones), summed in order."""
    n = indptr.shape[0] - 1
    out = np.zeros(n, dtype=np.result_type(values.dtype, np.float64))
    nonempty = indptr[1:] > indptr[:-1]
    if values.size and nonempty.any():
        out[nonempty] = np.add.reduceat(values, indptr[:-1][nonempty])
    return out


def take(indptr: np.ndarray, values: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``idx`` (in that order) as a new CSR pair."""
    lens = indptr[idx + 1] - indptr[idx]
    new_ptr = np.zeros(idx.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=new_ptr[1:])
    gather = np.repeat(indptr[idx] - new_ptr[:-1], lens) + np.arange(new_ptr[-1], dtype=np.int64)
    return new_ptr, values[gather]


def assemble(n: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
             base: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Build a CSR pair of ``n`` segments from ``parts`` = [(idx, indptr, values), ...] where part
    segment ``j`` becomes segment ``idx[j]``; segments in no part come from ``base`` (else empty)."""
    dtype = parts[0][2].dtype if parts else (base[1].dtype if base is not None else np.int32)
    if base is not None and parts:
        fast = _append_tail(n, parts, base, dtype)
        if fast is not None:
            return fast
    src_vals = [] if base is None else [base[1]]
    offset = 0 if base is None else base[1].shape[0]
    lens = np.zeros(n, dtype=np.int64) if base is None else np.diff(base[0]).astype(np.int64)
    start = np.zeros(n, dtype=np.int64) if base is None else base[0][:-1].astype(np.int64).copy()
    for idx, ptr, vals in parts:
        lens[idx] = np.diff(ptr)
        start[idx] = ptr[:-1] + offset
        src_vals.append(vals)
        offset += vals.shape[0]
    src = np.concatenate(src_vals).astype(dtype, copy=False) if src_vals else np.zeros(0, dtype=dtype)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    gather = np.repeat(start - indptr[:-1], lens) + np.arange(indptr[-1], dtype=np.int64)
    return indptr, src[gather]


def _append_tail(n: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], base: tuple[np.ndarray, np.ndarray],
                 dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`assemble` when every part's segments lie in a trailing run of empty base segments (routes
    of trips appended during the day): the base is kept as it is and the new segments follow it,
    without a gather over the whole array. ``None`` when that is not the case."""
    bptr = base[0]
    if bptr.shape[0] != n + 1:
        return None
    k0 = min(int(idx.min()) for idx, _, _ in parts if idx.size) if any(idx.size for idx, _, _ in parts) else n
    if bptr[k0] != bptr[-1]:  # a base segment at or after k0 is not empty
        return None
    m = n - k0
    lens = np.zeros(m, dtype=np.int64)
    start = np.zeros(m, dtype=np.int64)
    vals = []
    offset = 0
    for idx, ptr, v in parts:
        lens[idx - k0] = np.diff(ptr)
        start[idx - k0] = ptr[:-1] + offset
        vals.append(v)
        offset += v.shape[0]
    src = np.concatenate(vals).astype(dtype, copy=False)
    tail_ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(lens, out=tail_ptr[1:])
    gather = np.repeat(start - tail_ptr[:-1], lens) + np.arange(tail_ptr[-1], dtype=np.int64)
    indptr = np.concatenate([bptr[:k0].astype(np.int64), bptr[k0] + tail_ptr])
    return indptr, np.concatenate([base[1].astype(dtype, copy=False), src[gather]])
