"""Hazard areas and their stages (twin.domains.evacuation.hazards): growth in metres, reading
GeoJSON/GeoPackage files, the links, nodes and points a hazard reaches, distance rings."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from twin.domains.evacuation.hazards import (
    HazardStages,
    distance_rings,
    link_lines_m,
    links_hit,
    nodes_hit,
    points_hit,
    points_inside,
    reached,
    read_hazard_geometry,
    zone_of_points,
)
from twin.network import RoadNetwork
from twin.network.road_network import _project, utm_crs

TSUKUBA = "maps/japan/tsukuba_aist.osm"
LON0, LAT0 = 139.70, 35.68  # synthetic cases: Tokyo
CRS0 = utm_crs(LON0, LAT0)


@pytest.fixture(scope="module")
def tsukuba(shared) -> RoadNetwork:
    path = shared / TSUKUBA
    if not path.exists():
        pytest.skip(f"{path} is not in the shared maps folder")
    return RoadNetwork.load(path, "drive")


def _to_lonlat(x, y, crs=CRS0):
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def _tiny_net(geom_lon, geom_lat) -> RoadNetwork:
    """Two nodes, one link from node 0 to node 1 whose street polyline is ``geom_lon/lat``."""
    lon, lat = np.array([geom_lon[0], geom_lon[-1]]), np.array([geom_lat[0], geom_lat[-1]])
    x, y = _project(lon, lat, CRS0)

    def f(*v, dt=np.float64):
        return np.array(v, dtype=dt)

    z = np.zeros(2)
    return RoadNetwork(
        node_osmid=f(1, 2, dt=np.int64), node_lon=lon, node_lat=lat, node_x_m=x, node_y_m=y,
        indptr=f(0, 1, 1, dt=np.int64), link_tail=f(0, dt=np.int32), link_head=f(1, dt=np.int32),
        link_osmid=f(1, dt=np.int64), link_key=f(0, dt=np.int64), link_length_m=f(1000.0), link_speed_mps=f(10.0),
        link_fftt_s=f(100.0), link_lanes=f(1.0), link_capacity_vph=f(1800.0), link_storage_veh=f(100.0),
        link_class=f(0, dt=np.int8), node_home_weight=z, node_work_weight=z, node_school_weight=z,
        node_shop_weight=z, link_geom_indptr=f(0, len(geom_lon), dt=np.int64),
        link_geom_lon=np.asarray(geom_lon, np.float64), link_geom_lat=np.asarray(geom_lat, np.float64), crs=CRS0)


def _chords(net: RoadNetwork) -> RoadNetwork:
    """The same network with every link's street geometry replaced by its chord."""
    return dataclasses.replace(net, link_geom_indptr=None, link_geom_lon=None, link_geom_lat=None)


# ------------------------------------------------------------------------- stages and growth
def test_stage_at_boundaries_and_growth():
    st = HazardStages(shapely.Point(LON0, LAT0), CRS0, 600.0, [(1800.0, 250.0), (3000.0, 600.0, 2.5)], radius_m=150.0)
    np.testing.assert_array_equal(st.times_s, [600.0, 1800.0, 3000.0])
    np.testing.assert_array_equal(st.buffer_m, [150.0, 400.0, 750.0])
    np.testing.assert_array_equal(st.intensity[:2], [np.nan, np.nan])
    assert st.intensity[2] == 2.5
    cases = {-1e9: -1, 0.0: -1, 599.999: -1, 600.0: 0, 600.001: 0, 1799.999: 0, 1800.0: 1, 2999.0: 1,
             3000.0: 2, 1e9: 2}
    for t, k in cases.items():
        assert st.stage_at(t) == k, t
        assert isinstance(st.stage_at(t), int)
    arr = st.stage_at(np.array(list(cases)))
    assert arr.dtype == np.int32
    np.testing.assert_array_equal(arr, list(cases.values()))
    # monotone growth: every stage covers the one before, with a larger area, in both CRSs
    assert st.nested()
    areas_m = shapely.area(st.polygons_m)
    assert (np.diff(areas_m) > 0).all()
    for k in range(1, st.n_stages):
        assert st.polygon_m(k).covers(st.polygon_m(k - 1))
        assert st.polygon_lonlat(k).covers(st.polygon_lonlat(k - 1))
    assert st.polygon_m(-1).is_empty and st.polygon_lonlat(-1).is_empty
    with pytest.raises(IndexError):
        st.polygon_m(3)
    # the WGS84 polygon is the metric one projected back
    back = shapely.transform(st.polygon_lonlat(1), lambda xy: np.column_stack(
        Transformer.from_crs("EPSG:4326", CRS0, always_xy=True).transform(xy[:, 0], xy[:, 1])))
    assert back.symmetric_difference(st.polygon_m(1)).area < 1e-6 * st.polygon_m(1).area
    # a later stage without intensity keeps the previous one's
    st2 = HazardStages(shapely.Point(LON0, LAT0), CRS0, 0.0, [(60.0, 10.0, 1.0), (120.0, 20.0)], radius_m=5.0,
                       intensity=0.3)
    np.testing.assert_array_equal(st2.intensity, [0.3, 1.0, 1.0])


