"""Static user-equilibrium traffic assignment (Frank-Wolfe family).

Solves Wardrop's user equilibrium with separable BPR link travel times
``t_a(x_a) = fft_a * (1 + b_a * (x_a / cap_a) ** power_a)`` and the TNTP link
generalized cost

``c_a(x_a) = t_a(x_a) + toll_factor * toll_a + distance_factor * length_a``

(the flow-independent part ``k_a = toll_factor * toll_a + distance_factor *
length_a`` converts tolls and lengths into units of the free-flow time; both
factors default to the network file's ``<TOLL FACTOR>`` / ``<DISTANCE
FACTOR>``, or 0 without those tags). It minimises the Beckmann objective
``sum_a integral_0^{x_a} c_a(s) ds = sum_a (integral_0^{x_a} t_a(s) ds + k_a x_a)``
over link flows that carry the OD demand, with

* ``method="fw"``: Frank-Wolfe (all-or-nothing target, exact line search);
* ``method="cfw"``: conjugate Frank-Wolfe;
* ``method="bfw"``: bi-conjugate Frank-Wolfe (Mitradjieva & Lindberg 2013,
  "The stiff is moving - conjugate direction Frank-Wolfe methods with
  applications to traffic assignment", Transportation Science 47(2)).

The conjugate methods build the target as a combination of the new
all-or-nothing flows and the previous one or two targets, conjugate to the
previous directions with respect to the diagonal Hessian ``diag(t'(x))``;
they fall back to plain Frank-Wolfe steps when the previous step was a full
step (``tau = 1``), when a denominator vanishes or when the combination is not
a descent direction.

Route choice (the all-or-nothing loadings), the line search and the
convergence measure all use the generalized cost: the relative gap is
``(TC - SPC) / TC`` with the total system cost ``TC = sum_a x_a c_a(x_a)`` and
the shortest-path cost ``SPC = sum_od demand_od * (least generalized cost od)``
at the current costs. The total system travel time ``TSTT = sum_a x_a t_a(x_a)``
(time only) is reported beside it; with both factors 0, ``c = t`` and the gap is
the usual ``(TSTT - SPTT) / TSTT``, computed by exactly the same operations as
before the generalized cost existed (results are bit for bit those of the
time-only solver). All-or-nothing loading (one least-cost tree per origin
zone, honouring the TNTP ``first_thru_node`` rule) runs in Numba
(:mod:`twin.kernels.assignment`); the rest is vectorised numpy. Results are
deterministic and independent of the number of threads.

Generalized costs must be non-negative (Dijkstra): every link's cost at zero
flow, ``t_a(0) + k_a``, must be ``>= 0``; negative tolls (subsidies) are
accepted as long as that holds.

Example
-------
>>> from twin.assignment import read_tntp_net, read_tntp_trips, solve_ue
>>> net = read_tntp_net("SiouxFalls_net.tntp")                  # doctest: +SKIP
>>> od = read_tntp_trips("SiouxFalls_trips.tntp", net.n_zones)  # doctest: +SKIP
>>> res = solve_ue(net, od, gap_tol=1e-4)                       # doctest: +SKIP
>>> res.relative_gap[-1], res.objective[-1], res.iterations     # doctest: +SKIP
>>> tolled = solve_ue(net, od, toll_factor=0.1, distance_factor=0.5)  # doctest: +SKIP
>>> tolled.objective[-1], tolled.tstt, tolled.total_cost        # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from twin.kernels.assignment import (
    aon_load,
    beckmann_line_search,
    beckmann_objective,
    bpr_cost,
    bpr_cost_derivative,
    generalized_cost,
    generalized_line_search,
    generalized_objective,
)

__all__ = ["UEResult", "solve_ue", "METHODS"]

METHODS = ("fw", "cfw", "bfw")
_MAX_BLOCKS = 64  # origin blocks of the AON loading (fixed: results independent of threads)
_CFW_DELTA = 1e-6  # conjugate weight on the old target is clipped to [0, 1 - delta]

_Floats = npt.NDArray[np.float64]


class _Network(Protocol):
    """What :func:`solve_ue` needs of a network (a :class:`~twin.assignment.tntp.TntpNetwork` or similar);
    ``first_thru_node``, ``toll``, ``length`` and the factors are optional (read with ``getattr``)."""

    @property
    def init_node(self) -> npt.ArrayLike: ...
    @property
    def term_node(self) -> npt.ArrayLike: ...
    @property
    def free_flow_time(self) -> npt.ArrayLike: ...
    @property
    def capacity(self) -> npt.ArrayLike: ...
    @property
    def b(self) -> npt.ArrayLike: ...
    @property
    def power(self) -> npt.ArrayLike: ...
    @property
    def n_nodes(self) -> int: ...
    @property
    def n_zones(self) -> int: ...


@dataclass
class UEResult:
    """Result of :func:`solve_ue`.

    Per-link arrays are in the network's link order. History arrays have one
    entry per evaluated solution ``x_0 .. x_K`` (``x_0`` is the all-or-nothing
    loading on free-flow costs, ``K = iterations``).

    Costs are in units of the free-flow time; "generalized" means
    ``t(x) + toll_factor * toll + distance_factor * length``, which is the
    travel time ``t(x)`` when both factors are 0.

    Attributes
    ----------
    flow : ndarray of float64, shape (n_links,)
        Link flows of the returned solution ``x_K``.
    cost : ndarray of float64, shape (n_links,)
        BPR link travel times ``t(x)`` at ``flow`` (time only).
    generalized_cost : ndarray of float64, shape (n_links,)
        Generalized link costs at ``flow``: what route choice used.
    relative_gap : ndarray of float64, shape (K + 1,)
        ``(total_cost - sptt) / total_cost`` at each ``x_k`` (generalized).
    objective : ndarray of float64, shape (K + 1,)
        Generalized Beckmann objective at each ``x_k``: the BPR integral plus
        ``flow * (toll_factor * toll + distance_factor * length)`` summed over
        links.
    step_size : ndarray of float64, shape (K,)
        Line-search step taken from ``x_k`` to ``x_{k+1}``.
    elapsed_s : ndarray of float64, shape (K + 1,)
        Wall time since the start of the solve when ``x_k``'s gap was known.
    iterations : int
        Number of steps ``K``.
    converged : bool
        Whether ``relative_gap[-1] <= gap_tol``.
    tstt : float
        Total system travel time ``flow @ cost`` at ``x_K`` (time only).
    sptt : float
        Shortest-path total cost ``sum_od demand * least generalized cost`` at
        ``x_K``'s costs (the shortest-path travel time when both factors are 0).
    total_cost : float
        Total system generalized cost ``flow @ generalized_cost`` at ``x_K``;
        ``tstt + toll_factor * total_toll + distance_factor * total_distance``.
    total_toll, total_distance : float
        ``flow @ toll`` (toll revenue) and ``flow @ length`` (vehicle distance)
        at ``x_K``, in file units; ``nan`` if the network has no ``toll`` /
        ``length`` array.
    toll_factor, distance_factor : float
        The factors used (the arguments, else the network's, else 0).
    wall_time_s : float
        Total wall time of the solve (including JIT compilation on the first
        call in a process, unless cached).
    method : str
        ``"fw"``, ``"cfw"`` or ``"bfw"``.
    """

    flow: _Floats
    cost: _Floats
    relative_gap: _Floats
    objective: _Floats
    step_size: _Floats
    elapsed_s: _Floats
    iterations: int
    converged: bool
    tstt: float
    sptt: float
    wall_time_s: float
    method: str
    generalized_cost: _Floats
    total_cost: float
    total_toll: float
    total_distance: float
    toll_factor: float
    distance_factor: float

    @property
    def gap(self) -> float:
        """Final relative gap."""
        return float(self.relative_gap[-1])


def _factor(value: object, net: object, name: str, tag: str) -> float:
    """The generalized-cost factor: ``value``, else ``net.<name>`` (the file's tag), else 0."""
    where = name
    if value is None:
        value = getattr(net, name, 0.0)
        where = f"{name} of the network (<{tag}> in {getattr(net, 'source', '<network>')})"
    real = (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, real):
        raise ValueError(f"{where} must be a finite number >= 0, got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0.0):
        raise ValueError(f"{where} must be a finite number >= 0, got {value!r}")
    return value


class _Problem:
    """The network compiled to CSR form (links sorted by tail) and the demand.

    ``fixed`` is the flow-independent part of the generalized cost per link
    (CSR order), or ``None`` when both factors are 0: then every method calls
    the time-only kernels, exactly as before generalized costs existed.
    """

    def __init__(self, net: _Network, od: npt.ArrayLike, toll_factor: float | None = None,
                 distance_factor: float | None = None) -> None:
        init = np.asarray(net.init_node, dtype=np.int64)
        term = np.asarray(net.term_node, dtype=np.int64)
        n_links = init.shape[0]
        n_nodes = int(net.n_nodes)
        n_zones = int(net.n_zones)
        if term.shape != (n_links,):
            raise ValueError("init_node and term_node must have the same length")
        if n_links and (min(init.min(), term.min()) < 0 or max(init.max(), term.max()) >= n_nodes):
            raise ValueError(f"link node ids must lie in 0..{n_nodes - 1}")
        if not 0 < n_zones <= n_nodes:
            raise ValueError(f"n_zones must be in 1..n_nodes, got {n_zones}")
        od = np.asarray(od, dtype=np.float64)
        if od.shape != (n_zones, n_zones):
            raise ValueError(
                f"od must have shape ({n_zones}, {n_zones}) (n_zones x n_zones), got {od.shape}"
            )
        if not np.all(np.isfinite(od)) or np.any(od < 0):
            raise ValueError("od demand must be finite and >= 0")
        perm = np.argsort(init, kind="stable")
        self.perm = perm
        self.n_links = n_links
        self.indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(init, minlength=n_nodes), out=self.indptr[1:])
        self.link_tail = init[perm].astype(np.int32)
        self.link_head = term[perm].astype(np.int32)

        def arr(name: str) -> _Floats:
            a = np.ascontiguousarray(np.asarray(getattr(net, name), dtype=np.float64)[perm])
            if a.shape != (n_links,):
                raise ValueError(f"{name} must have one value per link")
            return a

        self.fft = arr("free_flow_time")
        self.b = arr("b")
        self.power = arr("power")
        self.cap = arr("capacity")
        if np.any(self.fft < 0) or np.any(self.b < 0) or np.any(self.power < 0):
            raise ValueError("free_flow_time, b and power must be >= 0")
        if np.any((self.cap <= 0) & (self.b > 0) & (self.power > 0)):
            raise ValueError("links with b > 0 need a capacity > 0")
        self.toll_factor = _factor(toll_factor, net, "toll_factor", "TOLL FACTOR")
        self.distance_factor = _factor(distance_factor, net, "distance_factor", "DISTANCE FACTOR")
        self.fixed: _Floats | None = None
        if self.toll_factor != 0.0 or self.distance_factor != 0.0:
            fixed = np.zeros(n_links)
            for factor, name in ((self.toll_factor, "toll"), (self.distance_factor, "length")):
                if factor == 0.0:
                    continue
                if getattr(net, name, None) is None:
                    raise ValueError(f"a {name} factor > 0 needs the network's per-link {name}")
                a = arr(name)
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"{name} must be finite on every link")
                fixed += factor * a
            cost0 = np.empty(n_links)
            bpr_cost(self.fft, self.b, self.power, self.cap, np.zeros(n_links), cost0)
            low = cost0 + fixed
            bad = np.flatnonzero(~(low >= 0.0) | ~np.isfinite(fixed))
            if bad.size:
                e = int(bad[0])
                raise ValueError(
                    f"generalized link costs must be finite and >= 0 (shortest paths): link "
                    f"{int(self.link_tail[e]) + 1} -> {int(self.link_head[e]) + 1} costs "
                    f"{cost0[e]:g} + toll_factor * toll + distance_factor * length = {low[e]:g} "
                    f"at zero flow ({bad.size} such link(s))"
                )
            self.fixed = np.ascontiguousarray(fixed)
        self.first_thru = max(int(getattr(net, "first_thru_node", 1)) - 1, 0)
        self.od = np.ascontiguousarray(od)
        n_blocks = max(1, min(_MAX_BLOCKS, n_zones))
        self._flow_blocks = np.empty((n_blocks, n_links), dtype=np.float64)
        self._sptt_blocks = np.empty(n_blocks, dtype=np.float64)
        self._unreached_blocks = np.empty(n_blocks, dtype=np.float64)

    def cost(self, x: _Floats, out: _Floats) -> _Floats:
        """Generalized link costs (the BPR travel times when ``fixed`` is None)."""
        if self.fixed is None:
            bpr_cost(self.fft, self.b, self.power, self.cap, x, out)
        else:
            generalized_cost(self.fft, self.b, self.power, self.cap, self.fixed, x, out)
        return out

    def travel_time(self, x: _Floats, out: _Floats) -> _Floats:
        bpr_cost(self.fft, self.b, self.power, self.cap, x, out)
        return out

    def dcost(self, x: _Floats, out: _Floats) -> _Floats:
        bpr_cost_derivative(self.fft, self.b, self.power, self.cap, x, out)
        return out

    def aon(self, cost: _Floats) -> tuple[_Floats, float]:
        """All-or-nothing flows and SPTT on ``cost``; raises if some demand has no path."""
        aon_load(
            self.indptr,
            self.link_head,
            self.link_tail,
            cost,
            self.od,
            self.first_thru,
            self._flow_blocks,
            self._sptt_blocks,
            self._unreached_blocks,
        )
        unreached = float(self._unreached_blocks.sum())
        if unreached > 0:
            raise ValueError(
                f"{unreached:g} units of demand have no path (disconnected network, closed "
                f"links or first_thru_node={self.first_thru + 1} blocking every route)"
            )
        flows: _Floats = self._flow_blocks.sum(axis=0)
        return flows, float(self._sptt_blocks.sum())

    def objective(self, x: _Floats) -> float:
        value: float
        if self.fixed is None:
            value = beckmann_objective(self.fft, self.b, self.power, self.cap, x)
        else:
            value = generalized_objective(self.fft, self.b, self.power, self.cap, self.fixed, x)
        return value

    def line_search(self, x: _Floats, d: _Floats, tol: float) -> float:
        step: float
        if self.fixed is None:
            step = beckmann_line_search(self.fft, self.b, self.power, self.cap, x, d, tol)
        else:
            step = generalized_line_search(self.fft, self.b, self.power, self.cap, self.fixed, x, d, tol)
        return step


def _conjugate_target(method: str, x: _Floats, y: _Floats, s1: _Floats | None, s2: _Floats | None, tau1: float,
                      tau2: float, hess: _Floats) -> _Floats:
    """Target flows of a (bi)conjugate Frank-Wolfe step, or ``y`` for a plain FW step.

    ``s1, s2`` are the previous two targets and ``tau1, tau2`` the steps taken
    towards them (``None`` / 1 when absent). A full step (``tau = 1``) restarts
    the conjugation: FW, then CFW, then BFW again.
    """
    if method == "fw" or s1 is None or tau1 >= 1.0 - 1e-12:
        return y
    if method == "bfw" and s2 is not None and tau2 < 1.0 - 1e-12:
        d_fw = y - x
        dbar1 = tau1 * s1 - x + (1.0 - tau1) * s2
        dbar2 = s1 - x
        hd1 = hess * dbar1
        den_mu = float(hd1 @ (s2 - s1))
        hd2 = hess * dbar2
        den_nu = float(hd2 @ dbar2)
        if den_mu != 0.0 and den_nu != 0.0:
            mu = max(0.0, -float(hd1 @ d_fw) / den_mu)
            nu = max(0.0, -float(hd2 @ d_fw) / den_nu + mu * tau1 / (1.0 - tau1))
            beta0 = 1.0 / (1.0 + mu + nu)
            return beta0 * y + (nu * beta0) * s1 + (mu * beta0) * s2
        # fall through to the conjugate step
    dbar = s1 - x
    hd = hess * dbar
    den = float(hd @ (y - s1))
    if den == 0.0:
        return y
    alpha = min(max(float(hd @ (y - x)) / den, 0.0), 1.0 - _CFW_DELTA)
    return alpha * s1 + (1.0 - alpha) * y


def solve_ue(
    net: _Network,
    od: npt.ArrayLike,
    *,
    method: str = "bfw",
    max_iter: int = 1000,
    gap_tol: float = 1e-4,
    max_time_s: float | None = None,
    line_search_tol: float = 1e-12,
    toll_factor: float | None = None,
    distance_factor: float | None = None,
) -> UEResult:
    """Static user equilibrium (TNTP generalized costs) by (bi)conjugate Frank-Wolfe.

    Link generalized cost: ``t(x) + toll_factor * toll + distance_factor *
    length``; see the module docstring.

    Parameters
    ----------
    net : TntpNetwork or similar
        Any object with per-link arrays ``init_node``, ``term_node`` (0-based),
        ``free_flow_time``, ``capacity``, ``b``, ``power`` and the integers
        ``n_nodes``, ``n_zones`` and ``first_thru_node`` (1-based; nodes with a
        1-based id below it are never passed through). Zones are nodes
        ``0 .. n_zones - 1``. Per-link ``toll`` / ``length`` are needed when
        the toll / distance factor is > 0; ``toll_factor`` and
        ``distance_factor`` attributes (a :class:`TntpNetwork` has the file's
        ``<TOLL FACTOR>`` / ``<DISTANCE FACTOR>``) give the defaults.
    od : array_like of float, shape (n_zones, n_zones)
        Demand (e.g. vehicles per hour); the diagonal is ignored.
    method : {"bfw", "cfw", "fw"}, optional
        Bi-conjugate (default), conjugate or plain Frank-Wolfe.
    max_iter : int, optional
        Maximum number of steps.
    gap_tol : float, optional
        Stop as soon as the relative gap is ``<= gap_tol``.
    max_time_s : float, optional
        Stop after the first iteration that ends later than this wall time.
    line_search_tol : float, optional
        Tolerance on the step size of the exact line search.
    toll_factor : float, optional
        Weight of the toll in the generalized cost (free-flow-time units per
        toll unit). ``None`` (default): ``net.toll_factor`` (the file's
        ``<TOLL FACTOR>``), or 0 if the network has none.
    distance_factor : float, optional
        Weight of the length, likewise (``<DISTANCE FACTOR>``).

    Returns
    -------
    UEResult
        ``objective`` and ``relative_gap`` in generalized cost; ``tstt`` and
        ``cost`` in travel time only.

    Raises
    ------
    ValueError
        On an unknown method, inconsistent arrays, negative demand or
        parameters, a factor that is not a finite number >= 0, a negative
        generalized link cost, or demand between zones that no path connects.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if max_iter < 0:
        raise ValueError("max_iter must be >= 0")
    t0 = time.perf_counter()
    prob = _Problem(net, od, toll_factor, distance_factor)
    n = prob.n_links
    cost = np.empty(n)
    hess = np.empty(n)
    x, _ = prob.aon(prob.cost(np.zeros(n), cost))
    gaps: list[float] = []
    objs: list[float] = []
    steps: list[float] = []
    elapsed: list[float] = []
    s1: _Floats | None = None
    s2: _Floats | None = None
    tau1 = tau2 = 1.0
    k = 0
    while True:
        prob.cost(x, cost)
        y, sptt = prob.aon(cost)
        total = float(x @ cost)  # generalized (the TSTT when fixed is None)
        gap = (total - sptt) / total if total > 0 else 0.0
        gaps.append(gap)
        objs.append(prob.objective(x))
        elapsed.append(time.perf_counter() - t0)
        if gap <= gap_tol or k >= max_iter or (max_time_s is not None and elapsed[-1] > max_time_s):
            break
        if method != "fw":
            prob.dcost(x, hess)
        s = _conjugate_target(method, x, y, s1, s2, tau1, tau2, hess)
        d = s - x
        if s is not y and float(cost @ d) >= 0.0:  # not a descent direction: plain FW step
            s = y
            d = y - x
        tau = prob.line_search(x, d, line_search_tol)
        x = x + tau * d
        np.maximum(x, 0.0, out=x)
        s2, s1, tau2, tau1 = s1, s, tau1, tau
        steps.append(tau)
        k += 1
    if prob.fixed is None:
        time_cost = cost
        tstt = total
    else:
        time_cost = prob.travel_time(x, np.empty(n))
        tstt = float(x @ time_cost)
    flow = np.empty(n)
    flow[prob.perm] = x
    link_cost = np.empty(n)
    link_cost[prob.perm] = time_cost
    gen_cost = np.empty(n)
    gen_cost[prob.perm] = cost

    def total_of(name: str) -> float:
        a = getattr(net, name, None)
        if a is None:
            return float("nan")
        a = np.asarray(a, dtype=np.float64)
        return float(flow @ a) if a.shape == (n,) else float("nan")

    return UEResult(
        flow=flow,
        cost=link_cost,
        relative_gap=np.array(gaps),
        objective=np.array(objs),
        step_size=np.array(steps),
        elapsed_s=np.array(elapsed),
        iterations=k,
        converged=gaps[-1] <= gap_tol,
        tstt=tstt,
        sptt=sptt,
        wall_time_s=time.perf_counter() - t0,
        method=method,
        generalized_cost=gen_cost,
        total_cost=total,
        total_toll=total_of("toll"),
        total_distance=total_of("length"),
        toll_factor=prob.toll_factor,
        distance_factor=prob.distance_factor,
    )
