"""Batteries of many buildings as arrays: limits, per-step controllers and the building's balance.

The model
---------
Building ``i`` has a battery of usable capacity ``energy_kwh[i]`` (0 for none), a power rating
``power_kw[i]`` (the same for charging and discharging) and a round-trip efficiency
``efficiency_rt[i]``, split evenly between the two directions: ``η_c = η_d = sqrt(efficiency_rt)``.
The state of charge ``soc`` is the stored energy as a share of ``energy_kwh``, kept within
``[soc_min, soc_max]``. Over a step of ``dt_h`` hours with constant charging power ``c`` (kW,
drawn on the building's side) and discharging power ``d`` (kW, delivered on the building's side)
the stored energy changes by

    ``ΔE = η_c · c · dt_h − d · dt_h / η_d``  (kWh),

so a kWh charged and discharged again returns ``η_c · η_d = efficiency_rt`` kWh. A battery never
charges and discharges in the same step.

Limits (per building and step): ``0 ≤ c ≤ min(power_kw, (soc_max − soc)·energy_kwh / (η_c·dt_h))``
and ``0 ≤ d ≤ min(power_kw, (soc − soc_min)·energy_kwh · η_d / dt_h)``: the power rating and the
energy that fits or is left. A controller only *requests* powers; :func:`step_batteries` clips them
to these limits, so no controller can break them.

Controllers (``policy``), acting on the net load ``load − pv`` (kW, > 0: a deficit):

* ``"self_consumption"`` (:func:`self_consumption`): charge with the PV surplus, discharge to cover
  the deficit; the grid is used as little as possible.
* ``"peak_shaving"`` (:func:`peak_shaving`): discharge what the net load exceeds ``threshold_kw``
  by, and charge (from PV or the grid) while the net load is below the threshold, never above it:
  the import never exceeds ``max(threshold_kw, net load)`` and is lowered where the net load peaks.
* ``"tou_arbitrage"`` (:func:`tou_arbitrage`): at a price ≤ ``low`` charge at full power (from the
  grid), at a price ≥ ``high`` discharge to cover the deficit, in between store the PV surplus only.

No controller discharges more than the building's deficit: batteries do not export to the grid (most
tariffs do not pay for it). Everything is elementwise numpy over the buildings, one call per step:
a step is a few array operations, so neither Numba nor a per-building loop is needed.

The balance
-----------
:func:`balance` splits the flows at the building's meter (all kW, ≥ 0):

* ``import_kw``, ``export_kw``: from and to the grid, never both;
* ``pv_used_kw``: PV consumed on site, by the load and by charging the battery (``pv − export``);
* ``charge_kw``, ``discharge_kw``: the battery's.

It satisfies the meter balance ``load = import − export + pv + discharge − charge`` and, since
batteries do not export, the on-site balance ``load = import + pv_used + discharge − charge``
(``pv = pv_used + export``): both hold to rounding, a few ulps of the largest flow, because the
grid exchange is computed as the one residual of the others.

Islanded buildings
------------------
During an outage (:func:`island_step`) a building has no grid: PV serves the load first, the
battery covers what is left within its limits (:func:`charge_limits_kw`, whatever the controller),
surplus PV charges it, PV that cannot be used is curtailed and the load not served is unserved:
``load = pv − curtailed + discharge − charge + unserved``, the meter balance with
``import = export = 0`` and the two new terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "Policy",
    "POLICIES",
    "Batteries",
    "BatteryStep",
    "Balance",
    "self_consumption",
    "peak_shaving",
    "tou_arbitrage",
    "charge_limits_kw",
    "step_batteries",
    "balance",
    "IslandStep",
    "island_step",
]

FloatArray = npt.NDArray[np.float64]
Policy = Literal["self_consumption", "peak_shaving", "tou_arbitrage"]
#: The controllers :func:`step_batteries` knows.
POLICIES: tuple[Policy, ...] = ("self_consumption", "peak_shaving", "tou_arbitrage")


def _f64(a: npt.ArrayLike, n: int, name: str) -> FloatArray:
    """``a`` as a float64 array of shape ``(n,)`` (scalars broadcast), finite."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ValueError(f"{name} must be a scalar or of shape ({n},), not {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    out: FloatArray = np.broadcast_to(arr, (n,)).copy()
    return out


# ------------------------------------------------------------------------------------------ state
@dataclass(frozen=True)
class Batteries:
    """The batteries of ``n`` buildings and their state of charge.

    Parameters
    ----------
    energy_kwh
        Usable capacity (kWh), shape ``(n,)``, ≥ 0 (0: no battery).
    power_kw
        Power rating for charging and discharging (kW), scalar or ``(n,)``, ≥ 0.
    soc
        State of charge (share of ``energy_kwh``), scalar or ``(n,)``, within ``[soc_min, soc_max]``.
    efficiency_rt
        Round-trip efficiency (share, (0, 1]), scalar or ``(n,)``.
    soc_min, soc_max
        Limits of the state of charge (shares, ``0 ≤ soc_min ≤ soc_max ≤ 1``), scalar or ``(n,)``.

    Notes
    -----
    Frozen: :func:`step_batteries` returns the new ``soc``; :meth:`with_soc` makes the next state.
    """

    energy_kwh: FloatArray
    power_kw: FloatArray
    soc: FloatArray
    efficiency_rt: FloatArray = field(default_factory=lambda: np.asarray(0.9))
    soc_min: FloatArray = field(default_factory=lambda: np.asarray(0.1))
    soc_max: FloatArray = field(default_factory=lambda: np.asarray(0.9))

    def __post_init__(self) -> None:
        e = np.asarray(self.energy_kwh, dtype=np.float64)
        if e.ndim != 1:
            raise ValueError(f"energy_kwh must be of shape (n,), not {e.shape}")
        n = e.shape[0]
        for name in ("energy_kwh", "power_kw", "soc", "efficiency_rt", "soc_min", "soc_max"):
            object.__setattr__(self, name, _f64(getattr(self, name), n, name))
        if np.any(self.energy_kwh < 0.0) or np.any(self.power_kw < 0.0):
            raise ValueError("energy_kwh and power_kw must be ≥ 0")
        if np.any(self.efficiency_rt <= 0.0) or np.any(self.efficiency_rt > 1.0):
            raise ValueError("efficiency_rt must be in (0, 1]")
        if np.any(self.soc_min < 0.0) or np.any(self.soc_max > 1.0) or np.any(self.soc_min > self.soc_max):
            raise ValueError("soc_min and soc_max must satisfy 0 ≤ soc_min ≤ soc_max ≤ 1")
        if np.any(self.soc < self.soc_min) or np.any(self.soc > self.soc_max):
            raise ValueError("soc must lie within [soc_min, soc_max]")

    @property
    def n(self) -> int:
        """Number of buildings."""
        return int(self.energy_kwh.shape[0])

    @property
    def eta_charge(self) -> FloatArray:
        """Charging efficiency ``sqrt(efficiency_rt)``, shape ``(n,)``."""
        out: FloatArray = np.sqrt(self.efficiency_rt)
        return out

    @property
    def eta_discharge(self) -> FloatArray:
        """Discharging efficiency ``sqrt(efficiency_rt)``, shape ``(n,)``."""
        out: FloatArray = np.sqrt(self.efficiency_rt)
        return out

    @property
    def stored_kwh(self) -> FloatArray:
        """Stored energy ``soc · energy_kwh`` (kWh), shape ``(n,)``."""
        out: FloatArray = self.soc * self.energy_kwh
        return out

    def with_soc(self, soc: npt.ArrayLike) -> Batteries:
        """The same batteries at another state of charge."""
        return Batteries(energy_kwh=self.energy_kwh, power_kw=self.power_kw, soc=np.asarray(soc, dtype=np.float64),
                         efficiency_rt=self.efficiency_rt, soc_min=self.soc_min, soc_max=self.soc_max)


class BatteryStep(NamedTuple):
    """What the batteries do in one step (each float64, shape ``(n,)``)."""

    #: Charging power drawn on the building's side (kW, ≥ 0).
    charge_kw: FloatArray
    #: Discharging power delivered on the building's side (kW, ≥ 0).
    discharge_kw: FloatArray
    #: State of charge at the end of the step (share of ``energy_kwh``).
    soc: FloatArray


class Balance(NamedTuple):
    """The flows at each building's meter in one step (each float64 kW, ≥ 0, shape ``(n,)``)."""

    import_kw: FloatArray
    export_kw: FloatArray
    #: PV consumed on site (by the load and by charging the battery): ``pv − export``.
    pv_used_kw: FloatArray
    charge_kw: FloatArray
    discharge_kw: FloatArray


# ------------------------------------------------------------------------------------- controllers
def self_consumption(net_load_kw: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Requested ``(charge_kw, discharge_kw)``: store the PV surplus, cover the deficit.

    Parameters
    ----------
    net_load_kw
        ``load − pv`` (kW), shape ``(n,)``.
    """
    net = np.asarray(net_load_kw, dtype=np.float64)
    return np.maximum(-net, 0.0), np.maximum(net, 0.0)


def peak_shaving(net_load_kw: FloatArray, threshold_kw: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Requested ``(charge_kw, discharge_kw)``: discharge the net load above ``threshold_kw``, charge up
    to the threshold below it.

    Parameters
    ----------
    net_load_kw
        ``load − pv`` (kW), shape ``(n,)``.
    threshold_kw
        Import the battery keeps the building under (kW), scalar or ``(n,)``.
    """
    net = np.asarray(net_load_kw, dtype=np.float64)
    thr = np.asarray(threshold_kw, dtype=np.float64)
    return np.maximum(thr - net, 0.0), np.maximum(net - thr, 0.0)


def tou_arbitrage(net_load_kw: FloatArray, price: npt.ArrayLike, low: float,
                  high: float) -> tuple[FloatArray, FloatArray]:
    """Requested ``(charge_kw, discharge_kw)`` for a time-of-use price.

    At ``price ≤ low`` charge as fast as the battery allows (``inf`` is requested), at
    ``price ≥ high`` cover the deficit, in between store the PV surplus only.

    Parameters
    ----------
    net_load_kw
        ``load − pv`` (kW), shape ``(n,)``.
    price
        The step's energy price (any currency per kWh), scalar or ``(n,)``.
    low, high
        Thresholds, ``low < high``.
    """
    if not low < high:
        raise ValueError(f"tou_arbitrage needs low < high, not {low} and {high}")
    net = np.asarray(net_load_kw, dtype=np.float64)
    p = np.broadcast_to(np.asarray(price, dtype=np.float64), net.shape)
    surplus = np.maximum(-net, 0.0)
    charge = np.where(p <= low, np.inf, surplus)
    discharge = np.where(p >= high, np.maximum(net, 0.0), 0.0)
    return charge, discharge


def charge_limits_kw(state: Batteries, dt_h: float) -> tuple[FloatArray, FloatArray]:
    """The most the batteries can charge and discharge in a step of ``dt_h`` hours.

    Returns
    -------
    tuple of numpy.ndarray
        ``(max_charge_kw, max_discharge_kw)``, float64 ≥ 0, shape ``(n,)``: the power rating or the
        energy that fits (``(soc_max − soc)·energy_kwh / (η_c·dt_h)``) or is left above ``soc_min``
        (``(soc − soc_min)·energy_kwh·η_d / dt_h``), whichever is less.
    """
    if not dt_h > 0.0:
        raise ValueError(f"dt_h must be > 0, not {dt_h}")
    room_kwh = np.maximum(state.soc_max - state.soc, 0.0) * state.energy_kwh
    left_kwh = np.maximum(state.soc - state.soc_min, 0.0) * state.energy_kwh
    max_c = np.minimum(state.power_kw, room_kwh / (state.eta_charge * dt_h))
    max_d = np.minimum(state.power_kw, left_kwh * state.eta_discharge / dt_h)
    return max_c, max_d


def step_batteries(state: Batteries, net_load_kw: npt.ArrayLike, dt_h: float, policy: Policy, *,
                   threshold_kw: npt.ArrayLike | None = None, price: npt.ArrayLike | None = None,
                   low: float | None = None, high: float | None = None) -> BatteryStep:
    """One step of the batteries under a controller.

    Parameters
    ----------
    state
        The batteries at the start of the step.
    net_load_kw
        ``load − pv`` of each building over the step (kW), shape ``(n,)``.
    dt_h
        Step length (hours), > 0.
    policy
        One of :data:`POLICIES` (see the module's docstring).
    threshold_kw
        ``"peak_shaving"`` only: the import to stay under (kW), scalar or ``(n,)``.
    price, low, high
        ``"tou_arbitrage"`` only: the step's price (scalar or ``(n,)``) and its thresholds.

    Returns
    -------
    BatteryStep
        The charging and discharging powers, clipped to :func:`charge_limits_kw` (never both > 0),
        and the state of charge at the end of the step,
        ``soc + (η_c·charge − discharge/η_d)·dt_h / energy_kwh``, kept within ``[soc_min, soc_max]``
        against rounding (a change of a few ulps).
    """
    net = _f64(net_load_kw, state.n, "net_load_kw")
    if policy == "self_consumption":
        req_c, req_d = self_consumption(net)
    elif policy == "peak_shaving":
        if threshold_kw is None:
            raise ValueError("peak_shaving needs threshold_kw")
        req_c, req_d = peak_shaving(net, _f64(threshold_kw, state.n, "threshold_kw"))
    elif policy == "tou_arbitrage":
        if price is None or low is None or high is None:
            raise ValueError("tou_arbitrage needs price, low and high")
        req_c, req_d = tou_arbitrage(net, _f64(price, state.n, "price"), low, high)
    else:
        raise ValueError(f"unknown battery policy {policy!r}; known: {', '.join(POLICIES)}")
    max_c, max_d = charge_limits_kw(state, dt_h)
    charge = np.minimum(req_c, max_c)
    discharge = np.where(charge > 0.0, 0.0, np.minimum(req_d, max_d))
    delta_kwh = (state.eta_charge * charge - discharge / state.eta_discharge) * dt_h
    has = state.energy_kwh > 0.0
    soc = state.soc + np.divide(delta_kwh, state.energy_kwh, out=np.zeros(state.n), where=has)
    soc = np.clip(soc, state.soc_min, state.soc_max)
    return BatteryStep(charge_kw=charge, discharge_kw=discharge, soc=soc)


# ---------------------------------------------------------------------------------------- balance
def balance(load_kw: npt.ArrayLike, pv_kw: npt.ArrayLike, charge_kw: npt.ArrayLike = 0.0,
            discharge_kw: npt.ArrayLike = 0.0) -> Balance:
    """The flows at each building's meter (see "The balance" in the module's docstring).

    Parameters
    ----------
    load_kw
        Building demand (kW), shape ``(n,)``, ≥ 0.
    pv_kw
        PV generation (kW), scalar or ``(n,)``, ≥ 0.
    charge_kw, discharge_kw
        The battery's (kW, ≥ 0, not both > 0), e.g. from :func:`step_batteries`; 0 without one.

    Returns
    -------
    Balance
        ``import_kw − export_kw = load + charge − pv − discharge`` (the residual, computed once);
        ``pv_used_kw = pv − export_kw``.

    Raises
    ------
    ValueError
        Negative flows, or a discharge beyond the building's demand (a battery exporting).
    """
    load = np.asarray(load_kw, dtype=np.float64)
    if load.ndim != 1:
        raise ValueError(f"load_kw must be of shape (n,), not {load.shape}")
    n = load.shape[0]
    pv, c, d = (_f64(a, n, name) for a, name in ((pv_kw, "pv_kw"), (charge_kw, "charge_kw"),
                                                 (discharge_kw, "discharge_kw")))
    load = _f64(load, n, "load_kw")
    for a, name in ((load, "load_kw"), (pv, "pv_kw"), (c, "charge_kw"), (d, "discharge_kw")):
        if np.any(a < 0.0):
            raise ValueError(f"{name} must be ≥ 0")
    if np.any((c > 0.0) & (d > 0.0)):
        raise ValueError("a battery cannot charge and discharge in the same step")
    residual = (load + c) - (pv + d)
    import_kw = np.maximum(residual, 0.0)
    export_kw = np.maximum(-residual, 0.0)
    scale = np.maximum.reduce([load, pv, c, d, np.ones(n)])
    if np.any(export_kw > pv + 1e-12 * scale):
        raise ValueError("a battery discharges more than its building's demand (it would export)")
    pv_used = np.maximum(pv - export_kw, 0.0)
    return Balance(import_kw=import_kw, export_kw=export_kw, pv_used_kw=pv_used, charge_kw=c, discharge_kw=d)


# ------------------------------------------------------------------------------------ islanded
class IslandStep(NamedTuple):
    """What islanded buildings do in one step (each float64 kW ≥ 0, ``soc`` a share; shape ``(n,)``)."""

    charge_kw: FloatArray
    discharge_kw: FloatArray
    #: State of charge at the end of the step.
    soc: FloatArray
    #: PV consumed on site (by the load and by charging): ``pv − curtailed``.
    pv_used_kw: FloatArray
    #: PV that neither the load nor the battery could take.
    curtailed_kw: FloatArray
    #: Load not served.
    unserved_kw: FloatArray


def island_step(state: Batteries, load_kw: npt.ArrayLike, pv_kw: npt.ArrayLike, dt_h: float) -> IslandStep:
    """One step of buildings cut off from the grid (see "Islanded buildings" in the module's docstring).

    Parameters
    ----------
    state
        The batteries at the start of the step (capacity 0: none).
    load_kw, pv_kw
        Demand and PV generation (kW ≥ 0), shape ``(n,)`` (PV scalar allowed).
    dt_h
        Step length (hours), > 0.

    Returns
    -------
    IslandStep
        The battery's powers (the self-consumption request clipped to :func:`charge_limits_kw` by
        :func:`step_batteries`), its new state of charge, and ``unserved = load − pv − discharge``
        where the load exceeds PV, ``curtailed = pv − load − charge`` where PV exceeds it; so
        ``load = pv − curtailed + discharge − charge + unserved`` to rounding.
    """
    n = state.n
    load = _f64(load_kw, n, "load_kw")
    pv = _f64(pv_kw, n, "pv_kw")
    if np.any(load < 0.0) or np.any(pv < 0.0):
        raise ValueError("load_kw and pv_kw must be ≥ 0")
    net = load - pv
    st = step_batteries(state, net, dt_h, "self_consumption")
    unserved = np.maximum(net - st.discharge_kw, 0.0)
    curtailed = np.maximum(-net - st.charge_kw, 0.0)
    pv_used = np.maximum(pv - curtailed, 0.0)
    return IslandStep(charge_kw=st.charge_kw, discharge_kw=st.discharge_kw, soc=st.soc, pv_used_kw=pv_used,
                      curtailed_kw=curtailed, unserved_kw=unserved)
