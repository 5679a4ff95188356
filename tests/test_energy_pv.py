"""Rooftop PV (twin.domains.energy.pv) against pvlib's own PVWatts ModelChain, and the clear sky."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem

from twin._errors import InputError
from twin.domains.energy import pv

KWP, TILT_DEG, AZIMUTH_DEG = 4.0, 20.0, 180.0


@pytest.fixture(scope="module")
def tmy3() -> pv.WeatherYear:
    return pv.read_tmy3(pv.pvlib_tmy3_path())


def _modelchain_ac_kw(losses_parameters: dict[str, float] | None = None) -> pd.Series:
    """The same system through pvlib's ModelChain.with_pvwatts, built from the raw TMY3 file."""
    data, meta = pvlib.iotools.read_tmy3(str(pv.pvlib_tmy3_path()), map_variables=True)
    weather = data[["ghi", "dni", "dhi", "temp_air", "wind_speed", "albedo"]].copy()
    weather["pressure"] = data["pressure"] * 100.0  # the file's mbar; pvlib's solar position wants Pa
    location = Location(meta["latitude"], meta["longitude"], tz="Etc/GMT+5", altitude=meta["altitude"])
    system = PVSystem(
        surface_tilt=TILT_DEG, surface_azimuth=AZIMUTH_DEG,
        module_parameters={"pdc0": KWP * 1000.0, "gamma_pdc": -0.004},
        # PVWatts inverter sized at DC/AC 1.2: AC rating kWp/1.2 = eta_inv_nom · pdc0
        inverter_parameters={"pdc0": KWP * 1000.0 / 1.2 / 0.96},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"],
        losses_parameters=losses_parameters or {},
    )
    mc = ModelChain.with_pvwatts(system, location)  # Perez, physical IAM, SAPM cell temperature, PVWatts losses
    mc.run_model(weather)
    return mc.results.ac / 1000.0


def test_annual_yield_matches_pvlib_modelchain(tmy3):
    ac_ref_kw = _modelchain_ac_kw()  # PVWatts' default losses (14.08 %)
    losses_pct = float(pvlib.pvsystem.pvwatts_losses())
    ac_kw = pv.pv_power_kw(tmy3.latitude_deg, tmy3.longitude_deg, tmy3.weather.index, KWP, TILT_DEG, AZIMUTH_DEG,
                           weather=tmy3.weather, losses_pct=losses_pct, altitude_m=tmy3.altitude_m)
    assert ac_kw.shape == (8760,)
    yield_kwh = ac_kw.sum()  # hourly steps: kW × 1 h
    ref_kwh = float(ac_ref_kw.sum())
    assert 900 * KWP < ref_kwh < 1600 * KWP  # a plausible specific yield for North Carolina
    assert yield_kwh == pytest.approx(ref_kwh, rel=0.01)
    # and hour by hour, so that compensating errors cannot hide in the annual sum
    np.testing.assert_allclose(ac_kw, ac_ref_kw.to_numpy(), rtol=0, atol=1e-3 * KWP)


def test_losses_pct_scales_the_dc_power(tmy3):
    # 14 % as one lumped loss in pvlib's loss model (soiling 14, the rest 0) gives the same power
    zero = dict.fromkeys(("shading", "snow", "mismatch", "wiring", "connections", "lid", "nameplate_rating", "age",
                          "availability"), 0.0)
    ref = _modelchain_ac_kw({"soiling": 14.0, **zero}).to_numpy()
    ac_kw = pv.pv_power_kw(tmy3.latitude_deg, tmy3.longitude_deg, tmy3.weather.index, KWP, TILT_DEG, AZIMUTH_DEG,
                           weather=tmy3.weather, altitude_m=tmy3.altitude_m)
    assert ac_kw.sum() == pytest.approx(ref.sum(), rel=1e-3)


def _clear_day() -> tuple[pd.DatetimeIndex, float, float]:
    times = pd.date_range("2023-06-21 00:00", periods=24 * 12, freq="5min", tz="Etc/GMT+5")
    return times, 36.1, -79.95


