"""Mobility policies (closures, capacity changes, road pricing), population grids, run comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.domains.mobility.policies import PolicySet
from twin.model import CityModel, load_network
from twin.population import grid_home_weights
from twin.run import run_scenario
from twin.scenario import scenario_from_dict


def sc(**over):
    base = {"name": "p", "seed": 5, "population": {"residents": 1500, "car_ownership": 0.9},
            "modes": {"available": ["car", "walk"], "car_parking_cost": 0.0, "asc_walk": -1.5},
            "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600}}
    base.update(over)
    return scenario_from_dict(base)


@pytest.fixture(scope="module")
def nets():
    s = sc()
    return load_network(s), load_network(s, "walk")


def run(s, nets):
    return CityModel(s, network=nets[0], walk_network=nets[1]).run()


@pytest.fixture(scope="module")
def baseline(nets):
    return run(sc(), nets)


def test_closed_link_is_avoided(nets, baseline):
    net = nets[0]
    busiest = int(np.argmax(baseline.sim.link_volume.sum(axis=1)))
    u, v = int(net.node_osmid[net.link_tail[busiest]]), int(net.node_osmid[net.link_head[busiest]])
    closed = run(sc(policies=[{"type": "link_change", "links": [[u, v]], "closed": True}]), nets)
    assert baseline.sim.link_volume[busiest].sum() > 50
    assert closed.sim.link_volume[busiest].sum() == 0
    assert busiest not in closed.car_route_links
    assert closed.kpis()["completion_rate"] == 1.0


def test_closure_only_inside_its_window(nets, baseline):
    net = nets[0]
    busiest = int(np.argmax(baseline.sim.link_volume.sum(axis=1)))
    u, v = int(net.node_osmid[net.link_tail[busiest]]), int(net.node_osmid[net.link_head[busiest]])
    m = run(sc(policies=[{"type": "link_change", "links": [[u, v]], "closed": True,
                          "from_s": "07:00", "to_s": "10:00"}]), nets)
    vol_h = m.sim.link_volume[busiest]
    bins_per_h = int(3600 / m.bin_s)
    assert vol_h[7 * bins_per_h: 10 * bins_per_h].sum() == 0  # nobody passes while closed
    assert vol_h.sum() > 0  # but it is used outside the window


def test_capacity_cut_raises_delay(nets, baseline):
    s = sc(policies=[{"type": "link_change", "bbox": [24.90, 60.15, 25.0, 60.20], "capacity_factor": 0.02,
                      "from_s": "06:00", "to_s": "11:00"}])
    cut = run(s, nets).kpis()
    assert cut["delay_mean_s"] > baseline.kpis()["delay_mean_s"] + 5


def test_cordon_pricing_charges_and_shifts_modes(nets, baseline):
    net = nets[0]
    lon_mid, lat_mid = np.median(net.node_lon), np.median(net.node_lat)
    box = [lon_mid - 0.004, lat_mid - 0.003, lon_mid + 0.004, lat_mid + 0.003]
    ps = PolicySet(sc(policies=[{"type": "road_pricing", "kind": "cordon", "bbox": box, "price": 1}]).policies, net)
    assert ps.policies[0].n_links > 0
    priced = run(sc(policies=[{"type": "road_pricing", "kind": "cordon", "bbox": box, "price": 30.0,
                               "from_s": "00:00", "to_s": "30:00"}]), nets)
    k0, k1 = baseline.kpis(), priced.kpis()
    assert k1["mode_share_car"] < k0["mode_share_car"]
    # cars that still pay are few; entries into the cordon fall
    cordon = ps.policies[0].mask
    assert priced.sim.link_volume[cordon].sum() < baseline.sim.link_volume[cordon].sum()


def test_distance_pricing_tolls_are_per_km(nets):
    net = nets[0]
    box = [float(net.node_lon.min()), float(net.node_lat.min()), float(net.node_lon.max()), float(net.node_lat.max())]
    ps = PolicySet(sc(policies=[{"type": "road_pricing", "kind": "distance", "bbox": box, "price": 0.5}]).policies, net)
    a = ps.arrays(8 * 3600, 9 * 3600)
    np.testing.assert_allclose(a.toll, 0.5 * net.link_length_m / 1000.0)
    assert ps.arrays(3 * 3600, 4 * 3600).toll.sum() == 0  # outside the default 07-19 window


def test_population_grid_places_homes_in_cells(shared, nets):
    grid = shared / "mobility" / "r5py_helsinki_population_grid_2020.gpkg"
    net = nets[0]
    w = grid_home_weights(net, grid, "population")
    assert w.sum() > 0
    import geopandas as gpd

    cells = gpd.read_file(grid)
    # every node with weight lies in a cell; the weight of a cell's nodes sums to its population
    assert w.sum() <= cells["population"].sum() + 1e-6
    m = CityModel(sc(population={"residents": 2000, "grid": str(grid)}), network=nets[0], walk_network=nets[1])
    assert np.all(w[m.pop.home_node] > 0)
    with pytest.raises(Exception, match=r"population\.grid_population_column"):
        grid_home_weights(net, grid, "inhabitants")


def test_compare_command(tmp_path, nets):
    a = run_scenario(sc(), tmp_path / "a", network=nets[0])
    b = run_scenario(sc(simulation={"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600,
                                    "flow_capacity_factor": 0.05}), tmp_path / "b", network=nets[0])
    res = CliRunner().invoke(app, ["compare", str(a.out_dir), str(b.out_dir), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["kpi"]: r for r in json.loads(res.output)["kpis"]}
    assert rows["delay_mean_s"]["b"] > rows["delay_mean_s"]["a"]
    assert rows["delay_mean_s"]["diff"] == pytest.approx(rows["delay_mean_s"]["b"] - rows["delay_mean_s"]["a"])
    res = CliRunner().invoke(app, ["compare", str(a.out_dir), str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a run folder" in res.output
