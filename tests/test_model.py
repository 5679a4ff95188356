"""End-to-end: CityModel on the packaged Helsinki map; determinism; conservation; Mesa API."""

from __future__ import annotations

import hashlib

import mesa
import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.agents import Resident
from twin.demand import HOME
from twin.domains.mobility.mode_choice import CAR, WALK
from twin.model import CityModel, load_network
from twin.run import run_scenario
from twin.scenario import scenario_from_dict


def small(**over):
    base = {
        "name": "t",
        "seed": 11,
        "population": {"residents": 400},
        "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600},
    }
    for k, v in over.items():
        if isinstance(v, dict):
            base[k] = {**base.get(k, {}), **v}
        else:
            base[k] = v
    return scenario_from_dict(base)


@pytest.fixture(scope="module")
def net():
    return load_network(small())


@pytest.fixture(scope="module")
def walk_net():
    return load_network(small(), "walk")


@pytest.fixture(scope="module")
def bike_net():
    return load_network(small(), "bike")


def model(sc, net, walk_net, bike_net):
    return CityModel(sc, network=net, walk_network=walk_net, bike_network=bike_net)


def test_model_runs_and_conserves(net, walk_net, bike_net):
    m = model(small(), net, walk_net, bike_net)
    assert isinstance(m, mesa.Model)
    assert len(m.residents) == 400 and all(isinstance(a, Resident) for a in m.residents)
    n_trips = m.trips.n
    while m.running:
        m.step()
        s = m.sim
        assert s.n_departed == s.n_waiting + s.n_on_links + s.n_arrived + s.n_removed
        assert int(s.occ.sum()) == int(np.count_nonzero(s.status == 2))
    assert np.all(m.trip_state == 2)  # nothing lost: every planned trip completed
    cols = m.trips_columns()
    assert len(cols["trip_id"]) == n_trips
    assert np.all(cols["travel_time_s"] >= cols["freeflow_time_s"] - 1e-6)
    # chains: a trip departs after the previous one arrived plus at least one model step
    t = m.trips
    nxt = np.flatnonzero(t.seq[1:] > 0) + 1
    assert np.all(m.trip_depart_s[nxt] >= m.trip_arrive_s[nxt - 1] + 600 - 1e-9)
    # every resident who leaves home comes back
    last = t.person_ptr[1:][np.diff(t.person_ptr) > 0] - 1
    assert np.all(t.purpose[last] == HOME)
    df = m.datacollector.get_model_vars_dataframe()
    assert int(df["arrived"].iloc[-1]) == n_trips
    # link volumes add up to the car route links traversed
    assert m.sim.link_volume.sum() == m.car_route_links.size


def test_tours_share_one_mode_and_only_drivers_drive(net, walk_net, bike_net):
    m = model(small(population={"residents": 1500}), net, walk_net, bike_net)
    t = m.trips
    for tour in range(0, t.n_tours, 37):
        assert np.unique(m.trip_mode[t.tour == tour]).size == 1
    drivers = m.pop.can_drive[t.person]
    assert np.all(drivers[m.trip_mode == CAR])
    shares = np.bincount(m.trip_mode, minlength=3) / t.n
    assert np.all(shares > 0.02)  # all three modes in use with the default coefficients


def test_mode_choice_reacts_to_costs(net, walk_net, bike_net):
    cheap = model(small(population={"residents": 1500}), net, walk_net, bike_net)
    dear = model(small(population={"residents": 1500}, modes={"car_parking_cost": 20.0}), net, walk_net, bike_net)
    assert np.mean(dear.trip_mode == CAR) < 0.5 * np.mean(cheap.trip_mode == CAR)
    walk_only = model(small(modes={"available": ["walk"]}), net, walk_net, bike_net)
    assert np.all(walk_only.trip_mode == WALK)


def test_resident_handles_read_model_columns(net, walk_net, bike_net):
    m = model(small(), net, walk_net, bike_net)
    a = m.resident(5)
    assert a is list(m.residents)[5]
    assert a.home_node == m.pop.home_node[5] and a.home_osmid == net.node_osmid[a.home_node]
    assert a.state == "at_home"
    assert len(a.plan) == m.trips.person_ptr[6] - m.trips.person_ptr[5]
    m.run()
    assert a.state == ("at_home" if len(a.plan) == 0 else f"at_{a.plan[-1][0]}")


def test_lazy_agents(net, walk_net, bike_net):
    m = model(small(population={"residents": 300, "mesa_agents": "lazy"}), net, walk_net, bike_net)
    assert len(m.residents) == 0
    a = m.resident(17)
    assert len(m.residents) == 1 and m.resident(17) is a and a.row == 17
    with pytest.raises(IndexError):
        m.resident(300)


def test_two_models_do_not_share_state(net, walk_net, bike_net):
    a = model(small(), net, walk_net, bike_net)
    b = model(small(seed=12), net, walk_net, bike_net)
    assert not np.array_equal(a.pop.home_node, b.pop.home_node)
    a.run()
    assert np.all(b.trip_state == 0) or b.sim.n_arrived == 0


def test_homes_follow_buildings(net, walk_net, bike_net):
    m = model(small(population={"residents": 5000}), net, walk_net, bike_net)
    assert np.all(net.node_home_weight[m.pop.home_node] > 0)
    u = model(small(population={"residents": 5000, "placement": "uniform"}), net, walk_net, bike_net)
    assert np.unique(u.pop.home_node).size > np.unique(m.pop.home_node).size


