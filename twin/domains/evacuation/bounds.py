"""Lower bounds on evacuation clearance times: the quickest flow over time, and a burst through exits.

The quickest-evacuation bound
-----------------------------
Evacuees stand at supply nodes at time 0 and must reach any sink (shelter, exit) node. The bound
relaxes the queue simulation to the two constraints that every vehicle there obeys:

(A) a vehicle spends at least the free-flow time ``τ_e`` on link ``e`` (continuous time);
(B) link ``e`` lets at most ``K_e`` vehicles leave per time window of length ``Δ`` (``step_s``):
    ``K_e = ⌈c_e·Δ⌉`` whole vehicles for flow capacity ``c_e`` veh/s (``whole_vehicles=True``), or
    the fluid ``c_e·Δ`` (``whole_vehicles=False``).

Storage (spillback), merges, routes and the order of service are left out: the simulation is one
of the flows the relaxation allows, so the relaxation clears no later than the simulation, and its
clearance time is a lower bound on the simulated one.

The relaxation is a *flow over time*; its quickest clearance is the quickest transshipment problem
(Hoppe & Tardos, "The quickest transshipment problem", Math. Oper. Res. 25, 2000), solved here on
Ford & Fulkerson's *time-expanded network* (Ford & Fulkerson, "Constructing maximal dynamic flows
from static flows", Oper. Res. 6, 1958; *Flows in Networks*, 1962): a copy ``(v, t)`` of every
node per time layer ``t``, an arc ``(u, t) -> (v, t + k_e)`` of capacity ``K_e`` per link and
layer, holdover arcs ``(v, t) -> (v, t + 1)`` of infinite capacity (waiting is free), a
supersource feeding the supplies into their nodes and the sink copies draining into a supersink.
The most evacuees that can be at a sink by the horizon is the maximum flow of that static network,
and the quickest clearance is the least horizon at which it is the whole supply (the maximum flow
never decreases with the horizon). networkx has maximum flows but no quickest-flow or
time-expanded routine, hence this module.

Layers in reduced time
----------------------
Rounding each link's travel time up to whole steps, the textbook construction, is *not* a lower
bound for a simulation that keeps free-flow times in continuous time, as the queue kernel does: a
path of three 11 s links takes 33 s there, 60 s with ``⌈11/10⌉`` steps of 10 s. Rounding down is
valid but loses up to a step per link. Both are avoided by layering in *reduced time*: with
``D(v)`` the free-flow time from ``v`` to its nearest sink (reverse Dijkstra,
:func:`scipy.sparse.csgraph.dijkstra`), a vehicle at node ``v`` at time ``a`` is put in layer
``⌊(a + D(v))/Δ⌋`` (``a + D(v)`` is the earliest it could reach a sink from there), so

* an evacuee at supply node ``s`` starts in layer ``⌊D(s)/Δ⌋``, and one at a sink at time ``b``
  is in layer ``⌊b/Δ⌋`` (``D = 0`` there): all sinks share the horizon ``⌊H/Δ⌋``;
* link ``e = (u, v)`` has the reduced travel time ``τ_e + D(v) - D(u) >= 0`` (triangle
  inequality), zero on the shortest paths to the sinks, and its arcs span
  ``k_e = ⌊(τ_e + D(v) - D(u))/Δ⌋`` layers (possibly 0: a link within one layer): since
  ``⌊x + y⌋ >= ⌊x⌋ + ⌊y⌋``, a vehicle that obeys (A) goes at least ``k_e`` layers further;
* the vehicles that leave link ``e`` into layer ``t`` of its head leave within one window of
  length ``Δ`` (their ``b + D(v)`` lies in ``[tΔ, (t + 1)Δ)``), at most ``K_e`` of them by (B).

So every flow the simulation realises maps onto a flow of the time-expanded network that reaches
the sinks by layer ``⌊T/Δ⌋``, ``T`` its clearance: the least feasible horizon, a multiple of ``Δ``,
is at most ``T``. Travel along shortest paths costs no layers at all, so the bound is exact there up
to the rounding of the start layer and of the queues (less than a step each). It is combined with the free-flow bound
``max_s D(s)`` (also a lower bound), which it can otherwise undercut by less than a step. Layer
indices are computed with a tolerance of ``1e-9`` steps so that whole-step times land on their
layer.

Whole vehicles. The queue kernel (:mod:`twin.kernels.queue`) moves whole vehicles, and its flow
accumulator lets any ``w`` consecutive steps pass fewer than ``c·w + 1`` of them: a first vehicle
leaves at once, the next ones at ``1/c`` intervals. A window of ``Δ`` (a multiple of its step)
thus passes at most ``⌈c·Δ⌉`` vehicles, and the kernel beats the fluid ``c·Δ`` per layer: for
``c = 0.25`` veh/s and ``Δ = 5`` s, 19 vehicles clear a bottleneck in ``18/c = 72`` s there but
need 16 layers (75 s) at 1.25 vehicles a layer. With whole vehicles (the default) a path of
bottlenecks is bounded correctly for every ``Δ`` (``⌈n/K⌉ - 1 <= (n - 1)/K`` for whole ``n``,
``K``).

Pruning. The copy ``(v, t)`` is built only if some supply can be there (``t >= E(v)``, ``E`` the
shortest distance in layers from the supplies' start layers, Dijkstra over the ``k_e``) and it
can still reach a sink by the horizon (``t <= L - R(v)``, ``R`` the shortest distance in layers to
a sink): every supersource-supersink path of the full network runs through such copies only,
so the maximum flow is unchanged (the tests compare with the unpruned network).

Solver and cost. Flows are computed in integer units of 1/:data:`UNITS_PER_VEH` vehicle (the
maximum-flow routines are exact on integers): capacities are rounded up and supplies down, which
only relaxes the problem further. The default solver is :func:`scipy.sparse.csgraph.maximum_flow`
(Dinic, compiled); networkx's ``preflow_push`` (``method="networkx"``) gives the same value but took
40 s on a 63,000-node, 220,000-arc network (Tsukuba AIST, 160 layers of 10 s), Dinic 1-3 s.
A maximum flow costs roughly the square of the number of layers, and the search needs a handful.
Tsukuba AIST (453 nodes, 1,176 links), 20 supply nodes, 3 sinks, whole vehicles:

=========  ==========================  ===========================
``Δ``      200 evacuees                1,000 evacuees
=========  ==========================  ===========================
6 s        414 s bound, 0.6 s to find  1,602 s, 24 s
10 s       370 s, 0.16 s               1,350 s, 4.6 s
12 s       408 s, 0.18 s               1,596 s, 4.5 s
36 s       396 s, 0.03 s               1,548 s, 0.65 s
=========  ==========================  ===========================

(the queue kernel, everyone on a shortest path to the nearest sink: 684 s and 3,051 s). The bound
is tightest when ``c·Δ`` is whole for the common capacities (10 s turns 600 veh/h, 1.67 vehicles a
layer, into 2); the network's classes (600, 1,000, 1,500, 2,000, 4,000 and 4,500 veh/h) are all
whole at multiples of 36 s, 600 veh/h at multiples of 6 s. A step of a few percent of the
clearance costs little tightness.

Caveats for the queue kernel. (A) holds there (``ready_s = enter_s + fftt_s``, exit times in
continuous time). (B) holds for windows aligned with its steps; its recorded exit times are
continuous, so a window of ``Δ`` placed anywhere can see one vehicle more (``burst_veh=1`` adds
one vehicle to every link's ``K_e``: a strict, weaker bound), and along chains of links shorter
than its step, on which a vehicle moves one link per step, the recorded times fall behind the steps
that made the moves. Neither showed in the tests (random networks, spillback included, and the real
map: the kernel never cleared before the default bound).
Compare a simulated clearance with a tolerance of a few microseconds (free-flow sums are added in
another order here).

The burst bound
---------------
:func:`burst_clearance_s` is the analytical clearance of ``n`` evacuees released at once before
``m`` equal exits of capacity ``μ`` at travel time ``τ``: the queue discharges at ``m·μ`` and the
last evacuee leaves it at ``n/(m·μ)``, so the clearance is ``τ + n/(m·μ)`` (a fluid queue; the
time-expanded network gives ``⌊τ/Δ⌋·Δ + (⌈n/(m·K)⌉ - 1)·Δ``, ``K = ⌈μ·Δ⌉`` the per-layer capacity
of an exit: within one step below it when ``τ/Δ`` and ``μ·Δ`` are whole).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np
from networkx.algorithms.flow import preflow_push
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra, maximum_flow

__all__ = ["time_expanded_max_flow", "quickest_evacuation_time_s", "burst_clearance_s", "UNITS_PER_VEH"]

#: Integer flow units per vehicle in the maximum-flow computation.
UNITS_PER_VEH = 1000

_LAYER_TOL = 1e-9  # steps: a time within 1e-9 steps below a layer boundary counts as on it
_UNIT_TOL = 1e-6  # flow units (1e-9 vehicle) of round-off ignored when rounding to units


@dataclass(frozen=True)
class _Expanded:
    """The horizon-independent part of the time-expanded network (see the module docstring)."""

    step_s: float
    # link groups: parallel links with the same tail, head and layer span, capacities summed
    g_tail: np.ndarray  # int64
    g_head: np.ndarray  # int64
    g_span: np.ndarray  # int64 (layers, >= 0)
    g_cap_units: np.ndarray  # float64 (units per layer, integral or inf)
    earliest: np.ndarray  # float64 per node: E (layers, inf when no supply reaches it)
    to_sink: np.ndarray  # float64 per node: R (layers, inf when no sink is reachable)
    src_node: np.ndarray  # int64, unique supply nodes with a positive supply
    src_dist_s: np.ndarray  # float64, their free-flow time to the nearest sink
    src_layer: np.ndarray  # int64 (clipped when unreachable), their start layer
    src_units: np.ndarray  # int64, their supply in units
    sink_node: np.ndarray  # int64, unique sink nodes
    sink_units: np.ndarray | None  # float64, their total capacity in units (integral or inf)

    @property
    def total_units(self) -> int:
        return int(self.src_units.sum())

    @property
    def free_flow_bound_s(self) -> float:
        """``max_s D(s)`` over the supplied nodes (0 without supply)."""
        return float(self.src_dist_s.max()) if self.src_dist_s.size else 0.0


def _as_index(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer node indices, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must be >= 0")
    return out


def _as_float(name: str, a: Any, n: int, *, allow_inf: bool = False) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    bad = np.isnan(arr) | (arr < 0) | (~np.isfinite(arr) if not allow_inf else False)
    if np.any(bad):
        raise ValueError(f"{name} must be >= 0{'' if allow_inf else ' and finite'}")
    return arr


def _layers(x: np.ndarray, step_s: float) -> np.ndarray:
    """``⌊x/Δ⌋`` with the layer tolerance (float, ``inf`` stays ``inf``)."""
    with np.errstate(invalid="ignore"):
        return np.floor(x / step_s + _LAYER_TOL)


def _csr(tail: np.ndarray, head: np.ndarray, w: np.ndarray, n: int) -> csr_array:
    """A sparse weighted graph with the least weight of parallel arcs (not their sum); explicit zeros
    are arcs of weight 0 for :mod:`scipy.sparse.csgraph`."""
    if tail.size == 0:
        return csr_array((n, n), dtype=np.float64)
    order = np.lexsort((w, head, tail))
    t, h, ww = tail[order], head[order], w[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (h[1:] != h[:-1])
    return csr_array((ww[first], (t[first], h[first])), shape=(n, n))


def _prepare(
    link_tail: Any,
    link_head: Any,
    link_time_s: Any,
    link_capacity_veh_per_s: Any,
    supply_node: Any,
    supply: Any,
    sink_node: Any,
    step_s: float,
    sink_capacity: Any,
    burst_veh: float,
    whole_vehicles: bool,
) -> _Expanded:
    tail = _as_index("link_tail", link_tail)
    head = _as_index("link_head", link_head)
    if head.shape != tail.shape:
        raise ValueError(f"link_tail and link_head must have the same length, got {tail.size}, {head.size}")
    n_links = tail.size
    tau = _as_float("link_time_s", link_time_s, n_links)
    cap = _as_float("link_capacity_veh_per_s", link_capacity_veh_per_s, n_links, allow_inf=True)
    s_node = _as_index("supply_node", supply_node)
    s_amt = _as_float("supply", supply, s_node.size)
    k_node = _as_index("sink_node", sink_node)
    if k_node.size == 0:
        raise ValueError("sink_node must name at least one node")
    k_cap = None if sink_capacity is None else _as_float("sink_capacity", sink_capacity, k_node.size, allow_inf=True)
    step_s = float(step_s)
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be finite and > 0, got {step_s}")
    burst_veh = float(burst_veh)
    if not (math.isfinite(burst_veh) and burst_veh >= 0):
        raise ValueError(f"burst_veh must be finite and >= 0, got {burst_veh}")
    n = 1 + max(int(a.max()) if a.size else -1 for a in (tail, head, s_node, k_node))

    # free-flow time to the nearest sink, D (reverse Dijkstra from the sinks)
    sinks = np.unique(k_node)
    dist = dijkstra(_csr(head, tail, tau, n), directed=True, indices=sinks, min_only=True)

    # supplies: summed per node, positive ones only
    units = np.zeros(n, dtype=np.float64)
    np.add.at(units, s_node, s_amt)
    src = np.flatnonzero(units > 0)
    src_units = np.floor(units[src] * UNITS_PER_VEH + _UNIT_TOL).astype(np.int64)
    keep = src_units > 0
    src, src_units = src[keep], src_units[keep]
    src_dist = dist[src]
    src_layer_f = _layers(src_dist, step_s)

    # links that can carry flow towards a sink, grouped by (tail, head, layer span)
    ok = (tail != head) & (cap > 0) & np.isfinite(dist[head])
    t_, h_ = tail[ok], head[ok]
    span = np.maximum(_layers(tau[ok] + dist[h_] - dist[t_], step_s), 0).astype(np.int64)
    cap_layer = cap[ok] * step_s
    if whole_vehicles:
        cap_layer = np.ceil(cap_layer - _UNIT_TOL / UNITS_PER_VEH)
    cap_layer = cap_layer + burst_veh
    order = np.lexsort((span, h_, t_))
    t_, h_, span, cap_layer = t_[order], h_[order], span[order], cap_layer[order]
    first = np.ones(t_.size, dtype=bool)
    first[1:] = (t_[1:] != t_[:-1]) | (h_[1:] != h_[:-1]) | (span[1:] != span[:-1])
    starts = np.flatnonzero(first)
    g_cap = np.add.reduceat(cap_layer, starts) if starts.size else np.zeros(0)
    g_units = np.ceil(g_cap * UNITS_PER_VEH - _UNIT_TOL)  # inf stays inf
    g_tail, g_head, g_span = t_[starts], h_[starts], span[starts]
    w = g_span.astype(np.float64)

    # E: layers from the supplies' start layers (a root node n feeds every source at its start layer)
    reach = np.isfinite(src_dist)
    root_t = np.concatenate([g_tail, np.full(int(reach.sum()), n, dtype=np.int64)])
    root_h = np.concatenate([g_head, src[reach]])
    root_w = np.concatenate([w, src_layer_f[reach]])
    earliest = dijkstra(_csr(root_t, root_h, root_w, n + 1), directed=True, indices=n)[:n]
    to_sink = dijkstra(_csr(g_head, g_tail, w, n), directed=True, indices=sinks, min_only=True)

    sink_units = None
    if k_cap is not None:
        sink_units = np.zeros(sinks.size, dtype=np.float64)
        np.add.at(sink_units, np.searchsorted(sinks, k_node), k_cap)
        sink_units = np.ceil(sink_units * UNITS_PER_VEH - _UNIT_TOL)
    return _Expanded(
        step_s=step_s, g_tail=g_tail, g_head=g_head, g_span=g_span, g_cap_units=g_units,
        earliest=earliest, to_sink=to_sink, src_node=src, src_dist_s=src_dist,
        src_layer=np.where(reach, src_layer_f, -1).astype(np.int64), src_units=src_units,
        sink_node=sinks, sink_units=sink_units,
    )


def _expanded_arcs(
    ex: _Expanded, n_layers: int, src_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The arcs of the pruned time-expanded network with layers ``0 .. n_layers`` (the sinks drain at
    layer ``n_layers``), fed by the sources in ``src_mask``: tails, heads, capacities (units, ``inf``
    for infinite) and the node count; the supersource is node ``n - 2``, the supersink ``n - 1``."""
    lo = ex.earliest
    hi = n_layers - ex.to_sink
    n_copies = np.where(np.isfinite(lo) & np.isfinite(hi) & (hi >= lo), hi - lo + 1, 0).astype(np.int64)
    lo_i = np.where(n_copies > 0, lo, 0).astype(np.int64)
    base = np.concatenate([[0], np.cumsum(n_copies)])
    n_total = int(base[-1])
    source, sink = n_total, n_total + 1
    tails: list[np.ndarray] = []
    heads: list[np.ndarray] = []
    caps: list[np.ndarray] = []

    def ramp(cnt: np.ndarray) -> np.ndarray:  # 0 .. cnt[i] - 1 for every i, concatenated
        out: np.ndarray = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        return out

    # holdover arcs (v, t) -> (v, t + 1), infinite capacity
    nodes = np.flatnonzero(n_copies > 1)
    cnt = n_copies[nodes] - 1
    a = np.repeat(base[nodes], cnt) + ramp(cnt)
    tails.append(a)
    heads.append(a + 1)
    caps.append(np.full(a.size, np.inf))
    # link arcs (u, t) -> (v, t + k) for t in [E(u), hi(v) - k]
    u, v, k = ex.g_tail, ex.g_head, ex.g_span
    valid = (n_copies[u] > 0) & (n_copies[v] > 0)
    t0 = lo_i[u]
    t1 = np.floor(np.where(valid, hi[v], 0)).astype(np.int64) - k
    cnt = np.where(valid, t1 - t0 + 1, 0).clip(0)
    idx = np.repeat(np.arange(u.size), cnt)
    t = t0[idx] + ramp(cnt)
    tails.append(base[u[idx]] + t - lo_i[u[idx]])
    heads.append(base[v[idx]] + t + k[idx] - lo_i[v[idx]])
    caps.append(ex.g_cap_units[idx])
    # supersource -> (s, start layer)
    s, layer = ex.src_node, ex.src_layer
    use = src_mask & (n_copies[s] > 0) & (layer >= lo_i[s]) & (layer < lo_i[s] + n_copies[s])
    tails.append(np.full(int(use.sum()), source))
    heads.append(base[s[use]] + layer[use] - lo_i[s[use]])
    caps.append(ex.src_units[use].astype(np.float64))
    # (sink, last layer) -> supersink: the holdovers make every earlier arrival count
    j = ex.sink_node
    at = n_copies[j] > 0
    tails.append(base[j[at]] + n_copies[j[at]] - 1)
    heads.append(np.full(int(at.sum()), sink))
    caps.append(np.full(int(at.sum()), np.inf) if ex.sink_units is None else ex.sink_units[at])
    return np.concatenate(tails), np.concatenate(heads), np.concatenate(caps), n_total + 2


