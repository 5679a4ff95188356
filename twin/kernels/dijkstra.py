"""Least-cost path kernels (Dijkstra) on CSR road-network arrays.

All kernels are module-level Numba functions over numpy arrays and scalars.
They write into caller-allocated output arrays; scratch space (heap, flags)
is allocated inside. The pure-Python twin of every kernel is its
``.py_func`` attribute (``sssp_tree`` and ``sssp_tree_targets`` contain the
whole algorithm inline, so their ``.py_func`` is pure Python/numpy).

Network representation (directed multigraph; parallel links, self-loops and
zero-weight links allowed):

``indptr`` : int64[n_nodes + 1]
    CSR row pointer; the out-links of node ``u`` are ``indptr[u]:indptr[u+1]``.
``link_head`` : int32[n_links]
    Target node of each link (CSR ``indices``). Links are sorted by tail node,
    so a link id equals its CSR position.
``link_tail`` : int32[n_links]
    Source node of each link (only needed to walk paths backwards).
``weight`` : float64[n_links]
    Link cost, ``>= 0`` (e.g. travel time in s). A link with weight ``inf`` is
    never used (treated as closed).

Exactness
---------
Relaxation computes ``dist[u] + weight[e]`` in path order, like networkx's
``_dijkstra_multisource``. Because IEEE addition is monotone, the settled
distance of every node is the minimum over all paths of the left-to-right
floating-point sum of its weights, so distances are bit-identical to
networkx's regardless of tie-breaking. Ties are resolved deterministically:
a node's predecessor link changes only on a strict improvement, and the heap
orders entries by ``(cost, node)``.

Bucket queue
------------
When every link weight is at least a power of two ``delta > 0`` (and the
largest finite one at most about a million times ``delta``),
:func:`sssp_tree_buckets` replaces the heap by Dial's bucket queue: bucket ``b``
holds the nodes whose tentative cost ``c`` has ``floor(c / delta) == b``
(``c / delta`` is exact for a power of two). A node of bucket ``b`` cannot
improve another node of bucket ``b`` (``c + w >= (b + 1) * delta``, also after
rounding, since ``(b + 1) * delta`` is a float and rounding is monotone), so a
bucket's nodes are final when it is reached; they are settled in ``(cost,
node)`` order, the heap's order, and relax their links in CSR order. Costs *and
predecessor links* are therefore identical to :func:`sssp_tree`'s, bit for bit,
at about half the time on road networks (no ``log n`` heap operations).
:func:`bucket_width` says whether a weight array qualifies.
"""

import numba
import numpy as np

from twin.kernels._intrinsics import uidx as _u

__all__ = [
    "bucket_width",
    "sssp_tree",
    "sssp_tree_buckets",
    "sssp_trees",
    "sssp_trees_targets",
    "sssp_tree_targets",
    "path_links",
    "od_costs",
    "od_costs_buckets",
    "route_lengths",
    "fill_routes",
    "gather_routes",
]


