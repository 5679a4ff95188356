"""Zone-based rebalancing of idle MaaS vehicles (twin.domains.maas.rebalance).

The transport problem is checked against references written here, independently of the module: an
LP in another formulation (equalities with slack moves, scipy's linprog), exhaustive enumeration of
all integer move matrices for tiny instances, and networkx's max-flow min-cost on integer costs.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.optimize import linprog

from twin.domains.maas.rebalance import (
    REBALANCERS,
    MinCostFlowRebalancer,
    NoRebalancing,
    Rebalancer,
    grid_zones,
    min_cost_moves,
    rebalancing_targets,
)

INF = np.inf


# ------------------------------------------------------------------------------------- references
def _surplus_deficit(idle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(idle - target, 0), np.maximum(target - idle, 0)


def _lp_reference(idle: np.ndarray, target: np.ndarray, cost: np.ndarray) -> tuple[int, float]:
    """(vehicles moved, least total cost): first the most vehicles movable, then the least cost.

    Variables: x_ij for every surplus zone i and deficit zone j with finite cost, plus a slack a_i
    (surplus kept) per surplus zone and b_j (deficit left) per deficit zone; equalities only.
    """
    surplus, deficit = _surplus_deficit(idle, target)
    src, dst = np.flatnonzero(surplus), np.flatnonzero(deficit)
    pairs = [(i, j) for i in src for j in dst if np.isfinite(cost[i, j])]
    if not pairs:
        return 0, 0.0
    n_x, n_s, n_d = len(pairs), len(src), len(dst)
    n_var = n_x + n_s + n_d
    a_eq = np.zeros((n_s + n_d, n_var))
    for k, (i, j) in enumerate(pairs):
        a_eq[int(np.searchsorted(src, i)), k] = 1
        a_eq[n_s + int(np.searchsorted(dst, j)), k] = 1
    a_eq[np.arange(n_s), n_x + np.arange(n_s)] = 1
    a_eq[n_s + np.arange(n_d), n_x + n_s + np.arange(n_d)] = 1
    b_eq = np.concatenate([surplus[src], deficit[dst]]).astype(float)
    # phase 1: most vehicles moved
    c1 = np.concatenate([-np.ones(n_x), np.zeros(n_s + n_d)])
    r1 = linprog(c1, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert r1.status == 0
    moved = round(-r1.fun)
    # phase 2: least cost for that many
    c2 = np.concatenate([[cost[i, j] for i, j in pairs], np.zeros(n_s + n_d)])
    a2 = np.vstack([a_eq, np.concatenate([np.ones(n_x), np.zeros(n_s + n_d)])])
    r2 = linprog(c2, A_eq=a2, b_eq=np.append(b_eq, moved), bounds=(0, None), method="highs")
    assert r2.status == 0
    return moved, float(r2.fun)


def _enumerate_reference(idle: np.ndarray, target: np.ndarray, cost: np.ndarray) -> tuple[int, float]:
    """(vehicles moved, least total cost) over all integer move matrices (tiny instances only)."""
    surplus, deficit = _surplus_deficit(idle, target)
    pairs = [(i, j) for i in np.flatnonzero(surplus) for j in np.flatnonzero(deficit) if np.isfinite(cost[i, j])]
    best = (0, 0.0)
    ranges = [range(min(surplus[i], deficit[j]) + 1) for i, j in pairs]
    for xs in itertools.product(*ranges):
        sent = np.zeros_like(surplus)
        got = np.zeros_like(deficit)
        for (i, j), x in zip(pairs, xs):
            sent[i] += x
            got[j] += x
        if (sent > surplus).any() or (got > deficit).any():
            continue
        moved = sum(xs)
        total = float(sum(x * cost[i, j] for (i, j), x in zip(pairs, xs)))
        if moved > best[0] or (moved == best[0] and total < best[1]):
            best = (moved, total)
    return best


def _check_moves(moves: np.ndarray, idle: np.ndarray, target: np.ndarray, cost: np.ndarray) -> tuple[int, float]:
    """Structural checks of a result; returns (vehicles moved, total cost)."""
    assert moves.dtype == np.int64 and moves.ndim == 2 and moves.shape[1] == 3
    surplus, deficit = _surplus_deficit(idle, target)
    if moves.shape[0] == 0:
        return 0, 0.0
    f, t, n = moves[:, 0], moves[:, 1], moves[:, 2]
    assert (n > 0).all() and (f != t).all()
    keys = list(zip(f.tolist(), t.tolist()))
    assert keys == sorted(set(keys)), "rows sorted by (from, to), no duplicates"
    sent = np.bincount(f, weights=n, minlength=idle.size)
    got = np.bincount(t, weights=n, minlength=idle.size)
    assert (sent <= surplus).all(), "no zone sends more than its surplus"
    assert (got <= deficit).all(), "no zone receives more than its deficit"
    assert np.isfinite(cost[f, t]).all(), "infinite-cost pairs are never used"
    return int(n.sum()), float((n * cost[f, t]).sum())


def _random_instance(rng: np.random.Generator, z_max: int = 6, idle_max: int = 5,
                     p_inf: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = int(rng.integers(1, z_max + 1))
    idle = rng.integers(0, idle_max + 1, size=z).astype(np.int64)
    target = rng.integers(0, idle_max + 1, size=z).astype(np.int64)
    cost = rng.uniform(0.0, 1000.0, size=(z, z))
    if p_inf:
        cost[rng.random((z, z)) < p_inf] = INF
    np.fill_diagonal(cost, 0.0)
    return idle, target, cost


# ----------------------------------------------------------------------------------- min_cost_moves
def test_min_cost_moves_matches_lp_on_random_instances() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(200):
        idle, target, cost = _random_instance(rng)
        moves = min_cost_moves(idle, target, cost)
        moved, total = _check_moves(moves, idle, target, cost)
        surplus, deficit = _surplus_deficit(idle, target)
        assert moved == min(int(surplus.sum()), int(deficit.sum()))
        ref_moved, ref_total = _lp_reference(idle, target, cost)
        assert moved == ref_moved
        assert total == pytest.approx(ref_total, abs=1e-6)


def test_min_cost_moves_matches_enumeration_on_tiny_instances() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 60:
        idle, target, cost = _random_instance(rng, z_max=4, idle_max=3, p_inf=0.2)
        surplus, deficit = _surplus_deficit(idle, target)
        n_cand = np.prod([min(s, d) + 1 for s in surplus[surplus > 0] for d in deficit[deficit > 0]])
        if n_cand > 3000:
            continue
        moved, total = _check_moves(min_cost_moves(idle, target, cost), idle, target, cost)
        ref_moved, ref_total = _enumerate_reference(idle, target, cost)
        assert moved == ref_moved
        assert total == pytest.approx(ref_total, abs=1e-6)
        checked += 1


def test_min_cost_moves_matches_networkx_on_integer_costs() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        idle, target, cost = _random_instance(rng, z_max=6, idle_max=5)
        cost = np.round(cost)
        moved, total = _check_moves(min_cost_moves(idle, target, cost), idle, target, cost)
        surplus, deficit = _surplus_deficit(idle, target)
        g = nx.DiGraph()
        for i in np.flatnonzero(surplus):
            g.add_edge("s", ("o", int(i)), capacity=int(surplus[i]), weight=0)
            for j in np.flatnonzero(deficit):
                g.add_edge(("o", int(i)), ("d", int(j)), weight=int(cost[i, j]))
        for j in np.flatnonzero(deficit):
            g.add_edge(("d", int(j)), "t", capacity=int(deficit[j]), weight=0)
        if "s" not in g or "t" not in g:
            assert moved == 0
            continue
        flow = nx.max_flow_min_cost(g, "s", "t")
        assert moved == sum(flow["s"].values())
        assert total == pytest.approx(nx.cost_of_flow(g, flow), abs=1e-6)


def test_min_cost_moves_hand_case() -> None:
    moves = min_cost_moves(np.array([3, 0]), np.array([1, 2]), np.array([[0.0, 60.0], [60.0, 0.0]]))
    assert moves.tolist() == [[0, 1, 2]]


def test_min_cost_moves_fills_cheapest_deficits_when_supply_is_short() -> None:
    # one spare vehicle in zone 0, deficits of 1 in zones 1 (far) and 2 (near)
    cost = np.array([[0.0, 900.0, 100.0], [900.0, 0.0, 50.0], [100.0, 50.0, 0.0]])
    moves = min_cost_moves(np.array([2, 0, 0]), np.array([1, 1, 1]), cost)
    assert moves.tolist() == [[0, 2, 1]]
    # two surplus zones, one deficit: the cheaper sender moves
    moves = min_cost_moves(np.array([1, 1, 0]), np.array([0, 0, 1]), cost)
    assert moves.tolist() == [[1, 2, 1]]


def test_min_cost_moves_never_uses_infinite_costs() -> None:
    # zone 0 may only reach zone 2, though zone 1 would be free
    cost = np.array([[0.0, INF, 500.0], [INF, 0.0, INF], [1.0, 1.0, 0.0]])
    moves = min_cost_moves(np.array([2, 0, 0]), np.array([0, 1, 1]), cost)
    assert moves.tolist() == [[0, 2, 1]]
    # nothing reachable: no moves
    cost = np.full((2, 2), INF)
    np.fill_diagonal(cost, 0.0)
    assert min_cost_moves(np.array([3, 0]), np.array([0, 3]), cost).shape == (0, 3)
    # random instances with many forbidden pairs: the most movable vehicles at least cost
    rng = np.random.default_rng(11)
    for _ in range(60):
        idle, target, cost = _random_instance(rng, p_inf=0.5)
        moved, total = _check_moves(min_cost_moves(idle, target, cost), idle, target, cost)
        ref_moved, ref_total = _lp_reference(idle, target, cost)
        assert moved == ref_moved
        assert total == pytest.approx(ref_total, abs=1e-6)


def test_min_cost_moves_trivial_and_invalid() -> None:
    cost = np.zeros((3, 3))
    assert min_cost_moves(np.array([1, 2, 3]), np.array([1, 2, 3]), cost).shape == (0, 3)
    assert min_cost_moves(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 0))).shape == (0, 3)
    with pytest.raises(ValueError):
        min_cost_moves(np.array([1, 2]), np.array([1, 2, 3]), cost)
    with pytest.raises(ValueError):
        min_cost_moves(np.array([1, 2, 3]), np.array([1, 2, 3]), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        min_cost_moves(np.array([-1, 2, 3]), np.array([1, 2, 3]), cost)
    with pytest.raises(ValueError):
        min_cost_moves(np.array([1.5, 2, 3]), np.array([1, 2, 3]), cost)
    bad = cost.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError):
        min_cost_moves(np.array([1, 2, 3]), np.array([1, 2, 3]), bad)


def test_min_cost_moves_is_deterministic() -> None:
    # many equal-cost optima: the same answer every time
    idle, target = np.array([3, 3, 0, 0]), np.array([0, 0, 3, 3])
    cost = np.ones((4, 4))
    first = min_cost_moves(idle, target, cost)
    for _ in range(5):
        assert np.array_equal(min_cost_moves(idle, target, cost), first)


# --------------------------------------------------------------------------------------- grid_zones
def test_grid_zones_dense_centres_deterministic() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 5000, 300)
    y = rng.uniform(0, 3000, 300)
    # two nodes at the same place: the tie goes to the lower index
    x[10], y[10] = x[20], y[20] = 1500.0, 1500.0
    cell = 1000.0
    zone, centre = grid_zones(x, y, cell)
    assert zone.dtype == np.int64 and centre.dtype == np.int64
    z = centre.size
    assert set(zone.tolist()) == set(range(z)), "zones numbered densely"
    assert (zone[centre] == np.arange(z)).all(), "centre node lies in its zone"
    # numbering follows (row, col) of the occupied cells
    col = np.floor((x - x.min()) / cell).astype(int)
    row = np.floor((y - y.min()) / cell).astype(int)
    cells = [(int(row[centre[k]]), int(col[centre[k]])) for k in range(z)]
    assert cells == sorted(cells) and len(set(cells)) == z
    for i in range(x.size):
        assert (row[i], col[i]) == cells[zone[i]]
    # centre: the nearest node to the cell centre, lowest index on ties
    for k in range(z):
        r, c = cells[k]
        members = np.flatnonzero(zone == k)
        d2 = (x[members] - (x.min() + (c + 0.5) * cell)) ** 2 + (y[members] - (y.min() + (r + 0.5) * cell)) ** 2
        assert centre[k] == members[np.flatnonzero(d2 == d2.min())[0]]
    assert centre[zone[10]] != 20
    zone2, centre2 = grid_zones(x, y, cell)
    assert np.array_equal(zone, zone2) and np.array_equal(centre, centre2)


def test_grid_zones_small_cases() -> None:
    zone, centre = grid_zones(np.array([0.0, 10.0, 1500.0, 1600.0, 20.0]), np.array([0.0, 0.0, 0.0, 1200.0, 900.0]),
                              1000.0)
    assert zone.tolist() == [0, 0, 1, 2, 0]
    assert centre.tolist() == [4, 2, 3]
    zone, centre = grid_zones(np.array([7.0]), np.array([3.0]), 100.0)
    assert zone.tolist() == [0] and centre.tolist() == [0]
    zone, centre = grid_zones(np.zeros(0), np.zeros(0), 100.0)
    assert zone.size == 0 and centre.size == 0
    with pytest.raises(ValueError):
        grid_zones(np.zeros(2), np.zeros(3), 100.0)
    with pytest.raises(ValueError):
        grid_zones(np.zeros(2), np.zeros(2), 0.0)
    with pytest.raises(ValueError):
        grid_zones(np.array([0.0, np.nan]), np.zeros(2), 10.0)


# ------------------------------------------------------------------------------- rebalancing_targets
def test_rebalancing_targets_bounded_nonnegative_integers() -> None:
    rng = np.random.default_rng(9)
    for _ in range(200):
        z = int(rng.integers(1, 8))
        idle = rng.integers(0, 6, size=z)
        demand = rng.uniform(0, 20, size=z) * (rng.random(z) < 0.7)
        alpha = float(rng.uniform(0, 2))
        beta = float(rng.uniform(-2, 2))
        t = rebalancing_targets(idle, demand, alpha=alpha, beta=beta)
        assert t.dtype == np.int64 and t.shape == (z,)
        assert (t >= 0).all() and t.sum() <= idle.sum()
        raw = np.maximum(alpha * demand + beta, 0)
        # largest remainder: each target within 1 of its (scaled) real value
        scale = min(1.0, idle.sum() / raw.sum()) if raw.sum() > 0 else 0.0
        assert (np.abs(t - raw * scale) < 1 + 1e-9).all()


def test_rebalancing_targets_proportional_to_demand() -> None:
    # plenty of idle vehicles: alpha * demand exactly
    assert rebalancing_targets(np.array([10, 10, 10, 10]), np.array([2.0, 4.0, 6.0, 0.0])).tolist() == [1, 2, 3, 0]
    # scarce: scaled to the idle total, in proportion
    assert rebalancing_targets(np.array([6, 0, 0]), np.array([10.0, 20.0, 30.0])).tolist() == [1, 2, 3]
    # 3 idle: scaled [0.5, 1, 1.5], floors [0, 1, 1]; remainders 0.5 tie between zones 0 and 2: lower wins
    assert rebalancing_targets(np.array([2, 1, 0]), np.array([10.0, 20.0, 30.0]), alpha=1.0).tolist() == [1, 1, 1]
    assert rebalancing_targets(np.array([2, 2, 0]), np.array([10.0, 20.0, 30.0]), alpha=1.0).tolist() == [1, 1, 2]
    # equal remainders: the lower zone gets the vehicle
    assert rebalancing_targets(np.array([1, 0]), np.array([5.0, 5.0])).tolist() == [1, 0]
    # beta: a floor of vehicles everywhere; negative targets clipped to 0
    assert rebalancing_targets(np.array([5, 5]), np.array([0.0, 0.0]), beta=1.0).tolist() == [1, 1]
    assert rebalancing_targets(np.array([5, 5]), np.array([0.0, 8.0]), beta=-1.0).tolist() == [0, 3]
    # no idle vehicles or no demand: zero targets
    assert rebalancing_targets(np.array([0, 0]), np.array([3.0, 3.0])).tolist() == [0, 0]
    assert rebalancing_targets(np.array([3, 3]), np.array([0.0, 0.0])).tolist() == [0, 0]
    with pytest.raises(ValueError):
        rebalancing_targets(np.array([1, 1]), np.array([1.0]))
    with pytest.raises(ValueError):
        rebalancing_targets(np.array([1, 1]), np.array([1.0, -1.0]))


# ------------------------------------------------------------------------------------- rebalancers
def _line_city() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nine nodes on a line, 3 zones of 3 nodes (cell 300 m); drive cost = centre distance."""
    x = np.arange(9, dtype=float) * 100.0
    zone, centre = grid_zones(x, np.zeros(9), 300.0)
    cost = np.abs(x[centre][:, None] - x[centre][None, :])
    return zone, centre, cost


