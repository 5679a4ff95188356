"""Tests for twin.kernels.dijkstra and twin.network.routing (exact vs networkx)."""

import math

import networkx as nx
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.kernels.dijkstra import (
    path_links,
    sssp_tree,
    sssp_tree_targets,
    sssp_trees,
)
from twin.network.routing import NoRouteError, Router, RouteSet, links_to_csr


# --------------------------------------------------------------------- helpers
def random_links(seed, n_nodes=60, n_links=240, n_isolated=5):
    """Random directed multigraph links with the awkward cases built in.

    Parallel links with different weights, zero-weight links, self-loops, and
    ``n_isolated`` nodes (the last ones) without in-links, hence unreachable
    from any other node.
    """
    rng = np.random.default_rng(seed)
    n_reach = n_nodes - n_isolated
    tail = rng.integers(0, n_nodes, n_links)
    head = rng.integers(0, n_reach, n_links)
    weight = rng.random(n_links) * 10.0
    weight[rng.random(n_links) < 0.1] = 0.0  # zero-weight links
    # parallel links with different weights
    par = rng.integers(0, n_links, n_links // 8)
    tail = np.concatenate([tail, tail[par]])
    head = np.concatenate([head, head[par]])
    weight = np.concatenate([weight, rng.random(par.size) * 10.0])
    # self-loops
    loops = rng.integers(0, n_nodes, 6)
    tail = np.concatenate([tail, loops])
    head = np.concatenate([head, loops])
    weight = np.concatenate([weight, rng.random(loops.size)])
    # shuffle so that the CSR sort is exercised
    perm = rng.permutation(tail.size)
    return n_nodes, tail[perm], head[perm], weight[perm]


def make_router(n_nodes, tail, head, weight):
    indptr, lh, lt, w, _ = links_to_csr(n_nodes, tail, head, weight)
    return Router(indptr, lh, lt, w)


def to_nx(router):
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(router.n_nodes))
    for e in range(router.n_links):
        G.add_edge(int(router.link_tail[e]), int(router.link_head[e]), w=float(router.weight[e]))
    return G


def nx_dist_array(G, s, n_nodes):
    d = nx.single_source_dijkstra_path_length(G, s, weight="w")
    out = np.full(n_nodes, np.inf)
    for v, c in d.items():
        out[v] = c
    return out, d


def route_cost(router, links):
    c = 0.0
    for e in links:
        c = c + float(router.weight[e])
    return c


def check_route(router, o, d, links):
    if o == d:
        assert links.size == 0
        return
    assert links.size > 0
    assert router.link_tail[links[0]] == o
    assert router.link_head[links[-1]] == d
    assert np.array_equal(router.link_head[links[:-1]], router.link_tail[links[1:]])


SEEDS = [0, 1, 2, 3, 7]


@pytest.fixture(scope="module", params=SEEDS)
def graph(request):
    router = make_router(*random_links(request.param))
    return router, to_nx(router)


# ----------------------------------------------------------- vs networkx
def test_tree_costs_match_networkx(graph):
    router, G = graph
    n = router.n_nodes
    for s in [0, 3, 17, 42, n - 1]:  # n - 1 is an isolated node
        dist, pred = router.tree(s)
        ref, ref_dict = nx_dist_array(G, s, n)
        # unreachable == inf  <=>  absent from networkx's dict
        assert set(np.flatnonzero(np.isfinite(dist)).tolist()) == set(ref_dict)
        np.testing.assert_allclose(dist, ref, rtol=1e-12, atol=0)
        # stronger: bit-identical (same float path-order summation)
        assert np.array_equal(dist, ref)
        assert pred[s] == -1
        assert np.all(pred[~np.isfinite(dist)] == -1)
    # the last nodes have no in-links: unreachable from node 0
    assert np.all(np.isinf(router.tree(0)[0][n - 5 :]))


def test_pred_links_are_consistent(graph):
    router, _ = graph
    dist, pred = router.tree(5)
    reach = np.flatnonzero(pred >= 0)
    e = pred[reach]
    assert np.array_equal(router.link_head[e], reach)
    # dist[v] == dist[tail] + w exactly (path order)
    assert np.array_equal(dist[reach], dist[router.link_tail[e]] + router.weight[e])


