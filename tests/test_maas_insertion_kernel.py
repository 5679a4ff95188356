"""The compiled fleet insertion (twin.kernels.insertion.best_insertion_fleet) against the Python
reference (twin.domains.maas.insertion.best_insertion), on random schedules and travel times:
same vehicle, same positions, same added drive time (bit for bit); and paths read off trees."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from twin.domains.maas.insertion import RequestLimits, best_insertion, schedule_row
from twin.kernels.insertion import (
    best_insertion_fleet,
    best_insertion_table,
    nearest_candidates,
    tree_path_from,
    tree_path_to,
)


def random_vehicle(rng, n_nodes, t0, seats):
    """A random valid schedule: some passengers on board (drop-offs only), some waiting (pick-up
    then drop-off), in a random order that keeps each pick-up before its drop-off."""
    reqs: dict[int, RequestLimits] = {}
    onboard = int(rng.integers(0, seats + 1))
    events = []
    rid = 0
    for _ in range(onboard):
        reqs[rid] = RequestLimits(t0 - 100.0, t0 - 50.0, float(rng.uniform(50, 600)),
                                  picked_up_s=t0 - rng.uniform(0, 300))
        events.append([(int(rng.integers(n_nodes)), rid, False)])
        rid += 1
    for _ in range(int(rng.integers(0, 3))):
        e = t0 + float(rng.uniform(-60, 120))
        reqs[rid] = RequestLimits(e, e + float(rng.uniform(0, 600)), float(rng.uniform(50, 900)))
        events.append([(int(rng.integers(n_nodes)), rid, True), (int(rng.integers(n_nodes)), rid, False)])
        rid += 1
    stops = []
    while any(events):
        live = [q for q in events if q]
        q = live[int(rng.integers(len(live)))]
        stops.append(q.pop(0))
    return stops, reqs, onboard


def compare(seed: int) -> bool:
    """Kernel and reference on one random case; whether a vehicle was found."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 14))
    M = rng.uniform(5, 200, size=(n, n)).round(int(rng.integers(0, 3)))  # rounding makes ties
    np.fill_diagonal(M, 0.0)
    if seed % 5 == 0:
        M[rng.integers(n), rng.integers(n)] = math.inf  # an unreachable pair
    seats = int(rng.integers(1, 5))
    dwell = float(rng.choice([0.0, 15.0]))
    t0 = 1000.0
    n_veh = int(rng.integers(1, 7))
    vehs = [random_vehicle(rng, n, t0, seats) for _ in range(n_veh)]
    start_node = rng.integers(n, size=n_veh).astype(np.int64)
    start_t = t0 + rng.uniform(0, 60, size=n_veh).round()
    new = 999
    pick, drop = int(rng.integers(n)), int(rng.integers(n))
    lim = RequestLimits(t0, t0 + float(rng.uniform(60, 900)), float(rng.uniform(100, 1200)))

    def tt(a, b):
        return M[a, b]

    # the reference: each vehicle in turn, the strictly better one (by more than 1e-9) wins
    best = None
    for c, (stops, reqs, onboard) in enumerate(vehs):
        if math.isinf(M[start_node[c], stops[0][0]] if stops else 0.0):
            continue  # the reference refuses an old schedule with an unreachable leg
        if any(math.isinf(M[a[0], b[0]]) for a, b in zip(stops, stops[1:])):
            continue
        ins = best_insertion(start_node=int(start_node[c]), start_t_s=float(start_t[c]), onboard=onboard, seats=seats,
                             stops_node=np.array([s[0] for s in stops], np.int64),
                             stops_request=np.array([s[1] for s in stops], np.int64),
                             stops_is_pickup=np.array([s[2] for s in stops], bool), requests=reqs, new_request=new,
                             new_pick_node=pick, new_drop_node=drop, new_limits=lim, tt=tt, dwell_s=dwell)
        if ins is not None and (best is None or ins.added_drive_s < best[1].added_drive_s - 1e-9):
            best = (c, ins)
    # the kernel: one table, all vehicles in one call
    kmax = max(1, max(len(v[0]) for v in vehs))
    shape = (n_veh, kmax)
    T = {k: np.zeros(shape, dt) for k, dt in (("node", np.int64), ("pick", bool), ("partner", np.int64))}
    F = {k: np.full(shape, np.nan) for k in ("earliest", "latest", "ride", "picked", "leg")}
    sch_n = np.zeros(n_veh, np.int64)
    first = np.zeros(n_veh)
    onb = np.zeros(n_veh, np.int64)
    for c, (stops, reqs, onboard) in enumerate(vehs):
        k = len(stops)
        sch_n[c] = k
        onb[c] = onboard
        if not k:
            continue
        nodes = np.array([s[0] for s in stops], np.int64)
        e, la, mr, pa, pu = schedule_row(np.array([s[1] for s in stops], np.int64),
                                         np.array([s[2] for s in stops], bool), reqs)
        T["node"][c, :k], T["pick"][c, :k], T["partner"][c, :k] = nodes, [s[2] for s in stops], pa
        F["earliest"][c, :k], F["latest"][c, :k], F["ride"][c, :k], F["picked"][c, :k] = e, la, mr, pu
        F["leg"][c, 1:k] = M[nodes[:-1], nodes[1:]]
        first[c] = M[start_node[c], nodes[0]]
    got = best_insertion_fleet(np.arange(n_veh, dtype=np.int64), start_t, onb, first, seats, dwell, sch_n,
                               T["node"], T["pick"], F["earliest"], F["latest"], F["ride"], T["partner"], F["picked"],
                               F["leg"], M[:, pick].copy(), M[pick, :].copy(), M[:, drop].copy(), M[drop, :].copy(),
                               start_node, float(M[pick, drop]), lim.earliest_pick_s, lim.latest_pick_s, lim.max_ride_s)
    check_table(rng, n_veh, start_node, start_t, onb, first, seats, dwell, sch_n, T, F, M, pick, drop, lim, got)
    if best is None:
        assert got[0] == -1
        return False
    c, ins = best
    assert (got[0], got[1], got[2]) == (c, ins.pick_pos, ins.drop_pos)
    assert got[3] == ins.added_drive_s
    return True


