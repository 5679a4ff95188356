"""`CityModel`: the Mesa model that orchestrates the domains of a city over simulated days.

The model owns what every domain shares: the road network, the synthetic population (Mesa
``Resident`` agents over columnar arrays), the clock, the within-day event bus
(:class:`twin.events.EventBus`), the scenario's timeline, Mesa's ``DataCollector`` and the registry
of named, timed phases. Everything else lives in domains (:mod:`twin.domains.base`): the mobility
domain (:class:`twin.domains.mobility.domain.MobilityDomain`, always attached) and the domains whose
scenario sections the scenario has (``maas:``, ``energy:``, ...).

Each ``step()`` advances the city by ``simulation.record_interval_s``:

1. **timeline**: the scenario's timeline events due in the step go to their domains;
2. **demand** (mobility): residents who finished an activity start their next trip;
3. **dispatch** (mobility): plug-in modes serve requests, policies in force change link capacities
   and speeds;
4. **move** (mobility): the Numba queue kernel moves every car second by second;
5. **publish** (mobility): the step's departures and link events go to the event bus;
6. **record**: the mobility domain collects the kernel's arrivals; Mesa's ``DataCollector``.

Domain phases run before or after any of these (:class:`twin.domains.base.Phase`), every step or
every ``period_s``. At the end of a day the mobility domain scores it (experienced link times,
relative gap), the domains close it (``end_day``), and before the next day the mobility domain
replans a share of routes and modes (MSA by default). Phase wall times accumulate in
:attr:`CityModel.phase_time_s`. See docs/architecture.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
from mesa.agent import AgentSet

from twin._rng import stream as rng_stream
from twin.agents.resident import Resident
from twin.context import DomainContext
from twin.domains.base import PHASE_ANCHORS, Domain, Phase, get_domain
from twin.domains.mobility.domain import MobilityDomain, load_network
from twin.events import EventBus
from twin.locations import Locations
from twin.network.road_network import RoadNetwork
from twin.population import synthesize_population
from twin.scenario import Scenario

if TYPE_CHECKING:  # pragma: no cover
    from twin._tables import Categorical

__all__ = ["CityModel", "load_network"]

LAZY_AGENTS_ABOVE = 200_000

#: Names read through the model for convenience and backwards compatibility: they are the mobility
#: domain's (``model.trips`` is ``model.mobility.trips``).
MOBILITY_ATTRS = frozenset({
    "trips", "sim", "router", "policies", "bin_s", "n_bins", "mode_names", "mode_providers", "trip_mode",
    "tour_mode", "trip_state", "trip_depart_s", "trip_arrive_s", "trip_same_node", "trip_walk_m",
    "trip_bike_m", "trip_car_m", "trip_car_cost_s", "trip_car_toll", "route_indptr", "route_links",
    "car_trips", "car_index", "car_route_indptr", "car_route_links", "iteration_records", "link_time_s",
    "link_freeflow_s", "link_toll", "sample_share", "mode_rng", "kpis_day", "trips_columns", "trips_frame",
    "links_columns", "events_columns", "iterations_columns", "prev_trip_mode",
})


class CityModel(mesa.Model):  # type: ignore[misc]  # mesa has no type information
    """A city of residents with daily activity chains on a real road network, and its domains.

    Parameters
    ----------
    scenario
        A validated scenario (:func:`twin.scenario.scenario_from_dict` / ``load_scenario``).
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
    mobility : MobilityDomain, trips, modes, routing and the queue kernel (``mobility.sim``)
    domains : list of Domain, mobility first, then the scenario's other domains in name order
    events : EventBus, the within-day event bus
    phases : list of Phase, the named phases of a step, in order
    datacollector : mesa.DataCollector, model-level time series of the current day
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
            "move": 0.0, "publish": 0.0, "record": 0.0, "score": 0.0,
        }
        self.events = EventBus()
        with self._phase("network"):
            self.network = network if network is not None else load_network(scenario)
        with self._phase("population"):
            self.pop = synthesize_population(self.network, scenario.population,
                                             np.random.default_rng(rng_stream(scenario.seed, "population")),
                                             base_dir=Path(base_dir) if base_dir else None)
            mode_agents = scenario.population.mesa_agents
            self.lazy_agents = mode_agents == "lazy" or (mode_agents == "auto" and self.pop.n > LAZY_AGENTS_ABOVE)
            self._agent_of_row: dict[int, Resident] = {}
            if not self.lazy_agents:
                self.residents = Resident.create_agents(self, self.pop.n, row=list(range(self.pop.n)))
                self._agent_of_row = {a.row: a for a in self.residents}
            else:
                self.residents = AgentSet([], random=self.random)

        # domains: mobility first, then those with a section in the scenario (or always on), by name
        self.mobility = MobilityDomain(walk_network=walk_network, bike_network=bike_network,
                                       route_progress=route_progress)
        self.domains: list[Domain] = [self.mobility]
        from twin.registry import DOMAINS

        for name, cls in DOMAINS.classes().items():
            section = scenario.section(name)
            if section is not None or getattr(cls, "always", False):
                self.domains.append(get_domain(name)(section))
        self._ctx = {d.name: DomainContext(self, d.name) for d in self.domains}
        self._t_s = float(scenario.simulation.start_s)
        #: start of the step being run (or last run)
        self.step_t_s = self._t_s
        for d in self.domains:
            d.attach(self._ctx[d.name])
        self.phases = self._build_phases()
        self._timeline = list(scenario.timeline)
        self._start_day()

    # ----------------------------------------------------------------- helpers
    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phase_time_s[name] = self.phase_time_s.get(name, 0.0) + time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the mobility domain's public arrays and tables
        if name in MOBILITY_ATTRS and "mobility" in self.__dict__:
            return getattr(self.__dict__["mobility"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def domain(self, name: str) -> Domain | None:
        """The attached domain ``name`` (``None`` if the run has none)."""
        for d in self.domains:
            if d.name == name:
                return d
        return None

    def context(self, name: str) -> DomainContext:
        """The context of attached domain ``name`` (what it sees of the run)."""
        return self._ctx[name]

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

    @property
    def t_s(self) -> float:
        """Start of the current (next) model step, seconds: the queue kernel's clock."""
        sim = getattr(self.mobility, "sim", None)
        return float(sim.t_s) if sim is not None else self._t_s

    @property
    def iteration(self) -> int:
        """Index of the current simulated day (0 for the first)."""
        return self.mobility.iteration

    def locations(self) -> Locations:
        """Where every resident is at the current step (see :class:`twin.locations.Locations`)."""
        return self.mobility.locations()

    # ----------------------------------------------------------------- phases
    def _build_phases(self) -> list[Phase]:
        """Built-in phases in their order, each domain's phases at their anchors."""
        mob = self.mobility
        builtin = {
            "demand": Phase("demand", mob.demand, after="start"),
            "dispatch": Phase("dispatch", mob.dispatch, after="demand"),
            "move": Phase("move", lambda ctx: mob.move(), after="dispatch"),
            "publish": Phase("publish", lambda ctx: mob.publish(), after="move"),
            "record": Phase("record", lambda ctx: self._record(), after="publish"),
        }
        extra: dict[str, list[Phase]] = {a: [] for a in ("start", *PHASE_ANCHORS)}
        owner: dict[str, str] = {}
        for d in self.domains:
            for ph in d.phases():
                if ph.name in builtin or ph.name in owner:
                    raise ValueError(f"domain {d.name!r}: phase {ph.name!r} is already defined")
                owner[ph.name] = d.name
                extra[ph.after].append(ph)
        self._phase_owner = owner
        order = list(extra["start"])
        for a in PHASE_ANCHORS:
            order.append(builtin[a])
            order.extend(extra[a])
        for ph in order:
            self.phase_time_s.setdefault(ph.name, 0.0)
        return order

    def _record(self) -> None:
        self.mobility.collect_finishes()
        self.datacollector.collect(self)

    # ---------------------------------------------------------------- the day
    def _start_day(self) -> None:
        self.mobility.start_day()
        for d in self.domains[1:]:
            d.start_day(self._ctx[d.name])
        self._timeline_next = 0
        mob = self.mobility
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "t_s": lambda m: m.mobility.sim.t_s,
                "departed": lambda m: mob.trip_counts()[0],
                "car_waiting": lambda m: m.mobility.sim.n_waiting,
                "car_on_links": lambda m: m.mobility.sim.n_on_links,
                "en_route": lambda m: mob.trip_counts()[1],
                "arrived": lambda m: mob.trip_counts()[2],
            }
        )
        self.datacollector.collect(self)
        self.day_running = True

    def _fire_timeline(self, t_end_s: float) -> None:
        """Timeline events with ``at_s < t_end_s`` not fired yet today go to their domains, in order."""
        tl = self._timeline
        while self._timeline_next < len(tl) and tl[self._timeline_next].at_s < t_end_s:
            ev = tl[self._timeline_next]
            self._timeline_next += 1
            for d in self.domains:
                if ev.type in d.timeline_events:
                    d.on_event(self._ctx[d.name], ev)
                    break

    def step(self) -> None:
        """Advance by ``record_interval_s`` through the phases; at the end of a day, score it and
        start the next iteration's day if any."""
        if not self.day_running:
            return
        cfg = self.scenario.simulation
        t_now = self.t_s
        t_end = min(t_now + cfg.record_interval_s, cfg.end_s)
        self.events.step_t_s = self.step_t_s = t_now
        if self._timeline:
            with self._phase("timeline"):
                self._fire_timeline(t_end)
        for ph in self.phases:
            if ph.due(t_now, t_end):
                with self._phase(ph.name):
                    ph.run(self._ctx[self._phase_owner.get(ph.name, "mobility")])
        if self.mobility.day_done():
            self.day_running = False
            with self._phase("score"):
                self.mobility.score_day()
            for d in self.domains[1:]:
                d.end_day(self._ctx[d.name])
            if self.mobility.next_day():
                with self._phase("plan"):
                    self.mobility.replan()
                self._start_day()
            else:
                self.running = False

    @property
    def done(self) -> bool:
        """All days simulated."""
        return not self.running

    def run(self, progress: Callable[..., None] | None = None) -> CityModel:
        """Step until every iteration's day is simulated; ``progress(t_s, end_s, day)`` after each step."""
        while self.running:
            self.step()
            if progress is not None and self.running:
                progress(self.t_s, self.scenario.simulation.end_s, self.iteration)
        return self

    # ---------------------------------------------------------------- results
    def kpis(self) -> dict[str, Any]:
        """Run-level KPIs: the last day's mobility KPIs, convergence, the network, then each other
        domain's KPIs."""
        k = self.mobility.kpis_day()
        gaps = [rec["relative_gap"] for rec in self.mobility.iteration_records]
        k.update({
            "iterations": len(self.mobility.iteration_records),
            "relative_gap": gaps[-1] if gaps else None,
            "network_nodes": self.network.n_nodes,
            "network_links": self.network.n_links,
        })
        k.update(self.mobility.replanning_kpis())
        for d in self.domains[1:]:
            k.update(d.kpis(self._ctx[d.name]))
        return k

    def domain_tables(self) -> dict[str, Mapping[str, np.ndarray | Categorical]]:
        """Output tables of the domains besides mobility's core tables (trips, links, events,
        iterations): file stem -> columns."""
        out: dict[str, Mapping[str, np.ndarray | Categorical]] = {}
        for d in self.domains:
            for stem, cols in d.tables(self._ctx[d.name]).items():
                if stem in out:
                    raise ValueError(f"domain {d.name!r}: table {stem!r} is written by another domain too")
                out[stem] = cols
        return out
