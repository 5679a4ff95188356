"""Numba kernels for static traffic assignment (user equilibrium).

All kernels are module-level Numba functions over numpy arrays and scalars;
their pure-Python twin is the ``.py_func`` attribute (``aon_load.py_func``
still calls the compiled :func:`sssp_tree_zones`).

Network representation: the CSR arrays of :mod:`twin.kernels.dijkstra`
(``indptr`` int64, ``link_head`` / ``link_tail`` int32, links sorted by tail
node so that a link id is its CSR position). Zones are the nodes
``0 .. n_zones - 1``; ``first_thru`` is the **0-based** id of the first node
that may be passed through: nodes ``v < first_thru`` (other than the root of a
tree) are settled but never expanded, so no path passes through them (the TNTP
``<FIRST THRU NODE>`` rule; ``first_thru = 0`` means no restriction).

Link cost is the BPR function ``t(x) = fft * (1 + b * (x / cap) ** power)``.
Negative flows (round-off) are evaluated as 0. A link with ``b == 0`` (or
``power == 0``) has a constant cost ``fft * (1 + b)``.

The ``generalized_*`` kernels add a flow-independent cost per link,
``fixed_cost`` (the TNTP ``toll_factor * toll + distance_factor * length``):
generalized cost ``c(x) = t(x) + fixed_cost``, whose integral from 0 to ``x``
is the BPR integral plus ``fixed_cost * x``. With ``fixed_cost`` all zero they
return exactly (bit for bit) what the time-only kernels return.

Determinism: Dijkstra breaks ties by ``(cost, node)`` and changes a
predecessor only on a strict improvement; :func:`aon_load` splits the origins
into a fixed number of blocks (chosen by the caller, independent of the number
of threads), accumulates each block sequentially and leaves the reduction over
blocks to the caller, so results do not depend on the thread count.
"""

import numba
import numpy as np

__all__ = [
    "sssp_tree_zones",
    "aon_load",
    "bpr_cost",
    "bpr_cost_derivative",
    "beckmann_objective",
    "beckmann_line_search",
    "generalized_cost",
    "generalized_objective",
    "generalized_line_search",
]


