"""The energy domain on a real map (Helsinki, a full day at 15-minute intervals): the meter balance of
every building at every step, battery limits at every step, smart charging against uncontrolled,
EV energy against the kilometres driven, the occupancy coupling, determinism, validation, and
the arrays-only parts (water level, feeders) against brute force; outages (timeline events): islanded
buildings, unserved energy and the hours batteries keep the power on, against an independent
recomputation from the step records."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from twin.model import CityModel
from twin.scenario import ScenarioError, scenario_from_dict

DT_H = 0.25


def scenario(*, residents=1500, energy=None, demand=None, population=None, seed=5, timeline=None):
    d = {"name": "energy", "seed": seed, "map": {"source": "helsinki"}, "timeline": timeline or [],
         "population": {"residents": residents, "sample_share": 0.1, **(population or {})},
         "simulation": {"start_s": 0, "end_s": "24:00", "record_interval_s": 300},
         "output": {"events": False, "geopackage": False, "report": False},
         "energy": energy or {}}
    if demand:
        d["demand"] = demand
    return scenario_from_dict(d)


def run(sc, subscribe=(), on_step=None):
    m = CityModel(sc)
    seen = {name: [] for name in subscribe}
    for name in subscribe:
        def keep(batch, name=name):
            seen[name].append({k: np.array(v, copy=True) for k, v in batch.columns.items()})
            if on_step is not None and name == "energy_building_step":
                on_step(m, batch.columns)
        m.events.subscribe(name, keep)
    m.run()
    return m, m.domain("energy"), seen


#: an outage over the evening on feeder 0 and around a point in the centre, and a short one at noon (PV surplus)
OUTAGES = [{"type": "outage", "at_s": "12:00", "duration_s": "01:00", "points": [[24.945, 60.168]], "radius_m": 250},
           {"type": "outage", "at_s": "17:00", "until_s": "21:00", "feeders": [0]}]


@pytest.fixture(scope="module", params=["self_consumption", "peak_shaving", "tou_arbitrage", "peak_shaving+outage"])
def battery_run(request):
    policy = request.param.split("+")[0]
    energy = {"pv": {"adoption": 0.6}, "battery": {"adoption": 1.0, "policy": policy},
              "ev": {"share": 0.5}}
    if policy == "tou_arbitrage":
        energy["tariff"] = {"import_per_kwh": [0.1] * 6 + [0.3] * 16 + [0.2] * 2}
    timeline = OUTAGES if request.param.endswith("+outage") else None
    m, en, seen = run(scenario(energy=energy, timeline=timeline), subscribe=("energy_building_step",))
    return request.param, m, en, seen["energy_building_step"]


def check_balance(s):
    """The meter balance of every building in one step record, ``load = import − export + pv − curtailed +
    discharge − charge + unserved``, and the on-site one; returns the worst relative residual."""
    load, pv, c, d, imp, exp, used, cut, uns = (s[k] for k in (
        "load_kw", "pv_kw", "charge_kw", "discharge_kw", "import_kw", "export_kw", "pv_used_kw", "curtailed_kw",
        "unserved_kw"))
    scale = np.maximum.reduce([load, pv, c, d, np.ones_like(load)])
    meter = load - (imp - exp + pv - cut + d - c + uns)
    site = load - (imp + used + d - c + uns)
    assert np.all(np.abs(meter) <= 1e-12 * scale) and np.all(np.abs(site) <= 1e-12 * scale)
    assert np.all(np.abs(pv - cut - used - exp) <= 1e-12 * scale)
    assert np.all((imp == 0) | (exp == 0)) and np.all((c == 0) | (d == 0))
    assert min(a.min() for a in (load, pv, imp, exp, used, c, d, cut, uns)) >= 0.0
    isl = s["islanded"]
    # islanded buildings have no grid; the others curtail nothing and serve all their load
    assert np.all(imp[isl] == 0) and np.all(exp[isl] == 0)
    assert np.all(cut[~isl] == 0) and np.all(uns[~isl] == 0)
    # unserved only when PV and the battery together fall short; curtailed only when the battery takes no more
    assert np.all((uns == 0) | (c == 0)) and np.all((cut == 0) | (uns == 0))
    return float(np.max(np.abs(meter) / scale))


def test_energy_balance_exact_every_step_every_building(battery_run):
    policy, m, en, steps = battery_run
    assert len(steps) == 96 and steps[0]["t_s"][0] == 0.0 and steps[-1]["t_s"][0] == 86400.0 - 900.0
    worst = 0.0
    for s in steps:
        assert s["building"].size == en.n
        worst = max(worst, check_balance(s))
    islanded = np.array([s["islanded"].sum() for s in steps])
    if policy.endswith("+outage"):
        assert islanded[48:52].min() > 0 and islanded[68:84].min() > 0
        assert islanded[:48].max() == islanded[52:68].max() == islanded[84:].max() == 0
        assert m.kpis()["energy_unserved_kwh"] > 0 and m.kpis()["energy_curtailed_kwh"] > 0
    else:
        assert islanded.max() == 0 and m.kpis()["energy_unserved_kwh"] == 0 == m.kpis()["energy_curtailed_kwh"]
    # the day's sums agree with the KPIs
    k = m.kpis()
    imp_kwh = sum(float(s["import_kw"].sum()) for s in steps) * DT_H
    assert k["energy_import_kwh"] == pytest.approx(imp_kwh, abs=0.01)
    assert k["energy_intervals"] == 96 and k["energy_pv_kwh"] > 0 and k["energy_batteries"] > 0
    print(f"{policy}: worst relative meter residual {worst:.2e} over 96 steps × {en.n} buildings")


def test_batteries_never_exceed_their_limits(battery_run):
    policy, _, en, steps = battery_run
    bc = en.config.battery
    e_kwh, p_kw = en.battery_kwh, en.battery_kw
    eta = np.sqrt(bc.efficiency_rt)
    soc = np.full(en.n, bc.soc_initial)
    charged = discharged = 0.0
    for s in steps:
        c, d, new = s["charge_kw"], s["discharge_kw"], s["soc"]
        tol = 1e-9 * np.maximum(p_kw, 1.0)
        assert np.all(c <= p_kw + tol) and np.all(d <= p_kw + tol)
        assert np.all((e_kwh > 0) | ((c == 0) & (d == 0)))
        assert np.all(new >= bc.soc_min - 1e-12) and np.all(new <= bc.soc_max + 1e-12)
        # the stored energy changes by exactly what was charged and discharged (so no energy limit is broken)
        has = e_kwh > 0
        np.testing.assert_allclose(((new - soc) * e_kwh)[has], ((eta * c - d / eta) * DT_H)[has], atol=1e-9)
        # never discharging beyond the building's demand (batteries do not export)
        assert np.all(d <= s["load_kw"] - np.minimum(s["pv_kw"], s["load_kw"]) + 1e-9)
        soc = new
        charged += float(c.sum()) * DT_H
        discharged += float(d.sum()) * DT_H
    assert charged > 0 and discharged > 0, f"{policy}: the batteries did nothing"
    if policy == "peak_shaving":
        thr = bc.threshold_share * en.day_profiles()[0].max(axis=0)
        # charging never lifts the import above the threshold (nor above the net load when that is higher)
        for s in steps:
            assert np.all(s["import_kw"] <= np.maximum(thr, s["load_kw"] - s["pv_kw"]) + 1e-9)


def test_cost_and_co2_follow_the_tariff_series(battery_run):
    _, m, en, _ = battery_run
    ser = en.tables(m._ctx["energy"])["energy_series"]
    cfg = en.config.tariff
    hour = (ser["t_s"] // 3600).astype(int)
    price = np.asarray(cfg.import_per_kwh)[hour] if isinstance(cfg.import_per_kwh, tuple) else cfg.import_per_kwh
    np.testing.assert_allclose(ser["price"], price)
    k = m.kpis()
    cost = float((ser["import_kw"] * price - ser["export_kw"] * cfg.export_per_kwh).sum() * DT_H)
    assert k["energy_cost"] == pytest.approx(cost, abs=0.01)
    co2_kg = float(ser["import_kw"].sum() * DT_H * cfg.co2_g_per_kwh / 1000)
    assert k["energy_co2_kg"] == pytest.approx(co2_kg, abs=0.01)
    assert k["energy_pv_self_consumption"] == pytest.approx(ser["pv_used_kw"].sum() / ser["pv_kw"].sum(), abs=1e-4)


EV_KWH_PER_KM = 0.18  # the default consumption
#: every driver's car electric; cars start the day at their target (the steady state: they charge what they drive)
EV = {"share": 1.0, "soc_initial": 0.8, "soc_target": 0.8, "charger_kw": 11.0}


def ev_energy(policy, **ev):
    return {"pv": {"adoption": 0.3}, "battery": {"adoption": 0.0}, "ev": {**EV, "policy": policy, **ev},
            "feeders": {"buildings_per_feeder": 60}}


@pytest.fixture(scope="module")
def ev_runs():
    return {policy: run(scenario(energy=ev_energy(policy), residents=2000), subscribe=("energy_car_step",))
            for policy in ("uncontrolled", "smart", "delayed")}


def test_smart_charging_lowers_the_peak_feeder_load(ev_runs):
    k = {p: r[0].kpis() for p, r in ev_runs.items()}
    fs = {p: r[1].system.feeder_kw.max(axis=0) for p, r in ev_runs.items()}
    print("feeder peaks (kW): " + "; ".join(
        f"{p} {np.round(v).astype(int).tolist()} (max {k[p]['energy_peak_feeder_kw']:,.0f}, sum {v.sum():,.0f}, "
        f"EV {k[p]['energy_ev_charged_kwh']:,.0f} kWh, overload {k[p]['energy_overload_h']} feeder-h)"
        for p, v in fs.items()))
    # smart never raises a feeder's peak, and lowers the peaks of the feeders where cars charge at the peak
    assert np.all(fs["smart"] <= fs["uncontrolled"] + 1e-6)
    assert fs["smart"].sum() < fs["uncontrolled"].sum()
    assert k["smart"]["energy_peak_feeder_kw"] <= k["uncontrolled"]["energy_peak_feeder_kw"]
    ev_at_peak = ev_runs["uncontrolled"][1].system.feeder_ev_kw[
        np.argmax(ev_runs["uncontrolled"][1].system.feeder_kw, axis=0), np.arange(fs["smart"].size)] > 0
    assert ev_at_peak.any() and np.all(fs["smart"][ev_at_peak] < fs["uncontrolled"][ev_at_peak])
    # the same energy, delivered by the end of the day
    assert k["smart"]["energy_ev_charged_kwh"] == pytest.approx(k["uncontrolled"]["energy_ev_charged_kwh"], rel=1e-6)
    # delayed charging starts every car at once: a new peak at 22:00
    assert k["delayed"]["energy_peak_feeder_kw"] > k["uncontrolled"]["energy_peak_feeder_kw"]


def test_smart_charging_lowers_the_city_peak_when_cars_need_much():
    """Cars starting the day at 60 % (a day's driving short of the target 80 %): uncontrolled charging
    adds some 120 MWh at once at midnight; smart spreads it over the day's valleys."""
    peaks = {}
    for policy in ("uncontrolled", "smart"):
        m, _, _ = run(scenario(energy=ev_energy(policy, soc_initial=0.6), residents=2000))
        peaks[policy] = (m.kpis()["energy_peak_feeder_kw"], m.kpis()["energy_ev_charged_kwh"],
                         m.kpis()["energy_overload_h"])
    print(f"peak feeder load, cars at 60 %: uncontrolled {peaks['uncontrolled'][0]:,.0f} kW, smart "
          f"{peaks['smart'][0]:,.0f} kW (EV {peaks['smart'][1]:,.0f} kWh; overload feeder-h "
          f"{peaks['uncontrolled'][2]} vs {peaks['smart'][2]})")
    assert peaks["smart"][0] < 0.5 * peaks["uncontrolled"][0]
    assert peaks["smart"][1] == pytest.approx(peaks["uncontrolled"][1], rel=1e-6)


def test_ev_energy_charged_is_driven_plus_change_in_stored(ev_runs):
    from twin.domains.mobility.mode_choice import CAR

    for policy, (m, en, seen) in ev_runs.items():
        steps = seen["energy_car_step"]
        assert len(steps) == 96
        charge = np.sum([s["charge_kw"] for s in steps], axis=0) * DT_H
        driven = np.sum([s["driven_kwh"] for s in steps], axis=0)
        s_ = en.system
        np.testing.assert_allclose(charge, driven + (s_.car_stored_kwh - s_.car_start_kwh), atol=1e-9)
        # the energy driven, from the mobility domain's own trips: every EV car trip that arrived, once
        mob = m.mobility
        person = mob.trips.person
        ev_trip = (mob.trip_mode == CAR) & (mob.trip_state == 2) & (en.car_of[person] >= 0)
        per_car = np.bincount(en.car_of[person[ev_trip]], weights=mob.trip_car_m[ev_trip] / 1000 * EV_KWH_PER_KM,
                              minlength=en.car_resident.size)
        np.testing.assert_allclose(driven, per_car, atol=1e-9)
        assert driven.sum() > 0
        # charging only while plugged in at home, within the charger's power, never past the target
        for s in steps:
            plugged = s["building"] >= 0
            assert np.all(s["charge_kw"][~plugged] == 0) and np.all(s["charge_kw"] <= EV["charger_kw"] + 1e-9)
            assert np.all(s["building"][plugged] == en.home_b[en.car_resident[plugged]])
            assert np.all(s["stored_kwh"] <= EV["soc_target"] * 60.0 + 1e-9) and np.all(s["stored_kwh"] > 0)
        if policy == "delayed":
            early = np.array([s["charge_kw"].sum() for s in steps[: 22 * 4]])
            assert np.all(early == 0)
        print(f"{policy}: charged {charge.sum():.2f} kWh = driven {driven.sum():.2f} + Δstored "
              f"{(s_.car_stored_kwh - s_.car_start_kwh).sum():.2f} (per sampled car)")


def test_work_chargers_serve_cars_driven_to_work():
    from twin.demand import HOME, WORK
    from twin.domains.mobility.mode_choice import CAR
    from twin.locations import AT_ACTIVITY

    expected_plug = []

    def where_plugged(m, batch):  # from the location query, at the moment the domain ran
        en = m.domain("energy")
        loc = m.locations()
        r = en.car_resident
        trip = loc.trip_id[r]
        by_car = (trip >= 0) & (m.mobility.trip_mode[np.maximum(trip, 0)] == CAR)
        at = loc.state[r] == AT_ACTIVITY
        home = at & (loc.activity[r] == HOME) & (loc.building[r] == en.home_b[r])
        work = at & (loc.activity[r] == WORK) & (loc.building[r] == en.work_b[r]) & by_car
        expected_plug.append(np.where(home, en.home_b[r], np.where(work, en.work_b[r], -1)))

    energy = {"ev": {**EV, "work_charging": True, "soc_initial": 0.7}, "battery": {"adoption": 0.0}}
    _, en, seen = run(scenario(energy=energy, residents=2000), subscribe=("energy_building_step", "energy_car_step"),
                      on_step=where_plugged)
    steps = seen["energy_car_step"]
    assert len(steps) == len(expected_plug) == 96
    for s, want in zip(steps, expected_plug):
        np.testing.assert_array_equal(s["building"], want)
    home_b = en.home_b[en.car_resident]
    at_work = [(s["building"] >= 0) & (s["building"] != home_b) for s in steps]
    assert max(int(w.sum()) for w in at_work) > 0
    assert sum(float(s["charge_kw"][w].sum()) for s, w in zip(steps, at_work)) > 0


STAY_HOME = {"shop_after_work": 0.0, "errand_share": 0.0, "evening_leisure": 0.0}
NOBODY_OUT = {"employment_rate": 0.0, "senior_employment_rate": 0.0, "adult_student_rate": 0.0, "child_share": 0.0}


def test_staying_home_raises_residential_load_by_the_occupancy_effect():
    from twin.demand import HOME
    from twin.locations import AT_ACTIVITY

    effect = 0.5
    energy = {"occupancy": {"effect": effect}, "pv": {"adoption": 0.0}, "battery": {"adoption": 0.0},
              "ev": {"share": 0.0}}
    checked = []

    def independent_count(m, batch):
        # the occupancy the domain used, against a count of who is at home right now
        loc = m.locations()
        en = m.domain("energy")
        home = (loc.state == AT_ACTIVITY) & (loc.activity == HOME)
        at_home = np.bincount(m.pop.home_building[home], minlength=en.n)
        res = en.residents
        sel = en.is_home & (res > 0)
        np.testing.assert_array_equal(batch["occupancy"][sel], at_home[sel] / res[sel])
        checked.append(1)

    runs = {}
    for name, dem, pop in (("normal", None, None), ("home", STAY_HOME, NOBODY_OUT)):
        m, en, seen = run(scenario(energy=energy, demand=dem, population=pop), subscribe=("energy_building_step",),
                          on_step=independent_count)
        runs[name] = (m, en, seen["energy_building_step"])
    assert runs["home"][0].mobility.trips.n == 0, "somebody left home"
    en, eh = runs["normal"][1], runs["home"][1]
    base = en.day_profiles()[0]
    # homes of both days with the same standard load (OSM footprints; synthetic ones are sized by their people)
    res = (en.is_home & eh.is_home & (en.residents > 0) & (eh.residents > 0) & (en.footprint_m2 > 0)
           & (en.annual_kwh == eh.annual_kwh))
    assert res.sum() > 20 and len(checked) == 2 * 96
    energy_kwh = {}
    for name, (_, e, steps) in runs.items():
        base = e.day_profiles()[0]
        for k, s in enumerate(steps):
            exp = s["expected"]
            want = base[k] * np.maximum(1 + effect * (s["occupancy"] - exp) / np.maximum(exp, 0.05), 0)
            np.testing.assert_allclose(s["load_kw"], want, rtol=1e-12)
            if name == "home":
                assert np.all(s["occupancy"][res] == 1.0)
        energy_kwh[name] = sum(float(s["load_kw"][res].sum()) for s in steps) * DT_H
    # the rise predicted from the normal day's occupancy and the effect
    steps = runs["normal"][2]
    base = en.day_profiles()[0]
    predicted = sum(float((base[k] * effect * (1.0 - s["occupancy"]) / np.maximum(s["expected"], 0.05))[res].sum())
                    for k, s in enumerate(steps)) * DT_H
    rise = energy_kwh["home"] - energy_kwh["normal"]
    print(f"residential energy: normal {energy_kwh['normal']:,.0f} kWh, everyone home {energy_kwh['home']:,.0f} kWh "
          f"(+{100 * rise / energy_kwh['normal']:.1f} %, predicted +{predicted:,.0f} kWh)")
    assert rise > 0.05 * energy_kwh["normal"]
    assert rise == pytest.approx(predicted, rel=1e-9)
    # non-residential buildings with workers lose load when nobody works
    work = ~en.is_home & ~eh.is_home & (en.workers > 0) & (en.annual_kwh == eh.annual_kwh)
    assert work.sum() > 0
    assert sum(float(s["load_kw"][work].sum()) for s in runs["home"][2]) < sum(
        float(s["load_kw"][work].sum()) for s in runs["normal"][2])


def test_same_seed_same_bytes(tmp_path):
    from twin._tables import write_table

    energy = {"ev": {"share": 0.5, "policy": "smart"}, "battery": {"adoption": 1.0}}
    out = []
    for i in range(2):
        m, en, _ = run(scenario(energy=energy, residents=600))
        d = tmp_path / str(i)
        d.mkdir()
        for stem, cols in en.tables(m._ctx["energy"]).items():
            write_table(cols, d / f"{stem}.parquet")
        out.append({p.name: p.read_bytes() for p in sorted(d.iterdir())})
        out[-1]["kpis"] = repr(sorted(en.kpis(None).items())).encode()
    assert out[0] == out[1]
    assert set(out[0]) >= {"energy_series.parquet", "energy_buildings.parquet", "energy_cars.parquet",
                           "energy_feeders.parquet", "energy_feeder_series.parquet"}


def test_report_section_reads_the_tables():
    from twin.domains.energy.report import energy_section

    m, en, _ = run(scenario(energy={"ev": {"share": 0.5}}, residents=600))
    tables = {f"{k}.parquet": {c: (v.to_numpy() if hasattr(v, "categories") else np.asarray(v)) for c, v in t.items()}
              for k, t in en.tables(m._ctx["energy"]).items()}

    class Ctx:
        kpis = m.kpis()

        def table(self, name, columns=None):
            return tables.get(name)

    html = energy_section(Ctx())
    assert html is not None and html.count("<svg") == 3
    for title in ("Feeder load", "City load, PV and grid exchange", "Batteries"):
        assert title in html
    assert "energy-feeders" in html and "PV self-consumption" in html

    class Empty(Ctx):
        def table(self, name, columns=None):
            return None

    assert energy_section(Empty()) is None


def test_report_has_the_buildings_by_peak_load_map(tmp_path):
    """A run folder's report: the map of buildings coloured by peak import, one circle per building
    on the map, the feeders' substations, classes at the peaks' 50/80/95th percentiles."""
    import re

    import pyarrow.parquet as pq

    from twin.domains.energy.report import peak_classes
    from twin.run import run_scenario

    sc = scenario(residents=400)
    sc = sc.model_copy(update={"output": sc.output.model_copy(update={"report": True})})
    run_scenario(sc, tmp_path / "run")
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Buildings by peak load" in html
    fig = html[html.index('data-map="energy-peak"'):]
    fig = fig[:fig.index("</figure>")]
    b = pq.read_table(tmp_path / "run" / "energy_buildings.parquet").to_pydict()
    n = int(re.search(r'data-buildings="(\d+)"', html).group(1))
    assert 0.9 * len(b["building_osmid"]) <= n <= len(b["building_osmid"])
    assert fig.count("<circle data-osmid=") == n
    assert fig.count("<rect data-feeder=") == len(pq.read_table(tmp_path / "run" / "energy_feeders.parquet"))
    cls, breaks = peak_classes(np.asarray(b["peak_import_kw"]))
    assert np.all(np.diff(breaks) >= 0) and set(np.unique(cls).tolist()) <= {0, 1, 2, 3}
    assert np.mean(cls == 3) <= 0.06  # the top class is the top 5 %


# --------------------------------------------------------------------------------------- outages
OUT_FEEDER = 2
#: feeder 2 cut off over the evening, 18:00 to 22:00: intervals 72 to 87
EVENING = [{"type": "outage", "at_s": "18:00", "duration_s": "04:00", "feeders": [OUT_FEEDER]}]
K0, K1 = 72, 88
OUT_ENERGY = {"pv": {"adoption": 0.6}, "battery": {"adoption": 0.5}, "ev": {"share": 0.5},
              "feeders": {"buildings_per_feeder": 60}}


@pytest.fixture(scope="module")
def outage_runs():
    """The same day without and with the evening outage (building and car step records)."""
    subscribe = ("energy_building_step", "energy_car_step")
    return {name: run(scenario(energy=OUT_ENERGY, timeline=tl), subscribe=subscribe)
            for name, tl in (("base", None), ("outage", EVENING))}


def test_outage_islands_the_feeder_over_its_window(outage_runs):
    m, en, seen = outage_runs["outage"]
    steps = seen["energy_building_step"]
    area = en.feeder == OUT_FEEDER
    assert 20 < area.sum() < en.n
    for k, s in enumerate(steps):
        np.testing.assert_array_equal(s["islanded"], area if K0 <= k < K1 else np.zeros(en.n, bool))
        check_balance(s)
    # the islanded feeder exchanges nothing with the grid while it is out
    assert np.all(en.system.feeder_kw[K0:K1, OUT_FEEDER] == 0.0) and np.all(en.system.feeder_kw[:K0, OUT_FEEDER] != 0)
    t = en.tables(m._ctx["energy"])
    b = t["energy_buildings"]
    np.testing.assert_array_equal(b["islanded_h"], np.where(area, 4.0, 0.0))
    ser = t["energy_series"]
    for col in ("unserved_kw", "curtailed_kw"):
        np.testing.assert_allclose(ser[col], [float(s[col].sum()) for s in steps], rtol=1e-12)
        assert np.all(ser[col][:K0] == 0) and np.all(ser[col][K1:] == 0)
    k = m.kpis()
    assert k["energy_outage_buildings"] == int(area.sum())
    assert k["energy_unserved_kwh"] == pytest.approx(b["unserved_kwh"].sum(), abs=0.01)
    assert k["energy_curtailed_kwh"] == pytest.approx(b["curtailed_kwh"].sum(), abs=0.01)
    assert k["energy_outage_buildings_kept_power"] == int((area & (b["kept_power_h"] == 4.0)).sum())


def test_outage_unserved_energy_and_kept_power_against_an_independent_recomputation(outage_runs):
    """Replay the outage per building from the step records: the load and PV each step, the battery's
    state of charge just before the outage and its limits (power rating, the energy above soc_min and
    the room below soc_max, the efficiencies) give discharge, charge, unserved and curtailed energy."""
    m, en, seen = outage_runs["outage"]
    steps = seen["energy_building_step"]
    bc = en.config.battery
    area = en.feeder == OUT_FEEDER
    e_kwh, p_kw, eta = en.battery_kwh, en.battery_kw, np.sqrt(bc.efficiency_rt)
    soc = steps[K0 - 1]["soc"].copy()
    unserved = np.zeros(en.n)
    curtailed = np.zeros(en.n)
    kept_h = np.zeros(en.n)
    first_short = np.full(en.n, K1)
    for k in range(K0, K1):
        s = steps[k]
        net = s["load_kw"] - s["pv_kw"]
        max_d = np.minimum(p_kw, (soc - bc.soc_min) * e_kwh * eta / DT_H)
        max_c = np.minimum(p_kw, (bc.soc_max - soc) * e_kwh / (eta * DT_H))
        d = np.where(net > 0, np.minimum(net, max_d), 0.0)
        c = np.where(net < 0, np.minimum(-net, max_c), 0.0)
        u = np.where(net > 0, net - d, 0.0)
        cut = np.where(net < 0, -net - c, 0.0)
        for name, want in (("discharge_kw", d), ("charge_kw", c), ("unserved_kw", u), ("curtailed_kw", cut)):
            np.testing.assert_allclose(s[name][area], want[area], atol=1e-9, err_msg=f"{name} at interval {k}")
        soc = np.where(e_kwh > 0, soc + (eta * c - d / eta) * DT_H / np.maximum(e_kwh, 1e-300), soc)
        np.testing.assert_allclose(s["soc"][area], soc[area], atol=1e-12)
        unserved += u * DT_H
        curtailed += cut * DT_H
        served = s["unserved_kw"] == 0
        kept_h += np.where(area & served, DT_H, 0.0)
        first_short = np.where(area & ~served & (first_short == K1), k, first_short)
    b = en.tables(m._ctx["energy"])["energy_buildings"]
    np.testing.assert_allclose(b["unserved_kwh"], np.where(area, unserved, 0.0), atol=1e-9)
    np.testing.assert_allclose(b["curtailed_kwh"], np.where(area, curtailed, 0.0), atol=1e-9)
    np.testing.assert_array_equal(b["kept_power_h"], kept_h)
    # buildings with neither PV nor a battery: everything they draw during the outage is unserved
    bare = area & (en.kwp == 0)
    load_out = np.sum([steps[k]["load_kw"] for k in range(K0, K1)], axis=0) * DT_H
    assert bare.sum() > 5
    np.testing.assert_allclose(b["unserved_kwh"][bare], load_out[bare], rtol=1e-12)
    assert np.all(b["kept_power_h"][bare & (load_out > 0)] == 0)
    # batteries keep the power on for as long as their energy lasts: served from the start, and once a
    # building goes short its battery was giving all it could (at its floor or its power rating)
    bat = area & (e_kwh > 0)
    assert bat.sum() > 5
    for k in range(K0, K1):
        s, before = steps[k], steps[k - 1]
        short = bat & (s["unserved_kw"] > 0)
        max_d = np.minimum(p_kw, (before["soc"] - bc.soc_min) * e_kwh * eta / DT_H)
        np.testing.assert_allclose(s["discharge_kw"][short], max_d[short], rtol=1e-12, atol=1e-12)
    lasted_h = (first_short - K0) * DT_H
    full = bat & (first_short == K1)
    assert full.any() and (bat & ~full).any(), "no battery ran out (or none lasted): choose another evening"
    # the energy a battery that ran out gave: at most its stored energy above soc_min (plus what PV charged)
    soc0 = steps[K0 - 1]["soc"]
    gave = np.sum([steps[k]["discharge_kw"] for k in range(K0, K1)], axis=0) * DT_H
    charged = np.sum([steps[k]["charge_kw"] for k in range(K0, K1)], axis=0) * DT_H
    assert np.all(gave[bat] <= ((soc0 - bc.soc_min) * e_kwh * eta + charged * bc.efficiency_rt)[bat] + 1e-9)
    k = m.kpis()
    print(f"outage 18:00-22:00 on feeder {OUT_FEEDER}: {int(area.sum())} buildings ({int(bare.sum())} without PV or "
          f"battery, {int(bat.sum())} with a battery); unserved {k['energy_unserved_kwh']:,.1f} kWh, curtailed "
          f"{k['energy_curtailed_kwh']:,.1f} kWh; kept power all 4 h: {k['energy_outage_buildings_kept_power']}; "
          f"batteries lasted (h): {sorted(lasted_h[bat].tolist())}")


def test_outage_changes_nothing_outside_its_area_and_window(outage_runs):
    _, eb, base = outage_runs["base"]
    m, en, out = outage_runs["outage"]
    area = en.feeder == OUT_FEEDER
    np.testing.assert_array_equal(eb.feeder, en.feeder)
    cols = ("load_kw", "ev_kw", "pv_kw", "charge_kw", "discharge_kw", "soc", "import_kw", "export_kw", "pv_used_kw",
            "occupancy")
    for k, (a, b) in enumerate(zip(base["energy_building_step"], out["energy_building_step"])):
        sel = ~area if k >= K0 else np.ones(en.n, bool)
        for c in cols:
            assert a[c][sel].tobytes() == b[c][sel].tobytes(), (k, c)
    # the tables' rows of the buildings outside the area: the same bytes
    ta = eb.tables(outage_runs["base"][0]._ctx["energy"])["energy_buildings"]
    tb = en.tables(m._ctx["energy"])["energy_buildings"]
    for c in ("load_kwh", "pv_kwh", "pv_used_kwh", "import_kwh", "export_kwh", "peak_import_kw", "soc_end"):
        assert ta[c][~area].tobytes() == tb[c][~area].tobytes(), c
    assert np.all(ta["unserved_kwh"] == 0) and np.all(tb["unserved_kwh"][~area] == 0)
    # the other feeders' load is unchanged
    others = np.arange(en.n_feeders) != OUT_FEEDER
    assert eb.system.feeder_kw[:, others].tobytes() == en.system.feeder_kw[:, others].tobytes()
    # cars plugged in at islanded buildings wait and charge after the outage
    cars_a, cars_b = base["energy_car_step"], out["energy_car_step"]
    waited = np.zeros(en.car_resident.size, bool)
    for k in range(K0, K1):
        at = (cars_b[k]["building"] >= 0) & area[np.maximum(cars_b[k]["building"], 0)]
        assert np.all(cars_b[k]["charge_kw"][at] == 0)
        waited |= at & (cars_a[k]["charge_kw"] > 0)
    assert waited.any()
    after_a = np.sum([s["charge_kw"] for s in cars_a[K1:]], axis=0)
    after_b = np.sum([s["charge_kw"] for s in cars_b[K1:]], axis=0)
    assert after_b[waited].sum() > after_a[waited].sum()


def test_outage_around_points_islands_the_buildings_within_the_radius():
    from twin.domains.energy.domain import outage_intervals

    lon, lat, r = 24.945, 60.168, 300.0
    tl = [{"type": "outage", "at_s": "19:10", "duration_s": 1800, "points": [[lon, lat]], "radius_m": r}]
    m, _, seen = run(scenario(energy={"ev": {"share": 0.0}}, residents=600, timeline=tl),
                      subscribe=("energy_building_step",))
    b = m.network.buildings
    # haversine distances, independent of the domain's projection (which is within 0.1 % of them here)
    p1, p2 = np.radians(lat), np.radians(np.asarray(b.lat, float))
    dl = np.radians(np.asarray(b.lon, float) - lon)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    dist = 2 * 6371008.8 * np.arcsin(np.sqrt(h))
    isl = [s["islanded"] for s in seen["energy_building_step"]]
    # 19:10 to 19:40: the intervals with midpoints 19:22:30 and 19:37:30 (77, 78)
    assert outage_intervals(19 * 3600 + 600, 19 * 3600 + 2400) == (77, 79)
    assert [k for k, a in enumerate(isl) if a.any()] == [77, 78]
    area = isl[77]
    assert area.sum() > 10
    assert np.all(area[dist < 0.99 * r]) and not np.any(area[dist > 1.01 * r])
    assert m.kpis()["energy_outage_buildings"] == int(area.sum())


def test_outage_intervals_by_midpoint():
    from twin.domains.energy.domain import outage_intervals

    assert outage_intervals(18 * 3600, 22 * 3600) == (72, 88)
    assert outage_intervals(18 * 3600 + 450, 18 * 3600 + 1350) == (72, 73)  # a midpoint on each bound
    assert outage_intervals(18 * 3600 + 451, 18 * 3600 + 1349) == (73, 73)  # shorter than an interval: none
    assert outage_intervals(23 * 3600, 30 * 3600) == (92, 96)  # clipped to the day


@pytest.mark.parametrize(("event", "field"), [
    ({"at_s": "18:00", "duration_s": -600, "feeders": [0]}, "duration_s"),
    ({"at_s": "18:00", "duration_s": 0, "feeders": [0]}, "duration_s"),
    ({"at_s": "18:00", "feeders": [0]}, "either duration_s or until_s"),
    ({"at_s": "18:00", "duration_s": 600, "until_s": "19:00", "feeders": [0]}, "either duration_s or until_s"),
    ({"at_s": "18:00", "until_s": "17:00", "feeders": [0]}, "until_s"),
    ({"at_s": "18:00", "duration_s": 600}, "needs an area"),
    ({"at_s": "18:00", "duration_s": 600, "points": [[24.9, 60.2]]}, "radius_m"),
    ({"at_s": "18:00", "duration_s": 600, "feeders": [-1]}, "feeders"),
    ({"at_s": "18:00", "duration_s": 600, "points": [[60.2, 124.9]], "radius_m": 100}, "points"),
    ({"at_s": "18:00", "duration_s": 600, "feeder": [0]}, "feeder"),
])
def test_bad_outage_names_the_field(event, field):
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({"energy": {}, "timeline": [{"type": "outage", **event}]})
    assert field in str(exc.value) and "timeline" in str(exc.value)


def test_outage_on_an_unknown_feeder_is_refused_before_the_run():
    from twin.preflight import check_runnable

    tl = [{"type": "outage", "at_s": "18:00", "duration_s": 600, "feeders": [1, 3]}]
    sc = scenario(energy={}, timeline=tl)  # 471 buildings / 150 per feeder: feeders 0 to 2
    with pytest.raises(ScenarioError) as exc:
        check_runnable(sc, "s.yaml")
    msg = str(exc.value)
    assert "timeline.0.feeders" in msg and "unknown feeder id 3" in msg and "ids 0 to 2" in msg
    with pytest.raises(ValueError, match=r"timeline\.0\.feeders: unknown feeder id 3"):
        CityModel(sc)
    # an outage needs the energy section
    d = sc.model_dump(mode="json")
    del d["energy"]
    with pytest.raises(ScenarioError, match=r"timeline\.0"):
        check_runnable(scenario_from_dict(d), "s.yaml")


def test_docs_outage_example_validates():
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[1] / "docs" / "energy.md").read_text()
    block = re.search(r"## Outages.*?```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    tl = yaml.safe_load(block.group(1))["timeline"]
    sc = scenario_from_dict({"energy": {}, "timeline": tl})
    assert [e.type for e in sc.timeline] == ["outage"] * len(tl) and len(tl) >= 2


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(("energy", "field"), [
    ({"pv": {"adoptoin": 0.2}}, "adoptoin"),
    ({"battery": {"soc_min": 0.5, "soc_initial": 0.2}}, "battery"),
    ({"tariff": {"import_per_kwh": [0.1, 0.2]}}, "import_per_kwh"),
    ({"battery": {"policy": "tou_arbitrage"}}, "tou_arbitrage"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"date": "2023-02-30"}, "date"),
    ({"ev": {"policy": "fast"}}, "ev.policy"),
    ({"occupancy": {"expected_home": [0.5] * 23}}, "expected_home"),
])
def test_bad_config_names_the_field(energy, field):
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({"energy": energy})
    assert field in str(exc.value)