def _max_flow_units(ex: _Expanded, n_layers: int, src_mask: np.ndarray, method: str) -> int:
    """The maximum flow (units) of the pruned time-expanded network (:func:`_expanded_arcs`)."""
    tail, head, cap, n = _expanded_arcs(ex, n_layers, src_mask)
    source, sink = n - 2, n - 1
    supply = int(cap[tail == source].sum())
    if supply == 0 or not np.any(head == sink):
        return 0
    if method == "networkx":
        g = nx.DiGraph()
        g.add_nodes_from((source, sink))
        g.add_weighted_edges_from(
            zip(tail.tolist(), head.tolist(), [int(c) if math.isfinite(c) else math.inf for c in cap.tolist()]),
            weight="capacity")
        return int(nx.maximum_flow_value(g, source, sink, flow_func=preflow_push))
    if supply > np.iinfo(np.int32).max:
        raise ValueError(f"the supply ({supply / UNITS_PER_VEH:g} vehicles) is too large for int32 flow units")
    # no arc carries more than the supply: it stands in for infinity
    data = np.minimum(cap, supply).astype(np.int32)
    keep = data > 0
    graph = csr_array((data[keep], (tail[keep], head[keep])), shape=(n, n))
    return int(maximum_flow(graph, source, sink, method="dinic").flow_value)