def test_point_buffer_is_in_metres():
    st = HazardStages(shapely.Point(LON0, LAT0), CRS0, 0.0, [(60.0, 1000.0)], radius_m=1000.0)
    assert st.polygon_m(0).area == pytest.approx(math.pi * 1000.0**2, rel=5e-3)
    assert st.polygon_m(1).area == pytest.approx(math.pi * 2000.0**2, rel=5e-3)
    cx, cy = _project(np.array([LON0]), np.array([LAT0]), CRS0)
    d = shapely.distance(shapely.Point(cx[0], cy[0]), shapely.get_exterior_ring(st.polygon_m(0)))
    assert 995.0 < d <= 1000.0  # an inscribed polygon of the 1 km circle, not 1 km in degrees
    # a polygon base at stage 0 is the polygon itself; a grown stage is its buffer in metres
    sq = shapely.box(cx[0] - 500.0, cy[0] - 500.0, cx[0] + 500.0, cy[0] + 500.0)
    sq_ll = shapely.transform(sq, lambda xy: np.column_stack(
        Transformer.from_crs(CRS0, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])))
    st = HazardStages(sq_ll, CRS0, 0.0, [(1200.0, 100.0)])
    assert st.polygon_m(0).area == pytest.approx(1e6, rel=1e-6)
    assert st.polygon_m(1).area == pytest.approx(1e6 + 4 * 1000.0 * 100.0 + math.pi * 100.0**2, rel=1e-3)


@pytest.mark.parametrize(("stages", "kwargs", "match"), [
    ([(600.0, 10.0), (600.0, 20.0)], {}, "strictly increase"),
    ([(900.0, 10.0), (700.0, 20.0)], {}, "strictly increase"),
    ([(100.0, 10.0)], {}, "strictly increase"),  # not after onset_s=100
    ([(50.0, 10.0)], {}, "strictly increase"),
    ([(600.0, -5.0)], {}, ">= 0"),
    ([(600.0, 30.0), (900.0, 20.0)], {}, "only grows"),
    ([(math.nan, 10.0)], {}, "finite"),
    ([(600.0, math.inf)], {}, "finite"),
    ([(600.0,)], {}, "expected"),
    ([(600.0, 1.0, 2.0, 3.0)], {}, "expected"),
    (["ab"], {}, "expected"),
    ([], {"radius_m": -1.0}, "radius_m"),
    ([], {"radius_m": 0.0}, "give radius_m"),  # a point base needs a radius
])
def test_invalid_stage_lists_raise(stages, kwargs, match):
    kwargs = {"radius_m": 100.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        HazardStages(shapely.Point(LON0, LAT0), CRS0, 100.0, stages, **kwargs)


def test_invalid_base_and_crs_raise():
    with pytest.raises(ValueError, match="projected CRS in metres"):
        HazardStages(shapely.Point(LON0, LAT0), "EPSG:4326", 0.0, radius_m=10.0)
    with pytest.raises(ValueError, match="empty"):
        HazardStages(shapely.Polygon(), CRS0, 0.0, radius_m=10.0)
    with pytest.raises(ValueError, match="outside longitude"):
        HazardStages(shapely.Point(400000.0, 3950000.0), CRS0, 0.0, radius_m=10.0)  # metres, not degrees
    with pytest.raises(ValueError, match="onset_s"):
        HazardStages(shapely.Point(LON0, LAT0), CRS0, math.nan, radius_m=10.0)


# ------------------------------------------------------------------------------------ files
def _square_lonlat(half_deg=0.01):
    return shapely.Polygon([(LON0 - half_deg, LAT0 - half_deg), (LON0 + half_deg, LAT0 - half_deg),
                            (LON0 + half_deg * 1.5, LAT0 + half_deg), (LON0 - half_deg, LAT0 + half_deg)])


def test_read_geojson_and_geopackage_in_another_crs(tmp_path):
    import geopandas as gpd

    a = _square_lonlat()
    b = shapely.Point(LON0 + 0.02, LAT0).buffer(0.004)  # a second polygon, apart from the first
    gj = tmp_path / "flood.geojson"
    gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[a, b], crs="EPSG:4326").to_file(gj, driver="GeoJSON")
    gpkg = tmp_path / "flood.gpkg"
    gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[a, b], crs="EPSG:4326").to_crs("EPSG:3857").to_file(
        gpkg, driver="GPKG")
    assert gpd.read_file(gpkg).crs.to_epsg() == 3857
    g1, g2 = read_hazard_geometry(gj), read_hazard_geometry(str(gpkg))
    assert g1.geom_type == g2.geom_type == "MultiPolygon"
    assert abs(g2.centroid.x - g1.centroid.x) < 1e-6  # WGS84 again, not web-mercator metres
    s1, s2 = HazardStages(g1, CRS0, 0.0), HazardStages(g2, CRS0, 0.0)
    expect = HazardStages(shapely.union_all([a, b]), CRS0, 0.0).polygon_m(0).area
    assert s1.polygon_m(0).area == pytest.approx(expect, rel=1e-9)
    assert s2.polygon_m(0).area == pytest.approx(s1.polygon_m(0).area, rel=1e-6)
    assert s1.polygon_m(0).area > 1e6  # km², not square degrees