def test_validation_imports_no_energy_library():
    code = ("import sys; from twin.scenario import scenario_from_dict; "
            "sc = scenario_from_dict({'energy': {'date': '2024-01-10', 'ev': {'policy': 'smart'}}}); "
            "assert sc.section('energy').date == '2024-01-10'; "
            "print(sorted(m for m in ('pvlib', 'pandapower', 'demandlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shipped_scenario_validates():
    from pathlib import Path

    from twin.scenario import load_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "helsinki_energy.yaml", check_map=False)
    assert sc.section("energy") is not None


# ---------------------------------------------------------------------------------- arrays only
def test_water_level_against_brute_force():
    from twin.domains.energy.system import water_level_kw

    rng = np.random.default_rng(1)
    base = rng.uniform(10, 100, size=(5, 12))
    e = np.array([0.0, 5.0, 50.0, 500.0, 5000.0])
    level = water_level_kw(base, e, 0.25)
    for f in range(5):
        grid = np.linspace(base[f].min(), base[f].max() + e[f] / 0.25, 200_001)
        fill = np.maximum(grid[:, None] - base[f][None, :], 0).sum(axis=1) * 0.25
        brute = grid[np.searchsorted(fill, e[f])]
        assert level[f] == pytest.approx(brute, abs=(grid[1] - grid[0]) * 1.01)
        assert np.maximum(level[f] - base[f], 0).sum() * 0.25 == pytest.approx(e[f], abs=1e-6)