@numba.njit(cache=True)
def sssp_tree(indptr, link_head, weight, source, dist_out, pred_link_out):
    """One-to-all least-cost tree (Dijkstra, binary heap, lazy deletion).

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_nodes + 1,)
        CSR row pointer over links sorted by tail node.
    link_head : ndarray of int32, shape (n_links,)
        Head (target) node of each link.
    weight : ndarray of float64, shape (n_links,)
        Non-negative link costs.
    source : int
        Root node.
    dist_out : ndarray of float64, shape (n_nodes,)
        Output: least cost from ``source`` (``inf`` if unreachable).
    pred_link_out : ndarray of int32, shape (n_nodes,)
        Output: id of the last link on the least-cost path to each node;
        ``-1`` for the source and for unreachable nodes.

    Returns
    -------
    n_settled : int
        Number of nodes reached (including the source).
    """
    n_nodes = indptr.shape[0] - 1
    if source < 0 or source >= n_nodes:
        raise ValueError("source out of range")
    for i in range(n_nodes):
        dist_out[_u(i)] = np.inf
        pred_link_out[_u(i)] = -1
    settled = np.zeros(n_nodes, dtype=np.bool_)
    # at most one push per link (strict improvement) plus the source
    cap = link_head.shape[0] + 1
    heap_cost = np.empty(cap, dtype=np.float64)
    heap_node = np.empty(cap, dtype=np.int64)
    dist_out[_u(source)] = 0.0
    heap_cost[0] = 0.0
    heap_node[0] = source
    size = 1
    n_settled = 0
    while size > 0:
        d_u = heap_cost[0]
        u = heap_node[0]
        # pop: move the last entry to the root and sift it down
        size -= 1
        if size > 0:
            key = heap_cost[_u(size)]
            node = heap_node[_u(size)]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                r = c + 1
                if r < size and (
                    heap_cost[_u(r)] < heap_cost[_u(c)]
                    or (heap_cost[_u(r)] == heap_cost[_u(c)] and heap_node[_u(r)] < heap_node[_u(c)])
                ):
                    c = r
                if heap_cost[_u(c)] < key or (heap_cost[_u(c)] == key and heap_node[_u(c)] < node):
                    heap_cost[_u(i)] = heap_cost[_u(c)]
                    heap_node[_u(i)] = heap_node[_u(c)]
                    i = c
                else:
                    break
            heap_cost[_u(i)] = key
            heap_node[_u(i)] = node
        if settled[_u(u)]:
            continue  # stale entry (lazy deletion)
        settled[_u(u)] = True
        n_settled += 1
        for e in range(indptr[_u(u)], indptr[_u(u + 1)]):
            v = link_head[_u(e)]
            if settled[_u(v)]:
                continue
            nd = d_u + weight[_u(e)]  # path order, as networkx
            if nd < dist_out[_u(v)]:
                dist_out[_u(v)] = nd
                pred_link_out[_u(v)] = e
                # push (nd, v) and sift up
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) >> 1
                    if nd < heap_cost[_u(p)] or (nd == heap_cost[_u(p)] and v < heap_node[_u(p)]):
                        heap_cost[_u(i)] = heap_cost[_u(p)]
                        heap_node[_u(i)] = heap_node[_u(p)]
                        i = p
                    else:
                        break
                heap_cost[_u(i)] = nd
                heap_node[_u(i)] = v
    return n_settled


