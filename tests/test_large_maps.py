"""Cities of 100,000+ links: Porto (122k drive links) and Columbus (37k) build fast, once, and right."""

from __future__ import annotations

import time

import numpy as np
import pytest

from twin.network import RoadNetwork


def _check(net: RoadNetwork) -> None:
    assert net.is_strongly_connected()
    assert np.all(net.link_length_m >= 5.0) and np.all(np.isfinite(net.link_fftt_s)) and np.all(net.link_fftt_s > 0)
    assert np.all(net.link_capacity_vph > 0) and np.all(net.link_storage_veh >= 1)
    tails = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    assert np.array_equal(tails, net.link_tail)


def test_porto_builds_once_for_maps_info_and_a_scenario(shared, tmp_path, monkeypatch):
    """`twin maps info porto` (no options) and a scenario's load (min_length_m given) share one build."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    t0 = time.perf_counter()
    a = RoadNetwork.load("porto", "drive")  # as `twin maps info porto`
    build_s = time.perf_counter() - t0
    b = RoadNetwork.load("porto", "drive", min_length_m=5.0)  # as load_network(scenario)
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    assert a.n_links > 100_000 and abs(a.n_nodes - 50_521) < 500
    _check(b)
    assert b.buildings.n_osm < 100 and len(b.buildings) >= b.n_nodes  # almost no buildings: synthetic ones
    assert build_s < 120  # about 10 s on a laptop core (the osmnx path took a minute or more)


def test_columbus_loads(shared):
    net = RoadNetwork.load("columbus", "drive")
    _check(net)
    assert 35_000 < net.n_links < 40_000


@pytest.mark.slow
@pytest.mark.parametrize("source", ["columbus", "porto"])
def test_large_map_direct_builder_equals_the_osmnx_path(shared, source):
    """The reference path through osmnx graphs takes about a minute on Porto: run with -m slow."""
    from twin.network.road_network import _ARRAYS

    direct = RoadNetwork.load(source, "drive", use_cache=False)
    ref = RoadNetwork.load(source, "drive", use_cache=False, builder="osmnx")
    for a in _ARRAYS:
        assert getattr(direct, a).tobytes() == getattr(ref, a).tobytes(), a


# ---------------------------------------------------------------- routing at this scale: the bucket queue
def _heap_routes(router, o, d):
    """Routes from full heap trees (the reference kernels), one tree per distinct origin."""
    from twin.kernels.dijkstra import fill_routes, route_lengths, sssp_trees

    uo, inv = np.unique(o, return_inverse=True)
    dist = np.empty((uo.size, router.n_nodes))
    pred = np.empty((uo.size, router.n_nodes), np.int32)
    sssp_trees(router.indptr, router.link_head, router.weight, uo, dist, pred)
    lens = np.empty(o.size, np.int64)
    route_lengths(pred, router.link_tail, inv, o, d, lens)
    offs = np.zeros(o.size + 1, np.int64)
    np.cumsum(np.maximum(lens, 0), out=offs[1:])
    links = np.empty(offs[-1], np.int32)
    fill_routes(pred, router.link_tail, inv, o, d, offs, links)
    return dist[inv, d], offs, links


def _random_positive_graph(seed: int, integer: bool):
    from twin.network.routing import Router, links_to_csr

    rng = np.random.default_rng(seed)
    n, m = 80, 320
    tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
    # integer costs: many equal-cost paths, so the tie-breaking is exercised
    w = rng.integers(1, 6, m).astype(float) if integer else 0.3 + rng.random(m) * 20
    par = rng.integers(0, m, 30)  # parallel links
    tail, head, w = np.r_[tail, tail[par]], np.r_[head, head[par]], np.r_[w, w[par][::-1]]
    w[rng.random(w.size) < 0.03] = np.inf  # closed links
    indptr, lh, lt, ww, _ = links_to_csr(n, tail, head, w)
    return Router(indptr, lh, lt, ww)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer", [True, False])
def test_bucket_queue_trees_equal_the_heap(seed, integer):
    from twin.kernels.dijkstra import bucket_width, sssp_tree, sssp_tree_buckets, sssp_tree_targets

    r = _random_positive_graph(seed, integer)
    inv_delta, nb = bucket_width(r.weight)
    assert nb > 0 and np.all(r.weight >= 1 / inv_delta)
    for s in range(0, r.n_nodes, 7):
        d1, p1 = np.empty(r.n_nodes), np.empty(r.n_nodes, np.int32)
        d2, p2 = np.empty(r.n_nodes), np.empty(r.n_nodes, np.int32)
        sssp_tree(r.indptr, r.link_head, r.weight, s, d1, p1)
        n2 = sssp_tree_buckets(r.indptr, r.link_head, r.weight, s, inv_delta, nb, np.zeros(0, np.int64), d2, p2)
        assert d1.tobytes() == d2.tobytes() and p1.tobytes() == p2.tobytes()
        assert n2 == np.isfinite(d1).sum()
        tg = np.array([(s * 13 + 5) % r.n_nodes, (s * 7 + 1) % r.n_nodes], np.int64)
        sssp_tree_targets(r.indptr, r.link_head, r.weight, s, tg, d1, p1)
        sssp_tree_buckets(r.indptr, r.link_head, r.weight, s, inv_delta, nb, tg, d2, p2)
        assert d1[tg].tobytes() == d2[tg].tobytes()
    # the Router: routes, costs and trees as the heap gives them
    rng = np.random.default_rng(seed)
    o, d = rng.integers(0, r.n_nodes, 300), rng.integers(0, r.n_nodes, 300)
    rs = r.route(o, d, chunk_size=7)
    cost, offs, links = _heap_routes(r, o, d)
    assert rs.cost.tobytes() == cost.tobytes()
    np.testing.assert_array_equal(rs.route_indptr, offs)
    np.testing.assert_array_equal(rs.route_links, links)
    assert r.costs(o, d).tobytes() == cost.tobytes()


def test_bucket_width():
    from twin.kernels.dijkstra import MAX_BUCKETS, bucket_width

    assert bucket_width(np.array([0.18, 1.0, 600.0])) == (8.0, 8192)
    assert bucket_width(np.array([0.125, np.inf])) == (8.0, 4)
    assert bucket_width(np.array([0.0, 1.0])) == (0.0, 0)  # a zero cost: the heap
    assert bucket_width(np.array([1e-9, 1e9])) == (0.0, 0)  # too many buckets
    assert bucket_width(np.zeros(0)) == (0.0, 0) and bucket_width(np.array([np.inf])) == (0.0, 0)
    inv, nb = bucket_width(np.array([np.nextafter(0.25, 0.0), 3.0]))
    assert 1 / inv <= np.nextafter(0.25, 0.0) and nb <= MAX_BUCKETS


def test_porto_routes_equal_the_heap_kernels(shared):
    from twin.network.routing import Router

    net = RoadNetwork.load("porto", "drive")
    r = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
    rng = np.random.default_rng(3)
    o = np.repeat(rng.integers(0, net.n_nodes, 60), 5)
    d = rng.integers(0, net.n_nodes, o.size)
    d[:5] = o[:5]
    rs = r.route(o, d)
    cost, offs, links = _heap_routes(r, o, d)
    assert rs.cost.tobytes() == cost.tobytes()
    np.testing.assert_array_equal(rs.route_indptr, offs)
    np.testing.assert_array_equal(rs.route_links, links)
    assert np.isfinite(rs.cost).all()


def test_costs_keep_their_routes_for_the_route_calls_that_follow(monkeypatch):
    """A large costs() call keeps its routes; route() on the same costs hands them out unchanged."""
    import twin.network.routing as routing

    monkeypatch.setattr(routing, "MEMO_MIN_PAIRS", 100)
    r = _random_positive_graph(4, integer=True)
    fresh = _random_positive_graph(4, integer=True)
    rng = np.random.default_rng(0)
    o, d = rng.integers(0, r.n_nodes, 600), rng.integers(0, r.n_nodes, 600)
    w = r.weight.copy()
    cost = r.costs(o, d, weight=w)
    assert r._memo is not None
    ref = fresh.route(o, d)
    assert cost.tobytes() == ref.cost.tobytes()
    order = np.argsort(o, kind="stable")
    chunks = np.array_split(order, 5)
    for i, ch in enumerate(chunks):
        oo, dd = o[ch], d[ch]
        if i == 4:  # the last call mixes kept pairs and new ones
            oo, dd = np.r_[oo, rng.integers(0, r.n_nodes, 50)], np.r_[dd, rng.integers(0, r.n_nodes, 50)]
        got, want = r.route(oo, dd, weight=w), fresh.route(oo, dd)
        assert got.cost.tobytes() == want.cost.tobytes()
        np.testing.assert_array_equal(got.route_indptr, want.route_indptr)
        np.testing.assert_array_equal(got.route_links, want.route_links)
    assert r._memo is None  # all handed out
    r.costs(o, d)
    assert r._memo is not None
    r.route(o[:3], d[:3], weight=w * 2.0)  # other costs: the kept routes go
    assert r._memo is None
    r.costs(o, d)
    r.forget()
    assert r._memo is None