def test_population_shares(net, walk_net, bike_net):
    m = model(small(population={"residents": 20000, "employment_rate": 0.5, "car_ownership": 0.3}),
              net, walk_net, bike_net)
    p = m.pop
    adults = p.age_group == 1
    assert abs(p.employed[adults].mean() - 0.5) < 0.02
    assert abs(np.mean(p.age_group == 0) - 0.15) < 0.02
    hh_car = np.zeros(p.household.max() + 1, dtype=bool)
    hh_car[p.household[p.can_drive]] = True
    assert abs(hh_car.mean() - 0.3) < 0.03  # households with a driver ~ car ownership
    assert np.all(p.work_node[p.employed] >= 0) and np.all(p.work_node[~p.employed] == -1)
    assert np.all(p.work_node[p.employed] != p.home_node[p.employed])


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_byte_identical_outputs(tmp_path, net):
    sc = small(replanning={"iterations": 2})
    r1 = run_scenario(sc, tmp_path / "a", network=net)
    r2 = run_scenario(sc, tmp_path / "b")
    for f in ("trips.parquet", "links.parquet", "events.parquet", "iterations.parquet", "timeseries.parquet",
              "kpis.json", "scenario.resolved.yaml"):
        assert _digest(r1.out_dir / f) == _digest(r2.out_dir / f), f
    r3 = run_scenario(small(seed=12), tmp_path / "c", network=net)
    assert _digest(r1.out_dir / "trips.parquet") != _digest(r3.out_dir / "trips.parquet")
    t = pq.read_table(r1.out_dir / "trips.parquet")
    assert {"resident_id", "mode", "purpose", "depart_s", "arrive_s", "route_length_m", "travel_time_s",
            "freeflow_time_s"} <= set(t.column_names)


def test_events_are_consistent(tmp_path, net):
    r = run_scenario(small(), tmp_path / "a", network=net)
    ev = pq.read_table(r.out_dir / "events.parquet").to_pandas()
    trips = pq.read_table(r.out_dir / "trips.parquet").to_pandas()
    assert np.all(np.diff(ev["t_s"].to_numpy()) >= 0)
    counts = ev["type"].value_counts()
    assert counts["depart"] == counts["arrive"] == len(trips)
    assert counts["enter_link"] == counts["leave_link"] == trips.loc[trips["mode"] == "car", "route_links"].sum()
    car = trips[trips["mode"] == "car"].iloc[0]
    e = ev[ev["trip_id"] == car["trip_id"]]
    assert e["type"].iloc[0] == "depart" and e["type"].iloc[-1] == "arrive"
    assert e["t_s"].iloc[-1] == pytest.approx(car["arrive_s"])


def test_python_backend_equals_numba(net, walk_net, bike_net):
    a = model(small(population={"residents": 150}), net, walk_net, bike_net).run()
    b = model(small(population={"residents": 150}, simulation={"backend": "python"}), net, walk_net, bike_net).run()
    np.testing.assert_array_equal(a.trip_arrive_s, b.trip_arrive_s)
    np.testing.assert_array_equal(a.sim.link_volume, b.sim.link_volume)


def test_congestion_appears_with_capacity_cut(net, walk_net, bike_net):
    free = model(small(), net, walk_net, bike_net).run().kpis()
    tight = model(small(simulation={"flow_capacity_factor": 0.03, "storage_capacity_factor": 0.2}),
                  net, walk_net, bike_net).run().kpis()
    assert tight["delay_mean_s"] > free["delay_mean_s"] + 10


def test_failed_run_leaves_no_folder(tmp_path, net, monkeypatch):
    import twin.model

    def boom(self, progress=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(twin.model.CityModel, "run", boom)
    with pytest.raises(RuntimeError):
        run_scenario(small(), tmp_path / "runs" / "x", network=net)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("congested", [False, True])
def test_same_outputs_with_one_and_two_numba_threads(net, walk_net, bike_net, congested):
    import numba

    over = {"replanning": {"iterations": 2}}
    if congested:  # spillback: full links, merges decided by the seeded draws, stuck vehicles
        over.update(population={"residents": 1500}, modes={"available": ["car"]},
                    simulation={"flow_capacity_factor": 0.02, "storage_capacity_factor": 0.05})
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = model(small(**over), net, walk_net, bike_net).run()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = model(small(**over), net, walk_net, bike_net).run()
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(a.car_route_links, b.car_route_links)
    np.testing.assert_array_equal(a.trip_arrive_s, b.trip_arrive_s)
    np.testing.assert_array_equal(a.sim.link_tt_sum_s, b.sim.link_tt_sum_s)
    if congested:
        assert a.kpis()["delay_mean_s"] > 120 and a.sim.n_forced_moves > 0


def test_trips_frame(net, walk_net, bike_net):
    m = model(small(population={"residents": 100}), net, walk_net, bike_net).run()
    df = m.trips_frame()
    assert len(df) == m.trips.n
    assert set(df["mode"].unique()) <= {"car", "walk", "bike"}
    assert df["purpose"].iloc[-1] == "home"


def test_replanning_records_and_mode_change_events(tmp_path, net):
    sc = small(population={"residents": 800}, replanning={"iterations": 3, "mode_share": 0.5},
               simulation={"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600,
                           "flow_capacity_factor": 0.1, "storage_capacity_factor": 0.3})
    r = run_scenario(sc, tmp_path / "a", network=net)
    it = pq.read_table(r.out_dir / "iterations.parquet").to_pydict()
    assert it["trips_rerouted"][0] == 0 and it["tours_mode_changed"][0] == 0
    assert it["tours_mode_changed"][1] > 0 and it["trips_rerouted"][1] > 0
    ev = pq.read_table(r.out_dir / "events.parquet").to_pandas()
    mc = ev[ev["type"] == "mode_change"]
    assert len(mc) > 0
    # a mode_change event comes right before the trip's departure, at the same time
    first = ev.groupby("trip_id").head(1)
    assert set(mc["trip_id"]) <= set(first.loc[first["type"] == "mode_change", "trip_id"])
