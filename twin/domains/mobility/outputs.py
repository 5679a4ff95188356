"""Outputs of the mobility domain: the columns of ``trips.parquet``, ``links.parquet``,
``events.parquet`` and ``iterations.parquet`` (see docs/concepts.md for their meaning).

:class:`MobilityOutputs` is a mixin of :class:`~twin.domains.mobility.domain.MobilityDomain`: it reads
the domain's arrays at the end of a day and never changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from twin._tables import Categorical
from twin.demand import ACTIVITIES, Trips
from twin.domains.mobility.mode_choice import CAR

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from twin.events import EventBatch, EventBus
    from twin.kernels.queue import QueueSim
    from twin.network.road_network import RoadNetwork

__all__ = ["MobilityOutputs", "EventRecorder", "EVENT_NAMES"]

#: ``type`` categories of events.parquet, in code order
EVENT_NAMES = ("depart", "enter_link", "leave_link", "arrive", "aborted", "mode_change")


def sort_events(t_s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The stable order by ``(t_s, key)``, NaN times last: ``np.lexsort((key, t_s))`` with NaN as
    +inf, but faster on events recorded step by step (nearly sorted by time): a stable sort by time
    (timsort, near-linear on such data), then the runs of equal times sorted by key."""
    order = np.argsort(t_s, kind="stable")  # NaN last, in recording order
    _sort_ties(order, t_s[order], key)
    return order


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _sort_ties(order: np.ndarray, t_sorted: np.ndarray, key: np.ndarray) -> None:
    """Within each run of equal ``t_sorted`` (NaNs count as equal), sort ``order`` by ``key``, stably."""
    n = order.shape[0]
    i = 0
    while i < n:
        ti = t_sorted[i]
        nan_i = ti != ti
        j = i + 1
        while j < n and (t_sorted[j] == ti or (nan_i and t_sorted[j] != t_sorted[j])):
            j += 1
        m = j - i
        if m > 1:
            if m <= 32:  # insertion sort: stable, and runs are short
                for a in range(i + 1, j):
                    x = order[a]
                    kx = key[x]
                    c = a - 1
                    while c >= i and key[order[c]] > kx:
                        order[c + 1] = order[c]
                        c -= 1
                    order[c + 1] = x
            else:
                seg = order[i:j].copy()
                idx = np.argsort(key[seg], kind="mergesort")
                for a in range(m):
                    order[i + a] = seg[idx[a]]
        i = j


class EventRecorder:
    """Collects the mobility events of a day from the event bus, for ``events.parquet``.

    It keeps the *primary* events (depart, enter_link, arrive, aborted, mode_change) with, for an
    entry, the link left there (``from_link`` of ``enter_link``) and, for a car's arrival, its last
    link (``link_id`` of ``arrive``): every ``leave_link`` row is one of those, at the same time and
    for the same trip, and sorts just before its partner (leave ranks after mode_change and depart,
    before enter and arrive). So only the primary rows are sorted; the leave rows are put in when
    the table is built (:func:`assemble_events`), which gives the rows the full sort would."""

    def __init__(self, bus: EventBus) -> None:
        self._parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]] = []
        for code, name in enumerate(EVENT_NAMES):
            if name != "leave_link":
                bus.subscribe(name, self._on(code))

    def _on(self, code: int) -> Callable[[EventBatch], None]:
        def record(batch: EventBatch) -> None:
            trip = batch["trip_id"]
            t_s = batch["t_s"]
            n = trip.shape[0]
            none = np.full(n, -1, np.int64)
            if code == 1:  # enter_link
                link, left = batch["link_id"], batch["from_link"]
            elif code == 3:  # arrive: the last link is left then
                link, left = none, batch["link_id"]
            else:
                link, left = none, none
            mine = trip >= 0  # not a domain's vehicle
            if not mine.all():
                t_s, trip, link, left = t_s[mine], trip[mine], link[mine], left[mine]
            self._parts.append((t_s, code, trip, link, left))
        return record

    def reset(self) -> None:
        """Forget the recorded events (a new day starts)."""
        self._parts = []

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(t_s, type code, trip_id, link_id, from_link)`` of the primary events, in recording order."""
        if not self._parts:
            z = np.zeros(0, np.int64)
            return np.zeros(0), np.zeros(0, np.int8), z, z, z
        ts = np.concatenate([p[0] for p in self._parts]).astype(np.float64, copy=False)
        typ = np.concatenate([np.full(p[2].size, p[1], np.int8) for p in self._parts])
        trip = np.concatenate([p[2] for p in self._parts]).astype(np.int64, copy=False)
        link = np.concatenate([p[3] for p in self._parts]).astype(np.int64, copy=False)
        left = np.concatenate([p[4] for p in self._parts]).astype(np.int64, copy=False)
        return ts, typ, trip, link, left


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _event_keys(typ: np.ndarray, trip: np.ndarray) -> np.ndarray:
    """Sort key trip * 8 + rank of the type (mode_change 0, depart 1, leave 2, enter 3, arrive 4,
    aborted 5)."""
    rank = np.array([1, 3, 2, 4, 5, 0], np.int64)
    key = np.empty(trip.shape[0], np.int64)
    for i in range(trip.shape[0]):
        key[i] = trip[i] * 8 + rank[typ[i]]
    return key


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _expand_events(order: np.ndarray, ts: np.ndarray, typ: np.ndarray, trip: np.ndarray, link: np.ndarray,
                   left: np.ndarray, person: np.ndarray, mode: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sorted primary rows with each leave row put in just before its partner (see
    :class:`EventRecorder`), and each row's resident and mode."""
    n = order.shape[0]
    m = n
    for i in range(n):
        if left[i] >= 0:
            m += 1
    o_t = np.empty(m, np.float64)
    o_typ = np.empty(m, np.int8)
    o_trip = np.empty(m, np.int64)
    o_link = np.empty(m, np.int64)
    o_res = np.empty(m, np.int64)
    o_mode = np.empty(m, np.int8)
    j = 0
    for a in range(n):
        i = order[a]
        tr = trip[i]
        r = person[tr]
        md = mode[tr]
        if left[i] >= 0:
            o_t[j] = ts[i]
            o_typ[j] = 2
            o_trip[j] = tr
            o_link[j] = left[i]
            o_res[j] = r
            o_mode[j] = md
            j += 1
        o_t[j] = ts[i]
        o_typ[j] = typ[i]
        o_trip[j] = tr
        o_link[j] = link[i]
        o_res[j] = r
        o_mode[j] = md
        j += 1
    return o_t, o_typ, o_trip, o_link, o_res, o_mode


