"""`CityModel`: the Mesa model that ties the map, the population and the kernels together.

One ``step()`` advances the city by ``simulation.record_interval_s`` seconds through named, timed
phases: **demand** (return trips are scheduled for residents who reached work), **move** (the Numba
queue kernel moves every car second by second), **record** (Mesa's ``DataCollector``). Routing
(free-flow least travel time, one tree per distinct origin) happens once at set-up, in phase
**route**. Phase wall times accumulate in :attr:`CityModel.phase_time_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import mesa
import numpy as np

from twin.agents.resident import Resident
from twin.kernels.queue import QueueSim
from twin.network.road_network import RoadNetwork
from twin.network.routing import Router
from twin.population import place_population, sample_times
from twin.scenario import Scenario

__all__ = ["CityModel", "load_network"]

LEGS = ("home_work", "work_home")


def load_network(scenario: Scenario) -> RoadNetwork:
    """The :class:`RoadNetwork` a scenario names (cached on disk after the first load)."""
    return RoadNetwork.load(
        scenario.map.source, scenario.map.network_type, min_length_m=scenario.map.min_link_length_m
    )


class CityModel(mesa.Model):
    """A city of commuting residents on a real road network.

    Parameters
    ----------
    scenario
        A validated :class:`~twin.scenario.Scenario`.
    network
        The road network; loaded from ``scenario.map`` when omitted (pass one to share it across
        runs, as sweeps do).
    route_progress
        Optional callback ``f(done, total)`` called while routing.

    Attributes
    ----------
    network : RoadNetwork
    pop_home_node, pop_work_node : int32 (n_residents,)
    pop_depart_s, pop_work_duration_s : float64 (n_residents,)
    trip_resident : int64 (n_trips,), row of the resident making each trip (trip ``2r`` is the
        outbound, ``2r+1`` the return trip of resident ``r``)
    trip_origin, trip_dest : int32 (n_trips,), node indices
    route_indptr, route_links : the CSR routes of all trips
    sim : QueueSim, the traffic state
    datacollector : mesa.DataCollector, model-level time series
    phase_time_s : dict[str, float], wall seconds spent per phase
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        network: RoadNetwork | None = None,
        route_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.phase_time_s: dict[str, float] = {"network": 0.0, "population": 0.0, "route": 0.0,
                                               "demand": 0.0, "move": 0.0, "record": 0.0}
        with self._phase("network"):
            self.network = network if network is not None else load_network(scenario)
        net = self.network
        sim_cfg = scenario.simulation
        # one RNG tree per run: independent streams per purpose
        ss_pop, ss_dep, ss_dur = np.random.SeedSequence(scenario.seed).spawn(3)

        with self._phase("population"):
            n = scenario.population.residents
            self.pop_home_node, self.pop_work_node = place_population(
                net, n, scenario.population.placement, np.random.default_rng(ss_pop)
            )
            self.pop_depart_s = np.maximum(
                sample_times(scenario.demand.morning_departure, n, np.random.default_rng(ss_dep)), sim_cfg.start_s
            )
            self.pop_work_duration_s = sample_times(scenario.demand.work_duration, n, np.random.default_rng(ss_dur))
            self.trip_resident = np.repeat(np.arange(n, dtype=np.int64), 2)
            self.trip_origin = np.empty(2 * n, dtype=np.int32)
            self.trip_dest = np.empty(2 * n, dtype=np.int32)
            self.trip_origin[0::2] = self.pop_home_node
            self.trip_dest[0::2] = self.pop_work_node
            self.trip_origin[1::2] = self.pop_work_node
            self.trip_dest[1::2] = self.pop_home_node
            self.residents = Resident.create_agents(self, n, row=list(range(n)))

        with self._phase("route"):
            self.router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
            self.route_indptr, self.route_links = self._route_all(route_progress)
            self.trip_length_m = np.add.reduceat(net.link_length_m[self.route_links], self.route_indptr[:-1]) \
                if self.route_links.size else np.zeros(2 * n)
            self.trip_freeflow_s = np.add.reduceat(net.link_fftt_s[self.route_links], self.route_indptr[:-1]) \
                if self.route_links.size else np.zeros(2 * n)

        self.sim = QueueSim(
            fftt_s=net.link_fftt_s,
            cap_veh_per_s=net.link_capacity_vph / 3600.0 * sim_cfg.flow_capacity_factor,
            storage_veh=np.maximum(1.0, net.link_storage_veh * sim_cfg.storage_capacity_factor),
            route_indptr=self.route_indptr,
            route_links=self.route_links,
            dt_s=sim_cfg.dt_s,
            t_start_s=sim_cfg.start_s,
            stuck_time_s=sim_cfg.stuck_time_s,
            n_hours=int(np.ceil(sim_cfg.end_s / 3600.0)) + 1,
            backend=sim_cfg.backend,
        )
        self.sim.schedule(np.arange(0, 2 * n, 2, dtype=np.int64), self.pop_depart_s)
        self._return_scheduled = np.zeros(n, dtype=bool)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "t_s": lambda m: m.sim.t_s,
                "departed": lambda m: m.sim.n_departed,
                "waiting": lambda m: m.sim.n_waiting,
                "on_links": lambda m: m.sim.n_on_links,
                "en_route": lambda m: m.sim.n_waiting + m.sim.n_on_links,
                "arrived": lambda m: m.sim.n_arrived,
            }
        )
        self.datacollector.collect(self)

    # ----------------------------------------------------------------- phases
    @contextmanager
    def _phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phase_time_s[name] = self.phase_time_s.get(name, 0.0) + time.perf_counter() - t0

    def _route_all(self, progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, np.ndarray]:
        """Free-flow least-time routes of every trip (one tree per distinct origin)."""
        n_trips = self.trip_origin.shape[0]
        order = np.argsort(self.trip_origin, kind="stable")  # trips of one origin share a tree
        chunks = np.array_split(order, max(1, min(20, n_trips // 500)))
        costs, lens, links_parts = [], [], []
        done = 0
        for chunk in chunks:
            rs = self.router.route(self.trip_origin[chunk], self.trip_dest[chunk])
            costs.append(rs.cost)
            lens.append(np.diff(rs.route_indptr))
            links_parts.append(rs.route_links)
            done += chunk.size
            if progress is not None:
                progress(done, n_trips)
        cost = np.concatenate(costs)
        if not np.all(np.isfinite(cost)):
            bad = int(order[np.flatnonzero(~np.isfinite(cost))[0]])
            raise RuntimeError(f"trip {bad} has no route (network not strongly connected?)")
        # reorder the concatenated routes (in `order`) back to trip order, without a Python loop
        len_sorted = np.concatenate(lens).astype(np.int64)
        start_sorted = np.concatenate([[0], np.cumsum(len_sorted)[:-1]])
        links_sorted = np.concatenate(links_parts).astype(np.int32)
        lengths = np.empty(n_trips, dtype=np.int64)
        lengths[order] = len_sorted
        start = np.empty(n_trips, dtype=np.int64)
        start[order] = start_sorted
        indptr = np.zeros(n_trips + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        gather = np.repeat(start - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return indptr, links_sorted[gather]

    def _schedule_returns(self) -> None:
        arrived = self.sim.status[0::2] == 3
        todo = np.flatnonzero(arrived & ~self._return_scheduled)
        if todo.size:
            depart = self.sim.arrive_s[2 * todo] + self.pop_work_duration_s[todo]
            depart = np.maximum(depart, self.sim.t_s)
            self.sim.schedule(2 * todo + 1, depart)
            self._return_scheduled[todo] = True

    # ------------------------------------------------------------------- step
    def step(self) -> None:
        """Advance by ``record_interval_s``: demand → move → record."""
        cfg = self.scenario.simulation
        with self._phase("demand"):
            self._schedule_returns()
        with self._phase("move"):
            t_end = min(self.sim.t_s + cfg.record_interval_s, cfg.end_s)
            self.sim.advance(t_end)
        with self._phase("record"):
            self.datacollector.collect(self)
        if self.done:
            self.running = False

    @property
    def done(self) -> bool:
        """All trips arrived, or the simulation reached ``end_s``."""
        return bool(self.sim.n_arrived == self.sim.status.shape[0] or self.sim.t_s >= self.scenario.simulation.end_s)

    def run(self, progress: Callable[[float, float], None] | None = None) -> CityModel:
        """Step until :attr:`done`; ``progress(t_s, end_s)`` is called after every step."""
        while not self.done:
            self.step()
            if progress is not None:
                progress(self.sim.t_s, self.scenario.simulation.end_s)
        self.running = False
        return self

    # ---------------------------------------------------------------- results
    def trips_columns(self) -> dict[str, np.ndarray]:
        """Per-trip results as columns (see docs/outputs.md)."""
        net = self.network
        n_trips = self.trip_origin.shape[0]
        depart = self.sim.depart_s.astype(np.float64).copy()
        depart[~np.isfinite(depart)] = np.nan
        arrive = self.sim.arrive_s.astype(np.float64)
        tt = arrive - depart
        return {
            "trip_id": np.arange(n_trips, dtype=np.int64),
            "agent_id": np.array([a.unique_id for a in self.residents], dtype=np.int64)[self.trip_resident],
            "leg": np.array(LEGS * (n_trips // 2), dtype=object),
            "mode": np.full(n_trips, "car", dtype=object),
            "origin_osmid": net.node_osmid[self.trip_origin],
            "destination_osmid": net.node_osmid[self.trip_dest],
            "depart_s": depart,
            "arrive_s": arrive,
            "completed": self.sim.status == 3,
            "route_length_m": self.trip_length_m,
            "route_links": np.diff(self.route_indptr).astype(np.int32),
            "travel_time_s": tt,
            "freeflow_time_s": self.trip_freeflow_s,
            "delay_s": tt - self.trip_freeflow_s,
        }

    def links_columns(self) -> dict[str, np.ndarray]:
        """Hourly volume and mean speed per link (rows with traffic only)."""
        net = self.network
        vol = self.sim.link_volume
        tt = self.sim.link_tt_sum_s
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

    def kpis(self) -> dict[str, Any]:
        """Run-level key performance indicators (deterministic: no wall times)."""
        done = self.sim.status == 3
        trips = self.trips_columns()
        tt = trips["travel_time_s"][done]
        delay = trips["delay_s"][done]
        vkt = float(trips["route_length_m"][done].sum()) / 1000.0
        vht = float(tt.sum()) / 3600.0

        def r(x: float, nd: int = 3) -> float | None:
            return None if not np.isfinite(x) else round(float(x), nd)

        n_trips = int(done.shape[0])
        return {
            "residents": int(self.scenario.population.residents),
            "trips_total": n_trips,
            "trips_completed": int(done.sum()),
            "completion_rate": r(done.sum() / max(1, n_trips), 6),
            "travel_time_mean_s": r(tt.mean()) if tt.size else None,
            "travel_time_p50_s": r(np.percentile(tt, 50)) if tt.size else None,
            "travel_time_p95_s": r(np.percentile(tt, 95)) if tt.size else None,
            "delay_mean_s": r(delay.mean()) if delay.size else None,
            "delay_total_veh_h": r(delay.sum() / 3600.0),
            "vkt_km": r(vkt),
            "vht_h": r(vht),
            "mean_speed_kmh": r(vkt / vht) if vht > 0 else None,
            "forced_moves": int(self.sim.n_forced_moves),
            "last_arrival_s": r(np.nanmax(self.sim.arrive_s)) if done.any() else None,
            "network_nodes": self.network.n_nodes,
            "network_links": self.network.n_links,
        }
