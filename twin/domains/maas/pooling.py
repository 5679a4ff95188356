"""Ride-pooling dispatch: requests inserted into the schedules of idle vehicles and of vehicles in
service (:func:`twin.domains.maas.insertion.best_insertion`, compiled as
:func:`twin.kernels.insertion.best_insertion_fleet`), every ``batch_s``.

For each batch (as :class:`~twin.domains.maas.dispatch.BatchDispatcher`), each waiting request in
request order goes to the vehicle where it adds the least drive time, among the ``CANDIDATES``
vehicles nearest to its pick-up by network time (one least-time tree to the pick-up on the reverse
graph) that can reach it within its maximum wait: idle vehicles (start where they stand, at the
batch time) and vehicles driving on a link (start at the end of that link, when they reach it on
the current link times; their rest of route is diverted there). The limits of every request in a
schedule: no pick-up before the request, none after request + ``max_wait_s``, and a ride of at
most the direct time × (1 + ``max_detour_rel``) and at most the direct time + ``max_detour_abs_s``
(the direct time on the link times of the dispatch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.domains.maas.dispatch import BatchDispatcher
from twin.domains.maas.insertion import RequestLimits
from twin.kernels.insertion import best_insertion_table, nearest_candidates

if TYPE_CHECKING:  # pragma: no cover
    from twin.domains.maas.config import Operator
    from twin.domains.maas.domain import MaasDomain

__all__ = ["CANDIDATES", "PoolingDispatcher"]

#: vehicles (nearest to the pick-up by network time) tried for each request
CANDIDATES = 16


class PoolingDispatcher(BatchDispatcher):
    """Insertion into vehicles' schedules every ``batch_s`` (see the module docstring; the batches
    of a model step as in :class:`BatchDispatcher`)."""

    def __init__(self, op: Operator, domain: MaasDomain, j: int) -> None:
        super().__init__(op, domain, j)
        self.limits: dict[int, RequestLimits] = {}
        #: the schedule table of the fleet, a row per vehicle (:meth:`_refresh`; made each day)
        self._day = -1
        self._fw: dict[int, np.ndarray] = {}

    def _starts(self, b_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The operator's candidate vehicles, in vehicle order: ``(vehicle, start node, start time,
        idle)``: idle ones where they stand at the batch time, those in service driving on a link at
        its end when they reach it on the current link times."""
        from twin.domains.maas.domain import VehicleState

        dom = self.dom
        sim = dom.sim
        idle = dom.idle(self.j)
        idle_set = set(idle)
        busy = [i for i in self._fleet if i not in idle_set and dom.vehicles[i].stops
                and dom.vehicles[i].state in (VehicleState.TO_PICKUP, VehicleState.OCCUPIED)]
        busy_a = np.array(busy, np.int64)
        kids = self._kid[busy_a]
        on = sim.status[kids] == 2
        busy_a, kids = busy_a[on], kids[on]
        p = sim.rpos[kids]
        lk = sim.route_links[p]
        w = dom.weight()[lk]
        eta = np.where(np.isfinite(w), sim.route_enter_s[p] + w, np.inf)
        idle_a = np.array(idle, np.int64)
        veh = np.concatenate([idle_a, busy_a])
        node = np.concatenate([np.array([dom.vehicles[i].node for i in idle], np.int64),
                               dom.net.link_head[lk].astype(np.int64)])
        t = np.concatenate([np.full(idle_a.size, b_s), np.maximum(b_s, eta)])
        is_idle = np.concatenate([np.ones(idle_a.size, bool), np.zeros(busy_a.size, bool)])
        o = np.argsort(veh, kind="stable")
        return veh[o], node[o], t[o], is_idle[o]

    def _start_of(self, i: int, b_s: float) -> tuple[int, float]:
        """(start node, start time) of a vehicle driving on a link."""
        dom = self.dom
        sim = dom.sim
        p = int(sim.rpos[dom.vehicles[i].kid])
        lk = int(sim.route_links[p])
        w = float(dom.weight()[lk])
        eta = float(sim.route_enter_s[p]) + w if np.isfinite(w) else np.inf
        return int(dom.net.link_head[lk]), max(b_s, eta)

    def _batch(self, b_s: float, t_s: float) -> int:
        from twin.domains.maas.domain import _Stop

        dom = self.dom
        op = self.op
        due = [r for r in dom.release(self.j, b_s) if dom.rq_t_s[r] <= b_s]
        if not due:
            return 0
        done = set()
        if self._day != dom.day_index:
            self._new_table()
        self._fw = {}  # forward trees of this batch (one link-time bin)
        # updated below for the vehicle each assignment changes
        st_veh, st_node, st_t, st_idle = self._starts(b_s)
        for r in due:
            if not st_veh.size:
                break
            pick, drop = dom.rq_pick_node[r], dom.rq_drop_node[r]
            to_pick = dom._tree(pick, False)[0]
            waited = b_s - dom.rq_t_s[r]
            # idle vehicles all add (reach + direct): only the nearest of them competes
            cands = nearest_candidates(st_node, st_t, st_idle, to_pick, b_s, waited, op.max_wait_s, CANDIDATES - 1, 1)
            if cands.size == 0:
                continue
            to_drop = dom._tree(drop, False)[0]
            from_pick = self._fwd(pick)
            from_drop = self._fwd(drop)
            direct = float(from_pick[drop])
            if not np.isfinite(direct):
                continue
            max_ride = min(direct * (1.0 + op.max_detour_rel), direct + op.max_detour_abs_s)
            lim = RequestLimits(dom.rq_t_s[r], dom.rq_t_s[r] + op.max_wait_s, max_ride)
            best = self._best(cands, st_veh, st_node, st_t, r, pick, drop, lim,
                              (to_pick, from_pick, to_drop, from_drop), direct)
            if best is None:
                continue
            k, stops_node, stops_request, stops_is_pickup = best
            i, node = int(st_veh[k]), int(st_node[k])
            self.limits[r] = lim
            dom.rq_max_ride_s[r] = max_ride
            stops = [_Stop(int(n), int(q), bool(pk)) for n, q, pk in
                     zip(stops_node, stops_request, stops_is_pickup, strict=True)]
            if st_idle[k]:
                dom.assign(i, stops, max(b_s, dom.rq_t_s[r]), b_s)
                st_idle[k] = False
            else:
                dom.give(r, i)
                dom.divert(i, node, stops)
            done.add(r)
            # the vehicle now starts where it will be when it could take another request
            v = dom.vehicles[i]
            if int(dom.sim.status[v.kid]) == 2 and v.stops:
                st_node[k], st_t[k] = self._start_of(i, b_s)
            else:  # not on a link yet: not a candidate in this batch
                st_node[k], st_t[k] = v.node, np.inf
        dom.waiting[self.j] = [r for r in dom.waiting[self.j] if r not in done]
        return len(due)

    def _new_table(self) -> None:
        """An empty schedule table for the day's fleet (every row stale)."""
        dom = self.dom
        n, kmax = len(dom.vehicles), 2 * self.op.seats + 2
        self._day = dom.day_index
        self._fleet = [i for i, v in enumerate(dom.vehicles) if v.op == self.j]
        self._kid = np.array([v.kid for v in dom.vehicles], np.int64)
        self.t_n = np.zeros(n, np.int64)
        self.t_node = np.zeros((n, kmax), np.int64)
        self.t_is_pick = np.zeros((n, kmax), bool)
        self.t_partner = np.full((n, kmax), -1, np.int64)
        self.t_earliest = np.full((n, kmax), -np.inf)
        self.t_latest = np.full((n, kmax), np.inf)
        self.t_ride = np.full((n, kmax), np.inf)
        self.t_picked = np.full((n, kmax), np.nan)
        self.t_leg = np.full((n, kmax), np.nan)
        self.t_stamp = np.full(n, -1, np.int64)  # the vehicle's stops_stamp the row was made at
        self.t_ver = np.full(n, -1, np.int64)  # the link times (version) its legs are on
        self.t_first_node = np.full(n, -1, np.int64)
        self.t_first = np.full(n, np.nan)
        self.t_first_ver = np.full(n, -1, np.int64)
        self._ver = -1
        self._digest = b""

    def _grow(self, kk: int) -> None:
        """Room for schedules of ``kk`` stops."""
        kmax = self.t_node.shape[1]
        if kk <= kmax:
            return
        extra = ((0, 0), (0, max(kk, 2 * kmax) - kmax))
        self.t_node = np.pad(self.t_node, extra)
        self.t_is_pick = np.pad(self.t_is_pick, extra)
        self.t_partner = np.pad(self.t_partner, extra, constant_values=-1)
        self.t_earliest = np.pad(self.t_earliest, extra, constant_values=-np.inf)
        self.t_latest = np.pad(self.t_latest, extra, constant_values=np.inf)
        self.t_ride = np.pad(self.t_ride, extra, constant_values=np.inf)
        self.t_picked = np.pad(self.t_picked, extra, constant_values=np.nan)
        self.t_leg = np.pad(self.t_leg, extra, constant_values=np.nan)

    def _fwd(self, node: int) -> np.ndarray:
        """Drive times from ``node`` to every node (its forward tree; kept for the batch)."""
        d = self._fw.get(node)
        if d is None:
            d = self._fw[node] = self.dom._tree(node, True)[0]
        return d

    def _refresh(self, i: int) -> None:
        """Row ``i`` of the table from vehicle ``i``'s schedule (the columns of
        :func:`~twin.domains.maas.insertion.schedule_row`; a request's limits only change when it is
        picked up, which removes its pick-up stop and so changes the stamp) and the drive times
        between its stops (forward trees)."""
        dom = self.dom
        stops = dom.vehicles[i].stops
        kk = len(stops)
        self._grow(kk)
        self.t_n[i] = kk
        if kk:
            inf, nan = np.inf, np.nan
            e, lt, mr, pa, pu = [-inf] * kk, [inf] * kk, [inf] * kk, [-1] * kk, [nan] * kk
            pick_at: dict[int, int] = {}
            for a, x in enumerate(stops):
                lim = self.limits[x.request]
                if x.pickup:
                    pick_at[x.request] = a
                    e[a], lt[a] = lim.earliest_pick_s, lim.latest_pick_s
                else:
                    mr[a] = lim.max_ride_s
                    q = pick_at.get(x.request)
                    if q is not None:
                        pa[a] = q
                    else:  # on board
                        pu[a] = dom.rq_pickup_s[x.request]
                        if not pu[a] <= inf:
                            raise RuntimeError(f"request {x.request} is on board without a pick-up time")
            nodes = [x.node for x in stops]
            self.t_node[i, :kk] = nodes
            self.t_is_pick[i, :kk] = [x.pickup for x in stops]
            self.t_earliest[i, :kk], self.t_latest[i, :kk], self.t_ride[i, :kk] = e, lt, mr
            self.t_partner[i, :kk], self.t_picked[i, :kk] = pa, pu
            self.t_leg[i, 1:kk] = [self._fwd(nodes[a - 1])[nodes[a]] for a in range(1, kk)]
        self.t_stamp[i] = dom.stops_stamp[i]
        self.t_ver[i] = self._ver
        self.t_first_node[i] = -1  # its first stop may be another

    def _best(self, cands: np.ndarray, st_veh: np.ndarray, st_node: np.ndarray, st_t: np.ndarray, r: int,
              pick: int, drop: int, lim: RequestLimits, trees: tuple[np.ndarray, ...],
              direct: float) -> tuple[int, list[int], list[int], list[bool]] | None:
        """The candidate (index into the batch's starts) and the new schedule where request ``r``
        adds the least drive time (:func:`twin.kernels.insertion.best_insertion_table`, the
        compiled :func:`~twin.domains.maas.insertion.best_insertion`; ties to the lower vehicle
        index). ``trees``: to and from the pick-up, to and from the drop-off.

        Drive times of the schedules' old legs: a leg into or out of the request's pick-up or
        drop-off node from the request's four trees, any other from the forward tree of the leg's
        first node (:meth:`MaasDomain._tree`), kept in the table for the link times of the dispatch."""
        dom = self.dom
        dom.weight()
        if dom._w_digest != self._digest:  # new link times: every leg of the table is stale
            self._digest = dom._w_digest
            self._ver += 1
        veh = st_veh[cands]
        start_node = st_node[cands]
        start_t = st_t[cands]
        onboard = np.array([dom.vehicles[i].onboard for i in veh.tolist()], np.int64)
        to_pick, from_pick, to_drop, from_drop = trees
        missing = np.empty(2 * veh.size, np.int64)
        while True:
            c, pp, dp, _, m = best_insertion_table(
                veh, start_node, start_t, onboard, self.op.seats, 0.0, self.t_n, self.t_node, self.t_is_pick,
                self.t_earliest, self.t_latest, self.t_ride, self.t_partner, self.t_picked, self.t_leg, self.t_stamp,
                dom.stops_stamp, self.t_ver, self.t_first_node, self.t_first, self.t_first_ver, self._ver,
                to_pick, from_pick, to_drop, from_drop, pick, drop, direct, lim.earliest_pick_s, lim.latest_pick_s,
                lim.max_ride_s, missing)
            if not m:
                break
            for q in missing[:m].tolist():
                i = int(veh[q // 2])
                if q % 2 == 0:
                    self._refresh(i)
                if self.t_n[i]:  # the first leg too (needed, or soon)
                    x = int(start_node[q // 2])
                    self.t_first_node[i] = x
                    self.t_first[i] = self._fwd(x)[self.t_node[i, 0]]
                    self.t_first_ver[i] = self._ver
        if c < 0:
            return None
        i = int(veh[c])
        seq = [(x.node, x.request, x.pickup) for x in dom.vehicles[i].stops]
        seq.insert(dp - 1, (drop, r, False))
        seq.insert(pp, (pick, r, True))
        return int(cands[c]), [x[0] for x in seq], [x[1] for x in seq], [x[2] for x in seq]

    def _limits_of(self, r: int) -> RequestLimits:
        lim = self.limits[r]
        dom = self.dom
        if np.isfinite(dom.rq_pickup_s[r]):
            return RequestLimits(lim.earliest_pick_s, lim.latest_pick_s, lim.max_ride_s, dom.rq_pickup_s[r])
        return lim
