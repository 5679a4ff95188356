"""Vehicles with legs, diversions, closures, removal and storage changes in the queue kernel.

Every behaviour is checked against the kernel's pure-Python twin (``backend="python"``) and an
independent, literal per-step implementation of the documented model written below
(:class:`LiteralQueue`, the extension of ``tests/test_queue_kernel.py::_reference`` to legs,
diversions, closures, removals and storage changes), and the kernel is checked to be
split-invariant with all of them (the same results whether a day is advanced in one call or in
many, with the actions between calls at the same times).
"""

from __future__ import annotations

import math
import os
from collections import deque

import numpy as np
import pytest

from twin.kernels.queue import (
    ACC_EPS_VEH,
    STATUS_ARRIVED,
    STATUS_NOT_DEPARTED,
    STATUS_ON_LINK,
    STATUS_REMOVED,
    STATUS_WAITING,
    QueueSim,
)

# ------------------------------------------------------- independent literal reference


def _splitmix(z):
    m = (1 << 64) - 1
    z = (z + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def _ref_merge_key(seed, k, m, u, cap_u):
    z = _splitmix(_splitmix(_splitmix(seed ^ k) ^ m) ^ u)
    return -math.log(((z >> 11) + 1) / 2.0**53) / cap_u


class LiteralQueue:
    """Literal per-step implementation of the documented model (eager refill, full scans), with
    vehicles that perform legs, and the between-call actions of ``QueueSim`` (same method names).

    A vehicle's current leg is a plain list of links ``route[v]`` with the index ``pos[v]`` of its
    current link; a diversion replaces ``route[v][pos + 1:]`` (on a link) or the whole list
    (before entering), a removal cuts the list after the current link.
    """

    def __init__(self, fftt, cap_step, storage, *, dt_s=1.0, t_start_s=0.0, stuck_time_s=math.inf,
                 stuck_action="force", merge_seed=0, n_hours=24, bin_s=3600.0):
        self.L = len(fftt)
        self.fftt = [float(x) for x in fftt]
        self.cap = [float(x) for x in cap_step]
        self.storage = [float(x) for x in storage]
        self.dt_s, self.t_start_s, self.stuck_time_s = float(dt_s), float(t_start_s), float(stuck_time_s)
        self.stuck_remove = stuck_action == "remove"
        self.merge_seed, self.n_hours, self.bin_s = merge_seed, n_hours, float(bin_s)
        L = self.L
        self.acc = list(self.cap)
        self.occ = [0] * L
        self.last = [-math.inf] * L
        self.q = [deque() for _ in range(L)]
        self.wl = [deque() for _ in range(L)]
        self.asleep = [-1] * L
        self.closed = [False] * L
        self.k = 0
        # vehicles
        self.route, self.pos, self.leg, self.status, self.depart, self.arrive = [], [], [], [], [], []
        self.enter, self.ready, self.held, self.hs, self.moved, self.take_off = [], [], [], [], [], []
        # legs
        self.leg_vehicle, self.leg_depart, self.leg_arrive, self.leg_final, self.exits = [], [], [], [], []
        self.entries = []  # (leg, link, entry time), in the order they happened
        self.finished = []  # (vehicle, leg)
        self.forced = self.removed = self.taken_off = 0

    @property
    def t_s(self):
        return self.t_start_s + self.k * self.dt_s

    # ----------------------------------------------------------- between calls
    def add_vehicles(self, n=None, *, route_indptr=None, route_links=None, depart_s=None, owner=-1):
        if route_indptr is not None:
            n = len(route_indptr) - 1
        ids = list(range(len(self.route), len(self.route) + n))
        for _ in ids:
            for a, x in ((self.route, None), (self.pos, 0), (self.leg, -1), (self.status, 0),
                         (self.depart, math.inf), (self.arrive, math.nan), (self.enter, math.nan),
                         (self.ready, math.nan), (self.held, False), (self.hs, math.nan), (self.moved, -1),
                         (self.take_off, False)):
                a.append(x)
        if route_indptr is not None:
            self.append_legs(ids, route_indptr, route_links, depart_s)
        return np.array(ids, dtype=np.int64)

    def append_legs(self, vehicles, route_indptr, route_links, depart_s=None):
        dep = np.broadcast_to(np.inf if depart_s is None else np.asarray(depart_s, float), (len(vehicles),))
        out = []
        for j, v in enumerate(vehicles):
            v = int(v)
            assert self.leg[v] < 0 or self.status[v] >= 3
            if self.leg[v] >= 0:
                g = self.leg[v]
                self.leg_depart[g], self.leg_arrive[g], self.leg_final[g] = (self.depart[v], self.arrive[v],
                                                                             self.status[v])
            g = len(self.leg_vehicle)
            self.leg_vehicle.append(v)
            self.leg_depart.append(math.nan)
            self.leg_arrive.append(math.nan)
            self.leg_final.append(0)
            self.exits.append([])
            self.leg[v] = g
            self.route[v] = [int(x) for x in route_links[route_indptr[j]:route_indptr[j + 1]]]
            self.pos[v] = 0
            self.status[v] = 0
            self.depart[v] = float(dep[j])
            self.arrive[v] = math.nan
            self.take_off[v] = False
            self.held[v] = False
            self.hs[v] = math.nan
            out.append(g)
        return np.array(out, dtype=np.int64)

    def append_leg(self, vehicle, links, depart_s=None):
        return int(self.append_legs([vehicle], [0, len(links)], list(links),
                                    None if depart_s is None else [depart_s])[0])

    def schedule(self, ids, depart_s):
        dep = np.broadcast_to(np.asarray(depart_s, float), np.shape(np.atleast_1d(ids)))
        for v, d in zip(np.atleast_1d(ids).tolist(), dep.tolist()):
            assert self.status[v] == 0 and self.leg[v] >= 0 and d >= self.t_s
            self.depart[v] = d

    def _wake(self, u):
        self.asleep[u] = -1

    def divert(self, v, links):
        links = [int(x) for x in links]
        st = self.status[v]
        assert self.leg[v] >= 0 and st < 3 and not self.take_off[v]
        if st == 2:
            r, p = self.route[v], self.pos[v]
            ln = r[p]
            old_next = r[p + 1] if p + 1 < len(r) else -1
            self.route[v] = r[:p + 1] + links
            new_next = links[0] if links else -1
            if self.q[ln] and self.q[ln][0] == v and self.asleep[ln] != -1 and old_next != new_next:
                self._wake(ln)
        else:
            old_first = self.route[v][0]
            self.route[v] = links
            if st == 1 and links[0] != old_first:
                self.wl[old_first].remove(v)
                self.wl[links[0]].append(v)
                self.held[v] = True

    def remove(self, vehicles):
        for v in np.atleast_1d(vehicles).tolist():
            st = self.status[v]
            assert self.leg[v] >= 0 and st < 3
            if self.take_off[v]:
                continue
            self.take_off[v] = True
            if st == 2:
                r, p = self.route[v], self.pos[v]
                ln = r[p]
                had_next = p + 1 < len(r)
                self.route[v] = r[:p + 1]
                if had_next and self.q[ln] and self.q[ln][0] == v and self.asleep[ln] != -1:
                    self._wake(ln)
                continue
            if st == 1:
                self.wl[self.route[v][0]].remove(v)
            self.status[v] = 4
            self.held[v] = False
            self.hs[v] = math.nan
            self.finished.append((v, self.leg[v]))
            self.taken_off += 1

    def close_links(self, links):
        for m in np.atleast_1d(links).tolist():
            self.closed[m] = True

    def open_links(self, links):
        for m in np.atleast_1d(links).tolist():
            if self.closed[m]:
                self.closed[m] = False
                for u in range(self.L):
                    if self.asleep[u] == m:
                        self._wake(u)

    def set_storage(self, links, storage_veh):
        vals = np.broadcast_to(np.asarray(storage_veh, float), np.shape(np.atleast_1d(links)))
        for m, s in zip(np.atleast_1d(links).tolist(), vals.tolist()):
            raised = s > self.storage[m]
            self.storage[m] = s
            if raised:
                for u in range(self.L):
                    if self.asleep[u] == m:
                        self._wake(u)

    # ------------------------------------------------------------------- steps
    def advance(self, t_end_s):
        while self.t_s < t_end_s:
            self._step()
            self.k += 1

    def _step(self):
        k, t, L = self.k, self.t_s, self.L
        # 1. refill
        for ln in range(L):
            self.acc[ln] = min(self.acc[ln] + self.cap[ln], self.cap[ln])
        # 2. departures, in (depart_s, vehicle id) order
        deps = sorted((v for v in range(len(self.route))
                       if self.status[v] == 0 and self.leg[v] >= 0 and self.depart[v] <= t),
                      key=lambda v: (self.depart[v], v))
        for v in deps:
            self.wl[self.route[v][0]].append(v)
            self.status[v] = 1
        # 3. link exits, links in index order
        for ln in range(L):
            n_left = 0
            while self.q[ln]:
                v = self.q[ln][0]
                if self.ready[v] > t or self.moved[v] == k:
                    break
                if self.acc[ln] <= ACC_EPS_VEH:
                    self.held[v] = True
                    break
                x = t if self.held[v] else max(self.ready[v], self.last[ln])
                r, p = self.route[v], self.pos[v]
                is_last = p == len(r) - 1
                if not is_last:
                    m = r[p + 1]
                    if self.asleep[ln] != -1 or self.occ[m] >= self.storage[m] or self.closed[m]:
                        self.held[v] = True
                        if self.closed[m]:
                            self.hs[v] = math.nan
                        elif math.isnan(self.hs[v]):
                            self.hs[v] = t
                        if t - self.hs[v] >= self.stuck_time_s:
                            self.asleep[ln] = -1
                            if self.stuck_remove:
                                self.q[ln].popleft()
                                self.occ[ln] -= 1
                                n_left += 1
                                self.status[v] = 4
                                self.held[v] = False
                                self.hs[v] = math.nan
                                self.removed += 1
                                self.finished.append((v, self.leg[v]))
                                continue
                            self.forced += 1
                        else:
                            self.asleep[ln] = m
                            break
                self.q[ln].popleft()
                n_left += 1
                self.occ[ln] -= 1
                self.acc[ln] -= 1.0
                self.last[ln] = x
                self.exits[self.leg[v]].append((ln, x, x - self.enter[v]))
                if is_last:
                    self.arrive[v] = x
                    if self.take_off[v]:
                        self.status[v] = 4
                        self.taken_off += 1
                    else:
                        self.status[v] = 3
                    self.held[v] = False
                    self.hs[v] = math.nan
                    self.finished.append((v, self.leg[v]))
                else:
                    self.q[m].append(v)
                    self.occ[m] += 1
                    self.pos[v] += 1
                    self.enter[v] = x
                    self.ready[v] = x + self.fftt[m]
                    self.held[v] = False
                    self.hs[v] = math.nan
                    self.moved[v] = k
                    self.entries.append((self.leg[v], m, x))
            sleepers = [u for u in range(L) if self.asleep[u] == ln] if n_left else []
            for _ in range(min(n_left, len(sleepers))):
                u = min(sleepers, key=lambda u: (_ref_merge_key(self.merge_seed, k, ln, u, self.cap[u]), u))
                sleepers.remove(u)
                self.asleep[u] = -1
        # 4. waiting lists -> first link
        for ln in range(L):
            while self.wl[ln]:
                w = self.wl[ln][0]
                if self.occ[ln] >= self.storage[ln] or self.closed[ln]:
                    self.held[w] = True
                    break
                self.wl[ln].popleft()
                self.q[ln].append(w)
                self.occ[ln] += 1
                self.status[w] = 2
                # departure time if it enters in its departure step, not held; else now
                dep_step = self.depart[w] > self.t_start_s + (k - 1) * self.dt_s
                self.enter[w] = self.depart[w] if dep_step and not self.held[w] else t
                self.ready[w] = self.enter[w] + self.fftt[ln]
                self.held[w] = False
                self.hs[w] = math.nan
                self.moved[w] = k
                self.entries.append((self.leg[w], ln, self.enter[w]))

    # ------------------------------------------------------------------ results
    @property
    def n_legs(self):
        return len(self.leg_vehicle)

    def _leg_field(self, stored, per_vehicle):
        out = list(stored)
        for g, v in enumerate(self.leg_vehicle):
            if self.leg[v] == g:
                out[g] = per_vehicle[v]
        return np.array(out)

    @property
    def leg_arrive_s(self):
        return self._leg_field(self.leg_arrive, self.arrive)

    @property
    def leg_status(self):
        return self._leg_field(self.leg_final, self.status).astype(np.int8)

    @property
    def arrive_s(self):
        return np.array(self.arrive)

    def link_stats(self):
        """Exits summed over legs in index order, along each leg's route (the documented order)."""
        vol = np.zeros((self.L, self.n_hours), np.int64)
        tt = np.zeros((self.L, self.n_hours))
        for g in range(self.n_legs):
            for ln, x, dur in self.exits[g]:
                b = math.floor(x / self.bin_s)
                while b * self.bin_s > x:
                    b -= 1
                while (b + 1) * self.bin_s <= x:
                    b += 1
                h = min(max(b, 0), self.n_hours - 1)
                vol[ln, h] += 1
                tt[ln, h] += dur
        return vol, tt


# ----------------------------------------------------------------------------- networks


def _grid(seed, n=6):
    """A directed n x n grid: link arrays and nodes (from, to), random link parameters."""
    rng = np.random.default_rng(seed)
    frm, to = [], []
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                a, b = i + di, j + dj
                if 0 <= a < n and 0 <= b < n:
                    frm.append(i * n + j)
                    to.append(a * n + b)
    frm, to = np.array(frm), np.array(to)
    n_links = frm.size
    fftt = rng.uniform(3.0, 20.0, n_links)
    short = rng.random(n_links) < 0.15
    fftt[short] = rng.uniform(0.0, 0.8, short.sum())
    cap = rng.uniform(0.1, 1.5, n_links)
    storage = rng.uniform(1.0, 4.0, n_links)
    return fftt, cap, storage, frm, to


def _walk(rng, out_links, to, node, lo=1, hi=10):
    """A random walk of lo..hi links from ``node`` (no link twice)."""
    target = int(rng.integers(lo, hi + 1))
    used, r = set(), []
    while len(r) < target:
        cand = [e for e in out_links[node] if e not in used]
        if not cand:
            break
        e = cand[int(rng.integers(len(cand)))]
        used.add(e)
        r.append(e)
        node = int(to[e])
    return r


def _csr(routes):
    indptr = np.r_[0, np.cumsum([len(r) for r in routes])].astype(np.int64)
    links = np.array([x for r in routes for x in r], dtype=np.int64)
    return indptr, links


# ----------------------------------------------------------- scripted random days


class Day:
    """A random day on a grid: initial single-leg trips, then, at action times, new vehicles, new
    legs for the vehicles whose leg is over, diversions, removals, closures and openings, storage
    changes.  The actions are generated from the state of the first sim driven (``QueueSim``) and
    recorded, then replayed on the others at the same times."""

    def __init__(self, seed, *, n_trips=250, n_steps=1500, stuck_time_s=math.inf, stuck_action="force",
                 action_every_s=60.0):
        self.seed = seed
        self.fftt, self.cap, self.storage, self.frm, self.to = _grid(seed)
        self.n_links = self.fftt.size
        self.out_links = [[] for _ in range(int(self.frm.max()) + 1)]
        for e, u in enumerate(self.frm):
            self.out_links[u].append(e)
        rng = np.random.default_rng(seed + 1000)
        self.routes = [_walk(rng, self.out_links, self.to, int(rng.integers(len(self.out_links))))
                       for _ in range(n_trips)]
        self.depart = rng.uniform(0.0, 300.0, n_trips)
        self.n_steps = n_steps
        self.stuck_time_s = stuck_time_s
        self.stuck_action = stuck_action
        t, times = 7.3, []
        while t < n_steps - 50:
            times.append(round(t, 1))
            t += action_every_s * rng.uniform(0.5, 1.5)
        self.action_times = times
        self.script = None  # [(t, [(method, args), ...]), ...]

    def kwargs(self):
        return dict(stuck_time_s=self.stuck_time_s, stuck_action=self.stuck_action)

    def queue_sim(self, backend="numba"):
        indptr, links = _csr(self.routes)
        # copies: the sim works in the arrays it is given (set_storage writes into storage_veh)
        sim = QueueSim(fftt_s=self.fftt.copy(), cap_veh_per_s=self.cap.copy(), storage_veh=self.storage.copy(),
                       route_indptr=indptr, route_links=links, backend=backend, link_from_node=self.frm,
                       link_to_node=self.to, **self.kwargs())
        sim.schedule(np.arange(len(self.routes)), self.depart)
        return sim

    def literal(self, cap_step):
        ref = LiteralQueue(self.fftt, cap_step, self.storage, **self.kwargs())
        indptr, links = _csr(self.routes)
        ref.add_vehicles(route_indptr=indptr, route_links=links, depart_s=self.depart)
        return ref

    def _actions(self, sim, rng):
        """The actions at the current time, from the state of ``sim`` (a QueueSim)."""
        acts = []
        st = sim.status
        t = sim.t_s
        # legs for vehicles whose leg is over (arrived or removed), from where they stand, and first
        # legs for vehicles without one
        done = np.flatnonzero((st >= STATUS_ARRIVED) | (sim.leg_of < 0))
        done = done[rng.random(done.size) < 0.5]
        if done.size:
            nodes = sim.standing_node(done)
            nodes[nodes < 0] = rng.integers(len(self.out_links), size=int(np.count_nonzero(nodes < 0)))
            routes = [_walk(rng, self.out_links, self.to, int(u)) for u in nodes]
            later = rng.random(done.size) < 0.2  # some wait for schedule()
            dep = t + rng.uniform(0.0, 90.0, done.size)
            acts.append(("append_legs", (done[~later], *_csr([r for r, x in zip(routes, later) if not x]),
                                         dep[~later])))
            if later.any():
                acts.append(("append_legs", (done[later], *_csr([r for r, x in zip(routes, later) if x]))))
                acts.append(("schedule", (done[later], dep[later] + 5.0)))
        # new vehicles, a few with a first leg departing now or later
        n_new = int(rng.integers(0, 6))
        if n_new:
            routes = [_walk(rng, self.out_links, self.to, int(rng.integers(len(self.out_links))))
                      for _ in range(n_new)]
            indptr, links = _csr(routes)
            acts.append(("add_vehicles", ((), dict(route_indptr=indptr, route_links=links,
                                                   depart_s=t + rng.uniform(0.0, 60.0, n_new)))))
        acts.append(("add_vehicles", ((int(rng.integers(0, 2)),), {})))
        # diversions: on a link (from the end of the current link), waiting or not departed (whole route)
        live = np.flatnonzero((st <= STATUS_ON_LINK) & (sim.leg_of >= 0) & (sim.take_off == 0))
        for v in live[rng.random(live.size) < 0.06].tolist():
            cur = int(sim.current_link[v])
            if st[v] == STATUS_ON_LINK:
                links = _walk(rng, self.out_links, self.to, int(self.to[cur]), lo=0, hi=6)
            else:
                links = _walk(rng, self.out_links, self.to, int(self.frm[cur]), lo=1, hi=6)
            acts.append(("divert", (v, np.array(links, dtype=np.int64))))
        # the heads of full or closed links that sleep: divert some of them (wake-ups)
        heads = sim.q_head[(sim._blk_on != -1) & (sim.q_head != -1)]
        for v in heads[rng.random(heads.size) < 0.3].tolist():
            if sim.take_off[v]:
                continue
            cur = int(sim.current_link[v])
            links = _walk(rng, self.out_links, self.to, int(self.to[cur]), lo=0, hi=6)
            acts.append(("divert", (v, np.array(links, dtype=np.int64))))
        # removals
        live = np.flatnonzero((st <= STATUS_ON_LINK) & (sim.leg_of >= 0))
        rm = live[rng.random(live.size) < 0.02]
        if rm.size:
            acts.append(("remove", (rm,)))
        # closures and openings, storage changes
        closed = np.flatnonzero(sim.closed)
        if closed.size:
            acts.append(("open_links", (closed[rng.random(closed.size) < 0.4],)))
        acts.append(("close_links", (rng.choice(self.n_links, int(rng.integers(0, 4)), replace=False),)))
        ls = rng.choice(self.n_links, int(rng.integers(0, 4)), replace=False)
        acts.append(("set_storage", (ls, rng.uniform(1.0, 5.0, ls.size))))
        return acts

    @staticmethod
    def _apply(sim, acts):
        for name, args in acts:
            if name == "add_vehicles":
                pos, kw = args
                sim.add_vehicles(*pos, **kw)
            elif name == "divert":
                # a vehicle diverted twice in one go: the second must fit where the first left it
                sim.divert(*args)
            else:
                getattr(sim, name)(*args)

    def drive(self, sim, *, chunks=None):
        """Run the day on ``sim``: advance to each action time (through the extra ``chunks`` times
        in between, if given) and apply the actions there.  Returns the entries of each call as
        sorted lists of (leg, link, time)."""
        record = self.script is None
        if record:
            self.script = []
            rng = np.random.default_rng(self.seed + 2000)
        stops = sorted(set(self.action_times) | set(chunks or ()) | {float(self.n_steps)})
        acts_at = dict(self.script) if not record else {}
        entries = []
        seen = 0
        for t in stops:
            sim.advance(t)
            if t in self.action_times:
                if record:
                    acts = self._actions(sim, rng)
                    # drop a second diversion of the same vehicle (its route changed meanwhile)
                    keep, dv = [], set()
                    for a in acts:
                        if a[0] == "divert":
                            if a[1][0] in dv:
                                continue
                            dv.add(a[1][0])
                        keep.append(a)
                    acts = keep
                    self.script.append((t, acts))
                else:
                    acts = acts_at[t]
                entries.append(_new_entries(sim, seen))
                seen = _n_entries(sim)
                self._apply(sim, acts)
        entries.append(_new_entries(sim, seen))
        return entries


def _n_entries(sim):
    return sim.n_entries if isinstance(sim, QueueSim) else len(sim.entries)


def _new_entries(sim, start):
    if isinstance(sim, QueueSim):
        e = sim.entries(start)
        return sorted(zip(e.leg.tolist(), e.link.tolist(), e.enter_s.tolist()))
    return sorted(sim.entries[start:])


def _results(sim):
    """The results compared between implementations."""
    if isinstance(sim, QueueSim):
        vol, tt = sim.link_volume, sim.link_tt_sum_s
        fin = list(zip(sim.finished().tolist(), sim.finished_legs().tolist()))
        return dict(leg_arrive_s=sim.leg_arrive_s, leg_status=sim.leg_status, leg_vehicle=np.asarray(sim.leg_vehicle),
                    status=sim.status.copy(), vol=vol, tt=tt, finished=fin, forced=sim.n_forced_moves,
                    removed=sim.n_removed, taken_off=sim.n_taken_off)
    vol, tt = sim.link_stats()
    return dict(leg_arrive_s=sim.leg_arrive_s, leg_status=sim.leg_status, leg_vehicle=np.array(sim.leg_vehicle),
                status=np.array(sim.status, dtype=np.int8), vol=vol, tt=tt, finished=list(sim.finished),
                forced=sim.forced, removed=sim.removed, taken_off=sim.taken_off)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], np.ndarray):
            assert a[name].shape == b[name].shape, name
            assert np.array_equal(a[name], b[name], equal_nan=True), name
        else:
            assert a[name] == b[name], name


