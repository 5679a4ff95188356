"""Link geometry: each link keeps its street's shape from OSM, in RoadNetwork, its cache, links.gpkg
and the report's maps.

The lengths are checked independently of the code under test: the geodesic length (pyproj's
WGS84 ellipsoid) of each feature that GDAL reads back from ``links.gpkg`` against the link's
``length_m`` (osmnx's great-circle sum over the way's nodes, the length the simulation uses).

Exempt from the 1 % rule: links whose OSM length is below ``map.min_link_length_m`` (5 m; junction
stubs left by osmnx's simplification, and short walk connectors). Cleaning raises their
``length_m`` to exactly that minimum, so their drawn shape is shorter than ``length_m`` on purpose;
for them the test asserts ``length_m == 5`` and a geometry no longer than 5 m (+1 %).
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from twin.network import RoadNetwork
from twin.network.road_network import _ARRAYS

MIN_LEN = 5.0  # clean_graph's default min_length_m, the scenario default map.min_link_length_m
GEOM = ("link_geom_indptr", "link_geom_lon", "link_geom_lat")

# (source, network type): the shipped map, maps from ../shared (osm, osm.gz, GraphML: delft's walk
# links include the reversed copies twin.maps adds to one-way edges)
MAPS = [("helsinki", "drive"), ("helsinki", "walk"), ("tsukuba", "drive"), ("monaco", "drive"),
        ("monaco", "walk"), ("delft", "walk")]


def _needs(source: str) -> None:
    if source != "helsinki":
        from conftest import need_shared

        need_shared()


@pytest.fixture(scope="module")
def nets() -> dict:
    return {}


def _net(nets: dict, source: str, nt: str) -> RoadNetwork:
    _needs(source)
    if (source, nt) not in nets:
        nets[source, nt] = RoadNetwork.load(source, nt)
    return nets[source, nt]


def _write_gpkg(net: RoadNetwork, path) -> None:
    """links.gpkg through the run's own writer, for a day without traffic."""
    from twin.run import write_links_gpkg

    empty = {"link_id": np.zeros(0, np.int64), "hour": np.zeros(0, np.int64), "volume_veh": np.zeros(0),
             "mean_travel_time_s": np.zeros(0)}
    write_links_gpkg(types.SimpleNamespace(network=net, links_columns=lambda: empty), path)