@numba.njit(cache=True)
def sssp_tree_targets(indptr, link_head, weight, source, targets, dist_out, pred_link_out):
    """Least-cost tree from ``source`` that stops once all ``targets`` are settled.

    Same algorithm and tie-breaking as :func:`sssp_tree`; the search ends as
    soon as every distinct node of ``targets`` has been settled (or the
    reachable set is exhausted).

    Parameters
    ----------
    indptr, link_head, weight : ndarray
        Network arrays, see :func:`sssp_tree`.
    source : int
        Root node.
    targets : ndarray of int64, shape (k,)
        Nodes whose costs are wanted (duplicates allowed). If empty, only the
        source is initialised.
    dist_out : ndarray of float64, shape (n_nodes,)
        Output. Exact for settled nodes (all reachable targets, and the whole
        path to each of them); other entries are upper bounds or ``inf``.
    pred_link_out : ndarray of int32, shape (n_nodes,)
        Output predecessor links; valid along the paths to settled nodes.

    Returns
    -------
    n_settled : int
        Number of nodes settled before stopping.
    """
    n_nodes = indptr.shape[0] - 1
    if source < 0 or source >= n_nodes:
        raise ValueError("source out of range")
    for i in range(n_nodes):
        dist_out[_u(i)] = np.inf
        pred_link_out[_u(i)] = -1
    dist_out[_u(source)] = 0.0
    is_target = np.zeros(n_nodes, dtype=np.bool_)
    remaining = 0
    for j in range(targets.shape[0]):
        t = targets[j]
        if t < 0 or t >= n_nodes:
            raise ValueError("target out of range")
        if not is_target[_u(t)]:
            is_target[_u(t)] = True
            remaining += 1
    if remaining == 0:
        return 0
    settled = np.zeros(n_nodes, dtype=np.bool_)
    cap = link_head.shape[0] + 1
    heap_cost = np.empty(cap, dtype=np.float64)
    heap_node = np.empty(cap, dtype=np.int64)
    heap_cost[0] = 0.0
    heap_node[0] = source
    size = 1
    n_settled = 0
    while size > 0:
        d_u = heap_cost[0]
        u = heap_node[0]
        size -= 1
        if size > 0:
            key = heap_cost[_u(size)]
            node = heap_node[_u(size)]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                r = c + 1
                if r < size and (
                    heap_cost[_u(r)] < heap_cost[_u(c)]
                    or (heap_cost[_u(r)] == heap_cost[_u(c)] and heap_node[_u(r)] < heap_node[_u(c)])
                ):
                    c = r
                if heap_cost[_u(c)] < key or (heap_cost[_u(c)] == key and heap_node[_u(c)] < node):
                    heap_cost[_u(i)] = heap_cost[_u(c)]
                    heap_node[_u(i)] = heap_node[_u(c)]
                    i = c
                else:
                    break
            heap_cost[_u(i)] = key
            heap_node[_u(i)] = node
        if settled[_u(u)]:
            continue
        settled[_u(u)] = True
        n_settled += 1
        if is_target[_u(u)]:
            remaining -= 1
            if remaining == 0:
                break
        for e in range(indptr[_u(u)], indptr[_u(u + 1)]):
            v = link_head[_u(e)]
            if settled[_u(v)]:
                continue
            nd = d_u + weight[_u(e)]
            if nd < dist_out[_u(v)]:
                dist_out[_u(v)] = nd
                pred_link_out[_u(v)] = e
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) >> 1
                    if nd < heap_cost[_u(p)] or (nd == heap_cost[_u(p)] and v < heap_node[_u(p)]):
                        heap_cost[_u(i)] = heap_cost[_u(p)]
                        heap_node[_u(i)] = heap_node[_u(p)]
                        i = p
                    else:
                        break
                heap_cost[_u(i)] = nd
                heap_node[_u(i)] = v
    return n_settled


@numba.njit(parallel=True, cache=True)
def sssp_trees(indptr, link_head, weight, sources, dist_out_2d, pred_out_2d):
    """One-to-all trees for many sources, in parallel over sources.

    Each source is solved independently by :func:`sssp_tree`, so results do
    not depend on the number of threads.

    Parameters
    ----------
    indptr, link_head, weight : ndarray
        Network arrays, see :func:`sssp_tree`.
    sources : ndarray of int64, shape (k,)
        Root nodes.
    dist_out_2d : ndarray of float64, shape (k, n_nodes)
        Output: row ``i`` holds the costs from ``sources[i]``.
    pred_out_2d : ndarray of int32, shape (k, n_nodes)
        Output: row ``i`` holds the predecessor links of the tree of
        ``sources[i]``.
    """
    n_nodes = indptr.shape[0] - 1
    n_src = sources.shape[0]
    if dist_out_2d.shape[0] < n_src or pred_out_2d.shape[0] < n_src:
        raise ValueError("output arrays have too few rows")
    for k in range(n_src):
        if sources[k] < 0 or sources[k] >= n_nodes:
            raise ValueError("source out of range")
    for k in numba.prange(n_src):
        sssp_tree(indptr, link_head, weight, sources[k], dist_out_2d[k], pred_out_2d[k])


@numba.njit(cache=True)
def path_links(pred_link, link_tail, source, target, out):
    """Extract the links of the tree path ``source -> target``.

    Parameters
    ----------
    pred_link : ndarray of int32, shape (n_nodes,)
        Predecessor links of the tree rooted at ``source``.
    link_tail : ndarray of int32, shape (n_links,)
        Tail (source) node of each link.
    source, target : int
        End nodes.
    out : ndarray of int32
        Output buffer, must hold at least the path length (``n_nodes - 1``
        always suffices). Links are written in path order.

    Returns
    -------
    n_links : int
        Number of links written (0 if ``source == target``), or ``-1`` if
        ``target`` is not reachable in this tree.
    """
    if source == target:
        return 0
    n_nodes = pred_link.shape[0]
    count = 0
    v = target
    while v != source:
        e = pred_link[v]
        if e < 0 or count >= n_nodes:
            return -1
        count += 1
        v = link_tail[e]
    if count > out.shape[0]:
        raise ValueError("out is too small for the path")
    v = target
    i = count
    while v != source:
        i -= 1
        e = pred_link[v]
        out[i] = e
        v = link_tail[e]
    return count


