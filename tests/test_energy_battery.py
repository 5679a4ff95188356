"""Batteries (twin.domains.energy.battery): limits, energy accounting and the meter balance, for
many buildings over a random day at 15-minute steps under every controller."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domains.energy import battery as bat

DT_H = 0.25
STEPS = 96
TOL = 1e-9


def _day(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Load and PV (kW) of ``n`` buildings over a day, shape ``(STEPS, n)``: a noisy evening-peaked load and
    a noisy bell of PV (some buildings have none)."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(STEPS) + 0.5) * DT_H
    shape = 0.4 + 0.6 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2) + 0.3 * np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
    load = shape[:, None] * rng.uniform(0.5, 6.0, n)[None, :] * rng.lognormal(0.0, 0.3, (STEPS, n))
    sun = np.clip(np.cos((hour - 12.5) / 12.0 * np.pi), 0.0, None) ** 2
    kwp = rng.uniform(0.0, 10.0, n) * (rng.random(n) < 0.7)
    pv = sun[:, None] * kwp[None, :] * rng.uniform(0.3, 1.0, (STEPS, n))
    return load, pv


def _fleet(seed: int, n: int) -> bat.Batteries:
    rng = np.random.default_rng(seed + 1)
    energy = rng.uniform(0.0, 15.0, n) * (rng.random(n) < 0.9)  # a tenth have none
    soc_min = rng.uniform(0.0, 0.2, n)
    soc_max = rng.uniform(0.8, 1.0, n)
    return bat.Batteries(energy_kwh=energy, power_kw=rng.uniform(0.0, 6.0, n),
                         soc=soc_min + rng.random(n) * (soc_max - soc_min),
                         efficiency_rt=rng.uniform(0.75, 0.98, n), soc_min=soc_min, soc_max=soc_max)


def _policy_kwargs(policy: str, t: int, n: int) -> dict:
    if policy == "peak_shaving":
        return {"threshold_kw": np.linspace(0.5, 4.0, n)}
    if policy == "tou_arbitrage":
        price = 0.10 if t < 24 else (0.40 if 64 <= t < 84 else 0.25)  # cheap night, dear evening
        return {"price": price, "low": 0.15, "high": 0.35}
    return {}


def _run(policy: str, seed: int, n: int):
    load, pv = _day(seed, n)
    state = _fleet(seed, n)
    out = []
    for t in range(STEPS):
        before = state
        step = bat.step_batteries(state, load[t] - pv[t], DT_H, policy, **_policy_kwargs(policy, t, n))
        state = state.with_soc(step.soc)
        out.append((before, step, state, bat.balance(load[t], pv[t], step.charge_kw, step.discharge_kw)))
    return load, pv, out


@pytest.mark.parametrize("policy", bat.POLICIES)
def test_limits_energy_accounting_and_balance_every_step(policy):
    n = 300
    load, pv, out = _run(policy, seed=7, n=n)
    charged = discharged = 0.0
    for t, (before, step, after, b) in enumerate(out):
        c, d = step.charge_kw, step.discharge_kw
        # power, energy and SoC limits
        assert np.all(c >= 0.0) and np.all(d >= 0.0)
        assert not np.any((c > 0.0) & (d > 0.0))
        assert np.all(c <= before.power_kw + TOL) and np.all(d <= before.power_kw + TOL)
        assert np.all(after.soc >= before.soc_min - 1e-12) and np.all(after.soc <= before.soc_max + 1e-12)
        assert np.all(after.stored_kwh <= before.soc_max * before.energy_kwh + TOL)
        assert np.all(after.stored_kwh >= before.soc_min * before.energy_kwh - TOL)
        assert np.all(c[before.energy_kwh == 0.0] == 0.0) and np.all(d[before.energy_kwh == 0.0] == 0.0)
        # the round-trip loss: stored energy changes by eta_c·charge − discharge/eta_d
        eta = np.sqrt(before.efficiency_rt)
        np.testing.assert_allclose(after.stored_kwh - before.stored_kwh, (eta * c - d / eta) * DT_H, rtol=0, atol=TOL)
        # the meter and on-site balances, for every building
        np.testing.assert_allclose(b.import_kw - b.export_kw + pv[t] + b.discharge_kw - b.charge_kw, load[t],
                                   rtol=0, atol=TOL)
        np.testing.assert_allclose(b.import_kw + b.pv_used_kw + b.discharge_kw - b.charge_kw, load[t],
                                   rtol=0, atol=TOL)
        assert np.all(b.import_kw >= 0.0) and np.all(b.export_kw >= 0.0)
        assert not np.any((b.import_kw > 0.0) & (b.export_kw > 0.0))
        assert np.all(b.pv_used_kw >= 0.0) and np.all(b.pv_used_kw <= pv[t] + TOL)
        charged += float(c.sum())
        discharged += float(d.sum())
    assert charged > 0.0 and discharged > 0.0  # the controllers act
    # the day's loss: what went in minus what came out equals the stored gain plus the losses
    first, last = out[0][0], out[-1][2]
    gain_kwh = float((last.stored_kwh - first.stored_kwh).sum())
    assert (charged - discharged) * DT_H > gain_kwh


def test_self_consumption_uses_pv_first():
    load, pv, out = _run("self_consumption", seed=3, n=200)
    for t, (_, step, _, b) in enumerate(out):
        surplus = pv[t] > load[t]
        assert np.all(step.discharge_kw[surplus] == 0.0)  # no discharge while PV covers the load
        assert np.all(step.charge_kw[~surplus] == 0.0)  # never charges from the grid
        np.testing.assert_allclose(step.charge_kw + b.export_kw, np.maximum(pv[t] - load[t], 0.0),
                                   atol=TOL)


def test_peak_shaving_lowers_the_peak_import():
    n = 300
    load, pv, out = _run("peak_shaving", seed=11, n=n)
    imports = np.array([b.import_kw for *_, b in out])
    no_battery = np.maximum(load - pv, 0.0)
    threshold = np.linspace(0.5, 4.0, n)
    # charging from the grid fills up to the threshold, never beyond it nor beyond the peak without a battery
    assert np.all(imports.max(axis=0) <= np.maximum(no_battery.max(axis=0), threshold) + TOL)
    assert np.all(imports[load - pv <= threshold] <= np.broadcast_to(threshold, load.shape)[load - pv <= threshold]
                  + TOL)
    # at the peak without a battery, the import is lower wherever the battery has energy and power left
    t_peak = no_battery.argmax(axis=0)
    cols = np.arange(n)
    before = [out[t][0] for t in range(STEPS)]
    soc = np.array([s.soc for s in before])[t_peak, cols]
    first = before[0]
    able = ((soc > first.soc_min + 1e-3) & (first.energy_kwh > 0.0) & (first.power_kw > 0.0)
            & (no_battery[t_peak, cols] > threshold))
    assert able.sum() > 50
    assert np.all(imports[t_peak, cols][able] < no_battery[t_peak, cols][able] - 1e-6)
    # and the peaks come down across the buildings
    lower = imports.max(axis=0) < no_battery.max(axis=0) - 1e-6
    assert lower.sum() > 0.3 * n
    assert imports.max(axis=0).sum() < 0.95 * no_battery.max(axis=0).sum()


def test_tou_arbitrage_charges_cheap_and_discharges_dear():
    n = 100
    _, _, out = _run("tou_arbitrage", seed=5, n=n)
    night_charge = sum(float(step.charge_kw.sum()) for _, step, _, _ in out[:24])
    evening_discharge = sum(float(step.discharge_kw.sum()) for _, step, _, _ in out[64:84])
    midday_discharge = sum(float(step.discharge_kw.sum()) for _, step, _, _ in out[24:64])
    assert night_charge > 0.0 and evening_discharge > 0.0 and midday_discharge == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dt_h=st.sampled_from([1 / 60, 0.25, 1.0]),
       policy=st.sampled_from(bat.POLICIES), scale=st.floats(0.01, 100.0))
def test_one_step_never_exceeds_limits(seed, dt_h, policy, scale):
    n = 64
    rng = np.random.default_rng(seed)
    state = _fleet(seed, n)
    net = rng.normal(0.0, 3.0, n) * scale
    step = bat.step_batteries(state, net, dt_h, policy, threshold_kw=rng.uniform(0.0, 5.0, n),
                              price=rng.uniform(0.0, 1.0, n), low=0.3, high=0.6)
    after = state.with_soc(step.soc)  # with_soc validates soc_min ≤ soc ≤ soc_max
    max_c, max_d = bat.charge_limits_kw(state, dt_h)
    assert np.all(step.charge_kw <= max_c) and np.all(step.discharge_kw <= max_d)
    assert np.all(max_c <= state.power_kw) and np.all(max_d <= state.power_kw)
    eta = np.sqrt(state.efficiency_rt)
    np.testing.assert_allclose(after.stored_kwh - state.stored_kwh,
                               (eta * step.charge_kw - step.discharge_kw / eta) * dt_h, rtol=0, atol=1e-9 * scale)
    load = np.maximum(net, 0.0) + rng.uniform(0.0, 1.0, n)
    pv = load - net
    b = bat.balance(load, pv, step.charge_kw, step.discharge_kw)
    np.testing.assert_allclose(b.import_kw - b.export_kw + pv + b.discharge_kw - b.charge_kw, load, rtol=0,
                               atol=1e-12 * max(1.0, scale) * 16)


def test_full_and_empty_batteries():
    state = bat.Batteries(energy_kwh=np.array([10.0, 10.0]), power_kw=np.array([5.0, 5.0]), soc=np.array([0.9, 0.1]),
                          efficiency_rt=np.array([0.81, 0.81]), soc_min=np.array([0.1, 0.1]),
                          soc_max=np.array([0.9, 0.9]))
    step = bat.step_batteries(state, np.array([-3.0, 3.0]), DT_H, "self_consumption")
    np.testing.assert_array_equal(step.charge_kw, [0.0, 0.0])  # full: cannot charge; empty: cannot discharge
    np.testing.assert_array_equal(step.discharge_kw, [0.0, 0.0])
    # energy-limited: 0.5 kWh of room takes 0.5 / (0.9 · 0.25) kW over a quarter hour
    state = state.with_soc([0.85, 0.15])
    step = bat.step_batteries(state, np.array([-5.0, 5.0]), DT_H, "self_consumption")
    np.testing.assert_allclose(step.charge_kw, [0.5 / (0.9 * DT_H), 0.0])
    np.testing.assert_allclose(step.discharge_kw, [0.0, 0.5 * 0.9 / DT_H])
    np.testing.assert_allclose(step.soc, [0.9, 0.1])


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="soc"):
        bat.Batteries(energy_kwh=np.array([1.0]), power_kw=np.array([1.0]), soc=np.array([0.95]))
    state = bat.Batteries(energy_kwh=np.array([1.0]), power_kw=np.array([1.0]), soc=np.array([0.5]))
    with pytest.raises(ValueError, match="threshold_kw"):
        bat.step_batteries(state, np.array([1.0]), DT_H, "peak_shaving")
    with pytest.raises(ValueError, match="unknown"):
        bat.step_batteries(state, np.array([1.0]), DT_H, "greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="export"):
        bat.balance(np.array([1.0]), np.array([0.0]), 0.0, np.array([2.0]))
