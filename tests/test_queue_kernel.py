"""Tests of the spatial-queue traffic kernel ``twin.kernels.queue``.

Networks are built by hand as arrays.  The kernel is checked against exact
free-flow times, bottleneck discharge, spillback, conservation invariants at every
step, its own pure-Python twin (``advance_queue.py_func``) and an independent,
literal per-step reference implementation written below with deques.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from twin.kernels.queue import ACC_EPS_VEH, QueueSim, advance_queue

# ----------------------------------------------------------------------------- helpers


def _sim(fftt_s, cap_veh_per_s, storage_veh, routes, **kw):
    routes = [list(r) for r in routes]
    indptr = np.r_[0, np.cumsum([len(r) for r in routes])].astype(np.int64)
    links = np.array([x for r in routes for x in r], dtype=np.int32)
    return QueueSim(fftt_s=np.asarray(fftt_s, float), cap_veh_per_s=np.asarray(cap_veh_per_s, float),
                    storage_veh=np.asarray(storage_veh, float), route_indptr=indptr,
                    route_links=links, **kw)


def _check_invariants(sim, *, strict_storage):
    st = sim.status
    assert sim.n_departed == sim.n_waiting + sim.n_on_links + sim.n_arrived
    assert sim.occ.sum() == np.count_nonzero(st == 2)
    assert np.all(sim.occ >= 0)
    if strict_storage:
        assert np.all(sim.occ <= np.ceil(sim.storage_veh))
    # queues hold exactly the on-link trips, each once, consistent with occ and pos
    seen = np.zeros(sim.n_trips, np.int64)
    for l in range(sim.n_links):
        v, n = sim.q_head[l], 0
        while v != -1:
            seen[v] += 1
            n += 1
            assert st[v] == 2
            assert sim.route_links[sim.route_indptr[v] + sim.pos[v]] == l
            last = v
            v = sim.nxt[v]
        assert n == sim.occ[l]
        assert (n == 0 and sim.q_tail[l] == -1) or (n > 0 and sim.q_tail[l] == last)
        v = sim.w_head[l]
        while v != -1:
            seen[v] += 1
            assert st[v] == 1
            assert sim.route_links[sim.route_indptr[v]] == l
            v = sim.nxt[v]
    assert np.array_equal(seen, ((st == 1) | (st == 2)).astype(np.int64))
    arrived = st == 3
    assert np.all(np.isfinite(sim.arrive_s[arrived]))
    assert np.all(np.isnan(sim.arrive_s[~arrived]))


def _grid_case(seed, *, n=6, n_trips=300, storage_hi=4.0, short_frac=0.0):
    """A directed n x n grid with random-walk routes (no link repeated in a route).

    A fraction ``short_frac`` of the links get a free-flow time below one step.
    """
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                a, b = i + di, j + dj
                if 0 <= a < n and 0 <= b < n:
                    src.append(i * n + j)
                    dst.append(a * n + b)
    n_links = len(src)
    out = [[] for _ in range(n * n)]
    for e, u in enumerate(src):
        out[u].append(e)
    routes = []
    for _ in range(n_trips):
        u = int(rng.integers(n * n))
        target = int(rng.integers(1, 11))
        used, r = set(), []
        while len(r) < target:
            cand = [e for e in out[u] if e not in used]
            if not cand:
                break
            e = cand[int(rng.integers(len(cand)))]
            used.add(e)
            r.append(e)
            u = dst[e]
        routes.append(r)
    fftt = rng.uniform(3.0, 20.0, n_links)
    short = rng.random(n_links) < short_frac
    fftt[short] = rng.uniform(0.0, 0.8, short.sum())
    fftt[short & (rng.random(n_links) < 0.3)] = 0.0
    cap = rng.uniform(0.1, 1.5, n_links)
    storage = rng.uniform(1.0, storage_hi, n_links)
    depart = rng.uniform(0.0, 300.0, n_trips)
    return fftt, cap, storage, routes, depart


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


def _reference(fftt, cap_step, storage, routes, depart, *, n_steps, dt_s=1.0, t_start_s=0.0,
               stuck_time_s=math.inf, n_hours=24, merge_seed=0):
    """Literal per-step implementation of the documented model (eager refill, full scans)."""
    L, N = len(fftt), len(routes)
    fftt = [float(x) for x in fftt]
    cap = [float(x) for x in cap_step]
    storage = [float(x) for x in storage]
    depart = [float(x) for x in depart]
    acc = list(cap)
    occ = [0] * L
    last = [-math.inf] * L
    q = [deque() for _ in range(L)]
    wl = [deque() for _ in range(L)]
    pos = [0] * N
    enter = [math.nan] * N
    ready = [math.nan] * N
    held = [False] * N
    hs = [math.nan] * N
    moved = [-1] * N
    arrive = [math.nan] * N
    exits = [[] for _ in range(N)]  # per trip, in route order: (link, exit time, link travel time)
    forced = 0
    asleep = [-1] * L  # the full link an asleep link waits on
    order = sorted((i for i in range(N) if math.isfinite(depart[i])), key=lambda i: (depart[i], i))
    p = 0
    for k in range(n_steps):
        t = t_start_s + k * dt_s
        for l in range(L):
            acc[l] = min(acc[l] + cap[l], cap[l])
        while p < len(order) and depart[order[p]] <= t:
            i = order[p]
            wl[routes[i][0]].append(i)
            p += 1
        for l in range(L):
            n_left = 0
            while q[l]:
                v = q[l][0]
                if ready[v] > t or moved[v] == k:
                    break
                if acc[l] <= ACC_EPS_VEH:
                    held[v] = True
                    break
                x = t if held[v] else max(ready[v], last[l])
                is_last = pos[v] == len(routes[v]) - 1
                if not is_last:
                    m = routes[v][pos[v] + 1]
                    if asleep[l] != -1 or occ[m] >= storage[m]:
                        held[v] = True
                        if math.isnan(hs[v]):
                            hs[v] = t
                        if t - hs[v] >= stuck_time_s:
                            forced += 1
                            asleep[l] = -1
                        else:
                            asleep[l] = m
                            break
                q[l].popleft()
                n_left += 1
                occ[l] -= 1
                acc[l] -= 1.0
                last[l] = x
                exits[v].append((l, x, x - enter[v]))
                if is_last:
                    arrive[v] = x
                else:
                    q[m].append(v)
                    occ[m] += 1
                    pos[v] += 1
                    enter[v] = x
                    ready[v] = x + fftt[m]
                    held[v] = False
                    hs[v] = math.nan
                    moved[v] = k
            sleepers = [u for u in range(L) if asleep[u] == l] if n_left else []
            for _ in range(min(n_left, len(sleepers))):
                u = min(sleepers, key=lambda u: (_ref_merge_key(merge_seed, k, l, u, cap[u]), u))
                sleepers.remove(u)
                asleep[u] = -1
        for l in range(L):
            while wl[l]:
                w = wl[l][0]
                if occ[l] >= storage[l]:
                    held[w] = True
                    break
                wl[l].popleft()
                q[l].append(w)
                occ[l] += 1
                # departure time if it enters in its departure step, not held; else now
                enter[w] = depart[w] if not held[w] and depart[w] > t_start_s + (k - 1) * dt_s else t
                ready[w] = enter[w] + fftt[l]
                held[w] = False
                moved[w] = k
    # link statistics: summed over trips in index order, along each route (documented order)
    vol = np.zeros((L, n_hours), np.int64)
    tt = np.zeros((L, n_hours))
    for v in range(N):
        for l, x, dur in exits[v]:
            h = min(max(int(x // 3600.0), 0), n_hours - 1)
            vol[l, h] += 1
            tt[l, h] += dur
    return np.array(arrive), vol, tt, forced


# ------------------------------------------------------------------------- free flow


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_single_link_free_flow_is_exact(backend):
    sim = _sim([12.345], [1.0], [5.0], [[0]], backend=backend)
    sim.schedule([0], [3.7])
    sim.advance(100.0)
    assert sim.status[0] == 3
    assert abs(sim.arrive_s[0] - (3.7 + 12.345)) <= 1e-9
    assert sim.link_volume[0].sum() == 1
    assert abs(sim.link_tt_sum_s[0].sum() - 12.345) <= 1e-9


@pytest.mark.parametrize("dt_s", [1.0, 2.5, 0.3])
def test_chain_free_flow_is_exact_across_bitset_words(dt_s):
    # 130 links, the route uses indices in three different 64-bit words, not in order
    n_links = 130
    rng = np.random.default_rng(1)
    fftt = rng.uniform(1.0, 30.0, n_links)
    route = [3, 70, 129, 64, 0]
    sim = _sim(fftt, np.full(n_links, 0.7), np.full(n_links, 2.0), [route, route[::-1]],
               dt_s=dt_s, n_hours=2)
    sim.schedule([0, 1], [3599.9, 11.11])
    sim.advance(4000.0)
    assert sim.n_arrived == 2
    assert abs(sim.arrive_s[0] - (3599.9 + fftt[route].sum())) <= 1e-9
    assert abs(sim.arrive_s[1] - (11.11 + fftt[route].sum())) <= 1e-9
    # every link of the route was left once by each trip; trip 0 left all links in hour 1
    vol = sim.link_volume
    assert vol.sum() == 10 and np.all(vol[route].sum(axis=1) == 2)
    assert np.all(vol[route, 1] == 1) and np.all(vol[route, 0] == 1)
    assert np.allclose(sim.link_tt_sum_s[route].sum(axis=1), 2 * fftt[route], atol=1e-9)


def test_short_links_one_link_per_step():
    # links shorter than a step: a vehicle still moves at most one link per step, but
    # the continuous exit times keep the arrival exact
    sim = _sim([0.2, 0.0, 0.3, 0.2, 0.25], np.ones(5), np.full(5, 2.0), [[0, 1, 2, 3, 4]])
    sim.schedule([0], [0.5])
    sim.advance(2.0)  # steps 0, 1: departs and enters link 0 at step 1
    assert sim.status[0] == 2 and sim.pos[0] == 0 and sim.enter_s[0] == 0.5
    sim.advance(3.0)
    assert sim.pos[0] == 1 and abs(sim.enter_s[0] - 0.7) <= 1e-12
    sim.advance(6.0)  # steps 3, 4, 5: onto links 2, 3, 4
    assert sim.status[0] == 2 and sim.pos[0] == 4
    sim.advance(7.0)  # step 6: arrival
    assert sim.status[0] == 3
    assert abs(sim.arrive_s[0] - (0.5 + 0.95)) <= 1e-9


def test_link_stats_hour_bins():
    sim = _sim([10.5, 20.0], [1.0, 1.0], [5.0, 5.0], [[0], [0], [0, 1]], n_hours=2)
    sim.schedule([0, 1, 2], [3589.0, 3589.5 - 12.0, 7190.0])
    sim.advance(8000.0)
    # trips 0 and 1 leave link 0 at 3599.5 and 3588.0 (hour 0)
    assert sim.arrive_s[0] == 3599.5 and sim.arrive_s[1] == 3588.0
    # trip 2 leaves link 0 at 7200.5 and link 1 at 7220.5: hour 2 is clamped to the last bin
    assert sim.arrive_s[2] == 7220.5
    assert sim.link_volume.tolist() == [[2, 1], [0, 1]]
    assert sim.link_tt_sum_s.tolist() == [[21.0, 10.5], [0.0, 20.0]]
    sim2 = _sim([10.5], [1.0], [5.0], [[0]], n_hours=3)
    sim2.schedule([0], [3590.0])
    sim2.advance(4000.0)
    assert sim2.arrive_s[0] == 3600.5 and sim2.link_volume.tolist() == [[0, 1, 0]]


def test_advance_runs_steps_strictly_before_t_end():
    sim = _sim([1.0], [1.0], [5.0], [[0]], dt_s=2.5, t_start_s=10.0)
    assert sim.t_s == 10.0
    sim.advance(15.0)  # steps at 10.0 and 12.5
    assert sim.t_s == 15.0 and sim.step == 2
    sim.advance(15.0)
    assert sim.t_s == 15.0
    sim.advance(15.1)
    assert sim.t_s == 17.5
    # a departure in (last step, t_end) is handed over again in the next call
    sim.schedule([0], [17.6])
    sim.advance(19.0)  # step 17.5 only: not departed yet
    assert sim.status[0] == 0
    sim.advance(30.0)
    assert sim.status[0] == 3 and abs(sim.arrive_s[0] - 18.6) <= 1e-9


# ------------------------------------------------------------------------ bottleneck


@pytest.mark.parametrize("backend", ["numba", "python"])
@pytest.mark.parametrize("mu", [0.5, 1.8, 0.3])
def test_bottleneck_discharges_at_capacity(mu, backend):
    n_veh, fftt, dep = 100, 10.0, 2.0
    sim = _sim([fftt], [mu], [1000.0], [[0]] * n_veh, backend=backend)
    sim.schedule(np.arange(n_veh), dep)
    per_step = []
    while sim.n_arrived < n_veh:
        assert sim.t_s < 1000
        per_step.append(sim.advance(sim.t_s + 1.0))
    per_step = np.array(per_step)
    # no window of w steps carries more than mu*w + 1 exits
    c = np.r_[0, np.cumsum(per_step)]
    for w in range(1, len(per_step) + 1):
        assert (c[w:] - c[:-w]).max() <= mu * w + 1 + 1e-9, w
    tau = dep + fftt
    a = np.sort(sim.arrive_s)
    assert a[0] == tau
    assert abs(a[-1] + 1 / mu - (tau + n_veh / mu)) <= 1.0
    rate = n_veh / (a[-1] + 1 / mu - tau)
    assert abs(rate / mu - 1) <= 0.02
    # FIFO: trips left in departure (= trip id) order
    assert np.all(np.diff(sim.arrive_s) >= 0)


# ------------------------------------------------------------------------- spillback


def _spillback_run(storage_b, stuck_time_s):
    # A(0) -> B(1) -> C(2); C discharges 1 veh / 20 s and stores 2, B stores storage_b
    n_veh = 10
    sim = _sim([5.0, 5.0, 5.0], [10.0, 10.0, 0.05], [100.0, storage_b, 2.0],
               [[0, 1, 2]] * n_veh, stuck_time_s=stuck_time_s)
    sim.schedule(np.arange(n_veh), 0.0)
    exit_a = np.full(n_veh, np.nan)
    max_occ = np.zeros(3, np.int64)
    while sim.n_arrived < n_veh and sim.t_s < 2000:
        sim.advance(sim.t_s + 1.0)
        _check_invariants(sim, strict_storage=not math.isfinite(stuck_time_s))
        max_occ = np.maximum(max_occ, sim.occ)
        new = np.isnan(exit_a) & (sim.pos >= 1)
        exit_a[new] = sim.enter_s[new]  # pos moves by at most one link per step
    assert sim.n_arrived == n_veh
    return sim, exit_a, max_occ


def test_spillback_blocks_upstream_link():
    free, exit_free, _ = _spillback_run(100.0, math.inf)
    assert np.all(exit_free == 5.0)
    sim, exit_a, max_occ = _spillback_run(3.0, math.inf)
    assert max_occ[1] == 3 and max_occ[2] == 2
    assert sim.n_forced_moves == 0
    # only B's 3 slots are free at t = 5; the others wait on A for B to drain
    assert np.count_nonzero(exit_a == 5.0) == 3
    assert np.all(exit_a[3:] > 5.0 + 1.0)
    assert np.nanmax(exit_a) > 90.0  # the last one waits for 4 discharges of C (20 s each)
    assert np.all(np.diff(exit_a) >= 0)
    # C's capacity is the bottleneck in both runs
    assert np.all(np.diff(np.sort(sim.arrive_s)) >= 20.0 - 1e-9)
    link_tt_a = sim.link_tt_sum_s[0].sum() / sim.link_volume[0].sum()
    assert link_tt_a > free.link_tt_sum_s[0].sum() / free.link_volume[0].sum() + 10


def test_spillback_stuck_vehicles_are_forced():
    sim, exit_a, max_occ = _spillback_run(3.0, 10.0)
    assert sim.n_forced_moves > 0
    assert max_occ[1] > 3 or max_occ[2] > 2
    # forced moves let vehicles leave A earlier than under strict storage
    _, exit_strict, _ = _spillback_run(3.0, math.inf)
    assert np.nanmax(exit_a) < np.nanmax(exit_strict)


# --------------------------------------------------------------------- conservation


def test_conservation_every_step_random_grid():
    fftt, cap, storage, routes, depart = _grid_case(7)
    sim = _sim(fftt, cap, storage, routes)
    sim.schedule(np.arange(len(routes)), depart)
    max_queue = 0
    for _ in range(900):
        sim.advance(sim.t_s + 1.0)
        _check_invariants(sim, strict_storage=True)
        max_queue = max(max_queue, sim.n_waiting)
    assert sim.n_departed == len(routes)
    assert max_queue > 0  # storage is small enough for queues to form

    sim = _sim(fftt, cap, storage, routes, stuck_time_s=10.0)
    sim.schedule(np.arange(len(routes)), depart)
    while sim.n_arrived < len(routes):
        assert sim.t_s < 20000, "not all trips arrived"
        sim.advance(sim.t_s + 1.0)
        _check_invariants(sim, strict_storage=False)
    assert np.all(sim.status == 3)
    min_tt = np.array([fftt[r].sum() for r in routes])
    assert np.all(sim.arrive_s >= depart + min_tt - 1e-9)
    assert sim.link_volume.sum() == sum(len(r) for r in routes)  # each link left exactly once
    assert sim.n_forced_moves > 0


@pytest.mark.parametrize("seed, stuck_time_s, short_frac",
                         [(3, math.inf, 0.0), (11, math.inf, 0.0), (11, 10.0, 0.0), (5, 25.0, 0.3),
                          (8, math.inf, 0.4)])
def test_matches_literal_reference(seed, stuck_time_s, short_frac):
    # seed 11 with stuck_time_s = inf gridlocks (not all trips arrive): compared all the same
    fftt, cap, storage, routes, depart = _grid_case(seed, short_frac=short_frac)
    n_steps = 1500
    sim = _sim(fftt, cap, storage, routes, stuck_time_s=stuck_time_s)
    sim.schedule(np.arange(len(routes)), depart)
    for t_end in (1.0, 57.5, 300.0, 301.0, float(n_steps)):  # uneven chunks
        sim.advance(t_end)
    arrive, vol, tt, forced = _reference(fftt, sim.cap_veh_per_step, storage, routes, depart,
                                         n_steps=n_steps, stuck_time_s=stuck_time_s)
    assert np.array_equal(sim.arrive_s, arrive, equal_nan=True)
    assert np.array_equal(sim.link_volume, vol)
    assert np.array_equal(sim.link_tt_sum_s, tt)
    assert sim.n_forced_moves == forced
    assert sim.n_arrived > len(routes) // 2
    # the finish log lists every arrived trip once
    fin = sim.finished()
    assert fin.size == sim.n_finished == np.count_nonzero(sim.status >= 3)
    assert np.array_equal(np.sort(fin), np.flatnonzero(sim.status >= 3))
    assert np.array_equal(sim.finished(5), fin[5:])
    if math.isfinite(stuck_time_s):
        assert sim.n_arrived == len(routes)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_departure_calendar_crowded_steps_and_reschedules(backend):
    # departures are filed in a calendar when scheduled (file_departures); crowded steps (more
    # than 32 departures: the sorted path), ties on depart_s (broken by trip id) and trips
    # rescheduled before and during the run must depart exactly as the literal reference says
    fftt, cap, storage, routes, depart = _grid_case(3)
    n = len(routes)
    rng = np.random.default_rng(4)
    depart = depart.copy()
    crowd = rng.random(n) < 0.6
    depart[crowd] = rng.choice([0.0, 12.5, 12.7, 250.0], crowd.sum())
    assert np.bincount(np.ceil(depart[crowd]).astype(int)).max() > 32
    late = depart + rng.uniform(1.0, 500.0, n)
    sim = _sim(fftt, cap, storage, routes, stuck_time_s=25.0, backend=backend)
    sim.schedule(np.arange(n), late)  # wrong times first, then rescheduled in two batches
    order = rng.permutation(n)
    sim.schedule(order[: n // 2], depart[order[: n // 2]])
    sim.schedule(order[n // 2:], depart[order[n // 2:]])
    sim.advance(100.0)
    # trips still to leave: move some away and back, reschedule others to the same time
    todo = np.flatnonzero(depart >= 100.0)
    assert todo.size > 10 and np.all(sim.status[todo] == 0)
    sim.schedule(todo[::2], late[todo[::2]])
    sim.schedule(todo, depart[todo])
    sim.advance(1500.0)
    arrive, vol, tt, forced = _reference(fftt, sim.cap_veh_per_step, storage, routes, depart, n_steps=1500,
                                         stuck_time_s=25.0)
    assert np.array_equal(sim.arrive_s, arrive, equal_nan=True)
    assert np.array_equal(sim.link_volume, vol) and np.array_equal(sim.link_tt_sum_s, tt)
    assert sim.n_arrived == n


@pytest.mark.parametrize("ids, dep, match", [
    ([1, 3], [5.0, 20.0], r"in \[0, 3\)"),
    ([-1], [5.0], r"in \[0, 3\)"),
    ([1, 1], [5.0, 6.0], "distinct"),
    ([1, 2], [5.0, np.inf], "finite"),
    ([1, 2], [np.nan, 5.0], "finite"),
    ([2, 1], [5.0, 1.0], "past"),
    ([1, 0], [20.0, 30.0], "departed"),
])
def test_schedule_rejects_bad_calls_and_files_nothing(ids, dep, match):
    sim = _sim([5.0], [1.0], [10.0], [[0], [0], [0]])
    sim.schedule([0], [0.0])
    sim.advance(3.0)  # trip 0 departed; t_s = 3
    with pytest.raises(ValueError, match=match):
        sim.schedule(ids, dep)
    # nothing of the rejected call was filed, and the scratch marks were cleared: a valid call works
    assert np.isinf(sim.depart_s[1:]).all()
    sim.schedule([1, 2], [4.0, 4.0])
    sim.advance(20.0)
    assert sim.status.tolist() == [3, 3, 3]


def test_depart_s_is_set_through_schedule_only():
    # a departure time written into the array would never reach the departure calendar
    sim = _sim([5.0], [1.0], [10.0], [[0]])
    with pytest.raises(ValueError):
        sim.depart_s[0] = 1.0
    sim.schedule([0], [1.0])
    assert sim.depart_s[0] == 1.0


def test_departure_beyond_the_calendar_ring():
    # a departure more steps ahead than the calendar ring is filed again when its bucket comes round
    from twin.kernels.queue import DEPARTURE_CALENDAR_STEPS as W
    sim = _sim([5.0], [1.0], [10.0], [[0], [0], [0]], dt_s=1.0)
    dep = np.array([2.5 * W + 0.25, 1.0 * W - 1.0, 3.0])
    sim.schedule([0, 1, 2], dep)
    sim.advance(2.5 * W + 2.0)
    assert sim.status[0] == 2 and sim.status[1] == 3 and sim.status[2] == 3
    # the trip enters its link at its departure time (the first step at or after it)
    assert sim.enter_s[0] == dep[0]
    sim.advance(2.5 * W + 10.0)
    assert sim.arrive_s.tolist() == [dep[0] + 5.0, dep[1] + 5.0, dep[2] + 5.0]


def test_numba_equals_python_twin():
    fftt, cap, storage, routes, depart = _grid_case(11, short_frac=0.2)
    sims = {}
    for backend in ("numba", "python"):
        sim = _sim(fftt, cap, storage, routes, stuck_time_s=10.0, backend=backend)
        sim.schedule(np.arange(len(routes)), depart)
        t = 0.0
        while sim.n_arrived < len(routes):
            assert t < 20000
            t += 250.0
            sim.advance(t)
        sims[backend] = sim
    a, b = sims["numba"], sims["python"]
    assert np.array_equal(a.arrive_s, b.arrive_s)
    assert np.array_equal(a.link_volume, b.link_volume)
    assert np.array_equal(a.link_tt_sum_s, b.link_tt_sum_s)
    assert np.array_equal(a.enter_s, b.enter_s)
    assert a.n_forced_moves == b.n_forced_moves > 0
    assert b._kernel is advance_queue.py_func and a._kernel is advance_queue


# ------------------------------------------------------------------ scheduling / API


def test_return_trip_scheduled_after_arrival():
    sim = _sim([7.25, 9.5], [1.0, 1.0], [3.0, 3.0], [[0, 1], [1, 0]])
    sim.schedule([0], [1.5])
    while sim.status[0] != 3:
        assert sim.t_s < 100
        sim.advance(sim.t_s + 1.0)
    assert abs(sim.arrive_s[0] - 18.25) <= 1e-9
    assert sim.status[1] == 0
    with pytest.raises(ValueError, match="past"):
        sim.schedule([1], [sim.t_s - 0.5])
    with pytest.raises(ValueError, match="departed"):
        sim.schedule([0], [sim.t_s + 1.0])
    dep_back = sim.t_s + 0.3
    sim.schedule([1], [dep_back])
    sim.advance(sim.t_s + 100.0)
    assert sim.status[1] == 3
    assert abs(sim.arrive_s[1] - (dep_back + 16.75)) <= 1e-9
    assert sim.n_arrived == 2 and sim.n_departed == 2


def test_unscheduled_trips_never_depart_and_reschedule():
    sim = _sim([5.0], [1.0], [3.0], [[0], [0]])
    sim.schedule([0, 1], [50.0, 60.0])
    sim.schedule([1], [20.0])  # rescheduling before departure is allowed
    sim.advance(40.0)
    assert sim.status.tolist() == [0, 3]
    assert sim.arrive_s[1] == 25.0
    sim.advance(100.0)
    assert sim.status.tolist() == [3, 3]
    with pytest.raises(ValueError):
        sim.schedule([2], [200.0])
    with pytest.raises(ValueError):
        sim.schedule([0, 0], [200.0, 300.0])


def _valid():
    return dict(fftt_s=[1.0, 2.0], cap_veh_per_s=[1.0, 1.0], storage_veh=[2.0, 2.0],
                route_indptr=[0, 1, 3], route_links=[0, 0, 1])


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(storage_veh=[0.5, 2.0]), "storage"),
        (dict(cap_veh_per_s=[0.0, 1.0]), "cap"),
        (dict(cap_veh_per_s=[1.0, -1.0]), "cap"),
        (dict(fftt_s=[-1.0, 2.0]), "fftt"),
        (dict(fftt_s=[np.nan, 2.0]), "fftt"),
        (dict(fftt_s=[1.0, 2.0, 3.0]), "same length"),
        (dict(storage_veh=[[2.0, 2.0]]), "1-D"),
        (dict(route_indptr=[0, 1, 1, 3]), "at least one link"),
        (dict(route_indptr=[1, 2, 3]), "start"),
        (dict(route_indptr=[0, 1, 2]), "len"),
        (dict(route_links=[0, 0, 2]), "link indices"),
        (dict(route_links=[0, 0, -1]), "link indices"),
        (dict(dt_s=0.0), "dt_s"),
        (dict(backend="cuda"), "backend"),
        (dict(n_hours=0), "n_hours"),
        (dict(stuck_time_s=-1.0), "stuck"),
    ],
)
def test_invalid_inputs_raise(change, match):
    QueueSim(**_valid())  # the baseline is valid
    with pytest.raises(ValueError, match=match):
        QueueSim(**{**_valid(), **change})


# ------------------------------------------------------- calendar of due links (speed-up)


@pytest.mark.parametrize("calendar_steps", [1, 3, 1024])
@pytest.mark.parametrize("seed, stuck_time_s, dt_s, t_start_s",
                         [(3, math.inf, 1.0, 0.0), (11, 10.0, 0.7, 12345.678), (5, 25.0, 1 / 3, 1e5 + 0.1)])
def test_calendar_matches_literal_reference(monkeypatch, calendar_steps, seed, stuck_time_s, dt_s,
                                            t_start_s):
    # a tiny ring refiles links due beyond it; odd dt / t_start exercise the float step search
    import twin.kernels.queue as qmod

    monkeypatch.setattr(qmod, "CALENDAR_STEPS", calendar_steps)
    fftt, cap, storage, routes, depart = _grid_case(seed, short_frac=0.2)
    depart = t_start_s + depart
    n_steps = 1200
    sim = _sim(fftt, cap, storage, routes, stuck_time_s=stuck_time_s, dt_s=dt_s, t_start_s=t_start_s)
    assert sim._cal_head.shape[0] == calendar_steps
    sim.schedule(np.arange(len(routes)), depart)
    for frac in (0.001, 0.2, 0.21, 0.5, 1.0):  # uneven chunks, one of them much longer than the ring
        sim.advance(t_start_s + frac * n_steps * dt_s)
    assert sim.step == n_steps
    arrive, vol, tt, forced = _reference(fftt, sim.cap_veh_per_step, storage, routes, depart,
                                         n_steps=n_steps, dt_s=dt_s, t_start_s=t_start_s,
                                         stuck_time_s=stuck_time_s)
    assert np.array_equal(sim.arrive_s, arrive, equal_nan=True)
    assert np.array_equal(sim.link_volume, vol)
    assert np.array_equal(sim.link_tt_sum_s, tt)
    assert sim.n_forced_moves == forced
    assert sim.n_arrived > len(routes) // 3
    # the scratch list is empty between calls; the asleep lists are state
    assert np.all(sim._wd_flag == 0)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_storage_wake_up_across_bitset_summary_words(backend):
    # Links far apart in index (different words of due_bits and of its summary due_sum):
    # heads blocked by storage of a downstream link are woken up in the same step when
    # they come after it in index order and in the next step otherwise.
    n_links = 9000
    fftt = np.full(n_links, 4.0)
    cap = np.full(n_links, 2.0)
    storage = np.full(n_links, 50.0)
    bott, after, before, mid = 10, 4500, 3, 8500  # bott: the shared bottleneck
    same_word, same_sum = 40, 700
    cap[bott] = 0.1
    storage[bott] = 2.0
    routes = ([[after, bott]] * 6 + [[before, bott]] * 6 + [[mid, bott, after]] * 4
              + [[bott]] * 2 + [[same_word, bott]] * 3 + [[same_sum, bott]] * 3)
    depart = np.r_[np.linspace(0, 3, 6), np.linspace(0.5, 3.5, 6), np.linspace(1, 2, 4), [0.0, 0.2],
                   np.linspace(0.3, 2.3, 3), np.linspace(0.1, 1.9, 3)]
    for stuck in (math.inf, 30.0):
        sim = _sim(fftt, cap, storage, routes, stuck_time_s=stuck, backend=backend)
        sim.schedule(np.arange(len(routes)), depart)
        for t_end in (7.0, 50.0, 51.0, 400.0):
            sim.advance(t_end)
        arrive, vol, tt, forced = _reference(fftt, sim.cap_veh_per_step, storage, routes, depart,
                                             n_steps=400, stuck_time_s=stuck)
        assert np.array_equal(sim.arrive_s, arrive, equal_nan=True)
        assert np.array_equal(sim.link_volume, vol)
        assert np.array_equal(sim.link_tt_sum_s, tt)
        assert sim.n_forced_moves == forced
        assert sim.n_arrived == len(routes)
        if math.isfinite(stuck):
            assert forced > 0


def test_changes_between_calls_match_a_look_at_every_step():
    # capacity / free-flow time / storage changed between calls (policies): the kernel
    # must behave as the per-step scan it replaces; checked against a run in 1-step calls
    # (every link with a non-empty queue is looked at in every call's first step).
    fftt, cap, storage, routes, depart = _grid_case(4, short_frac=0.2)
    rng = np.random.default_rng(0)
    sims = [_sim(fftt, cap, storage, routes, stuck_time_s=20.0) for _ in range(2)]
    for s in sims:
        s.schedule(np.arange(len(routes)), depart)
    t = 0.0
    for _ in range(12):
        t += 100.0
        sims[0].advance(t)
        while sims[1].t_s < t:
            sims[1].advance(sims[1].t_s + 1.0)
        new_cap = sims[0].cap_veh_per_step * rng.uniform(0.3, 1.5, sims[0].n_links)
        new_fftt = sims[0].fftt_s * rng.uniform(0.5, 2.0, sims[0].n_links)
        new_storage = np.maximum(1.0, sims[0].storage_veh * rng.uniform(0.7, 1.3, sims[0].n_links))
        for s in sims:
            s.cap_veh_per_step[:] = new_cap
            s.fftt_s[:] = new_fftt
            s.storage_veh[:] = new_storage
    a, b = sims
    for name in ("arrive_s", "link_volume", "link_tt_sum_s", "acc_veh", "acc_step", "held",
                 "held_since_s", "enter_s", "status", "occ"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.n_forced_moves == b.n_forced_moves
    assert a.n_arrived > len(routes) // 2


def test_numba_equals_python_twin_stuck_remove():
    fftt, cap, storage, routes, depart = _grid_case(11, short_frac=0.2)
    sims = {}
    for backend in ("numba", "python"):
        sim = _sim(fftt, cap, storage, routes, stuck_time_s=15.0, stuck_action="remove", backend=backend)
        sim.schedule(np.arange(len(routes)), depart)
        for t_end in (33.3, 250.0, 251.0, 1500.0):
            sim.advance(t_end)
        sims[backend] = sim
    a, b = sims["numba"], sims["python"]
    for name in ("arrive_s", "link_volume", "link_tt_sum_s", "status", "route_enter_s"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.n_removed == b.n_removed > 0


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_waiting_list_follower_enters_at_its_entry_time_not_its_departure(backend):
    """Regression: a car that waited in a departure list behind a blocked head entered (in the
    records) at its departure time, steps back. Now a car that does not enter in its departure step
    enters at the step's time, as the blocked head does; one that enters at once keeps its exact
    departure time."""
    # link 0 stores 2 and lets 2 out per step; a, b fill it at 0.5; c, d wait behind them
    sim = _sim([10.0, 5.0], [2.0, 10.0], [2.0, 100.0], [[0, 1]] * 4, backend=backend)
    sim.schedule(np.arange(4), np.array([0.5, 0.5, 0.7, 0.7]))
    sim.advance(60.0)
    ip = np.arange(0, 9, 2)
    first_entry = sim.route_enter_s[ip[:-1]]
    assert first_entry[0] == first_entry[1] == 0.5  # entered in their departure step
    assert first_entry[2] == first_entry[3] == 11.0  # entered when a and b left, at t = 11
    # link 0's travel time of c and d counts from their entry, not from their departure
    assert sim.link_tt_sum_s[0].sum() == pytest.approx(2 * 10.0 + 2 * 10.0)
