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

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from twin.domains.maas.dispatch import BatchDispatcher
from twin.domains.maas.insertion import RequestLimits, schedule_row

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
        #: per vehicle: its schedule's (request, pick-up) stops and their table row (a request's
        #: limits only change when it is picked up, which removes its pick-up stop)
        self._rows: dict[int, tuple[tuple[object, ...], tuple[np.ndarray, ...]]] = {}

    def _starts(self, b_s: float) -> list[tuple[int, int, float]]:
        """(vehicle, start node, start time) of the operator's candidate vehicles."""
        from twin.domains.maas.domain import VehicleState

        dom = self.dom
        sim = dom.sim
        out = []
        idle = set(dom.idle(self.j))
        w = dom.weight()
        status = sim.status
        rpos = sim.rpos
        enter = sim.route_enter_s
        links = sim.route_links
        for i, v in enumerate(dom.vehicles):
            if v.op != self.j:
                continue
            if i in idle:
                out.append((i, v.node, b_s))
            elif v.state in (VehicleState.TO_PICKUP, VehicleState.OCCUPIED) and v.stops and int(status[v.kid]) == 2:
                p = int(rpos[v.kid])
                lk = int(links[p])
                eta = float(enter[p]) + float(w[lk]) if np.isfinite(w[lk]) else np.inf
                out.append((i, int(dom.net.link_head[lk]), max(b_s, eta)))
        return out

    def _start_of(self, i: int, b_s: float) -> tuple[int, int, float]:
        """(vehicle, start node, start time) of a vehicle driving on a link."""
        dom = self.dom
        sim = dom.sim
        p = int(sim.rpos[dom.vehicles[i].kid])
        lk = int(sim.route_links[p])
        w = float(dom.weight()[lk])
        eta = float(sim.route_enter_s[p]) + w if np.isfinite(w) else np.inf
        return i, int(dom.net.link_head[lk]), max(b_s, eta)

    def _batch(self, b_s: float, t_s: float) -> None:
        from twin.domains.maas.domain import _Stop

        dom = self.dom
        op = self.op
        due = [r for r in dom.waiting[self.j] if dom.rq_t_s[r] <= b_s]
        if not due:
            return
        done = set()
        starts = self._starts(b_s)  # updated below for the vehicle each assignment changes
        idle_now = set(dom.idle(self.j))
        st_node = np.array([s[1] for s in starts], np.int64)
        st_t = np.array([s[2] for s in starts], np.float64)
        st_idle = np.array([s[0] in idle_now for s in starts], bool)
        for r in due:
            if not starts:
                break
            pick, drop = dom.rq_pick_node[r], dom.rq_drop_node[r]
            to_pd = dom.times_to(np.array([pick, drop], np.int64))
            to_pick = to_pd[0]
            reach = st_t - b_s + to_pick[st_node]
            waited = b_s - dom.rq_t_s[r]
            ok = np.flatnonzero(np.isfinite(reach) & (waited + reach <= op.max_wait_s + 1e-9))
            if ok.size == 0:
                continue
            ok = ok[np.argsort(reach[ok], kind="stable")]
            # idle vehicles all add (reach + direct): only the nearest of them competes
            is_idle = st_idle[ok]
            ok = np.concatenate([ok[~is_idle][:CANDIDATES - 1], ok[is_idle][:1]])
            from_pd = dom.times_from(np.array([pick, drop], np.int64))
            tt = self._oracle(pick, drop, to_pd, from_pd)
            direct = float(from_pd[0, drop])
            if not np.isfinite(direct):
                continue
            max_ride = min(direct * (1.0 + op.max_detour_rel), direct + op.max_detour_abs_s)
            lim = RequestLimits(dom.rq_t_s[r], dom.rq_t_s[r] + op.max_wait_s, max_ride)
            best = self._best(sorted(ok.tolist(), key=lambda k: starts[k][0]), starts, r, pick, drop, lim, tt,
                              to_pd, from_pd, direct)
            if best is None:
                continue
            k, stops_node, stops_request, stops_is_pickup = best
            i, node, _ = starts[k]
            self.limits[r] = lim
            dom.rq_max_ride_s[r] = max_ride
            stops = [_Stop(int(n), int(q), bool(pk)) for n, q, pk in
                     zip(stops_node, stops_request, stops_is_pickup, strict=True)]
            if i in idle_now:
                dom.assign(i, stops, max(b_s, dom.rq_t_s[r]), b_s)
                idle_now.discard(i)
                st_idle[k] = False
            else:
                dom.give(r, i)
                dom.divert(i, node, stops)
            done.add(r)
            # the vehicle now starts where it will be when it could take another request
            v = dom.vehicles[i]
            if int(dom.sim.status[v.kid]) == 2 and v.stops:
                starts[k] = self._start_of(i, b_s)
            else:  # not on a link yet: not a candidate in this batch
                starts[k] = (i, v.node, np.inf)
            st_node[k], st_t[k] = starts[k][1], starts[k][2]
        dom.waiting[self.j] = [r for r in dom.waiting[self.j] if r not in done]

    def _best(self, cands: list[int], starts: list[tuple[int, int, float]], r: int, pick: int, drop: int,
              lim: RequestLimits, tt: Callable[[np.ndarray, np.ndarray], np.ndarray], to_pd: np.ndarray,
              from_pd: np.ndarray, direct: float) -> tuple[int, list[int], list[int], list[bool]] | None:
        """The candidate (index into ``starts``) and the new schedule where request ``r`` adds the
        least drive time (:func:`twin.kernels.insertion.best_insertion_fleet`, the compiled
        :func:`~twin.domains.maas.insertion.best_insertion`; ties to the lower vehicle index)."""
        from twin.kernels.insertion import best_insertion_fleet

        dom = self.dom
        n = len(cands)
        vs = [dom.vehicles[starts[k][0]] for k in cands]
        kmax = max(1, max(len(v.stops) for v in vs))
        node = np.zeros((n, kmax), np.int64)
        pickup = np.zeros((n, kmax), bool)
        partner = np.full((n, kmax), -1, np.int64)
        earliest, latest, ride, picked, leg = (np.full((n, kmax), np.nan) for _ in range(5))
        sch_n = np.array([len(v.stops) for v in vs], np.int64)
        start_node = np.array([starts[k][1] for k in cands], np.int64)
        start_t = np.array([starts[k][2] for k in cands], np.float64)
        onboard = np.array([v.onboard for v in vs], np.int64)
        la: list[int] = []
        lb: list[int] = []
        for c, v in enumerate(vs):
            kk = len(v.stops)
            if not kk:
                continue
            nodes = [s.node for s in v.stops]
            node[c, :kk] = nodes
            pickup[c, :kk] = [s.pickup for s in v.stops]
            key = (dom.day_index, *((s.request, s.pickup) for s in v.stops))
            row = self._rows.get(starts[cands[c]][0])
            if row is None or row[0] != key:
                row = (key, schedule_row(np.array([s.request for s in v.stops], np.int64), pickup[c, :kk],
                                         {s.request: self._limits_of(s.request) for s in v.stops}))
                self._rows[starts[cands[c]][0]] = row
            e, lt, mr, pa, pu = row[1]
            earliest[c, :kk], latest[c, :kk], ride[c, :kk], partner[c, :kk], picked[c, :kk] = e, lt, mr, pa, pu
            la.extend([int(start_node[c]), *nodes[:-1]])
            lb.extend(nodes)
        first = np.zeros(n)
        if la:
            got = tt(np.array(la, np.int64), np.array(lb, np.int64))
            o = 0
            for c in range(n):
                kk = int(sch_n[c])
                if kk:
                    first[c] = got[o]
                    leg[c, 1:kk] = got[o + 1:o + kk]
                    o += kk
        c, pp, dp, _ = best_insertion_fleet(
            np.arange(n, dtype=np.int64), start_t, onboard, first, self.op.seats, 0.0, sch_n, node, pickup,
            earliest, latest, ride, partner, picked, leg, to_pd[0], from_pd[0], to_pd[1], from_pd[1], start_node,
            direct, lim.earliest_pick_s, lim.latest_pick_s, lim.max_ride_s)
        if c < 0:
            return None
        old = vs[c].stops
        seq = [(s.node, s.request, s.pickup) for s in old]
        seq.insert(dp - 1, (drop, r, False))
        seq.insert(pp, (pick, r, True))
        return cands[c], [x[0] for x in seq], [x[1] for x in seq], [x[2] for x in seq]

    def _oracle(self, pick: int, drop: int, to_pd: np.ndarray, from_pd: np.ndarray
                ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Element-wise drive times of the schedules' old legs for one request: a leg to or from its
        pick-up or drop-off node from the request's four trees, any other from the cached forward
        tree of the leg's first node (:meth:`MaasDomain._tree`)."""
        dom = self.dom

        def tt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            out = np.empty(a.size)
            for k, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
                if y == pick:
                    out[k] = to_pd[0, x]
                elif y == drop:
                    out[k] = to_pd[1, x]
                elif x == pick:
                    out[k] = from_pd[0, y]
                elif x == drop:
                    out[k] = from_pd[1, y]
                else:
                    out[k] = dom._tree(x, True)[0][y]
            return out

        return tt

    def _limits_of(self, r: int) -> RequestLimits:
        lim = self.limits[r]
        dom = self.dom
        if np.isfinite(dom.rq_pickup_s[r]):
            return RequestLimits(lim.earliest_pick_s, lim.latest_pick_s, lim.max_ride_s, dom.rq_pickup_s[r])
        return lim