def test_read_repairs_self_intersection(tmp_path):
    bowtie = shapely.Polygon([(LON0, LAT0), (LON0 + 0.01, LAT0 + 0.01), (LON0 + 0.01, LAT0), (LON0, LAT0 + 0.01)])
    assert not bowtie.is_valid
    p = tmp_path / "bowtie.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(bowtie)}]}))
    g = read_hazard_geometry(p)
    assert g.is_valid and g.area == pytest.approx(0.01 * 0.01 / 2, rel=1e-9)


def _fc(*geoms) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)} for g in geoms]})


@pytest.mark.parametrize(("content", "match"), [
    (_fc(), "holds no geometry"),
    (_fc(shapely.Point(LON0, LAT0), shapely.LineString([(LON0, LAT0), (LON0 + 0.1, LAT0)])),
     r"holds no polygon \(only Point, LineString\)"),
    ("this is not a vector file", "cannot be read"),
])
def test_read_bad_files_raise_naming_the_file(tmp_path, content, match):
    p = tmp_path / "hazard_x.geojson"
    p.write_text(content)
    with pytest.raises(ValueError, match=match) as exc:
        read_hazard_geometry(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="cannot be read") as exc:
        read_hazard_geometry(tmp_path / "missing.gpkg")
    assert "missing.gpkg" in str(exc.value)


# ------------------------------------------------------------------------ links, nodes, points
def _brute_links(st: HazardStages, net: RoadNetwork) -> np.ndarray:
    tr = Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    ptr = net.link_geom_indptr
    out = np.full(net.n_links, -1, np.int32)
    for e in range(net.n_links):
        x, y = tr.transform(net.link_geom_lon[ptr[e]:ptr[e + 1]], net.link_geom_lat[ptr[e]:ptr[e + 1]])
        line = shapely.LineString(list(zip(x, y)))
        for k in range(st.n_stages):
            if st.polygon_m(k).intersects(line):
                out[e] = k
                break
    return out


def _brute_nodes(st: HazardStages, x, y) -> np.ndarray:
    out = np.full(len(x), -1, np.int32)
    for i in range(len(x)):
        pt = shapely.Point(x[i], y[i])
        for k in range(st.n_stages):
            if st.polygon_m(k).intersects(pt):
                out[i] = k
                break
    return out