def test_costs_match_networkx_and_trees(graph):
    router, G = graph
    n = router.n_nodes
    rng = np.random.default_rng(11)
    o = rng.integers(0, n, 300)
    d = rng.integers(0, n, 300)
    o[:5] = d[:5]  # some o == d
    c = router.costs(o, d)
    for s in np.unique(o):
        ref, _ = nx_dist_array(G, int(s), n)
        m = o == s
        assert np.array_equal(c[m], ref[d[m]])
    assert np.all(c[:5] == 0.0)


# -------------------------------------------------------------- routes
def test_routes_contiguous_and_cost_equals_link_sum(graph):
    router, G = graph
    n = router.n_nodes
    rng = np.random.default_rng(5)
    o = rng.integers(0, n, 400)
    d = rng.integers(0, n, 400)
    o[:3] = d[:3]
    d[3] = n - 1  # isolated: unreachable unless o == n - 1
    o[3] = 0
    rs = router.route(o, d)
    assert isinstance(rs, RouteSet)
    cost, indptr, links = rs
    assert indptr.dtype == np.int64 and links.dtype == np.int32 and cost.dtype == np.float64
    assert indptr.shape == (o.size + 1,) and indptr[0] == 0 and indptr[-1] == links.size
    assert np.array_equal(cost, router.costs(o, d))
    for i in range(o.size):
        li = links[indptr[i] : indptr[i + 1]]
        if math.isinf(cost[i]):
            assert li.size == 0
            assert not rs.reachable[i] and i in rs.unreachable
            with pytest.raises(nx.NetworkXNoPath):
                nx.dijkstra_path_length(G, int(o[i]), int(d[i]), weight="w")
            continue
        assert rs.reachable[i]
        check_route(router, o[i], d[i], li)
        assert route_cost(router, li) == cost[i]
    assert np.all(cost[:3] == 0.0) and np.all(indptr[1:4] == indptr[0:3])
    assert math.isinf(cost[3])


def test_route_independent_of_chunking_and_threads(graph):
    router, _ = graph
    rng = np.random.default_rng(9)
    o = rng.integers(0, router.n_nodes, 200)
    d = rng.integers(0, router.n_nodes, 200)
    ref = router.route(o, d)
    old = numba.get_num_threads()
    try:
        for chunk, threads in [(1, 1), (7, old), (1000, 1)]:
            numba.set_num_threads(threads)
            got = router.route(o, d, chunk_size=chunk)
            for a, b in zip(ref, got):
                assert np.array_equal(a, b)
    finally:
        numba.set_num_threads(old)


def test_route_input_order_preserved():
    router = make_router(*random_links(4))
    o = np.array([10, 2, 10, 2, 30])
    d = np.array([20, 40, 3, 2, 1])
    rs = router.route(o, d)
    for i in range(o.size):
        single = router.route([o[i]], [d[i]])
        assert single.cost[0] == rs.cost[i]
        assert np.array_equal(single.links_of(0), rs.links_of(i))


def test_route_empty_input():
    router = make_router(*random_links(0))
    rs = router.route([], [])
    assert rs.cost.size == 0 and rs.route_indptr.tolist() == [0] and rs.route_links.size == 0
    assert router.costs(np.array([], np.int64), np.array([], np.int64)).size == 0


def test_shortest_path_nodes(graph):
    router, G = graph
    for t in [1, 9, 33]:
        try:
            ref_len = nx.dijkstra_path_length(G, 0, t, weight="w")
        except nx.NetworkXNoPath:
            with pytest.raises(NoRouteError):
                router.shortest_path_nodes(0, t)
            continue
        nodes = router.shortest_path_nodes(0, t)
        assert nodes[0] == 0 and nodes[-1] == t
        # cost of the node path using the cheapest parallel link per hop
        c = 0.0
        for u, v in zip(nodes[:-1], nodes[1:]):
            c = c + min(dd["w"] for dd in G[int(u)][int(v)].values())
        assert c == ref_len
    assert router.shortest_path_nodes(4, 4).tolist() == [4]
    n = router.n_nodes
    with pytest.raises(NoRouteError):
        router.shortest_path_nodes(0, n - 1)