def test_kmeans_feeders_are_deterministic_nearest_and_fixed_points():
    from scipy.spatial import cKDTree

    from twin.domains.energy.feeders import kmeans_feeders

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3000)) * 1000
    a = kmeans_feeders(x, y, 12, np.random.default_rng(7))
    b = kmeans_feeders(x, y, 12, np.random.default_rng(7))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    feeder, cx, cy = a
    assert set(np.unique(feeder).tolist()) == set(range(12))
    # every building is served by its nearest substation, each substation is its buildings' centroid
    np.testing.assert_array_equal(feeder, cKDTree(np.column_stack([cx, cy])).query(np.column_stack([x, y]))[1])
    np.testing.assert_allclose(np.bincount(feeder, weights=x) / np.bincount(feeder), cx, rtol=1e-9, atol=1e-9)
    assert np.all(np.diff(cx) >= 0)  # numbered west to east
    one = kmeans_feeders(np.zeros(3), np.zeros(3), 5, np.random.default_rng(0))
    assert one[0].tolist() == [0, 0, 0] and one[1].size == 3


def test_pv_from_a_tmy3_weather_file():
    from twin.domains.energy.config import EnergyConfig
    from twin.domains.energy.domain import pv_day_per_kwp
    from twin.domains.energy.pv import pvlib_tmy3_path

    clear = pv_day_per_kwp(EnergyConfig(), 60.17, 24.94)
    tmy = pv_day_per_kwp(EnergyConfig(pv={"weather": str(pvlib_tmy3_path())}, timezone="Europe/Helsinki"),
                         60.17, 24.94)
    for p in (clear, tmy):
        assert p.shape == (96,) and np.all(p >= 0) and p[:8].max() == 0.0 == p[-4:].max()
        centre_h = float((p * (np.arange(96) + 0.5)).sum() / p.sum()) * DT_H
        assert 12.0 <= centre_h <= 15.0, centre_h  # around solar noon (13:20 in Helsinki's summer time)
    assert 3.0 < clear.sum() * DT_H < 9.0  # kWh per kWp on a clear June day at 60° N
    # the file's June day (Greensboro's weather at its own local hours) gives less than the clear sky
    assert 0.2 * clear.sum() < tmy.sum() < clear.sum()


