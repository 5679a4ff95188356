"""Least-cost routing over CSR road-network arrays.

:class:`Router` wraps the Numba kernels of :mod:`twin.kernels.dijkstra`:
one-to-all trees, OD-pair costs (early exit per origin, parallel over
origins) and batch route extraction (one tree per distinct origin, computed
in parallel chunks to bound memory). Costs are bit-identical to networkx's
Dijkstra on the equivalent ``MultiDiGraph``.

Where every link cost is at least a power of two ``delta`` (free-flow and congested travel times
on road networks: ``delta`` = 0.125 s), the kernels use Dial's bucket queue instead of the binary
heap (:func:`twin.kernels.dijkstra.sssp_tree_buckets`): the same costs and the same predecessor
links (the same tie-breaking), in about half the time. :meth:`Router.route` stops each origin's
search once its destinations are settled (their paths are final by then).

A :meth:`Router.costs` call of many pairs (:data:`MEMO_MIN_PAIRS`) finds their routes too and keeps
them: the :meth:`Router.route` calls that follow on the same link costs (byte for byte) take the
kept routes of their pairs instead of searching again (a model asks for the free-flow costs of every
trip, then routes the same trips on the same free-flow costs). The routes are those a search would
give; they are dropped once all are handed out, when a route() call comes with other costs, or by
:meth:`Router.forget`.
"""

from typing import NamedTuple

import numpy as np

from twin.kernels.dijkstra import (
    bucket_width,
    fill_routes,
    gather_routes,
    od_costs_buckets,
    path_links,
    route_lengths,
    sssp_tree,
    sssp_tree_buckets,
    sssp_tree_targets,
    sssp_trees_targets,
)

__all__ = ["Router", "RouteSet", "NoRouteError", "links_to_csr"]

_NO_TARGETS = np.zeros(0, dtype=np.int64)

#: :meth:`Router.costs` of at least this many pairs keeps their routes (its searches find them anyway)
#: for the :meth:`Router.route` calls on the same costs that follow (a model's free-flow costs, then
#: its free-flow routes): those pairs are not searched again
MEMO_MIN_PAIRS = 10_000
#: ... unless they hold more than this many links (4 bytes each)
MEMO_MAX_LINKS = 1 << 28


def _digest(weight):
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(weight).tobytes(), digest_size=16).digest()