def test_hand_built_graph():
    # 0 -> 1 two parallel links (5, 2); 1 -> 2 zero weight; 0 -> 2 weight 3;
    # 2 -> 3 weight 1; self-loop at 3; node 4 unreachable.
    tail = [0, 0, 1, 0, 2, 3, 4]
    head = [1, 1, 2, 2, 3, 3, 0]
    w = [5.0, 2.0, 0.0, 3.0, 1.0, 0.5, 1.0]
    r = make_router(5, tail, head, w)
    dist, pred = r.tree(0)
    assert dist.tolist() == [0.0, 2.0, 2.0, 3.0, math.inf]
    assert pred[0] == -1 and pred[4] == -1
    rs = r.route([0, 0, 4, 3], [3, 4, 3, 3])
    assert rs.cost.tolist() == [3.0, math.inf, 4.0, 0.0]
    assert rs.unreachable.tolist() == [1]
    assert r.link_head[rs.links_of(0)].tolist() == [1, 2, 3]
    assert r.weight[rs.links_of(0)].tolist() == [2.0, 0.0, 1.0]
    assert r.shortest_path_nodes(4, 3).tolist() == [4, 0, 1, 2, 3]


# ------------------------------------------------------------- kernels
def _tree(fn, router, s):
    dist = np.empty(router.n_nodes)
    pred = np.empty(router.n_nodes, dtype=np.int32)
    n = fn(router.indptr, router.link_head, router.weight, s, dist, pred)
    return dist, pred, n


def test_numba_matches_py_func(graph):
    router, _ = graph
    for s in [0, 8, router.n_nodes - 1]:
        d1, p1, n1 = _tree(sssp_tree, router, s)
        d2, p2, n2 = _tree(sssp_tree.py_func, router, s)
        assert np.array_equal(d1, d2) and np.array_equal(p1, p2) and n1 == n2
        assert n1 == np.isfinite(d1).sum()
        buf1 = np.empty(router.n_nodes, np.int32)
        buf2 = np.empty(router.n_nodes, np.int32)
        for t in range(0, router.n_nodes, 7):
            m1 = path_links(p1, router.link_tail, s, t, buf1)
            m2 = path_links.py_func(p1, router.link_tail, s, t, buf2)
            assert m1 == m2 and np.array_equal(buf1[: max(m1, 0)], buf2[: max(m2, 0)])
            assert (m1 < 0) == (not np.isfinite(d1[t]))


def test_sssp_trees_equals_repeated_sssp_tree(graph):
    router, _ = graph
    sources = np.array([0, 5, 5, 19, router.n_nodes - 1, 2], dtype=np.int64)
    dist = np.empty((sources.size, router.n_nodes))
    pred = np.empty((sources.size, router.n_nodes), dtype=np.int32)
    old = numba.get_num_threads()
    try:
        for threads in sorted({1, old}):
            numba.set_num_threads(threads)
            dist[:] = -1.0
            pred[:] = -7
            sssp_trees(router.indptr, router.link_head, router.weight, sources, dist, pred)
            for i, s in enumerate(sources):
                d, p, _ = _tree(sssp_tree, router, int(s))
                assert np.array_equal(dist[i], d) and np.array_equal(pred[i], p)
    finally:
        numba.set_num_threads(old)


