"""Zone-based rebalancing of idle fleet vehicles by min-cost flow.

Every rebalancing period the service area is cut into square zones (:func:`grid_zones`); each zone
gets a *target* number of idle vehicles from the demand expected there (:func:`rebalancing_targets`,
MATSim DRT's linear target ``alpha * expected_demand + beta``); zones with more idle vehicles than
their target (a *surplus*) send vehicles to zones with fewer (a *deficit*) so that the total drive
time of the moves is least (:func:`min_cost_moves`, the transport problem); and the vehicles that
move are picked and sent to the centre node of their destination zone
(:class:`MinCostFlowRebalancer`). This is the ``minCostFlow`` rebalancing strategy of MATSim DRT
(``MinCostFlowRebalancingStrategy`` with ``LinearRebalancingTargetCalculator``) and the zone-based
repositioning of FleetPy.

What is written by hand here is the zone bookkeeping: the grid, the targets and their rounding, the
surpluses and deficits, and which vehicle goes where. The optimisation itself is not: the transport
problem is a linear programme solved by SciPy's HiGHS (:func:`scipy.optimize.linprog`), a
maintained, tested solver; a hand-written network simplex or successive-shortest-path code would be
longer, slower and one more thing to get wrong.

Rebalancers are pluggable: :data:`REBALANCERS` maps the names allowed in the scenario
(``maas.operators[].rebalancing``) to classes that share one constructor and one
:meth:`Rebalancer.plan` method.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import maximum_flow

__all__ = [
    "grid_zones",
    "rebalancing_targets",
    "min_cost_moves",
    "Rebalancer",
    "NoRebalancing",
    "MinCostFlowRebalancer",
    "REBALANCERS",
]

#: Largest distance of an LP solution from the nearest integer vector that is accepted as integral.
_INT_TOL = 1e-6


# --------------------------------------------------------------------------------------------- zones
def grid_zones(x_m: np.ndarray, y_m: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Square grid zones of the nodes.

    The grid starts at the smallest ``x_m`` and ``y_m``; a node at ``(x, y)`` lies in cell
    ``(row, col) = (floor((y - y_min) / cell_m), floor((x - x_min) / cell_m))``. Only occupied cells
    are zones, numbered densely ``0 .. z - 1`` in ``(row, col)`` order.

    Parameters
    ----------
    x_m, y_m
        Projected node coordinates (metres), shape ``(n,)``.
    cell_m
        Side of a square cell (metres), > 0.

    Returns
    -------
    zone_of_node
        int64 ``(n,)``: the zone of each node.
    zone_center_node
        int64 ``(z,)``: the node of each zone nearest to the centre of its cell (Euclidean; ties to
        the lowest node index).

    Raises
    ------
    ValueError
        Coordinates of different shapes or not finite, ``cell_m`` not positive and finite.
    """
    x = np.asarray(x_m, dtype=np.float64).reshape(-1)
    y = np.asarray(y_m, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x_m and y_m differ in length ({x.size}, {y.size})")
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise ValueError(f"cell_m must be positive and finite, got {cell_m!r}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("node coordinates must be finite")
    n = x.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    x0, y0 = float(x.min()), float(y.min())
    col = np.floor((x - x0) / cell_m).astype(np.int64)
    row = np.floor((y - y0) / cell_m).astype(np.int64)
    n_cols = int(col.max()) + 1
    cells, zone_of_node = np.unique(row * n_cols + col, return_inverse=True)
    zone_of_node = zone_of_node.astype(np.int64).reshape(-1)
    # centre of each node's cell, then the nearest node per zone (lexsort: zone, distance², node index)
    cx = x0 + (col + 0.5) * cell_m
    cy = y0 + (row + 0.5) * cell_m
    d2_m2 = (x - cx) ** 2 + (y - cy) ** 2
    order = np.lexsort((np.arange(n), d2_m2, zone_of_node))
    first = np.ones(n, dtype=bool)
    first[1:] = zone_of_node[order][1:] != zone_of_node[order][:-1]
    zone_center_node = order[first].astype(np.int64)
    assert zone_center_node.size == cells.size
    return zone_of_node, zone_center_node


# ------------------------------------------------------------------------------------------- targets
def _largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    """Integers ``>= floor(values)`` summing to ``total``: the floors, plus one for the ``total - Σ
    floor`` largest fractional parts (ties to the lower index). Values within 1e-9 of an integer
    count as that integer, so that floating-point noise of the scaling does not move a unit."""
    near = np.rint(values)
    values = np.where(np.abs(values - near) < 1e-9, near, values)
    base = np.floor(values)
    rem = values - base
    out: np.ndarray = base.astype(np.int64)
    extra = total - int(out.sum())
    if extra > 0:
        order = np.lexsort((np.arange(values.size), -rem))  # largest remainder first, then lower index
        out[order[: min(extra, values.size)]] += 1
    return out


def rebalancing_targets(idle: np.ndarray, expected_demand: np.ndarray, *, alpha: float = 0.5,
                        beta: float = 0.0) -> np.ndarray:
    """Target number of idle vehicles per zone.

    MATSim DRT's linear target ``alpha * expected_demand + beta`` (negative values: 0), scaled down
    so that the targets sum to at most the number of idle vehicles, then rounded by the
    largest-remainder method to integers that sum to ``min(Σ idle, round(Σ raw targets))`` (half
    up; ties between equal remainders go to the lower zone index).

    Parameters
    ----------
    idle
        Idle vehicles per zone, ``(z,)``, non-negative integers.
    expected_demand
        Requests expected per zone in the coming period (e.g. the previous day's requests starting
        there in the same period), ``(z,)``, non-negative, finite.
    alpha, beta
        Slope and intercept of the linear target (MATSim's ``alpha`` and ``beta``), finite.

    Returns
    -------
    np.ndarray
        int64 ``(z,)``, non-negative, summing to at most ``idle.sum()``.

    Raises
    ------
    ValueError
        Shapes differ, negative or non-integer ``idle``, negative or non-finite demand,
        non-finite ``alpha`` or ``beta``.
    """
    n_idle = _as_counts(idle, "idle")
    demand = np.asarray(expected_demand, dtype=np.float64).reshape(-1)
    if demand.shape != n_idle.shape:
        raise ValueError(f"idle and expected_demand differ in length ({n_idle.size}, {demand.size})")
    if not np.isfinite(demand).all() or (demand < 0).any():
        raise ValueError("expected_demand must be finite and non-negative")
    if not (np.isfinite(alpha) and np.isfinite(beta)):
        raise ValueError(f"alpha and beta must be finite, got {alpha!r}, {beta!r}")
    raw = np.maximum(alpha * demand + beta, 0.0)
    n_total = int(n_idle.sum())
    raw_total = float(raw.sum())
    if raw_total <= 0.0 or n_total == 0:
        return np.zeros(n_idle.size, dtype=np.int64)
    if raw_total > n_total:
        raw = raw * (n_total / raw_total)
        total = n_total
    else:
        total = min(n_total, int(np.floor(raw_total + 0.5)))
    return _largest_remainder(raw, total)


# ----------------------------------------------------------------------------------------- transport
def _as_counts(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{name} must hold integers")
    out = arr.astype(np.int64)
    if (out < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return out


def _max_movable(surplus: np.ndarray, deficit: np.ndarray, allowed: np.ndarray) -> int:
    """Most vehicles that can move from surplus to deficit zones along the allowed pairs (max flow)."""
    n_s, n_d = surplus.size, deficit.size
    src, snk = n_s + n_d, n_s + n_d + 1
    ii, jj = np.nonzero(allowed)
    cap_pair = int(surplus.sum())
    rows = np.concatenate([np.full(n_s, src), ii, n_s + np.arange(n_d)])
    cols = np.concatenate([np.arange(n_s), n_s + jj, np.full(n_d, snk)])
    caps = np.concatenate([surplus, np.full(ii.size, cap_pair), deficit]).astype(np.int32)
    graph = sp.csr_matrix((caps, (rows, cols)), shape=(n_s + n_d + 2,) * 2)
    return int(maximum_flow(graph, src, snk).flow_value)


def min_cost_moves(idle: np.ndarray, target: np.ndarray, cost_s: np.ndarray) -> np.ndarray:
    """Moves of idle vehicles from surplus to deficit zones at least total cost (transport problem).

    Zone ``i`` has a surplus ``max(idle_i - target_i, 0)`` and a deficit ``max(target_i - idle_i,
    0)``. The moves ``x_ij`` (from a surplus zone ``i`` to a deficit zone ``j``, only where
    ``cost_s[i, j]`` is finite) minimise ``Σ x_ij cost_s[i, j]`` subject to ``Σ_j x_ij <= surplus_i``,
    ``Σ_i x_ij <= deficit_j`` and ``Σ x_ij = min(Σ surplus, Σ deficit)``: when there are fewer idle
    vehicles to spare than are missing, the deficits that are cheapest to fill are filled. Where
    infinite costs make that many moves impossible, the largest possible number is moved (found
    first by a max flow), at least cost.

    Parameters
    ----------
    idle, target
        Idle vehicles and target idle vehicles per zone, ``(z,)``, non-negative integers.
    cost_s
        ``(z, z)`` cost of moving one vehicle from zone to zone (e.g. drive time between zone
        centres, seconds), non-negative; ``inf``: not allowed. The diagonal is not used.

    Returns
    -------
    np.ndarray
        int64 ``(m, 3)`` rows ``(from_zone, to_zone, n_vehicles)``, ``n_vehicles > 0``, ``from_zone
        != to_zone``, sorted by ``(from_zone, to_zone)``.

    Raises
    ------
    ValueError
        Bad shapes, negative or non-integer counts, NaN or negative costs.
    RuntimeError
        The LP solver fails or returns a solution that is not integral (it should not: see Notes).

    Notes
    -----
    Solver: :func:`scipy.optimize.linprog` with HiGHS dual simplex (``method="highs-ds"``) rather
    than :func:`networkx.min_cost_flow`. The costs are drive times in float seconds; networkx's
    network simplex is exact only for integer weights, so they would have to be rounded to whole
    seconds, and the moves would then be optimal for the rounded costs, not for the real ones. The
    LP keeps the float costs. Its constraint matrix is that of a transportation problem (with the
    slacks of the ``<=`` rows as moves to and from dummy zones), which is totally unimodular, so with
    integer surpluses and deficits every vertex is integral; the simplex returns a vertex, which is
    rounded and checked. HiGHS is deterministic for the same input, and the rows are sorted.
    """
    n_idle = _as_counts(idle, "idle")
    n_target = _as_counts(target, "target")
    z = n_idle.size
    if n_target.size != z:
        raise ValueError(f"idle and target differ in length ({z}, {n_target.size})")
    cost = np.asarray(cost_s, dtype=np.float64)
    if cost.shape != (z, z):
        raise ValueError(f"cost_s must have shape ({z}, {z}), got {cost.shape}")
    off_diag = ~np.eye(z, dtype=bool)
    if np.isnan(cost[off_diag]).any() or (cost[off_diag] < 0).any():
        raise ValueError("cost_s must be non-negative (inf: not allowed), without NaN")
    empty = np.zeros((0, 3), dtype=np.int64)

    surplus_all = np.maximum(n_idle - n_target, 0)
    deficit_all = np.maximum(n_target - n_idle, 0)
    src_zone = np.flatnonzero(surplus_all)  # ascending: surplus and deficit zones are disjoint
    dst_zone = np.flatnonzero(deficit_all)
    if src_zone.size == 0 or dst_zone.size == 0:
        return empty
    surplus = surplus_all[src_zone]
    deficit = deficit_all[dst_zone]
    pair_cost = cost[np.ix_(src_zone, dst_zone)]
    allowed = np.isfinite(pair_cost)
    n_move = min(int(surplus.sum()), int(deficit.sum()))
    if not allowed.all():
        n_move = min(n_move, _max_movable(surplus, deficit, allowed))
    if n_move == 0:
        return empty

    # variables: the allowed (surplus zone, deficit zone) pairs, row-major
    ii, jj = np.nonzero(allowed)
    n_var = ii.size
    var = np.arange(n_var)
    n_s, n_d = src_zone.size, dst_zone.size
    a_ub = sp.csr_matrix((np.ones(2 * n_var), (np.concatenate([ii, n_s + jj]), np.concatenate([var, var]))),
                         shape=(n_s + n_d, n_var))
    b_ub = np.concatenate([surplus, deficit]).astype(np.float64)
    a_eq = sp.csr_matrix(np.ones((1, n_var)))
    res = linprog(pair_cost[ii, jj], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[float(n_move)],
                  bounds=(0, None), method="highs-ds")
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"transport LP not solved: {res.message}")
    x = np.asarray(res.x, dtype=np.float64)
    x_int = np.rint(x).astype(np.int64)
    if (np.abs(x - x_int) > _INT_TOL).any():
        raise RuntimeError("transport LP returned a non-integral solution")
    sent = np.bincount(ii, weights=x_int, minlength=n_s)
    got = np.bincount(jj, weights=x_int, minlength=n_d)
    if int(x_int.sum()) != n_move or (sent > surplus).any() or (got > deficit).any() or (x_int < 0).any():
        raise RuntimeError("transport LP solution violates its constraints after rounding")
    keep = x_int > 0
    moves = np.stack([src_zone[ii[keep]], dst_zone[jj[keep]], x_int[keep]], axis=1).astype(np.int64)
    return moves[np.lexsort((moves[:, 1], moves[:, 0]))]


# --------------------------------------------------------------------------------------- rebalancers
class Rebalancer:
    """Base of the rebalancers: which idle vehicles to send where, every rebalancing period.

    Parameters
    ----------
    zone_of_node
        int64 ``(n,)``: the zone of each node (see :func:`grid_zones`).
    zone_center_node
        int64 ``(z,)``: the node vehicles are sent to in each zone; ``zone_of_node[zone_center_node[k]]
        == k``.
    alpha, beta
        Linear target of idle vehicles per zone, ``alpha * expected_demand + beta`` (see
        :func:`rebalancing_targets`).

    Raises
    ------
    ValueError
        Zones out of range, or a zone centre not in its zone.
    """

    def __init__(self, zone_of_node: np.ndarray, zone_center_node: np.ndarray, *, alpha: float = 0.5,
                 beta: float = 0.0) -> None:
        self.zone_of_node = np.asarray(zone_of_node, dtype=np.int64).reshape(-1)
        self.zone_center_node = np.asarray(zone_center_node, dtype=np.int64).reshape(-1)
        self.alpha = float(alpha)
        self.beta = float(beta)
        n, z = self.zone_of_node.size, self.zone_center_node.size
        if n and ((self.zone_of_node < 0).any() or (self.zone_of_node >= z).any()):
            raise ValueError(f"zone_of_node must lie in 0 .. {z - 1}")
        if z and ((self.zone_center_node < 0).any() or (self.zone_center_node >= n).any()):
            raise ValueError(f"zone_center_node must lie in 0 .. {n - 1}")
        if z and (self.zone_of_node[self.zone_center_node] != np.arange(z)).any():
            raise ValueError("every zone centre node must lie in its zone")

    @property
    def n_zones(self) -> int:
        """Number of zones."""
        return int(self.zone_center_node.size)

    def plan(self, idle_vehicle_node: np.ndarray, expected_demand: np.ndarray,
             cost_s: np.ndarray) -> list[tuple[int, int]]:
        """Rebalancing moves of idle vehicles.

        Parameters
        ----------
        idle_vehicle_node
            int64 ``(v,)``: the node of each idle vehicle.
        expected_demand
            ``(z,)``: requests expected per zone in the coming period.
        cost_s
            ``(z, z)``: cost of moving one vehicle between zones (e.g. drive time between the zone
            centres, seconds; ``inf``: not allowed).

        Returns
        -------
        list[tuple[int, int]]
            ``(vehicle_index, destination_node)`` pairs, ``vehicle_index`` into ``idle_vehicle_node``,
            sorted by it; vehicles not listed stay where they are.
        """
        raise NotImplementedError


class NoRebalancing(Rebalancer):
    """No rebalancing: idle vehicles stay where they are."""

    def plan(self, idle_vehicle_node: np.ndarray, expected_demand: np.ndarray,
             cost_s: np.ndarray) -> list[tuple[int, int]]:
        """No moves (see :meth:`Rebalancer.plan`)."""
        return []


class MinCostFlowRebalancer(Rebalancer):
    """MATSim DRT's ``minCostFlow`` rebalancing: linear targets per zone, then the transport problem.

    Idle vehicles are counted per zone; :func:`rebalancing_targets` gives the target per zone and
    :func:`min_cost_moves` the moves ``(from_zone, to_zone, n)``. For each move, in the order of its
    rows, the ``n`` idle vehicles of ``from_zone`` still unassigned whose nodes have the lowest index
    (equal nodes: lower vehicle index first) are sent to ``zone_center_node[to_zone]``.
    """

    def plan(self, idle_vehicle_node: np.ndarray, expected_demand: np.ndarray,
             cost_s: np.ndarray) -> list[tuple[int, int]]:
        """Rebalancing moves (see :meth:`Rebalancer.plan`).

        Raises
        ------
        ValueError
            Vehicle nodes out of range, or shapes of ``expected_demand``, ``cost_s`` that do not fit
            the zones.
        """
        node = np.asarray(idle_vehicle_node, dtype=np.int64).reshape(-1)
        if node.size and ((node < 0).any() or (node >= self.zone_of_node.size).any()):
            raise ValueError(f"idle_vehicle_node must lie in 0 .. {self.zone_of_node.size - 1}")
        z = self.n_zones
        if np.asarray(expected_demand).reshape(-1).size != z:
            raise ValueError(f"expected_demand must have {z} values (one per zone)")
        if node.size == 0 or z == 0:
            return []
        zone = self.zone_of_node[node]
        idle = np.bincount(zone, minlength=z).astype(np.int64)
        target = rebalancing_targets(idle, expected_demand, alpha=self.alpha, beta=self.beta)
        moves = min_cost_moves(idle, target, cost_s)
        # vehicles by (zone, node, vehicle index); each zone's slice is consumed from its start
        order = np.lexsort((np.arange(node.size), node, zone))
        start = np.searchsorted(zone[order], np.arange(z), side="left")
        taken = np.zeros(z, dtype=np.int64)
        out: list[tuple[int, int]] = []
        for from_zone, to_zone, n in moves.tolist():
            first = int(start[from_zone] + taken[from_zone])
            dest = int(self.zone_center_node[to_zone])
            out.extend((int(v), dest) for v in order[first: first + n])
            taken[from_zone] += n
        out.sort()
        return out


#: The rebalancers by the name used in the scenario (``maas.operators[].rebalancing``); all take
#: ``(zone_of_node, zone_center_node, *, alpha, beta)``.
REBALANCERS: dict[str, type[Rebalancer]] = {"none": NoRebalancing, "min_cost_flow": MinCostFlowRebalancer}
