"""Within-day replanning: a domain rewrites the unstarted rest of residents' days.

:meth:`WithinDayReplanning.replace_plans` (a mixin of the mobility domain, reached from a domain as
``ctx.mobility.replace_plans``) cancels every trip of the given residents that has not departed yet
and gives them a new chain of trips (go to a shelter, return home, pick up a child, ...), vectorised
over residents. What happens to each resident:

* **at an activity** (or not yet out): the new chain's first trip leaves from there at ``depart_s``
  (default: now), the rest follow as in any day (departure = arrival + the activity's duration,
  within opening hours for work, school, shop and leisure);
* **under way**: the current trip goes on to its destination; the new chain starts from there when
  it arrives (after the destination's activity duration, as usual);
* a trip that was **scheduled but has not departed** (a car waiting for its departure time, or
  one still waiting to enter its first link) is cancelled too (its kernel vehicle is taken off at
  once) and the new chain leaves from its origin;
* **stranded** residents (their car was removed when stuck) are left out.

New trips get one new tour per resident and a mode: the given one (car, walk or bike; car only for
residents who can drive), else the current tour's when it is one of those, else car for those who
can drive, else walk. Car trips are routed at once on the current cost bin's generalized cost
(experienced link times and tolls), around the links closed now (``close_links``), and become
kernel vehicles; a car trip without a route walks.

Outputs: cancelled trips keep their row in ``trips.parquet`` (``completed`` false, no departure);
added trips are appended after the planned ones (``trip_id`` >= the planned count) with their
``seq`` continuing the resident's day; ``plan_changes.parquet`` lists every replacement (time,
resident, trips cancelled, first added trip, trips added, source), and each replacement is a
``plan_change`` event on the bus. The next simulated day starts again from the plans: within-day
changes are the day's, and a domain that wants them again makes them again (its timeline fires
every day).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.demand import ACTIVITIES, Trips
from twin.domains.mobility.mode_choice import BIKE, CAR, WALK

if TYPE_CHECKING:  # pragma: no cover
    from twin._tables import Categorical
    from twin.context import DomainContext
    from twin.events import EventBus
    from twin.kernels.queue import QueueSim
    from twin.network.road_network import RoadNetwork
    from twin.population import Population
    from twin.scenario import Scenario

__all__ = ["WithinDayReplanning", "CANCELLED"]

#: ``trip_state`` of a trip cancelled by within-day replanning
CANCELLED = 4

_PLAN_ARRAYS = ("trip_same_node", "trip_walk_m", "trip_bike_m", "trip_car_cost_s", "trip_car_m", "trip_car_toll",
                "trip_mode")
_DAY_ARRAYS = ("trip_depart_s", "trip_arrive_s", "trip_state", "_succ_started", "car_index", "trip_next",
               "trip_prev", "trip_go_on", "trip_source")
_TRIP_FIELDS = ("person", "seq", "origin", "dest", "purpose", "tour", "first_depart_s", "act_duration_s")


def _cat(a: np.ndarray, b: Any) -> np.ndarray:
    return np.concatenate([a, np.asarray(b, dtype=a.dtype)])


class WithinDayReplanning:
    """Within-day replanning for the mobility domain (see the module docstring)."""

    # provided by MobilityDomain
    trips: Trips
    sim: QueueSim
    pop: Population
    network: RoadNetwork
    scenario: Scenario
    events: EventBus
    tour_mode: np.ndarray
    route_indptr: np.ndarray
    route_links: np.ndarray
    #: the modes before the last replanning between days (absent before the first)
    prev_trip_mode: np.ndarray
    _any_same_node: bool
    _cur_trip: np.ndarray
    _counts: tuple[tuple[float, int], tuple[int, int, int]] | None
    _n_under: int
    _veh_trip: np.ndarray
    _tele_pending: np.ndarray
    _dep_pending: np.ndarray
    car_trips: np.ndarray
    car_index: np.ndarray
    car_route_indptr: np.ndarray
    car_route_links: np.ndarray
    # the trip arrays (_PLAN_ARRAYS, _DAY_ARRAYS)
    trip_same_node: np.ndarray
    trip_walk_m: np.ndarray
    trip_bike_m: np.ndarray
    trip_car_cost_s: np.ndarray
    trip_car_m: np.ndarray
    trip_car_toll: np.ndarray
    trip_mode: np.ndarray
    trip_depart_s: np.ndarray
    trip_arrive_s: np.ndarray
    trip_state: np.ndarray
    _succ_started: np.ndarray
    trip_next: np.ndarray
    trip_prev: np.ndarray
    trip_go_on: np.ndarray
    trip_source: np.ndarray
    mode_providers: list[Any]
    mode_ctx: Any
    # set by _restore_plan at the first day
    _m_plan: int
    _k_plan: int
    _plan_changes: list[tuple[float, int, int, int, int, int]]
    _sources: list[str]

    if TYPE_CHECKING:  # pragma: no cover
        def _uncongested_m(self, mode: str, origin: np.ndarray, dest: np.ndarray) -> np.ndarray: ...

        def _route(self, trip_idx: np.ndarray, depart_s: np.ndarray,
                   progress: Callable[[int, int], None] | None = None, *, avoid_closed: bool = False) -> None: ...

        def _begin_trips(self, idx: np.ndarray, depart_s: np.ndarray) -> None: ...

        def _vehicle_trip(self, vehicles: np.ndarray) -> np.ndarray: ...

        def _sync_routes(self, trips: np.ndarray, vehicles: np.ndarray) -> None: ...

    # ----------------------------------------------------------------- plan restore
    def _restore_plan(self) -> None:
        """Drop the trips added during the last day (the day's changes are not the plans')."""
        m = getattr(self, "_m_plan", None)
        for idx, dest in reversed(getattr(self, "_dest_saved", [])):  # cars left: the plans' destinations
            self.trips.dest[idx] = dest
        self._dest_saved: list[tuple[np.ndarray, np.ndarray]] = []
        self._left_car = np.zeros(0, np.int64)  # trips whose car was left (leave_cars), sorted
        self._held_walks = np.zeros(0, np.int64)  # walk trips whose arrivals a domain reports, sorted
        if m is None:
            self._m_plan, self._k_plan = self.trips.n, self.trips.n_tours
            self._plan_changes = []
            self._sources = []
            return
        self._plan_changes = []
        t = self.trips
        if t.n == m:
            return
        k = self._k_plan
        self.trips = Trips(**{f: getattr(t, f)[:m] for f in _TRIP_FIELDS}, person_ptr=t.person_ptr,
                           tour_person=t.tour_person[:k])
        for name in _PLAN_ARRAYS + _DAY_ARRAYS:
            a = getattr(self, name, None)
            if a is not None and a.shape[0] > m:
                setattr(self, name, a[:m])
        self.tour_mode = self.tour_mode[:k]
        self.route_indptr = self.route_indptr[: m + 1]
        self.route_links = self.route_links[: self.route_indptr[-1]]
        if getattr(self, "prev_trip_mode", None) is not None:
            self.prev_trip_mode = self.prev_trip_mode[:m]
        self._any_same_node = bool(m and self.trip_same_node.any())

    # ----------------------------------------------------------------- replacement
    def replace_plans(self, residents: Any, chain_ptr: Any, dest: Any, purpose: Any, act_duration_s: Any, *,
                      depart_s: Any = None, mode: Any = None, source: str = "domain",
                      walkers_take: str | None = None) -> np.ndarray:
        """Replace the unstarted rest of the day of ``residents`` by new chains of trips.

        Parameters
        ----------
        residents : array_like of int, shape (k,)
            Distinct resident rows.
        chain_ptr : array_like of int, shape (k + 1,)
            CSR pointer: resident ``residents[j]``'s new trips are ``chain_ptr[j]:chain_ptr[j + 1]``
            of the arrays below (an empty chain only cancels).
        dest : array_like of int
            Destination drive node of each new trip.
        purpose : array_like of int
            Activity at the destination (index into ``twin.demand.ACTIVITIES``).
        act_duration_s : array_like of float
            Duration of that activity (``inf``: until the end of the day), seconds.
        depart_s : float or array_like of float, optional
            Departure of the first new trip of residents at an activity (default: now; never
            before now).
        mode : str or array_like of str, optional
            ``"car"``, ``"walk"``, ``"bike"`` or a plug-in mode of the scenario per resident (see
            the module docstring for the default).
        source : str
            Who asks (a domain's name), in ``plan_changes.parquet`` and the events.
        walkers_take : str, optional
            A plug-in mode (e.g. ``"maas"``) that the residents who would walk take instead (an
            evacuation's shuttles for those without a car).

        Returns
        -------
        numpy.ndarray of int64
            Trip id of each resident's first new trip (-1 for an empty chain or a stranded resident).
        """
        T = float(self.sim.t_s)
        res = np.atleast_1d(np.asarray(residents)).astype(np.int64)
        k = res.size
        ptr = np.asarray(chain_ptr, dtype=np.int64)
        dest = np.atleast_1d(np.asarray(dest)).astype(np.int64)
        purpose = np.atleast_1d(np.asarray(purpose)).astype(np.int8)
        dur = np.atleast_1d(np.asarray(act_duration_s, dtype=np.float64))
        n_nodes = self.network.n_nodes
        if res.size and (res.min() < 0 or res.max() >= self.pop.n or np.unique(res).size != k):
            raise ValueError(f"residents must be distinct rows in [0, {self.pop.n})")
        if ptr.shape != (k + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != dest.size:
            raise ValueError("chain_ptr must be a CSR pointer of len(residents) + 1 entries ending at len(dest)")
        if purpose.size != dest.size or dur.size != dest.size:
            raise ValueError("dest, purpose and act_duration_s must have one entry per new trip")
        if dest.size and (dest.min() < 0 or dest.max() >= n_nodes):
            raise ValueError(f"dest must be drive-network node indices in [0, {n_nodes})")
        if purpose.size and (purpose.min() < 0 or purpose.max() >= len(ACTIVITIES)):
            raise ValueError(f"purpose must index {ACTIVITIES}")
        if np.any(np.isnan(dur)) or np.any(dur < 0):
            raise ValueError("act_duration_s must be >= 0 (inf: the rest of the day)")
        dep0 = np.full(k, T) if depart_s is None else np.maximum(
            np.broadcast_to(np.asarray(depart_s, dtype=np.float64), (k,)), T)
        if not np.all(np.isfinite(dep0)):
            raise ValueError("depart_s must be finite")
        plugin = [p.name for p in self.mode_providers]
        modes = None if mode is None else np.broadcast_to(np.asarray(mode, dtype=object), (k,))
        if modes is not None and not set(modes) <= {"car", "walk", "bike", *plugin}:
            raise ValueError(f"mode must be one of car, walk, bike{''.join(', ' + n for n in plugin)}")
        if walkers_take is not None and walkers_take not in plugin:
            raise ValueError(f"walkers_take must be a plug-in mode of the scenario ({', '.join(plugin) or 'none'})")
        if source not in self._sources:
            self._sources.append(source)
        src_code = self._sources.index(source) + 1

        t = self.trips
        cur = self._cur_trip[res]
        anchor = np.full(k, -1, np.int64)
        origin = self.pop.home_node[res].astype(np.int64)
        seq0 = np.zeros(k, np.int64)
        tour_mode_now = np.full(k, -1, np.int64)
        ok = np.ones(k, dtype=bool)
        cancel: list[int] = []
        first_plan = np.where(np.diff(t.person_ptr) > 0, t.person_ptr[:-1], -1)
        for j in range(k):  # residents being replanned (an event, not every step)
            c = int(cur[j])
            if c < 0:  # not out yet: the whole day is replaced
                s = int(first_plan[res[j]]) if res[j] < first_plan.size else -1
            else:
                st = self.trip_state[c]
                tour_mode_now[j] = self.trip_mode[c]
                seq0[j] = int(t.seq[c]) + 1
                if st == 3:
                    ok[j] = False  # stranded
                    continue
                waiting = st == 1 and self.car_index[c] >= 0 and int(self.sim.status[self.car_index[c]]) == 1
                if st == 1 and (not self.trip_depart_s[c] < T or waiting):
                    # scheduled, not departed, or a car still waiting to enter its first link: cancelled too
                    cancel.append(c)
                    origin[j] = t.origin[c]
                    seq0[j] = int(t.seq[c])
                elif st == 1:
                    anchor[j] = c
                    origin[j] = t.dest[c]
                else:
                    origin[j] = t.dest[c]
                s = int(self.trip_next[c])
            while s >= 0:
                if self.trip_state[s] == 0:
                    cancel.append(s)
                s = int(self.trip_next[s])
        cx = np.array(cancel, dtype=np.int64)
        jmap = np.full(self.pop.n, -1, np.int64)
        jmap[res] = np.arange(k)
        n_cancel = np.bincount(jmap[t.person[cx]], minlength=k)
        # the trip before each new chain (where the resident is when it starts)
        before = np.where(anchor >= 0, anchor, cur)
        cancelled_cur = (cur >= 0) & np.isin(cur, cx)
        before[cancelled_cur] = self.trip_prev[cur[cancelled_cur]]
        self._cancel(cx)

        # the new trips, appended
        lens = np.diff(ptr)
        lens[~ok] = 0
        keep = np.repeat(ok, np.diff(ptr))
        dest, purpose, dur = dest[keep], purpose[keep], dur[keep]
        who = np.repeat(np.arange(k), lens)
        m0, k0 = t.n, t.n_tours
        n_new = int(lens.sum())
        new = m0 + np.arange(n_new, dtype=np.int64)
        first_new = np.full(k, -1, np.int64)
        has = lens > 0
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        first_new[has] = m0 + starts[has]
        pos_in_chain = np.arange(n_new) - np.repeat(starts, lens)
        orig = np.where(pos_in_chain == 0, origin[who], np.concatenate([[0], dest[:-1]]) if n_new else 0)
        tour_ids = k0 + np.cumsum(has) - 1
        fdep = np.where(pos_in_chain == 0, dep0[who], np.nan)
        self.trips = Trips(
            person=_cat(t.person, res[who]), seq=_cat(t.seq, seq0[who] + pos_in_chain), origin=_cat(t.origin, orig),
            dest=_cat(t.dest, dest), purpose=_cat(t.purpose, purpose), tour=_cat(t.tour, tour_ids[who]),
            first_depart_s=_cat(t.first_depart_s, fdep), act_duration_s=_cat(t.act_duration_s, dur),
            person_ptr=t.person_ptr, tour_person=_cat(t.tour_person, res[has]))
        # modes of the new tours
        can = self.pop.can_drive[res]
        car_ok = can & ("car" in self.scenario.modes.available)
        if modes is None:
            tm = np.where(np.isin(tour_mode_now, (CAR, WALK, BIKE)), tour_mode_now, np.where(car_ok, CAR, WALK))
        else:
            codes = {"car": CAR, "walk": WALK, "bike": BIKE, **{n: 3 + j for j, n in enumerate(plugin)}}
            tm = np.array([codes[x] for x in modes.tolist()], dtype=np.int64)
        tm = np.where((tm == CAR) & ~car_ok, WALK, tm)
        if walkers_take is not None:
            tm = np.where(tm == WALK, 3 + plugin.index(walkers_take), tm)
        tm = tm.astype(np.int8)
        self.tour_mode = _cat(self.tour_mode, tm[has])
        self._grow(n_new, tm[who], src_code)
        for p in self.mode_providers:  # plug-in modes that keep per-trip arrays extend them
            p.extend(self.mode_ctx, new)
        same = self.trip_same_node[new]
        # uncongested modes' lengths, car routes on the current bin's costs
        if n_new:
            self.trip_walk_m[new] = self._uncongested_m("walk", orig, dest)
            self.trip_bike_m[new] = self._uncongested_m("bike", orig, dest)
            car_new = new[(self.trip_mode[new] == CAR) & ~same]
            if car_new.size:
                self._route(car_new, np.full(self.trips.n, T), avoid_closed=True)
                no_route = car_new[np.diff(self.route_indptr)[car_new] == 0]
                if no_route.size:
                    self.tour_mode[np.unique(self.trips.tour[no_route])] = WALK
                    self.trip_mode[np.isin(self.trips.tour, self.trips.tour[no_route])] = WALK
                car_new = car_new[self.trip_mode[car_new] == CAR]
                self._add_car_trips(car_new)
        # chains: consecutive new trips; an anchor's next trip is the chain's first
        if n_new:
            nxt = new + 1
            nxt[np.cumsum(lens)[has] - 1] = -1
            self.trip_next[new] = nxt
            prv = new - 1
            prv[pos_in_chain == 0] = before[who[pos_in_chain == 0]]
            self.trip_prev[new] = prv
        for j in range(k):
            if not ok[j]:
                continue
            c = int(cur[j])
            if anchor[j] >= 0:
                self.trip_next[anchor[j]] = first_new[j]
                self.trip_go_on[anchor[j]] = True  # the new chain leaves on arrival
            elif c >= 0:
                self.trip_next[c] = -1  # the new chain replaces whatever came after it
        begin = has & (anchor < 0)
        if begin.any():
            self._begin_trips(first_new[begin], dep0[begin])
        self._counts = None
        rows = [(T, int(res[j]), int(n_cancel[j]), int(first_new[j]), int(lens[j]), src_code)
                for j in range(k) if ok[j]]
        self._plan_changes.extend(rows)
        if rows and self.events.wants("plan_change"):
            a = np.array(rows, dtype=np.float64)
            self.events.publish("plan_change", {
                "t_s": a[:, 0], "resident_id": a[:, 1].astype(np.int64), "n_cancelled": a[:, 2].astype(np.int64),
                "first_new_trip": a[:, 3].astype(np.int64), "n_added": a[:, 4].astype(np.int64),
                "source": a[:, 5].astype(np.int64)})
        return first_new

    # ----------------------------------------------------------------- helpers
    def _grow(self, n_new: int, mode: np.ndarray, src_code: int) -> None:
        t = self.trips
        new_o, new_d = t.origin[-n_new:] if n_new else t.origin[:0], t.dest[-n_new:] if n_new else t.dest[:0]
        self.trip_same_node = _cat(self.trip_same_node, new_o == new_d)
        self._any_same_node = bool(self.trip_same_node.any())
        self.trip_walk_m = _cat(self.trip_walk_m, np.full(n_new, np.inf))
        self.trip_bike_m = _cat(self.trip_bike_m, np.full(n_new, np.inf))
        self.trip_car_cost_s = _cat(self.trip_car_cost_s, np.full(n_new, np.inf))
        self.trip_car_m = _cat(self.trip_car_m, np.full(n_new, np.inf))
        self.trip_car_toll = _cat(self.trip_car_toll, np.zeros(n_new))
        self.trip_mode = _cat(self.trip_mode, mode)
        if getattr(self, "prev_trip_mode", None) is not None:
            self.prev_trip_mode = _cat(self.prev_trip_mode, mode)
        self.route_indptr = _cat(self.route_indptr, np.full(n_new, self.route_indptr[-1]))
        self.trip_depart_s = _cat(self.trip_depart_s, np.full(n_new, np.nan))
        self.trip_arrive_s = _cat(self.trip_arrive_s, np.full(n_new, np.nan))
        self.trip_state = _cat(self.trip_state, np.zeros(n_new))
        self._succ_started = _cat(self._succ_started, np.zeros(n_new, dtype=bool))
        self.car_index = _cat(self.car_index, np.full(n_new, -1))
        self.trip_next = _cat(self.trip_next, np.full(n_new, -1))
        self.trip_prev = _cat(self.trip_prev, np.full(n_new, -1))
        self.trip_go_on = _cat(self.trip_go_on, np.zeros(n_new, dtype=bool))
        self.trip_source = _cat(self.trip_source, np.full(n_new, src_code))

    def _add_car_trips(self, trips: np.ndarray) -> None:
        """Kernel vehicles for routed car trips (departing when the demand phase begins them)."""
        if trips.size == 0:
            return
        ip = self.route_indptr
        lens = ip[trips + 1] - ip[trips]
        cptr = np.zeros(trips.size + 1, np.int64)
        np.cumsum(lens, out=cptr[1:])
        links = np.concatenate([self.route_links[ip[i]:ip[i + 1]] for i in trips]).astype(np.int32)
        ids = self.sim.add_vehicles(route_indptr=cptr, route_links=links)
        self.car_index[trips] = ids
        self._vehicle_trip(ids)  # grows the vehicle -> trip map
        self._veh_trip[ids] = trips
        self.car_trips = _cat(self.car_trips, trips)
        self.car_route_indptr = _cat(self.car_route_indptr, self.car_route_indptr[-1] + cptr[1:])
        self.car_route_links = _cat(self.car_route_links, links)

    def leave_cars(self, trips: Any) -> np.ndarray:
        """The drivers of car trips under way leave their cars at the end of the link they are on (a
        road ahead closed for good, a car that cannot get out of a flooded area).

        The car leaves the network when it exits that link, as an arrival does (its turn and the
        link's flow capacity, not room downstream: :meth:`QueueSim.remove`), and the trip ends
        there: its destination becomes that node (for the day; the plan keeps its own) and its
        route the part driven. A chain that :meth:`replace_plans` hangs on the trip leaves from
        that node when the car is left. Trips not driving on a link are left as they are.

        Returns
        -------
        numpy.ndarray of int64
            The node each trip now ends at (-1 for those left as they are).
        """
        from twin.kernels.queue import STATUS_ON_LINK

        tr = np.atleast_1d(np.asarray(trips, dtype=np.int64))
        out = np.full(tr.size, -1, np.int64)
        if tr.size and (tr.min() < 0 or tr.max() >= self.trips.n or np.unique(tr).size != tr.size):
            raise ValueError(f"trips must be distinct trip ids in [0, {self.trips.n})")
        veh = self.car_index[tr]
        ok = (veh >= 0) & (self.trip_state[tr] == 1) & ~np.isin(tr, self._left_car)
        ok[ok] = self.sim.status[veh[ok]] == STATUS_ON_LINK
        tr, veh = tr[ok], veh[ok]
        if tr.size == 0:
            return out
        self.sim.remove(veh)
        node = self.sim.standing_node(veh)
        self._dest_saved.append((tr, self.trips.dest[tr].copy()))
        self.trips.dest[tr] = node
        self._left_car = np.union1d(self._left_car, tr)
        self._sync_routes(tr, veh)
        out[ok] = node
        return out

    def hold_arrivals(self, trips: Any) -> None:
        """Walk trips whose arrival the caller reports (:meth:`report_arrivals`) instead of their
        distance / walking speed: a domain that moves its walkers itself (crowds, closures). Trips
        begun already lose their computed arrival; later ones get none when they begin."""
        tr = np.unique(np.atleast_1d(np.asarray(trips, dtype=np.int64)))
        if tr.size and (tr.min() < 0 or tr.max() >= self.trips.n):
            raise ValueError(f"trips must be trip ids in [0, {self.trips.n})")
        if np.any(self.trip_mode[tr] != WALK):
            raise ValueError("only walk trips can have their arrivals held")
        self._held_walks = np.union1d(self._held_walks, tr)
        begun = tr[self.trip_state[tr] == 1]
        self.trip_arrive_s[begun] = np.nan

    def report_arrivals(self, trips: Any, arrive_s: Any) -> None:
        """Arrival times of held walk trips under way (:meth:`hold_arrivals`); each trip is done from
        the first demand phase at or after its arrival."""
        tr = np.atleast_1d(np.asarray(trips, dtype=np.int64))
        t = np.broadcast_to(np.asarray(arrive_s, dtype=np.float64), tr.shape)
        if not np.all(np.isin(tr, self._held_walks)) or np.any(self.trip_state[tr] != 1):
            raise ValueError("arrivals can be reported for held walk trips under way only")
        if not np.all(t >= self.trip_depart_s[tr]):
            raise ValueError("an arrival is before its departure")
        self.trip_arrive_s[tr] = t

    def _cancel(self, trips: np.ndarray) -> None:
        """Cancel trips that have not departed (begun ones leave the kernel / pending lists)."""
        if trips.size == 0:
            return
        begun = trips[self.trip_state[trips] == 1]
        if begun.size:
            self._n_under -= begun.size
            v = self.car_index[begun]
            if (v >= 0).any():
                self.sim.remove(v[v >= 0])
            self._tele_pending = self._tele_pending[~np.isin(self._tele_pending, begun)]
            self._dep_pending = self._dep_pending[~np.isin(self._dep_pending, begun)]
        self.trip_state[trips] = CANCELLED
        self.trip_depart_s[trips] = np.nan
        self.trip_arrive_s[trips] = np.nan

    def tables(self, ctx: DomainContext | None = None) -> dict[str, dict[str, np.ndarray | Categorical]]:
        """``plan_changes.parquet`` when a domain replanned residents during the last day."""
        return {"plan_changes": self.plan_changes_columns()} if self._plan_changes else {}

    def replanning_kpis(self) -> dict[str, Any]:
        """KPIs of within-day replanning (none when nothing was replanned)."""
        if not self._plan_changes:
            return {}
        return {"trips_cancelled": int(np.count_nonzero(self.trip_state == CANCELLED)),
                "trips_added": int(self.trips.n - self._m_plan),
                "residents_replanned": len({r[1] for r in self._plan_changes})}

    def plan_changes_columns(self) -> dict[str, np.ndarray | Categorical]:
        """``plan_changes.parquet``: one row per replaced resident day."""
        from twin._tables import Categorical

        a = np.array(self._plan_changes, dtype=np.float64).reshape(-1, 6)
        return {
            "t_s": a[:, 0], "resident_id": a[:, 1].astype(np.int64), "trips_cancelled": a[:, 2].astype(np.int64),
            "first_new_trip_id": a[:, 3].astype(np.int64), "trips_added": a[:, 4].astype(np.int64),
            "source": Categorical(a[:, 5].astype(np.int64) - 1, tuple(self._sources)),
        }