@numba.njit(parallel=True, cache=True)
def od_costs(indptr, link_head, weight, sources, tgt_indptr, tgt_nodes, cost_out):
    """Costs for OD pairs grouped by origin, with early exit per origin.

    Parameters
    ----------
    indptr, link_head, weight : ndarray
        Network arrays, see :func:`sssp_tree`.
    sources : ndarray of int64, shape (k,)
        Distinct origins.
    tgt_indptr : ndarray of int64, shape (k + 1,)
        Destinations of ``sources[i]`` are ``tgt_nodes[tgt_indptr[i]:tgt_indptr[i+1]]``.
    tgt_nodes : ndarray of int64, shape (n_pairs,)
        Destination nodes.
    cost_out : ndarray of float64, shape (n_pairs,)
        Output: cost of each pair, aligned with ``tgt_nodes`` (``inf`` if
        unreachable).
    """
    n_nodes = indptr.shape[0] - 1
    for k in numba.prange(sources.shape[0]):
        dist = np.empty(n_nodes, dtype=np.float64)
        pred = np.empty(n_nodes, dtype=np.int32)
        a = tgt_indptr[k]
        b = tgt_indptr[k + 1]
        sssp_tree_targets(indptr, link_head, weight, sources[k], tgt_nodes[a:b], dist, pred)
        for j in range(a, b):
            cost_out[j] = dist[tgt_nodes[j]]


@numba.njit(parallel=True, cache=True)
def route_lengths(pred_2d, link_tail, rows, sources, targets, len_out):
    """Number of links of each tree path (first pass of batch extraction).

    Parameters
    ----------
    pred_2d : ndarray of int32, shape (n_trees, n_nodes)
        Predecessor links of several trees.
    link_tail : ndarray of int32, shape (n_links,)
        Tail node of each link.
    rows : ndarray of int64, shape (k,)
        Tree row used by each pair.
    sources, targets : ndarray of int64, shape (k,)
        End nodes of each pair; ``sources[i]`` must be the root of tree
        ``rows[i]``.
    len_out : ndarray of int64, shape (k,)
        Output: path length in links, ``-1`` if unreachable.
    """
    n_nodes = pred_2d.shape[1]
    for k in numba.prange(rows.shape[0]):
        pred = pred_2d[rows[k]]
        s = sources[k]
        v = targets[k]
        count = 0
        while v != s:
            e = pred[v]
            if e < 0 or count >= n_nodes:
                count = -1
                break
            count += 1
            v = link_tail[e]
        len_out[k] = count


@numba.njit(parallel=True, cache=True)
def fill_routes(pred_2d, link_tail, rows, sources, targets, offsets, links_out):
    """Write each tree path at its offset (second pass of batch extraction).

    Parameters
    ----------
    pred_2d, link_tail, rows, sources, targets : ndarray
        As in :func:`route_lengths`.
    offsets : ndarray of int64, shape (k + 1,)
        Path ``i`` occupies ``links_out[offsets[i]:offsets[i+1]]``; pairs with
        an empty slot (unreachable or ``source == target``) are skipped.
    links_out : ndarray of int32
        Output links, in path order per pair.
    """
    for k in numba.prange(rows.shape[0]):
        a = offsets[k]
        i = offsets[k + 1]
        if i == a:
            continue
        pred = pred_2d[rows[k]]
        s = sources[k]
        v = targets[k]
        while v != s and i > a:
            i -= 1
            e = pred[v]
            links_out[i] = e
            v = link_tail[e]


#: Largest bucket ring of :func:`sssp_tree_buckets` (``max weight / delta`` beyond it: the heap)
MAX_BUCKETS = 1 << 20
#: Blocks of sources of the parallel bucket kernels (one workspace each; results do not depend on it)
_N_BLOCKS = 64