def _check_conservation(sim):
    st = sim.status
    n_rm = int(np.count_nonzero(st == STATUS_REMOVED))
    assert sim.n_departed == sim.n_waiting + sim.n_on_links + sim.n_arrived + n_rm
    assert int(sim.occ.sum()) == sim.n_on_links
    assert np.all(sim.occ >= 0)


# ------------------------------------------------------------------ (a) legs one by one


def _ring():
    # six links around a ring of six nodes (link i: node i -> node i+1), odd free-flow times
    fftt = np.array([7.3, 11.05, 4.2, 9.9, 13.37, 2.6])
    frm = np.arange(6)
    to = (frm + 1) % 6
    return fftt, frm, to


@pytest.mark.parametrize("impl", ["numba", "python", "literal"])
def test_three_legs_arrive_at_free_flow_plus_waits(impl):
    fftt, frm, to = _ring()
    kw = dict(fftt_s=fftt, cap_veh_per_s=np.ones(6), storage_veh=np.full(6, 5.0))
    legs = [[0, 1], [2, 3], [4, 5, 0]]
    waits = [7.25, 30.5]
    d0 = 10.3
    if impl == "literal":
        sim = LiteralQueue(fftt, np.ones(6), np.full(6, 5.0))
        v = int(sim.add_vehicles(1)[0])
    else:
        sim = QueueSim(**kw, route_indptr=[0], route_links=[], backend=impl, link_from_node=frm, link_to_node=to)
        v = int(sim.add_vehicles(1, owner=77)[0])
        assert sim.owner[v] == 77 and sim.leg_of[v] == -1 and sim.status[v] == STATUS_NOT_DEPARTED
    dep = d0
    expect = []
    for j, route in enumerate(legs):
        g = sim.append_leg(v, route, dep)
        assert g == j
        # the free-flow times in the order the kernel adds them: entry + fftt, link after link
        x = dep
        for ln in route:
            x = x + fftt[ln]
        expect.append((dep, x))
        while sim.status[v] != STATUS_ARRIVED:
            assert sim.t_s < 500
            sim.advance(sim.t_s + 1.0)
        assert sim.arrive_s[v] == x
        if j < len(waits):
            dep = x + waits[j]
            assert dep >= sim.t_s
    total = d0 + fftt[[ln for r in legs for ln in r]].sum() + sum(waits)
    assert sim.arrive_s[v] == expect[-1][1]
    assert abs(sim.arrive_s[v] - total) <= 1e-9
    assert np.array_equal(sim.leg_arrive_s, [a for _, a in expect])
    assert np.array_equal(sim.leg_status, [STATUS_ARRIVED] * 3)
    if impl == "literal":
        vol, tt = sim.link_stats()
        assert sim.finished == [(v, 0), (v, 1), (v, 2)]
    else:
        vol, tt = sim.link_volume, sim.link_tt_sum_s
        assert np.array_equal(sim.leg_depart_s, [d for d, _ in expect])
        assert sim.finished().tolist() == [v] * 3 and sim.finished_legs().tolist() == [0, 1, 2]
        lg = sim.legs([2, 0])
        assert lg.vehicle.tolist() == [v, v] and lg.status.tolist() == [STATUS_ARRIVED] * 2
        assert lg.arrive_s.tolist() == [expect[2][1], expect[0][1]] and lg.depart_s.tolist() == [expect[2][0], d0]
        assert sim.n_finished == 3 and sim.n_legs == 3
        # every leg's route, its entries in the order driven
        for g, route in enumerate(legs):
            p = sim.leg_route(g)
            assert sim.route_links[p].tolist() == route
            assert np.all(np.isfinite(sim.route_enter_s[p]))
        e = sim.entries()
        assert e.link.tolist() == [ln for r in legs for ln in r] and np.all(e.vehicle == v)
        assert e.leg.tolist() == [0, 0, 1, 1, 2, 2, 2]
        # a leg must start where the vehicle stands (node 1 after the third leg)
        with pytest.raises(ValueError, match="stands at node 1"):
            sim.append_leg(v, [3], sim.t_s)
    assert vol.sum(axis=1).tolist() == [2, 1, 1, 1, 1, 1]
    assert np.allclose(tt.sum(axis=1), fftt * [2, 1, 1, 1, 1, 1], atol=1e-9)


