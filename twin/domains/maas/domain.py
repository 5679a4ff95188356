"""MaaS fleets in the traffic: operators' vehicles as queue-kernel vehicles, the requests of the
residents who chose the ``maas`` mode, dispatch, rebalancing, electric batteries and the outputs.

How a ride happens
------------------
A resident whose tour mode is ``maas`` *requests* a ride when the trip starts (the mobility domain
calls :class:`MaasMode`). The request goes to the operator whose skim (expected wait + ride time,
fare) is best for it among those whose service area holds both ends and whose shift is on. The
operator's dispatcher (:mod:`twin.domains.maas.dispatch`) gives it a vehicle, or leaves it waiting;
a request still without a vehicle when its maximum wait is over (or that no vehicle can reach in
time, or that comes outside the shift) is *rejected*, and the resident makes the trip by the
fastest of the available non-car modes (walk, bike) from then on (``maas_fallback_trips``).

A vehicle with passengers to serve drives **one kernel leg through its stops** (pick-ups and
drop-offs in order, routed on the mobility domain's current link times): it feels and causes
congestion like any car, its kilometres are in the link volumes and VKT, and it can be diverted
(pooling changes the rest of its route). A stop is served as the vehicle passes its node: a
pick-up at the time the vehicle enters the link after the pick-up node (boarding takes no time), a
drop-off likewise or at the leg's arrival. Stops are read from the kernel's entry times every model
step, so the times are exact (the kernel's continuous times), not rounded to steps.

Idle vehicles stay where they dropped their last passenger, are sent towards the previous day's
demand by the rebalancer (``rebalancing: min_cost_flow``), or, electric and below
``charge_below_soc``, drive to their depot and charge there (plugs limited; a charging session
ends at ``charge_to_soc``). A vehicle below ``reserve_soc`` takes no request.

Energy (electric fleets) is exact per vehicle: used = km driven × consumption (per link entered),
charged = power × plugged time × efficiency, final = initial + charged − used.

Outputs: ``maas_requests.parquet``, ``maas_vehicles.parquet``, ``maas_charging.parquet`` (the
charging sessions the energy domain reads), ``maas_fleet.parquet`` (vehicles per state over the
day) and the ``maas_*`` KPIs. Fleet vehicles are not residents' trips: they are left out of
``trips.parquet`` and ``events.parquet``, but their link entries are on the event bus (``trip_id``
-1, ``vehicle_id`` the kernel vehicle).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from twin.domains.base import Domain, Phase, register_domain
from twin.domains.maas.config import MaasConfig, Operator
from twin.domains.mobility.modes import ModeOptions, ModeProvider, register_mode

if TYPE_CHECKING:  # pragma: no cover
    from twin._tables import Categorical
    from twin.context import DomainContext
    from twin.domains.mobility.domain import MobilityDomain, ModeContext
    from twin.network.road_network import RoadNetwork
    from twin.network.routing import Router

__all__ = ["MaasDomain", "MaasMode", "VehicleState"]


class VehicleState:
    """Codes of ``maas_fleet.parquet``'s states."""

    IDLE = 0
    TO_PICKUP = 1  # driving, nobody on board, a pick-up ahead
    OCCUPIED = 2  # driving with passengers
    REBALANCING = 3
    TO_CHARGER = 4
    CHARGING = 5  # plugged in, or waiting for a plug at the depot
    NAMES = ("idle", "to_pickup", "occupied", "rebalancing", "to_charger", "charging")


# ------------------------------------------------------------------------------------------- mode
class MaasModeOptions(ModeOptions):
    asc: float = Field(-0.3, ge=-50, le=50, description="Alternative-specific constant of MaaS rides.")