def bucket_width(weight):
    """``(inv_delta, n_buckets)`` for :func:`sssp_tree_buckets`, or ``(0.0, 0)`` when it does not apply.

    ``delta`` is the largest power of two not above the smallest weight; the ring has the next power of
    two above ``max finite weight / delta + 2`` buckets. Not applicable: no links, a weight of 0 (or
    below ``2**-60``), or a ring larger than :data:`MAX_BUCKETS`.

    Parameters
    ----------
    weight : ndarray of float64, shape (n_links,)
        Link costs, ``>= 0`` (``inf``: closed link).
    """
    w = np.asarray(weight, dtype=np.float64)
    finite = w[np.isfinite(w)]
    if finite.size == 0:
        return 0.0, 0
    w_min = float(finite.min())
    if not w_min >= 2.0 ** -60:
        return 0.0, 0
    delta = 2.0 ** np.floor(np.log2(w_min))
    while delta > w_min:  # log2 rounded up just below a power of two
        delta *= 0.5
    span = float(finite.max()) / delta + 2.0
    if not span <= MAX_BUCKETS:
        return 0.0, 0
    n_buckets = 1
    while n_buckets < span:
        n_buckets *= 2
    return 1.0 / delta, n_buckets


@numba.njit(cache=True)
def _bucket_workspace(n_nodes, n_links, n_buckets):
    """Scratch arrays of :func:`_buckets_run` in their resting state (reused from tree to tree)."""
    return (np.zeros(n_nodes, dtype=np.bool_), np.full(n_buckets, -1, dtype=np.int32),
            np.empty(n_links + 1, dtype=np.int32), np.empty(n_links + 1, dtype=np.int32),
            np.empty(n_nodes, dtype=np.int32), np.empty(n_nodes, dtype=np.float64), np.zeros(n_nodes, dtype=np.bool_))


@numba.njit(cache=True)
def _buckets_run(indptr, link_head, weight, source, inv_delta, n_buckets, targets, dist_out, pred_link_out,
                 settled, bucket_head, entry_node, entry_next, buf_node, buf_cost, is_target):
    """The bucket-queue search of :func:`sssp_tree_buckets` on a workspace (:func:`_bucket_workspace`),
    left in its resting state (nothing settled, empty buckets, no target) on return."""
    n_nodes = indptr.shape[0] - 1
    for i in range(n_nodes):
        dist_out[_u(i)] = np.inf
        pred_link_out[_u(i)] = -1
    dist_out[_u(source)] = 0.0
    remaining = -1  # -1: no targets, the whole tree
    if targets.shape[0] > 0:
        remaining = 0
        for j in range(targets.shape[0]):
            t = targets[j]
            if not is_target[_u(t)]:
                is_target[_u(t)] = True
                remaining += 1
    mask = n_buckets - 1
    entry_node[0] = source
    entry_next[0] = -1
    bucket_head[0] = 0
    n_entries = 1
    live = 1
    b = 0
    n_settled = 0
    while live > 0:
        slot = b & mask
        e = bucket_head[_u(slot)]
        if e < 0:
            b += 1
            continue
        bucket_head[_u(slot)] = -1
        # this bucket's current entries, sorted by (cost, node) (buckets hold a few nodes)
        k = 0
        while e >= 0:
            live -= 1
            v = entry_node[_u(e)]
            if not settled[_u(v)]:
                d = dist_out[_u(v)]
                if np.int64(d * inv_delta) == b:  # else stale: v improved since, into a later bucket
                    j = k
                    while j > 0 and (buf_cost[_u(j - 1)] > d or (buf_cost[_u(j - 1)] == d and buf_node[_u(j - 1)] > v)):
                        buf_cost[_u(j)] = buf_cost[_u(j - 1)]
                        buf_node[_u(j)] = buf_node[_u(j - 1)]
                        j -= 1
                    buf_cost[_u(j)] = d
                    buf_node[_u(j)] = v
                    k += 1
            e = entry_next[_u(e)]
        for q in range(k):
            u = buf_node[_u(q)]
            if settled[_u(u)]:
                continue
            settled[_u(u)] = True
            n_settled += 1
            if remaining > 0 and is_target[_u(u)]:
                remaining -= 1
                if remaining == 0:
                    live = 0
                    break
            d_u = buf_cost[_u(q)]
            for f in range(indptr[_u(u)], indptr[_u(u + 1)]):
                v = link_head[_u(f)]
                if settled[_u(v)]:
                    continue
                nd = d_u + weight[_u(f)]  # path order, as networkx
                if nd < dist_out[_u(v)]:
                    dist_out[_u(v)] = nd
                    pred_link_out[_u(v)] = f
                    s2 = np.int64(nd * inv_delta) & mask
                    entry_node[_u(n_entries)] = v
                    entry_next[_u(n_entries)] = bucket_head[_u(s2)]
                    bucket_head[_u(s2)] = n_entries
                    n_entries += 1
                    live += 1
        b += 1
    # back to the resting state
    settled[:] = False
    if remaining >= 0:
        bucket_head[:] = -1
        for j in range(targets.shape[0]):
            is_target[_u(targets[j])] = False
    return n_settled


