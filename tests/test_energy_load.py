"""Building loads (twin.domains.energy.load): BDEW profiles scaled to floor area, occupancy modulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from twin.domains.energy import load as ld


def test_scaled_profiles_integrate_to_the_requested_energy():
    area = np.array([120.0, 800.0, 400.0, 95.5, 0.0])
    kinds = np.array(["residential", "work", "retail", "generic", "residential"])
    times, load_kw = ld.building_load_kw(area, kinds, 2023)
    assert load_kw.shape == (35040, 5) and len(times) == 35040
    assert times[0].hour == 0 and (times[1] - times[0]).total_seconds() == 900
    expected = area * np.array([ld.KWH_PER_M2_YR[k] for k in kinds])
    np.testing.assert_allclose(load_kw.sum(axis=0) * ld.DT_H, expected, rtol=1e-3)
    np.testing.assert_allclose(ld.annual_kwh(area, kinds), expected)
    assert np.all(load_kw >= 0.0) and np.all(load_kw[:, 4] == 0.0)
    # the shapes differ: offices (G1) draw on weekday working hours, little on Sunday nights
    sunday_night = (times.dayofweek == 6) & (times.hour < 5)
    weekday_noon = (times.dayofweek < 5) & (times.hour == 11)
    assert load_kw[weekday_noon, 1].mean() > 3.0 * load_kw[sunday_night, 1].mean()


def test_profile_kw_any_annual_energy_and_leap_year():
    shares = ld.standard_profiles(2024, ["h0", "g0"])
    assert len(shares) == 35136  # a leap year
    np.testing.assert_allclose(shares.sum().to_numpy(), 1.0, rtol=1e-12)
    p = ld.profile_kw(shares["h0"].to_numpy(), np.array([1000.0, 4321.0]))
    np.testing.assert_allclose(p.sum(axis=0) * ld.DT_H, [1000.0, 4321.0], rtol=1e-3)
    with pytest.raises(ValueError, match="unknown BDEW"):
        ld.standard_profiles(2023, ["x9"])
    with pytest.raises(ValueError, match="unknown building kind"):
        ld.annual_kwh(np.array([10.0]), np.array(["castle"]))


def test_demandlib_does_not_leak_its_warning_filter():
    # demandlib 0.2's ElecSlp calls warnings.simplefilter("error") for the whole process
    ld._year_shares.cache_clear()
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("ignore", UserWarning)  # a known state, unlike pytest's "error" filter
        before = list(warnings.filters)
        ld.standard_profiles(2021, ["g1"])
        assert warnings.filters == before


def test_occupancy_modulation_raises_load_by_the_effect():
    base = np.array([2.0, 2.0, 2.0, 1.0])
    occ = np.array([0.6, 0.5, 0.3, 0.0])
    expected = np.array([0.5, 0.5, 0.5, 0.5])
    out = ld.occupancy_modulation(base, occ, expected, effect=0.5)
    # 20 % more people than expected × elasticity 0.5 = 10 % more load; 40 % fewer: 20 % less
    np.testing.assert_allclose(out, [2.0 * 1.1, 2.0, 2.0 * 0.8, 1.0 * 0.5])
    # elasticity 2 with nobody home would go negative: clipped at zero
    np.testing.assert_allclose(ld.occupancy_modulation(base, occ, expected, effect=2.0)[3], 0.0)
    # no effect: unchanged
    np.testing.assert_array_equal(ld.occupancy_modulation(base, occ, expected, effect=0.0), base)
    # an empty expectation uses the floor: 0.1 present over a floor of 0.05 is +200 % × 0.5
    np.testing.assert_allclose(ld.occupancy_modulation(1.0, 0.1, 0.0, 0.5), 2.0)
    # broadcasting over a (T, n) profile
    prof = np.ones((3, 4))
    assert ld.occupancy_modulation(prof, occ, expected, 0.5).shape == (3, 4)
    with pytest.raises(ValueError):
        ld.occupancy_modulation(base, np.array([1.5, 0, 0, 0]), expected, 0.5)
