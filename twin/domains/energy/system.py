"""The city's buildings, batteries, electric cars and feeders over one day, one 15-minute interval at a
time: the arrays-only core of the energy domain (the domain feeds it occupancy and car trips).

One interval ``k`` (``[k·dt, (k+1)·dt)``, ``dt`` = 15 min) goes:

1. **load**: each building's standard load ``base_kw[k]`` (BDEW profile × annual energy, see
   :mod:`twin.domains.energy.load`) modulated by its occupancy
   (:func:`~twin.domains.energy.load.occupancy_modulation`: present vs expected share of its people);
2. **PV**: ``pv_per_kwp[k] · kwp`` (one pvlib profile per kWp for the day, see
   :mod:`twin.domains.energy.pv`);
3. **EV charging** of the cars plugged in (:meth:`EnergySystem.ev_power_kw`): *uncontrolled* (full
   power until the target state of charge), *delayed* (the same, from a start time on) or *smart*
   (valley filling, below); the charging power of a sampled car stands for ``1 / sample_share``
   cars and is added to its building's load;
4. **batteries** (:func:`~twin.domains.energy.battery.step_batteries`) on the net load
   ``load + ev − pv`` under their controller, then the meter balance
   (:func:`~twin.domains.energy.battery.balance`): import, export, PV used on site;
5. **feeders**: the net exchange ``import − export`` summed per feeder, against its limit.

Outages
-------
``step(..., islanded=mask)`` cuts the buildings of ``mask`` off the grid for the interval
(:func:`~twin.domains.energy.battery.island_step`): no import or export, PV first, then the battery
within its limits, surplus PV charges it, the rest is curtailed, the load not served is unserved;
cars plugged in there do not charge (they stay plugged in and charge later), and the buildings leave
their feeder's load (and the smart-charging water level). Every building then keeps
``load = import − export + pv − curtailed + discharge − charge + unserved``.

Smart charging
--------------
Per feeder, the cars plugged in need ``E`` kWh (to their target state of charge) by ``ready_s``.
Against the feeder's non-EV net load — this interval's actual one, the standard load minus PV of the
later intervals as the forecast — the *water level* ``L`` is the flattest total that delivers ``E``:
``Σ_τ max(L − base_τ, 0)·dt = E`` (valley filling, Gan, Topcu & Low 2013). This interval the
feeder's cars may draw ``L − base_now`` (when positive), shared among them least laxity first; a car
that could no longer reach its target by ``ready_s`` at full power if it waited draws what it must.
The feeder's limit is kept whenever the flattest schedule keeps it. Car chargers are taken as
lossless: the energy charged is the energy stored.

EV energy
---------
A car's stored energy falls by ``km · kwh_per_km`` when one of its car trips arrives (the trip's
routed length; aborted trips are not counted) and rises by what it charges, so over the day
``charged = driven + (stored_end − stored_start)`` exactly (kWh per sampled car).

Everything is elementwise numpy over the buildings and cars, a few array operations per interval;
the only loop is the bisection of the water level, vectorised over the feeders.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from twin.domains.energy import battery as bt
from twin.domains.energy.load import occupancy_modulation

__all__ = ["EnergySystem", "IntervalResult", "water_level_kw", "EV_POLICIES"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: The EV charging policies.
EV_POLICIES = ("uncontrolled", "delayed", "smart")


class IntervalResult(NamedTuple):
    """What the city does in one interval (kW, mean over the interval)."""

    #: Building load (occupancy-modulated standard load plus EV charging), ``(n,)``.
    load_kw: FloatArray
    #: EV charging at each building (all the cars it stands for), ``(n,)``.
    ev_kw: FloatArray
    pv_kw: FloatArray
    charge_kw: FloatArray
    discharge_kw: FloatArray
    #: Batteries' state of charge at the interval's end, ``(n,)``.
    soc: FloatArray
    import_kw: FloatArray
    export_kw: FloatArray
    pv_used_kw: FloatArray
    #: Net exchange ``import − export`` of each feeder, ``(F,)``.
    feeder_kw: FloatArray
    #: Charging power of each sampled car, ``(m,)``.
    car_kw: FloatArray
    #: PV curtailed (islanded buildings only), ``(n,)``.
    curtailed_kw: FloatArray
    #: Load not served (islanded buildings only), ``(n,)``.
    unserved_kw: FloatArray
    #: Buildings cut off the grid in this interval, ``(n,)`` bool.
    islanded: npt.NDArray[np.bool_]


def water_level_kw(base_kw: FloatArray, energy_kwh: FloatArray, dt_h: float, *, iters: int = 60) -> FloatArray:
    """The level ``L`` of each row with ``Σ_τ max(L − base_kw[f, τ], 0) · dt_h = energy_kwh[f]``.

    Parameters
    ----------
    base_kw
        Load of each feeder over the remaining intervals, ``(F, R)``, ``R ≥ 1``.
    energy_kwh
        Energy to add on each feeder, ``(F,)``, ≥ 0.
    dt_h
        Interval length (hours).
    iters
        Bisection steps (60 halve the bracket to far below a watt).

    Returns
    -------
    numpy.ndarray
        ``(F,)``; ``min(base)`` where the energy is 0.
    """
    lo = base_kw.min(axis=1)
    hi = base_kw.max(axis=1) + energy_kwh / (dt_h * base_kw.shape[1])
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fill = np.maximum(mid[:, None] - base_kw, 0.0).sum(axis=1) * dt_h
        over = fill >= energy_kwh
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    out: FloatArray = hi
    return out


class EnergySystem:
    """Buildings, batteries, cars and feeders of one day (see the module docstring).

    Parameters
    ----------
    base_kw
        Standard load of every building in every interval of the day, ``(T, n)`` kW.
    pv_per_kwp
        AC power of 1 kWp in every interval, ``(T,)`` kW/kWp.
    kwp
        PV size of every building, ``(n,)`` (0: none).
    feeder
        Feeder of every building, ``(n,)`` int64 in ``[0, n_feeders)``.
    limit_kw
        Limit of every feeder, ``(F,)``.
    batteries
        The buildings' batteries at the start of the day (capacity 0: none).
    battery_policy
        Controller of the batteries (:data:`twin.domains.energy.battery.POLICIES`).
    threshold_kw
        ``peak_shaving``: each building's import threshold, ``(n,)``.
    price, price_export, co2_g_per_kwh
        Import and export prices and import emissions of every interval, ``(T,)``.
    tou_low, tou_high
        ``tou_arbitrage`` thresholds.
    car_home, car_work
        Home and work building of every sampled electric car, ``(m,)`` (-1: none).
    car_stored_kwh, car_target_kwh, charger_kw
        Stored energy at the start of the day, target and charger power of every car, ``(m,)``.
    car_scale
        Cars each sampled car stands for (``1 / sample_share``).
    ev_policy
        One of :data:`EV_POLICIES`.
    delayed_start_s, ready_s
        ``delayed`` start and ``smart`` deadline (seconds after midnight).
    effect
        Elasticity of the load with respect to occupancy.
    dt_s
        Interval length (seconds).
    """

    def __init__(self, *, base_kw: FloatArray, pv_per_kwp: FloatArray, kwp: FloatArray, feeder: IntArray,
                 limit_kw: FloatArray, batteries: bt.Batteries, battery_policy: bt.Policy,
                 threshold_kw: FloatArray, price: FloatArray, price_export: FloatArray, co2_g_per_kwh: FloatArray,
                 tou_low: float, tou_high: float, car_home: IntArray, car_work: IntArray,
                 car_stored_kwh: FloatArray, car_target_kwh: FloatArray, charger_kw: FloatArray, car_scale: float,
                 ev_policy: str, delayed_start_s: float, ready_s: float, effect: float,
                 dt_s: float = 900.0) -> None:
        if ev_policy not in EV_POLICIES:
            raise ValueError(f"unknown EV policy {ev_policy!r}; known: {', '.join(EV_POLICIES)}")
        self.base_kw = np.asarray(base_kw, np.float64)
        self.T, self.n = self.base_kw.shape
        self.pv_per_kwp = np.asarray(pv_per_kwp, np.float64)
        self.kwp = np.asarray(kwp, np.float64)
        self.feeder = np.asarray(feeder, np.int64)
        self.limit_kw = np.asarray(limit_kw, np.float64)
        self.F = int(self.limit_kw.shape[0])
        self.batteries = batteries
        self.battery_start = batteries
        self.battery_policy = battery_policy
        self.threshold_kw = np.asarray(threshold_kw, np.float64)
        self.price, self.price_export, self.co2 = (np.asarray(a, np.float64) for a in (price, price_export,
                                                                                       co2_g_per_kwh))
        self.tou_low, self.tou_high = float(tou_low), float(tou_high)
        self.car_home = np.asarray(car_home, np.int64)
        self.car_work = np.asarray(car_work, np.int64)
        self.car_stored_kwh = np.asarray(car_stored_kwh, np.float64).copy()
        self.car_start_kwh = self.car_stored_kwh.copy()
        self.car_target_kwh = np.asarray(car_target_kwh, np.float64)
        self.charger_kw = np.asarray(charger_kw, np.float64)
        self.m = int(self.car_home.shape[0])
        self.car_scale = float(car_scale)
        self.fleet_kwh = 0.0  # MaaS fleets' depot charging, city scale
        self.ev_policy = ev_policy
        self.delayed_start_s, self.ready_s = float(delayed_start_s), float(ready_s)
        self.effect = float(effect)
        self.dt_s = float(dt_s)
        self.dt_h = self.dt_s / 3600.0
        # the feeders' forecast non-EV net load: standard load minus PV, (T, F)
        order = np.argsort(self.feeder, kind="stable")
        starts = np.searchsorted(self.feeder[order], np.arange(self.F))
        net = self.base_kw - self.pv_per_kwp[:, None] * self.kwp[None, :]
        fc = np.zeros((self.T, self.F))
        has = np.bincount(self.feeder, minlength=self.F) > 0
        if self.n:
            sums = np.add.reduceat(net[:, order], np.minimum(starts, self.n - 1), axis=1)
            fc[:, has] = sums[:, has]
        self.forecast_kw = fc
        # the day's records
        self.done = np.zeros(self.T, dtype=bool)
        self.series = {name: np.zeros(self.T) for name in (
            "load_kw", "ev_kw", "pv_kw", "charge_kw", "discharge_kw", "import_kw", "export_kw", "pv_used_kw",
            "unserved_kw", "curtailed_kw", "stored_kwh")}
        self.feeder_kw = np.zeros((self.T, self.F))
        self.feeder_ev_kw = np.zeros((self.T, self.F))
        self.b_import_kwh = np.zeros(self.n)
        self.b_export_kwh = np.zeros(self.n)
        self.b_load_kwh = np.zeros(self.n)
        self.b_pv_kwh = np.zeros(self.n)
        self.b_pv_used_kwh = np.zeros(self.n)
        self.b_peak_kw = np.zeros(self.n)
        self.b_unserved_kwh = np.zeros(self.n)
        self.b_curtailed_kwh = np.zeros(self.n)
        #: hours each building was islanded, and of those the hours with all its load served
        self.b_islanded_h = np.zeros(self.n)
        self.b_kept_h = np.zeros(self.n)
        self.car_charged_kwh = np.zeros(self.m)
        self.car_driven_kwh = np.zeros(self.m)

    # ----------------------------------------------------------------------------------- cars
    def ev_power_kw(self, k: int, plug: IntArray, base_feeder_kw: FloatArray) -> FloatArray:
        """Charging power of every sampled car in interval ``k`` (kW per car, 0 when not plugged).

        Parameters
        ----------
        k
            Interval index.
        plug
            Building each car is plugged in at, ``(m,)`` (-1: not plugged).
        base_feeder_kw
            Non-EV net load of every feeder this interval (all buildings, kW), ``(F,)``.
        """
        plugged = plug >= 0
        need = np.where(plugged, np.maximum(self.car_target_kwh - self.car_stored_kwh, 0.0), 0.0)
        p_max = np.minimum(self.charger_kw, need / self.dt_h)
        t0 = k * self.dt_s
        t1 = t0 + self.dt_s
        if self.ev_policy == "uncontrolled" or (self.ev_policy == "smart" and t1 > self.ready_s):
            return p_max
        if self.ev_policy == "delayed":
            out: FloatArray = p_max if t0 >= self.delayed_start_s else np.zeros(self.m)
            return out
        # smart: the cars' share of the feeder's water level, least laxity first
        left_h = (self.ready_s - t1) / 3600.0
        p_must = np.clip((need - self.charger_kw * left_h) / self.dt_h, 0.0, p_max)
        car_feeder = np.where(plugged, self.feeder[np.maximum(plug, 0)], 0)
        e_f = np.asarray(np.bincount(car_feeder, weights=need, minlength=self.F), np.float64) * self.car_scale
        k_end = int(np.clip(np.floor(self.ready_s / self.dt_s + 1e-9), k + 1, self.T))
        profile = self.forecast_kw[k:k_end].T.copy()
        profile[:, 0] = base_feeder_kw
        level = water_level_kw(profile, e_f, self.dt_h)
        allowed = np.maximum(level - base_feeder_kw, 0.0) / self.car_scale  # kW of sampled cars per feeder
        budget = np.maximum(allowed - np.bincount(car_feeder, weights=p_must, minlength=self.F), 0.0)
        extra = p_max - p_must
        idx = np.flatnonzero(extra > 0.0)
        if idx.size == 0:
            return p_must
        laxity = (self.ready_s - t0) / 3600.0 - need[idx] / self.charger_kw[idx]
        o = idx[np.lexsort((idx, laxity, car_feeder[idx]))]
        f = car_feeder[o]
        cum = np.cumsum(extra[o])
        first = np.r_[True, f[1:] != f[:-1]]
        before = cum - extra[o]
        group_start = np.maximum.accumulate(np.where(first, before, 0.0))
        before -= group_start
        give = np.clip(budget[f] - before, 0.0, extra[o])
        p = p_must.copy()
        p[o] += give
        return p

    # ------------------------------------------------------------------------------ interval
    def step(self, k: int, occupancy_share: FloatArray, expected_share: FloatArray, plug: IntArray,
             driven_kwh: FloatArray, islanded: npt.NDArray[np.bool_] | None = None,
             fleet_kw: FloatArray | None = None) -> IntervalResult:
        """Advance interval ``k`` (see the module docstring) and record it.

        Parameters
        ----------
        k
            Interval index, ``0 ≤ k < T``, each at most once a day.
        occupancy_share, expected_share
            Present and expected share of each building's people, ``(n,)`` (equal: no modulation).
        plug
            Building each sampled car is plugged in at, ``(m,)`` (-1: not plugged).
        driven_kwh
            Energy of the car trips each car ended since the last interval, ``(m,)``.
        islanded
            Buildings cut off the grid in this interval (an outage), ``(n,)`` bool; ``None``: none.
        fleet_kw
            Charging power of MaaS fleets at each building (their depots), ``(n,)``, city scale; it is
            part of the EV load (``ev_kw``), not of the sampled cars' energy. ``None``: none.
        """
        if self.done[k]:
            raise ValueError(f"interval {k} was already run")
        load = occupancy_modulation(self.base_kw[k], occupancy_share, expected_share, self.effect)
        pv = self.pv_per_kwp[k] * self.kwp
        self.car_stored_kwh -= driven_kwh
        self.car_driven_kwh += driven_kwh
        isl = np.zeros(self.n, dtype=bool) if islanded is None else np.asarray(islanded, dtype=bool)
        out = bool(isl.any())
        fleet = np.zeros(self.n) if fleet_kw is None else np.asarray(fleet_kw, np.float64)
        if out:  # depots cut off the grid cannot charge
            fleet = np.where(isl, 0.0, fleet)
        base = load - pv + fleet
        base_f = np.asarray(np.bincount(self.feeder, weights=np.where(isl, 0.0, base) if out else base,
                                        minlength=self.F), np.float64)
        car_kw = self.ev_power_kw(k, plug, base_f)
        if out:  # cars plugged in at islanded buildings wait
            car_kw = np.where((plug >= 0) & isl[np.maximum(plug, 0)], 0.0, car_kw)
        self.car_stored_kwh += car_kw * self.dt_h
        self.car_charged_kwh += car_kw * self.dt_h
        ev = np.asarray(np.bincount(np.maximum(plug, 0), weights=np.where(plug >= 0, car_kw, 0.0),
                                    minlength=self.n)[: self.n], np.float64) * self.car_scale + fleet
        self.fleet_kwh += float(fleet.sum()) * self.dt_h
        total = load + ev
        st = bt.step_batteries(self.batteries, total - pv, self.dt_h, self.battery_policy,
                               threshold_kw=self.threshold_kw, price=self.price[k], low=self.tou_low,
                               high=self.tou_high)
        bal = bt.balance(total, pv, st.charge_kw, st.discharge_kw)
        zero = np.zeros(self.n)
        curtailed, unserved = zero, zero
        if out:
            il = bt.island_step(self.batteries, total, pv, self.dt_h)
            st = bt.BatteryStep(charge_kw=np.where(isl, il.charge_kw, st.charge_kw),
                                discharge_kw=np.where(isl, il.discharge_kw, st.discharge_kw),
                                soc=np.where(isl, il.soc, st.soc))
            bal = bt.Balance(import_kw=np.where(isl, 0.0, bal.import_kw), export_kw=np.where(isl, 0.0, bal.export_kw),
                             pv_used_kw=np.where(isl, il.pv_used_kw, bal.pv_used_kw), charge_kw=st.charge_kw,
                             discharge_kw=st.discharge_kw)
            curtailed = np.where(isl, il.curtailed_kw, 0.0)
            unserved = np.where(isl, il.unserved_kw, 0.0)
        self.batteries = self.batteries.with_soc(st.soc)
        fk = np.asarray(np.bincount(self.feeder, weights=bal.import_kw - bal.export_kw, minlength=self.F), np.float64)
        # records
        self.done[k] = True
        s = self.series
        for name, v in (("load_kw", total), ("ev_kw", ev), ("pv_kw", pv), ("charge_kw", st.charge_kw),
                        ("discharge_kw", st.discharge_kw), ("import_kw", bal.import_kw),
                        ("export_kw", bal.export_kw), ("pv_used_kw", bal.pv_used_kw), ("unserved_kw", unserved),
                        ("curtailed_kw", curtailed)):
            s[name][k] = float(v.sum())
        s["stored_kwh"][k] = float(self.batteries.stored_kwh.sum())
        self.feeder_kw[k] = fk
        self.feeder_ev_kw[k] = np.bincount(self.feeder, weights=ev, minlength=self.F)
        self.b_import_kwh += bal.import_kw * self.dt_h
        self.b_export_kwh += bal.export_kw * self.dt_h
        self.b_load_kwh += total * self.dt_h
        self.b_pv_kwh += pv * self.dt_h
        self.b_pv_used_kwh += bal.pv_used_kw * self.dt_h
        np.maximum(self.b_peak_kw, bal.import_kw, out=self.b_peak_kw)
        if out:
            self.b_unserved_kwh += unserved * self.dt_h
            self.b_curtailed_kwh += curtailed * self.dt_h
            self.b_islanded_h += np.where(isl, self.dt_h, 0.0)
            self.b_kept_h += np.where(isl & (unserved == 0.0), self.dt_h, 0.0)
        return IntervalResult(load_kw=total, ev_kw=ev, pv_kw=pv, charge_kw=st.charge_kw,
                              discharge_kw=st.discharge_kw, soc=st.soc, import_kw=bal.import_kw,
                              export_kw=bal.export_kw, pv_used_kw=bal.pv_used_kw, feeder_kw=fk, car_kw=car_kw,
                              curtailed_kw=curtailed, unserved_kw=unserved, islanded=isl)

    # ------------------------------------------------------------------------------- results
    def totals(self) -> dict[str, float]:
        """The day's city totals over the intervals run: energies (kWh), cost, CO2 (kg), peaks."""
        d = self.done
        s = self.series
        e = {name: float(s[name][d].sum() * self.dt_h) for name in (
            "load_kw", "ev_kw", "pv_kw", "charge_kw", "discharge_kw", "import_kw", "export_kw", "pv_used_kw",
            "unserved_kw", "curtailed_kw")}
        over = np.abs(self.feeder_kw[d]) > self.limit_kw[None, :]
        return {
            "load_kwh": e["load_kw"], "ev_kwh": e["ev_kw"], "pv_kwh": e["pv_kw"], "import_kwh": e["import_kw"],
            "export_kwh": e["export_kw"], "pv_used_kwh": e["pv_used_kw"], "charge_kwh": e["charge_kw"],
            "discharge_kwh": e["discharge_kw"], "unserved_kwh": e["unserved_kw"], "curtailed_kwh": e["curtailed_kw"],
            "cost": float(((s["import_kw"] * self.price - s["export_kw"] * self.price_export)[d]).sum() * self.dt_h),
            "co2_kg": float((s["import_kw"] * self.co2)[d].sum() * self.dt_h / 1000.0),
            "peak_feeder_kw": float(self.feeder_kw[d].max()) if d.any() else 0.0,
            "peak_total_kw": float((s["import_kw"] - s["export_kw"])[d].max()) if d.any() else 0.0,
            "overload_h": float(over.sum() * self.dt_h),
            "overloaded_feeders": int(over.any(axis=0).sum()),
        }
