"""The MaaS domain: fleets of kernel vehicles serving residents' requests (issue 13's exact tests)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from twin.model import CityModel, load_network
from twin.scenario import scenario_from_dict


def _scenario(operator: dict, *, residents: int = 400, asc: float = 50.0, available=("walk", "bike", "maas"),
              record_s: float = 60.0, seed: int = 1, **extra):
    op = {"name": "ride", **operator}
    data = {
        "name": "maas_test", "seed": seed, "map": {"source": "helsinki"},
        "population": {"residents": residents, "car_ownership": 0.0},
        "modes": {"available": list(available), "plugins": {"maas": {"asc": asc}}},
        "simulation": {"record_interval_s": record_s},
        "maas": {"operators": [op]},
        **extra,
    }
    return scenario_from_dict(data)


def _run(sc, *, check=None):
    m = CityModel(sc)
    while m.running:
        m.step()
        if check is not None:
            check(m)
    return m


def test_one_vehicle_one_request_waits_the_free_flow_time_to_the_pickup():
    """A single resident, one vehicle at a depot: the first request's wait is the kernel's free-flow
    time along the least free-flow-time route from the depot to the pick-up."""
    net = load_network(_scenario({}))
    depot = int(net.node_osmid[0])
    sc = _scenario({"fleet_size": 1, "depots": [{"osmid": depot}], "max_wait_s": 7200}, residents=1)
    m = _run(sc)
    dom = m.domain("maas")
    rq = dom.request_columns()
    assert rq["request_id"].size >= 1 and not rq["rejected"][0]
    pick = dom.rq_pick_node[0]
    expect = float(m.router.costs(np.array([0]), np.array([pick]), weight=net.link_fftt_s)[0])
    assert expect > 0
    assert rq["wait_s"][0] == pytest.approx(expect, abs=1e-6)
    # and the ride itself, alone in free flow: the direct free-flow time
    assert rq["in_vehicle_s"][0] == pytest.approx(rq["direct_s"][0], abs=1e-6)


def _check_fleet(m):
    dom = m.domain("maas")
    for v in dom.vehicles:
        seats = dom.config.operators[v.op].seats
        assert 0 <= v.onboard <= seats
        assert v.soc_kwh >= -1e-9


def test_pooling_shares_rides_within_limits_and_seats():
    """Ride-pooling in free flow (the fleet is the only traffic): some rides are shared, no ride is
    longer than its limit, the seats are never exceeded (checked at every step), every passenger
    picked up is dropped off."""
    sc = _scenario({"fleet_size": 6, "seats": 3, "dispatcher": "pooling", "batch_s": 60, "max_wait_s": 900,
                    "max_detour_rel": 0.6, "max_detour_abs_s": 600}, residents=500)
    m = _run(sc, check=_check_fleet)
    rq = m.domain("maas").request_columns()
    served = ~rq["rejected"]
    assert served.sum() > 50
    assert rq["shared"][served].mean() > 0.1
    assert np.all(rq["in_vehicle_s"][served] <= rq["max_in_vehicle_s"][served] + 1e-6)
    assert np.all(rq["wait_s"][served] <= 900 + 1e-6) and np.all(rq["wait_s"][served] >= -1e-9)
    assert np.all(np.isfinite(rq["dropoff_s"][np.isfinite(rq["pickup_s"])]))  # nobody left on board
    # a vehicle serving two requests at once: both rides overlap in time
    veh = rq["vehicle"][served]
    pick, drop = rq["pickup_s"][served], rq["dropoff_s"][served]
    overlap = False
    for v in np.unique(veh):
        s = np.flatnonzero(veh == v)
        o = np.argsort(pick[s])
        overlap |= bool(np.any(pick[s][o][1:] < drop[s][o][:-1]))
    assert overlap


def test_unreachable_request_is_rejected_and_the_resident_goes_another_way():
    """No vehicle can reach anyone within the maximum wait (1 s): every request is rejected, its
    trip is made by walk or bike, and the day completes."""
    net = load_network(_scenario({}))
    sc = _scenario({"fleet_size": 1, "depots": [{"osmid": int(net.node_osmid[0])}], "max_wait_s": 1.0},
                   residents=50)
    m = _run(sc)
    dom = m.domain("maas")
    rq = dom.request_columns()
    far = rq["rejected"]
    assert far.sum() > 10
    k = m.kpis()
    assert k["maas_fallback_trips"] == int(far.sum())
    names = np.array(m.mode_names)[m.trip_mode[rq["trip_id"][far]]]
    assert set(names) <= {"walk", "bike"}
    assert (m.trip_state[rq["trip_id"][far]] == 2).all()  # the fallback trips arrived


def test_electric_fleet_energy_balance_is_exact():
    """Battery state never below zero (every step); per vehicle: used = km × consumption,
    charged = Σ sessions = power × plugged time × efficiency, final = initial + charged − used."""
    net = load_network(_scenario({}))
    el = {"battery_kwh": 4.0, "consumption_kwh_per_km": 0.2, "initial_soc": 0.8, "reserve_soc": 0.2,
          "charge_below_soc": 0.4, "charge_to_soc": 0.9, "charger_kw": 7.0, "charger_efficiency": 0.9,
          "plugs_per_depot": 1}
    sc = _scenario({"fleet_size": 4, "depots": [{"osmid": int(net.node_osmid[5])}], "electric": el}, residents=500)
    m = _run(sc, check=_check_fleet)
    t = m.domain("maas").tables(None)
    v, ses = t["maas_vehicles"], t["maas_charging"]
    km = v["km_empty"] + v["km_occupied"]
    np.testing.assert_allclose(v["energy_used_kwh"], km * 0.2, rtol=0, atol=1e-9)
    assert len(ses["vehicle"]) > 0  # they charged
    per = np.bincount(ses["vehicle"], weights=ses["energy_kwh"], minlength=v["vehicle"].size)
    np.testing.assert_allclose(v["energy_charged_kwh"], per, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ses["energy_kwh"], (ses["end_s"] - ses["start_s"]) / 3600 * 7.0 * 0.9, atol=1e-9)
    np.testing.assert_allclose(v["soc_final_kwh"],
                               v["soc_initial_kwh"] + v["energy_charged_kwh"] - v["energy_used_kwh"], atol=1e-9)
    # one plug: sessions at the depot never overlap
    o = np.argsort(ses["start_s"])
    assert np.all(ses["start_s"][o][1:] >= ses["end_s"][o][:-1] - 1e-9)


def test_large_fleet_with_zero_wait_approaches_the_no_fleet_taxi():
    """Limit: vehicles on every node (4 each), zero maximum wait, the fleet the only traffic: mode
    shares equal the no-fleet taxi's with the same fares on the first day (same skims, same
    draws), and the rides take the taxi's free-flow times within 2% on average (a few requests
    find no vehicle left at their node: at most 5% of them)."""
    net = load_network(_scenario({}))
    fares = {"fare_base": 3.0, "fare_per_km": 1.5, "fare_per_min": 0.0}
    sc_m = _scenario({"fleet_size": 4 * net.n_nodes, "max_wait_s": 0.0, "prior_wait_s": 0.0, **fares},
                     residents=600, asc=-0.5)
    data = sc_m.model_dump(mode="json", exclude={"maas"})
    data["modes"]["available"] = ["walk", "bike", "taxi"]
    data["modes"]["plugins"] = {"taxi": {"asc": -0.5, "wait_s": 0.0, "fare_base": 3.0, "fare_per_km": 1.5}}
    sc_t = scenario_from_dict(data)
    m = _run(sc_m)
    t = _run(sc_t)
    # the same choices: every tour's mode (maas in place of taxi: both the first plug-in mode)
    np.testing.assert_array_equal(m.tour_mode, t.tour_mode)
    rq = m.domain("maas").request_columns()
    assert rq["rejected"].mean() <= 0.05
    served = ~rq["rejected"]
    tt_m = (rq["dropoff_s"] - rq["request_s"])[served]
    tt_t = t.trip_arrive_s[rq["trip_id"][served]] - t.trip_depart_s[rq["trip_id"][served]]
    assert tt_m.mean() == pytest.approx(tt_t.mean(), rel=0.02)


def _digest(m):
    h = hashlib.sha256()
    for stem, cols in sorted(m.domain_tables().items()):
        h.update(stem.encode())
        for k, v in cols.items():
            h.update(k.encode())
            h.update(np.ascontiguousarray(getattr(v, "codes", v)).tobytes())
    h.update(np.ascontiguousarray(m.trip_arrive_s).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("dispatcher", ["immediate", "batch", "pooling"])
def test_same_seed_same_outputs_whatever_the_threads(dispatcher):
    import numba

    sc = _scenario({"fleet_size": 8, "dispatcher": dispatcher, "rebalancing": "min_cost_flow",
                    "rebalance_period_s": 1800, "zone_m": 500}, residents=300,
                    replanning={"iterations": 2})
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = _digest(_run(sc))
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = _digest(_run(sc))
    finally:
        numba.set_num_threads(before)
    assert a == b


def test_maas_mode_without_section_is_a_clear_error():
    with pytest.raises(ValueError, match="no maas: section"):
        sc = scenario_from_dict({"name": "x", "map": {"source": "helsinki"}, "population": {"residents": 10},
                                 "modes": {"available": ["walk", "maas"]}})
        CityModel(sc)


def test_maas_sweep_identical_serial_and_ray(tmp_path):
    """A fleet-size × dispatcher sweep: the KPI table and every run's requests table are the same
    from the serial executor and from Ray with 2 workers."""
    import pyarrow.parquet as pq
    import yaml

    from twin.sweep import expand_runs, load_experiment, run_sweep

    base = _scenario({"fleet_size": 6}, residents=300).model_dump(mode="json")
    base["output"] = {"events": False, "geopackage": False, "report": False, "timeseries": False}
    exp = {"name": "maas_t", "scenario": base, "seed": 3, "replicates": 1,
           "axes": [{"grid": {"maas.operators.0.fleet_size": [3, 6],
                              "maas.operators.0.dispatcher": ["batch", "pooling"]}}]}
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(exp))
    e, b = load_experiment(p)
    runs = expand_runs(e, b)
    s = run_sweep(e, runs, tmp_path / "serial", executor="serial")
    r = run_sweep(e, runs, tmp_path / "ray", executor="ray", workers=2)
    assert s.ran == r.ran == 4 and s.failed == r.failed == 0

    def content(path):  # NaN == NaN here
        import json

        return json.dumps(pq.read_table(path).to_pydict(), default=str)

    assert content(tmp_path / "serial" / "kpis.parquet") == content(tmp_path / "ray" / "kpis.parquet")
    for run in sorted((tmp_path / "serial" / "runs").iterdir()):
        assert content(run / "maas_requests.parquet") == \
            content(tmp_path / "ray" / "runs" / run.name / "maas_requests.parquet")


def test_run_folder_has_the_fleet_tables_and_report_section(tmp_path):
    from twin.run import run_scenario

    sc = _scenario({"fleet_size": 5, "dispatcher": "batch"}, residents=200)
    sc = sc.model_copy(update={"output": sc.output.model_copy(update={"geopackage": False})})
    res = run_scenario(sc, tmp_path / "run")
    for name in ("maas_requests", "maas_vehicles", "maas_charging", "maas_fleet"):
        assert (res.out_dir / f"{name}.parquet").is_file()
    html = (res.out_dir / "report.html").read_text()
    assert "MaaS fleets" in html and "Fleet state over the day" in html
    assert res.kpis["maas_requests"] > 0


def test_surge_raises_fares_where_requests_exceed_idle_vehicles():
    """Surge pricing: none on the first day; on the second, fares of zones and hours whose requests
    outnumbered idle vehicles the day before rise (up to the cap), and the rest stay."""
    sc = _scenario({"fleet_size": 3, "dispatcher": "batch",
                    "surge": {"zone_m": 800, "sensitivity": 0.5, "max_multiplier": 1.8}},
                   residents=400, replanning={"iterations": 2})
    m = CityModel(sc)
    dom = m.domain("maas")
    while m.iteration == 0 and m.running:
        m.step()
    assert dom.surge[0] is not None
    mult = dom.surge[0]
    assert mult.min() >= 1.0 and mult.max() <= 1.8 + 1e-12 and mult.max() > 1.0
    while m.running:
        m.step()
    rq = dom.request_columns()
    mode = dom.mode
    base = mode.fare(dom.config.operators[0], rq["trip_id"])  # without surge
    charged = rq["fare"][~rq["rejected"] & ~rq["shared"]]
    ratio = charged / base[~rq["rejected"] & ~rq["shared"]]
    assert ratio.min() >= 1.0 - 1e-12 and ratio.max() > 1.0 and ratio.max() <= 1.8 + 1e-9


@pytest.mark.parametrize(("extra", "needle"), [
    ({}, "modes.available: lists maas, but the scenario has no maas: section"),
    ({"maas": {"operators": [{"name": "a", "depots": [{"osmid": 12345}]}]}},
     "maas.operators.0.depots.0.osmid: OSM node 12345 is not on the drive network"),
    ({"maas": {"operators": [{"name": "a", "service_area": [[0, 0], [0.1, 0], [0.1, 0.1]]}]}},
     "maas.operators.0.service_area: holds no node"),
])
def test_bad_maas_input_is_one_line_exit_2(tmp_path, extra, needle):
    import yaml
    from typer.testing import CliRunner

    from twin.cli import app

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"name": "bad", "map": {"source": "helsinki"}, "population": {"residents": 50},
                                 "modes": {"available": ["walk", "maas"]}, **extra}))
    res = CliRunner().invoke(app, ["validate", str(f)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and str(f) in lines[0] and needle in lines[0], res.output
