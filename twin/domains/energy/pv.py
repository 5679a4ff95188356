"""Rooftop PV power by pvlib's PVWatts chain, for many buildings at once.

The model
---------
One PV system is the PVWatts version 5 chain (Dobos, *PVWatts Version 5 Manual*, NREL/TP-6A20-62641,
2014) as pvlib assembles it in :meth:`pvlib.modelchain.ModelChain.with_pvwatts`:

1. the sun's position (:meth:`pvlib.location.Location.get_solarposition`, NREL SPA; with the
   weather's air temperature and pressure when it has them) and the relative air mass
   (Kasten & Young 1989);
2. irradiance on the plane of the array (:func:`pvlib.irradiance.get_total_irradiance`) by the
   Perez sky-diffuse model, with the extraterrestrial irradiance of the day and the ground albedo
   (the weather's ``albedo`` column, else 0.25);
3. the reflection loss of the beam on the glass (:func:`pvlib.iam.physical`): the effective
   irradiance is ``poa_direct * iam + poa_diffuse``;
4. the cell temperature from the plane-of-array irradiance, air temperature and wind speed by the
   Sandia (SAPM) model, with the parameters of a roof-mounted glass/glass module
   (:data:`RACKING`; an open-rack module is cooler);
5. DC power (:func:`pvlib.pvsystem.pvwatts_dc`): ``kWp * G_eff / 1000 W/m² * (1 + γ (T_cell − 25 °C))``;
6. the lumped system losses ``losses_pct`` (soiling, shading, wiring, mismatch, ...; PVWatts'
   default is 14 %);
7. AC power (:func:`pvlib.inverter.pvwatts`): the PVWatts inverter efficiency curve, clipped at the
   inverter's AC rating ``kWp / dc_ac_ratio``.

Without a weather frame the sky is clear (Ineichen with the Linke turbidity climatology that
ships with pvlib), the air at :data:`CLEAR_SKY_TEMP_AIR_C` and still, as ModelChain assumes.

Many buildings
--------------
Every step of the chain is linear in the array's size once the inverter is sized in proportion
(its efficiency depends on ``P_dc / P_dc0`` only), so the power of a roof is its kWp times the
power of 1 kWp of the same orientation. :func:`pv_power_kw` computes the sun once, one per-kWp
profile per distinct ``(tilt, azimuth)`` and scales: a city of ten thousand roofs with a handful
of orientations costs a handful of PVWatts runs.

What is hand-written here is only that bookkeeping (the shared sun, the distinct orientations, the
scaling) and the input checks. The physics is pvlib's, whose models are validated against
measurements and maintained; re-implementing solar geometry or the Perez model would be longer and
less trustworthy. ModelChain itself is not used because it models one system per object and
recomputes the sun for each.

Times are labels of instants, used as they are: a TMY3 file labels each hour by its end, and the
sun is taken at that label, as ModelChain does (PVWatts shifts it to the middle of the hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

from twin._errors import InputError

__all__ = [
    "WEATHER_COLUMNS",
    "RACKING",
    "CLEAR_SKY_TEMP_AIR_C",
    "CLEAR_SKY_WIND_SPEED_MPS",
    "DEFAULT_ALBEDO",
    "WeatherYear",
    "pvlib_tmy3_path",
    "read_tmy3",
    "pv_power_per_kwp",
    "pv_power_kw",
    "roof_kwp",
]

#: Columns a weather frame must have: irradiance (W/m²), air temperature (°C), wind speed (m/s).
#: Optional: ``pressure`` (Pa) and ``albedo`` (share).
WEATHER_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")
#: SAPM cell-temperature parameters of a roof-mounted module (pvlib's
#: ``TEMPERATURE_MODEL_PARAMETERS["sapm"]`` key).
RACKING = "close_mount_glass_glass"
#: Air temperature (°C) and wind speed (m/s) under the clear sky (ModelChain's defaults).
CLEAR_SKY_TEMP_AIR_C = 20.0
CLEAR_SKY_WIND_SPEED_MPS = 0.0
#: Ground albedo (share) when the weather has none (pvlib's default).
DEFAULT_ALBEDO = 0.25
#: PVWatts' nominal and reference inverter efficiencies.
_ETA_INV_NOM = 0.96
_ETA_INV_REF = 0.9637
#: Pascal per millibar (TMY3 files give the station pressure in mbar).
_PA_PER_MBAR = 100.0


# ------------------------------------------------------------------------------------------ weather
@dataclass(frozen=True)
class WeatherYear:
    """A weather year and the station it was measured at.

    Attributes
    ----------
    weather
        Hourly frame with :data:`WEATHER_COLUMNS`, ``pressure`` (Pa) and ``albedo`` (share), indexed
        by tz-aware timestamps (the end of each hour for TMY3).
    latitude_deg, longitude_deg
        Station position (degrees north, east).
    altitude_m
        Station altitude (metres).
    name
        Station name.
    """

    weather: pd.DataFrame
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    name: str


def pvlib_tmy3_path() -> Path:
    """The TMY3 file that ships inside pvlib's package data (Greensboro, NC, station 723170).

    Returns
    -------
    Path
        ``<pvlib>/data/723170TYA.CSV``.
    """
    return Path(pvlib.__file__).resolve().parent / "data" / "723170TYA.CSV"


def read_tmy3(path: str | Path, *, coerce_year: int | None = None) -> WeatherYear:
    """Read an NREL TMY3 file (:func:`pvlib.iotools.read_tmy3`) into a :class:`WeatherYear`.

    The station pressure is converted from the file's mbar to the Pa that pvlib's solar position
    expects (pvlib passes the file's value on unconverted).

    Parameters
    ----------
    path
        A TMY3 CSV file.
    coerce_year
        Put every timestamp in this year (a TMY's months come from different years); ``None`` keeps
        the file's years.

    Returns
    -------
    WeatherYear

    Raises
    ------
    InputError
        The file cannot be read or is not a TMY3 file.
    """
    try:
        data, meta = pvlib.iotools.read_tmy3(str(path), coerce_year=coerce_year, map_variables=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the TMY3 file ({exc.__class__.__name__}: {exc})") from None
    except (ValueError, KeyError, IndexError) as exc:
        raise InputError(f"{path}: not a TMY3 file ({exc.__class__.__name__}: {exc})") from None
    missing = [c for c in (*WEATHER_COLUMNS, "pressure", "albedo") if c not in data.columns]
    if missing:
        raise InputError(f"{path}: not a TMY3 file (no {', '.join(missing)})")
    weather = data[[*WEATHER_COLUMNS, "pressure", "albedo"]].astype(float)
    weather["pressure"] *= _PA_PER_MBAR
    return WeatherYear(weather=weather, latitude_deg=float(meta["latitude"]),
                       longitude_deg=float(meta["longitude"]), altitude_m=float(meta["altitude"]),
                       name=str(meta["Name"]).strip('"'))


# ------------------------------------------------------------------------------------- sun and sky
@dataclass(frozen=True)
class _Sky:
    """What every orientation shares: the sun, the air mass and the weather, as float arrays."""

    apparent_zenith_deg: pd.Series
    azimuth_deg: pd.Series
    airmass_relative: pd.Series
    dni_extra_w_m2: pd.Series
    ghi_w_m2: pd.Series
    dni_w_m2: pd.Series
    dhi_w_m2: pd.Series
    temp_air_c: pd.Series
    wind_speed_mps: pd.Series
    albedo: pd.Series | float


def _sky(lat: float, lon: float, times: pd.DatetimeIndex, weather: pd.DataFrame | None,
         altitude_m: float) -> _Sky:
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(f"times must be a pandas DatetimeIndex, not {type(times).__name__}")
    if times.tz is None:
        raise ValueError("times must be tz-aware (pvlib would take naive times as UTC)")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"latitude {lat} / longitude {lon} out of range")
    loc = pvlib.location.Location(lat, lon, tz="UTC", altitude=altitude_m)
    if weather is None:
        solpos = loc.get_solarposition(times)
        cs = loc.get_clearsky(times, model="ineichen", solar_position=solpos)
        w = pd.DataFrame({"ghi": cs["ghi"], "dni": cs["dni"], "dhi": cs["dhi"],
                          "temp_air": CLEAR_SKY_TEMP_AIR_C, "wind_speed": CLEAR_SKY_WIND_SPEED_MPS}, index=times)
    else:
        missing = [c for c in WEATHER_COLUMNS if c not in weather.columns]
        if missing:
            raise ValueError(f"weather lacks the columns {', '.join(missing)}")
        w = weather if weather.index.equals(times) else weather.reindex(times)
        cols = [c for c in (*WEATHER_COLUMNS, "pressure", "albedo") if c in w.columns]
        w = w[cols].astype(float)
        bad = [f"{c} ({int(n)} rows)" for c, n in w.isna().sum().items() if n]
        if bad:
            raise ValueError(f"weather has no value at some of the times: {', '.join(bad)}")
        kwargs = {"temperature": w["temp_air"]}
        if "pressure" in w.columns:
            kwargs["pressure"] = w["pressure"]
        solpos = loc.get_solarposition(times, **kwargs)
    airmass = loc.get_airmass(solar_position=solpos, model="kastenyoung1989")["airmass_relative"]
    dni_extra = pvlib.irradiance.get_extra_radiation(times)
    albedo: pd.Series | float = w["albedo"] if "albedo" in w.columns else DEFAULT_ALBEDO
    return _Sky(apparent_zenith_deg=solpos["apparent_zenith"], azimuth_deg=solpos["azimuth"],
                airmass_relative=airmass, dni_extra_w_m2=dni_extra, ghi_w_m2=w["ghi"], dni_w_m2=w["dni"],
                dhi_w_m2=w["dhi"], temp_air_c=w["temp_air"], wind_speed_mps=w["wind_speed"], albedo=albedo)


def _per_kwp(sky: _Sky, tilt_deg: float, azimuth_deg: float, *, losses_pct: float, gamma_pdc: float,
             dc_ac_ratio: float) -> npt.NDArray[np.float64]:
    """AC power (kW) of 1 kWp facing ``(tilt_deg, azimuth_deg)``, shape ``(T,)``."""
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, sky.apparent_zenith_deg, sky.azimuth_deg, sky.dni_w_m2, sky.ghi_w_m2,
        sky.dhi_w_m2, dni_extra=sky.dni_extra_w_m2, airmass=sky.airmass_relative, albedo=sky.albedo,
        model="perez")
    aoi_deg = pvlib.irradiance.aoi(tilt_deg, azimuth_deg, sky.apparent_zenith_deg, sky.azimuth_deg)
    effective_w_m2 = poa["poa_direct"] * pvlib.iam.physical(aoi_deg) + poa["poa_diffuse"]
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][RACKING]
    temp_cell_c = pvlib.temperature.sapm_cell(poa["poa_global"], sky.temp_air_c, sky.wind_speed_mps, **params)
    dc_kw = pvlib.pvsystem.pvwatts_dc(effective_w_m2, temp_cell_c, pdc0=1.0, gamma_pdc=gamma_pdc)
    dc_kw = np.asarray(dc_kw, dtype=np.float64) * (1.0 - losses_pct / 100.0)
    # the inverter's DC input limit, so that its AC rating (eta_nom * limit) is kWp / dc_ac_ratio
    ac_kw = pvlib.inverter.pvwatts(dc_kw, pdc0=1.0 / (dc_ac_ratio * _ETA_INV_NOM),
                                   eta_inv_nom=_ETA_INV_NOM, eta_inv_ref=_ETA_INV_REF)
    out: npt.NDArray[np.float64] = np.nan_to_num(np.asarray(ac_kw, dtype=np.float64), nan=0.0)
    return out


def _check_chain(losses_pct: float, dc_ac_ratio: float) -> None:
    if not 0.0 <= losses_pct < 100.0:
        raise ValueError(f"losses_pct must be in [0, 100), not {losses_pct}")
    if not dc_ac_ratio > 0.0:
        raise ValueError(f"dc_ac_ratio must be > 0, not {dc_ac_ratio}")


# ---------------------------------------------------------------------------------------- power
def pv_power_per_kwp(lat: float, lon: float, times: pd.DatetimeIndex, tilt_deg: float, azimuth_deg: float,
                     weather: pd.DataFrame | None = None, losses_pct: float = 14.0, gamma_pdc: float = -0.004,
                     *, dc_ac_ratio: float = 1.2, altitude_m: float = 0.0) -> npt.NDArray[np.float64]:
    """AC power of 1 kWp of one orientation (kW per kWp).

    Parameters are those of :func:`pv_power_kw` for one scalar orientation.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(len(times),)``, ≥ 0.
    """
    _check_chain(losses_pct, dc_ac_ratio)
    sky = _sky(lat, lon, times, weather, altitude_m)
    return _per_kwp(sky, float(tilt_deg), float(azimuth_deg), losses_pct=losses_pct, gamma_pdc=gamma_pdc,
                    dc_ac_ratio=dc_ac_ratio)


def pv_power_kw(lat: float, lon: float, times: pd.DatetimeIndex, kwp: npt.ArrayLike, tilt_deg: npt.ArrayLike,
                azimuth_deg: npt.ArrayLike, weather: pd.DataFrame | None = None, losses_pct: float = 14.0,
                gamma_pdc: float = -0.004, *, dc_ac_ratio: float = 1.2,
                altitude_m: float = 0.0) -> npt.NDArray[np.float64]:
    """AC power of rooftop PV systems (kW) by the PVWatts chain (see the module's docstring).

    Parameters
    ----------
    lat, lon
        Position of the city (degrees north, east); all roofs share one sun and one weather.
    times
        tz-aware instants, shape ``(T,)``.
    kwp
        Nameplate DC power of each system (kWp, STC), scalar or shape ``(n,)``; 0 for no PV.
    tilt_deg
        Tilt from horizontal (degrees, 0–90), scalar or shape ``(n,)``.
    azimuth_deg
        Direction the modules face (degrees clockwise from north: 180 = south), scalar or ``(n,)``.
    weather
        Frame with :data:`WEATHER_COLUMNS` (and optionally ``pressure`` in Pa, ``albedo``) at
        ``times`` (its index must contain them); ``None`` for the clear sky.
    losses_pct
        PVWatts' lumped DC system losses (%).
    gamma_pdc
        Temperature coefficient of the DC power (1/°C).
    dc_ac_ratio
        kWp per kW of inverter AC rating (PVWatts' default 1.2); power above the rating is clipped.
    altitude_m
        Altitude of the site (metres): air pressure for the clear sky and the sun's refraction.

    Returns
    -------
    numpy.ndarray
        float64, ≥ 0: shape ``(T,)`` when ``kwp``, ``tilt_deg`` and ``azimuth_deg`` are all scalars,
        else ``(T, n)``. ``(T, n)`` float64 is 8·T·n bytes: a year at 15 min for 10,000 roofs is
        2.8 GB; use :func:`pv_power_per_kwp` per orientation to stay smaller.

    Raises
    ------
    ValueError
        Naive times, missing weather values or columns, negative kWp, or angles out of range.
    """
    _check_chain(losses_pct, dc_ac_ratio)
    scalar = all(np.ndim(a) == 0 for a in (kwp, tilt_deg, azimuth_deg))
    kwp_a, tilt_a, az_a = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (kwp, tilt_deg, azimuth_deg))
    if max(kwp_a.ndim, tilt_a.ndim, az_a.ndim) > 1:
        raise ValueError("kwp, tilt_deg and azimuth_deg must be scalars or 1-D arrays")
    kwp_a, tilt_a, az_a = np.broadcast_arrays(kwp_a, tilt_a, az_a)
    if not np.all(np.isfinite(kwp_a) & (kwp_a >= 0.0)):
        raise ValueError("kwp must be finite and ≥ 0")
    if not np.all((tilt_a >= 0.0) & (tilt_a <= 90.0)):
        raise ValueError("tilt_deg must be in [0, 90]")
    if not np.all(np.isfinite(az_a)):
        raise ValueError("azimuth_deg must be finite")
    az_a = np.mod(az_a, 360.0)
    sky = _sky(lat, lon, times, weather, altitude_m)
    orientations, inverse = np.unique(np.stack([tilt_a, az_a], axis=1), axis=0, return_inverse=True)
    profiles = np.empty((len(times), len(orientations)), dtype=np.float64)
    for j, (tilt, az) in enumerate(orientations):
        profiles[:, j] = _per_kwp(sky, float(tilt), float(az), losses_pct=losses_pct, gamma_pdc=gamma_pdc,
                                  dc_ac_ratio=dc_ac_ratio)
    out: npt.NDArray[np.float64] = profiles[:, inverse.reshape(-1)] * kwp_a[None, :]
    return out[:, 0] if scalar else out


def roof_kwp(roof_area_m2: npt.ArrayLike, adoption_mask: npt.ArrayLike, kwp_per_m2: float = 0.15,
             usable_share: float = 0.5) -> npt.NDArray[np.float64]:
    """PV size of each roof (kWp): ``roof_area_m2 * usable_share * kwp_per_m2`` where adopted, else 0.

    Parameters
    ----------
    roof_area_m2
        Roof (footprint) area of each building (m²), shape ``(n,)``, ≥ 0.
    adoption_mask
        Whether each building has PV, bool, shape ``(n,)`` (or a scalar for all).
    kwp_per_m2
        Module power density (kWp/m²): 0.15 ≈ 20 %-efficient modules with spacing.
    usable_share
        Share of the roof that carries modules (0–1): orientation, shade, setbacks, chimneys.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n,)``.
    """
    area = np.asarray(roof_area_m2, dtype=np.float64)
    mask = np.asarray(adoption_mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"adoption_mask must be boolean, not {mask.dtype}")
    if not np.all(np.isfinite(area) & (area >= 0.0)):
        raise ValueError("roof_area_m2 must be finite and ≥ 0")
    if not kwp_per_m2 >= 0.0:
        raise ValueError(f"kwp_per_m2 must be ≥ 0, not {kwp_per_m2}")
    if not 0.0 <= usable_share <= 1.0:
        raise ValueError(f"usable_share must be in [0, 1], not {usable_share}")
    out: npt.NDArray[np.float64] = np.where(mask, area * (usable_share * kwp_per_m2), 0.0)
    return out