def _check_method(method: str) -> None:
    if method not in ("scipy", "networkx"):
        raise ValueError(f"method must be 'scipy' or 'networkx', got {method!r}")


def _n_layers(horizon_s: float, step_s: float) -> int:
    return int(math.floor(horizon_s / step_s + _LAYER_TOL))


def time_expanded_max_flow(
    link_tail: Any,
    link_head: Any,
    link_time_s: Any,
    link_capacity_veh_per_s: Any,
    supply_node: Any,
    supply: Any,
    sink_node: Any,
    horizon_s: float,
    step_s: float,
    sink_capacity: Any = None,
    *,
    whole_vehicles: bool = True,
    burst_veh: float = 0.0,
    method: Literal["scipy", "networkx"] = "scipy",
) -> float:
    """The most evacuees that can reach a sink by ``horizon_s`` on the time-expanded network.

    The relaxation of the module docstring: free-flow times and flow capacities only, layers of
    ``step_s`` in reduced time. It never undercounts what a simulation obeying (A) and (B) gets
    to the sinks by ``horizon_s``. A supply whose free-flow time to the nearest sink exceeds
    ``horizon_s`` does not count.

    Parameters
    ----------
    link_tail, link_head : array_like of int, shape (L,)
        The nodes each link leaves and enters (``0 <= node``; the node count is the largest index
        in any node argument plus one).
    link_time_s : array_like of float, shape (L,)
        Free-flow travel time of each link, seconds (>= 0, finite).
    link_capacity_veh_per_s : array_like of float, shape (L,)
        Flow capacity of each link, vehicles per second (>= 0; 0 carries nothing, inf is unbounded).
    supply_node, supply : array_like, shape (S,)
        The nodes the evacuees stand at at time 0 and how many (>= 0; repeated nodes add up).
    sink_node : array_like of int, shape (K,)
        The sink nodes (at least one; an evacuee is done when it reaches any).
    horizon_s : float
        The deadline, seconds after time 0 (finite).
    step_s : float
        The layer width ``Δ``, seconds (> 0): smaller is tighter and slower (see the module
        docstring). For the queue kernel, a multiple of its step.
    sink_capacity : array_like of float, shape (K,), optional
        Total number of evacuees each sink takes (repeated nodes add up; inf: unbounded). Default:
        unbounded.
    whole_vehicles : bool, default True
        A link passes ``⌈c·step_s⌉`` vehicles per layer (whole vehicles, as in the queue kernel);
        ``False``: the fluid ``c·step_s`` (tighter; for a simulation whose links never pass more
        than ``c·Δ`` in a window of ``Δ``).
    burst_veh : float, default 0
        Vehicles added to every link's per-layer capacity (``1``: strict for the queue kernel's
        continuous exit times, see the module docstring).
    method : {"scipy", "networkx"}, default "scipy"
        The maximum-flow routine: :func:`scipy.sparse.csgraph.maximum_flow` (Dinic, compiled) or
        ``networkx.maximum_flow_value`` with ``preflow_push`` (the same value, 10-30 times slower).

    Returns
    -------
    float
        Vehicles (a multiple of 1/:data:`UNITS_PER_VEH`); at most the total supply.
    """
    _check_method(method)
    horizon_s = float(horizon_s)
    if not math.isfinite(horizon_s):
        raise ValueError(f"horizon_s must be finite, got {horizon_s}")
    ex = _prepare(link_tail, link_head, link_time_s, link_capacity_veh_per_s, supply_node, supply, sink_node,
                  step_s, sink_capacity, burst_veh, whole_vehicles)
    if horizon_s < 0:
        return 0.0
    mask = ex.src_dist_s <= horizon_s + _LAYER_TOL * ex.step_s  # can reach a sink by the horizon
    return _max_flow_units(ex, _n_layers(horizon_s, ex.step_s), mask, method) / UNITS_PER_VEH