def test_maas_fleet_charging_is_depot_load():
    """With a MaaS fleet in the run, its depot charging sessions are load at the building nearest
    each depot: the day's fleet energy is the sessions' (charger power × plugged time, scaled to
    the city) up to the fleet's unplugging at step boundaries."""
    from pathlib import Path

    from twin.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    d = load_scenario(root / "scenarios" / "helsinki_maas.yaml").model_dump(mode="json")
    d["energy"] = load_scenario(root / "scenarios" / "helsinki_energy.yaml").model_dump(mode="json")["energy"]
    d["population"]["residents"] = 2000
    d["simulation"].update({"start_s": 0, "end_s": 86400})
    d["output"] = {"events": False, "geopackage": False, "report": False}
    op = d["maas"]["operators"][0]
    op["fleet_size"] = 12
    op["electric"].update({"battery_kwh": 12, "initial_soc": 0.5, "charge_below_soc": 0.45, "reserve_soc": 0.1})
    m, _, _ = run(scenario_from_dict(d))
    maas = m.domain("maas")
    share = m.scenario.population.sample_share
    kw = op["electric"]["charger_kw"]
    sessions = maas.sessions
    assert len(sessions) >= 3
    want = sum(kw * (end - start) / 3600 for _, _, start, end, _ in sessions) / share
    got = m.kpis()["energy_fleet_charged_kwh"]
    slack = len(sessions) * kw * m.scenario.simulation.record_interval_s / 3600 / share
    print(f"fleet charging {got:.1f} kWh against the sessions' {want:.1f} kWh")
    assert got > 0 and want - slack <= got <= want + 1e-6