# -------------------------------------------------- (b) diversion around a closure


def _detour_net():
    # a: 0->1, b: 1->2 (closes), c: 2->3; detour d: 1->4, e: 4->3; f: 3->0
    fftt = np.array([10.0, 5.5, 6.25, 8.1, 7.7, 3.0])
    frm = np.array([0, 1, 2, 1, 4, 3])
    to = np.array([1, 2, 3, 4, 3, 0])
    return fftt, frm, to


@pytest.mark.parametrize("impl", ["numba", "python", "literal"])
def test_diverted_vehicle_avoids_closed_link_at_free_flow(impl):
    fftt, frm, to = _detour_net()
    a, b, c, d, e = 0, 1, 2, 3, 4
    cap = np.ones(6)
    storage = np.full(6, 5.0)
    routes = [[a, b, c], [a, b, c], [a, b, c]]
    indptr, links = _csr(routes)
    dep = [0.0, 0.5, 1.0]
    if impl == "literal":
        sim = LiteralQueue(fftt, cap, storage, stuck_time_s=20.0)
        sim.add_vehicles(route_indptr=indptr, route_links=links, depart_s=dep)
    else:
        sim = QueueSim(fftt_s=fftt, cap_veh_per_s=cap, storage_veh=storage, route_indptr=indptr,
                       route_links=links, stuck_time_s=20.0, backend=impl, link_from_node=frm, link_to_node=to)
        sim.schedule([0, 1, 2], dep)
    sim.advance(3.0)  # all three on link a
    assert list(sim.status) == [STATUS_ON_LINK] * 3
    if impl != "literal":
        assert sim.routed_through([b]).tolist() == [0, 1, 2]
        with pytest.raises(ValueError, match="reaches node 1 next"):
            sim.divert(0, [e])
    sim.divert(0, [d, e])
    sim.close_links([b])
    if impl != "literal":
        assert sim.routed_through([b]).tolist() == [1, 2] and sim.n_closed == 1
    sim.advance(200.0)
    # vehicle 0 never entered b and arrived by the detour at exactly its free-flow time
    assert sim.status[0] == STATUS_ARRIVED
    assert sim.arrive_s[0] == (((0.0 + fftt[a]) + fftt[d]) + fftt[e])
    # vehicles 1 and 2 wait at the end of a (b's upstream end), not forced by the stuck rule
    assert sim.status[1] == STATUS_ON_LINK and sim.status[2] == STATUS_ON_LINK
    if impl != "literal":
        assert sim.n_forced_moves == 0 and sim.held[1] == 1 and np.isnan(sim.held_since_s[1])
        assert sim.current_link[1] == a and sim.q_head[a] == 1 and sim._blk_on[a] == b
        assert not np.any(sim.entries().link == b)
        pos0 = sim.leg_route(0)
        assert sim.route_links[pos0].tolist() == [a, d, e]
        assert sim.pos[0] == 2  # within the new piece: the copy of a, then d, e
    else:
        assert sim.forced == 0
        assert all(link != b for _, link, _ in sim.entries)
    # at t = 200 vehicle 1 (the head) is diverted: its link wakes up, it turns at the step time
    sim.divert(1, [d, e])
    sim.advance(260.0)
    assert sim.status[1] == STATUS_ARRIVED
    assert sim.arrive_s[1] == ((200.0 + fftt[d]) + fftt[e])
    # vehicle 2 is now the head; b opens at t = 260: it enters b at the step time
    assert sim.status[2] == STATUS_ON_LINK
    sim.open_links([b])
    sim.advance(300.0)
    assert sim.status[2] == STATUS_ARRIVED
    assert sim.arrive_s[2] == ((260.0 + fftt[b]) + fftt[c])
    res = _results(sim)
    assert res["vol"].sum(axis=1).tolist() == [3, 1, 1, 2, 2, 0]
    assert res["forced"] == 0


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_departure_onto_closed_link_waits_and_diverted_waiting_vehicle_moves_list(backend):
    fftt, frm, to = _detour_net()
    a, b, c, d, e = 0, 1, 2, 3, 4
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=np.ones(6), storage_veh=np.full(6, 5.0),
                   route_indptr=[0, 2, 4, 5], route_links=[b, c, b, c, d], stuck_time_s=5.0, backend=backend,
                   link_from_node=frm, link_to_node=to)
    ref = LiteralQueue(fftt, np.ones(6), np.full(6, 5.0), stuck_time_s=5.0)
    ref.add_vehicles(route_indptr=[0, 2, 4, 5], route_links=[b, c, b, c, d], depart_s=[2.0, 3.0, 4.0])
    sim.schedule([0, 1, 2], [2.0, 3.0, 4.0])
    for s in (sim, ref):
        s.close_links([b])
        s.advance(50.0)
    assert sim.status.tolist() == [STATUS_WAITING, STATUS_WAITING, STATUS_ARRIVED]
    assert sim.w_head[b] == 0 and sim.held[0] == 1 and sim.arrive_s[2] == 4.0 + fftt[d]
    # the second in the list turns to d: it leaves b's waiting list for d's, held (enters at t)
    with pytest.raises(ValueError, match="departs from node 1"):
        sim.divert(1, [a])
    for s in (sim, ref):
        s.divert(1, [d, e])
    assert sim.w_head[b] == 0 and sim.w_tail[b] == 0 and sim.w_head[d] == 1 and sim.held[1] == 1
    for s in (sim, ref):
        s.advance(70.0)
    assert sim.status[1] == STATUS_ARRIVED and sim.arrive_s[1] == ((50.0 + fftt[d]) + fftt[e])
    for s in (sim, ref):
        s.open_links([b])
        s.advance(120.0)
    assert sim.arrive_s[0] == ((70.0 + fftt[b]) + fftt[c])
    assert sim.n_forced_moves == 0
    _assert_same(_results(sim), _results(ref))