@register_mode
class MaasMode(ModeProvider):
    """The ``maas`` mode: rides of the operators of the scenario's ``maas:`` section.

    Skim of a trip by an operator: expected wait (the operator's mean wait of the last day, or its
    ``prior_wait_s`` on the first day) + the direct route's time on the current link times × the
    operator's last mean ride/direct ratio (1 on the first day); money: its fare
    (``fare_base + fare_per_km × km + fare_per_min × direct minutes``, less ``pooled_discount`` times
    the last day's shared share of its rides). The trip goes to the operator of least generalized
    cost; ``inf`` time where no operator serves both ends.
    """

    name = "maas"
    Options = MaasModeOptions

    def attach(self, model: ModeContext) -> None:
        self._mctx = model
        section = model.scenario.section("maas")
        if section is None:
            raise ValueError("modes.available lists maas, but the scenario has no maas: section (its operators)")
        assert isinstance(section, MaasConfig)
        self.config = section
        t = model.trips
        net = model.network
        router = model.router
        self.direct_s = router.costs(t.origin, t.dest, weight=net.link_fftt_s) if t.n else np.zeros(0)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self.direct_m = router.costs(t.origin, t.dest, weight=net.link_length_m) if t.n else np.zeros(0)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        ops = self.config.operators
        self.served = np.ones((len(ops), t.n), dtype=bool)  # operator serves the trip (service area)
        for j, op in enumerate(ops):
            if op.service_area is not None:
                inside = _inside(op.service_area, net.node_lon, net.node_lat)
                self.served[j] = inside[t.origin] & inside[t.dest]
        #: operator of each trip's request (-1: none), set by skim
        self.trip_operator = np.full(t.n, -1, np.int64)
        self._domain: MaasDomain | None = None

    def extend(self, model: ModeContext, trips: np.ndarray) -> None:
        """Direct times and lengths, service areas and operators of trips added within the day (an
        evacuation's shuttle rides): the per-trip arrays grow to the trips' number."""
        t = model.trips
        new = np.arange(self.direct_s.size, t.n, dtype=np.int64)
        if new.size == 0:
            return
        net, router = model.network, model.router
        o, d = t.origin[new], t.dest[new]
        self.direct_s = np.concatenate([self.direct_s, router.costs(o, d, weight=net.link_fftt_s)])  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self.direct_m = np.concatenate([self.direct_m, router.costs(o, d, weight=net.link_length_m)])  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        served = np.ones((len(self.config.operators), new.size), dtype=bool)
        for j, op in enumerate(self.config.operators):
            if op.service_area is not None:
                inside = _inside(op.service_area, net.node_lon, net.node_lat)
                served[j] = inside[o] & inside[d]
        self.served = np.concatenate([self.served, served], axis=1)
        self.trip_operator = np.concatenate([self.trip_operator, np.full(new.size, -1, np.int64)])
        self.skim(model, new, np.full(new.size, float(model.t_s)))  # the operator of each

    @property
    def domain(self) -> MaasDomain:
        if self._domain is None:
            d = self._mctx.domain("maas")
            assert isinstance(d, MaasDomain)
            self._domain = d
        return self._domain

    def fare(self, op: Operator, trips: np.ndarray, t_s: np.ndarray | None = None) -> np.ndarray:
        """Fare of ``trips`` by operator ``op`` for a ride alone (at ``t_s``: with its surge)."""
        fare: np.ndarray = (op.fare_base + op.fare_per_km * self.direct_m[trips] / 1000.0
                            + op.fare_per_min * self.direct_s[trips] / 60.0)
        if t_s is not None and self._domain is not None:
            j = self.config.operators.index(op)
            fare = fare * self._domain.surge_multiplier(j, self._mctx.trips.origin[trips], t_s)
        return fare

    def skim(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vot = model.scenario.modes.value_of_time_per_h
        ops = self.config.operators
        stats = self._domain.day_stats if self._domain is not None else None
        best_gc = np.full(trips.size, np.inf)
        best_t = np.full(trips.size, np.inf)
        best_m = np.zeros(trips.size)
        best_op = np.full(trips.size, -1, np.int64)
        for j, op in enumerate(ops):
            wait = op.prior_wait_s if stats is None else stats[j]["wait_mean_s"]
            ratio = 1.0 if stats is None else stats[j]["ride_ratio"]
            shared = 0.0 if stats is None else stats[j]["shared_share"]
            t_j = np.where(self.served[j, trips], wait + self.direct_s[trips] * ratio, np.inf)
            m_j = self.fare(op, trips, depart_s) * (1.0 - op.pooled_discount * shared)
            gc = t_j / 3600.0 * vot + m_j
            better = gc < best_gc
            best_gc[better], best_t[better], best_m[better], best_op[better] = gc[better], t_j[better], m_j[better], j
        self.trip_operator[trips] = best_op
        return best_t, np.where(np.isfinite(best_t), best_m, 0.0)

    def begin(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> None:
        dom = self.domain
        if dom.day_ready:
            dom.request(trips, depart_s)
        else:  # the first trips of a day start before the domain has started the day
            dom.early.append((trips.copy(), depart_s.copy()))

    def advance(self, model: ModeContext, t_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        return self.domain.serve(t_s, t_end_s)

    def distance_m(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        d: np.ndarray = self.direct_m[trips]
        return d

    def freeflow_time_s(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        d: np.ndarray = self.direct_s[trips]
        return d


def _inside(polygon: list[tuple[float, float]], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Nodes inside a (lon, lat) polygon (shapely)."""
    import shapely

    poly = shapely.Polygon(polygon)
    inside: np.ndarray = shapely.contains_xy(poly, lon, lat) | shapely.intersects_xy(poly.boundary, lon, lat)
    return inside


# ----------------------------------------------------------------------------------------- domain
@dataclass
class _Stop:
    node: int
    request: int
    pickup: bool
    pos: int = -1  # buffer position whose entry passes the stop (-1: the leg's end)


@dataclass
class _Vehicle:
    op: int
    kid: int  # kernel vehicle
    node: int  # where it stands (idle) or where its leg ends
    depot: int  # depot node (-1: none)
    state: int = VehicleState.IDLE
    free_s: float = 0.0  # idle since
    leg: int = -1  # current kernel leg
    stops: list[_Stop] = field(default_factory=list)
    onboard: int = 0
    requests: list[int] = field(default_factory=list)  # given to it, not dropped off before its last link accounted
    soc_kwh: float = 0.0
    # day totals
    km_empty: float = 0.0
    km_occupied: float = 0.0
    pax_km: float = 0.0
    passengers: int = 0
    used_kwh: float = 0.0
    charged_kwh: float = 0.0
    state_since_s: float = 0.0
    time_in_state_s: list[float] = field(default_factory=lambda: [0.0] * len(VehicleState.NAMES))
    plug_start_s: float = np.nan  # charging: plugged since


@register_domain
class MaasDomain(Domain):
    """On-demand fleets of the scenario's ``maas:`` operators (see the module docstring)."""

    name = "maas"
    Config = MaasConfig
    config: MaasConfig

    def attach(self, ctx: DomainContext) -> None:
        from twin.network.routing import Router

        self.ctx = ctx
        self.mob: MobilityDomain = ctx.mobility
        net: RoadNetwork = ctx.network
        self.net = net
        provider = [p for p in self.mob.mode_providers if isinstance(p, MaasMode)]
        #: the maas mode (None: residents cannot choose it; the fleets still run, empty)
        self.mode: MaasMode | None = provider[0] if provider else None
        self.router: Router = self.mob.router
        # the reverse graph: trees *to* a pick-up give every vehicle's time to it in one search
        order = np.argsort(net.link_head, kind="stable")
        self._rev_order = order
        rev_indptr = np.zeros(net.n_nodes + 1, np.int64)
        np.cumsum(np.bincount(net.link_head, minlength=net.n_nodes), out=rev_indptr[1:])
        from collections import OrderedDict

        self._trees: OrderedDict[tuple[bytes, bool, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        #: trees kept: about 256 MB of them, at least 64
        self._tree_cap = max(64, (256 << 20) // max(1, 16 * net.n_nodes))
        self._w_key: tuple[float, int] | None = None
        #: trees by (forward, node) during a step (:meth:`serve`), None outside
        self._memo: dict[tuple[bool, int], tuple[np.ndarray, np.ndarray]] | None = None
        self._link_tail = np.ascontiguousarray(net.link_tail, np.int64)
        self.rev_router = Router(rev_indptr, net.link_tail[order], net.link_head[order], net.link_fftt_s[order])  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self.depot_nodes: list[np.ndarray] = []
        for op in self.config.operators:
            self.depot_nodes.append(self._depot_nodes(op))
        self.day_stats: list[dict[str, float]] | None = None
        #: requests made before the day started here (the mobility domain starts it first)
        self.early: list[tuple[np.ndarray, np.ndarray]] = []
        self.day_ready = False
        from twin.domains.maas.dispatch import make_dispatcher

        self.dispatchers = [make_dispatcher(op, self, j) for j, op in enumerate(self.config.operators)]
        self.rebalancers: list[Any] = [None] * len(self.config.operators)
        for j, op in enumerate(self.config.operators):
            if op.rebalancing == "min_cost_flow":
                from twin.domains.maas.rebalance import MinCostFlowRebalancer, grid_zones

                zone_of_node, centre = grid_zones(net.node_x_m, net.node_y_m, op.zone_m)
                self.rebalancers[j] = MinCostFlowRebalancer(zone_of_node, centre)
        self._last_demand: list[np.ndarray | None] = [None] * len(self.config.operators)
        # surge: zones, and per operator the multipliers (zone x hour) from the previous day
        self.surge_zone: list[np.ndarray | None] = []
        for op in self.config.operators:
            if op.surge is None:
                self.surge_zone.append(None)
            else:
                from twin.domains.maas.rebalance import grid_zones

                self.surge_zone.append(grid_zones(net.node_x_m, net.node_y_m, op.surge.zone_m)[0])
        self.surge: list[np.ndarray | None] = [None] * len(self.config.operators)
        self._n_hours = int(np.ceil(ctx.scenario.simulation.end_s / 3600.0)) + 1

    @classmethod
    def preflight(cls, config: Any, scenario: Any, network: Any) -> list[tuple[str, str]]:
        problems = []
        if config is None:
            if "maas" in scenario.modes.available:
                problems.append(("modes.available",
                                 "lists maas, but the scenario has no maas: section (its operators; docs/maas.md)"))
            return problems
        ids = set(network.node_osmid.tolist())
        for j, op in enumerate(config.operators):
            for k, d in enumerate(op.depots):
                if d.osmid is not None and d.osmid not in ids:
                    problems.append((f"maas.operators.{j}.depots.{k}.osmid",
                                     f"OSM node {d.osmid} is not on the drive network of {scenario.map.source}"))
            if op.service_area is not None and not _inside(op.service_area, network.node_lon, network.node_lat).any():
                problems.append((f"maas.operators.{j}.service_area", "holds no node of the drive network"))
        return problems

    def _depot_nodes(self, op: Operator) -> np.ndarray:
        net = self.net
        nodes = []
        for d in op.depots:
            if d.osmid is not None:
                hit = np.flatnonzero(net.node_osmid == d.osmid)
                if hit.size == 0:
                    raise ValueError(f"maas.operators.{op.name}.depots: OSM node {d.osmid} is not on the drive network")
                nodes.append(int(hit[0]))
            else:
                assert d.lon is not None and d.lat is not None
                coslat = np.cos(np.radians(d.lat))
                d2 = ((net.node_lon - d.lon) * coslat) ** 2 + (net.node_lat - d.lat) ** 2
                nodes.append(int(np.argmin(d2)))
        return np.array(nodes, np.int64)

    def phases(self) -> list[Phase]:
        return []  # the fleets run inside the mobility domain's dispatch phase (the maas mode's advance)

    # ------------------------------------------------------------------------------ the day
    def start_day(self, ctx: DomainContext) -> None:
        sim = self.mob.sim
        self.sim = sim
        self.day_index = getattr(self, "day_index", -1) + 1
        t0 = float(sim.t_s)
        self.vehicles: list[_Vehicle] = []
        rng = ctx.rng("placement")  # the same start positions every day
        for j, op in enumerate(self.config.operators):
            depots = self.depot_nodes[j]
            if depots.size:
                nodes = depots[np.arange(op.fleet_size) % depots.size]
                dep = nodes.copy()
            else:  # spread: every node gets floor or ceil(fleet / nodes) vehicles, in a random order
                perm = rng.permutation(self.net.n_nodes)
                nodes = perm[np.arange(op.fleet_size) % self.net.n_nodes]
                dep = np.full(op.fleet_size, -1, np.int64)
            kids = sim.add_vehicles(op.fleet_size, owner=-2 - j) if op.fleet_size else np.zeros(0, np.int64)
            soc = op.electric.initial_soc * op.electric.battery_kwh if op.electric is not None else 0.0
            for k in range(op.fleet_size):
                self.vehicles.append(_Vehicle(op=j, kid=int(kids[k]), node=int(nodes[k]), depot=int(dep[k]),
                                              free_s=t0, soc_kwh=soc, state_since_s=t0))
        self.initial_soc_kwh = np.array([v.soc_kwh for v in self.vehicles])
        #: per vehicle: changes whenever its stops change (a new schedule, a stop served)
        self.stops_stamp = np.zeros(len(self.vehicles), np.int64)
        self._veh_of_kid = {v.kid: i for i, v in enumerate(self.vehicles)}
        self._fin_seen = 0
        # requests of the day (columns grow; index = request id)
        self.rq_trip: list[int] = []
        self.rq_op: list[int] = []
        self.rq_t_s: list[float] = []
        self.rq_pick_node: list[int] = []
        self.rq_drop_node: list[int] = []
        self.rq_pickup_s: list[float] = []
        self.rq_dropoff_s: list[float] = []
        self.rq_vehicle: list[int] = []
        self.rq_shared: list[bool] = []
        self.rq_rejected: list[bool] = []
        self.rq_fare: list[float] = []
        self.rq_max_ride_s: list[float] = []  # pooling: the ride-time limit at dispatch (inf: alone)
        #: requests made (their time reached) and not yet assigned, in request order
        self.waiting: list[list[int]] = [[] for _ in self.config.operators]
        self._priority: set[int] = set()  # trips whose requests go first (prioritize)
        #: requests for later in the day (a trip begun at its activity's end, for its departure
        #: time): a heap of (request time, request), moved to ``waiting`` by :meth:`release`
        self._future: list[list[tuple[float, int]]] = [[] for _ in self.config.operators]
        self._arrivals_trip: list[int] = []
        self._arrivals_s: list[float] = []
        self.sessions: list[tuple[int, int, float, float, float]] = []  # vehicle, depot, start, end, kWh
        self._plugs_busy: dict[int, int] = {}
        self._queue_at: dict[int, list[int]] = {}
        self.fleet_series: list[tuple[float, list[int]]] = []
        #: per ended leg: (vehicle, link, enter_s, leave_s, passengers) of each link entered
        self._link_rows: list[tuple[np.ndarray, ...]] = []
        #: idle vehicles' positions, sampled on the hour: (t_s, vehicle, node)
        self._idle_rows: list[tuple[float, int, int]] = []
        self._next_idle_sample_s = np.ceil(t0 / 3600.0) * 3600.0
        self.n_fallback = 0
        self._rebalance_due = [t0 + op.rebalance_period_s for op in self.config.operators]
        self._idle_samples = [np.zeros((int(z.max()) + 1, self._n_hours)) if z is not None else None
                              for z in self.surge_zone]
        self._n_samples = [np.zeros(self._n_hours) for _ in self.surge_zone]
        self.day_ready = True
        for trips, dep in self.early:
            self.request(trips, dep)
        self.early = []

    def surge_multiplier(self, j: int, nodes: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Fare multiplier of operator ``j`` for rides from ``nodes`` at ``t_s`` (1: no surge)."""
        mult = self.surge[j]
        zone = self.surge_zone[j]
        if mult is None or zone is None:
            return np.ones(np.shape(nodes))
        h = np.clip(np.floor(np.nan_to_num(t_s) / 3600.0).astype(np.int64), 0, mult.shape[1] - 1)
        out: np.ndarray = mult[zone[nodes], h]
        return out

    def request(self, trips: np.ndarray, depart_s: np.ndarray) -> None:
        """Residents request rides for ``trips`` at ``depart_s`` (called by the maas mode)."""
        assert self.mode is not None
        t = self.mob.trips
        order = np.lexsort((trips, depart_s))
        trips, depart_s = trips[order], depart_s[order]
        ops = self.mode.trip_operator[trips]
        fares = np.zeros(trips.size)
        for j in np.unique(ops[ops >= 0]).tolist():  # fares are element-wise: one call per operator
            sel = ops == j
            fares[sel] = self.mode.fare(self.config.operators[j], trips[sel], depart_s[sel])
        for i, (tr, j, fare) in enumerate(zip(trips.tolist(), ops.tolist(), fares.tolist(), strict=True)):
            rid = len(self.rq_trip)
            self.rq_trip.append(tr)
            self.rq_op.append(j)
            self.rq_t_s.append(float(depart_s[i]))
            self.rq_pick_node.append(int(t.origin[tr]))
            self.rq_drop_node.append(int(t.dest[tr]))
            self.rq_pickup_s.append(np.nan)
            self.rq_dropoff_s.append(np.nan)
            self.rq_vehicle.append(-1)
            self.rq_shared.append(False)
            self.rq_rejected.append(False)
            self.rq_max_ride_s.append(np.inf)
            self.rq_fare.append(fare)
            op = self.config.operators[j] if j >= 0 else None
            if op is None or not op.shift_start_s <= depart_s[i] < op.shift_end_s:
                self._reject(rid, float(depart_s[i]))
            else:
                heapq.heappush(self._future[j], (float(depart_s[i]), rid))

    def release(self, j: int, t_s: float) -> list[int]:
        """Operator ``j``'s waiting requests once those made by ``t_s`` are in: priority ones first
        (:meth:`prioritize`), each group in request order."""
        fut = self._future[j]
        w = self.waiting[j]
        while fut and fut[0][0] <= t_s:
            bisect.insort(w, heapq.heappop(fut)[1], key=self._wait_key)
        return w

    def _wait_key(self, rid: int) -> tuple[bool, int]:
        return (self.rq_trip[rid] not in self._priority, rid)

    def prioritize(self, trips: np.ndarray) -> None:
        """Requests for these trips (made or to come) go before the others in the dispatchers'
        queues (an evacuation's shuttle rides). Requests already waiting are reordered."""
        self._priority.update(int(x) for x in np.asarray(trips).tolist())
        for j, w in enumerate(self.waiting):
            self.waiting[j] = sorted(w, key=self._wait_key)

    def serve(self, t_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        """One model step of the fleets (in the mobility domain's dispatch phase, before the kernel
        moves): the stops passed in the last move, charging, dispatch, rebalancing; returns the
        trips that arrived (their drop-offs, and the fallback trips of rejected requests). The link
        times are those of the step throughout, so trees are also kept by node for the step."""
        self._memo = {}
        try:
            return self._serve(t_s, t_end_s)
        finally:
            self._memo = None

    def _serve(self, t_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        self._progress(t_s)
        self._charging(t_s)
        for j, disp in enumerate(self.dispatchers):
            disp.dispatch(t_s, t_end_s)
            if self.rebalancers[j] is not None and t_s >= self._rebalance_due[j]:
                self._rebalance_due[j] += self.config.operators[j].rebalance_period_s
                self._rebalance(j, t_s)
        counts = [0] * len(VehicleState.NAMES)
        for v in self.vehicles:
            counts[v.state] += 1
        h = min(int(t_s // 3600), self._n_hours - 1)
        for j, zone in enumerate(self.surge_zone):
            samples = self._idle_samples[j]
            if zone is not None and samples is not None:
                idle = np.array([v.node for v in self.vehicles if v.op == j and v.state == VehicleState.IDLE], np.int64)
                samples[:, h] += np.bincount(zone[idle], minlength=samples.shape[0])
                self._n_samples[j][h] += 1
        self.fleet_series.append((t_s, counts))
        if t_s >= self._next_idle_sample_s:
            self._next_idle_sample_s = (np.floor(t_s / 3600.0) + 1.0) * 3600.0
            self._idle_rows.extend((t_s, i, v.node) for i, v in enumerate(self.vehicles)
                                   if v.state == VehicleState.IDLE)
        trips = np.array(self._arrivals_trip, np.int64)
        arr = np.array(self._arrivals_s, np.float64)
        self._arrivals_trip, self._arrivals_s = [], []
        return trips, arr

    # ---------------------------------------------------------------------------- vehicles
    def weight(self) -> np.ndarray:
        """Link times routes and dispatch use now: the mobility domain's current cost bin
        (experienced times of the last day; free flow on the first), closed links excluded.
        Read once per model step (and kept with its digest, the key of the tree cache)."""
        key = (float(self.sim.t_s), id(self.mob.link_time_s))
        if self._w_key != key:
            b = int(self.mob._bin_of(np.array([float(self.sim.t_s)]))[0])
            w: np.ndarray = self.mob.link_time_s[:, b]
            self._w = w
            self._w_key = key
            import hashlib

            self._w_digest = hashlib.blake2b(np.ascontiguousarray(w).tobytes(), digest_size=16).digest()
        return self._w

    def _tree(self, node: int, forward: bool) -> tuple[np.ndarray, np.ndarray]:
        """Least-time tree from (``forward``) or to ``node`` on :meth:`weight`: ``(dist_s, link)``,
        ``link`` the last link into each node (forward) or the first link out of it towards
        ``node`` (reverse), network link ids; ``inf`` where unreachable. Kept in a cache (least
        recently used out) keyed by the weight's digest: requests come from and go to the same
        nodes again and again, so most trees of a day are searched once per cost bin."""
        memo = self._memo
        if memo is not None:
            got = memo.get((forward, node))
            if got is not None:
                return got
        w = self.weight()
        k = (self._w_digest, forward, int(node))
        hit = self._trees.get(k)
        if hit is not None and memo is not None:
            memo[(forward, node)] = hit
        if hit is not None:
            self._trees.move_to_end(k)
            return hit
        if forward:
            wf = np.where(np.isfinite(w), w, 1e12)
            dist, pred = self.router.tree(int(node), weight=wf)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
            link = pred.astype(np.int64)
        else:
            wr = w[self._rev_order]
            wr = np.where(np.isfinite(wr), wr, 1e12)
            dist, pred = self.rev_router.tree(int(node), weight=wr)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
            link = np.where(pred >= 0, self._rev_order[np.maximum(pred, 0)], -1).astype(np.int64)
        dist = np.where(dist >= 1e11, np.inf, dist)
        dist.flags.writeable = False
        link.flags.writeable = False
        self._trees[k] = (dist, link)
        if memo is not None:
            memo[(forward, node)] = (dist, link)
        if len(self._trees) > self._tree_cap:
            self._trees.popitem(last=False)
        return dist, link

    def times_to(self, nodes: np.ndarray) -> np.ndarray:
        """Travel time from every node to each of ``nodes`` (rows), on :meth:`weight`."""
        nodes = np.asarray(nodes, np.int64)
        if nodes.size == 0:
            return np.zeros((0, self.net.n_nodes))
        return np.stack([self._tree(int(x), False)[0] for x in nodes.tolist()])

    def times_from(self, nodes: np.ndarray) -> np.ndarray:
        """Travel time from each of ``nodes`` (rows) to every node, on :meth:`weight`."""
        nodes = np.asarray(nodes, np.int64)
        if nodes.size == 0:
            return np.zeros((0, self.net.n_nodes))
        return np.stack([self._tree(int(x), True)[0] for x in nodes.tolist()])

    def route_through(self, start: int, stops: list[int]) -> np.ndarray:
        """Links of the least-time route from ``start`` through ``stops`` in order (each leg read off
        the cached forward tree of its first node)."""
        from twin.kernels.insertion import tree_path_from

        parts = []
        a = int(start)
        for b in stops:
            b = int(b)
            if b != a:
                dist, pred = self._tree(a, True)
                if not np.isfinite(dist[b]):
                    raise RuntimeError("a fleet vehicle's stop is unreachable")
                parts.append(tree_path_from(pred, self._link_tail, a, b))
            a = b
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def idle(self, j: int) -> list[int]:
        """Idle vehicles of operator ``j`` that may take a request (enough charge; vehicles on their way
        to a rebalancing target or a charger finish that leg first)."""
        op = self.config.operators[j]
        reserve = op.electric.reserve_soc * op.electric.battery_kwh if op.electric is not None else -1.0
        return [i for i, v in enumerate(self.vehicles)
                if v.op == j and v.state == VehicleState.IDLE and v.soc_kwh >= reserve]

    def assign(self, i: int, stops: list[_Stop], depart_s: float, t_s: float) -> None:
        """Send idle vehicle ``i`` through ``stops`` from where it stands, leaving at
        ``depart_s`` (>= the kernel's clock)."""
        v = self.vehicles[i]
        start = v.node
        nodes = [s.node for s in stops]
        for s in stops:
            if s.pickup:
                self.give(s.request, i)
        self._set_state(i, VehicleState.TO_PICKUP, t_s)
        self._drive(i, start, stops, nodes, depart_s)

    def give(self, r: int, i: int) -> None:
        """Request ``r`` is vehicle ``i``'s."""
        self.rq_vehicle[r] = i
        self.vehicles[i].requests.append(r)

    def _drive(self, i: int, start: int, stops: list[_Stop], nodes: list[int], depart_s: float) -> None:
        v = self.vehicles[i]
        links = self.route_through(start, nodes) if any(n != start for n in nodes) else np.zeros(0, np.int64)
        if links.size == 0:  # every stop where it stands: served now
            v.stops = stops
            self.stops_stamp[i] += 1
            for s in stops:
                s.pos = -2
            self._pass_stops(i, depart_s)
            return
        sim = self.sim
        v.leg = int(sim.append_legs([v.kid], [0, links.size], links, [max(depart_s, float(sim.t_s))])[0])
        p0 = int(sim.rpos[v.kid])
        self._stop_positions(stops, links, p0)
        v.stops = stops
        self.stops_stamp[i] += 1
        v.node = int(self.net.link_head[links[-1]])

    def divert(self, i: int, start: int, stops: list[_Stop]) -> None:
        """Vehicle ``i``, on a link that ends at ``start``, drives through ``stops`` from there on (the
        rest of its route replaced; pooling)."""
        v = self.vehicles[i]
        sim = self.sim
        nodes = [s.node for s in stops]
        links = self.route_through(start, nodes) if any(n != start for n in nodes) else np.zeros(0, np.int64)
        sim.divert(v.kid, links)
        p0 = int(sim.rpos[v.kid]) + 1  # the new rest follows the copy of the current link
        self._stop_positions(stops, links, p0)
        v.stops = stops
        self.stops_stamp[i] += 1
        v.node = int(self.net.link_head[links[-1]]) if links.size else start
        self._set_state(i, VehicleState.OCCUPIED if v.onboard else VehicleState.TO_PICKUP, float(sim.t_s))

    def _stop_positions(self, stops: list[_Stop], links: np.ndarray, p0: int) -> None:
        """Buffer positions that pass each stop: a stop at node x is passed when the link leaving x is
        entered (the route is a chain of least-time paths, each simple: the first such link after
        the previous stop); -1: the route's end."""
        tails = self.net.link_tail[links].tolist()
        n = len(tails)
        k = 0
        for s in stops:
            while k < n and tails[k] != s.node:
                k += 1
            s.pos = p0 + k if k < n else -1

    def _pass_stops(self, i: int, t_s: float) -> None:
        """Serve the stops at the head of vehicle ``i``'s schedule marked passed (pos -2) at ``t_s``."""
        v = self.vehicles[i]
        while v.stops and v.stops[0].pos == -2:
            s = v.stops.pop(0)
            self.stops_stamp[i] += 1
            if s.pickup:
                self.rq_pickup_s[s.request] = max(t_s, self.rq_t_s[s.request])
                v.onboard += 1
                v.passengers += 1
                if v.onboard > 1:
                    for r in (s.request, *[x.request for x in v.stops if not x.pickup]):
                        self.rq_shared[r] = True
            else:
                self.rq_dropoff_s[s.request] = t_s
                v.onboard -= 1
                self._arrivals_trip.append(self.rq_trip[s.request])
                self._arrivals_s.append(t_s)
            seats = self.config.operators[v.op].seats
            if not 0 <= v.onboard <= seats:
                raise RuntimeError(f"fleet vehicle {i}: {v.onboard} on board, {seats} seats")
        if v.stops:
            self._set_state(i, VehicleState.OCCUPIED if v.onboard else VehicleState.TO_PICKUP, t_s)

    def _progress(self, t_s: float) -> None:
        """Stops passed and legs ended during the last move."""
        sim = self.sim
        enter = sim.route_enter_s
        moving = [i for i, v in enumerate(self.vehicles) if v.stops and v.leg >= 0 and v.stops[0].pos >= 0]
        pos = np.array([self.vehicles[i].stops[0].pos for i in moving], np.int64)
        for i in np.array(moving, np.int64)[np.isfinite(enter[pos])].tolist():  # passed its next stop
            v = self.vehicles[i]
            while v.stops and v.stops[0].pos >= 0 and np.isfinite(enter[v.stops[0].pos]):
                t_pass = float(enter[v.stops[0].pos])
                v.stops[0].pos = -2
                self._pass_stops(i, t_pass)
        fin = sim.finished(self._fin_seen)
        legs = sim.finished_legs(self._fin_seen)
        self._fin_seen = sim.n_finished
        for kid, leg in zip(fin.tolist(), legs.tolist(), strict=True):
            fleet_i = self._veh_of_kid.get(kid)
            if fleet_i is not None:
                self._leg_ended(fleet_i, leg)

    def _leg_ended(self, i: int, leg: int) -> None:
        sim = self.sim
        v = self.vehicles[i]
        arrive = float(sim.legs([leg]).arrive_s[0])
        self._account_leg(i, leg, arrive)
        v.leg = -1
        standing = int(sim.standing_node([v.kid])[0])
        v.node = standing
        for s in v.stops:
            if s.pos == -1:
                s.pos = -2
        self._pass_stops(i, arrive)
        if v.stops:  # removed when stuck: drive the rest from where it stands
            self._drive(i, standing, v.stops, [s.node for s in v.stops], float(sim.t_s))
            return
        if v.state == VehicleState.TO_CHARGER:
            self._plug(i, arrive)
        else:
            self._set_state(i, VehicleState.IDLE, arrive)
            v.free_s = arrive

    def _account_leg(self, i: int, leg: int, arrive: float) -> None:
        """Km driven (empty / occupied), passenger-km and energy of an ended leg, per link entered."""
        sim = self.sim
        v = self.vehicles[i]
        pos = sim.leg_route(leg)
        ent = sim.route_enter_s[pos]
        pos = pos[np.isfinite(ent)]
        if pos.size == 0:
            return
        links = sim.route_links[pos]
        km = self.net.link_length_m[links] / 1000.0
        ent = sim.route_enter_s[pos]
        load = self._load_on(i, ent)
        self._link_rows.append((np.full(links.size, i, np.int64), links.astype(np.int64), ent,
                                np.append(ent[1:], arrive), load))
        v.km_empty += float(km[load == 0].sum())
        v.km_occupied += float(km[load > 0].sum())
        v.pax_km += float((km * load).sum())
        op = self.config.operators[v.op]
        if op.electric is not None:
            e = float(km.sum()) * op.electric.consumption_kwh_per_km
            v.used_kwh += e
            v.soc_kwh -= e

    def _load_on(self, i: int, enter_s: np.ndarray) -> np.ndarray:
        """Passengers on board of vehicle ``i`` on links entered at ``enter_s`` (from the pick-up and
        drop-off times of its requests: a stop is passed at the entry of the link after it)."""
        load = np.zeros(enter_s.size, np.int64)
        v = self.vehicles[i]
        last = float(enter_s[-1]) if enter_s.size else -np.inf
        keep = []
        for r in v.requests:
            p, d = self.rq_pickup_s[r], self.rq_dropoff_s[r]
            if np.isfinite(p):
                load += (enter_s >= p) & ~(enter_s >= d)
            if not d <= last:  # links entered later (at or after ``last``) never carry it
                keep.append(r)
        v.requests = keep
        return load

    def _set_state(self, i: int, state: int, t_s: float) -> None:
        v = self.vehicles[i]
        v.time_in_state_s[v.state] += max(0.0, t_s - v.state_since_s)
        v.state, v.state_since_s = state, t_s

    # ------------------------------------------------------------------------- rejections
    def _reject(self, rid: int, t_s: float) -> None:
        """Request ``rid`` is rejected at ``t_s``: its resident goes by the fastest available non-car
        mode (walk or bike) from there and then."""
        from twin.domains.mobility.mode_choice import BIKE, WALK

        self.rq_rejected[rid] = True
        mob = self.mob
        tr = self.rq_trip[rid]
        cfg = mob.scenario.modes
        opts = []
        if "walk" in cfg.available or "bike" not in cfg.available:
            opts.append((float(mob.trip_walk_m[tr]) / cfg.walk_speed_mps, WALK))
        if "bike" in cfg.available:
            opts.append((float(mob.trip_bike_m[tr]) / cfg.bike_speed_mps, BIKE))
        dur, mode = min(opts)
        mob.trip_mode[tr] = mode
        self.n_fallback += 1
        self._arrivals_trip.append(tr)
        self._arrivals_s.append(t_s + dur)

    # --------------------------------------------------------------------------- charging
    def _charging(self, t_s: float) -> None:
        for i, v in enumerate(self.vehicles):
            op = self.config.operators[v.op]
            el = op.electric
            if el is None or v.depot < 0:
                continue
            if v.state == VehicleState.CHARGING and np.isfinite(v.plug_start_s):
                rate_kw = el.charger_kw * el.charger_efficiency
                need = el.charge_to_soc * el.battery_kwh - v.soc_kwh
                end = v.plug_start_s + need / rate_kw * 3600.0
                if end <= t_s:
                    self._unplug(i, end)
            elif v.state == VehicleState.IDLE and v.soc_kwh < el.charge_below_soc * el.battery_kwh:
                self._set_state(i, VehicleState.TO_CHARGER, t_s)
                if v.node == v.depot:
                    self._plug(i, t_s)
                else:
                    links = self.route_through(v.node, [v.depot])
                    v.leg = int(self.sim.append_legs([v.kid], [0, links.size], links, [float(self.sim.t_s)])[0])
                    v.node = v.depot

    def _plug(self, i: int, t_s: float) -> None:
        v = self.vehicles[i]
        el = self.config.operators[v.op].electric
        assert el is not None
        self._set_state(i, VehicleState.CHARGING, t_s)
        if self._plugs_busy.get(v.depot, 0) < el.plugs_per_depot:
            self._plugs_busy[v.depot] = self._plugs_busy.get(v.depot, 0) + 1
            v.plug_start_s = t_s
        else:
            v.plug_start_s = np.nan
            self._queue_at.setdefault(v.depot, []).append(i)

    def _unplug(self, i: int, t_s: float) -> None:
        v = self.vehicles[i]
        el = self.config.operators[v.op].electric
        assert el is not None
        kwh = (t_s - v.plug_start_s) / 3600.0 * el.charger_kw * el.charger_efficiency
        v.soc_kwh += kwh
        v.charged_kwh += kwh
        self.sessions.append((i, v.depot, v.plug_start_s, t_s, kwh))
        v.plug_start_s = np.nan
        self._set_state(i, VehicleState.IDLE, t_s)
        v.free_s = t_s
        q = self._queue_at.get(v.depot)
        if q:
            nxt = q.pop(0)
            self.vehicles[nxt].plug_start_s = t_s
        else:
            self._plugs_busy[v.depot] -= 1

    # ------------------------------------------------------------------------- rebalancing
    def _rebalance(self, j: int, t_s: float) -> None:
        demand = self._last_demand[j]
        reb = self.rebalancers[j]
        if demand is None or reb is None:
            return
        idle = [i for i in self.idle(j) if self.vehicles[i].state == VehicleState.IDLE]
        if not idle:
            return
        nodes = np.array([self.vehicles[i].node for i in idle], np.int64)
        centres = reb.zone_center_node
        cost = self.times_to(centres)[:, centres].T  # cost[a, b]: from centre a to centre b
        for k, dest in reb.plan(nodes, demand, cost):
            i = idle[k]
            v = self.vehicles[i]
            if dest == v.node:
                continue
            links = self.route_through(v.node, [int(dest)])
            v.leg = int(self.sim.append_legs([v.kid], [0, links.size], links, [float(self.sim.t_s)])[0])
            v.node = int(dest)
            self._set_state(i, VehicleState.REBALANCING, t_s)

    # ---------------------------------------------------------------------------- results
    def end_day(self, ctx: DomainContext) -> None:
        self.day_ready = False
        t_end = float(self.sim.t_s)
        for i, _ in enumerate(self.vehicles):
            self._set_state(i, self.vehicles[i].state, t_end)
        rq = self.request_columns()
        stats = []
        zone_dem: list[np.ndarray | None] = []
        for j, op in enumerate(self.config.operators):
            sel = (rq["operator_idx"] == j) & ~rq["rejected"] & np.isfinite(rq["dropoff_s"])
            wait = rq["wait_s"][sel]
            ratio = rq["in_vehicle_s"][sel] / np.maximum(rq["direct_s"][sel], 1e-9)
            stats.append({
                "wait_mean_s": float(wait.mean()) if wait.size else op.prior_wait_s,
                "ride_ratio": float(ratio.mean()) if ratio.size else 1.0,
                "shared_share": float(rq["shared"][sel].mean()) if wait.size else 0.0,
            })
            reb = self.rebalancers[j]
            if reb is not None:
                mine = rq["operator_idx"] == j
                zones = reb.zone_of_node[np.array(self.rq_pick_node, np.int64)[mine]]
                zone_dem.append(np.bincount(zones, minlength=reb.zone_center_node.size).astype(np.float64))
            else:
                zone_dem.append(None)
        self.day_stats = stats
        self._last_demand = zone_dem
        for j, op in enumerate(self.config.operators):
            zone = self.surge_zone[j]
            samples = self._idle_samples[j]
            if op.surge is None or zone is None or samples is None:
                continue
            mine = rq["operator_idx"] == j
            zr = zone[np.array(self.rq_pick_node, np.int64)[mine]]
            hr = np.clip(np.floor(rq["request_s"][mine] / 3600.0).astype(np.int64), 0, self._n_hours - 1)
            req = np.zeros_like(samples)
            np.add.at(req, (zr, hr), 1.0)
            idle_mean = samples / np.maximum(self._n_samples[j], 1.0)
            ratio = req / (1.0 + idle_mean)
            self.surge[j] = np.clip(1.0 + op.surge.sensitivity * (ratio - 1.0), 1.0, op.surge.max_multiplier)

    def charging_kw(self, t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean power the fleets' depot chargers drew from the grid over ``[t0_s, t1_s)`` (a service
        for the energy domain): the depot nodes (sorted) and their kW, from the sessions over by now
        and the vehicles plugged in now (charging at ``charger_kw`` until ``charge_to_soc``)."""
        spans: list[tuple[int, float, float, float]] = []  # depot, start, end, kW
        for i, depot, start, end, _ in self.sessions:
            el = self.config.operators[self.vehicles[i].op].electric
            assert el is not None
            spans.append((depot, start, end, el.charger_kw))
        for v in self.vehicles:
            el = self.config.operators[v.op].electric
            if el is None or v.state != VehicleState.CHARGING or not np.isfinite(v.plug_start_s):
                continue
            full_s = v.plug_start_s + max(el.charge_to_soc * el.battery_kwh - v.soc_kwh, 0.0) / (
                el.charger_kw * el.charger_efficiency) * 3600.0
            spans.append((v.depot, v.plug_start_s, full_s, el.charger_kw))
        if not spans or t1_s <= t0_s:
            return np.zeros(0, np.int64), np.zeros(0)
        a = np.array(spans, np.float64)
        overlap = np.clip(np.minimum(a[:, 2], t1_s) - np.maximum(a[:, 1], t0_s), 0.0, None)
        nodes, inv = np.unique(a[:, 0].astype(np.int64), return_inverse=True)
        kw = np.bincount(inv, weights=a[:, 3] * overlap, minlength=nodes.size) / (t1_s - t0_s)
        return nodes, kw

    def request_columns(self) -> dict[str, Any]:
        """Columns of ``maas_requests.parquet`` (see docs/maas.md)."""
        mode = self.mode
        t = self.mob.trips
        trip = np.array(self.rq_trip, np.int64)
        req_s = np.array(self.rq_t_s, np.float64)
        pick = np.array(self.rq_pickup_s, np.float64)
        drop = np.array(self.rq_dropoff_s, np.float64)
        direct = mode.direct_s[trip] if mode is not None else np.zeros(trip.size)
        shared = np.array(self.rq_shared, bool)
        fare = np.array(self.rq_fare, np.float64)
        ops = self.config.operators
        op_idx = np.array(self.rq_op, np.int64)
        disc = np.array([ops[j].pooled_discount if j >= 0 else 0.0 for j in self.rq_op])
        rejected = np.array(self.rq_rejected, bool)
        ivt = drop - pick
        return {
            "request_id": np.arange(trip.size, dtype=np.int64),
            "trip_id": trip,
            "resident_id": t.person[trip].astype(np.int64),
            "operator_idx": op_idx,
            "vehicle": np.array(self.rq_vehicle, np.int64),
            "request_s": req_s,
            "pickup_s": pick,
            "dropoff_s": drop,
            "wait_s": pick - req_s,
            "in_vehicle_s": ivt,
            "direct_s": direct,
            "detour_ratio": ivt / np.where(direct > 0, direct, np.nan),
            "max_in_vehicle_s": np.array(self.rq_max_ride_s, np.float64),
            "pickup_osmid": self.net.node_osmid[np.array(self.rq_pick_node, np.int64)],
            "dropoff_osmid": self.net.node_osmid[np.array(self.rq_drop_node, np.int64)],
            "fare": np.where(rejected, 0.0, np.where(shared, fare * (1.0 - disc), fare)),
            "shared": shared,
            "rejected": rejected,
        }

    def tables(self, ctx: DomainContext) -> Mapping[str, Mapping[str, np.ndarray | Categorical]]:
        from twin._tables import Categorical

        names = tuple(o.name for o in self.config.operators)
        rq = dict(self.request_columns())
        op_idx = rq.pop("operator_idx")
        rq["operator"] = Categorical(np.maximum(op_idx, 0).astype(np.int32), names)
        vs = self.vehicles
        veh = {
            "vehicle": np.arange(len(vs), dtype=np.int64),
            "operator": Categorical(np.array([v.op for v in vs], np.int32), names),
            "km_empty": np.array([v.km_empty for v in vs]),
            "km_occupied": np.array([v.km_occupied for v in vs]),
            "passenger_km": np.array([v.pax_km for v in vs]),
            "passengers": np.array([v.passengers for v in vs], np.int64),
            **{f"h_{name}": np.array([v.time_in_state_s[k] / 3600.0 for v in vs])
               for k, name in enumerate(VehicleState.NAMES)},
            "energy_used_kwh": np.array([v.used_kwh for v in vs]),
            "energy_charged_kwh": np.array([v.charged_kwh for v in vs]),
            "soc_initial_kwh": self.initial_soc_kwh,
            "soc_final_kwh": np.array([v.soc_kwh for v in vs]),
        }
        ses = np.array(self.sessions, dtype=np.float64).reshape(-1, 5)
        charging = {
            "vehicle": ses[:, 0].astype(np.int64),
            "depot_osmid": self.net.node_osmid[ses[:, 1].astype(np.int64)] if ses.size else np.zeros(0, np.int64),
            "start_s": ses[:, 2], "end_s": ses[:, 3], "energy_kwh": ses[:, 4],
        }
        fs = self.fleet_series
        fleet = {"t_s": np.array([x[0] for x in fs], np.float64)}
        for k, name in enumerate(VehicleState.NAMES):
            fleet[name] = np.array([x[1][k] for x in fs], np.int64)
        lr = self._link_rows
        cat = (lambda k, dt: np.concatenate([x[k] for x in lr]).astype(dt)) if lr else (lambda k, dt: np.zeros(0, dt))
        links = {"vehicle": cat(0, np.int64), "link_id": cat(1, np.int64), "enter_s": cat(2, np.float64),
                 "leave_s": cat(3, np.float64), "passengers": cat(4, np.int64)}
        ir = np.array(self._idle_rows, np.float64).reshape(-1, 3)
        idle = {"t_s": ir[:, 0], "vehicle": ir[:, 1].astype(np.int64),
                "osmid": self.net.node_osmid[ir[:, 2].astype(np.int64)]}
        return {"maas_requests": rq, "maas_vehicles": veh, "maas_charging": charging, "maas_fleet": fleet,
                "maas_links": links, "maas_idle": idle}

    @classmethod
    def report_sections(cls) -> list[tuple[str, Any]]:
        from twin.domains.maas.report import maas_section

        return [("MaaS fleets", maas_section)]

    def kpis(self, ctx: DomainContext) -> dict[str, Any]:
        rq = self.request_columns()
        served = ~rq["rejected"] & np.isfinite(rq["dropoff_s"])
        wait = rq["wait_s"][served]
        vs = self.vehicles
        km_e = sum(v.km_empty for v in vs)
        km_o = sum(v.km_occupied for v in vs)
        pax_km = sum(v.pax_km for v in vs)
        busy_h = sum(sum(v.time_in_state_s[1:4]) for v in vs) / 3600.0
        all_h = sum(sum(v.time_in_state_s) for v in vs) / 3600.0

        def r(x: float | None, nd: int = 3) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), nd)

        n = int(rq["request_id"].size)
        return {
            "maas_requests": n,
            "maas_served": int(served.sum()),
            "maas_rejection_rate": r(float(rq["rejected"].mean()) if n else None, 4),
            "maas_fallback_trips": self.n_fallback,
            "maas_wait_mean_s": r(float(wait.mean()) if wait.size else None, 1),
            "maas_wait_p95_s": r(float(np.percentile(wait, 95)) if wait.size else None, 1),
            "maas_detour_ratio_mean": r(float(np.nanmean(rq["detour_ratio"][served])) if wait.size else None),
            "maas_shared_share": r(float(rq["shared"][served].mean()) if wait.size else None),
            "maas_vkt_km": r(km_e + km_o, 1),
            "maas_empty_share": r(km_e / (km_e + km_o) if km_e + km_o > 0 else None),
            "maas_occupancy": r(pax_km / (km_e + km_o) if km_e + km_o > 0 else None),
            "maas_utilisation": r(busy_h / all_h if all_h > 0 else None),
            "maas_revenue": r(float(rq["fare"][served].sum()), 2),
            "maas_surge_mean": r(float(np.mean([self.surge_multiplier(self.rq_op[q], np.array([self.rq_pick_node[q]]),
                                                                      np.array([self.rq_t_s[q]]))[0]
                                                for q in range(n) if self.rq_op[q] >= 0])) if n else None),
            "maas_energy_used_kwh": r(sum(v.used_kwh for v in vs), 2),
            "maas_energy_charged_kwh": r(sum(v.charged_kwh for v in vs), 2),
        }
