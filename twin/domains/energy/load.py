"""Building electricity demand: BDEW standard load profiles scaled by floor area, modulated by occupancy.

The model
---------
A building's electricity demand over a year is a *standard load profile* of the German BDEW
(Bundesverband der Energie- und Wasserwirtschaft; VDEW 1999), as demandlib builds it
(:class:`demandlib.bdew.ElecSlp`): 15-minute values for the year's calendar, with its own winter,
summer and transition days, weekdays, Saturdays and Sundays/holidays. The profile is the *shape*;
its size is the annual energy, ``floor area × intensity`` (:data:`KWH_PER_M2_YR`):

* ``H0`` (households) for homes, dynamised (BDEW's fourth-order seasonal factor, demandlib's
  ``h0_dyn``) as BDEW prescribes for H0;
* ``G1`` (trade on weekdays 8–18 h) for workplaces and schools;
* ``G0`` (trade in general) for shops.

The mean power of interval ``k`` is ``annual_kwh · share[k] / dt_h`` with ``share`` the profile
normalised to sum to 1 (demandlib's dynamised H0 sums to 1.00004; it is renormalised here), so the
year's energy is the requested one up to rounding.

Within a day the profile is what an average building of the kind draws; the simulation knows how many
people are actually in each building. :func:`occupancy_modulation` turns that into a load:
``base · (1 + effect · (occupancy − expected) / max(expected, min_expected_share))``, clipped at 0,
where ``effect`` is the elasticity of the load with respect to occupancy (0: none; 1: the load is
proportional to the people present), ``expected`` the occupancy the standard profile stands for
and the floor on it keeps a nearly empty expectation from blowing up the ratio.

What is hand-written here is the scaling, the kind-to-profile table, the renormalisation, a cache of
the year's profiles (demandlib takes about a second per year) and the occupancy model. The profiles
themselves are demandlib's, the maintained reference implementation of the BDEW method.
demandlib's ``ElecSlp`` sets a process-wide ``warnings.simplefilter("error")`` while it builds the
profiles (demandlib 0.2); it is called inside :func:`warnings.catch_warnings` so that the caller's
warning filters are restored.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "DT_H",
    "KWH_PER_M2_YR",
    "PROFILE_BY_KIND",
    "standard_profiles",
    "profile_kw",
    "annual_kwh",
    "building_load_kw",
    "occupancy_modulation",
]

FloatArray = npt.NDArray[np.float64]

#: Length of one BDEW interval (hours).
DT_H = 0.25
#: Annual electricity intensity per kind of building (kWh per m² of floor area per year), appliances,
#: lighting and services without electric space heating: typical magnitudes of the European building
#: stock (a household of about 3,000 kWh/yr in 100 m², offices of 40–60, shops of 80–150); calibrate
#: them to the city at hand. Keys are the building kinds of :data:`twin.network.buildings.KIND_NAMES`.
KWH_PER_M2_YR: Mapping[str, float] = {
    "residential": 30.0,
    "generic": 30.0,
    "work": 50.0,
    "education": 25.0,
    "retail": 100.0,
    "synthetic": 30.0,
}
#: The demandlib profile of each kind of building.
PROFILE_BY_KIND: Mapping[str, str] = {
    "residential": "h0_dyn",
    "generic": "h0_dyn",
    "work": "g1",
    "education": "g1",
    "retail": "g0",
    "synthetic": "h0_dyn",
}
_PROFILES = ("h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")


@functools.lru_cache(maxsize=4)
def _year_shares(year: int, holidays: tuple[pd.Timestamp, ...]) -> tuple[pd.DatetimeIndex, FloatArray]:
    """Every profile of the year normalised to sum 1, columns in :data:`_PROFILES` order (read-only)."""
    from demandlib import bdew

    with warnings.catch_warnings():  # ElecSlp sets simplefilter("error") globally (demandlib 0.2)
        slp = bdew.ElecSlp(year, holidays=list(holidays) or None)
    frame = slp.get_profiles(*_PROFILES)
    values = frame.to_numpy(dtype=np.float64)
    values = values / values.sum(axis=0, keepdims=True)
    values.setflags(write=False)
    return pd.DatetimeIndex(frame.index), values


def standard_profiles(year: int, profiles: Iterable[str] = ("h0_dyn", "g0", "g1"), *,
                      holidays: Iterable[pd.Timestamp | str] = ()) -> pd.DataFrame:
    """BDEW standard load profiles of a year, each normalised to sum to 1 (share of the annual energy).

    Parameters
    ----------
    year
        Calendar year (its weekdays and, with ``holidays``, its holidays).
    profiles
        demandlib profile names: ``h0``, ``h0_dyn``, ``g0`` … ``g6``, ``l0`` … ``l2``.
    holidays
        Dates treated as Sundays (none by default).

    Returns
    -------
    pandas.DataFrame
        One column per profile, 35,040 rows (35,136 in a leap year) of 15-minute intervals indexed by
        their naive local start time.
    """
    names = list(profiles)
    unknown = [p for p in names if p not in _PROFILES]
    if unknown:
        raise ValueError(f"unknown BDEW profile(s) {', '.join(unknown)}; known: {', '.join(_PROFILES)}")
    days = tuple(sorted(pd.Timestamp(h).normalize() for h in holidays))
    index, values = _year_shares(int(year), days)
    cols = [_PROFILES.index(p) for p in names]
    return pd.DataFrame(values[:, cols], index=index, columns=names)


def profile_kw(shares: npt.ArrayLike, annual_kwh: npt.ArrayLike, dt_h: float = DT_H) -> FloatArray:
    """Mean power of each interval (kW) of profiles scaled to an annual energy.

    Parameters
    ----------
    shares
        A normalised profile (share of the year's energy per interval, summing to 1), shape ``(T,)``.
    annual_kwh
        Energy of the year (kWh), scalar or shape ``(n,)``, ≥ 0.
    dt_h
        Interval length (hours).

    Returns
    -------
    numpy.ndarray
        float64, ``shares · annual_kwh / dt_h``: shape ``(T,)`` for a scalar ``annual_kwh``, else
        ``(T, n)``.
    """
    s = np.asarray(shares, dtype=np.float64)
    e = np.asarray(annual_kwh, dtype=np.float64)
    if s.ndim != 1 or e.ndim > 1:
        raise ValueError("shares must be of shape (T,) and annual_kwh a scalar or of shape (n,)")
    if not np.all(np.isfinite(e) & (e >= 0.0)):
        raise ValueError("annual_kwh must be finite and ≥ 0")
    if not dt_h > 0.0:
        raise ValueError(f"dt_h must be > 0, not {dt_h}")
    out: FloatArray = (s / dt_h) * e if e.ndim == 0 else (s / dt_h)[:, None] * e[None, :]
    return out


def annual_kwh(floor_area_m2: npt.ArrayLike, kind: npt.ArrayLike,
               kwh_per_m2_yr: Mapping[str, float] = KWH_PER_M2_YR) -> FloatArray:
    """Annual electricity demand (kWh) of buildings: ``floor_area_m2 · kwh_per_m2_yr[kind]``.

    Parameters
    ----------
    floor_area_m2
        Floor area (m²; footprint × storeys), shape ``(n,)``, ≥ 0.
    kind
        Kind name of each building (a key of ``kwh_per_m2_yr``), shape ``(n,)`` or a scalar for all.
    kwh_per_m2_yr
        Intensity per kind (kWh/m²/yr).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n,)``.
    """
    area = np.atleast_1d(np.asarray(floor_area_m2, dtype=np.float64))
    kinds = np.broadcast_to(np.asarray(kind, dtype=object), area.shape)
    if not np.all(np.isfinite(area) & (area >= 0.0)):
        raise ValueError("floor_area_m2 must be finite and ≥ 0")
    unknown = sorted({str(k) for k in kinds} - set(kwh_per_m2_yr))
    if unknown:
        raise ValueError(f"unknown building kind(s) {', '.join(unknown)}; known: {', '.join(kwh_per_m2_yr)}")
    intensity = np.array([kwh_per_m2_yr[str(k)] for k in kinds], dtype=np.float64)
    out: FloatArray = area * intensity
    return out


def building_load_kw(floor_area_m2: npt.ArrayLike, kind: npt.ArrayLike, year: int, *,
                     holidays: Iterable[pd.Timestamp | str] = (),
                     kwh_per_m2_yr: Mapping[str, float] = KWH_PER_M2_YR,
                     profile_by_kind: Mapping[str, str] = PROFILE_BY_KIND) -> tuple[pd.DatetimeIndex, FloatArray]:
    """A year of 15-minute mean electricity demand (kW) of buildings.

    Parameters
    ----------
    floor_area_m2, kind
        As in :func:`annual_kwh`.
    year, holidays
        As in :func:`standard_profiles`.
    kwh_per_m2_yr, profile_by_kind
        Intensity and demandlib profile of each kind.

    Returns
    -------
    times : pandas.DatetimeIndex
        Naive local start of each interval, shape ``(T,)``.
    load_kw : numpy.ndarray
        float64, shape ``(T, n)``; column ``i`` integrates (``sum · DT_H``) to building ``i``'s
        :func:`annual_kwh`.
    """
    energy_kwh = annual_kwh(floor_area_m2, kind, kwh_per_m2_yr)
    kinds = np.broadcast_to(np.asarray(kind, dtype=object), energy_kwh.shape)
    missing = sorted({str(k) for k in kinds} - set(profile_by_kind))
    if missing:
        raise ValueError(f"no load profile for the building kind(s) {', '.join(missing)}")
    profile_of = np.array([profile_by_kind[str(k)] for k in kinds], dtype=object)
    names = sorted(set(profile_of.tolist()))
    shares = standard_profiles(year, names, holidays=holidays)
    load = np.empty((len(shares), energy_kwh.shape[0]), dtype=np.float64)
    for name in names:
        cols = np.flatnonzero(profile_of == name)
        load[:, cols] = profile_kw(shares[name].to_numpy(), energy_kwh[cols])
    return pd.DatetimeIndex(shares.index), load


def occupancy_modulation(base_kw: npt.ArrayLike, occupancy_share: npt.ArrayLike, expected_share: npt.ArrayLike,
                         effect: npt.ArrayLike, *, min_expected_share: float = 0.05) -> FloatArray:
    """A load modulated by the occupancy of the building (kW).

    ``base_kw · (1 + effect · (occupancy_share − expected_share) / max(expected_share, min_expected_share))``,
    clipped at 0: with ``effect = 0.5``, 20 % more people than expected draw 10 % more power.

    Parameters
    ----------
    base_kw
        Load at the expected occupancy (kW), e.g. from :func:`building_load_kw`, ≥ 0.
    occupancy_share
        Share of the building's people present (0–1), broadcastable with ``base_kw``.
    expected_share
        Share present that ``base_kw`` stands for (0–1), broadcastable with ``base_kw``.
    effect
        Elasticity of the load with respect to occupancy (≥ 0), broadcastable with ``base_kw``.
    min_expected_share
        Floor on ``expected_share`` in the ratio (> 0).

    Returns
    -------
    numpy.ndarray
        float64, the broadcast shape of the inputs, ≥ 0.
    """
    base = np.asarray(base_kw, dtype=np.float64)
    occ = np.asarray(occupancy_share, dtype=np.float64)
    exp = np.asarray(expected_share, dtype=np.float64)
    eff = np.asarray(effect, dtype=np.float64)
    if not min_expected_share > 0.0:
        raise ValueError(f"min_expected_share must be > 0, not {min_expected_share}")
    for a, name in ((base, "base_kw"), (occ, "occupancy_share"), (exp, "expected_share"), (eff, "effect")):
        if not np.all(np.isfinite(a) & (a >= 0.0)):
            raise ValueError(f"{name} must be finite and ≥ 0")
    if np.any(occ > 1.0) or np.any(exp > 1.0):
        raise ValueError("occupancy_share and expected_share must be ≤ 1")
    factor = 1.0 + eff * (occ - exp) / np.maximum(exp, min_expected_share)
    out: FloatArray = np.asarray(base * np.maximum(factor, 0.0), dtype=np.float64)
    return out