@numba.njit(cache=True)
def sssp_tree_buckets(indptr, link_head, weight, source, inv_delta, n_buckets, targets, dist_out, pred_link_out):
    """Least-cost tree with Dial's bucket queue (see the module docs), optionally stopping early.

    Parameters
    ----------
    indptr, link_head, weight : ndarray
        Network arrays, see :func:`sssp_tree`; every weight must be ``>= 1 / inv_delta`` (or ``inf``).
    source : int
        Root node.
    inv_delta : float
        ``1 / delta``, ``delta`` a power of two (from :func:`bucket_width`).
    n_buckets : int
        Ring size, a power of two above ``max finite weight * inv_delta + 1`` (:func:`bucket_width`).
    targets : ndarray of int64
        Stop once all of these are settled (duplicates allowed); empty: the whole tree.
    dist_out, pred_link_out : ndarray
        Outputs as for :func:`sssp_tree` (with targets: as for :func:`sssp_tree_targets`).

    Returns
    -------
    n_settled : int
        Number of nodes settled.
    """
    n_nodes = indptr.shape[0] - 1
    if source < 0 or source >= n_nodes:
        raise ValueError("source out of range")
    for j in range(targets.shape[0]):
        if targets[j] < 0 or targets[j] >= n_nodes:
            raise ValueError("target out of range")
    ws = _bucket_workspace(n_nodes, link_head.shape[0], n_buckets)
    return _buckets_run(indptr, link_head, weight, source, inv_delta, n_buckets, targets, dist_out, pred_link_out,
                        ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6])