def test_links_and_nodes_hit_match_brute_force_on_tsukuba(tsukuba):
    net = tsukuba
    c = int(np.argmin(np.hypot(net.node_x_m - net.node_x_m.mean(), net.node_y_m - net.node_y_m.mean())))
    st = HazardStages(shapely.Point(net.node_lon[c], net.node_lat[c]), net.crs, 300.0,
                      [(1500.0, 250.0), (2700.0, 700.0)], radius_m=150.0)
    hit, nhit = links_hit(st, net), nodes_hit(st, net)
    assert hit.dtype == nhit.dtype == np.int32 and hit.shape == (net.n_links,) and nhit.shape == (net.n_nodes,)
    np.testing.assert_array_equal(hit, _brute_links(st, net))
    np.testing.assert_array_equal(nhit, _brute_nodes(st, net.node_x_m, net.node_y_m))
    counts = np.bincount(hit + 1, minlength=4)
    assert (counts > 0).all(), counts  # some links never hit, some first hit at each stage
    assert (np.bincount(nhit + 1, minlength=4) > 0).all()
    assert nhit[c] == 0
    # a link that ends at a node in the hazard is hit no later than that node
    for end in (net.link_tail, net.link_head):
        m = nhit[end] >= 0
        assert (hit[m] >= 0).all() and (hit[m] <= nhit[end][m]).all()
    np.testing.assert_array_equal(links_hit(st, net, lines_m=link_lines_m(net)), hit)
    np.testing.assert_array_equal(reached(hit, 1), (hit >= 0) & (hit <= 1))
    assert not reached(hit, -1).any()
    np.testing.assert_array_equal(points_inside(st, 1, net.node_x_m, net.node_y_m), reached(nhit, 1))
    other = HazardStages(shapely.Point(net.node_lon[c], net.node_lat[c]), "EPSG:3857", 0.0, radius_m=10.0)
    with pytest.raises(ValueError, match="network"):
        links_hit(other, net)


def test_curved_street_on_tsukuba_is_hit_where_its_chord_is_not(tsukuba):
    net = tsukuba
    lines = link_lines_m(net)
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    chords = shapely.linestrings(np.stack([np.column_stack([net.node_x_m[net.link_tail], net.node_y_m[net.link_tail]]),
                                           np.column_stack([net.node_x_m[net.link_head], net.node_y_m[net.link_head]])],
                                          axis=1))
    dev = shapely.distance(chords[idx], shapely.points(xy))  # each vertex's distance from its link's chord
    v = int(np.argmax(dev))
    e = int(idx[v])
    assert dev[v] > 50.0  # Tsukuba has streets that bend far from their chord
    lon, lat = _to_lonlat(xy[v, 0], xy[v, 1], net.crs)
    st = HazardStages(shapely.Point(lon, lat), net.crs, 0.0, radius_m=dev[v] / 3.0)
    assert not st.polygon_m(0).intersects(chords[e])
    hit, hit_chords = links_hit(st, net), links_hit(st, _chords(net))
    assert hit[e] == 0
    assert hit_chords[e] == -1


def test_curved_street_synthetic_is_hit_where_its_chord_is_not():
    # a link bending 1.1 km north of its straight chord; the hazard sits on the bend
    net = _tiny_net([LON0, LON0 + 0.005, LON0 + 0.01], [LAT0, LAT0 + 0.01, LAT0])
    # centre 890 m north of the chord, 220 m below the bend, 995 m from either node
    st = HazardStages(shapely.Point(LON0 + 0.005, LAT0 + 0.008), CRS0, 0.0, [(60.0, 750.0)], radius_m=200.0)
    assert links_hit(st, net).tolist() == [0]
    assert links_hit(st, _chords(net)).tolist() == [1]  # the chord is reached only by the grown stage
    assert nodes_hit(st, net).tolist() == [-1, -1]


def test_points_boundary_counts_as_inside():
    st = HazardStages(_square_lonlat(), CRS0, 0.0)
    poly = st.polygon_m(0)
    x, y = shapely.get_coordinates(poly.exterior).T  # exactly on the boundary
    assert points_inside(st, 0, x, y).all()
    assert (points_hit(st, x, y) == 0).all()
    c = poly.centroid
    assert points_inside(st, 0, np.array([c.x, c.x + 1e5]), np.array([c.y, c.y])).tolist() == [True, False]
    assert not points_inside(st, -1, np.array([c.x]), np.array([c.y])).any()