def check_table(rng, n_veh, start_node, start_t, onb, first, seats, dwell, sch_n, T, F, M, pick, drop, lim, got):
    """best_insertion_table (the vehicles as rows of a larger fleet table, legs from the table or
    the request's trees) gives best_insertion_fleet's answer, and lists stale rows and first legs."""
    n_rows = n_veh + 3
    row = rng.permutation(n_rows)[:n_veh]
    kmax = T["node"].shape[1]
    tab_n = np.zeros(n_rows, np.int64)
    tab_n[row] = sch_n
    tabs = []
    for src, fill in ((T["node"], 0), (T["pick"], False), (F["earliest"], -np.inf), (F["latest"], np.inf),
                      (F["ride"], np.inf), (T["partner"], -1), (F["picked"], np.nan), (F["leg"], np.nan)):
        t = np.full((n_rows, kmax + 2), fill, dtype=src.dtype)
        t[row, :kmax] = src
        tabs.append(t)
    stamp = rng.integers(0, 5, n_rows)
    row_stamp, row_ver = stamp.copy(), np.full(n_rows, 7)
    first_node = np.full(n_rows, -1, np.int64)
    first_node[row] = start_node
    first_leg = np.full(n_rows, np.nan)
    first_leg[row] = first
    first_ver = np.full(n_rows, 7)
    trees = (M[:, pick].copy(), M[pick, :].copy(), M[:, drop].copy(), M[drop, :].copy())
    missing = np.empty(2 * n_veh, np.int64)

    def call():
        return best_insertion_table(row.astype(np.int64), start_node, start_t, onb, seats, dwell, tab_n, *tabs,
                                    row_stamp, stamp, row_ver, first_node, first_leg, first_ver, 7, *trees, pick,
                                    drop, float(M[pick, drop]), lim.earliest_pick_s, lim.latest_pick_s,
                                    lim.max_ride_s, missing)

    c, pp, dp, added, m = call()
    assert m == 0 and (c, pp, dp) == tuple(got[:3]) and (c < 0 or added == got[3])
    # a changed schedule, or legs on older link times: that row is listed, nothing computed
    q = int(rng.integers(n_veh))
    row_stamp[row[q]] -= 1
    c, _, _, _, m = call()
    assert c == -1 and 2 * q in missing[:m].tolist()
    row_stamp[row[q]] += 1
    # a first leg from another node: listed, unless the leg is read from the request's trees
    with_stops = [x for x in range(n_veh) if sch_n[x] and pick not in (start_node[x], T["node"][x, 0])
                  and drop not in (start_node[x], T["node"][x, 0])]
    if with_stops:
        first_node[row[with_stops[0]]] = -1
        c, _, _, _, m = call()
        assert missing[:m].tolist() == [2 * with_stops[0] + 1]


