"""Plug-in modes (the MaaS hook): the built-in taxi and a provider registered by a test."""

from __future__ import annotations

import numpy as np
import pytest

from twin._errors import ScenarioError
from twin.domains.mobility.modes import ModeOptions, ModeProvider, register_mode
from twin.model import CityModel, load_network
from twin.scenario import scenario_from_dict


def sc(available=("car", "walk", "bike", "taxi"), plugins=None, seed=4, residents=1200):
    return scenario_from_dict({
        "name": "modes", "seed": seed, "population": {"residents": residents},
        "modes": {"available": list(available), "plugins": plugins or {}},
        "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 300},
    })


@pytest.fixture(scope="module")
def nets():
    s = sc()
    return load_network(s), load_network(s, "walk"), load_network(s, "bike")


def run(s, nets):
    return CityModel(s, network=nets[0], walk_network=nets[1], bike_network=nets[2]).run()


def test_taxi_trips_take_wait_plus_freeflow_route_time(nets):
    m = run(sc(plugins={"taxi": {"asc": 1.0, "wait_s": 240}}), nets)
    assert m.mode_names == ("car", "walk", "bike", "taxi")
    k = m.kpis()
    assert k["mode_share_taxi"] > 0.02
    assert sum(v for n, v in k.items() if n.startswith("mode_share_")) == pytest.approx(1.0, abs=1e-5)
    tr = m.trips_frame()
    taxi = tr[tr["mode"] == "taxi"]
    assert len(taxi) == round(k["mode_share_taxi"] * k["trips_total"])
    assert taxi["completed"].all()
    # the provider's model: 240 s wait + the shortest free-flow car route between the trip's nodes
    ff = m.router.costs(m.trips.origin[taxi.index.to_numpy()], m.trips.dest[taxi.index.to_numpy()],
                        weight=m.network.link_fftt_s)
    np.testing.assert_allclose(taxi["travel_time_s"], 240.0 + ff, rtol=0, atol=1e-6)
    np.testing.assert_allclose(taxi["delay_s"], 0.0, atol=1e-6)
    assert (taxi["route_length_m"] > 0).all()
    # the Mesa agent of a taxi rider shows the taxi in its plan
    rider = m.resident(int(taxi["resident_id"].iloc[0]))
    assert ("taxi" in {mode for _, mode in rider.plan})
    # the resident's next trip starts after the taxi arrived (activity chains go on)
    nxt = tr.loc[taxi.index + 1]
    same_person = nxt["resident_id"].to_numpy() == taxi["resident_id"].to_numpy()
    assert same_person.any()
    assert (nxt["depart_s"].to_numpy()[same_person] >= taxi["arrive_s"].to_numpy()[same_person]).all()


def test_taxi_share_follows_its_constant_and_fare(nets):
    cheap = run(sc(plugins={"taxi": {"asc": 1.0, "fare_base": 0.0, "fare_per_km": 0.0}}), nets).kpis()
    dear = run(sc(plugins={"taxi": {"asc": 1.0, "fare_base": 20.0}}), nets).kpis()
    assert cheap["mode_share_taxi"] > 2 * dear["mode_share_taxi"]


def test_taxi_runs_are_deterministic(nets):
    a = run(sc(), nets).trips_frame()
    b = run(sc(), nets).trips_frame()
    assert a.equals(b)


class _ShuttleOptions(ModeOptions):
    speed_mps: float = 5.0


class _Shuttle(ModeProvider):
    """A test provider: straight-line distance at a fixed speed, arrivals reported step by step."""

    name = "shuttle_test"
    Options = _ShuttleOptions

    def attach(self, model):
        n = model.network
        t = model.trips
        self.dist_m = np.hypot(n.node_x_m[t.origin] - n.node_x_m[t.dest], n.node_y_m[t.origin] - n.node_y_m[t.dest])
        self.calls = {"attach": 1, "start_day": 0, "begin": 0, "advance": 0}
        self.windows = []

    def skim(self, model, trips, depart_s):
        return self.dist_m[trips] / self.options.speed_mps, np.zeros(trips.size)

    def start_day(self, model):
        self.calls["start_day"] += 1
        self.arrive = {}

    def begin(self, model, trips, depart_s):
        self.calls["begin"] += 1
        for i, d in zip(trips.tolist(), depart_s.tolist()):
            self.arrive[i] = d + self.dist_m[i] / self.options.speed_mps

    def advance(self, model, t_s, t_end_s):
        self.calls["advance"] += 1
        self.windows.append((t_s, t_end_s))
        done = sorted(i for i, a in self.arrive.items() if a < t_end_s)
        out = np.array(done, dtype=np.int64), np.array([self.arrive.pop(i) for i in done])
        return out

    def distance_m(self, model, trips):
        return self.dist_m[trips]