@numba.njit(parallel=True, cache=True)
def sssp_trees_targets(indptr, link_head, weight, sources, tgt_indptr, tgt_nodes, inv_delta, n_buckets,
                       dist_out_2d, pred_out_2d):
    """Trees for many sources (parallel), each stopping once its targets are settled.

    Parameters
    ----------
    indptr, link_head, weight : ndarray
        Network arrays, see :func:`sssp_tree`.
    sources : ndarray of int64, shape (k,)
        Root nodes.
    tgt_indptr : ndarray of int64, shape (k + 1,)
        Targets of ``sources[i]`` are ``tgt_nodes[tgt_indptr[i]:tgt_indptr[i+1]]``; none: the whole tree.
    tgt_nodes : ndarray of int64
    inv_delta, n_buckets : float, int
        From :func:`bucket_width`: ``n_buckets > 0`` uses the bucket queue (:func:`sssp_tree_buckets`,
        one workspace per block of sources), else the heap (:func:`sssp_tree` /
        :func:`sssp_tree_targets`); the results are the same.
    dist_out_2d, pred_out_2d : ndarray, shape (>= k, n_nodes)
        Outputs, row ``i`` for ``sources[i]``: exact along the paths to the targets (everywhere
        for a whole tree).
    """
    n_nodes = indptr.shape[0] - 1
    n_src = sources.shape[0]
    if dist_out_2d.shape[0] < n_src or pred_out_2d.shape[0] < n_src:
        raise ValueError("output arrays have too few rows")
    for k in range(n_src):
        if sources[k] < 0 or sources[k] >= n_nodes:
            raise ValueError("source out of range")
    for j in range(tgt_nodes.shape[0]):
        if tgt_nodes[j] < 0 or tgt_nodes[j] >= n_nodes:
            raise ValueError("target out of range")
    n_blocks = min(n_src, _N_BLOCKS)
    for blk in numba.prange(n_blocks):
        lo = blk * n_src // n_blocks
        hi = (blk + 1) * n_src // n_blocks
        if n_buckets > 0:
            ws = _bucket_workspace(n_nodes, link_head.shape[0], n_buckets)
            for k in range(lo, hi):
                _buckets_run(indptr, link_head, weight, sources[k], inv_delta, n_buckets,
                             tgt_nodes[tgt_indptr[k]:tgt_indptr[k + 1]], dist_out_2d[k], pred_out_2d[k],
                             ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6])
        else:
            for k in range(lo, hi):
                tg = tgt_nodes[tgt_indptr[k]:tgt_indptr[k + 1]]
                if tg.shape[0] == 0:
                    sssp_tree(indptr, link_head, weight, sources[k], dist_out_2d[k], pred_out_2d[k])
                else:
                    sssp_tree_targets(indptr, link_head, weight, sources[k], tg, dist_out_2d[k], pred_out_2d[k])


@numba.njit(parallel=True, cache=True)
def od_costs_buckets(indptr, link_head, weight, sources, tgt_indptr, tgt_nodes, inv_delta, n_buckets, cost_out):
    """:func:`od_costs` with the bucket queue when ``n_buckets > 0`` (:func:`bucket_width`), else the
    heap; the costs are the same."""
    n_nodes = indptr.shape[0] - 1
    n_src = sources.shape[0]
    for j in range(tgt_nodes.shape[0]):
        if tgt_nodes[j] < 0 or tgt_nodes[j] >= n_nodes:
            raise ValueError("target out of range")
    n_blocks = min(n_src, _N_BLOCKS)
    for blk in numba.prange(n_blocks):
        lo = blk * n_src // n_blocks
        hi = (blk + 1) * n_src // n_blocks
        dist = np.empty(n_nodes, dtype=np.float64)
        pred = np.empty(n_nodes, dtype=np.int32)
        ws = _bucket_workspace(n_nodes, link_head.shape[0], max(n_buckets, 1))
        for k in range(lo, hi):
            a = tgt_indptr[k]
            b = tgt_indptr[k + 1]
            if n_buckets > 0:
                _buckets_run(indptr, link_head, weight, sources[k], inv_delta, n_buckets, tgt_nodes[a:b], dist, pred,
                             ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6])
            else:
                sssp_tree_targets(indptr, link_head, weight, sources[k], tgt_nodes[a:b], dist, pred)
            for j in range(a, b):
                cost_out[j] = dist[tgt_nodes[j]]


@numba.njit(parallel=True, cache=True)
def gather_routes(src_indptr, src_links, rows, dst_indptr, positions, out_links):
    """Copy routes between CSR route sets: route ``rows[j]`` of ``src`` becomes route ``positions[j]``.

    Parameters
    ----------
    src_indptr : ndarray of int64, shape (n_src + 1,)
    src_links : ndarray of int32
        Source routes: route ``r`` is ``src_links[src_indptr[r]:src_indptr[r+1]]``.
    rows, positions : ndarray of int64, shape (k,)
        Source route and destination slot of each copy.
    dst_indptr : ndarray of int64
        Destination slots (each as long as its source route).
    out_links : ndarray of int32
        Output links.
    """
    for j in numba.prange(rows.shape[0]):
        a = src_indptr[rows[j]]
        b = src_indptr[rows[j] + 1]
        c = dst_indptr[positions[j]]
        for i in range(b - a):
            out_links[c + i] = src_links[a + i]