@pytest.mark.parametrize("seed", range(60))
def test_nearest_candidates_are_a_stable_sort(seed):
    """nearest_candidates = the reachable vehicles sorted by reach (stable), the first n_busy not
    idle and n_idle idle ones, in index order."""
    rng = np.random.default_rng(seed)
    n, n_nodes = int(rng.integers(0, 80)), 30
    st_node = rng.integers(n_nodes, size=n).astype(np.int64)
    st_t = rng.uniform(0, 50, n).round()
    st_t[rng.random(n) < 0.1] = np.inf
    st_idle = rng.random(n) < 0.4
    to_pick = rng.uniform(0, 300, n_nodes).round(int(rng.integers(0, 2)))  # rounding makes ties
    to_pick[rng.random(n_nodes) < 0.1] = np.inf
    b_s, waited, max_wait = 10.0, float(rng.uniform(0, 100)), 300.0
    n_busy, n_idle = int(rng.integers(1, 16)), int(rng.integers(1, 3))
    reach = st_t - b_s + to_pick[st_node]
    ok = np.flatnonzero(np.isfinite(reach) & (waited + reach <= max_wait + 1e-9))
    ok = ok[np.argsort(reach[ok], kind="stable")]
    want = np.sort(np.concatenate([ok[~st_idle[ok]][:n_busy], ok[st_idle[ok]][:n_idle]]))
    got = nearest_candidates(st_node, st_t, st_idle, to_pick, b_s, waited, max_wait, n_busy, n_idle)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("seed", range(60))
def test_kernel_matches_reference(seed):
    compare(seed)


def test_random_cases_both_insert_and_refuse():
    """The random cases are not all one outcome (guards the generator)."""
    found = [compare(seed) for seed in range(60)]
    assert 10 <= sum(found) <= 50


def test_tree_paths_are_least_time_paths_of_networkx():
    rng = np.random.default_rng(3)
    g = nx.gnm_random_graph(40, 160, seed=3, directed=True)
    tail = np.array([u for u, v in g.edges], np.int64)
    head = np.array([v for u, v in g.edges], np.int64)
    w = rng.uniform(1, 10, size=tail.size)
    for u, v, x in zip(tail, head, w, strict=True):
        g[u][v]["w"] = x
    # trees by networkx: predecessors give the forward tree; the reverse graph gives next links
    link_of = {(int(u), int(v)): k for k, (u, v) in enumerate(zip(tail, head, strict=True))}
    src = 0
    paths = nx.single_source_dijkstra_path(g, src, weight="w")
    pred = np.full(40, -1, np.int64)
    for node, p in paths.items():
        if len(p) > 1:
            pred[node] = link_of[(p[-2], p[-1])]
    rpaths = nx.single_source_dijkstra_path(g.reverse(), src, weight="w")
    nxt = np.full(40, -1, np.int64)
    for node, p in rpaths.items():
        if len(p) > 1:
            nxt[node] = link_of[(p[-1], p[-2])]
    for t in range(40):
        got = tree_path_from(pred, tail, src, t)
        if t not in paths:
            assert got.tolist() == [-1]
            continue
        want = [link_of[(a, b)] for a, b in zip(paths[t], paths[t][1:])]
        assert got.tolist() == want
        got2 = tree_path_to(nxt, head, t, src)
        if t in rpaths:
            want2 = [link_of[(b, a)] for a, b in zip(rpaths[t], rpaths[t][1:])][::-1]
            assert got2.tolist() == want2