@pytest.fixture
def shuttle():
    from twin.registry import MODES

    register_mode(_Shuttle)
    yield _Shuttle
    MODES.unregister(_Shuttle.name)


def test_registered_provider_is_chosen_and_called_each_step(nets, shuttle):
    s = sc(available=("car", "walk", "shuttle_test"), plugins={"shuttle_test": {"asc": 2.0, "speed_mps": 8.0}})
    s = s.model_copy(update={"replanning": s.replanning.model_copy(update={"iterations": 2})})
    m = run(s, nets)
    p = m.mode_providers[0]
    assert isinstance(p, _Shuttle) and p.options.speed_mps == 8.0
    assert p.calls["start_day"] == 2 and p.calls["begin"] > 0
    # advance is called once per model step, over consecutive windows of record_interval_s
    w = np.array(p.windows)
    assert np.all(np.diff(w[:, 0])[np.diff(w[:, 0]) > 0] == 300.0)
    tr = m.trips_frame()
    sh = tr[tr["mode"] == "shuttle_test"]
    assert len(sh) > 0 and sh["completed"].all()
    np.testing.assert_allclose(sh["travel_time_s"], p.dist_m[sh.index.to_numpy()] / 8.0, atol=1e-6)
    assert m.kpis()["mode_share_shuttle_test"] > 0


def test_bad_mode_names_and_options_are_rejected(shuttle):
    with pytest.raises(ScenarioError,
                       match=r"modes.available: .*unknown mode 'tram' at position 1 \(allowed: car, walk, bike, "):
        sc(available=("car", "tram"))
    with pytest.raises(ScenarioError, match=r"modes.plugins.taxi.wait: unknown key; allowed keys: asc, wait_s"):
        sc(plugins={"taxi": {"wait": 3}})
    with pytest.raises(ScenarioError, match=r"modes.plugins.taxi.wait_s: Input should be greater than or equal to 0"):
        sc(plugins={"taxi": {"wait_s": -1}})
    with pytest.raises(ScenarioError,
                       match=r"modes.plugins.shuttle_test: not a plug-in mode in modes.available \(there: taxi\)"):
        sc(plugins={"shuttle_test": {}})
    with pytest.raises(ScenarioError, match=r"listed twice"):
        sc(available=("car", "taxi", "taxi"))
    with pytest.raises(ValueError, match="built-in"):
        register_mode(type("Car", (ModeProvider,), {"name": "car"}))


def test_adding_a_mode_only_moves_tours_to_it(nets):
    # common random numbers: the built-in modes' draws do not change when a mode is added, so on the
    # first day (no congestion feedback yet) every tour keeps its mode or switches to the taxi
    base = CityModel(sc(available=("car", "walk", "bike")), network=nets[0], walk_network=nets[1],
                     bike_network=nets[2])
    taxi = CityModel(sc(plugins={"taxi": {"asc": 1.0}}), network=nets[0], walk_network=nets[1],
                     bike_network=nets[2])
    moved = base.tour_mode != taxi.tour_mode
    assert moved.any()
    assert np.all(taxi.tour_mode[moved] == taxi.mode_names.index("taxi"))


def test_compare_shows_a_mode_present_in_one_run_only(nets, tmp_path):
    import json

    from typer.testing import CliRunner

    from twin.cli import app
    from twin.run import run_scenario

    small = {"residents": 400}
    a = sc(available=("car", "walk", "bike"), residents=small["residents"])
    b = sc(plugins={"taxi": {"asc": 2.0}}, residents=small["residents"])
    for s, d in ((a, "a"), (b, "b")):
        run_scenario(s, tmp_path / d, network=nets[0])
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["kpi"]: r for r in json.loads(res.output)["kpis"]}
    assert rows["mode_share_taxi"]["a"] == 0.0 and rows["mode_share_taxi"]["b"] > 0
    keys = list(rows)
    assert keys.index("mode_share_taxi") == keys.index("mode_share_bike") + 1


def test_sweep_summary_includes_plug_in_mode_shares(tmp_path):
    import pandas as pd

    from twin.sweep import plot_report, summarize

    pd.DataFrame({"param.modes.plugins.taxi.wait_s": [60, 60, 600, 600], "travel_time_mean_s": [1.0, 2, 3, 4],
                  "mode_share_car": [0.5] * 4, "mode_share_taxi": [0.2, 0.1, 0.02, 0.01]}
                 ).to_parquet(tmp_path / "kpis.parquet")
    table = summarize(tmp_path)
    assert ("mode_share_taxi", "mean") in table.columns
    assert table[("mode_share_taxi", "mean")].tolist() == pytest.approx([0.15, 0.015])
    names = {p.name for p in plot_report(tmp_path)}
    assert "mode_share_taxi_vs_modes.plugins.taxi.wait_s.png" in names