def quickest_evacuation_time_s(
    link_tail: Any,
    link_head: Any,
    link_time_s: Any,
    link_capacity_veh_per_s: Any,
    supply_node: Any,
    supply: Any,
    sink_node: Any,
    step_s: float,
    max_horizon_s: float,
    sink_capacity: Any = None,
    *,
    whole_vehicles: bool = True,
    burst_veh: float = 0.0,
    method: Literal["scipy", "networkx"] = "scipy",
) -> float:
    """A lower bound on the time at which every evacuee can have reached a sink.

    The least horizon at which :func:`time_expanded_max_flow` carries the whole supply: the larger
    of a multiple of ``step_s`` (the least feasible number of layers) and the free-flow bound
    ``max_s D(s)`` (the farthest supplied node's free-flow time to its nearest sink), which the
    former undercuts by less than ``step_s`` otherwise.

    The number of layers is searched from the free-flow bound up: an infeasible number ``L`` with
    flow ``f(L)`` shows that at least ``(supply - f(L))/inflow`` more layers are needed (``inflow``:
    the per-layer capacity of the links into the sinks); the probes go to the larger of that lower
    bound and the secant through the last two infeasible probes, overshooting by doubling amounts
    until one suffices, then alternate secant and bisection steps in the bracket: a handful of
    maximum flows, each costing roughly the square of the number of layers.

    Parameters
    ----------
    link_tail, link_head, link_time_s, link_capacity_veh_per_s, supply_node, supply, sink_node, step_s, sink_capacity
        As in :func:`time_expanded_max_flow`.
    max_horizon_s : float
        The longest horizon tried (finite).
    whole_vehicles, burst_veh, method
        As in :func:`time_expanded_max_flow`.

    Returns
    -------
    float
        Seconds: 0 without supply, ``inf`` when not even ``max_horizon_s`` suffices (in particular
        when some supplied node cannot reach any sink, or the sinks cannot take everyone).
    """
    _check_method(method)
    max_horizon_s = float(max_horizon_s)
    if not math.isfinite(max_horizon_s):
        raise ValueError(f"max_horizon_s must be finite, got {max_horizon_s}")
    ex = _prepare(link_tail, link_head, link_time_s, link_capacity_veh_per_s, supply_node, supply, sink_node,
                  step_s, sink_capacity, burst_veh, whole_vehicles)
    total = ex.total_units
    if total == 0:
        return 0.0
    free_s = ex.free_flow_bound_s
    if not free_s <= max_horizon_s:  # also inf: a supply that reaches no sink
        return math.inf
    if ex.sink_units is not None and float(ex.sink_units.sum()) < total:  # the sinks cannot take everyone
        return math.inf
    everyone = np.ones(ex.src_node.size, dtype=bool)  # for horizons >= free_s every supply can arrive

    def flow(n_layers: int) -> int:
        return _max_flow_units(ex, n_layers, everyone, method)

    # Arrivals by layer L are at most f(L) and each later layer adds at most the capacity into the
    # sinks, so f(L + m) <= f(L) + m * inflow: every infeasible probe gives a lower bound.
    inflow = float(ex.g_cap_units[np.isin(ex.g_head, ex.sink_node)].sum())
    last = _n_layers(max_horizon_s, ex.step_s)
    lo = _n_layers(free_s, ex.step_s)  # the least number of layers that may do (the farthest supply starts there)
    hi: int | None = None  # the least number of layers known to do
    seen: list[tuple[int, int]] = []  # infeasible probes and their flows
    width, bisect = 0, False
    while hi is None or lo < hi:
        top = last if hi is None else hi - 1
        if lo > top:
            return math.inf
        probe = lo
        if len(seen) >= 2:  # the secant through the last two infeasible probes
            (l1, f1), (l2, f2) = seen[-2:]
            if f2 > f1:
                probe = max(probe, l2 + math.ceil((total - f2) * (l2 - l1) / (f2 - f1)))
        if hi is None:
            probe += width  # overshoot by doubling amounts until a probe does
            width = 2 * width + 1
        elif bisect:
            probe = (lo + hi) // 2
        bisect = hi is not None and not bisect  # with a bracket, secant and bisection alternate
        probe = min(max(probe, lo), top)
        f = flow(probe)
        if f >= total:
            hi = probe
        else:
            seen.append((probe, f))
            jump = math.ceil((total - f) / inflow) if 0 < inflow < math.inf else 1
            lo = probe + max(jump, 1)
    return max(hi * ex.step_s, free_s)