# ------------------------------------------------------------ removal and storage


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_remove_at_next_node_waiting_and_not_departed(backend):
    # chain a -> b -> c with c closed: b fills up (storage 2), a (storage 3) sleeps on it, the rest wait
    fftt = np.array([5.0, 5.0, 4.0])
    a, b, c = 0, 1, 2
    frm, to = np.array([0, 1, 2]), np.array([1, 2, 3])
    cap = np.array([1.0, 1.0, 1.0])
    storage = np.array([10.0, 2.0, 5.0])
    n = 7
    indptr, links = _csr([[a, b, c]] * n)
    dep = [0.0] * 6 + [500.0]
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=cap, storage_veh=storage, route_indptr=indptr, route_links=links,
                   backend=backend, link_from_node=frm, link_to_node=to, stuck_time_s=60.0)
    ref = LiteralQueue(fftt, cap, storage, stuck_time_s=60.0)
    ref.add_vehicles(route_indptr=indptr, route_links=links, depart_s=dep)
    sim.schedule(np.arange(n), dep)
    for s in (sim, ref):
        s.set_storage([a], 3.0)  # lowered: no wake-ups
        s.close_links([c])
        s.advance(30.0)
    assert sim.status.tolist() == [2, 2, 2, 2, 2, 1, 0]
    assert sim.occ.tolist() == [3, 2, 0] and sim.q_head[a] == 2 and sim._blk_on[a] == b
    assert sim.n_forced_moves == 0
    for s in (sim, ref):
        s.remove([2, 5, 6])  # the head of a leaves at a's end; 5 (waiting) and 6 (not departed) at once
    assert sim.status[5] == STATUS_REMOVED and sim.status[6] == STATUS_REMOVED and sim.n_taken_off == 2
    assert sim._blk_on[a] == -1  # its link woke up
    assert sim.finished().tolist() == [5, 6] and sim.take_off[2] == 1 and sim.r_end[2] == sim.rpos[2] + 1
    for s in (sim, ref):
        s.advance(31.0)
    assert sim.status[2] == STATUS_REMOVED and sim.arrive_s[2] == 30.0 and sim.finished().tolist() == [5, 6, 2]
    assert sim.n_taken_off == 3 and sim.n_removed == 0
    assert np.isnan(sim.arrive_s[5]) and np.isnan(sim.arrive_s[6])
    with pytest.raises(ValueError, match="no leg under way"):
        sim.remove([5])
    # a removed vehicle gets a new leg from where it stands: the end of a (node 1), or the start
    # of its first link when it was removed before entering it (node 0)
    assert sim.standing_node([2, 5, 6]).tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="stands at node 1"):
        sim.append_leg(2, [a], 40.0)
    for s in (sim, ref):
        s.append_leg(2, [b, c], 40.0)
        s.append_leg(5, [a], 41.0)
        s.advance(200.0)
        s.open_links([c])
        s.advance(2000.0)
    # the stuck rule moved a's heads into the full b meanwhile; b's heads waited for c (closed until
    # t = 200) longer than the stuck time, but were never forced into it
    assert sim.n_forced_moves > 0
    assert np.nanmin(sim.route_enter_s[sim.route_links == c]) == 200.0
    assert sim.n_departed == n and sim.n_arrived == n - 1
    _check_conservation(sim)
    res = _results(sim)
    _assert_same(res, _results(ref))
    assert res["vol"][a].sum() == 6  # vehicles 0, 1, 3, 4, 2 (its take-off is an exit of a), 5's new leg


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_raising_storage_wakes_links_asleep_on_it(backend):
    # two approaches u0, u1 into a full link m (held full by a closed exit x); m's storage is raised
    fftt = np.array([5.0, 5.0, 5.0, 5.0])
    u0, u1, m, x = 0, 1, 2, 3
    cap = np.array([1.0, 1.0, 1.0, 1.0])
    storage = np.array([10.0, 10.0, 2.0, 10.0])
    routes = [[u0, m, x]] * 4 + [[u1, m, x]] * 4
    indptr, links = _csr(routes)
    dep = np.linspace(0.0, 3.0, 8)
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=cap, storage_veh=storage, route_indptr=indptr,
                   route_links=links, backend=backend)
    ref = LiteralQueue(fftt, cap, storage)
    ref.add_vehicles(route_indptr=indptr, route_links=links, depart_s=dep)
    sim.schedule(np.arange(8), dep)
    for s in (sim, ref):
        s.close_links([x])
        s.advance(100.0)
    assert sim.occ[m] == 2 and sim._blk_on[u0] == m and sim._blk_on[u1] == m
    assert sim.n_forced_moves == 0  # the heads on m wait for x (closed), those on u0/u1 for m
    for s in (sim, ref):
        s.set_storage([m], 6.0)
    assert sim._blk_on[u0] == -1 and sim._blk_on[u1] == -1
    for s in (sim, ref):
        s.advance(101.0)
    assert sim.occ[m] >= 4
    for s in (sim, ref):
        s.open_links([x])
        s.advance(400.0)
    assert sim.n_arrived == 8
    _assert_same(_results(sim), _results(ref))