def test_clear_sky_zero_at_night_peak_near_solar_noon():
    times, lat, lon = _clear_day()
    ac_kw = pv.pv_power_kw(lat, lon, times, KWP, TILT_DEG, AZIMUTH_DEG, altitude_m=273.0)
    elevation = pvlib.solarposition.get_solarposition(times, lat, lon)["apparent_elevation"].to_numpy()
    night = elevation < 0.0
    assert night.sum() > 80 and np.all(ac_kw[night] == 0.0)
    assert np.all(ac_kw[~night] >= 0.0) and ac_kw.max() > 0.6 * KWP
    noon = pvlib.solarposition.sun_rise_set_transit_spa(times[:1], lat, lon)["transit"].iloc[0]
    assert abs((times[int(np.argmax(ac_kw))] - noon).total_seconds()) <= 20 * 60
    # a south-facing array gives the morning and afternoon symmetrically about solar noon
    t_s = (times - noon).total_seconds().to_numpy()
    am = np.interp(-3 * 3600.0, t_s, ac_kw)
    pm = np.interp(3 * 3600.0, t_s, ac_kw)
    assert am == pytest.approx(pm, rel=0.03)


def test_many_roofs_scale_one_profile_per_orientation():
    times, lat, lon = _clear_day()
    kwp = np.array([0.0, 3.0, 4.5, 10.0, 2.0])
    tilt = np.array([30.0, 30.0, 30.0, 15.0, 30.0])
    az = np.array([180.0, 180.0, 180.0, 90.0, -180.0])  # -180 is 180
    ac_kw = pv.pv_power_kw(lat, lon, times, kwp, tilt, az)
    assert ac_kw.shape == (len(times), 5)
    for i in range(5):
        one = pv.pv_power_kw(lat, lon, times, kwp[i], tilt[i], az[i])
        np.testing.assert_allclose(ac_kw[:, i], one, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ac_kw[:, 2], 1.5 * ac_kw[:, 1], rtol=1e-12)
    assert np.all(ac_kw[:, 0] == 0.0)
    # an east-facing roof peaks before noon
    assert np.argmax(ac_kw[:, 3]) < np.argmax(ac_kw[:, 1])
    per_kwp = pv.pv_power_per_kwp(lat, lon, times, 15.0, 90.0)
    np.testing.assert_allclose(ac_kw[:, 3], 10.0 * per_kwp, rtol=1e-12)


def test_inputs_are_checked(tmp_path):
    times, lat, lon = _clear_day()
    with pytest.raises(ValueError, match="tz-aware"):
        pv.pv_power_kw(lat, lon, times.tz_localize(None), KWP, TILT_DEG, AZIMUTH_DEG)
    with pytest.raises(ValueError, match="lacks the columns"):
        pv.pv_power_kw(lat, lon, times, KWP, TILT_DEG, AZIMUTH_DEG, weather=pd.DataFrame({"ghi": 0.0}, index=times))
    with pytest.raises(ValueError, match="kwp"):
        pv.pv_power_kw(lat, lon, times, -1.0, TILT_DEG, AZIMUTH_DEG)
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,tmy3\n")
    with pytest.raises(InputError):
        pv.read_tmy3(bad)
    with pytest.raises(InputError):
        pv.read_tmy3(tmp_path / "missing.csv")


def test_roof_kwp():
    kwp = pv.roof_kwp(np.array([100.0, 80.0, 0.0]), np.array([True, False, True]))
    np.testing.assert_allclose(kwp, [100.0 * 0.5 * 0.15, 0.0, 0.0])
    np.testing.assert_allclose(pv.roof_kwp(np.array([40.0]), True, kwp_per_m2=0.2, usable_share=1.0), [8.0])
    with pytest.raises(ValueError):
        pv.roof_kwp(np.array([-1.0]), np.array([True]))
    with pytest.raises(TypeError):
        pv.roof_kwp(np.array([1.0]), np.array([1]))
