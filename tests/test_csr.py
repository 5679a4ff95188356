"""twin._csr.assemble: its fast path for segments appended after the base (trips added within the
day) gives the general path's arrays, on random cases."""

from __future__ import annotations

import numpy as np
import pytest

import twin._csr as csr


def brute(n, parts, base):
    """Segment by segment, in Python."""
    segs = [list(base[1][base[0][i]:base[0][i + 1]]) for i in range(n)]
    for idx, ptr, vals in parts:
        for j, i in enumerate(idx.tolist()):
            segs[i] = list(vals[ptr[j]:ptr[j + 1]])
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum([len(s) for s in segs], out=ptr[1:])
    return ptr, np.array([x for s in segs for x in s], dtype=base[1].dtype)


@pytest.mark.parametrize("seed", range(40))
def test_assemble_matches_a_brute_force(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    k0 = int(rng.integers(0, n + 1))
    lens = rng.integers(0, 4, n)
    if seed % 4:
        lens[k0:] = 0  # an empty tail: the fast path's case
    bptr = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=bptr[1:])
    base = (bptr, rng.integers(0, 100, bptr[-1]).astype(np.int32))
    pool = rng.permutation(np.arange(k0 if seed % 3 else 0, n))
    parts = []
    for ch in np.array_split(pool, int(rng.integers(1, 4))):
        pl = rng.integers(0, 4, ch.size)
        pp = np.zeros(ch.size + 1, np.int64)
        np.cumsum(pl, out=pp[1:])
        parts.append((ch.astype(np.int64), pp, rng.integers(0, 100, pp[-1]).astype(np.int32)))
    want = brute(n, parts, base)
    got = csr.assemble(n, parts, base=base)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[1].dtype == want[1].dtype
    monkeypatch.setattr(csr, "_append_tail", lambda *a: None)  # the general path alone
    slow = csr.assemble(n, parts, base=base)
    assert np.array_equal(slow[0], want[0]) and np.array_equal(slow[1], want[1])