# ------------------------------------------ random days: reference, twin, split invariance


_DAYS = [(3, math.inf, "force"), (5, 20.0, "force"), (8, 15.0, "remove"), (13, math.inf, "force")]


@pytest.mark.parametrize("seed, stuck_time_s, stuck_action", _DAYS)
def test_random_day_matches_literal_reference(seed, stuck_time_s, stuck_action):
    day = Day(seed, stuck_time_s=stuck_time_s, stuck_action=stuck_action)
    sim = day.queue_sim()
    e_sim = day.drive(sim)
    ref = day.literal(sim.cap_veh_per_step)
    e_ref = day.drive(ref)
    res = _results(sim)
    _assert_same(res, _results(ref))
    assert e_sim == e_ref  # the link entries of every call
    # the day exercised everything
    n_div = sum(1 for _, acts in day.script for a in acts if a[0] == "divert")
    assert n_div > 20 and sim.n_legs > len(day.routes) + 100 and sim.n_taken_off > 5
    assert sim.n_vehicles > len(day.routes)
    assert np.count_nonzero(res["leg_status"] == STATUS_ARRIVED) > sim.n_legs // 2
    if stuck_action == "remove":
        assert sim.n_removed > 0


@pytest.mark.parametrize("seed, stuck_time_s, stuck_action", _DAYS[1:3])
def test_random_day_numba_equals_python_twin(seed, stuck_time_s, stuck_action):
    day = Day(seed, stuck_time_s=stuck_time_s, stuck_action=stuck_action)
    a = day.queue_sim("numba")
    day.drive(a)
    b = day.queue_sim("python")
    day.drive(b)
    _assert_same(_results(a), _results(b))
    for x, y in zip(a.legs(), b.legs()):
        assert np.array_equal(x, y, equal_nan=True)
    assert np.array_equal(a.legs().arrive_s, a.leg_arrive_s, equal_nan=True)
    assert np.array_equal(a.legs().status, a.leg_status) and np.array_equal(a.legs().depart_s, a.leg_depart_s)
    for name in ("route_links", "route_enter_s", "route_leg", "rpos", "r_end", "arrive_s", "held",
                 "held_since_s", "acc_veh", "acc_step", "occ", "last_exit_s", "_blk_on"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert np.array_equal(a.entries().pos, b.entries().pos)  # same order too


@pytest.mark.parametrize("seed, stuck_time_s, stuck_action", _DAYS)
def test_random_day_is_split_invariant(seed, stuck_time_s, stuck_action):
    day = Day(seed, stuck_time_s=stuck_time_s, stuck_action=stuck_action)
    one = day.queue_sim()
    e_one = day.drive(one)
    rng = np.random.default_rng(seed)
    chunks = np.cumsum(rng.uniform(0.2, 40.0, 200))
    many = day.queue_sim()
    e_many = day.drive(many, chunks=[round(float(c), 2) for c in chunks if c < day.n_steps])
    _assert_same(_results(one), _results(many))
    for name in ("route_links", "route_enter_s", "route_leg", "rpos", "r_end", "arrive_s", "held",
                 "held_since_s", "acc_veh", "acc_step", "occ", "last_exit_s", "_blk_on", "status"):
        assert np.array_equal(getattr(one, name), getattr(many, name), equal_nan=True), name
    # the same entries between any two action times (drive() collects them there only)
    assert e_many == e_one


# ------------------------------------------------------------------- API and layout


def test_single_leg_layout_matches_the_constructor_csr():
    indptr, links = _csr([[0, 1], [2], [1, 2, 0]])
    sim = QueueSim(fftt_s=[5.0, 2.0, 3.0], cap_veh_per_s=np.ones(3), storage_veh=np.full(3, 3.0),
                   route_indptr=indptr, route_links=links)
    assert sim.n_vehicles == sim.n_trips == sim.n_legs == 3
    assert sim.route_links.tolist() == links.tolist() and sim.route_leg.tolist() == [0, 0, 1, 2, 2, 2]
    assert sim.rpos.tolist() == [0, 2, 3] and sim.r_end.tolist() == [2, 3, 6] and sim.pos.tolist() == [0, 0, 0]
    assert sim.leg_vehicle.tolist() == [0, 1, 2] and sim.leg_of.tolist() == [0, 1, 2]
    sim.schedule([0, 1, 2], [0.0, 1.0, 2.0])
    sim.advance(1.5)
    e = sim.entries()
    assert e.pos.tolist() == [0, 2] and e.leg.tolist() == [0, 1] and e.vehicle.tolist() == [0, 1]
    n = sim.n_entries
    sim.advance(3.0)
    assert sim.entries(n).pos.tolist() == [3]
    sim.advance(50.0)
    assert sim.finished().tolist() == sim.finished_legs().tolist()
    assert sim.n_entries == 6 and sorted(sim.entries().pos.tolist()) == list(range(6))


def test_buffers_grow_between_calls_and_views_follow():
    fftt, frm, to = _ring()
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=np.ones(6), storage_veh=np.full(6, 10.0), route_indptr=[0, 1],
                   route_links=[0], link_from_node=frm, link_to_node=to)
    sim.schedule([0], [0.0])
    ids = sim.add_vehicles(route_indptr=np.arange(0, 301, 3), route_links=np.tile([2, 3, 4], 100),
                           depart_s=np.linspace(0.0, 50.0, 100), owner=np.arange(100))
    assert ids.tolist() == list(range(1, 101)) and sim.owner[1:].tolist() == list(range(100))
    assert sim.route_links.shape == (301,) and sim.status.shape == (101,)
    for _ in range(20):
        sim.advance(sim.t_s + 30.0)
        done = np.flatnonzero(sim.status == STATUS_ARRIVED)
        if done.size:
            nodes = sim.standing_node(done)
            routes = [[int(u), int((u + 1) % 6)] for u in nodes]
            sim.append_legs(done, *_csr(routes), sim.t_s + 1.0)
        _check_conservation(sim)
    assert sim.n_legs > 500 and sim.n_finished == np.count_nonzero(sim.leg_status >= STATUS_ARRIVED)
    assert sim.n_entries == np.count_nonzero(np.isfinite(sim.route_enter_s))
    assert sim.link_volume.sum() == sim.n_entries - sim.n_on_links


