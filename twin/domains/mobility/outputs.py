"""Outputs of the mobility domain: the columns of ``trips.parquet``, ``links.parquet``,
``events.parquet`` and ``iterations.parquet`` (see docs/concepts.md for their meaning).

:class:`MobilityOutputs` is a mixin of :class:`~twin.domains.mobility.domain.MobilityDomain`: it reads
the domain's arrays at the end of a day and never changes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin._tables import Categorical
from twin.demand import ACTIVITIES
from twin.domains.mobility.mode_choice import CAR

__all__ = ["MobilityOutputs"]


class MobilityOutputs:
    """Result tables of the mobility domain (mixed into ``MobilityDomain``)."""

    # provided by MobilityDomain
    network: Any
    trips: Any
    sim: Any

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