def burst_clearance_s(n: float, tau_s: float, mu_veh_per_s: float, n_exits: int = 1) -> float:
    """Clearance of a burst of ``n`` evacuees through ``n_exits`` equal parallel exits: ``τ + n/(n_exits·μ)``.

    All ``n`` are released at once before the exits; each exit discharges ``μ`` veh/s and takes
    ``τ`` to traverse, so the shared queue empties at ``n/(n_exits·μ)`` and the last evacuee arrives
    ``τ`` later. This is a fluid queue: in the queue kernel, whose exits let a first vehicle go at
    once and the next ones at ``1/μ`` intervals, the last leaves at ``(⌈n/n_exits⌉ - 1)/μ``, up
    to one headway earlier.

    Parameters
    ----------
    n : float
        Evacuees (>= 0).
    tau_s : float
        Travel time through an exit, seconds (>= 0).
    mu_veh_per_s : float
        Capacity of one exit, vehicles per second (> 0).
    n_exits : int, default 1
        Number of equal exits (>= 1).

    Returns
    -------
    float
        Seconds (``τ`` for ``n = 0``).
    """
    if not (math.isfinite(n) and n >= 0):
        raise ValueError(f"n must be finite and >= 0, got {n}")
    if not (math.isfinite(tau_s) and tau_s >= 0):
        raise ValueError(f"tau_s must be finite and >= 0, got {tau_s}")
    if not (math.isfinite(mu_veh_per_s) and mu_veh_per_s > 0):
        raise ValueError(f"mu_veh_per_s must be finite and > 0, got {mu_veh_per_s}")
    if int(n_exits) != n_exits or n_exits < 1:
        raise ValueError(f"n_exits must be an integer >= 1, got {n_exits}")
    return float(tau_s) + float(n) / (int(n_exits) * float(mu_veh_per_s))
