"""A planner's first hour: the default day has traffic, and the cordon relieves it.

The default Helsinki scenario simulates a 10% sample of central Helsinki's population
(``population.sample_share``, MATSim's convention: capacities scale with the sample)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.model import CityModel
from twin.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
CORDON = (24.940, 60.166, 24.949, 60.174)  # scenarios/helsinki_cordon.yaml


@pytest.fixture(scope="module")
def days():
    out = {}
    for name in ("helsinki_commute", "helsinki_cordon"):
        m = CityModel(load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
        m.run()
        out[name] = m
    return out


def _peak_delay_inside_veh_h(m: CityModel) -> float:
    c, net = m.links_columns(), m.network
    w, s, e, n = CORDON
    inside = (net.node_lon >= w) & (net.node_lon <= e) & (net.node_lat >= s) & (net.node_lat <= n)
    link_in = inside[net.link_tail] & inside[net.link_head]
    sel = link_in[c["link_id"]] & (c["hour"] >= 7) & (c["hour"] <= 9)
    fft = c["length_m"] / c["freeflow_speed_mps"]
    return float(((c["mean_travel_time_s"] - fft) * c["volume_veh"])[sel].sum() / 3600.0)


def test_the_default_day_has_congestion(days):
    m = days["helsinki_commute"]
    assert m.scenario.population.sample_share < 1
    c = m.links_columns()
    peak = (c["hour"] >= 7) & (c["hour"] <= 9)
    ratio = c["mean_speed_mps"][peak] / c["freeflow_speed_mps"][peak]
    assert (ratio < 0.7).sum() >= 5, "the morning peak must queue on some links"
    k = m.kpis()
    assert k["delay_mean_s"] > 10 and k["delay_total_veh_h"] > 0


def test_the_cordon_lowers_peak_delay_inside_it(days):
    base, cordon = _peak_delay_inside_veh_h(days["helsinki_commute"]), _peak_delay_inside_veh_h(days["helsinki_cordon"])
    assert cordon < 0.5 * base, (base, cordon)
    assert days["helsinki_cordon"].kpis()["tolls_paid"] > 0


def test_sample_share_scales_capacities_and_extensive_kpis():
    base = {"name": "s", "seed": 3, "population": {"residents": 400}, "modes": {"available": ["car", "walk"]},
            "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600},
            "output": {"report": False}}
    full = CityModel(scenario_from_dict(base))
    half = CityModel(scenario_from_dict({**base, "population": {"residents": 400, "sample_share": 0.5}}))
    np.testing.assert_allclose(half.sim.cap_veh_per_step, 0.5 * full.sim.cap_veh_per_step)
    assert np.all(half.sim.storage_veh <= full.sim.storage_veh)
    full.run()
    half.run()
    kf, kh = full.kpis(), half.kpis()
    assert kh["population_represented"] == 800 and kf["population_represented"] == 400
    assert kh["trips_total"] == kf["trips_total"]  # the same sample of people and plans
    # extensive KPIs stand for the full population: twice the sample's distance driven (same routes
    # on the first day: free-flow routing does not depend on capacity)
    assert kh["vkt_km"] == pytest.approx(2 * kf["vkt_km"], abs=2e-3)  # both rounded to 3 decimals
    assert kh["mode_share_car"] == kf["mode_share_car"]
    assert kh["delay_mean_s"] >= kf["delay_mean_s"]  # half the capacity for the same cars


def test_the_default_days_report_shows_the_delay_and_the_peak(tmp_path):
    from twin.report import write_animation
    from twin.run import run_scenario

    res = run_scenario(load_scenario(ROOT / "scenarios" / "helsinki_commute.yaml"), tmp_path / "run")
    page = (res.out_dir / "report.html").read_text(encoding="utf-8")
    assert "no delay on any link" not in page and "delay" in page
    anim = write_animation(res.out_dir, tmp_path / "a.html", hour=8)
    assert anim.stat().st_size > 10_000
