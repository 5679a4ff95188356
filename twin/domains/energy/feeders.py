"""Generated distribution feeders: buildings grouped around k substations by a deterministic k-means.

The model
---------
A city's real feeder topology is rarely public, so the domain generates one: ``k`` substations are
placed by Lloyd's k-means over the buildings' positions (metres in the network's UTM projection),
started from k-means++ seeds (Arthur & Vassilvitskii 2007) drawn from the run's named random stream,
and every building is served by the feeder of its nearest substation. Lloyd's iterations stop when
no building changes feeder (or after ``max_iter``); a centre that loses all its buildings keeps its
position. The same positions, ``k`` and stream give the same feeders, on any machine.

Hand-written because it is a dozen lines over :class:`scipy.spatial.cKDTree` and must be exactly
reproducible and silent: ``scipy.cluster.vq.kmeans2`` warns on empty clusters and re-seeds them, and
scikit-learn is not a dependency. The electrical model of a feeder is its power limit only (the
domain aggregates building loads against it); :func:`twin.domains.energy.grid.run_power_flow`
solves a pandapower feeder when voltages and losses are wanted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["kmeans_feeders"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _plus_plus(xy: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """k-means++ seeds: the first uniformly, each next with probability ∝ squared distance."""
    n = xy.shape[0]
    centres = np.empty((k, 2), dtype=np.float64)
    centres[0] = xy[int(rng.integers(n))]
    d2 = np.sum((xy - centres[0]) ** 2, axis=1)
    for j in range(1, k):
        total = float(d2.sum())
        if total <= 0.0:  # fewer distinct positions than centres: repeat one
            centres[j] = centres[j - 1]
            continue
        i = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
        centres[j] = xy[min(i, n - 1)]
        d2 = np.minimum(d2, np.sum((xy - centres[j]) ** 2, axis=1))
    return centres


def kmeans_feeders(x_m: npt.ArrayLike, y_m: npt.ArrayLike, k: int, rng: np.random.Generator, *,
                   max_iter: int = 100) -> tuple[IntArray, FloatArray, FloatArray]:
    """Assign buildings to ``k`` feeders by k-means over their positions.

    Parameters
    ----------
    x_m, y_m
        Building positions (metres, projected), shape ``(n,)``, ``n ≥ 1``.
    k
        Number of feeders, ``1 ≤ k`` (more than ``n`` is reduced to ``n``).
    rng
        Generator of the seeds (a named stream of the run, for reproducibility).
    max_iter
        Most Lloyd iterations.

    Returns
    -------
    feeder : numpy.ndarray
        int64 ``(n,)``: the feeder of each building, ``0 ≤ feeder < k``; feeders are numbered by
        their substation's position (west to east, then south to north), so the numbering does not
        depend on the seeds' order.
    centre_x_m, centre_y_m : numpy.ndarray
        float64 ``(k,)``: the substations' positions.
    """
    from scipy.spatial import cKDTree

    xy = np.column_stack([np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)])
    n = xy.shape[0]
    if n == 0:
        raise ValueError("kmeans_feeders needs at least one building")
    if not np.all(np.isfinite(xy)):
        raise ValueError("building positions must be finite")
    k = int(min(max(k, 1), n))
    centres = _plus_plus(xy, k, rng)
    label = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        new = np.asarray(cKDTree(centres).query(xy)[1], dtype=np.int64)
        if np.array_equal(new, label):
            break
        label = new
        counts = np.bincount(label, minlength=k)
        for c in range(2):
            s = np.bincount(label, weights=xy[:, c], minlength=k)
            centres[:, c] = np.where(counts > 0, s / np.maximum(counts, 1), centres[:, c])
    order = np.lexsort((centres[:, 1], centres[:, 0]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[label], centres[order, 0].copy(), centres[order, 1].copy()