# ------------------------------------------------------------------------------ distance rings
def test_distance_rings_and_zones_match_brute_force_distance():
    radii = np.array([500.0, 1200.0, 2500.0, 4000.0])
    rings = distance_rings(LON0, LAT0, radii, CRS0)
    assert len(rings) == 4 and rings[0].geom_type == "Polygon" and len(rings[0].interiors) == 0
    assert all(len(r.interiors) == 1 for r in rings[1:])
    np.testing.assert_allclose(shapely.area(rings), np.pi * np.diff(np.r_[0.0, radii] ** 2), rtol=1e-3)
    rng = np.random.default_rng(14)
    cx, cy = _project(np.array([LON0]), np.array([LAT0]), CRS0)
    n = 20_000
    r = 5000.0 * np.sqrt(rng.random(n))
    a = 2 * np.pi * rng.random(n)
    x, y = cx[0] + r * np.cos(a), cy[0] + r * np.sin(a)
    d = np.hypot(x - cx[0], y - cy[0])
    brute = np.searchsorted(radii, d, side="left")  # first ring whose outer radius is >= d
    brute = np.where(brute == radii.size, -1, brute)
    near = (np.abs(d[:, None] - radii[None, :]) < 1.0).any(axis=1)  # within the polygons' rounding
    zone = zone_of_points(rings, x, y)
    assert zone.dtype == np.int32
    np.testing.assert_array_equal(zone[~near], brute[~near])
    assert (~near).sum() > 0.99 * n and (brute == -1).any() and np.isin(np.arange(4), brute).all()
    # the first zone in order wins where zones overlap
    discs = shapely.buffer(shapely.points(np.full(2, cx[0]), np.full(2, cy[0])), [4000.0, 1000.0])
    assert zone_of_points(discs, np.array([cx[0]]), np.array([cy[0]])).tolist() == [0]
    for bad in ([], [100.0, 100.0], [-1.0], [300.0, 200.0], [math.nan]):
        with pytest.raises(ValueError, match="radii_m"):
            distance_rings(LON0, LAT0, bad, CRS0)


def test_remaining_use_counts_the_links_ahead():
    from twin.domains.evacuation.contraflow import remaining_use

    rng = np.random.default_rng(4)
    route_links = rng.integers(0, 9, 200)
    start = np.sort(rng.integers(0, 200, 30))
    end = np.minimum(start + rng.integers(0, 12, 30), 200)
    want = np.zeros(9, np.int64)
    for a, b in zip(start.tolist(), end.tolist(), strict=True):
        for p in range(a, b):
            want[route_links[p]] += 1
    np.testing.assert_array_equal(remaining_use(route_links, start, end, 9), want)
    assert remaining_use(route_links, start, start, 9).sum() == 0


def test_shelter_places_are_read_by_their_tags(tmp_path):
    from twin.maps._osm import read_shelter_places

    osm = tmp_path / "places.osm"
    osm.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
        '<node id="1" lat="36.05" lon="140.10"><tag k="emergency" v="assembly_point"/>'
        '<tag k="capacity" v="150"/></node>\n'
        '<node id="2" lat="36.06" lon="140.11"><tag k="amenity" v="shelter"/>'
        '<tag k="shelter_type" v="public_transport"/></node>\n'
        '<node id="3" lat="36.07" lon="140.12"><tag k="amenity" v="shelter"/><tag k="capacity" v="lots"/></node>\n'
        '<node id="4" lat="36.00" lon="140.00"/><node id="5" lat="36.00" lon="140.02"/>'
        '<node id="6" lat="36.02" lon="140.02"/>\n'
        '<node id="7" lat="36.08" lon="140.13"><tag k="amenity" v="cafe"/></node>\n'
        '<way id="10"><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>'
        '<tag k="amenity" v="community_centre"/><tag k="building" v="yes"/></way>\n'
        '</osm>\n')
    p = read_shelter_places(osm)
    assert p.osm_id.tolist() == [1, 3, 10]
    assert p.tag == ["emergency=assembly_point", "amenity=shelter", "amenity=community_centre"]
    np.testing.assert_allclose(p.lon, [140.10, 140.12, (140.00 + 140.02 + 140.02) / 3], atol=1e-9)
    np.testing.assert_allclose(p.lat[2], (36.00 + 36.00 + 36.02) / 3, atol=1e-9)
    assert p.capacity[0] == 150 and np.isnan(p.capacity[1]) and np.isnan(p.capacity[2])
