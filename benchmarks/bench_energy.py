"""Benchmark of the energy domain: a day at 15-minute steps for 20,000 buildings with PV, batteries and
EV charging (each charging policy), the domain on a real map inside a model run, and the per-step
cost of the optional pandapower power flow on a feeder (IEEE 33-bus, case33bw).

    python benchmarks/bench_energy.py [--buildings 20000] [--cars 8000]

Part 1 builds the arrays-only core (:class:`twin.domains.energy.system.EnergySystem`) for
synthetic buildings (floor areas and kinds drawn like a mid-size European district; BDEW profiles
from demandlib and a pvlib clear-sky PV profile for the date, timed as "profiles") and runs its 96
intervals with occupancy and car plug-ins drawn per interval (the location query is the mobility
domain's cost, timed in part 2). Part 2 runs ``scenarios/helsinki_energy.yaml`` (the shipped map has
471 buildings) and reports the energy phase's wall time. Part 3 maps one feeder's load of every
interval onto case33bw's loads (scaled in proportion to their base values) and runs
:func:`twin.domains.energy.grid.run_power_flow` for each of the 96 intervals.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np


def synthetic_day(n: int, m: int, policy: str, rng_seed: int = 0) -> tuple[float, float, Any]:
    """Set up and run a day of ``n`` buildings and ``m`` cars; returns (profiles_s, day_s, the system)."""
    from twin.domains.energy.battery import Batteries
    from twin.domains.energy.config import DEFAULT_HOME_PRESENCE, EnergyConfig
    from twin.domains.energy.domain import bdew_day_shares, pv_day_per_kwp
    from twin.domains.energy.feeders import kmeans_feeders
    from twin.domains.energy.load import DT_H
    from twin.domains.energy.pv import roof_kwp
    from twin.domains.energy.system import EnergySystem

    rng = np.random.default_rng(rng_seed)
    cfg = EnergyConfig()
    t0 = time.perf_counter()
    shares = bdew_day_shares(cfg.date)
    per_kwp = pv_day_per_kwp(cfg, 60.17, 24.94)
    t_prof = time.perf_counter() - t0

    t0 = time.perf_counter()
    footprint = rng.lognormal(np.log(250.0), 0.8, n)
    levels = rng.integers(1, 7, n)
    home = rng.random(n) < 0.75
    annual = footprint * levels * np.where(home, 30.0, 50.0)
    base = np.where(home[None, :], shares["h0_dyn"][:, None], shares["g1"][:, None]) / DT_H * annual[None, :]
    kwp = roof_kwp(footprint, rng.random(n) < 0.3)
    bat = np.where((kwp > 0) & (rng.random(n) < 0.5), kwp, 0.0)
    x, y = rng.uniform(0, 8000, (2, n))
    feeder, _, _ = kmeans_feeders(x, y, n // 150, np.random.default_rng(1))
    F = int(feeder.max()) + 1
    limit = 1.2 * np.array([base[:, feeder == f].sum(axis=1).max() for f in range(F)])
    car_home = np.flatnonzero(home)[rng.integers(0, home.sum(), m)]
    system = EnergySystem(
        base_kw=base, pv_per_kwp=per_kwp, kwp=kwp, feeder=feeder, limit_kw=limit,
        batteries=Batteries(energy_kwh=bat, power_kw=0.5 * bat, soc=np.full(n, 0.5)),
        battery_policy="self_consumption", threshold_kw=np.zeros(n), price=np.full(96, 0.25),
        price_export=np.full(96, 0.05), co2_g_per_kwh=np.full(96, 120.0), tou_low=0.0, tou_high=1.0,
        car_home=car_home, car_work=np.full(m, -1), car_stored_kwh=np.full(m, 48.0), car_target_kwh=np.full(m, 48.0),
        charger_kw=np.full(m, 11.0), car_scale=1.0, ev_policy=policy, delayed_start_s=22 * 3600.0,
        ready_s=86400.0, effect=0.5)
    leave = rng.uniform(6.5, 9.5, m) * 3600
    back = rng.uniform(16.0, 20.0, m) * 3600
    trip_kwh = rng.gamma(2.0, 1.8, m)
    for k in range(96):
        t1 = (k + 1) * 900.0
        hour = k // 4
        occ = np.clip(DEFAULT_HOME_PRESENCE[hour] + rng.normal(0, 0.1, n), 0, 1)
        exp = np.full(n, DEFAULT_HOME_PRESENCE[hour])
        plug = np.where((t1 <= leave) | (t1 > back), car_home, -1)
        arrived = (t1 > back) & (t1 - 900.0 <= back)
        system.step(k, occ, exp, plug, np.where(arrived, 2 * trip_kwh, 0.0))
    return t_prof, time.perf_counter() - t0, system


def model_day() -> tuple[float, float, int]:
    """Run the shipped energy scenario; (run wall s, energy phase s, buildings)."""
    from twin.model import CityModel
    from twin.scenario import load_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "helsinki_energy.yaml")
    t0 = time.perf_counter()
    m = CityModel(sc)
    m.run()
    en = m.domain("energy")
    return time.perf_counter() - t0, float(m.phase_time_s.get("energy", 0.0)), int(en.n)  # type: ignore[attr-defined]


def power_flow_per_step(feeder_kw: np.ndarray) -> tuple[float, float, float]:
    """case33bw with its loads scaled to ``feeder_kw`` of each interval; (s per step, worst min V, max losses kW)."""
    import pandapower.networks as pn

    from twin.domains.energy.grid import run_power_flow

    net = pn.case33bw()
    p0 = net.load.p_mw.to_numpy().copy()
    q0 = net.load.q_mvar.to_numpy().copy()
    share = p0 / p0.sum()
    run_power_flow(net)  # warm-up (numba / pandapower's first-call costs)
    t0 = time.perf_counter()
    vmin, loss = 1.0, 0.0
    for p_kw in feeder_kw:
        p = share * max(float(p_kw), 0.0) / 1000.0
        res = run_power_flow(net, p, q0 * np.divide(p, p0))
        vmin, loss = min(vmin, res.min_vm_pu), max(loss, res.losses_kw)
    return (time.perf_counter() - t0) / len(feeder_kw), vmin, loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=20_000)
    ap.add_argument("--cars", type=int, default=8_000)
    a = ap.parse_args()
    print(f"part 1: {a.buildings:,} buildings, {a.cars:,} electric cars, 96 intervals of 15 min "
          "(PV, batteries self-consumption, EV charging)")
    systems = {}
    for policy in ("uncontrolled", "delayed", "smart"):
        t_prof, t_day, systems[policy] = synthetic_day(a.buildings, a.cars, policy)
        tot = systems[policy].totals()
        print(f"  {policy:<12} profiles {t_prof:5.2f} s  set-up + day {t_day:5.2f} s  total {t_prof + t_day:5.2f} s"
              f"  (peak feeder {tot['peak_feeder_kw']:,.0f} kW, EV {tot['ev_kwh']:,.0f} kWh, "
              f"overload {tot['overload_h']:.2f} feeder-h)")
    wall, phase, nb = model_day()
    print(f"part 2: scenarios/helsinki_energy.yaml ({nb} buildings): model run {wall:.2f} s, "
          f"energy phase {phase:.3f} s")
    # the busiest feeder's day of part 1's uncontrolled run, scaled so that its peak is case33bw's base load
    fk = systems["uncontrolled"].feeder_kw
    day = fk[:, int(np.argmax(fk.max(axis=0)))]
    day = day * (3715.0 / day.max())
    per, vmin, loss = power_flow_per_step(day)
    print(f"part 3: pandapower power flow on case33bw (32 loads, 33 buses), 96 steps: {1000 * per:.1f} ms per step "
          f"(lowest voltage {vmin:.4f} pu, largest losses {loss:,.0f} kW)")


if __name__ == "__main__":
    main()