def _gather(n_pairs, pieces):
    """One RouteSet from ``pieces`` of ``(positions, rows, RouteSet)``: row ``rows[j]`` of a piece's
    RouteSet becomes pair ``positions[j]`` of the result."""
    cost = np.full(n_pairs, np.inf, dtype=np.float64)
    lengths = np.zeros(n_pairs, dtype=np.int64)
    for pos, rows, rs in pieces:
        cost[pos] = rs.cost[rows]
        lengths[pos] = rs.route_indptr[rows + 1] - rs.route_indptr[rows]
    indptr = np.zeros(n_pairs + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    links = np.empty(int(indptr[-1]), dtype=np.int32)
    for pos, rows, rs in pieces:
        gather_routes(rs.route_indptr, rs.route_links, np.ascontiguousarray(rows, dtype=np.int64), indptr,
                      np.ascontiguousarray(pos, dtype=np.int64), links)
    return RouteSet(cost, indptr, links)


class _RouteMemo:
    """The routes a large :meth:`Router.costs` call found, for the route() calls on the same costs."""

    def __init__(self, digest, n_nodes, o, d, rs):
        self.digest = digest
        self.n_nodes = n_nodes
        key = o * np.int64(n_nodes) + d
        self.keys, self.first = np.unique(key, return_index=True)  # distinct pairs, a row of each
        self.rs = rs
        self.unused = np.ones(self.keys.size, dtype=bool)  # distinct pairs not handed out yet

    def lookup(self, o, d):
        """Row of the memo holding each pair (-1 where none); marks the pairs found as used."""
        key = o * np.int64(self.n_nodes) + d
        pos = np.searchsorted(self.keys, key)
        ok = pos < self.keys.size
        ok[ok] = self.keys[pos[ok]] == key[ok]
        rows = np.full(o.size, -1, dtype=np.int64)
        rows[ok] = self.first[pos[ok]]
        self.unused[pos[ok]] = False
        return rows


class NoRouteError(ValueError):
    """Raised when a single requested route does not exist."""


class RouteSet(NamedTuple):
    """Routes for a batch of OD pairs, in input order.

    Unpacks as ``cost, route_indptr, route_links``. Route ``i`` is
    ``route_links[route_indptr[i]:route_indptr[i+1]]`` (link ids in path
    order). Unreachable pairs have ``cost == inf`` and an empty route; pairs
    with ``origin == destination`` have cost 0 and an empty route.
    """

    cost: np.ndarray
    route_indptr: np.ndarray
    route_links: np.ndarray

    @property
    def reachable(self) -> np.ndarray:
        """bool[k]: True where a route exists (finite cost)."""
        return np.isfinite(self.cost)

    @property
    def unreachable(self) -> np.ndarray:
        """int64 indices of the pairs without a route."""
        return np.flatnonzero(~np.isfinite(self.cost))

    def links_of(self, i: int) -> np.ndarray:
        """Link ids of route ``i``."""
        return self.route_links[self.route_indptr[i] : self.route_indptr[i + 1]]


def links_to_csr(n_nodes, tail, head, weight):
    """Sort links by tail node and build CSR arrays.

    Parameters
    ----------
    n_nodes : int
        Number of nodes.
    tail, head : array_like of int, shape (n_links,)
        End nodes of each link.
    weight : array_like of float, shape (n_links,)
        Link costs.

    Returns
    -------
    indptr : ndarray of int64, shape (n_nodes + 1,)
    link_head : ndarray of int32, shape (n_links,)
    link_tail : ndarray of int32, shape (n_links,)
    weight : ndarray of float64, shape (n_links,)
    order : ndarray of int64, shape (n_links,)
        Link id ``i`` of the CSR is input link ``order[i]`` (stable sort).
    """
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    order = np.argsort(tail, kind="stable")
    counts = np.bincount(tail, minlength=n_nodes) if tail.size else np.zeros(n_nodes, np.int64)
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return (
        indptr,
        head[order].astype(np.int32),
        tail[order].astype(np.int32),
        np.ascontiguousarray(weight[order]),
        order,
    )


def _node_array(x, n_nodes, name):
    a = np.atleast_1d(np.asarray(x))
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must contain integer node ids")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n_nodes):
        raise ValueError(f"{name} contains node ids outside [0, {n_nodes})")
    return a


class Router:
    """Least-cost routing on a directed multigraph in CSR form.

    Parameters
    ----------
    indptr : array_like of int, shape (n_nodes + 1,)
        CSR row pointer over links sorted by tail node.
    link_head : array_like of int, shape (n_links,)
        Head node of each link.
    link_tail : array_like of int, shape (n_links,)
        Tail node of each link (must agree with ``indptr``).
    weight : array_like of float, shape (n_links,)
        Link costs, ``>= 0`` and not NaN (e.g. travel time in s); ``inf``
        marks a closed link that is never used.

    Raises
    ------
    ValueError
        On inconsistent shapes, out-of-range nodes, a malformed ``indptr``,
        or negative/NaN weights.
    """

    def __init__(self, indptr, link_head, link_tail, weight):
        indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        link_head = np.asarray(link_head)
        link_tail = np.asarray(link_tail)
        weight = np.asarray(weight)
        if indptr.ndim != 1 or indptr.size < 1:
            raise ValueError("indptr must be 1-D with n_nodes + 1 entries")
        n_nodes = indptr.size - 1
        for name, a in (("link_head", link_head), ("link_tail", link_tail), ("weight", weight)):
            if a.ndim != 1:
                raise ValueError(f"{name} must be 1-D")
        n_links = link_head.size
        if link_tail.size != n_links or weight.size != n_links:
            raise ValueError(
                f"link_head, link_tail and weight must have equal length "
                f"(got {link_head.size}, {link_tail.size}, {weight.size})"
            )
        if n_links >= 2**31 - 1:
            raise ValueError("too many links for int32 link ids")
        if indptr[0] != 0 or indptr[-1] != n_links or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr must be non-decreasing from 0 to n_links")
        for name, a in (("link_head", link_head), ("link_tail", link_tail)):
            if n_links and not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"{name} must be integer")
            if n_links and (a.min() < 0 or a.max() >= n_nodes):
                raise ValueError(f"{name} has node ids outside [0, {n_nodes})")
        expected_tail = np.repeat(np.arange(n_nodes, dtype=np.int64), np.diff(indptr))
        if not np.array_equal(expected_tail, link_tail.astype(np.int64)):
            raise ValueError("link_tail disagrees with indptr (links must be sorted by tail)")
        self.indptr = indptr
        self.link_head = np.ascontiguousarray(link_head, dtype=np.int32)
        self.link_tail = np.ascontiguousarray(link_tail, dtype=np.int32)
        self.weight = self._check_weight(weight)
        self._memo = None

    @staticmethod
    def _check_weight(weight):
        weight = np.ascontiguousarray(weight, dtype=np.float64)
        if not np.all(weight >= 0):  # also rejects NaN
            raise ValueError("weights must be >= 0 and not NaN")
        return weight

    @property
    def n_nodes(self) -> int:
        return self.indptr.size - 1

    @property
    def n_links(self) -> int:
        return self.link_head.size

    def set_weight(self, weight) -> None:
        """Replace the default link costs (e.g. congested travel times in s), same validation.

        Callers that share a router (domains, plug-in modes) pass their costs per call instead
        (``weight=`` of :meth:`tree`, :meth:`trees`, :meth:`costs`, :meth:`route`), so that no one
        changes the costs another one routes on."""
        self.weight = self._weight_of(weight)

    def _weight_of(self, weight):
        """``weight`` validated (``None``: the default costs given to the constructor / set_weight)."""
        if weight is None:
            return self.weight
        w = np.asarray(weight)
        if w.shape != (self.n_links,):
            raise ValueError(f"weight must have shape ({self.n_links},)")
        return self._check_weight(w)

    # ------------------------------------------------------------------ trees
    def tree(self, source, *, weight=None):
        """One-to-all least-cost tree.

        Parameters
        ----------
        source : int
            Root node.
        weight : array_like of float, shape (n_links,), optional
            Link costs of this call (default: the router's).

        Returns
        -------
        dist_s : ndarray of float64, shape (n_nodes,)
            Least cost from ``source`` (``inf`` if unreachable).
        pred_link : ndarray of int32, shape (n_nodes,)
            Last link on the least-cost path; ``-1`` at the source and
            unreachable nodes.
        """
        source = int(_node_array(source, self.n_nodes, "source")[0])
        dist_s = np.empty(self.n_nodes, dtype=np.float64)
        pred_link = np.empty(self.n_nodes, dtype=np.int32)
        w = self._weight_of(weight)
        inv_delta, n_buckets = bucket_width(w)
        if n_buckets:
            sssp_tree_buckets(self.indptr, self.link_head, w, source, inv_delta, n_buckets, _NO_TARGETS,
                              dist_s, pred_link)
        else:
            sssp_tree(self.indptr, self.link_head, w, source, dist_s, pred_link)
        return dist_s, pred_link

    def trees(self, sources, *, weight=None):
        """Trees for many sources (parallel), on ``weight`` (default: the router's costs).
        Returns ``(dist_2d, pred_2d)``."""
        sources = _node_array(sources, self.n_nodes, "sources")
        dist = np.empty((sources.size, self.n_nodes), dtype=np.float64)
        pred = np.empty((sources.size, self.n_nodes), dtype=np.int32)
        w = self._weight_of(weight)
        inv_delta, n_buckets = bucket_width(w)
        sssp_trees_targets(self.indptr, self.link_head, w, sources, np.zeros(sources.size + 1, dtype=np.int64),
                           _NO_TARGETS, inv_delta, n_buckets, dist, pred)
        return dist, pred

    # ------------------------------------------------------------------ OD
    def _od(self, origins, destinations):
        o = _node_array(origins, self.n_nodes, "origins")
        d = _node_array(destinations, self.n_nodes, "destinations")
        if o.shape != d.shape:
            raise ValueError("origins and destinations must have the same length")
        return o, d

    def costs(self, origins, destinations, *, weight=None):
        """Least costs of OD pairs.

        Each distinct origin runs one search (in parallel over origins) that
        stops once all of its destinations are settled.

        Parameters
        ----------
        origins, destinations : array_like of int, shape (k,)
        weight : array_like of float, shape (n_links,), optional
            Link costs of this call (default: the router's).

        Returns
        -------
        cost : ndarray of float64, shape (k,)
            In input order; ``inf`` where unreachable, 0 where origin ==
            destination.
        """
        o, d = self._od(origins, destinations)
        cost = np.empty(o.size, dtype=np.float64)
        if o.size == 0:
            return cost
        if o.size >= MEMO_MIN_PAIRS:  # the searches find the routes anyway: keep them (see MEMO_MIN_PAIRS)
            w = self._weight_of(weight)
            rs = self._route(o, d, w)
            self._memo = _RouteMemo(_digest(w), self.n_nodes, o, d, rs) if rs.route_links.size <= MEMO_MAX_LINKS \
                else None
            return rs.cost.copy()
        order = np.argsort(o, kind="stable")
        uo, start = np.unique(o[order], return_index=True)
        tgt_indptr = np.append(start, o.size).astype(np.int64)
        tgt = np.ascontiguousarray(d[order])
        cost_sorted = np.empty(o.size, dtype=np.float64)
        w = self._weight_of(weight)
        inv_delta, n_buckets = bucket_width(w)
        od_costs_buckets(self.indptr, self.link_head, w, uo, tgt_indptr, tgt, inv_delta, n_buckets, cost_sorted)
        cost[order] = cost_sorted
        return cost

    def route(self, origins, destinations, *, weight=None, chunk_size=None, max_tree_bytes=256 * 2**20):
        """Least-cost routes for many OD pairs.

        Pairs are grouped by origin; the trees of the distinct origins are
        computed in parallel, ``chunk_size`` origins at a time, and every
        pair's path is extracted from its origin's tree.

        Parameters
        ----------
        origins, destinations : array_like of int, shape (k,)
        weight : array_like of float, shape (n_links,), optional
            Link costs of this call (default: the router's).
        chunk_size : int, optional
            Origins per parallel batch. Default: as many as fit in
            ``max_tree_bytes`` (12 bytes per node per tree), at least 1.
        max_tree_bytes : int
            Memory bound for the trees of one batch.

        Returns
        -------
        RouteSet
            ``(cost, route_indptr, route_links)`` in input order, with
            ``.reachable`` / ``.unreachable`` to identify pairs without a
            route (cost ``inf``, empty route). Deterministic, independent of
            ``chunk_size`` and thread count.
        """
        o, d = self._od(origins, destinations)
        w = self._weight_of(weight)
        memo = self._memo
        if memo is not None and o.size:
            if memo.digest != _digest(w):
                self._memo = None  # other costs (a later day's): the kept routes are of no more use
            else:
                rows = memo.lookup(o, d)
                hit = rows >= 0
                if not memo.unused.any():
                    self._memo = None  # every kept route has been handed out
                if hit.all():
                    return _gather(o.size, [(np.arange(o.size), rows, memo.rs)])
                miss = np.flatnonzero(~hit)
                rs_miss = self._route(o[miss], d[miss], w, chunk_size, max_tree_bytes)
                hit_pos = np.flatnonzero(hit)
                return _gather(o.size, [(hit_pos, rows[hit_pos], memo.rs), (miss, np.arange(miss.size), rs_miss)])
        return self._route(o, d, w, chunk_size, max_tree_bytes)

    def forget(self):
        """Drop the routes kept by a large :meth:`costs` call (see :data:`MEMO_MIN_PAIRS`)."""
        self._memo = None

    def _route(self, o, d, w, chunk_size=None, max_tree_bytes=256 * 2**20):
        """:meth:`route` on validated arrays, without the memo."""
        k = o.size
        n = self.n_nodes
        if chunk_size is None:
            chunk_size = max(1, int(max_tree_bytes) // (12 * max(n, 1)))
        chunk_size = int(chunk_size)
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        cost = np.full(k, np.inf, dtype=np.float64)
        lengths = np.zeros(k, dtype=np.int64)
        if k == 0:
            return RouteSet(cost, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        inv_delta, n_buckets = bucket_width(w)
        order = np.argsort(o, kind="stable")
        o_s = np.ascontiguousarray(o[order])
        d_s = np.ascontiguousarray(d[order])
        uo, start, row_s = np.unique(o_s, return_index=True, return_inverse=True)
        row_s = row_s.astype(np.int64).ravel()
        pair_start = np.append(start, k)
        cost_s = np.empty(k, dtype=np.float64)
        len_s = np.empty(k, dtype=np.int64)
        link_chunks = []
        n_rows = min(chunk_size, uo.size)
        dist = np.empty((n_rows, n), dtype=np.float64)
        pred = np.empty((n_rows, n), dtype=np.int32)
        for c0 in range(0, uo.size, chunk_size):
            c1 = min(c0 + chunk_size, uo.size)
            srcs = np.ascontiguousarray(uo[c0:c1])
            a, b = pair_start[c0], pair_start[c1]
            # each tree stops once its origin's destinations are settled (their paths are final)
            sssp_trees_targets(self.indptr, self.link_head, w, srcs, pair_start[c0:c1 + 1] - a,
                               np.ascontiguousarray(d_s[a:b]), inv_delta, n_buckets, dist, pred)
            rows = np.ascontiguousarray(row_s[a:b] - c0)
            cost_s[a:b] = dist[rows, d_s[a:b]]
            lens = np.empty(b - a, dtype=np.int64)
            route_lengths(pred, self.link_tail, rows, o_s[a:b], d_s[a:b], lens)
            len_s[a:b] = lens
            offs = np.zeros(b - a + 1, dtype=np.int64)
            np.cumsum(np.maximum(lens, 0), out=offs[1:])
            links = np.empty(offs[-1], dtype=np.int32)
            fill_routes(pred, self.link_tail, rows, o_s[a:b], d_s[a:b], offs, links)
            link_chunks.append(links)
        links_sorted = np.concatenate(link_chunks)
        len_s = np.maximum(len_s, 0)  # unreachable -> empty route
        cost[order] = cost_s
        lengths[order] = len_s
        src_start_s = np.zeros(k, dtype=np.int64)
        np.cumsum(len_s[:-1], out=src_start_s[1:])
        src_indptr = np.empty(k + 1, dtype=np.int64)  # the routes in origin order, as CSR
        src_indptr[:-1] = src_start_s
        src_indptr[-1] = src_start_s[-1] + len_s[-1]
        route_indptr = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(lengths, out=route_indptr[1:])
        route_links = np.empty(int(route_indptr[-1]), dtype=np.int32)
        gather_routes(src_indptr, links_sorted, np.arange(k, dtype=np.int64), route_indptr, order.astype(np.int64),
                      route_links)
        return RouteSet(cost, route_indptr, route_links)

    def shortest_path_nodes(self, source, target):
        """Node sequence of the least-cost path ``source -> target``.

        Returns
        -------
        nodes : ndarray of int64
            ``[source, ..., target]`` (just ``[source]`` if equal).

        Raises
        ------
        NoRouteError
            If ``target`` is unreachable from ``source``.
        """
        source = int(_node_array(source, self.n_nodes, "source")[0])
        target = int(_node_array(target, self.n_nodes, "target")[0])
        dist_s = np.empty(self.n_nodes, dtype=np.float64)
        pred = np.empty(self.n_nodes, dtype=np.int32)
        sssp_tree_targets(
            self.indptr, self.link_head, self.weight, source, np.array([target]), dist_s, pred
        )
        buf = np.empty(max(self.n_nodes - 1, 0), dtype=np.int32)
        m = path_links(pred, self.link_tail, source, target, buf)
        if m < 0:
            raise NoRouteError(f"no route from {source} to {target}")
        links = buf[:m]
        return np.concatenate(([source], self.link_head[links])).astype(np.int64)