def _geodesic_lengths(ptr: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    from pyproj import Geod

    seg = Geod(ellps="WGS84").inv(lon[:-1], lat[:-1], lon[1:], lat[1:])[2]
    inside = np.ones(seg.size, bool)
    inside[ptr[1:-1] - 1] = False  # no segment from one line's last vertex to the next one's first
    cum = np.concatenate([[0.0], np.cumsum(np.where(inside, seg, 0.0))])
    return cum[ptr[1:] - 1] - cum[ptr[:-1]]


@pytest.mark.parametrize("source,nt", MAPS, ids=[f"{s}-{n}" for s, n in MAPS])
def test_links_gpkg_geometry_has_the_link_length_and_ends_at_the_nodes(nets, source, nt, tmp_path):
    import pyogrio
    import shapely

    net = _net(nets, source, nt)
    _write_gpkg(net, tmp_path / "links.gpkg")
    df = pyogrio.read_dataframe(tmp_path / "links.gpkg", layer="links")
    assert len(df) == net.n_links
    lid = df["link_id"].to_numpy()
    np.testing.assert_array_equal(lid, np.arange(net.n_links))
    geoms = df.geometry.to_numpy()
    assert (shapely.get_type_id(geoms) == 1).all()  # LineString
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    cnt = np.bincount(idx, minlength=net.n_links)
    ptr = np.concatenate([[0], np.cumsum(cnt)])
    assert (cnt >= 2).all()
    assert (cnt > 2).mean() > 0.2, "street shapes, not straight chords"
    # the polylines start at their tail node and end at their head node, exactly
    t, h = net.link_tail, net.link_head
    np.testing.assert_array_equal(xy[ptr[:-1], 0], net.node_lon[t])
    np.testing.assert_array_equal(xy[ptr[:-1], 1], net.node_lat[t])
    np.testing.assert_array_equal(xy[ptr[1:] - 1, 0], net.node_lon[h])
    np.testing.assert_array_equal(xy[ptr[1:] - 1, 1], net.node_lat[h])
    np.testing.assert_array_equal(df["u_osmid"].to_numpy(), net.node_osmid[t])
    # the geodesic length of each shape is the link's length (1 %), junction stubs excepted
    geo = _geodesic_lengths(ptr, xy[:, 0], xy[:, 1])
    length = df["length_m"].to_numpy()
    clamped = length == MIN_LEN
    rel = np.abs(geo / length - 1.0)
    worst = np.flatnonzero(~clamped & (rel > 0.01))
    assert worst.size == 0, [(int(e), float(geo[e]), float(length[e])) for e in worst[:10]]
    assert (geo[clamped] <= MIN_LEN * 1.01).all()
    # a straight chord would be much shorter than a curved street: the shapes carry real length
    chord = _geodesic_lengths(np.arange(0, 2 * net.n_links + 1, 2),
                              np.column_stack([net.node_lon[t], net.node_lon[h]]).ravel(),
                              np.column_stack([net.node_lat[t], net.node_lat[h]]).ravel())
    assert (chord < 0.9 * length).sum() > 0.02 * net.n_links


def test_the_cache_round_trips_the_geometry_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    miss = RoadNetwork.load("helsinki", "drive")
    hit = RoadNetwork.load("helsinki", "drive")
    assert (miss.meta["cache"], hit.meta["cache"]) == ("miss", "hit")
    for a in _ARRAYS:
        x, y = getattr(miss, a), getattr(hit, a)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), a
    assert miss.link_geom_indptr.dtype == np.int64 and miss.link_geom_indptr.shape == (miss.n_links + 1,)
    assert miss.link_geom_lon.dtype == np.float64 and miss.link_geom_lat.shape == (int(miss.link_geom_indptr[-1]),)
    # a cache of the previous format (no link geometry) is stale: rebuilt, never read
    import json

    path = next((tmp_path / "cache" / "networks").glob("*.npz"))
    with np.load(path) as z:
        old = {k: z[k] for k in z.files if k not in GEOM}
    meta = json.loads(bytes(old["_meta"]).decode())
    meta["format_version"] = 4
    old["_meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **old)
    with pytest.raises(ValueError, match="stale"):
        RoadNetwork.read_npz(path)
    again = RoadNetwork.load("helsinki", "drive")
    assert again.meta["cache"] == "miss" and again.link_geom_lon.tobytes() == miss.link_geom_lon.tobytes()


@pytest.mark.parametrize("source", ["helsinki", "delft"])
def test_a_reversed_walk_link_is_its_forward_link_turned_round(nets, source):
    net = _net(nets, source, "walk")
    ptr, lon, lat = net.link_geom_indptr, net.link_geom_lon, net.link_geom_lat
    fwd: dict = {}
    for e in range(net.n_links):
        fwd.setdefault((int(net.link_tail[e]), int(net.link_head[e]), int(net.link_osmid[e]),
                        float(net.link_length_m[e])), []).append(e)
    pairs = curved = 0
    for (u, v, way, ln), links in fwd.items():
        back = fwd.get((v, u, way, ln))
        if back is None or u > v:
            continue
        for e in links:
            shape = (lon[ptr[e]:ptr[e + 1]], lat[ptr[e]:ptr[e + 1]])
            turned = [(lon[ptr[b]:ptr[b + 1]][::-1], lat[ptr[b]:ptr[b + 1]][::-1]) for b in back]
            assert any(np.array_equal(shape[0], x) and np.array_equal(shape[1], y) for x, y in turned), e
            pairs += 1
            curved += shape[0].size > 2
    assert pairs > 0.3 * net.n_links / 2 and curved > 100


def test_geometry_changes_no_other_network_array():
    """Routing and the simulation see the same arrays with or without the street shapes."""
    from twin.maps import load_raw
    from twin.network.clean import clean_graph

    G, _, _ = load_raw("helsinki", "drive")
    G = clean_graph(G, network_type="drive")
    with_geom = RoadNetwork.from_graph(G)
    for _, _, d in G.edges(data=True):
        d.pop("geometry", None)
    chords = RoadNetwork.from_graph(G)
    for a in _ARRAYS:
        if a not in GEOM:
            assert getattr(with_geom, a).tobytes() == getattr(chords, a).tobytes(), a
    np.testing.assert_array_equal(chords.link_geom_indptr, np.arange(0, 2 * chords.n_links + 1, 2))
    assert with_geom.link_geom_indptr[-1] > 2 * with_geom.n_links


def test_from_graph_orients_snaps_and_falls_back_to_chords():
    import networkx as nx
    from shapely import LineString

    G = nx.MultiDiGraph()
    for n, (x, y) in {1: (24.0, 60.0), 2: (24.001, 60.0), 3: (24.001, 60.001)}.items():
        G.add_node(n, x=x, y=y)
    base = {"length": 100.0, "travel_time": 10.0, "lanes_n": 1.0, "capacity_vph": 600.0, "storage_veh": 1.0,
            "hwy_class": "residential", "osmid": 7}
    bend = [(24.0005, 60.0003)]
    G.add_edge(1, 2, 0, **base, geometry=LineString([(24.0, 60.0), *bend, (24.001, 60.0)]))
    G.add_edge(2, 1, 0, **base, geometry=LineString([(24.0, 60.0), *bend, (24.001, 60.0)]))  # drawn backwards
    G.add_edge(2, 3, 0, **base, geometry=LineString([(24.0010000001, 60.0), (24.0012, 60.0005), (24.001, 60.001)]))
    G.add_edge(3, 2, 0, **base, geometry=LineString([(25.0, 61.0), (25.1, 61.1)]))  # elsewhere: chord
    G.add_edge(1, 3, 0, **base, geometry="LINESTRING (24 60, 24.0002 60.0008, 24.001 60.001)")  # WKT
    G.add_edge(3, 1, 0, **base, geometry="not a geometry")
    G.add_edge(1, 2, 1, **base)
    net = RoadNetwork.from_graph(G)
    ptr, lon, lat = net.link_geom_indptr, net.link_geom_lon, net.link_geom_lat

    def shape(u, v, k=0):
        e = [i for i in range(net.n_links) if (net.node_osmid[net.link_tail[i]], net.node_osmid[net.link_head[i]],
                                               net.link_key[i]) == (u, v, k)][0]
        return np.column_stack([lon[ptr[e]:ptr[e + 1]], lat[ptr[e]:ptr[e + 1]]]).tolist()

    assert shape(1, 2) == [[24.0, 60.0], [24.0005, 60.0003], [24.001, 60.0]]
    assert shape(2, 1) == [[24.001, 60.0], [24.0005, 60.0003], [24.0, 60.0]]
    assert shape(2, 3) == [[24.001, 60.0], [24.0012, 60.0005], [24.001, 60.001]]  # end snapped to the node
    assert shape(3, 2) == [[24.001, 60.001], [24.001, 60.0]]
    assert shape(1, 3) == [[24.0, 60.0], [24.0002, 60.0008], [24.001, 60.001]]
    assert shape(3, 1) == [[24.001, 60.001], [24.0, 60.0]]
    assert shape(1, 2, 1) == [[24.0, 60.0], [24.001, 60.0]]


def test_reversed_copies_of_one_way_edges_get_the_turned_geometry():
    import networkx as nx
    from shapely import LineString

    from twin.maps import _make_bidirectional
    from twin.network.clean import restore_reversed_geometry

    G = nx.MultiDiGraph()
    G.add_edge(1, 2, 0, osmid=5, length=30.0, geometry=LineString([(0, 0), (1, 1), (2, 0)]))
    G.add_edge(1, 2, 1, osmid=6, length=40.0, geometry=LineString([(0, 0), (1, -1), (2, 0)]))
    H = _make_bidirectional(G)
    assert restore_reversed_geometry(H) == 2
    assert list(H.edges[2, 1, 0]["geometry"].coords) == [(2, 0), (1, 1), (0, 0)]
    assert list(H.edges[2, 1, 1]["geometry"].coords) == [(2, 0), (1, -1), (0, 0)]
    assert restore_reversed_geometry(H) == 0  # nothing left to do


def test_report_reads_the_polylines_from_links_gpkg_and_the_network_alike(nets, tmp_path):
    from twin.report import read_gpkg_lines
    from twin.report.core import ReportContext, _parse_gpkg_lines_each, _parse_gpkg_lines_fast

    net = _net(nets, "helsinki", "drive")
    run = tmp_path / "run"
    run.mkdir()
    _write_gpkg(net, run / "links.gpkg")
    cols, lines = read_gpkg_lines(run / "links.gpkg")
    for got, want in zip(lines, GEOM):
        np.testing.assert_array_equal(got, getattr(net, want))
    np.testing.assert_array_equal(cols["lon2"], net.node_lon[net.link_head])
    # the vectorised reader and the blob-by-blob one agree
    import sqlite3

    with sqlite3.connect(run / "links.gpkg") as con:
        blobs = [r[0] for r in con.execute("select geom from links order by fid")]
    for a, b in zip(_parse_gpkg_lines_fast(blobs), _parse_gpkg_lines_each(blobs)):
        np.testing.assert_array_equal(a, b)
    # maps drawn from links.gpkg and from the network are the same polylines
    g1 = ReportContext(run).geometry
    g2 = ReportContext(run, network=net).geometry
    assert g1.d.tolist() == g2.d.tolist()
    assert sum(d.count("L") > 1 for d in g1.d) > 0.3 * net.n_links
    np.testing.assert_array_equal(g1.x1, g1.path_x[g1.path_ptr[:-1]])
    np.testing.assert_array_equal(g1.y2, g1.path_y[g1.path_ptr[1:] - 1])


def test_map_polylines_are_offset_to_the_right_and_drop_repeated_vertices():
    from twin.report import svg as S

    # straight links given as polylines draw exactly as segments do
    lon1, lat1 = np.array([24.0, 24.01]), np.array([60.0, 60.0])
    lon2, lat2 = np.array([24.01, 24.0]), np.array([60.0, 60.0])
    ptr = np.array([0, 2, 4])
    lines = (ptr, np.array([24.0, 24.01, 24.01, 24.0]), np.array([60.0, 60.0, 60.0, 60.0]))
    a = S.project_lines(np.arange(2), lon1, lat1, lon2, lat2)
    b = S.project_lines(np.arange(2), lon1, lat1, lon2, lat2, lines=lines)
    assert a.d.tolist() == b.d.tolist()
    # an L-shaped street: east then north; drawn to its right (south, then east), mitred at the corner
    lines = (np.array([0, 4]), np.array([0.0, 1e-9, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    g = S.project_lines(np.arange(1), [0.0], [0.0], [1.0], [1.0], lines=lines)
    assert g.path_ptr.tolist() == [0, 3]  # the vertex that rounds onto the first one is dropped
    xs, ys = g.path_x.tolist(), g.path_y.tolist()
    assert g.d[0] == "M%d %dL%d %dL%d %d" % (xs[0], ys[0], xs[1], ys[1], xs[2], ys[2])  # noqa: UP031  (%d truncates)
    w, h = g.width - 10, g.height - 10  # the south-east corner (y grows southwards in SVG)
    assert (xs[0], ys[0]) == (10, h + S.OFFSET)  # heading east: shifted south
    assert (xs[1], ys[1]) == (w + S.OFFSET, h + S.OFFSET)  # the corner, mitred
    assert (xs[2], ys[2]) == (w + S.OFFSET, 10)  # heading north: shifted east
