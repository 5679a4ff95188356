"""Synthetic population: homes, workplaces and activity times, drawn deterministically from a seed."""

from __future__ import annotations

import numpy as np

from twin.network.road_network import RoadNetwork
from twin.scenario import TimeDistribution

__all__ = ["place_population", "sample_times"]


def _weights(w: np.ndarray, placement: str) -> np.ndarray:
    if placement == "uniform" or w.sum() <= 0:
        return np.full(w.shape[0], 1.0 / w.shape[0])
    return w / w.sum()


def place_population(
    net: RoadNetwork, n: int, placement: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Home and work node indices (int32, shape (n,)) of ``n`` residents.

    With ``placement="buildings"`` homes are drawn with probability proportional to
    ``net.node_home_weight`` and workplaces to ``net.node_work_weight`` (OSM building centroids
    snapped to nodes); a map without buildings falls back to uniform. A resident never works
    at its home node (redrawn until different; needs at least two nodes).
    """
    if net.n_nodes < 2:
        raise ValueError("a population needs a network with at least two nodes")
    p_home = _weights(net.node_home_weight, placement)
    p_work = _weights(net.node_work_weight, placement)
    if np.count_nonzero(p_work) == 1:  # a single workplace node: let homes avoid it
        p_work = _weights(np.ones(net.n_nodes), "uniform")
    home = rng.choice(net.n_nodes, size=n, p=p_home).astype(np.int32)
    work = rng.choice(net.n_nodes, size=n, p=p_work).astype(np.int32)
    same = np.flatnonzero(home == work)
    for _ in range(1000):
        if same.size == 0:
            break
        work[same] = rng.choice(net.n_nodes, size=same.size, p=p_work)
        same = same[home[same] == work[same]]
    if same.size:
        # every workplace weight sits on these residents' home nodes: use any other node
        work[same] = (home[same] + 1) % net.n_nodes
    return home, work


def sample_times(dist: TimeDistribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws (float64 seconds) of a :class:`~twin.scenario.TimeDistribution`.

    Truncated normals use inverse-CDF sampling, so draws never pile up on the bounds.
    """
    if dist.kind == "fixed" or n == 0:
        return np.full(n, float(dist.mean_s))
    u = rng.random(n)
    if dist.kind == "uniform":
        return dist.min_s + u * (dist.max_s - dist.min_s)
    if dist.std_s == 0:
        return np.full(n, float(dist.mean_s))
    from scipy.stats import norm

    a = norm.cdf((dist.min_s - dist.mean_s) / dist.std_s)
    b = norm.cdf((dist.max_s - dist.mean_s) / dist.std_s)
    x = dist.mean_s + dist.std_s * norm.ppf(a + u * (b - a))
    return np.clip(x, dist.min_s, dist.max_s)