def test_invalid_leg_actions_raise():
    fftt, frm, to = _ring()
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=np.ones(6), storage_veh=np.full(6, 3.0), route_indptr=[0, 2],
                   route_links=[0, 1], link_from_node=frm, link_to_node=to)
    v = int(sim.add_vehicles(1)[0])
    with pytest.raises(ValueError, match="no leg"):
        sim.schedule([v], [1.0])
    with pytest.raises(ValueError, match="not connected"):
        sim.append_leg(v, [0, 2])
    with pytest.raises(ValueError, match="has not finished"):
        sim.append_leg(0, [2])
    with pytest.raises(ValueError, match="past"):
        sim.advance(5.0)
        sim.append_leg(v, [3], 1.0)
    with pytest.raises(ValueError, match="no leg under way"):
        sim.divert(v, [1])
    with pytest.raises(ValueError, match="at least one link"):
        sim.divert(0, [])
    with pytest.raises(ValueError, match="distinct"):
        sim.append_legs([v, v], [0, 1, 2], [3, 3])
    with pytest.raises(ValueError, match="storage"):
        sim.set_storage([0], 0.5)
    with pytest.raises(ValueError, match="link indices"):
        sim.close_links([6])
    sim.schedule([0], [5.0])
    sim.advance(7.0)
    sim.remove([0])
    with pytest.raises(ValueError, match="taken off"):
        sim.divert(0, [2])
    # nothing of the rejected calls was applied
    assert sim.n_legs == 1 and sim.leg_of[v] == -1 and sim.n_closed == 0


