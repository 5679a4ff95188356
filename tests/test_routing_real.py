"""Routing on a real map equals networkx's Dijkstra on the cleaned osmnx graph."""

from __future__ import annotations

import networkx as nx
import numpy as np

from twin.maps import load_raw
from twin.network import RoadNetwork
from twin.network.clean import clean_graph
from twin.network.routing import Router


def test_baltimore_1000_od_pairs_equal_networkx(shared):
    path = shared / "maps/world/baltimore.osm.pbf"
    G_raw, _b, _ = load_raw(path, "drive")
    G = clean_graph(G_raw, network_type="drive")
    net = RoadNetwork.from_graph(G)
    router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
    rng = np.random.default_rng(2024)
    o = rng.integers(0, net.n_nodes, 1000)
    d = rng.integers(0, net.n_nodes, 1000)
    ours = router.costs(o, d)
    rs = router.route(o, d)
    np.testing.assert_array_equal(rs.cost, ours)
    # networkx on the osmnx graph itself (OSM ids, attribute travel_time), one tree per origin
    ref = np.empty(1000)
    for s in np.unique(o):
        dist = nx.single_source_dijkstra_path_length(G, int(net.node_osmid[s]), weight="travel_time")
        for i in np.flatnonzero(o == s):
            ref[i] = dist[int(net.node_osmid[d[i]])]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0)
    # every route is contiguous and its cost is the sum of its links
    for i in range(1000):
        links = rs.route_links[rs.route_indptr[i]:rs.route_indptr[i + 1]]
        if o[i] == d[i]:
            assert links.size == 0
            continue
        assert net.link_tail[links[0]] == o[i] and net.link_head[links[-1]] == d[i]
        assert np.all(net.link_head[links[:-1]] == net.link_tail[links[1:]])
        assert np.isclose(net.link_fftt_s[links].sum(), ours[i], rtol=1e-12)