def test_early_exit_targets(graph):
    router, _ = graph
    n = router.n_nodes
    full, _, n_full = _tree(sssp_tree, router, 3)
    for targets in ([7], [3], [1, 2, 50, 50], [n - 1], list(range(n))):
        t = np.array(targets, dtype=np.int64)
        for fn in (sssp_tree_targets, sssp_tree_targets.py_func):
            dist = np.empty(n)
            pred = np.empty(n, dtype=np.int32)
            n_set = fn(router.indptr, router.link_head, router.weight, 3, t, dist, pred)
            assert np.array_equal(dist[t], full[t])
            assert n_set <= n_full
            buf = np.empty(n, np.int32)
            for tt in t:
                m = path_links(pred, router.link_tail, 3, int(tt), buf)
                assert (m >= 0) == np.isfinite(full[tt])
                if m > 0:
                    assert route_cost(router, buf[:m]) == full[tt]
    # a near target stops early on a graph where most nodes are reachable
    near = int(np.argsort(full)[1])
    dist = np.empty(n)
    pred = np.empty(n, dtype=np.int32)
    n_set = sssp_tree_targets(
        router.indptr, router.link_head, router.weight, 3, np.array([near]), dist, pred
    )
    assert n_set < n_full


# ----------------------------------------------------------- validation
def test_validation_errors():
    n, t, h, w = random_links(0)
    indptr, lh, lt, ww, _ = links_to_csr(n, t, h, w)
    Router(indptr, lh, lt, ww)
    bad = ww.copy()
    bad[3] = -1.0
    with pytest.raises(ValueError):
        Router(indptr, lh, lt, bad)
    bad[3] = np.nan
    with pytest.raises(ValueError):
        Router(indptr, lh, lt, bad)
    with pytest.raises(ValueError):
        Router(indptr, lh[:-1], lt, ww)
    with pytest.raises(ValueError):
        Router(indptr[:-1], lh, lt, ww)
    with pytest.raises(ValueError):
        Router(indptr, lh, lt[::-1].copy(), ww)  # tails disagree with indptr
    badh = lh.copy()
    badh[0] = n
    with pytest.raises(ValueError):
        Router(indptr, badh, lt, ww)
    r = Router(indptr, lh, lt, ww)
    with pytest.raises(ValueError):
        r.route([0, 1], [2])
    with pytest.raises(ValueError):
        r.costs([n], [0])
    with pytest.raises(ValueError):
        r.tree(-1)
    with pytest.raises(ValueError):
        r.set_weight(bad)


def test_set_weight_changes_routes():
    r = make_router(3, [0, 0, 1], [2, 1, 2], [5.0, 1.0, 1.0])
    assert r.costs([0], [2])[0] == 2.0
    r.set_weight(np.array([5.0, 10.0, 1.0])[np.argsort([0, 0, 1], kind="stable")])
    assert r.costs([0], [2])[0] == 5.0


# -------------------------------------------------------------- property
WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.7, 1.0, 1e-17, 3.0, 1e16]


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 8),
    data=st.data(),
)
def test_property_matches_networkx(n, data):
    m = data.draw(st.integers(0, 24))
    tail = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    head = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    w = data.draw(st.lists(st.sampled_from(WEIGHTS), min_size=m, max_size=m))
    r = make_router(n, tail, head, w)
    G = to_nx(r)
    s = data.draw(st.integers(0, n - 1))
    dist, _pred = r.tree(s)
    ref, ref_dict = nx_dist_array(G, s, n)
    assert np.array_equal(dist, ref)
    assert set(np.flatnonzero(np.isfinite(dist)).tolist()) == set(ref_dict)
    nodes = np.arange(n)
    rs = r.route(np.full(n, s), nodes)
    assert np.array_equal(rs.cost, ref)
    for v in range(n):
        li = rs.links_of(v)
        if np.isfinite(ref[v]):
            check_route(r, s, v, li)
            assert route_cost(r, li) == ref[v]
        else:
            assert li.size == 0


def test_tie_breaking_is_documented_contract():
    # two equal-cost paths 0->1->3 and 0->2->3: node 1 is settled first (heap
    # ties broken by node id) and the predecessor only changes on a strict
    # improvement, so node 3 keeps the link from node 1.
    r = make_router(4, [0, 0, 1, 2], [1, 2, 3, 3], [1.0, 1.0, 1.0, 1.0])
    dist, pred = r.tree(0)
    assert dist[3] == 2.0
    assert r.link_tail[pred[3]] == 1
    assert r.shortest_path_nodes(0, 3).tolist() == [0, 1, 3]