def test_min_cost_flow_rebalancer_hand_case() -> None:
    zone, centre, cost = _line_city()
    assert zone.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and centre.tolist() == [1, 4, 7]
    # five idle vehicles in zone 0 (nodes given out of order), none elsewhere; demand only in zone 2
    nodes = np.array([2, 0, 1, 0, 2])
    plan = MinCostFlowRebalancer(zone, centre, alpha=1.0).plan(nodes, np.array([0.0, 0.0, 2.0]), cost)
    # the two vehicles on the lowest nodes (node 0: vehicles 1 and 3) go to the centre of zone 2
    assert plan == [(1, 7), (3, 7)]


def test_min_cost_flow_rebalancer_sends_to_zone_centres_deterministically() -> None:
    rng = np.random.default_rng(13)
    x, y = rng.uniform(0, 4000, 200), rng.uniform(0, 4000, 200)
    zone, centre = grid_zones(x, y, 1000.0)
    cost = np.hypot(x[centre][:, None] - x[centre][None, :], y[centre][:, None] - y[centre][None, :]) / 8.0
    reb = MinCostFlowRebalancer(zone, centre, alpha=0.8)
    for _ in range(20):
        nodes = rng.integers(0, 200, size=int(rng.integers(0, 40)))
        demand = rng.poisson(3.0, size=centre.size).astype(float)
        plan = reb.plan(nodes, demand, cost)
        assert plan == reb.plan(nodes.copy(), demand.copy(), cost.copy()), "deterministic"
        vehicles = [v for v, _ in plan]
        assert vehicles == sorted(set(vehicles))
        centres = set(centre.tolist())
        for v, dest in plan:
            assert dest in centres
            assert zone[dest] != zone[nodes[v]], "a vehicle moves to another zone"
        # the moves are those of min_cost_moves
        idle = np.bincount(zone[nodes], minlength=centre.size)
        moves = min_cost_moves(idle, rebalancing_targets(idle, demand, alpha=0.8), cost)
        assert len(plan) == int(moves[:, 2].sum())
        counts: dict[tuple[int, int], int] = {}
        for v, dest in plan:
            key = (int(zone[nodes[v]]), int(zone[dest]))
            counts[key] = counts.get(key, 0) + 1
        assert counts == {(int(f), int(t)): int(n) for f, t, n in moves}


def test_rebalancer_registry_and_base() -> None:
    zone, centre, cost = _line_city()
    assert set(REBALANCERS) == {"none", "min_cost_flow"}
    assert REBALANCERS["min_cost_flow"] is MinCostFlowRebalancer
    for cls in REBALANCERS.values():
        assert issubclass(cls, Rebalancer)
        assert isinstance(cls(zone, centre, alpha=0.5, beta=0.0), Rebalancer)
    assert NoRebalancing(zone, centre).plan(np.array([0, 0, 0]), np.array([0.0, 0.0, 9.0]), cost) == []
    with pytest.raises(NotImplementedError):
        Rebalancer(zone, centre).plan(np.array([0]), np.zeros(3), cost)
    assert MinCostFlowRebalancer(zone, centre).plan(np.zeros(0, dtype=np.int64), np.ones(3), cost) == []
    with pytest.raises(ValueError):
        Rebalancer(zone, np.array([1, 2, 7]))  # node 2 is not in zone 1
    with pytest.raises(ValueError):
        MinCostFlowRebalancer(zone, centre).plan(np.array([0]), np.ones(2), cost)
    with pytest.raises(ValueError):
        MinCostFlowRebalancer(zone, centre).plan(np.array([9]), np.ones(3), cost)
