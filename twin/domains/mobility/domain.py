"""The mobility domain: residents' trips by car, walk, bike and plug-in modes on the real road network.

It is the first :class:`~twin.domains.base.Domain` and the one the others stand on. It owns

* the **trips** of the day (:mod:`twin.demand`) and their modes (multinomial logit over generalized
  cost, :mod:`twin.domains.mobility.mode_choice`; plug-in modes, :mod:`twin.domains.mobility.modes`);
* **routing** per cost bin (experienced link times plus tolls through the value of time) and the
  **policies** in force (:mod:`twin.domains.mobility.policies`);
* the **queue kernel** (:class:`twin.kernels.queue.QueueSim`) that moves every car, and the vehicles
  other domains add to it;
* the built-in phases ``demand`` (residents whose activity ends start their next trip), ``dispatch``
  (plug-in modes serve requests; policies change link capacities and speeds) and ``move`` (the
  kernel advances to the end of the step);
* the end of a day: **score** (experienced link times, relative gap) and **plan** (re-routing and
  mode re-choice of a share of trips and tours, MSA by default);
* the outputs ``trips.parquet``, ``links.parquet``, ``events.parquet`` and ``iterations.parquet``
  (:mod:`twin.domains.mobility.outputs`) and the day's KPIs.

Events (``depart``, ``enter_link``, ``leave_link``, ``arrive``, ``aborted``, ``mode_change``) are
published on the run's event bus in the step they happen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from twin._csr import assemble, segment_sum, take
from twin._rng import stream as rng_stream
from twin.demand import LEISURE, SCHOOL, SHOP, WORK, Trips, build_trips
from twin.domains.base import Domain
from twin.domains.mobility.mode_choice import BIKE, CAR, MODES, WALK, choose_modes, tour_utilities
from twin.domains.mobility.modes import BUILTIN_MODES, ModeProvider, get_mode, validate_mode_options
from twin.domains.mobility.outputs import EventRecorder, MobilityOutputs
from twin.domains.mobility.policies import CLOSED_CAPACITY_FACTOR, PolicySet
from twin.domains.mobility.replanning import WithinDayReplanning
from twin.kernels.queue import STATUS_ARRIVED, QueueSim
from twin.locations import Locations
from twin.network.road_network import RoadNetwork
from twin.network.routing import Router

if TYPE_CHECKING:  # pragma: no cover
    from twin.context import DomainContext
    from twin.scenario import Scenario

__all__ = ["MobilityDomain", "ModeContext", "load_network"]


def load_network(scenario: Any, network_type: str | None = None) -> RoadNetwork:
    """The :class:`RoadNetwork` a scenario names (cached on disk after the first load)."""
    return RoadNetwork.load(
        scenario.map.source, network_type or scenario.map.network_type, min_length_m=scenario.map.min_link_length_m
    )


def _group_route(router: Router, origins: np.ndarray, dests: np.ndarray, groups: np.ndarray,
                 weights: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Route OD pairs whose cost array is ``weights[groups[i]]``; costs and CSR routes in input order."""
    cost = np.full(origins.shape[0], np.inf)
    parts = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        # Router is untyped while twin.network has its temporary override (unused-ignore: once it is typed)
        rs = router.route(origins[idx], dests[idx], weight=weights[int(g)])  # type: ignore[no-untyped-call, unused-ignore]
        cost[idx] = rs.cost
        parts.append((idx, rs.route_indptr, rs.route_links))
    indptr, links = assemble(origins.shape[0], parts)
    return cost, indptr, links


