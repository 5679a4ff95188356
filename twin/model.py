"""`CityModel`: the Mesa model that ties the map, the population, demand and the kernels together.

A run simulates ``replanning.iterations`` days. Each day, ``step()`` advances the city by
``simulation.record_interval_s`` through named, timed phases:

1. **demand**: residents who finished an activity start their next trip (departure = arrival +
   activity duration, bounded by opening hours);
2. **dispatch/replan**: policies in force change link capacities and speeds;
3. **move**: the Numba queue kernel moves every car second by second (walk and bike trips take their
   uncongested times);
4. **energy**: reserved for the energy domain (no-op here);
5. **record**: Mesa's ``DataCollector``.

At the end of a day (**score**) the experienced link travel times per time bin give the relative gap
of route choice; before the next day (**plan**) a share of car trips is re-routed on those times and
a share of tours re-chooses its mode (MSA by default), moving towards a dynamic user equilibrium.
Phase wall times accumulate in :attr:`CityModel.phase_time_s`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mesa
import numba
from mesa.agent import AgentSet
import numpy as np

from twin._csr import assemble, segment_sum, take
from twin._rng import stream as rng_stream
from twin._tables import Categorical
from twin.agents.resident import Resident
from twin.demand import ACTIVITIES, LEISURE, SCHOOL, SHOP, WORK, build_trips
from twin.domains.mobility.mode_choice import BIKE, CAR, MODES, WALK, choose_modes, tour_utilities
from twin.domains.mobility.modes import BUILTIN_MODES, ModeProvider, get_mode, validate_mode_options
from twin.domains.mobility.policies import CLOSED_CAPACITY_FACTOR, PolicySet
from twin.kernels.queue import STATUS_ARRIVED, QueueSim
from twin.network.road_network import RoadNetwork
from twin.network.routing import Router
from twin.population import synthesize_population
from twin.scenario import Scenario

__all__ = ["CityModel", "load_network"]

LAZY_AGENTS_ABOVE = 200_000


def load_network(scenario: Scenario, network_type: str | None = None) -> RoadNetwork:
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
        router.set_weight(weights[int(g)])
        rs = router.route(origins[idx], dests[idx])
        cost[idx] = rs.cost
        parts.append((idx, rs.route_indptr, rs.route_links))
    indptr, links = assemble(origins.shape[0], parts)
    return cost, indptr, links


def _group_costs(router: Router, origins: np.ndarray, dests: np.ndarray, groups: np.ndarray,
                 weights: dict[int, np.ndarray]) -> np.ndarray:
    cost = np.full(origins.shape[0], np.inf)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        router.set_weight(weights[int(g)])
        cost[idx] = router.costs(origins[idx], dests[idx])
    return cost


@numba.njit(cache=True)
def _split_arrived(pending, arrive_s, t_s):
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


@numba.njit(cache=True)
def _trip_counts(state, depart_s, t_s):
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


class CityModel(mesa.Model):
    """A city of residents with daily activity chains on a real road network.

    Parameters
    ----------
    scenario
        A validated :class:`~twin.scenario.Scenario`.
    network
        The drive network; loaded from ``scenario.map`` when omitted (pass one to share it across
        runs, as sweeps do).
    walk_network, bike_network
        Networks for walk and bike trips (loaded when those modes are available and omitted).
    route_progress
        Optional callback ``f(done, total)`` called while routing the first day.
    base_dir
        Folder that relative paths of the scenario (population grid) are resolved against.

    Attributes
    ----------
    network : RoadNetwork
    pop : twin.population.Population, residents as columns; a resident's row is its
        ``resident_id`` in every output table (and ``Resident.resident_id``)
    trips : twin.demand.Trips, every resident's trips (columns)
    trip_mode : int8 (m,), index into mode_names (MODES, then the plug-in modes)
    trip_same_node : bool (m,), origin == destination (same drive node): such a trip arrives at
        its departure time, with no length, on any mode, and never enters the network
    sim : QueueSim, the traffic state of the current day (car trips only)
    datacollector : mesa.DataCollector, model-level time series of the current day
    iteration_records : list of dict, KPIs per simulated day
    phase_time_s : dict[str, float], wall seconds spent per phase
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        network: RoadNetwork | None = None,
        walk_network: RoadNetwork | None = None,
        bike_network: RoadNetwork | None = None,
        route_progress: Callable[[int, int], None] | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.phase_time_s: dict[str, float] = {
            "network": 0.0, "population": 0.0, "plan": 0.0, "demand": 0.0, "dispatch": 0.0,
            "move": 0.0, "energy": 0.0, "record": 0.0, "score": 0.0,
        }
        sim_cfg = scenario.simulation
        #: share of the real population the residents are a sample of (capacities scale with it)
        self.sample_share = float(scenario.population.sample_share)
        # named streams (twin._rng): adding one (a new domain's) changes none of these
        ss_pop, ss_dem, ss_mode, ss_replan, ss_merge = (
            rng_stream(scenario.seed, n) for n in ("population", "demand", "mode_choice", "replanning", "merge"))
        # merge draws of the queue kernel: the same seed every day (common random numbers, so that
        # day-to-day changes come from the plans, not from new draws at the junctions)
        self._merge_seed = int(ss_merge.generate_state(1, np.uint64)[0])
        self._mode_rng = np.random.default_rng(ss_mode)
        self._plugin_mode_rng = np.random.default_rng(rng_stream(scenario.seed, "plugin_mode_choice"))
        self._replan_rng = np.random.default_rng(ss_replan)

        with self._phase("network"):
            self.network = network if network is not None else load_network(scenario)
        net = self.network
        with self._phase("population"):
            self.pop = synthesize_population(net, scenario.population, np.random.default_rng(ss_pop),
                                             base_dir=Path(base_dir) if base_dir else None)
            self.trips = build_trips(net, self.pop, scenario.demand, np.random.default_rng(ss_dem))
            self.trip_same_node = self.trips.origin == self.trips.dest
            self._any_same_node = bool(self.trip_same_node.any())
            mode_agents = scenario.population.mesa_agents
            self.lazy_agents = mode_agents == "lazy" or (mode_agents == "auto" and self.pop.n > LAZY_AGENTS_ABOVE)
            self._agent_of_row: dict[int, Resident] = {}
            if not self.lazy_agents:
                self.residents = Resident.create_agents(self, self.pop.n, row=list(range(self.pop.n)))
                self._agent_of_row = {a.row: a for a in self.residents}
            else:
                self.residents = AgentSet([], random=self.random)

        # time bins of link costs and policies
        self.bin_s = float(scenario.replanning.cost_bin_s)
        self.n_bins = int(math.ceil(sim_cfg.end_s / self.bin_s)) + 1
        self.policies = PolicySet(scenario.policies, net)
        self.vot_per_h = scenario.modes.value_of_time_per_h
        self._bin_arrays = [self.policies.arrays(b * self.bin_s, (b + 1) * self.bin_s) for b in range(self.n_bins)]
        self.link_freeflow_s = np.stack([net.link_fftt_s / a.speed_factor for a in self._bin_arrays], axis=1)
        for b, a in enumerate(self._bin_arrays):
            self.link_freeflow_s[a.closed, b] = np.inf
        self.link_toll = np.stack([a.toll for a in self._bin_arrays], axis=1)
        self.link_time_s = self.link_freeflow_s.copy()  # experienced (after a day) or free flow
        self.router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
        # plug-in modes (twin.domains.mobility.modes): indices 3, 4, ... after car, walk, bike
        mcfg = scenario.modes
        self.mode_providers: list[ModeProvider] = [
            get_mode(n)(validate_mode_options(n, mcfg.plugins.get(n, {})))
            for n in mcfg.available if n not in BUILTIN_MODES
        ]
        self.mode_names: tuple[str, ...] = MODES + tuple(p.name for p in self.mode_providers)

        with self._phase("plan"):
            self._init_mode_skims(walk_network, bike_network)
            for p in self.mode_providers:
                p.attach(self)
                self.router.set_weight(net.link_fftt_s)
            m = self.trips.n
            self.trip_mode = np.full(m, CAR, dtype=np.int8)
            self.route_indptr = np.zeros(m + 1, dtype=np.int64)  # car routes of all trips (CSR)
            self.route_links = np.zeros(0, dtype=np.int32)
            self.trip_depart_s = np.full(m, np.nan)
            self.trip_arrive_s = np.full(m, np.nan)
            plan_dep = self._planned_departures()
            self._route(np.arange(m), plan_dep, progress=route_progress)
            self._choose_modes(np.arange(self.trips.n_tours), plan_dep, first=True)

        self.iteration = 0
        self.iteration_records: list[dict[str, Any]] = []
        self._start_day()

    # ----------------------------------------------------------------- helpers
    @contextmanager
    def _phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phase_time_s[name] = self.phase_time_s.get(name, 0.0) + time.perf_counter() - t0

    def resident(self, row: int) -> Resident:
        """The Mesa agent of resident ``row``: the ``resident_id`` of the output tables (created on
        first access when agents are lazy). Its ``resident_id`` is ``row``; Mesa's ``unique_id`` is
        internal (it is not the id of any table)."""
        a = self._agent_of_row.get(int(row))
        if a is None:
            if not 0 <= row < self.pop.n:
                raise IndexError(f"resident row {row} out of range [0, {self.pop.n})")
            a = Resident(self, int(row))
            self._agent_of_row[int(row)] = a
            self.residents.add(a)
        return a

    def _bin_of(self, t_s: np.ndarray) -> np.ndarray:
        b = np.floor(np.nan_to_num(t_s, nan=0.0) / self.bin_s).astype(np.int64)
        return np.clip(b, 0, self.n_bins - 1)

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
        for mode, attr, supplied in (("walk", "trip_walk_m", walk_network), ("bike", "trip_bike_m", bike_network)):
            if mode not in cfg.available or m == 0:
                continue
            net = supplied if supplied is not None else load_network(self.scenario, mode)
            x, y = _project(net.node_lon, net.node_lat, drive.crs)
            _, snap = cKDTree(np.column_stack([x, y])).query(np.column_stack([drive.node_x_m, drive.node_y_m]))
            o = snap[self.trips.origin]
            d = snap[self.trips.dest]
            r = Router(net.indptr, net.link_head, net.link_tail, net.link_length_m)
            dist = r.costs(o, d)
            # same node after snapping: the straight-line distance between the drive nodes
            same = o == d
            dx = drive.node_x_m[self.trips.origin] - drive.node_x_m[self.trips.dest]
            dy = drive.node_y_m[self.trips.origin] - drive.node_y_m[self.trips.dest]
            dist[same] = np.hypot(dx, dy)[same]
            setattr(self, attr, dist)
        self.trip_car_cost_s = np.full(m, np.inf)  # generalized cost of the car route (s)
        self.trip_car_m = np.full(m, np.inf)
        self.trip_car_toll = np.zeros(m)

    def _planned_departures(self) -> np.ndarray:
        """Expected departure of every trip (first departures plus free-flow times and durations)."""
        t = self.trips
        dep = np.full(t.n, np.nan)
        ff = np.zeros(t.n)
        if t.n:
            self.router.set_weight(self.network.link_fftt_s)
            ff = self.router.costs(t.origin, t.dest)
        # walk the chains: trips of a person are contiguous and in order
        for j in range(int(np.diff(t.person_ptr).max(initial=0))):
            idx = t.person_ptr[:-1] + j
            ok = idx < t.person_ptr[1:]
            idx = idx[ok]
            if j == 0:
                dep[idx] = t.first_depart_s[idx]
            else:
                prev = idx - 1
                dep[idx] = dep[prev] + ff[prev] + np.where(np.isfinite(t.act_duration_s[prev]), t.act_duration_s[prev], 0.0)
        return dep

    def _route(self, trip_idx: np.ndarray, depart_s: np.ndarray, progress=None) -> None:
        """Least generalized-cost car routes of ``trip_idx`` for their departure bins."""
        if trip_idx.size == 0:
            return
        t = self.trips
        bins = self._bin_of(depart_s[trip_idx])
        groups, weights = self._weights(bins)
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
            np.where(np.isfinite(self.trip_car_cost_s), self.trip_car_cost_s - self.trip_car_toll * 3600.0 / self.vot_per_h, np.inf) / 3600.0,
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
                ts, cost = p.skim(self, np.arange(t.n), depart_s)
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

    def _start_day(self) -> None:
        cfg = self.scenario.simulation
        for p in self.mode_providers:
            p.start_day(self)
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
        )
        self._base_cap = self.sim.cap_veh_per_step.copy()
        self._base_fftt = self.sim.fftt_s.copy()
        self.trip_depart_s = np.full(t.n, np.nan)
        self.trip_arrive_s = np.full(t.n, np.nan)
        # 0 planned, 1 scheduled or under way (departed once depart_s has passed), 2 done, 3 aborted
        self.trip_state = np.zeros(t.n, dtype=np.int8)
        self._succ_started = np.zeros(t.n, dtype=bool)  # the trip after this one has started
        # bookkeeping by events, not by passes over all trips at every step: the kernel's finish
        # log (read up to _fin_seen), the started non-car trips not yet done, the trips done since
        # the last demand phase, and the number of trips under way (state 1)
        self._fin_seen = 0
        self._tele_pending = np.zeros(0, np.int64)
        self._newly_done: list[np.ndarray] = []
        self._n_under = 0
        self._counts = None
        first = t.person_ptr[:-1][np.diff(t.person_ptr) > 0]
        dep = np.maximum(t.first_depart_s[first], cfg.start_s)
        self._begin_trips(first, dep)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "t_s": lambda m: m.sim.t_s,
                "departed": lambda m: m._trip_counts()[0],
                "car_waiting": lambda m: m.sim.n_waiting,
                "car_on_links": lambda m: m.sim.n_on_links,
                "en_route": lambda m: m._trip_counts()[1],
                "arrived": lambda m: m._trip_counts()[2],
            }
        )
        self.datacollector.collect(self)
        self.day_running = True

    def _begin_trips(self, idx: np.ndarray, depart_s: np.ndarray) -> None:
        """Start trips ``idx`` at ``depart_s``: cars go to the kernel, others take their free time;
        trips whose origin is their destination arrive at their departure time, on any mode."""
        if idx.size == 0:
            return
        cfg = self.scenario.modes
        self.trip_depart_s[idx] = depart_s
        self.trip_state[idx] = 1
        self._n_under += idx.size
        self._counts = None
        mode = self.trip_mode[idx]
        car = self.car_index[idx] >= 0  # car trips on the network (not those to their own origin)
        if car.any():
            self.sim.schedule(self.car_index[idx[car]], depart_s[car])
        if not car.all():
            self._tele_pending = np.concatenate([self._tele_pending, idx[~car]])
        for m, dist, speed in ((WALK, self.trip_walk_m, cfg.walk_speed_mps), (BIKE, self.trip_bike_m, cfg.bike_speed_mps)):
            sel = mode == m
            if sel.any():
                self.trip_arrive_s[idx[sel]] = depart_s[sel] + dist[idx[sel]] / speed
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
                p.begin(self, idx[sel], depart_s[sel])

    def _demand(self) -> None:
        """Start the next trip of every resident whose current activity ends."""
        t_now = self.sim.t_s
        t = self.trips
        self._collect_car_finishes()
        # trips of the other modes whose (known or reported) arrival has passed
        if self._tele_pending.size:
            done_other, self._tele_pending = _split_arrived(self._tele_pending, self.trip_arrive_s, t_now)
            if done_other.size:
                self.trip_state[done_other] = 2
                self._n_under -= done_other.size
                self._newly_done.append(done_other)
                self._counts = None
        # successors of trips done since the last step (in trip order)
        if not self._newly_done:
            return
        done = np.sort(np.concatenate(self._newly_done))
        self._newly_done = []
        self._succ_started[done] = True
        has_next = done + 1 < t.person_ptr[t.person[done] + 1]
        prev = done[has_next]
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
        self._begin_trips(prev + 1, depart)

    def _dispatch(self) -> None:
        """Plug-in modes serve their requests up to the end of the step; the link changes of policies in
        force at the current time go to the kernel arrays."""
        if self.mode_providers:
            cfg = self.scenario.simulation
            t_now = self.sim.t_s
            t_end = min(t_now + cfg.record_interval_s, cfg.end_s)
            for p in self.mode_providers:
                trips, arrive_s = p.advance(self, t_now, t_end)
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

    def step(self) -> None:
        """Advance by ``record_interval_s`` (demand → dispatch → move → energy → record); at the end
        of a day, score it and start the next iteration's day if any."""
        cfg = self.scenario.simulation
        if not self.day_running:
            return
        with self._phase("demand"):
            self._demand()
        with self._phase("dispatch"):
            self._dispatch()
        with self._phase("move"):
            t_end = min(self.sim.t_s + cfg.record_interval_s, cfg.end_s)
            self.sim.advance(t_end)
        with self._phase("energy"):
            pass  # the energy domain plugs in here
        with self._phase("record"):
            self._collect_car_finishes()
            self.datacollector.collect(self)
        if self._day_done():
            self.day_running = False
            with self._phase("score"):
                self._score_day()
            self.iteration += 1
            rcfg = self.scenario.replanning
            gap = self.iteration_records[-1]["relative_gap"]
            converged = rcfg.gap_threshold > 0 and gap is not None and gap <= rcfg.gap_threshold
            if self.iteration < rcfg.iterations and not converged:
                with self._phase("plan"):
                    self._replan()
                self._start_day()
            else:
                self.running = False

    def _collect_car_finishes(self) -> None:
        """Car trips the kernel finished since the last call (its finish log): arrived → done,
        removed when stuck → aborted."""
        fin = self.sim.finished(self._fin_seen)
        if fin.size == 0 or self.car_trips.size == 0:
            return
        self._fin_seen += fin.size
        trips = self.car_trips[fin]
        arrived = self.sim.status[fin] == STATUS_ARRIVED
        done = trips[arrived]
        self.trip_arrive_s[done] = self.sim.arrive_s[fin[arrived]]
        self.trip_state[done] = 2
        self.trip_state[trips[~arrived]] = 3
        self._n_under -= trips.size
        self._newly_done.append(done)
        self._counts = None

    def _trip_counts(self) -> tuple[int, int, int]:
        """Trips departed, under way and done at the current time (one pass, cached per step)."""
        key = (self.sim.t_s, self.iteration)
        if self._counts is None or self._counts[0] != key:
            self._counts = (key, _trip_counts(self.trip_state, self.trip_depart_s, self.sim.t_s))
        return self._counts[1]

    def _day_done(self) -> bool:
        if self.sim.t_s >= self.scenario.simulation.end_s:
            return True
        # every trip done or aborted, or no further trip can start (a chain ended by an aborted trip)
        return self._n_under == 0 and not self._newly_done

    @property
    def done(self) -> bool:
        """All days simulated."""
        return not self.running

    def run(self, progress: Callable[..., None] | None = None) -> CityModel:
        """Step until every iteration's day is simulated; ``progress(t_s, end_s, day)`` after each step."""
        while self.running:
            self.step()
            if progress is not None and self.running:
                progress(self.sim.t_s, self.scenario.simulation.end_s, self.iteration)
        return self

    # --------------------------------------------------------- score, replan
    def _experienced_link_times(self) -> np.ndarray:
        vol = self.sim.link_volume
        with np.errstate(invalid="ignore", divide="ignore"):
            exp = self.sim.link_tt_sum_s / vol
        exp = np.where(vol > 0, np.maximum(exp, self.link_freeflow_s), self.link_freeflow_s)
        return exp

    def _car_done(self) -> np.ndarray:
        return self.car_trips[self.trip_state[self.car_trips] == 2]

    def _score_day(self) -> None:
        """Experienced link times → relative gap of the routes driven today; record the day's KPIs."""
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

    def _replan(self) -> None:
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

        def r(x: float, nd: int = 3) -> float | None:
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
            "car_travel_time_mean_s": r((self.trip_arrive_s - self.trip_depart_s)[car_done].mean()) if car_done.any() else None,
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

    def kpis(self) -> dict[str, Any]:
        """Run-level KPIs: the last day's, plus convergence and the network."""
        k = self.kpis_day()
        gaps = [rec["relative_gap"] for rec in self.iteration_records]
        k.update({
            "iterations": len(self.iteration_records),
            "relative_gap": gaps[-1] if gaps else None,
            "network_nodes": self.network.n_nodes,
            "network_links": self.network.n_links,
        })
        return k

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
            free[idx] = p.freeflow_time_s(self, idx)
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
            d[idx] = p.distance_m(self, idx)
        if self.mode_providers and self._any_same_node:
            d[self.trip_same_node & (self.trip_mode >= 3)] = 0.0
        return d

    def trips_columns(self) -> dict[str, np.ndarray]:
        """Per-trip results of the last day as columns (``trips.parquet``; see docs/concepts.md).

        * ``trip_id``: dense trip index 0..m-1 (the ``trip_id`` of ``events.parquet``);
        * ``resident_id``: the resident's row 0..n-1, the id of a resident in every table
          (``events.parquet``, ``model.resident(resident_id)``, ``Resident.resident_id``);
        * ``seq``: position in the resident's day; ``purpose``: activity at the destination;
          ``mode``; ``origin_osmid``, ``destination_osmid``: OSM ids of the drive-network nodes;
        * ``depart_s``, ``arrive_s``: seconds after midnight (NaN: not departed / not arrived by
          ``end_s``); ``completed``;
        * ``route_length_m``: car: the routed drive-network path; walk, bike: the shortest path on
          the walk / bike network (straight line when both ends snap to one node); plug-in modes:
          the provider's ``distance_m``;
        * ``route_links``: number of drive-network links of the car route, i.e. of the trip's
          ``enter_link`` events when it completes; 0 for walk, bike and plug-in modes (they are
          not simulated link by link: walk and bike are routed on their own networks for the length
          only) and for trips whose origin is their destination;
        * ``travel_time_s`` = ``arrive_s`` − ``depart_s``; ``freeflow_time_s``: car: the route's
          free-flow time, walk/bike: length / speed, plug-ins: the provider's; ``delay_s`` =
          travel − free-flow time, never negative by round-off (0 within 1e-6 of the free-flow
          time); ``toll``: road charges of car trips.

        A trip whose origin is its destination (the same drive node) departs and arrives at the
        same time with zero length, travel time, free-flow time, delay and links, on any mode.
        """
        net = self.network
        t = self.trips
        free = self._freeflow_times()
        tt = self.trip_arrive_s - self.trip_depart_s
        delay = self._delay_s(tt, free)
        n_links = np.where(self.trip_mode == CAR, np.diff(self.route_indptr), 0).astype(np.int32)
        return {
            "trip_id": np.arange(t.n, dtype=np.int64),
            "resident_id": t.person.astype(np.int64),
            "seq": t.seq,
            "purpose": Categorical(t.purpose, ACTIVITIES),
            "mode": Categorical(self.trip_mode, self.mode_names),
            "origin_osmid": net.node_osmid[t.origin],
            "destination_osmid": net.node_osmid[t.dest],
            "depart_s": self.trip_depart_s,
            "arrive_s": self.trip_arrive_s,
            "completed": self.trip_state == 2,
            "route_length_m": self._trip_distance_m(),
            "route_links": n_links,
            "travel_time_s": tt,
            "freeflow_time_s": free,
            "delay_s": delay,
            "toll": np.where(self.trip_mode == CAR, self.trip_car_toll, 0.0),
        }

    def trips_frame(self):
        """:meth:`trips_columns` as a pandas DataFrame (text columns as categoricals)."""
        import pandas as pd

        cols = {}
        for k, v in self.trips_columns().items():
            cols[k] = pd.Categorical.from_codes(v.codes, categories=list(v.categories)) if isinstance(v, Categorical) else v
        return pd.DataFrame(cols)

    def links_columns(self) -> dict[str, np.ndarray]:
        """Hourly volume and mean speed per link (rows with traffic only) of the last day."""
        net = self.network
        per_hour = max(1, int(round(3600.0 / self.bin_s))) if 3600.0 % self.bin_s == 0 else None
        vol_b = self.sim.link_volume
        tt_b = self.sim.link_tt_sum_s
        if per_hour is None:  # bins that do not divide an hour: report per bin, labelled by start hour
            hours = (np.arange(self.n_bins) * self.bin_s // 3600).astype(np.int64)
        else:
            hours = np.arange(self.n_bins) // per_hour
        n_h = int(hours.max()) + 1
        vol = np.zeros((net.n_links, n_h), np.int64)
        tt = np.zeros((net.n_links, n_h))
        for b in range(self.n_bins):
            vol[:, hours[b]] += vol_b[:, b]
            tt[:, hours[b]] += tt_b[:, b]
        link, hour = np.nonzero(vol)
        v = vol[link, hour]
        mean_tt = tt[link, hour] / v
        length = net.link_length_m[link]
        with np.errstate(divide="ignore"):
            speed = np.where(mean_tt > 0, length / mean_tt, net.link_speed_mps[link])
        return {
            "link_id": link.astype(np.int64),
            "u_osmid": net.node_osmid[net.link_tail[link]],
            "v_osmid": net.node_osmid[net.link_head[link]],
            "osm_way_id": net.link_osmid[link],
            "hour": hour.astype(np.int16),
            "volume_veh": v.astype(np.int64),
            "mean_travel_time_s": mean_tt,
            "mean_speed_mps": speed,
            "freeflow_speed_mps": net.link_speed_mps[link],
            "length_m": length,
            "capacity_vph": net.link_capacity_vph[link],
        }

    def events_columns(self) -> dict[str, np.ndarray]:
        """Events of the last day: depart, enter_link, leave_link, arrive, aborted, and mode_change (at
        the departure of a trip whose tour changed mode in the last replanning), sorted by time.
        ``resident_id`` is the resident's row (as in ``trips.parquet``); ``link_id`` is -1 for the
        events that are not on a link. Only car trips on the network have link events: walk, bike,
        plug-in modes and trips whose origin is their destination have depart and arrive only."""
        t = self.trips
        resident = t.person.astype(np.int64)
        parts = []
        started = np.flatnonzero((self.trip_state > 0) & (self.trip_depart_s < self.sim.t_s))
        parts.append((self.trip_depart_s[started], np.full(started.size, 0), started, np.full(started.size, -1)))
        done = np.flatnonzero(self.trip_state == 2)
        parts.append((self.trip_arrive_s[done], np.full(done.size, 3), done, np.full(done.size, -1)))
        ab = np.flatnonzero(self.trip_state == 3)
        parts.append((np.full(ab.size, np.nan), np.full(ab.size, 4), ab, np.full(ab.size, -1)))
        prev = getattr(self, "prev_trip_mode", None)
        if prev is not None:  # the tour's mode was re-chosen before this day
            mc = started[prev[started] != self.trip_mode[started]]
            parts.append((self.trip_depart_s[mc], np.full(mc.size, 5), mc, np.full(mc.size, -1)))
        if self.car_trips.size:
            ip = self.car_route_indptr
            enter = self.sim.route_enter_s[: ip[-1]]
            car_of_pos = np.repeat(np.arange(self.car_trips.size), np.diff(ip))
            trip_of_pos = self.car_trips[car_of_pos]
            links = self.car_route_links
            reached = np.isfinite(enter)
            parts.append((enter[reached], np.full(int(reached.sum()), 1), trip_of_pos[reached], links[reached]))
            # leave = next link's entry, or the arrival on the last link
            nxt = np.full(enter.shape[0], np.nan)
            nxt[:-1] = enter[1:]
            last = np.zeros(enter.shape[0], dtype=bool)
            last[ip[1:] - 1] = True
            arr_car = self.sim.arrive_s[: self.car_trips.size][car_of_pos]
            leave = np.where(last, arr_car, nxt)
            left = np.isfinite(leave) & reached
            parts.append((leave[left], np.full(int(left.sum()), 2), trip_of_pos[left], links[left]))
        ts = np.concatenate([p[0] for p in parts])
        typ = np.concatenate([p[1] for p in parts]).astype(np.int8)
        trip = np.concatenate([p[2] for p in parts]).astype(np.int64)
        link = np.concatenate([p[3] for p in parts]).astype(np.int64)
        # order: time, trip, then type (leave before enter at the same node passage), then position
        # in the parts (a stable sort); trip and type rank (< 8) share one key: two sort passes
        type_rank = np.array([1, 3, 2, 4, 5, 0], dtype=np.int64)[typ]  # mode_change, depart, leave, ...
        order = np.lexsort((trip * 8 + type_rank, np.nan_to_num(ts, nan=np.inf)))
        trip_o = trip[order]
        names = ("depart", "enter_link", "leave_link", "arrive", "aborted", "mode_change")
        return {
            "t_s": ts[order],
            "type": Categorical(typ[order], names),
            "trip_id": trip_o,
            "resident_id": resident[trip_o],
            "mode": Categorical(self.trip_mode[trip_o], self.mode_names),
            "link_id": link[order],
        }

    def iterations_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration KPIs (convergence of the equilibrium)."""
        recs = self.iteration_records
        keys = list(recs[0]) if recs else []
        out = {}
        for k in keys:
            vals = [r[k] for r in recs]
            if all(isinstance(v, int) for v in vals):
                out[k] = np.array(vals, dtype=np.int64)
            else:
                out[k] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        return out
