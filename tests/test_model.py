"""End-to-end: CityModel on the packaged Helsinki map; determinism; conservation; Mesa API."""

from __future__ import annotations

import hashlib

import mesa
import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.agents import Resident
from twin.model import CityModel, load_network
from twin.run import run_scenario
from twin.scenario import scenario_from_dict


def small(**over):
    base = {
        "name": "t",
        "seed": 11,
        "population": {"residents": 400},
        "demand": {"morning_departure": {"kind": "normal", "mean_s": "07:30", "std_s": 600,
                                         "min_s": "07:00", "max_s": "08:00"},
                   "work_duration": {"kind": "fixed", "mean_s": 3600, "min_s": 3600, "max_s": 3600}},
        "simulation": {"start_s": "06:30", "end_s": "14:00", "record_interval_s": 300},
    }
    for k, v in over.items():
        base.setdefault(k, {})
        if isinstance(v, dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return scenario_from_dict(base)


@pytest.fixture(scope="module")
def net():
    return load_network(small())


def test_model_runs_and_conserves(net):
    m = CityModel(small(), network=net)
    assert isinstance(m, mesa.Model)
    assert len(m.residents) == 400 and all(isinstance(a, Resident) for a in m.residents)
    n_trips = 800
    while not m.done:
        m.step()
        s = m.sim
        # conservation at every model step
        assert s.n_departed == s.n_waiting + s.n_on_links + s.n_arrived
        assert int(s.occ.sum()) == int(np.count_nonzero(s.status == 2))
        assert s.n_arrived <= n_trips
    assert m.sim.n_arrived == n_trips  # nothing lost
    cols = m.trips_columns()
    assert np.all(cols["completed"])
    # travel time never below free flow (exact free-flow travel otherwise)
    assert np.all(cols["travel_time_s"] >= cols["freeflow_time_s"] - 1e-6)
    # each return trip leaves work one work-duration after arriving
    np.testing.assert_allclose(cols["depart_s"][1::2], cols["arrive_s"][0::2] + 3600.0)
    # DataCollector recorded the model-level series
    df = m.datacollector.get_model_vars_dataframe()
    assert list(df["arrived"])[-1] == n_trips and df["en_route"].max() > 0
    assert np.all(np.diff(df["t_s"].to_numpy()) > 0)
    # link volumes add up to the route links traversed
    assert m.sim.link_volume.sum() == m.route_links.size


def test_resident_handles_read_model_columns(net):
    m = CityModel(small(), network=net)
    a = list(m.residents)[5]
    assert a.home_node == m.pop_home_node[a.row] and a.work_node == m.pop_work_node[a.row]
    assert a.home_node != a.work_node
    assert a.home_osmid == net.node_osmid[a.home_node]
    assert a.state == "at_home"
    m.run()
    assert a.state == "home_again"


def test_two_models_do_not_share_state(net):
    a = CityModel(small(), network=net)
    b = CityModel(small(seed=12), network=net)
    assert not np.array_equal(a.pop_home_node, b.pop_home_node)
    a.run()
    assert b.sim.n_arrived == 0


def test_homes_follow_buildings(net):
    m = CityModel(small(population={"residents": 5000}), network=net)
    # homes only on nodes with residential/generic buildings nearby
    assert np.all(net.node_home_weight[m.pop_home_node] > 0)
    u = CityModel(small(population={"residents": 5000, "placement": "uniform"}), network=net)
    assert np.unique(u.pop_home_node).size > np.unique(m.pop_home_node).size * 0.9


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_byte_identical_outputs(tmp_path, net):
    sc = small()
    r1 = run_scenario(sc, tmp_path / "a", network=net)
    r2 = run_scenario(sc, tmp_path / "b")
    for f in ("trips.parquet", "links.parquet", "timeseries.parquet", "kpis.json", "scenario.resolved.yaml"):
        assert _digest(r1.out_dir / f) == _digest(r2.out_dir / f), f
    r3 = run_scenario(small(seed=12), tmp_path / "c", network=net)
    assert _digest(r1.out_dir / "trips.parquet") != _digest(r3.out_dir / "trips.parquet")
    t = pq.read_table(r1.out_dir / "trips.parquet")
    assert {"agent_id", "mode", "depart_s", "arrive_s", "route_length_m", "travel_time_s",
            "freeflow_time_s"} <= set(t.column_names)


def test_python_backend_equals_numba(net):
    a = CityModel(small(population={"residents": 150}), network=net).run()
    b = CityModel(small(population={"residents": 150}, simulation={"backend": "python"}), network=net).run()
    np.testing.assert_array_equal(a.sim.arrive_s, b.sim.arrive_s)
    np.testing.assert_array_equal(a.sim.link_volume, b.sim.link_volume)


def test_congestion_appears_with_capacity_cut(net):
    free = CityModel(small(), network=net).run().kpis()
    tight = CityModel(small(simulation={"flow_capacity_factor": 0.05, "storage_capacity_factor": 0.2}),
                      network=net).run().kpis()
    assert tight["delay_mean_s"] > free["delay_mean_s"] + 10


def test_failed_run_leaves_no_folder(tmp_path, net, monkeypatch):
    import twin.model

    def boom(self, progress=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(twin.model.CityModel, "run", boom)
    with pytest.raises(RuntimeError):
        run_scenario(small(), tmp_path / "runs" / "x", network=net)
    assert not (tmp_path / "runs").exists()


def test_same_outputs_with_one_and_two_numba_threads(net):
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = CityModel(small(), network=net).run()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = CityModel(small(), network=net).run()
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(a.route_links, b.route_links)
    np.testing.assert_array_equal(a.sim.arrive_s, b.sim.arrive_s)