# ------------------------------------------------ (c) 10,000 vehicles at noon, Baltimore


def test_baltimore_10k_vehicles_at_noon_conserved_at_every_step(shared):
    path = shared / "maps/world/baltimore.osm.pbf"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the Baltimore map is missing in CI ({path})")
        pytest.skip(f"the Baltimore map is not at {path}")
    from twin.network import RoadNetwork
    from twin.network.routing import Router

    net = RoadNetwork.load(path, "drive")
    router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
    rng = np.random.default_rng(12)

    def routes_for(n):
        o = rng.integers(0, net.n_nodes, 3 * n)
        d = rng.integers(0, net.n_nodes, 3 * n)
        rs = router.route(o, d)
        ok = np.flatnonzero(rs.reachable & (o != d))[:n]
        assert ok.size == n
        lens = np.diff(rs.route_indptr)[ok]
        links = np.concatenate([rs.links_of(i) for i in ok])
        return np.r_[0, np.cumsum(lens)], links

    noon = 12 * 3600.0
    # a late morning of 2,000 trips from the constructor, then 10,000 vehicles added at noon
    indptr0, links0 = routes_for(2000)
    sim = QueueSim(fftt_s=net.link_fftt_s, cap_veh_per_s=net.link_capacity_vph / 3600.0,
                   storage_veh=np.maximum(1.0, net.link_storage_veh), route_indptr=indptr0, route_links=links0,
                   t_start_s=11 * 3600.0, stuck_time_s=120.0, link_from_node=net.link_tail, link_to_node=net.link_head)
    sim.schedule(np.arange(2000), rng.uniform(11 * 3600.0, noon, 2000))
    sim.advance(noon)
    _check_conservation(sim)
    indptr, links = routes_for(10_000)
    ids = sim.add_vehicles(route_indptr=indptr, route_links=links, depart_s=noon + rng.uniform(0, 900, 10_000),
                           owner=np.arange(10_000))
    assert ids[0] == 2000 and sim.n_vehicles == 12_000
    closed = np.zeros(net.n_links, bool)
    t, n_div, n_closed_entries = noon, 0, None
    # one step per call (conservation at every step) for the first 20 minutes (departures, closure,
    # diversions), then 10-s calls
    for t in np.r_[noon + np.arange(1, 1201), noon + np.arange(1210, 3 * 3600 + 1, 10)].tolist():
        sim.advance(t)
        _check_conservation(sim)
        if t == noon + 600.0:
            # the 5 busiest links close; the vehicles still to enter them are rerouted around them
            busy = np.argsort(sim.link_volume.sum(axis=1))[-5:]
            closed[busy] = True
            sim.close_links(busy)
            router.set_weight(np.where(closed, np.inf, net.link_fftt_s))
            veh = sim.routed_through(busy)
            on = sim.status[veh] == STATUS_ON_LINK
            cur = sim.current_link[veh]
            src = np.where(on, net.link_head[cur], net.link_tail[cur])
            dest = net.link_head[sim.route_links[sim.r_end[veh] - 1]]
            rs = router.route(src, dest)
            ends_here = on & (src == dest)  # the rest of its leg is a loop: it ends at the current link
            lost = ~ends_here & (~rs.reachable | (src == dest))
            sim.remove(veh[lost])
            div = np.flatnonzero(~lost)
            lens = np.where(ends_here, 0, np.diff(rs.route_indptr))[div]
            sim.divert_many(veh[div], np.r_[0, np.cumsum(lens)],
                            np.concatenate([rs.links_of(j) for j in div[~ends_here[div]]] or [[]]))
            n_div = int(np.count_nonzero(lens))
            assert sim.routed_through(busy).size == 0
            n_closed_entries = sim.n_entries
        if t == noon + 1800.0:
            sim.remove(np.flatnonzero(sim.status == STATUS_ON_LINK)[::50])
    assert n_div > 100
    st = sim.status
    assert np.count_nonzero(st[ids] == STATUS_ARRIVED) > 9000
    assert sim.n_taken_off > 0
    # after the closure no vehicle entered a closed link
    late = sim.entries(n_closed_entries)
    assert late.pos.size > 10_000 and not closed[late.link].any()
    assert sim.n_finished == np.count_nonzero(st >= STATUS_ARRIVED)