def _group_costs(router: Router, origins: np.ndarray, dests: np.ndarray, groups: np.ndarray,
                 weights: dict[int, np.ndarray]) -> np.ndarray:
    cost = np.full(origins.shape[0], np.inf)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        cost[idx] = router.costs(origins[idx], dests[idx], weight=weights[int(g)])  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
    return cost


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _split_arrived(pending: np.ndarray, arrive_s: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``pending`` split into the trips with ``arrive_s <= t_s`` and the others (order kept)."""
    n = pending.shape[0]
    due = np.empty(n, np.int64)
    rest = np.empty(n, np.int64)
    a = 0
    b = 0
    for j in range(n):
        i = pending[j]
        if arrive_s[i] <= t_s:
            due[a] = i
            a += 1
        else:
            rest[b] = i
            b += 1
    return due[:a], rest[:b]


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _leave_events(vehicle: np.ndarray, leg: np.ndarray, link: np.ndarray, last_link: np.ndarray,
                  last_leg: np.ndarray) -> np.ndarray:
    """For link entries in the order they happened: the link each vehicle left at that entry (-1 at
    the first entry of a leg), updating each vehicle's last entered link and leg."""
    n = vehicle.shape[0]
    left = np.empty(n, np.int64)
    for j in range(n):
        v = vehicle[j]
        left[j] = last_link[v] if last_leg[v] == leg[j] else -1
        last_link[v] = link[j]
        last_leg[v] = leg[j]
    return left


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _trip_counts(state: np.ndarray, depart_s: np.ndarray, t_s: float) -> tuple[int, int, int]:
    """(departed, under way, done) at ``t_s``: started trips whose departure time has passed,
    those of them still under way (state 1), and the trips done (state 2)."""
    departed = 0
    under = 0
    done = 0
    for i in range(state.shape[0]):
        s = state[i]
        if s == 2:
            done += 1
        if s > 0 and depart_s[i] < t_s:
            departed += 1
            if s == 1:
                under += 1
    return departed, under, done


class ModeContext:
    """What a plug-in mode (:class:`~twin.domains.mobility.modes.ModeProvider`) sees of the run: the
    network, the trips, a router, the scenario, the clock and its random streams; not the model."""

    def __init__(self, mobility: MobilityDomain) -> None:
        self._mob = mobility

    @property
    def network(self) -> RoadNetwork:
        return self._mob.network

    @property
    def trips(self) -> Trips:
        return self._mob.trips

    @property
    def router(self) -> Router:
        return self._mob.router

    @property
    def scenario(self) -> Scenario:
        return self._mob.scenario

    @property
    def t_s(self) -> float:
        t_s: float = self._mob.sim.t_s
        return t_s

    def mode_rng(self, name: str) -> np.random.Generator:
        """A generator of the run's RNG tree for plug-in mode ``name`` (same seed, same stream)."""
        return self._mob.mode_rng(name)

    def domain(self, name: str) -> Any:
        """An attached domain of the run (``None`` if none of that name): a mode that a domain
        implements (the ``maas`` mode and the MaaS domain) reaches it here, once the day runs."""
        return self._mob.ctx.domain(name)


class MobilityDomain(WithinDayReplanning, MobilityOutputs, Domain):
    """Residents' trips on the road network: demand, modes, routing, policies, the queue kernel.

    Parameters
    ----------
    walk_network, bike_network
        Networks for walk and bike trips (loaded when those modes are available and omitted).
    route_progress
        Optional callback ``f(done, total)`` called while routing the first day.

    Attributes
    ----------
    trips : twin.demand.Trips, every resident's trips (columns)
    trip_mode : int8 (m,), index into mode_names (MODES, then the plug-in modes)
    trip_same_node : bool (m,), origin == destination (same drive node): such a trip arrives at
        its departure time, with no length, on any mode, and never enters the network
    sim : QueueSim, the traffic state of the current day (car trips only)
    iteration_records : list of dict, KPIs per simulated day
    """

    name = "mobility"
    always = True

    def __init__(self, config: Any = None, *, walk_network: RoadNetwork | None = None,
                 bike_network: RoadNetwork | None = None,
                 route_progress: Callable[[int, int], None] | None = None) -> None:
        super().__init__(config)
        self._walk_network = walk_network
        self._bike_network = bike_network
        self._route_progress = route_progress

    def attach(self, ctx: DomainContext) -> None:
        """Build the trips, route them and choose their modes (the first day's plans)."""
        self.ctx = ctx
        self.events = ctx.events
        scenario = ctx.scenario
        self.scenario = scenario
        self.network = net = ctx.network
        self.pop = ctx.population
        #: share of the real population the residents are a sample of (capacities scale with it)
        self.sample_share = float(scenario.population.sample_share)
        # named streams (twin._rng): adding one (a new domain's) changes none of these
        ss_dem, ss_mode, ss_replan, ss_merge = (
            rng_stream(scenario.seed, n) for n in ("demand", "mode_choice", "replanning", "merge"))
        # merge draws of the queue kernel: the same seed every day (common random numbers, so that
        # day-to-day changes come from the plans, not from new draws at the junctions)
        self._merge_seed = int(ss_merge.generate_state(1, np.uint64)[0])
        self._mode_rng = np.random.default_rng(ss_mode)
        self._plugin_mode_rng = np.random.default_rng(rng_stream(scenario.seed, "plugin_mode_choice"))
        self._replan_rng = np.random.default_rng(ss_replan)
        self.mode_ctx = ModeContext(self)
        self._recorder: EventRecorder | None = None
        self.iteration = 0
        self.iteration_records: list[dict[str, Any]] = []
        with ctx.phase("population"):
            self.trips = build_trips(net, self.pop, scenario.demand, np.random.default_rng(ss_dem))
            self.trip_same_node = self.trips.origin == self.trips.dest
            self._any_same_node = bool(self.trips.n and self.trip_same_node.any())

        # time bins of link costs and policies
        self.bin_s = float(scenario.replanning.cost_bin_s)
        self.n_bins = int(math.ceil(scenario.simulation.end_s / self.bin_s)) + 1
        self.policies = PolicySet(scenario.policies, net)
        self.vot_per_h = scenario.modes.value_of_time_per_h
        self._bin_arrays = [self.policies.arrays(b * self.bin_s, (b + 1) * self.bin_s) for b in range(self.n_bins)]
        self.link_freeflow_s = np.stack([net.link_fftt_s / a.speed_factor for a in self._bin_arrays], axis=1)
        for b, a in enumerate(self._bin_arrays):
            self.link_freeflow_s[a.closed, b] = np.inf
        self.link_toll = np.stack([a.toll for a in self._bin_arrays], axis=1)
        self.link_time_s = self.link_freeflow_s.copy()  # experienced (after a day) or free flow
        self.router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)  # type: ignore[no-untyped-call, unused-ignore]  # untyped
        # plug-in modes (twin.domains.mobility.modes): indices 3, 4, ... after car, walk, bike
        mcfg = scenario.modes
        self.mode_providers: list[ModeProvider] = [
            get_mode(n)(validate_mode_options(n, mcfg.plugins.get(n, {})))
            for n in mcfg.available if n not in BUILTIN_MODES
        ]
        self.mode_names: tuple[str, ...] = MODES + tuple(p.name for p in self.mode_providers)
        # events.parquet: the mobility events of the last day, recorded from the bus
        if scenario.output.events:
            self._recorder = EventRecorder(ctx.events, self._event_rows_of, self.mode_names)

        with ctx.phase("plan"):
            self._init_mode_skims(self._walk_network, self._bike_network)
            self._walk_network = self._bike_network = None
            for p in self.mode_providers:
                p.attach(self.mode_ctx)
            m = self.trips.n
            self.trip_mode = np.full(m, CAR, dtype=np.int8)
            self.route_indptr = np.zeros(m + 1, dtype=np.int64)  # car routes of all trips (CSR)
            self.route_links = np.zeros(0, dtype=np.int32)
            self.trip_depart_s = np.full(m, np.nan)
            self.trip_arrive_s = np.full(m, np.nan)
            plan_dep = self._planned_departures()
            self._route(np.arange(m), plan_dep, progress=self._route_progress)
            self._choose_modes(np.arange(self.trips.n_tours), plan_dep, first=True)
            self.router.forget()  # type: ignore[no-untyped-call, unused-ignore]  # its kept routes are used by now

    # ----------------------------------------------------------------- helpers
    def _bin_of(self, t_s: np.ndarray) -> np.ndarray:
        b = np.floor(np.nan_to_num(t_s, nan=0.0) / self.bin_s).astype(np.int64)
        out: np.ndarray = np.clip(b, 0, self.n_bins - 1)
        return out

    def _weights(self, bins: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Generalized-cost weight arrays (s) per bin; equal arrays share one group."""
        groups = np.empty(bins.shape[0], dtype=np.int64)
        weights: dict[int, np.ndarray] = {}
        keys: dict[bytes, int] = {}
        for b in np.unique(bins):
            w = self.link_time_s[:, b] + self.link_toll[:, b] * 3600.0 / self.vot_per_h
            k = w.tobytes()
            g = keys.setdefault(k, len(keys))
            weights[g] = w
            groups[bins == b] = g
        return groups, weights

    def _init_mode_skims(self, walk_network: RoadNetwork | None, bike_network: RoadNetwork | None) -> None:
        """Static walk/bike distances of every trip (uncongested modes), on their own networks."""
        from scipy.spatial import cKDTree

        from twin.network.road_network import _project

        cfg = self.scenario.modes
        m = self.trips.n
        self.trip_walk_m = np.full(m, np.inf)
        self.trip_bike_m = np.full(m, np.inf)
        drive = self.network
        #: walk/bike network routers and the snap of every drive node to their nodes (kept for the
        #: trips that domains add within the day)
        self._skim_nets: dict[str, tuple[Router, np.ndarray, RoadNetwork]] = {}
        for mode, attr, supplied in (("walk", "trip_walk_m", walk_network), ("bike", "trip_bike_m", bike_network)):
            if mode not in cfg.available or m == 0:
                continue
            net = supplied if supplied is not None else load_network(self.scenario, mode)
            x, y = _project(net.node_lon, net.node_lat, drive.crs)
            _, snap = cKDTree(np.column_stack([x, y])).query(np.column_stack([drive.node_x_m, drive.node_y_m]))
            r = Router(net.indptr, net.link_head, net.link_tail, net.link_length_m)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
            self._skim_nets[mode] = (r, snap, net)
            setattr(self, attr, self._uncongested_m(mode, self.trips.origin, self.trips.dest))
        self.trip_car_cost_s = np.full(m, np.inf)  # generalized cost of the car route (s)
        self.trip_car_m = np.full(m, np.inf)
        self.trip_car_toll = np.zeros(m)

    def _uncongested_m(self, mode: str, origin: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Shortest-path length (m) on the walk or bike network between drive nodes (``inf`` for bike
        when it is not available). Walking is always possible: a scenario without the walk mode
        still has residents who must walk (an evacuee without a car, a driver who leaves a car
        stuck at a closure); they walk on the drive network's streets (built on first use)."""
        if mode not in self._skim_nets:
            if mode != "walk":
                return np.full(origin.shape[0], np.inf)
            d = self.network
            r0 = Router(d.indptr, d.link_head, d.link_tail, d.link_length_m)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
            self._skim_nets["walk"] = (r0, np.arange(d.n_nodes), d)
        r, snap, _ = self._skim_nets[mode]
        o = snap[origin]
        d = snap[dest]
        dist: np.ndarray = r.costs(o, d)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        # same node after snapping: the straight-line distance between the drive nodes
        same = o == d
        drive = self.network
        dx = drive.node_x_m[origin] - drive.node_x_m[dest]
        dy = drive.node_y_m[origin] - drive.node_y_m[dest]
        dist[same] = np.hypot(dx, dy)[same]
        return dist

    def walk_network(self) -> tuple[RoadNetwork, np.ndarray]:
        """The network residents walk on (the walk network when the walk mode is available, else the
        drive network's streets) and the walk-network node of every drive-network node."""
        if "walk" not in self._skim_nets:
            self._uncongested_m("walk", np.zeros(0, np.int64), np.zeros(0, np.int64))  # builds the fallback
        _, snap, net = self._skim_nets["walk"]
        return net, snap

    def _planned_departures(self) -> np.ndarray:
        """Expected departure of every trip (first departures plus free-flow times and durations)."""
        t = self.trips
        dep = np.full(t.n, np.nan)
        ff = np.zeros(t.n)
        if t.n:
            ff = self.router.costs(t.origin, t.dest, weight=self.network.link_fftt_s)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        # walk the chains: trips of a person are contiguous and in order
        for j in range(int(np.diff(t.person_ptr).max(initial=0))):
            idx = t.person_ptr[:-1] + j
            ok = idx < t.person_ptr[1:]
            idx = idx[ok]
            if j == 0:
                dep[idx] = t.first_depart_s[idx]
            else:
                prev = idx - 1
                dep[idx] = dep[prev] + ff[prev] + np.where(np.isfinite(t.act_duration_s[prev]),
                                                           t.act_duration_s[prev], 0.0)
        return dep

    def _route(self, trip_idx: np.ndarray, depart_s: np.ndarray,
               progress: Callable[[int, int], None] | None = None, *, avoid_closed: bool = False) -> None:
        """Least generalized-cost car routes of ``trip_idx`` for their departure bins (with
        ``avoid_closed``: the links closed now left out, for trips added within the day)."""
        if trip_idx.size == 0:
            return
        t = self.trips
        bins = self._bin_of(depart_s[trip_idx])
        groups, weights = self._weights(bins)
        closed = getattr(self, "_closed_links", None)
        avoid = getattr(self, "_avoid", None)
        if avoid_closed and ((closed is not None and closed.size) or avoid is not None):
            weights = {g: w.copy() for g, w in weights.items()}
            for w in weights.values():
                if avoid is not None:
                    w *= avoid
                if closed is not None:
                    w[closed] = np.inf
        # chunks keep memory bounded and drive the progress bar
        order = np.argsort(groups * (self.network.n_nodes + 1) + t.origin[trip_idx], kind="stable")
        chunks = np.array_split(order, max(1, min(20, trip_idx.size // 2000)))
        done = 0
        parts = []
        for ch in chunks:
            idx = trip_idx[ch]
            cost, ptr, links = _group_route(self.router, t.origin[idx], t.dest[idx], groups[ch], weights)
            self.trip_car_cost_s[idx] = cost
            self.trip_car_m[idx] = segment_sum(self.network.link_length_m[links], ptr)
            bin_of_pos = np.repeat(bins[ch], np.diff(ptr))
            self.trip_car_toll[idx] = segment_sum(self.link_toll[links, bin_of_pos], ptr)
            parts.append((idx, ptr, links))
            done += ch.size
            if progress is not None:
                progress(done, trip_idx.size)
        self.route_indptr, self.route_links = assemble(t.n, parts, base=(self.route_indptr, self.route_links))

    def _choose_modes(self, tours: np.ndarray, depart_s: np.ndarray, *, first: bool = False) -> None:
        """(Re)choose the mode of ``tours`` by multinomial logit on generalized cost."""
        if tours.size == 0:
            return
        cfg = self.scenario.modes
        t = self.trips
        time_h = np.column_stack([
            np.where(np.isfinite(self.trip_car_cost_s),
                     self.trip_car_cost_s - self.trip_car_toll * 3600.0 / self.vot_per_h, np.inf) / 3600.0,
            self.trip_walk_m / cfg.walk_speed_mps / 3600.0,
            self.trip_bike_m / cfg.bike_speed_mps / 3600.0,
        ])
        n_modes = len(self.mode_names)
        money = np.zeros((t.n, n_modes))
        money[:, CAR] = self.trip_car_m / 1000.0 * cfg.car_cost_per_km + self.trip_car_toll
        avail = np.zeros((t.n_tours, n_modes), dtype=bool)
        drive = self.pop.can_drive[t.tour_person]
        avail[:, CAR] = drive & ("car" in cfg.available)
        avail[:, WALK] = "walk" in cfg.available
        avail[:, BIKE] = "bike" in cfg.available
        fixed = np.zeros((t.n_tours, n_modes))
        fixed[:, CAR] = cfg.car_parking_cost
        asc = np.array([cfg.asc_car, cfg.asc_walk, cfg.asc_bike] + [p.options.asc for p in self.mode_providers])
        if self.mode_providers:
            extra_h = np.empty((t.n, len(self.mode_providers)))
            for j, p in enumerate(self.mode_providers):
                ts, cost = p.skim(self.mode_ctx, np.arange(t.n), depart_s)
                extra_h[:, j] = np.asarray(ts, dtype=np.float64) / 3600.0
                money[:, 3 + j] = cost
                avail[:, 3 + j] = True
            if self._any_same_node:  # a trip to the same node takes no time and costs nothing
                z = self.trip_same_node[:, None] & np.isfinite(extra_h)
                extra_h[z] = 0.0
                money[:, 3:][z] = 0.0
            time_h = np.column_stack([time_h, extra_h])
        v = tour_utilities(t.n_tours, t.tour, time_h, money, asc=asc, beta_time_per_h=cfg.beta_time_per_h,
                           beta_cost_per_money=cfg.beta_cost_per_money, available=avail, tour_fixed_money=fixed)
        none = ~np.isfinite(v).any(axis=1)
        if none.any():  # no mode available/reachable: fall back to walking (always possible in the model)
            v[none, WALK] = 0.0
        # draws for all tours (reproducible whatever the subset); plug-in modes draw from their own
        # stream, so the built-in modes' draws are those of the same scenario without them
        draw = choose_modes(v, self._mode_rng, n_base=len(MODES), extra_rng=self._plugin_mode_rng)
        tour_mode = np.zeros(t.n_tours, dtype=np.int8) if first else self.tour_mode
        tour_mode[tours] = draw[tours]
        self.tour_mode = tour_mode
        self.trip_mode = tour_mode[t.tour].astype(np.int8)

    # ---------------------------------------------------------------- the day
    def mode_rng(self, name: str) -> np.random.Generator:
        """A generator of the run's RNG tree for plug-in mode ``name`` (same seed, same stream)."""
        return np.random.default_rng(rng_stream(self.scenario.seed, f"mode:{name}"))

    # ---------------------------------------------------------------- the day
    def start_day(self, ctx: DomainContext | None = None) -> None:
        """Start a day from the plans: the kernel with every car trip, the first trip of everyone."""
        self._restore_plan()  # trips that domains added during the previous day are dropped
        cfg = self.scenario.simulation
        for p in self.mode_providers:
            p.start_day(self.mode_ctx)
        net = self.network
        t = self.trips
        # a car trip without a route (destination unreachable, e.g. behind a closure): its tour walks.
        # A trip to its own origin node has no route either, but needs none (it takes no time).
        no_route = np.flatnonzero((self.trip_mode == CAR) & (np.diff(self.route_indptr) == 0) & ~self.trip_same_node)
        if no_route.size:
            self.tour_mode[np.unique(t.tour[no_route])] = WALK
            self.trip_mode = self.tour_mode[t.tour].astype(np.int8)
        # the car trips that drive on the network (the kernel's trips): every one has at least one
        # link; car trips whose origin is their destination arrive at once and never enter the kernel
        self.car_trips = np.flatnonzero((self.trip_mode == CAR) & ~self.trip_same_node)
        self.car_index = np.full(t.n, -1, dtype=np.int64)
        self.car_index[self.car_trips] = np.arange(self.car_trips.size)
        indptr, links = take(self.route_indptr, self.route_links, self.car_trips)
        self.car_route_indptr, self.car_route_links = indptr, links
        if self.car_trips.size == 0:  # keep the kernel's invariants with one dummy trip that never departs
            indptr = np.array([0, 1], dtype=np.int64)
            links = np.zeros(1, np.int32)
        self.sim = QueueSim(
            fftt_s=net.link_fftt_s.copy(),
            # a sample of the population drives on roads scaled to the sample (MATSim's flowCapacityFactor)
            cap_veh_per_s=net.link_capacity_vph / 3600.0 * cfg.flow_capacity_factor * self.sample_share,
            storage_veh=np.maximum(1.0, net.link_storage_veh * cfg.storage_capacity_factor * self.sample_share),
            route_indptr=indptr,
            route_links=links,
            dt_s=cfg.dt_s,
            t_start_s=cfg.start_s,
            stuck_time_s=cfg.stuck_time_s,
            stuck_action=cfg.stuck_action,
            merge_seed=self._merge_seed,
            n_hours=self.n_bins,
            bin_s=self.bin_s,
            backend=cfg.backend,
            # legs that domains append are checked against these, and vehicles know where they stand
            link_from_node=net.link_tail,
            link_to_node=net.link_head,
        )
        self._base_cap = self.sim.cap_veh_per_step.copy()
        self._avoid: np.ndarray | None = None  # link cost factors of within-day routes (avoid_links)
        self._base_fftt = self.sim.fftt_s.copy()
        self.trip_depart_s = np.full(t.n, np.nan)
        self.trip_arrive_s = np.full(t.n, np.nan)
        # 0 planned, 1 scheduled or under way (departed once depart_s has passed), 2 done, 3 aborted
        self.trip_state = np.zeros(t.n, dtype=np.int8)
        self._succ_started = np.zeros(t.n, dtype=bool)  # the trip after this one has started
        # the next trip of each trip in its resident's day (-1: the last); within-day replanning
        # (replace_plans) rewires it to the trips it adds
        self.trip_next = np.arange(1, t.n + 1, dtype=np.int64)
        if t.n:
            self.trip_next[t.person_ptr[1:][np.diff(t.person_ptr) > 0] - 1] = -1
        self.trip_prev = np.arange(-1, t.n - 1, dtype=np.int64)  # the trip before (-1: the first)
        if t.n:
            self.trip_prev[t.seq == 0] = -1
        self.trip_go_on = np.zeros(t.n, dtype=bool)  # the next trip leaves on arrival (replanned)
        self.trip_source = np.zeros(t.n, np.int16)  # 0: the plan; k: added by replacement source k
        # bookkeeping by events, not by passes over all trips at every step: the kernel's finish
        # log (read up to _fin_seen), the started non-car trips not yet done, the trips done since
        # the last demand phase, and the number of trips under way (state 1)
        self._fin_seen = 0
        self._tele_pending = np.zeros(0, np.int64)
        self._dep_pending = np.zeros(0, np.int64)  # begun trips whose departure is not published yet
        # link events: the kernel's entry and finish logs read so far, each vehicle's last link and leg
        self._ent_seen = 0
        self._veh_trip = self.car_trips.astype(np.int64)  # kernel vehicle -> resident trip (-1: none)
        self._fin_ev_seen = 0
        self._last_link = np.full(self.sim.n_vehicles, -1, np.int64)
        self._last_leg = np.full(self.sim.n_vehicles, -1, np.int64)
        if self._recorder is not None:
            rcfg = self.scenario.replanning
            # a day that may be the last (the last iteration, or any when a gap can end the run)
            # writes events.parquet while it runs
            self._recorder.reset(stream=self.iteration == rcfg.iterations - 1 or rcfg.gap_threshold > 0)
        self._cur_trip = np.full(self.pop.n, -1, np.int64)  # each resident's last begun trip
        self._newly_done: list[np.ndarray] = []
        self._n_under = 0
        self._counts = None
        first = t.person_ptr[:-1][np.diff(t.person_ptr) > 0]
        dep = np.maximum(t.first_depart_s[first], cfg.start_s)
        self._begin_trips(first, dep)

    def _begin_trips(self, idx: np.ndarray, depart_s: np.ndarray) -> None:
        """Start trips ``idx`` at ``depart_s``: cars go to the kernel, others take their free time;
        trips whose origin is their destination arrive at their departure time, on any mode."""
        if idx.size == 0:
            return
        cfg = self.scenario.modes
        self.trip_depart_s[idx] = depart_s
        self.trip_state[idx] = 1
        self._cur_trip[self.trips.person[idx]] = idx
        self._dep_pending = np.concatenate([self._dep_pending, idx])
        self._n_under += idx.size
        self._counts = None
        mode = self.trip_mode[idx]
        car = self.car_index[idx] >= 0  # car trips on the network (not those to their own origin)
        if car.any():
            self.sim.schedule(self.car_index[idx[car]], depart_s[car])
        if not car.all():
            self._tele_pending = np.concatenate([self._tele_pending, idx[~car]])
        for m, dist, speed in ((WALK, self.trip_walk_m, cfg.walk_speed_mps),
                               (BIKE, self.trip_bike_m, cfg.bike_speed_mps)):
            sel = mode == m
            if sel.any():
                self.trip_arrive_s[idx[sel]] = depart_s[sel] + dist[idx[sel]] / speed
        if self._held_walks.size:  # walks whose arrivals a domain reports (hold_arrivals)
            held = np.isin(idx, self._held_walks)
            self.trip_arrive_s[idx[held]] = np.nan
        same = None
        if self._any_same_node:
            same = self.trip_same_node[idx]
            if same.any():
                self.trip_arrive_s[idx[same]] = depart_s[same]
            else:
                same = None
        for j, p in enumerate(self.mode_providers):
            sel = mode == 3 + j
            if same is not None:
                sel &= ~same  # providers never see trips to the same node
            if sel.any():
                self.trip_arrive_s[idx[sel]] = np.nan  # set when the provider reports the arrival
                p.begin(self.mode_ctx, idx[sel], depart_s[sel])

    def demand(self, ctx: DomainContext | None = None) -> None:
        """Start the next trip of every resident whose current activity ends."""
        t_now = self.sim.t_s
        t = self.trips
        self.collect_finishes()
        # trips of the other modes whose (known or reported) arrival has passed
        if self._tele_pending.size:
            done_other, self._tele_pending = _split_arrived(self._tele_pending, self.trip_arrive_s, t_now)
            if done_other.size:
                self.trip_state[done_other] = 2
                self._publish_trips("arrive", done_other, self.trip_arrive_s[done_other])
                self._n_under -= done_other.size
                self._newly_done.append(done_other)
                self._counts = None
        # successors of trips done since the last step (in trip order)
        if not self._newly_done:
            return
        done = np.sort(np.concatenate(self._newly_done))
        self._newly_done = []
        self._succ_started[done] = True
        prev = done[self.trip_next[done] >= 0]
        if prev.size == 0:
            return
        d = self.scenario.demand
        arrive = self.trip_arrive_s[prev]
        dur = t.act_duration_s[prev]
        act = t.purpose[prev]
        opens = np.zeros(prev.size)
        closes = np.full(prev.size, np.inf)
        for a, cfg in ((WORK, d.work), (SCHOOL, d.school), (SHOP, d.shop), (LEISURE, d.leisure)):
            sel = act == a
            opens[sel] = cfg.opens_s
            closes[sel] = cfg.closes_s
        start = np.maximum(arrive, opens)
        end = np.minimum(start + dur, np.maximum(closes, arrive))
        end = np.maximum(end, arrive + self.scenario.simulation.record_interval_s)
        depart = np.maximum(end, t_now)
        go_on = self.trip_go_on[prev]
        if go_on.any():  # within-day replanning: the new chain leaves on arrival
            depart[go_on] = np.maximum(arrive[go_on], t_now)
        self._begin_trips(self.trip_next[prev], depart)

    def dispatch(self, ctx: DomainContext | None = None) -> None:
        """Plug-in modes serve their requests up to the end of the step; the link changes of policies in
        force at the current time go to the kernel arrays."""
        if self.mode_providers:
            cfg = self.scenario.simulation
            t_now = self.sim.t_s
            t_end = min(t_now + cfg.record_interval_s, cfg.end_s)
            for p in self.mode_providers:
                trips, arrive_s = p.advance(self.mode_ctx, t_now, t_end)
                trips = np.asarray(trips, dtype=np.int64)
                self.trip_arrive_s[trips] = arrive_s
        if not len(self.policies):
            return
        b = int(self._bin_of(np.array([self.sim.t_s]))[0])
        a = self._bin_arrays[b]
        cap = self._base_cap * a.capacity_factor
        cap[a.closed] = self._base_cap[a.closed] * CLOSED_CAPACITY_FACTOR
        self.sim.cap_veh_per_step[:] = cap
        self.sim.fftt_s[:] = self._base_fftt / a.speed_factor

    def collect_finishes(self) -> None:
        """Car trips the kernel finished since the last call (its finish log): arrived → done,
        removed when stuck → aborted."""
        fin = self.sim.finished(self._fin_seen)
        if fin.size == 0 or self.car_trips.size == 0:
            return
        self._fin_seen += fin.size
        trips = self._vehicle_trip(fin)
        if self.sim.n_vehicles > self.car_trips.size or self._plan_changes:
            # a domain's vehicles are not residents' trips; trips cancelled by within-day
            # replanning were counted when they were cancelled
            live = trips >= 0
            live[live] = self.trip_state[trips[live]] != 4
            fin, trips = fin[live], trips[live]
        arrived = self.sim.status[fin] == STATUS_ARRIVED
        if self._left_car.size:  # cars left by their drivers (leave_cars): the trip ended where the car was
            arrived |= np.isin(trips, self._left_car)
        done = trips[arrived]
        self.trip_arrive_s[done] = self.sim.arrive_s[fin[arrived]]
        self.trip_state[done] = 2
        ab = trips[~arrived]
        self.trip_state[ab] = 3
        if done.size and self.events.wants("arrive"):  # the last link left, for events.parquet
            v = fin[arrived]
            self._publish_trips("arrive", done, self.trip_arrive_s[done],
                                self.sim.route_links[self.sim.rpos[v]].astype(np.int64))
        self._publish_trips("aborted", ab, np.full(ab.size, np.nan))
        self._n_under -= trips.size
        self._newly_done.append(done)
        self._counts = None

    def trip_counts(self) -> tuple[int, int, int]:
        """Trips departed, under way and done at the current time (one pass, cached per step)."""
        key = (self.sim.t_s, self.iteration)
        if self._counts is None or self._counts[0] != key:
            self._counts = (key, _trip_counts(self.trip_state, self.trip_depart_s, self.sim.t_s))
        return self._counts[1]

    def move(self) -> None:
        """The ``move`` phase: the queue kernel runs to the end of the step. (The step's departures and
        link events go to the event bus in the ``publish`` phase that follows.)"""
        cfg = self.scenario.simulation
        t_end = min(self.sim.t_s + cfg.record_interval_s, cfg.end_s)
        self.sim.advance(t_end)

    def publish(self) -> None:
        """The ``publish`` phase: the step's departures and, when someone subscribes to them, its link
        entries and exits (from the kernel's entry log) go to the event bus."""
        self._publish_departures()
        self._publish_link_events()
        if self._recorder is not None and self._recorder.cut_due:
            self._recorder.cut(self._events_safe_s())

    def _events_safe_s(self) -> float:
        """A time no event published from now on is earlier than: the step before the last one
        (walk, bike and plug-in arrivals are published in the step after), the pending arrivals and
        departures, and the earliest entry the kernel can still record for a vehicle that has not
        entered (:meth:`QueueSim.earliest_pending_entry_s`)."""
        cfg = self.scenario.simulation
        safe = float(self.sim.t_s) - 2.0 * cfg.record_interval_s - cfg.dt_s
        for pend, t in ((self._tele_pending, self.trip_arrive_s), (self._dep_pending, self.trip_depart_s)):
            if pend.size:
                x = t[pend]
                x = x[~np.isnan(x)]
                if x.size:
                    safe = min(safe, float(x.min()))
        return min(safe, float(self.sim.earliest_pending_entry_s()))

    def _publish_link_events(self) -> None:
        """``enter_link`` / ``leave_link`` events of the step, from the kernel's entry log and the legs
        that ended (a leg's last link is left at its arrival; a vehicle removed when stuck leaves no
        link)."""
        ev = self.events
        if not (ev.wants("enter_link") or ev.wants("leave_link")):
            return
        sim = self.sim
        e = sim.entries(self._ent_seen)
        self._ent_seen = sim.n_entries
        n_veh = sim.n_vehicles
        if self._last_link.shape[0] < n_veh:  # vehicles added during the day
            grow = n_veh - self._last_link.shape[0]
            self._last_link = np.concatenate([self._last_link, np.full(grow, -1, np.int64)])
            self._last_leg = np.concatenate([self._last_leg, np.full(grow, -1, np.int64)])
        left = _leave_events(e.vehicle, e.leg, e.link, self._last_link, self._last_leg)
        fin = sim.finished(self._fin_ev_seen)
        fin_leg = sim.finished_legs(self._fin_ev_seen)
        self._fin_ev_seen = sim.n_finished
        arrived = sim.status[fin] == STATUS_ARRIVED
        # a vehicle that ended a leg and started another in the same step: its last link is the
        # ended leg's, when that leg is the one last entered
        fv, fl = fin[arrived], fin_leg[arrived]
        mine = self._last_leg[fv] == fl
        fv = fv[mine]
        arr_link = self._last_link[fv]
        # legs finished in this call are their vehicles' current legs (legs are appended between calls)
        arr_t = sim.arrive_s[fv]
        owner_trip = self._vehicle_trip
        if ev.wants("enter_link"):
            ev.publish("enter_link", {"t_s": e.enter_s, "trip_id": owner_trip(e.vehicle), "vehicle_id": e.vehicle,
                                      "link_id": e.link, "from_link": left})
        if ev.wants("leave_link"):
            has = left >= 0
            t_s = np.concatenate([e.enter_s[has], arr_t])
            veh = np.concatenate([e.vehicle[has], fv])
            ev.publish("leave_link", {"t_s": t_s, "trip_id": owner_trip(veh), "vehicle_id": veh,
                                      "link_id": np.concatenate([left[has], arr_link])})

    def _vehicle_trip(self, vehicles: np.ndarray) -> np.ndarray:
        """The resident trip driven by each kernel vehicle (-1 for a domain's vehicles)."""
        vt = self._veh_trip
        if vt.shape[0] < self.sim.n_vehicles:
            self._veh_trip = vt = np.concatenate([vt, np.full(self.sim.n_vehicles - vt.shape[0], -1, np.int64)])
        trips: np.ndarray = vt[vehicles]
        return trips

    def _publish_departures(self) -> None:
        """``depart`` (and ``mode_change``) events of the begun trips whose departure time has passed."""
        if not self._dep_pending.size:
            return
        due, self._dep_pending = _split_arrived(self._dep_pending, self.trip_depart_s,
                                                np.nextafter(self.sim.t_s, -np.inf))
        if due.size == 0:
            return
        due = np.sort(due)
        self._publish_trips("depart", due, self.trip_depart_s[due])
        prev = getattr(self, "prev_trip_mode", None)
        if prev is not None:
            mc = due[prev[due] != self.trip_mode[due]]
            self._publish_trips("mode_change", mc, self.trip_depart_s[mc])

    def _publish_trips(self, type_name: str, trips: np.ndarray, t_s: np.ndarray,
                       link: np.ndarray | None = None) -> None:
        if trips.size and self.events.wants(type_name):
            cols = {"t_s": t_s, "trip_id": trips, "resident_id": self.trips.person[trips],
                    "mode": self.trip_mode[trips]}
            if type_name == "arrive":  # the car's last link (-1: not by car on the network)
                cols["link_id"] = np.full(trips.size, -1, np.int64) if link is None else link
            self.events.publish(type_name, cols)

    def next_day(self) -> bool:
        """After a day was scored: count it, and say whether another day is simulated (iterations
        left and the relative gap above ``replanning.gap_threshold``)."""
        self.iteration += 1
        rcfg = self.scenario.replanning
        gap = self.iteration_records[-1]["relative_gap"]
        converged = rcfg.gap_threshold > 0 and gap is not None and gap <= rcfg.gap_threshold
        return self.iteration < rcfg.iterations and not converged

    def day_done(self) -> bool:
        if self.sim.t_s >= self.scenario.simulation.end_s:
            return True
        # every trip done or aborted, or no further trip can start (a chain ended by an aborted trip)
        return self._n_under == 0 and not self._newly_done

    # --------------------------------------------------------- score, replan
    def _experienced_link_times(self) -> np.ndarray:
        vol = self.sim.link_volume
        with np.errstate(invalid="ignore", divide="ignore"):
            exp = self.sim.link_tt_sum_s / vol
        exp = np.where(vol > 0, np.maximum(exp, self.link_freeflow_s), self.link_freeflow_s)
        return exp

    def _car_done(self) -> np.ndarray:
        done: np.ndarray = self.car_trips[self.trip_state[self.car_trips] == 2]
        return done

    def score_day(self) -> None:
        """Experienced link times → relative gap of the routes driven today; record the day's KPIs."""
        if self._recorder is not None:
            self._recorder.finish()  # the rest of the day's events.parquet (in the writer thread)
        self.link_time_s = self._experienced_link_times()
        done = self._car_done()
        gap = None
        # the gap needs a shortest path per car trip: only worth it when days are iterated
        if done.size and self.scenario.replanning.iterations > 1:
            bins = self._bin_of(self.trip_depart_s[done])
            groups, weights = self._weights(bins)
            best = _group_costs(self.router, self.trips.origin[done], self.trips.dest[done], groups, weights)
            ptr, links = take(self.route_indptr, self.route_links, done)
            w_all = np.stack([weights[g] for g in range(len(weights))], axis=1)
            cur = segment_sum(w_all[links, np.repeat(groups, np.diff(ptr))], ptr)
            ok = np.isfinite(best) & np.isfinite(cur)
            if ok.any() and cur[ok].sum() > 0:
                gap = float((cur[ok].sum() - best[ok].sum()) / cur[ok].sum())
        k = self.kpis_day()
        k.update({"iteration": self.iteration, "relative_gap": gap})
        k.update(getattr(self, "_replan_stats", {"trips_rerouted": 0, "tours_mode_changed": 0}))
        self.iteration_records.append(k)

    def replan(self) -> None:
        self._restore_plan()  # the day's within-day changes are not replanned
        rcfg = self.scenario.replanning
        share = 1.0 / (self.iteration + 1) if rcfg.route_share == "msa" else float(rcfg.route_share)
        t = self.trips
        u_route = self._replan_rng.random(t.n)
        u_mode = self._replan_rng.random(t.n_tours)
        dep = np.where(np.isfinite(self.trip_depart_s), self.trip_depart_s, self._planned_departures())
        # skims for mode choice under today's experienced times: the current car cost of every trip
        replan_tours = np.flatnonzero(u_mode < rcfg.mode_share)
        reroute = np.flatnonzero((self.trip_mode == CAR) & (u_route < share))
        new_car_candidates = np.flatnonzero(np.isin(t.tour, replan_tours))
        old_mode = self.trip_mode.copy()
        old_tour_mode = self.tour_mode.copy()
        old_ptr, old_links = self.route_indptr, self.route_links
        self._route(np.union1d(reroute, new_car_candidates), dep)
        self._choose_modes(replan_tours, dep)
        # what changed, for the iteration records and the mode_change events
        was_car = np.flatnonzero((old_mode == CAR) & (self.trip_mode == CAR))
        a_ptr, a_links = take(old_ptr, old_links, was_car)
        b_ptr, b_links = take(self.route_indptr, self.route_links, was_car)
        same_len = np.diff(a_ptr) == np.diff(b_ptr)
        changed = ~same_len
        if same_len.any() and a_links.size == b_links.size:
            diff = segment_sum((a_links != b_links).astype(np.float64), a_ptr)
            changed |= diff > 0
        elif same_len.any():
            for j in np.flatnonzero(same_len):
                changed[j] = not np.array_equal(a_links[a_ptr[j]:a_ptr[j + 1]], b_links[b_ptr[j]:b_ptr[j + 1]])
        self.prev_trip_mode = old_mode
        self._replan_stats = {"trips_rerouted": int(changed.sum()),
                              "tours_mode_changed": int(np.count_nonzero(old_tour_mode != self.tour_mode))}

    # ---------------------------------------------------------------- results

    # ---------------------------------------------------------------- results
    def kpis_day(self) -> dict[str, Any]:
        """KPIs of the current day (deterministic: no wall times)."""
        t = self.trips
        done = self.trip_state == 2
        tt = (self.trip_arrive_s - self.trip_depart_s)[done]
        car_done = done & (self.trip_mode == CAR)
        free = self._freeflow_times()
        delay = self._delay_s(self.trip_arrive_s - self.trip_depart_s, free)[car_done]
        dist = self._trip_distance_m()
        vkt = float(dist[car_done].sum()) / 1000.0
        vht = float((self.trip_arrive_s - self.trip_depart_s)[car_done].sum()) / 3600.0

        def r(x: float | None, nd: int = 3) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), nd)

        scale = 1.0 / self.sample_share  # extensive KPIs: for the population the sample stands for

        shares = {}
        for m, name in enumerate(self.mode_names):
            shares[f"mode_share_{name}"] = r(np.count_nonzero(self.trip_mode == m) / max(1, t.n), 6)
        return {
            "residents": int(self.pop.n),
            "sample_share": self.sample_share,
            "population_represented": int(round(self.pop.n / self.sample_share)),
            "trips_total": int(t.n),
            "trips_completed": int(done.sum()),
            "trips_aborted": int(np.count_nonzero(self.trip_state == 3)),
            "completion_rate": r(done.sum() / max(1, t.n), 6),
            **shares,
            "car_trips": int(np.count_nonzero(self.trip_mode == CAR)),
            "travel_time_mean_s": r(tt.mean()) if tt.size else None,
            "travel_time_p50_s": r(np.percentile(tt, 50)) if tt.size else None,
            "travel_time_p95_s": r(np.percentile(tt, 95)) if tt.size else None,
            "car_travel_time_mean_s": (r((self.trip_arrive_s - self.trip_depart_s)[car_done].mean())
                                       if car_done.any() else None),
            "delay_mean_s": r(delay.mean()) if delay.size else None,
            "delay_total_veh_h": r(scale * delay.sum() / 3600.0) if delay.size else 0.0,
            "vkt_km": r(scale * vkt),
            "vht_h": r(scale * vht),
            "mean_speed_kmh": r(vkt / vht) if vht > 0 else None,
            "tolls_paid": r(scale * float(self.trip_car_toll[car_done].sum()), 2),
            "forced_moves": int(self.sim.n_forced_moves),
            "removed_stuck": int(self.sim.n_removed),
            "last_arrival_s": r(np.nanmax(self.trip_arrive_s[done])) if done.any() else None,
        }

    def _freeflow_times(self) -> np.ndarray:
        cfg = self.scenario.modes
        free = np.full(self.trips.n, np.nan)
        car = self.trip_mode == CAR
        ff = self.network.link_fftt_s
        free[car] = segment_sum(ff[self.route_links], self.route_indptr)[car]
        free[self.trip_mode == WALK] = (self.trip_walk_m / cfg.walk_speed_mps)[self.trip_mode == WALK]
        free[self.trip_mode == BIKE] = (self.trip_bike_m / cfg.bike_speed_mps)[self.trip_mode == BIKE]
        for j, p in enumerate(self.mode_providers):
            idx = np.flatnonzero(self.trip_mode == 3 + j)
            free[idx] = p.freeflow_time_s(self.mode_ctx, idx)
        if self.mode_providers and self._any_same_node:
            free[self.trip_same_node & (self.trip_mode >= 3)] = 0.0
        return free

    @staticmethod
    def _delay_s(travel_time_s: np.ndarray, freeflow_s: np.ndarray) -> np.ndarray:
        """Travel time − free-flow time; a negative difference within round-off (1e-6 of the free-flow
        time, at least 1 µs) is 0, so uncongested trips have no negative delay. NaN when not arrived."""
        with np.errstate(invalid="ignore"):  # unfinished or unreachable trips give nan
            delay = travel_time_s - freeflow_s
            tol = 1e-6 * np.maximum(np.abs(freeflow_s), 1.0)
            return np.where((delay <= 0.0) & (delay > -tol), 0.0, delay)

    def _trip_distance_m(self) -> np.ndarray:
        d = np.select([self.trip_mode == CAR, self.trip_mode == WALK, self.trip_mode == BIKE],
                      [self.trip_car_m, self.trip_walk_m, self.trip_bike_m], np.nan)
        for j, p in enumerate(self.mode_providers):
            idx = np.flatnonzero(self.trip_mode == 3 + j)
            d[idx] = p.distance_m(self.mode_ctx, idx)
        if self.mode_providers and self._any_same_node:
            d[self.trip_same_node & (self.trip_mode >= 3)] = 0.0
        return d

    # ------------------------------------------------------------------ where people are
    def locations(self) -> Locations:
        """Every resident's location at the kernel's current time (see :mod:`twin.locations`).

        A resident's current trip is the last one begun (demand phase). Before its departure time
        the resident is at the previous activity (home before the first trip); after its arrival at
        the destination's activity: for cars the kernel's state decides (arrived, waiting, on a link,
        removed when stuck), for the other modes the arrival time.
        """
        from twin.demand import HOME
        from twin.kernels.queue import STATUS_ON_LINK, STATUS_REMOVED

        T = float(self.sim.t_s)
        t = self.trips
        pop = self.pop
        n = pop.n
        cur = self._cur_trip
        has = cur >= 0
        i = np.where(has, cur, 0)
        state = np.zeros(n, np.int8)
        activity = np.full(n, HOME, np.int8)
        node = pop.home_node.astype(np.int64).copy()
        trip_id = cur.copy()
        vehicle = np.full(n, -1, np.int64)
        link = np.full(n, -1, np.int64)
        if t.n:
            departed = has & (self.trip_depart_s[i] < T)
            # not departed yet: at the previous trip's destination (home before the first)
            waiting_prev = has & ~departed
            prev_trip = self.trip_prev[i]
            first = prev_trip < 0
            prev = np.maximum(prev_trip, 0)
            wp = waiting_prev & ~first
            activity[wp] = t.purpose[prev[wp]]
            node[wp] = t.dest[prev[wp]]
            node[waiting_prev & first] = t.origin[i[waiting_prev & first]]
            trip_id[waiting_prev & first] = -1
            trip_id[wp] = prev[wp]
            # departed: arrived, or under way by its mode
            v = np.where(departed, self.car_index[i], -1)
            car = departed & (v >= 0)
            kst = np.zeros(n, np.int8)
            kst[car] = self.sim.status[v[car]]
            with np.errstate(invalid="ignore"):
                arrived_other = departed & ~car & (self.trip_arrive_s[i] <= T)
            arrived = arrived_other | (car & (kst == STATUS_ARRIVED))
            stranded = car & (kst == STATUS_REMOVED)
            activity[arrived] = t.purpose[i[arrived]]
            node[arrived] = t.dest[i[arrived]]
            moving = departed & ~arrived & ~stranded
            mode = self.trip_mode[i]
            on_link = moving & car & (kst == STATUS_ON_LINK)
            waiting = moving & car & ~on_link
            state[waiting] = 1
            state[on_link] = 2
            vehicle[waiting | on_link] = v[waiting | on_link]
            if on_link.any():
                vo = v[on_link]
                link[on_link] = self.sim.current_link[vo]
            other = moving & ~car
            state[other & (mode == WALK)] = 3
            state[other & (mode == BIKE)] = 4
            state[other & (mode != WALK) & (mode != BIKE)] = 5
            state[stranded] = 6
            activity[moving | stranded] = -1
            node[waiting | other] = t.origin[i[waiting | other]]
            node[on_link | stranded] = -1
        building = np.full(n, -1, np.int64)
        at = state == 0
        hb = getattr(pop, "home_building", None)
        wb = getattr(pop, "work_building", None)
        if hb is not None:
            sel = at & (activity == HOME) & (node == pop.home_node)
            building[sel] = hb[sel]
        if wb is not None:
            from twin.demand import WORK as _WORK

            sel = at & (activity == _WORK) & (node == pop.work_node)
            building[sel] = wb[sel]
        return Locations(T, state, activity, node, building, trip_id, vehicle, link)

    # ------------------------------------------------------------------ closures within the day
    def close_links(self, links: np.ndarray, *, reroute: bool = True) -> np.ndarray:
        """Close links to entry from the next kernel step on (a domain's service: a flooded road, an
        accident, an evacuation order) and, with ``reroute``, divert every car whose remaining route
        enters one of them.

        A car on the network gets a new rest of route from the end of its current link; a car not
        departed yet a new route from its origin; both on the current cost bin's generalized cost
        with the closed links left out. A car without such a route keeps its route and waits at the
        closed link (the kernel never forces it in) until the link opens again. The trips' routes
        (``trips.parquet``: length, links, free-flow time) become the routes driven.

        Returns
        -------
        numpy.ndarray of int64
            The trips rerouted.
        """
        links = np.unique(np.asarray(links, dtype=np.int64))
        if links.size and (links.min() < 0 or links.max() >= self.network.n_links):
            raise ValueError(f"links must be link indices in [0, {self.network.n_links})")
        self.sim.close_links(links)
        self._closed_links = np.union1d(getattr(self, "_closed_links", np.zeros(0, np.int64)), links)
        if not reroute or links.size == 0:
            return np.zeros(0, np.int64)
        return self._reroute_around_closures(self.sim.routed_through(links))

    def avoid_links(self, links: np.ndarray, factor: float = 10.0) -> None:
        """For the rest of the day, car routes computed within the day (the new trips of
        :meth:`replace_plans`, cars rerouted around closures) see these links at ``factor`` times
        their generalized cost (a domain's service: an announced hazard area, a warning). They
        are used where no reasonable way round exists. Links asked again keep the larger factor."""
        links = np.unique(np.asarray(links, dtype=np.int64))
        if links.size and (links.min() < 0 or links.max() >= self.network.n_links):
            raise ValueError(f"links must be link indices in [0, {self.network.n_links})")
        if not (np.isfinite(factor) and factor >= 1.0):
            raise ValueError("factor must be finite and >= 1")
        if self._avoid is None:
            self._avoid = np.ones(self.network.n_links)
        self._avoid[links] = np.maximum(self._avoid[links], factor)

    def open_links(self, links: np.ndarray) -> None:
        """Open closed links again from the next kernel step on (cars waiting for them go on)."""
        links = np.unique(np.asarray(links, dtype=np.int64))
        self.sim.open_links(links)
        self._closed_links = np.setdiff1d(getattr(self, "_closed_links", np.zeros(0, np.int64)), links)

    def scale_links(self, links: np.ndarray, capacity_factor: Any = 1.0, storage_factor: Any = 1.0,
                    speed_factor: Any = 1.0) -> None:
        """Multiply the flow capacity, the storage and the free-flow speed of links from the next kernel
        step on (a domain's service: contraflow adds the lanes of the opposite direction, roadworks
        take some away, shallow flood water slows traffic).

        Factors (> 0, broadcast against ``links``) act on the day's values as they stand, so they
        compose; pricing and capacity policies in force keep applying on top of them. A link given
        more storage wakes the links waiting for room on it (:meth:`QueueSim.set_storage`). Routes
        are not changed (a slower link stays on the routes that use it).
        """
        links = np.asarray(links, dtype=np.int64).ravel()
        n_links = self.network.n_links
        if links.size and (links.min() < 0 or links.max() >= n_links or np.unique(links).size != links.size):
            raise ValueError(f"links must be distinct link indices in [0, {self.network.n_links})")
        cf, sf, vf = (np.broadcast_to(np.asarray(f, np.float64), links.shape)
                      for f in (capacity_factor, storage_factor, speed_factor))
        if not all(np.all(np.isfinite(f)) and np.all(f > 0) for f in (cf, sf, vf)):
            raise ValueError("capacity_factor, storage_factor and speed_factor must be finite and > 0")
        self._base_cap[links] *= cf
        self.sim.cap_veh_per_step[links] *= cf
        self._base_fftt[links] /= vf
        self.sim.fftt_s[links] /= vf
        self.sim.set_storage(links, np.maximum(1.0, self.sim.storage_veh[links] * sf))

    def _reroute_around_closures(self, vehicles: np.ndarray) -> np.ndarray:
        from twin.kernels.queue import STATUS_NOT_DEPARTED, STATUS_WAITING

        trips = self._vehicle_trip(vehicles)
        mine = trips >= 0  # a domain's vehicles are its owner's to divert
        vehicles, trips = vehicles[mine], trips[mine]
        if vehicles.size == 0:
            return trips
        sim = self.sim
        net = self.network
        b = int(self._bin_of(np.array([sim.t_s]))[0])
        w = self.link_time_s[:, b] + self.link_toll[:, b] * 3600.0 / self.vot_per_h
        w = w.copy()
        if self._avoid is not None:
            w *= self._avoid
        w[self._closed_links] = np.inf
        status = sim.status[vehicles]
        fresh = (status == STATUS_NOT_DEPARTED) | (status == STATUS_WAITING)
        cur = sim.current_link[vehicles]
        start = np.where(fresh, self.trips.origin[trips], net.link_head[np.maximum(cur, 0)])
        rs = self.router.route(start, self.trips.dest[trips], weight=w)  # type: ignore[no-untyped-call, unused-ignore]
        ok = np.isfinite(rs.cost) & ((np.diff(rs.route_indptr) > 0) | ~fresh)
        if not ok.any():
            return np.zeros(0, np.int64)
        sel = np.flatnonzero(ok)
        ptr, new_links = take(rs.route_indptr, rs.route_links, sel)
        sim.divert_many(vehicles[sel], ptr, new_links)
        done = trips[sel]
        self._sync_routes(done, vehicles[sel])
        return done

    def _sync_routes(self, trips: np.ndarray, vehicles: np.ndarray) -> None:
        """The trips' routes (length, tolls) as the kernel now has their vehicles' legs: the part
        driven up to the current link and the rest (after a diversion, or none when the car is left)."""
        sim = self.sim
        pieces = [sim.route_links[sim.leg_route(int(g))].astype(np.int32) for g in sim.leg_of[vehicles]]
        parts_ptr = np.zeros(trips.size + 1, np.int64)
        np.cumsum([p.size for p in pieces], out=parts_ptr[1:])
        flat = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
        self.route_indptr, self.route_links = assemble(self.trips.n, [(trips, parts_ptr, flat)],
                                                       base=(self.route_indptr, self.route_links))
        self.trip_car_m[trips] = segment_sum(self.network.link_length_m[flat], parts_ptr)
        dep = self.trip_depart_s[trips]
        bins = self._bin_of(np.where(np.isfinite(dep), dep, sim.t_s))
        self.trip_car_toll[trips] = segment_sum(self.link_toll[flat, np.repeat(bins, np.diff(parts_ptr))], parts_ptr)