class MobilityOutputs:
    """Result tables of the mobility domain (mixed into ``MobilityDomain``)."""

    # provided by MobilityDomain
    network: RoadNetwork
    trips: Trips
    sim: QueueSim
    mode_names: tuple[str, ...]
    trip_mode: np.ndarray
    trip_state: np.ndarray
    trip_depart_s: np.ndarray
    trip_arrive_s: np.ndarray
    trip_car_toll: np.ndarray
    route_indptr: np.ndarray
    bin_s: float
    n_bins: int
    iteration_records: list[dict[str, Any]]
    _recorder: EventRecorder | None

    if TYPE_CHECKING:  # pragma: no cover
        def _freeflow_times(self) -> np.ndarray: ...

        def _trip_distance_m(self) -> np.ndarray: ...

        @staticmethod
        def _delay_s(travel_time_s: np.ndarray, freeflow_s: np.ndarray) -> np.ndarray: ...

    def trips_columns(self) -> dict[str, np.ndarray | Categorical]:
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

    def trips_frame(self) -> pd.DataFrame:
        """:meth:`trips_columns` as a pandas DataFrame (text columns as categoricals)."""
        import pandas as pd

        cols: dict[str, Any] = {}
        for k, v in self.trips_columns().items():
            # pandas-stubs want an Index of categories; pandas takes the list
            cols[k] = (pd.Categorical.from_codes(v.codes, categories=list(v.categories))  # type: ignore[call-overload]
                       if isinstance(v, Categorical) else v)
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

    def events_columns(self) -> dict[str, np.ndarray | Categorical]:
        """Events of the last day: depart, enter_link, leave_link, arrive, aborted, and mode_change (at
        the departure of a trip whose tour changed mode in the last replanning), sorted by time.
        ``resident_id`` is the resident's row (as in ``trips.parquet``); ``link_id`` is -1 for the
        events that are not on a link. Only car trips on the network have link events: walk, bike,
        plug-in modes and trips whose origin is their destination have depart and arrive only.

        The rows are those the mobility domain published on the event bus during the day
        (:class:`EventRecorder`); a domain's own vehicles (fleets) are not residents' trips and are
        left out.

        Raises
        ------
        RuntimeError
            The scenario says ``output.events: false`` (nothing was recorded).
        """
        rec = self._recorder
        if rec is None:
            raise RuntimeError("events were not recorded (output.events is false)")
        ts, typ, trip, link, left = rec.columns()
        # order: time (NaN last), trip, then type (leave before enter at the same node passage), then
        # recording order; trip and type rank (< 8) share one key
        order = sort_events(ts, _event_keys(typ, trip))
        o_t, o_typ, o_trip, o_link, o_res, o_mode = _expand_events(
            order, ts, typ, trip, link, left, self.trips.person.astype(np.int64), self.trip_mode.astype(np.int8))
        return {
            "t_s": o_t,
            "type": Categorical(o_typ, EVENT_NAMES),
            "trip_id": o_trip,
            "resident_id": o_res,
            "mode": Categorical(o_mode, self.mode_names),
            "link_id": o_link,
        }

    def iterations_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration KPIs (convergence of the equilibrium)."""
        recs = self.iteration_records
        keys = list(recs[0]) if recs else []
        out: dict[str, np.ndarray] = {}
        for k in keys:
            vals = [r[k] for r in recs]
            if all(isinstance(v, int) for v in vals):
                out[k] = np.array(vals, dtype=np.int64)
            else:
                out[k] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        return out