@numba.njit(cache=True)
def sssp_tree_zones(
    indptr,
    link_head,
    weight,
    source,
    first_thru,
    dist_out,
    pred_link_out,
    order_out,
    settled,
    heap_cost,
    heap_node,
):
    """One-to-all least-cost tree that never passes through nodes below ``first_thru``.

    Dijkstra with a binary heap and lazy deletion; heap entries are ordered by
    ``(cost, node)``.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_nodes + 1,)
        CSR row pointer over links sorted by tail node.
    link_head : ndarray of int32, shape (n_links,)
        Head node of each link.
    weight : ndarray of float64, shape (n_links,)
        Non-negative link costs (``inf``: closed link).
    source : int
        Root node.
    first_thru : int
        0-based first node that may be passed through; nodes ``v < first_thru``
        other than ``source`` are reached but not expanded.
    dist_out : ndarray of float64, shape (n_nodes,)
        Output: least cost from ``source`` (``inf`` if unreachable).
    pred_link_out : ndarray of int32, shape (n_nodes,)
        Output: last link of the least-cost path; ``-1`` for the source and
        unreachable nodes.
    order_out : ndarray of int64, shape (n_nodes,)
        Output: the settled nodes in settling order (``order_out[0] == source``);
        only the first ``n_settled`` entries are written.
    settled : ndarray of bool, shape (n_nodes,)
        Scratch space.
    heap_cost : ndarray of float64, shape (n_links + 1,)
        Scratch space.
    heap_node : ndarray of int64, shape (n_links + 1,)
        Scratch space.

    Returns
    -------
    n_settled : int
        Number of nodes reached (including the source).
    """
    n_nodes = indptr.shape[0] - 1
    if source < 0 or source >= n_nodes:
        raise ValueError("source out of range")
    for i in range(n_nodes):
        dist_out[i] = np.inf
        pred_link_out[i] = -1
        settled[i] = False
    dist_out[source] = 0.0
    heap_cost[0] = 0.0
    heap_node[0] = source
    size = 1
    n_settled = 0
    while size > 0:
        u = heap_node[0]
        size -= 1
        if size > 0:
            key = heap_cost[size]
            node = heap_node[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                r = c + 1
                if r < size and (
                    heap_cost[r] < heap_cost[c]
                    or (heap_cost[r] == heap_cost[c] and heap_node[r] < heap_node[c])
                ):
                    c = r
                if heap_cost[c] < key or (heap_cost[c] == key and heap_node[c] < node):
                    heap_cost[i] = heap_cost[c]
                    heap_node[i] = heap_node[c]
                    i = c
                else:
                    break
            heap_cost[i] = key
            heap_node[i] = node
        if settled[u]:
            continue
        settled[u] = True
        order_out[n_settled] = u
        n_settled += 1
        if u < first_thru and u != source:
            continue  # a zone: paths may end here but not pass through
        d_u = dist_out[u]
        for e in range(indptr[u], indptr[u + 1]):
            v = link_head[e]
            if settled[v]:
                continue
            nd = d_u + weight[e]
            if nd < dist_out[v]:
                dist_out[v] = nd
                pred_link_out[v] = e
                # push (nd, v) and sift up
                j = size
                size += 1
                while j > 0:
                    p = (j - 1) // 2
                    if heap_cost[p] > nd or (heap_cost[p] == nd and heap_node[p] > v):
                        heap_cost[j] = heap_cost[p]
                        heap_node[j] = heap_node[p]
                        j = p
                    else:
                        break
                heap_cost[j] = nd
                heap_node[j] = v
    return n_settled


@numba.njit(parallel=True, cache=True)
def aon_load(
    indptr, link_head, link_tail, weight, od, first_thru, flow_out, sptt_out, unreached_out
):
    """All-or-nothing assignment of an OD matrix on fixed link costs.

    Origins are split into ``n_blocks = flow_out.shape[0]`` contiguous blocks
    processed in parallel; within a block, each origin's tree is loaded by
    walking its settled nodes in reverse settling order (decreasing distance)
    and pushing each node's accumulated demand onto its predecessor link.

    Parameters
    ----------
    indptr, link_head, link_tail : ndarray
        CSR network (see module docstring).
    weight : ndarray of float64, shape (n_links,)
        Link costs.
    od : ndarray of float64, shape (n_zones, n_zones)
        Demand; zone ``i`` is node ``i``. Intrazonal demand is ignored.
    first_thru : int
        0-based first node that may be passed through.
    flow_out : ndarray of float64, shape (n_blocks, n_links)
        Output: link flows of each block (sum over axis 0 for the total).
    sptt_out : ndarray of float64, shape (n_blocks,)
        Output: sum of demand x least cost over the block's OD pairs.
    unreached_out : ndarray of float64, shape (n_blocks,)
        Output: demand of OD pairs with no path.
    """
    n_nodes = indptr.shape[0] - 1
    n_links = link_head.shape[0]
    n_zones = od.shape[0]
    n_blocks = flow_out.shape[0]
    for blk in numba.prange(n_blocks):
        start = blk * n_zones // n_blocks
        stop = (blk + 1) * n_zones // n_blocks
        dist = np.empty(n_nodes, dtype=np.float64)
        pred = np.empty(n_nodes, dtype=np.int32)
        order = np.empty(n_nodes, dtype=np.int64)
        settled = np.empty(n_nodes, dtype=np.bool_)
        node_flow = np.zeros(n_nodes, dtype=np.float64)
        heap_cost = np.empty(n_links + 1, dtype=np.float64)
        heap_node = np.empty(n_links + 1, dtype=np.int64)
        for e in range(n_links):
            flow_out[blk, e] = 0.0
        sptt = 0.0
        unreached = 0.0
        for o in range(start, stop):
            has_demand = False
            for d in range(n_zones):
                if d != o and od[o, d] > 0.0:
                    has_demand = True
                    break
            if not has_demand:
                continue
            n_settled = sssp_tree_zones(
                indptr,
                link_head,
                weight,
                o,
                first_thru,
                dist,
                pred,
                order,
                settled,
                heap_cost,
                heap_node,
            )
            for d in range(n_zones):
                q = od[o, d]
                if d == o or not q > 0.0:
                    continue
                if dist[d] == np.inf:
                    unreached += q
                else:
                    node_flow[d] += q
                    sptt += q * dist[d]
            for k in range(n_settled - 1, 0, -1):
                v = order[k]
                f = node_flow[v]
                if f != 0.0:
                    e = pred[v]
                    flow_out[blk, e] += f
                    node_flow[link_tail[e]] += f
                    node_flow[v] = 0.0
            node_flow[o] = 0.0
        sptt_out[blk] = sptt
        unreached_out[blk] = unreached


@numba.njit(cache=True)
def _cost1(fft, b, p, cap, x):
    if b == 0.0 or p == 0.0:
        return fft * (1.0 + b)
    if x <= 0.0:
        return fft
    return fft * (1.0 + b * (x / cap) ** p)


@numba.njit(cache=True)
def _dcost1(fft, b, p, cap, x):
    if b == 0.0 or p == 0.0:
        return 0.0
    if x <= 0.0:
        return fft * b / cap if p == 1.0 else 0.0
    return fft * b * p / cap * (x / cap) ** (p - 1.0)


@numba.njit(cache=True)
def bpr_cost(fft, b, power, capacity, flow, cost_out):
    """BPR link costs ``fft * (1 + b * (flow / capacity) ** power)``.

    Parameters
    ----------
    fft, b, power, capacity, flow : ndarray of float64, shape (n_links,)
        Free-flow time, BPR parameters, capacity and link flow.
    cost_out : ndarray of float64, shape (n_links,)
        Output: link costs (units of ``fft``).
    """
    for a in range(flow.shape[0]):
        cost_out[a] = _cost1(fft[a], b[a], power[a], capacity[a], flow[a])


@numba.njit(cache=True)
def bpr_cost_derivative(fft, b, power, capacity, flow, dcost_out):
    """Derivative of the BPR cost with respect to the link flow.

    Parameters
    ----------
    fft, b, power, capacity, flow : ndarray of float64, shape (n_links,)
    dcost_out : ndarray of float64, shape (n_links,)
        Output: ``dt/dx`` (0 at zero flow when ``power < 1``).
    """
    for a in range(flow.shape[0]):
        dcost_out[a] = _dcost1(fft[a], b[a], power[a], capacity[a], flow[a])


@numba.njit(cache=True)
def beckmann_objective(fft, b, power, capacity, flow):
    """Beckmann objective: sum over links of the integral of the BPR cost from 0 to the flow.

    Closed form per link: ``fft * (x + b * cap / (power + 1) * (x / cap) ** (power + 1))``.

    Parameters
    ----------
    fft, b, power, capacity, flow : ndarray of float64, shape (n_links,)

    Returns
    -------
    float
        The objective (units of flow x ``fft``).
    """
    total = 0.0
    for a in range(flow.shape[0]):
        x = flow[a]
        if x <= 0.0:
            continue
        if b[a] == 0.0 or power[a] == 0.0:
            total += fft[a] * (1.0 + b[a]) * x
        else:
            p1 = power[a] + 1.0
            total += fft[a] * (x + b[a] * capacity[a] / p1 * (x / capacity[a]) ** p1)
    return total


@numba.njit(cache=True)
def generalized_cost(fft, b, power, capacity, fixed_cost, flow, cost_out):
    """Generalized link costs ``fft * (1 + b * (flow / capacity) ** power) + fixed_cost``.

    Parameters
    ----------
    fft, b, power, capacity : ndarray of float64, shape (n_links,)
        Free-flow time and BPR parameters.
    fixed_cost : ndarray of float64, shape (n_links,)
        Flow-independent cost per link in units of ``fft`` (TNTP:
        ``toll_factor * toll + distance_factor * length``).
    flow : ndarray of float64, shape (n_links,)
        Link flows.
    cost_out : ndarray of float64, shape (n_links,)
        Output: generalized link costs (units of ``fft``).
    """
    for a in range(flow.shape[0]):
        cost_out[a] = _cost1(fft[a], b[a], power[a], capacity[a], flow[a]) + fixed_cost[a]


@numba.njit(cache=True)
def generalized_objective(fft, b, power, capacity, fixed_cost, flow):
    """Generalized Beckmann objective: BPR integral plus ``fixed_cost * flow`` per link.

    Per link: ``fft * (x + b * cap / (power + 1) * (x / cap) ** (power + 1)) + fixed_cost * x``
    (``fft * (1 + b) * x + fixed_cost * x`` when ``b == 0`` or ``power == 0``).

    Parameters
    ----------
    fft, b, power, capacity, fixed_cost, flow : ndarray of float64, shape (n_links,)
        See :func:`generalized_cost`.

    Returns
    -------
    float
        The objective (units of flow x ``fft``).
    """
    total = 0.0
    for a in range(flow.shape[0]):
        x = flow[a]
        if x <= 0.0:
            continue
        if b[a] == 0.0 or power[a] == 0.0:
            total += fft[a] * (1.0 + b[a]) * x + fixed_cost[a] * x
        else:
            p1 = power[a] + 1.0
            total += (
                fft[a] * (x + b[a] * capacity[a] / p1 * (x / capacity[a]) ** p1)
                + fixed_cost[a] * x
            )
    return total


@numba.njit(cache=True)
def _slope(fft, b, power, capacity, flow, direction, alpha):
    g = 0.0
    h = 0.0
    for a in range(flow.shape[0]):
        d = direction[a]
        if d == 0.0:
            continue
        x = flow[a] + alpha * d
        g += _cost1(fft[a], b[a], power[a], capacity[a], x) * d
        h += _dcost1(fft[a], b[a], power[a], capacity[a], x) * d * d
    return g, h


@numba.njit(cache=True)
def _line_search(fft, b, power, capacity, flow, direction, fixed_slope, tol):
    # root of phi'(alpha) = sum_a t_a(x_a + alpha d_a) d_a + fixed_slope on [0, 1]
    g0, h0 = _slope(fft, b, power, capacity, flow, direction, 0.0)
    g0 += fixed_slope
    if g0 >= 0.0:
        return 0.0
    g1, h1 = _slope(fft, b, power, capacity, flow, direction, 1.0)
    g1 += fixed_slope
    if g1 <= 0.0:
        return 1.0
    lo = 0.0
    hi = 1.0
    alpha = -g0 / (g1 - g0)  # secant (exact for affine costs)
    for _ in range(200):
        g, h = _slope(fft, b, power, capacity, flow, direction, alpha)
        g += fixed_slope
        if g == 0.0:
            return alpha
        if g > 0.0:
            hi = alpha
        else:
            lo = alpha
        if hi - lo <= tol:
            break
        nxt = alpha - g / h if h > 0.0 else -1.0
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - alpha) <= tol:
            alpha = nxt
            break
        alpha = nxt
    return alpha


