"""The energy domain: buildings' electricity demand driven by where the residents are, rooftop PV,
batteries, EV charging from the day's car trips, and distribution feeders with limits.

How a day goes
--------------
* **Buildings** are the rows of the map's buildings table (:attr:`ctx.buildings`, OSM footprints
  plus the synthetic buildings of nodes without one); the residents' homes and workplaces are
  buildings of it (``population.home_building`` / ``work_building``), so the people in each
  building come from the location query (:meth:`ctx.locations`). Floor area is footprint × storeys
  (``default_levels`` when untagged); a building without a footprint gets ``floor_m2_per_person``
  per person living or working in it (counted for the whole population: sample / ``sample_share``).
* **Standard load** (at ``start_day``, for the configured ``date``): the BDEW profile of the
  building's kind (H0 homes, G1 workplaces and schools, G0 shops;
  :mod:`twin.domains.energy.load`) for that date, scaled to floor area × intensity. A synthetic
  building with more workers than residents counts as a workplace.
* **Occupancy** every 15 minutes (``Phase(period_s=900, after="move")``, the state at the end of
  each interval): homes compare the share of their residents at home with ``expected_home`` (the
  presence the H0 profile stands for), workplaces the share of their workers at work with
  ``expected_work``; :func:`~twin.domains.energy.load.occupancy_modulation` turns the difference
  into load with the elasticity ``effect``. Buildings nobody lives or works in draw their standard
  load.
* **PV** (pvlib PVWatts, :mod:`twin.domains.energy.pv`): one profile per kWp for the day, at the
  map's centre, under the clear sky or a TMY3 file's weather (hourly, interpolated to the
  intervals' midpoints); a share ``pv.adoption`` of the buildings with a footprint has
  ``footprint × usable_share × kwp_per_m2`` kWp (drawn from the stream ``domain:energy:pv``).
* **Batteries** at a share of the PV buildings (stream ``domain:energy:battery``), sized by kWp,
  under their controller (:mod:`twin.domains.energy.battery`).
* **Electric cars**: a share ``ev.share`` of the residents who can drive (stream
  ``domain:energy:ev``). Each car trip of theirs that arrives uses ``km × kwh_per_km``; the car is
  plugged in while its driver is at home (at the home building) or, with ``work_charging``, at
  work after driving there. Charging policies and their model: :mod:`twin.domains.energy.system`.
* **Feeders** (:mod:`twin.domains.energy.feeders`): k-means over the building positions (stream
  ``domain:energy:feeders``), ``k = count`` or buildings / ``buildings_per_feeder``; limit
  ``limit_kw`` or ``limit_factor`` × the feeder's peak standard load of the day.

The day runs over the intervals whose end lies in the simulated window and at most 24:00: a full
energy day needs ``simulation.start_s: 0`` and ``end_s`` of 24:00 or later.

Outputs: ``energy_series.parquet`` (city totals per interval), ``energy_feeder_series.parquet``
(per feeder and interval), ``energy_feeders.parquet``, ``energy_buildings.parquet`` (per building,
OSM ids), ``energy_cars.parquet`` (per electric car), the ``energy_*`` KPIs, a report section. Event
types ``energy_building_step`` and ``energy_car_step`` (every building / car every interval, with
the occupancy share the load used; built only when subscribed to) let tests and other domains check every step.

Outages
-------
The timeline event ``outage`` (:class:`~twin.domains.energy.config.OutageEvent`: ``at_s``,
``duration_s`` or ``until_s``, ``feeders`` and / or ``points`` with ``radius_m``) islands the
buildings of its area over the 15-minute intervals whose midpoint lies in its window (the model
in :mod:`twin.domains.energy.system`). Feeder ids are checked by :meth:`EnergyDomain.preflight`
(and again at ``attach``). An outage that the mobility day ended before (the timeline fires only
while the day runs) is taken from the scenario at ``end_day``, so the intervals run then see it too.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from twin.domains.base import Domain, Phase, register_domain
from twin.domains.energy.config import STEP_S, EnergyConfig, OutageEvent

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from twin._tables import Categorical
    from twin.context import DomainContext
    from twin.domains.energy.system import EnergySystem

__all__ = ["EnergyDomain", "day_series", "interval_times"]

#: Intervals of a day.
N_INTERVALS = int(round(86400.0 / STEP_S))
_BUILDING_EVENT = ("t_s", "building", "occupancy", "expected", "load_kw", "ev_kw", "pv_kw", "charge_kw",
                   "discharge_kw", "soc", "import_kw", "export_kw", "pv_used_kw", "curtailed_kw", "unserved_kw",
                   "islanded")
_CAR_EVENT = ("t_s", "car", "resident_id", "building", "charge_kw", "driven_kwh", "stored_kwh")


def day_series(value: float | tuple[float, ...]) -> np.ndarray:
    """A flat value or a 24 / 96-value series as the day's 96 quarter-hourly values."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.full(N_INTERVALS, float(v))
    return np.repeat(v, N_INTERVALS // v.size)


def interval_times(date: str, tz: _dt.tzinfo, offset_s: float = 0.0) -> Any:
    """tz-aware instants ``date 00:00 + offset_s + k · 15 min`` of the day (a pandas DatetimeIndex)."""
    import pandas as pd

    start = pd.Timestamp(date).tz_localize(tz) + pd.Timedelta(seconds=offset_s)
    return pd.date_range(start, periods=N_INTERVALS, freq=f"{int(STEP_S)}s")


def _tz(cfg: EnergyConfig, lon: float) -> _dt.tzinfo:
    if cfg.timezone is not None:
        import zoneinfo

        return zoneinfo.ZoneInfo(cfg.timezone)
    return _dt.timezone(_dt.timedelta(hours=round(lon / 15.0)))


def pv_day_per_kwp(cfg: EnergyConfig, lat: float, lon: float) -> np.ndarray:
    """AC power of 1 kWp (kW) in every interval of the day, at the intervals' midpoints."""
    from twin.domains.energy import pv as pvm

    tz = _tz(cfg, lon)
    mid = interval_times(cfg.date, tz, STEP_S / 2)
    p = cfg.pv
    if p.weather is None:
        return pvm.pv_power_per_kwp(lat, lon, mid, p.tilt_deg, p.azimuth_deg, losses_pct=p.losses_pct)
    import pandas as pd

    year = _dt.date.fromisoformat(cfg.date).year
    w = pvm.read_tmy3(p.weather, coerce_year=year).weather.copy()
    # a typical year is a year of local (standard-time) hours: put them at the same hours of the map's standard
    # time, so that the file's noon is the city's noon wherever the station is
    noon = _dt.datetime.fromisoformat(cfg.date).replace(hour=12, tzinfo=tz)
    std = (noon.utcoffset() or _dt.timedelta(0)) - (noon.dst() or _dt.timedelta(0))
    w.index = pd.DatetimeIndex(pd.DatetimeIndex(w.index).tz_localize(None)).tz_localize(_dt.timezone(std))
    t_mid = mid.tz_convert("UTC")
    wt = pd.DatetimeIndex(w.index).tz_convert("UTC")
    pad = np.timedelta64(2, "h")
    sel = (wt >= t_mid[0] - pad) & (wt <= t_mid[-1] + pad)
    if sel.sum() < 2:
        raise ValueError(f"the weather file has no hours on {cfg.date}")
    hours = pd.DatetimeIndex(w.index[sel])
    hourly = pvm.pv_power_per_kwp(lat, lon, hours, p.tilt_deg, p.azimuth_deg, weather=w.loc[sel],
                                  losses_pct=p.losses_pct)
    x = hours.tz_convert("UTC").asi8.astype(np.float64)
    out: np.ndarray = np.interp(t_mid.asi8.astype(np.float64), x, hourly)
    return out


def bdew_day_shares(date: str) -> dict[str, np.ndarray]:
    """The BDEW profiles' shares of the year's energy in each interval of ``date`` (96 values each)."""
    import pandas as pd

    from twin.domains.energy.load import standard_profiles

    day = pd.Timestamp(date)
    prof = standard_profiles(day.year, ("h0_dyn", "g0", "g1"))
    rows = pd.DatetimeIndex(prof.index).normalize() == day
    return {name: prof[name].to_numpy()[rows] for name in prof.columns}


@register_domain
class EnergyDomain(Domain):
    """Building loads, PV, batteries, EV charging and feeders (see the module docstring)."""

    name = "energy"
    Config = EnergyConfig
    config: EnergyConfig
    timeline_events: ClassVar[dict[str, type[BaseModel]]] = {"outage": OutageEvent}

    # --------------------------------------------------------------------------- set-up
    @classmethod
    def preflight(cls, config: Any, scenario: Any, network: Any) -> list[tuple[str, str]]:
        if config is None:
            return [(f"timeline.{i}", "an outage needs the scenario's energy: section")
                    for i, ev in enumerate(getattr(scenario, "timeline", ())) if getattr(ev, "type", None) == "outage"]
        b = getattr(network, "buildings", None)
        if b is None or len(b) == 0:
            return [("energy", f"the network of {scenario.map.source} has no buildings table")]
        return outage_problems(scenario, feeder_count(config, len(b)))

    def attach(self, ctx: DomainContext) -> None:
        from twin.domains.energy.feeders import kmeans_feeders
        from twin.domains.energy.load import KWH_PER_M2_YR, PROFILE_BY_KIND, annual_kwh
        from twin.network.buildings import BUILDING_SYNTHETIC, KIND_NAMES
        from twin.network.road_network import _project

        cfg = self.config
        b = ctx.buildings
        if b is None or len(b) == 0:
            raise ValueError("the energy domain needs the network's buildings table")
        net = ctx.network
        pop = ctx.population
        self.n = n = len(b)
        self.osm_id = np.asarray(b.osm_id, np.int64)
        share = float(ctx.scenario.population.sample_share)
        self.sample_share = share
        home_b = np.asarray(pop.home_building, np.int64)
        work_b = np.asarray(pop.work_building, np.int64)
        self.home_b, self.work_b = home_b, work_b
        self.residents = np.bincount(home_b[home_b >= 0], minlength=n).astype(np.int64)
        self.workers = np.bincount(work_b[work_b >= 0], minlength=n).astype(np.int64)
        # kinds for the load: a synthetic building with more workers than residents is a workplace
        kind = np.asarray(b.kind, np.int64).copy()
        syn = kind == BUILDING_SYNTHETIC
        self.load_kind = np.where(syn & (self.workers > self.residents), KIND_NAMES.index("work"), kind)
        names = np.asarray(KIND_NAMES, dtype=object)[self.load_kind]
        self.profile = np.array([PROFILE_BY_KIND[str(k)] for k in names], dtype=object)
        self.is_home = np.isin(self.profile, ("h0", "h0_dyn"))
        fp = np.asarray(b.footprint_area_m2, np.float64)
        has_fp = np.isfinite(fp) & (fp > 0)
        levels = np.where(np.isfinite(b.levels) & (b.levels >= 1), b.levels, cfg.default_levels)
        people = (self.residents + self.workers) / share
        self.footprint_m2 = np.where(has_fp, fp, 0.0)
        self.floor_m2 = np.where(has_fp, fp * levels, cfg.floor_m2_per_person * people)
        self.annual_kwh = annual_kwh(self.floor_m2, names, KWH_PER_M2_YR)
        # PV and batteries (one draw per building, whatever its kind)
        from twin.domains.energy.pv import roof_kwp

        has_pv = (ctx.rng("pv").random(n) < cfg.pv.adoption) & has_fp
        self.kwp = roof_kwp(self.footprint_m2, has_pv, cfg.pv.kwp_per_m2, cfg.pv.usable_share)
        has_bat = (ctx.rng("battery").random(n) < cfg.battery.adoption) & (self.kwp > 0)
        self.battery_kwh = np.where(has_bat, self.kwp * cfg.battery.kwh_per_kwp, 0.0)
        self.battery_kw = self.battery_kwh * cfg.battery.c_rate_per_h
        # electric cars: residents who can drive
        drivers = np.flatnonzero(np.asarray(pop.can_drive, bool))
        draw = ctx.rng("ev").random(pop.n)
        self.car_resident = drivers[draw[drivers] < cfg.ev.share].astype(np.int64)
        self.car_of = np.full(pop.n, -1, np.int64)
        self.car_of[self.car_resident] = np.arange(self.car_resident.size)
        # feeders
        self.x_m, self.y_m = _project(np.asarray(b.lon, np.float64), np.asarray(b.lat, np.float64), net.crs)
        k = feeder_count(cfg, n)
        self.feeder, self.sub_x_m, self.sub_y_m = kmeans_feeders(self.x_m, self.y_m, k, ctx.rng("feeders"))
        self.n_feeders = int(self.sub_x_m.size)
        problems = outage_problems(ctx.scenario, self.n_feeders)
        if problems:
            raise ValueError("; ".join(f"{f}: {p}" for f, p in problems))
        self._crs = net.crs
        #: the day's outages: (first interval, end interval (exclusive), buildings islanded)
        self._outages: list[tuple[int, int, np.ndarray]] = []
        self._outage_seen: list[BaseModel] = []
        self.lat = float(np.mean(net.node_lat))
        self.lon = float(np.mean(net.node_lon))
        self._profiles: tuple[np.ndarray, np.ndarray] | None = None
        self.system: EnergySystem | None = None
        ctx.events.register_type("energy_building_step", _BUILDING_EVENT)
        ctx.events.register_type("energy_car_step", _CAR_EVENT)

    def phases(self) -> list[Phase]:
        return [Phase("energy", self.step, period_s=STEP_S, after="move")]

    def day_profiles(self) -> tuple[np.ndarray, np.ndarray]:
        """``(base_kw (T, n), pv_per_kwp (T,))`` of the configured date (computed once, kept)."""
        if self._profiles is None:
            shares = bdew_day_shares(self.config.date)
            from twin.domains.energy.load import DT_H

            base = np.empty((N_INTERVALS, self.n))
            for name in np.unique(self.profile).tolist():
                cols = np.flatnonzero(self.profile == name)
                base[:, cols] = (shares[str(name)] / DT_H)[:, None] * self.annual_kwh[None, cols]
            self._profiles = (base, pv_day_per_kwp(self.config, self.lat, self.lon))
        return self._profiles

    def start_day(self, ctx: DomainContext) -> None:
        from twin.domains.energy.battery import Batteries
        from twin.domains.energy.system import EnergySystem

        cfg = self.config
        base, per_kwp = self.day_profiles()
        feeder_std = np.zeros((N_INTERVALS, self.n_feeders))
        for f in range(self.n_feeders):  # F columns: a few hundred at most
            feeder_std[:, f] = base[:, self.feeder == f].sum(axis=1)
        self.limit_kw = (np.full(self.n_feeders, cfg.feeders.limit_kw) if cfg.feeders.limit_kw is not None
                         else cfg.feeders.limit_factor * feeder_std.max(axis=0))
        bc = cfg.battery
        full = np.full
        batteries = Batteries(energy_kwh=self.battery_kwh, power_kw=self.battery_kw, soc=full(self.n, bc.soc_initial),
                              efficiency_rt=full(self.n, bc.efficiency_rt), soc_min=full(self.n, bc.soc_min),
                              soc_max=full(self.n, bc.soc_max))
        price = day_series(cfg.tariff.import_per_kwh)
        low = bc.tou_low if bc.tou_low is not None else float(price.min())
        high = bc.tou_high if bc.tou_high is not None else float(price.max())
        if not low < high:
            high = low + 1.0  # a flat price: never high (the scenario is refused for tou_arbitrage)
        ev = cfg.ev
        m = self.car_resident.size
        self.system = EnergySystem(
            base_kw=base, pv_per_kwp=per_kwp, kwp=self.kwp, feeder=self.feeder, limit_kw=self.limit_kw,
            batteries=batteries, battery_policy=bc.policy, threshold_kw=bc.threshold_share * base.max(axis=0),
            price=price, price_export=day_series(cfg.tariff.export_per_kwh),
            co2_g_per_kwh=day_series(cfg.tariff.co2_g_per_kwh), tou_low=low, tou_high=high,
            car_home=self.home_b[self.car_resident], car_work=self.work_b[self.car_resident],
            car_stored_kwh=np.full(m, ev.soc_initial * ev.battery_kwh),
            car_target_kwh=np.full(m, ev.soc_target * ev.battery_kwh), charger_kw=np.full(m, ev.charger_kw),
            car_scale=1.0 / self.sample_share, ev_policy=ev.policy, delayed_start_s=ev.delayed_start_s,
            ready_s=ev.ready_s, effect=cfg.occupancy.effect, dt_s=STEP_S)
        sim = ctx.scenario.simulation
        #: end of the last interval run (intervals ending at or before the start are not simulated)
        self._last_end_s = float(np.ceil(float(sim.start_s) / STEP_S) * STEP_S)
        self._counted = np.zeros(0, dtype=bool)
        self._outages = []
        self._outage_seen = []

    # ----------------------------------------------------------------------------- outages
    def on_event(self, ctx: DomainContext, event: BaseModel) -> None:
        """An outage begins: island its buildings over the intervals of its window."""
        if isinstance(event, OutageEvent):
            self._add_outage(event)

    def outage_buildings(self, event: OutageEvent) -> np.ndarray:
        """The buildings of an outage's area, ``(n,)`` bool."""
        from twin.network.road_network import _project

        mask = np.isin(self.feeder, np.asarray(event.feeders, np.int64))
        if event.points:
            pts = np.asarray(event.points, np.float64)
            px, py = _project(pts[:, 0], pts[:, 1], self._crs)
            r2 = float(event.radius_m or 0.0) ** 2
            for x, y in zip(np.atleast_1d(px).tolist(), np.atleast_1d(py).tolist()):
                mask |= (self.x_m - x) ** 2 + (self.y_m - y) ** 2 <= r2
        out: np.ndarray = mask
        return out

    def _add_outage(self, event: OutageEvent) -> None:
        if any(e is event for e in self._outage_seen):
            return
        self._outage_seen.append(event)
        k0, k1 = outage_intervals(float(event.at_s), event.end_s)
        if k1 > k0:
            self._outages.append((k0, k1, self.outage_buildings(event)))

    def islanded(self, k: int) -> np.ndarray | None:
        """Buildings islanded in interval ``k`` (``None``: none)."""
        masks = [m for k0, k1, m in self._outages if k0 <= k < k1]
        if not masks:
            return None
        out: np.ndarray = np.logical_or.reduce(masks)
        return out

    # ----------------------------------------------------------------------------- a step
    def _driven_kwh(self, ctx: DomainContext) -> np.ndarray:
        """Energy of the electric cars' car trips that arrived since the last call (kWh per car)."""
        from twin.domains.mobility.mode_choice import CAR

        mob = ctx.mobility
        n_trips = int(mob.trip_state.shape[0])
        if self._counted.size < n_trips:  # trips added within the day
            self._counted = np.concatenate([self._counted, np.zeros(n_trips - self._counted.size, bool)])
        person = np.asarray(mob.trips.person, np.int64)[:n_trips]
        new = np.flatnonzero((mob.trip_state == 2) & (mob.trip_mode == CAR) & ~self._counted
                             & (self.car_of[person] >= 0))
        self._counted[new] = True
        km = np.asarray(mob.trip_car_m, np.float64)[new] / 1000.0
        km = np.where(np.isfinite(km), km, 0.0)
        return np.bincount(self.car_of[person[new]], weights=km * self.config.ev.kwh_per_km,
                           minlength=self.car_resident.size)

    def _occupancy(self, ctx: DomainContext) -> tuple[np.ndarray, np.ndarray]:
        """Share of every building's people present now (``-1`` where nobody lives or works in it) and
        where each car is plugged in (-1: nowhere)."""
        from twin.demand import HOME, WORK
        from twin.domains.mobility.mode_choice import CAR
        from twin.locations import AT_ACTIVITY

        loc = ctx.locations()
        at = loc.state == AT_ACTIVITY
        at_home = at & (loc.activity == HOME) & (loc.building >= 0)
        at_work = at & (loc.activity == WORK) & (loc.building >= 0)
        present_home = loc.count_by(loc.building, self.n, where=at_home)
        present_work = loc.count_by(loc.building, self.n, where=at_work)
        assigned = np.where(self.is_home, self.residents, self.workers)
        present = np.where(self.is_home, present_home, present_work)
        share = np.where(assigned > 0, np.minimum(present / np.maximum(assigned, 1), 1.0), -1.0)
        # cars: plugged in at home, or at work after driving there
        r = self.car_resident
        plug = np.where(at_home[r] & (loc.building[r] == self.home_b[r]), self.home_b[r], -1)
        if self.config.ev.work_charging:
            trip = loc.trip_id[r]
            by_car = (trip >= 0) & (ctx.mobility.trip_mode[np.maximum(trip, 0)] == CAR)
            plug = np.where(at_work[r] & by_car & (loc.building[r] == self.work_b[r]), self.work_b[r], plug)
        return share, plug.astype(np.int64)

    def _expected(self, k: int) -> np.ndarray:
        """The share of every building's people the standard profile stands for in interval ``k``."""
        occ = self.config.occupancy
        hour = int(k * STEP_S // 3600) % 24
        return np.where(self.is_home, occ.expected_home[hour], occ.expected_work[hour])

    def step(self, ctx: DomainContext) -> None:
        """Run every interval that ended in this model step (its state at the step's end)."""
        self._advance(ctx, min(ctx.t_end_s, 86400.0))

    def end_day(self, ctx: DomainContext) -> None:
        """The mobility day ended (every trip done) before the simulation's end: run the intervals left up
        to ``simulation.end_s`` (at most 24:00) with everyone where their day ended (outages that
        had not begun yet included)."""
        for ev in ctx.scenario.timeline:
            if isinstance(ev, OutageEvent):
                self._add_outage(ev)
        self._advance(ctx, min(float(ctx.scenario.simulation.end_s), 86400.0))

    def _advance(self, ctx: DomainContext, t_end: float) -> None:
        """Run the intervals ending after the last one run and at or before ``t_end``."""
        sys_ = self.system
        assert sys_ is not None
        if t_end < self._last_end_s + STEP_S - 1e-6:
            return
        driven = self._driven_kwh(ctx)
        present, plug = self._occupancy(ctx)
        first = True
        while self._last_end_s + STEP_S <= t_end + 1e-6:
            k = int(round(self._last_end_s / STEP_S))
            expected = self._expected(k)
            share = np.where(present >= 0, present, expected)
            res = sys_.step(k, share, expected, plug, driven if first else np.zeros_like(driven),
                            islanded=self.islanded(k), fleet_kw=self._fleet_kw(ctx, k))
            t_s = np.full(self.n, k * STEP_S)
            if ctx.events.wants("energy_building_step"):
                ctx.events.publish("energy_building_step", {
                    "t_s": t_s, "building": np.arange(self.n, dtype=np.int64), "occupancy": share,
                    "expected": expected, "load_kw": res.load_kw,
                    "ev_kw": res.ev_kw, "pv_kw": res.pv_kw, "charge_kw": res.charge_kw,
                    "discharge_kw": res.discharge_kw, "soc": res.soc, "import_kw": res.import_kw,
                    "export_kw": res.export_kw, "pv_used_kw": res.pv_used_kw, "curtailed_kw": res.curtailed_kw,
                    "unserved_kw": res.unserved_kw, "islanded": res.islanded})
            if ctx.events.wants("energy_car_step") and self.car_resident.size:
                m = self.car_resident.size
                ctx.events.publish("energy_car_step", {
                    "t_s": np.full(m, k * STEP_S), "car": np.arange(m, dtype=np.int64),
                    "resident_id": self.car_resident, "building": plug, "charge_kw": res.car_kw,
                    "driven_kwh": driven if first else np.zeros(m), "stored_kwh": sys_.car_stored_kwh.copy()})
            first = False
            self._last_end_s += STEP_S

    def _fleet_kw(self, ctx: DomainContext, k: int) -> np.ndarray | None:
        """The MaaS fleets' depot charging in interval ``k`` at each building (city scale; ``None``
        without fleets): each depot's mean power over the interval (``MaasDomain.charging_kw``) at the
        building nearest the depot's node."""
        maas = ctx.domain("maas")
        if maas is None or not hasattr(maas, "charging_kw"):
            return None
        nodes, kw = maas.charging_kw(k * STEP_S, (k + 1) * STEP_S)
        if nodes.size == 0:
            return None
        net = ctx.network
        dx = net.node_x_m[nodes][:, None] - self.x_m[None, :]
        dy = net.node_y_m[nodes][:, None] - self.y_m[None, :]
        at = np.argmin(dx * dx + dy * dy, axis=1)  # a few depots against the buildings
        out: np.ndarray = np.bincount(at, weights=np.asarray(kw) / self.sample_share, minlength=self.n)
        return out

    # ---------------------------------------------------------------------------- results
    @classmethod
    def report_sections(cls) -> list[tuple[str, Any]]:
        from twin.domains.energy.report import energy_section

        return [("Energy", energy_section)]

    def kpis(self, ctx: DomainContext) -> dict[str, Any]:
        s = self.system
        if s is None:
            return {}
        tot = s.totals()

        def r(x: float, d: int = 2) -> float:
            return round(float(x), d)

        return {
            "energy_buildings": int(self.n), "energy_feeders": int(self.n_feeders),
            "energy_pv_buildings": int((self.kwp > 0).sum()), "energy_pv_kwp": r(self.kwp.sum()),
            "energy_batteries": int((self.battery_kwh > 0).sum()), "energy_battery_kwh": r(self.battery_kwh.sum()),
            "energy_cars": int(self.car_resident.size), "energy_intervals": int(s.done.sum()),
            "energy_load_kwh": r(tot["load_kwh"]), "energy_pv_kwh": r(tot["pv_kwh"]),
            "energy_import_kwh": r(tot["import_kwh"]), "energy_export_kwh": r(tot["export_kwh"]),
            "energy_pv_self_consumption": r(tot["pv_used_kwh"] / tot["pv_kwh"], 4) if tot["pv_kwh"] > 0 else None,
            "energy_ev_charged_kwh": r(tot["ev_kwh"]),
            "energy_fleet_charged_kwh": r(s.fleet_kwh),
            "energy_ev_driven_kwh": r(s.car_driven_kwh.sum() * s.car_scale),
            "energy_battery_discharged_kwh": r(tot["discharge_kwh"]),
            "energy_peak_feeder_kw": r(tot["peak_feeder_kw"]), "energy_peak_total_kw": r(tot["peak_total_kw"]),
            "energy_overload_h": r(tot["overload_h"]), "energy_overloaded_feeders": tot["overloaded_feeders"],
            "energy_cost": r(tot["cost"]), "energy_co2_kg": r(tot["co2_kg"]),
            "energy_unserved_kwh": r(tot["unserved_kwh"]), "energy_curtailed_kwh": r(tot["curtailed_kwh"]),
            "energy_outage_buildings": int((s.b_islanded_h > 0).sum()),
            "energy_outage_buildings_kept_power": int(((s.b_islanded_h > 0) & (s.b_kept_h == s.b_islanded_h)).sum()),
        }

    def tables(self, ctx: DomainContext) -> Mapping[str, Mapping[str, np.ndarray | Categorical]]:
        from twin._tables import Categorical
        from twin.network.buildings import KIND_NAMES

        s = self.system
        if s is None:
            return {}
        k = np.flatnonzero(s.done)
        t_s = k * STEP_S
        F = self.n_feeders
        b = ctx.buildings
        lon_s, lat_s = self._sub_lonlat(ctx)
        return {
            "energy_series": {"t_s": t_s, **{name: v[k] for name, v in s.series.items()},
                              "price": s.price[k], "co2_g_per_kwh": s.co2[k]},
            "energy_feeder_series": {
                "t_s": np.repeat(t_s, F), "feeder": np.tile(np.arange(F, dtype=np.int64), k.size),
                "load_kw": s.feeder_kw[k].reshape(-1), "ev_kw": s.feeder_ev_kw[k].reshape(-1),
                "limit_kw": np.tile(self.limit_kw, k.size)},
            "energy_feeders": {
                "feeder": np.arange(F, dtype=np.int64), "lon": lon_s, "lat": lat_s,
                "buildings": np.bincount(self.feeder, minlength=F).astype(np.int64), "limit_kw": self.limit_kw,
                "peak_kw": s.feeder_kw[k].max(axis=0) if k.size else np.zeros(F),
                "overload_h": (np.abs(s.feeder_kw[k]) > self.limit_kw[None, :]).sum(axis=0) * STEP_S / 3600.0,
                "import_kwh": np.bincount(self.feeder, weights=s.b_import_kwh, minlength=F),
                "export_kwh": np.bincount(self.feeder, weights=s.b_export_kwh, minlength=F)},
            "energy_buildings": {
                "building_osmid": self.osm_id, "building_id": np.arange(self.n, dtype=np.int64),
                "kind": Categorical(self.load_kind.astype(np.int8), tuple(KIND_NAMES)),
                "lon": np.asarray(b.lon, np.float64), "lat": np.asarray(b.lat, np.float64),
                "feeder": self.feeder, "floor_m2": self.floor_m2, "residents": self.residents,
                "workers": self.workers, "annual_kwh": self.annual_kwh, "pv_kwp": self.kwp,
                "battery_kwh": self.battery_kwh, "load_kwh": s.b_load_kwh, "pv_kwh": s.b_pv_kwh,
                "pv_used_kwh": s.b_pv_used_kwh, "import_kwh": s.b_import_kwh, "export_kwh": s.b_export_kwh,
                "peak_import_kw": s.b_peak_kw, "soc_end": s.batteries.soc, "unserved_kwh": s.b_unserved_kwh,
                "curtailed_kwh": s.b_curtailed_kwh, "islanded_h": s.b_islanded_h, "kept_power_h": s.b_kept_h},
            "energy_cars": {
                "resident_id": self.car_resident, "home_building_osmid": self.osm_id[self.home_b[self.car_resident]],
                "driven_kwh": s.car_driven_kwh, "charged_kwh": s.car_charged_kwh,
                "stored_start_kwh": s.car_start_kwh, "stored_end_kwh": s.car_stored_kwh},
        }

    def _sub_lonlat(self, ctx: DomainContext) -> tuple[np.ndarray, np.ndarray]:
        from pyproj import Transformer

        tr = Transformer.from_crs(ctx.network.crs, "EPSG:4326", always_xy=True)
        lon, lat = tr.transform(self.sub_x_m, self.sub_y_m)
        return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


def feeder_count(cfg: EnergyConfig, n_buildings: int) -> int:
    """Feeders of a map with ``n_buildings`` buildings: ``feeders.count`` or buildings /
    ``buildings_per_feeder`` (at least 1, at most one per building, as :func:`kmeans_feeders` makes)."""
    fc = cfg.feeders
    k = fc.count if fc.count is not None else max(1, int(round(n_buildings / fc.buildings_per_feeder)))
    return max(1, min(int(k), int(n_buildings)))


def outage_problems(scenario: Any, n_feeders: int) -> list[tuple[str, str]]:
    """``(field, problem)`` of the scenario's outage events naming feeders the run does not have."""
    out: list[tuple[str, str]] = []
    for i, ev in enumerate(getattr(scenario, "timeline", ())):
        if not isinstance(ev, OutageEvent):
            continue
        bad = sorted({f for f in ev.feeders if f >= n_feeders})
        if bad:
            problem = (f"unknown feeder id {', '.join(map(str, bad))}: this run has {n_feeders} feeders, "
                       f"ids 0 to {n_feeders - 1}")
            out.append((f"timeline.{i}.feeders", problem))
    return out


def outage_intervals(at_s: float, end_s: float) -> tuple[int, int]:
    """The intervals ``[k0, k1)`` an outage ``[at_s, end_s)`` islands: those whose midpoint lies in it
    (clipped to the day)."""
    eps = 1e-9
    k0 = int(np.ceil(at_s / STEP_S - 0.5 - eps))
    k1 = int(np.ceil(end_s / STEP_S - 0.5 - eps))
    return max(k0, 0), min(max(k1, 0), N_INTERVALS)