@numba.njit(cache=True)
def beckmann_line_search(fft, b, power, capacity, flow, direction, tol):
    """Exact line search: the step in ``[0, 1]`` minimising the Beckmann objective.

    Finds the root of ``phi'(alpha) = sum_a t_a(x_a + alpha d_a) d_a`` (which
    increases with ``alpha``) by Newton's method safeguarded with bisection.

    Parameters
    ----------
    fft, b, power, capacity, flow : ndarray of float64, shape (n_links,)
    direction : ndarray of float64, shape (n_links,)
        Search direction ``d`` (target flows minus current flows).
    tol : float
        Stop when the bracket or the Newton step is shorter than ``tol``.

    Returns
    -------
    float
        Step size ``alpha`` in ``[0, 1]``.
    """
    return _line_search(fft, b, power, capacity, flow, direction, 0.0, tol)


@numba.njit(cache=True)
def generalized_line_search(fft, b, power, capacity, fixed_cost, flow, direction, tol):
    """Exact line search on the generalized Beckmann objective (see :func:`generalized_objective`).

    The fixed costs add the constant ``sum_a fixed_cost_a d_a`` to the slope
    ``phi'(alpha)``; the root is found as in :func:`beckmann_line_search`.

    Parameters
    ----------
    fft, b, power, capacity, fixed_cost, flow : ndarray of float64, shape (n_links,)
        See :func:`generalized_cost`.
    direction : ndarray of float64, shape (n_links,)
        Search direction ``d`` (target flows minus current flows).
    tol : float
        Stop when the bracket or the Newton step is shorter than ``tol``.

    Returns
    -------
    float
        Step size ``alpha`` in ``[0, 1]``.
    """
    fixed_slope = 0.0
    for a in range(flow.shape[0]):
        fixed_slope += fixed_cost[a] * direction[a]
    return _line_search(fft, b, power, capacity, flow, direction, fixed_slope, tol)
