"""Ride-pooling insertion (twin.domains.maas.insertion): hand cases on a line and a brute-force oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.domains.maas.insertion import Insertion, RequestLimits, best_insertion, feasible, schedule_times

INF = math.inf


def line_tt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Nodes 0..9 on a line, 10 s between neighbours."""
    return np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) * 10.0


class CountingTT:
    def __init__(self, tt):
        self.tt, self.calls, self.pairs = tt, 0, 0

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        assert a.dtype == np.int64 and b.dtype == np.int64 and a.shape == b.shape
        self.calls += 1
        self.pairs += a.size
        return self.tt(a, b)


def insert(stops, requests, new, pick, drop, lim, *, start_node=0, start_t_s=0.0, onboard=0, seats=4,
           tt=line_tt, dwell_s=0.0) -> Insertion | None:
    nodes = np.array([s[0] for s in stops], dtype=np.int64)
    reqs = np.array([s[1] for s in stops], dtype=np.int64)
    picks = np.array([s[2] for s in stops], dtype=bool)
    return best_insertion(start_node=start_node, start_t_s=start_t_s, onboard=onboard, seats=seats,
                          stops_node=nodes, stops_request=reqs, stops_is_pickup=picks, requests=requests,
                          new_request=new, new_pick_node=pick, new_drop_node=drop, new_limits=lim, tt=tt,
                          dwell_s=dwell_s)


def check_feasible(ins: Insertion, requests, new, lim, *, start_node=0, start_t_s=0.0, onboard=0, seats=4,
                   tt=line_tt, dwell_s=0.0) -> bool:
    return feasible(start_node=start_node, start_t_s=start_t_s, onboard=onboard, seats=seats,
                    stops_node=ins.stops_node, stops_request=ins.stops_request, stops_is_pickup=ins.stops_is_pickup,
                    requests={**requests, new: lim}, tt=tt, dwell_s=dwell_s)


# r0 was picked up at node 0 at t = 0 and rides to 5; r1 (1 -> 6) is requested at t = 0.
R0 = RequestLimits(earliest_pick_s=0.0, latest_pick_s=0.0, max_ride_s=100.0, picked_up_s=0.0)
R1 = RequestLimits(earliest_pick_s=0.0, latest_pick_s=300.0, max_ride_s=100.0)
ON_BOARD = [(5, 0, False)]


def test_pooling_along_the_line():
    tt = CountingTT(line_tt)
    ins = insert(ON_BOARD, {0: R0}, 1, 1, 6, R1, onboard=1, tt=tt)
    assert ins is not None
    assert (ins.pick_pos, ins.drop_pos) == (0, 2)
    assert ins.stops_node.tolist() == [1, 5, 6]
    assert ins.stops_request.tolist() == [1, 0, 1]
    assert ins.stops_is_pickup.tolist() == [True, False, False]
    assert ins.added_drive_s == pytest.approx(10.0)
    assert ins.arrive_s.tolist() == [10.0, 50.0, 60.0]
    assert (ins.pick_s, ins.drop_s) == (10.0, 60.0)
    assert ins.arrive_s[1] - R0.picked_up_s <= R0.max_ride_s and ins.drop_s - ins.pick_s <= R1.max_ride_s
    assert check_feasible(ins, {0: R0}, 1, R1, onboard=1)
    assert tt.calls == 1 and tt.pairs <= 5 * 1 + 3


def test_pooling_with_both_pickups_in_the_schedule():
    r0 = RequestLimits(earliest_pick_s=0.0, latest_pick_s=10.0, max_ride_s=100.0)
    ins = insert([(0, 0, True), (5, 0, False)], {0: r0}, 1, 1, 6, R1)
    assert ins is not None
    assert ins.stops_node.tolist() == [0, 1, 5, 6] and (ins.pick_pos, ins.drop_pos) == (1, 3)
    assert ins.added_drive_s == pytest.approx(10.0)


def test_one_seat_serves_one_after_the_other():
    ins = insert(ON_BOARD, {0: R0}, 1, 1, 6, R1, onboard=1, seats=1)
    assert ins is not None
    assert (ins.pick_pos, ins.drop_pos) == (1, 2)
    assert ins.stops_node.tolist() == [5, 1, 6]
    assert ins.added_drive_s == pytest.approx(90.0)
    assert (ins.pick_s, ins.drop_s) == (90.0, 140.0)
    assert check_feasible(ins, {0: R0}, 1, R1, onboard=1, seats=1)
    # a full vehicle at the start takes nobody
    assert insert(ON_BOARD, {0: R0}, 1, 1, 6, R1, onboard=2, seats=1) is None


def test_latest_pickup_too_early():
    late = RequestLimits(earliest_pick_s=0.0, latest_pick_s=60.0, max_ride_s=100.0)
    assert insert(ON_BOARD, {0: R0}, 1, 1, 6, late, onboard=1, seats=1) is None
    assert insert(ON_BOARD, {0: R0}, 1, 1, 6, late, onboard=1, seats=2) is not None
    assert insert([], {}, 1, 0, 3, RequestLimits(0.0, 50.0, 100.0), start_node=9) is None
    # the tolerance: exactly on time is on time
    ins = insert([], {}, 1, 4, 3, RequestLimits(0.0, 50.0, 10.0), start_node=9)
    assert ins is not None and ins.pick_s == 50.0 and ins.drop_s == 60.0


def test_max_ride_forbids_detours():
    r1 = RequestLimits(earliest_pick_s=0.0, latest_pick_s=300.0, max_ride_s=100.0)  # 3 -> 2, backwards
    # loose: r0 takes the detour, the cheapest
    ins = insert(ON_BOARD, {0: R0}, 1, 3, 2, r1, onboard=1)
    assert ins is not None and ins.stops_node.tolist() == [3, 2, 5] and ins.added_drive_s == pytest.approx(20.0)
    # r0 may not ride longer than 50 s: P3 D5 D2 and D5 P3 D2 both add 30 s; the lower positions win
    tight0 = {0: RequestLimits(0.0, 0.0, 50.0, picked_up_s=0.0)}
    ins = insert(ON_BOARD, tight0, 1, 3, 2, r1, onboard=1)
    assert ins is not None and ins.stops_node.tolist() == [3, 5, 2] and (ins.pick_pos, ins.drop_pos) == (0, 2)
    assert ins.added_drive_s == pytest.approx(30.0)
    assert check_feasible(ins, tight0, 1, r1, onboard=1)
    # and r1 not longer than 20 s: only after r0's drop-off
    r1_tight = RequestLimits(0.0, 300.0, 20.0)
    ins = insert(ON_BOARD, tight0, 1, 3, 2, r1_tight, onboard=1)
    assert ins is not None and ins.stops_node.tolist() == [5, 3, 2] and (ins.pick_pos, ins.drop_pos) == (1, 2)
    assert ins.drop_s - ins.pick_s == pytest.approx(10.0)
    # r1's direct ride is 10 s
    assert insert(ON_BOARD, tight0, 1, 3, 2, RequestLimits(0.0, 300.0, 5.0), onboard=1) is None


def test_wait_for_earliest_pickup_and_dwell():
    lim = RequestLimits(earliest_pick_s=100.0, latest_pick_s=200.0, max_ride_s=60.0)
    ins = insert([], {}, 7, 2, 5, lim, start_t_s=0.0, dwell_s=5.0)
    assert ins is not None
    assert ins.arrive_s.tolist() == [20.0, 135.0] and (ins.pick_s, ins.drop_s) == (100.0, 135.0)
    assert ins.stops_request.tolist() == [7, 7]
    times = schedule_times(0, 0.0, ins.stops_node, ins.stops_request, ins.stops_is_pickup, {7: 100.0}, line_tt, 5.0)
    assert times.tolist() == [20.0, 135.0]
    times = schedule_times(0, 0.0, ins.stops_node, ins.stops_request, ins.stops_is_pickup,
                           np.array([100.0, 0.0]), line_tt)
    assert times.tolist() == [20.0, 130.0]


def test_malformed_input():
    with pytest.raises(ValueError, match="already in the schedule"):
        insert(ON_BOARD, {0: R0}, 0, 1, 6, R1, onboard=1)
    with pytest.raises(ValueError, match="no limits"):
        insert(ON_BOARD, {}, 1, 1, 6, R1, onboard=1)
    with pytest.raises(ValueError, match="picked_up_s"):
        insert(ON_BOARD, {0: RequestLimits(0.0, 0.0, 100.0)}, 1, 1, 6, R1, onboard=1)
    with pytest.raises(ValueError, match="after its drop-off"):
        insert([(5, 0, False), (0, 0, True)], {0: R0}, 1, 1, 6, R1, onboard=1)


def test_unreachable():
    def tt(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # nodes >= 5 are cut off from nodes < 5
        return np.where((a >= 5) == (b >= 5), line_tt(a, b), np.inf)

    assert insert([], {}, 1, 6, 7, R1, tt=tt) is None
    ins = insert([(3, 0, False)], {0: R0}, 1, 1, 2, R1, onboard=1, tt=tt)
    assert ins is not None and ins.stops_node.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="unreachable"):
        insert([(6, 0, False)], {0: R0}, 1, 1, 2, R1, onboard=1, tt=tt)


# ---------------------------------------------------------------------------------------------------------------
# Brute-force oracle, in plain Python.

def oracle_simulate(start_node, start_t, stops, limits, D, dwell):
    """Arrival and service (pick-up: max(arrival, earliest); drop-off: arrival) times."""
    arrive, service = [], []
    t, prev = start_t, start_node
    for node, r, is_pick in stops:
        a = t + D[prev][node]
        s = max(a, limits[r].earliest_pick_s) if is_pick else a
        arrive.append(a)
        service.append(s)
        t, prev = s + dwell, node
    return arrive, service


def oracle_ok(start_node, start_t, onboard, seats, stops, limits, D, dwell):
    prev, load = start_node, onboard
    if load > seats:
        return False
    for node, _, is_pick in stops:
        if D[prev][node] == INF:
            return False
        prev = node
        load += 1 if is_pick else -1
        if load > seats:
            return False
    _, service = oracle_simulate(start_node, start_t, stops, limits, D, dwell)
    pick_time = {}
    for (_, r, is_pick), s in zip(stops, service):
        if is_pick:
            if s > limits[r].latest_pick_s + 1e-9:
                return False
            pick_time[r] = s
        else:
            picked = pick_time.get(r, limits[r].picked_up_s)
            if s - picked > limits[r].max_ride_s + 1e-9:
                return False
    return True


def oracle_drive(start_node, stops, D):
    total, prev = 0.0, start_node
    for node, _, _ in stops:
        total += D[prev][node]
        prev = node
    return total


def oracle_best(start_node, start_t, onboard, seats, stops, limits, new, pick, drop, D, dwell):
    old = oracle_drive(start_node, stops, D)
    found = []
    for i in range(len(stops) + 1):
        for j in range(i, len(stops) + 1):
            cand = stops[:i] + [(pick, new, True)] + stops[i:j] + [(drop, new, False)] + stops[j:]
            if oracle_ok(start_node, start_t, onboard, seats, cand, limits, D, dwell):
                found.append((oracle_drive(start_node, cand, D) - old, i, j + 1, cand))
    if not found:
        return None
    best = min(f[0] for f in found)
    return next(f for f in found if f[0] <= best + 1e-9)


def random_metric(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    w = rng.integers(1, 60, size=(n, n)).astype(float) if rng.random() < 0.5 else rng.uniform(1.0, 60.0, (n, n))
    w = np.minimum(w, w.T)
    np.fill_diagonal(w, 0.0)
    if rng.random() < 0.15:  # two components
        side = rng.random(n) < 0.5
        w[side[:, None] != side[None, :]] = INF
    for k in range(n):  # Floyd-Warshall: a metric
        w = np.minimum(w, w[:, k:k + 1] + w[k:k + 1, :])
    return w


def random_case(rng: np.random.Generator, D: list[list[float]]):
    """A random feasible schedule: on-board requests (drop-off only) and waiting ones (pick-up, then drop-off)."""
    n = len(D)
    start_node = int(rng.integers(n))
    start_t = float(rng.uniform(0, 100))
    n_board, n_wait = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    no_drop = {r for r in range(n_board, n_board + n_wait) if rng.random() < 0.2}  # dropped off beyond the plan
    # a random interleaving with each pick-up before its drop-off
    available = [(r, False) for r in range(n_board)] + [(r, True) for r in range(n_board, n_board + n_wait)]
    stops = []
    while available:
        r, is_pick = available.pop(int(rng.integers(len(available))))
        if is_pick and r not in no_drop:
            available.append((r, False))
        stops.append((int(rng.integers(n)), r, is_pick))
    earliest = {r: start_t + float(rng.uniform(-50, 100)) for r in range(n_board + n_wait)}
    picked = {r: start_t - float(rng.uniform(0, 60)) for r in range(n_board)}
    base = {r: RequestLimits(earliest[r], INF, INF, picked.get(r, math.nan)) for r in earliest}
    dwell = float(rng.choice([0.0, 0.0, 5.0]))
    _, service = oracle_simulate(start_node, start_t, stops, base, D, dwell)
    if not all(math.isfinite(s) for s in service):
        return None

    def slack() -> float:
        return 0.0 if rng.random() < 0.3 else float(rng.uniform(0, 80))

    pick_time, latest, max_ride = dict(picked), {}, {}
    for (_, r, is_pick), s in zip(stops, service):
        if is_pick:
            pick_time[r] = s
            latest[r] = s + slack()
        else:
            max_ride[r] = s - pick_time[r] + slack()
    limits = {r: RequestLimits(earliest[r], latest.get(r, earliest[r]), max_ride.get(r, INF), picked.get(r, math.nan))
              for r in earliest}
    onboard = n_board + int(rng.integers(0, 2))
    seats = int(rng.integers(1, 5))
    if not oracle_ok(start_node, start_t, onboard, seats, stops, limits, D, dwell):
        return None
    return start_node, start_t, onboard, seats, stops, limits, dwell


def test_random_against_brute_force():
    rng = np.random.default_rng(20240611)
    cases = n_found = 0
    while cases < 300:
        M = random_metric(rng)
        D = M.tolist()
        case = random_case(rng, D)
        if case is None:
            continue
        cases += 1
        start_node, start_t, onboard, seats, stops, limits, dwell = case
        new = 99
        pick, drop = int(rng.integers(8)), int(rng.integers(8))
        e = start_t + float(rng.uniform(-20, 100))
        direct = D[pick][drop]
        lim = RequestLimits(e, e + float(rng.uniform(0, 200)),
                            INF if rng.random() < 0.2 else direct * float(rng.uniform(1.0, 2.5)))
        all_limits = {**limits, new: lim}

        def tt(a: np.ndarray, b: np.ndarray, M: np.ndarray = M) -> np.ndarray:
            return M[a, b]

        counting = CountingTT(tt)
        got = best_insertion(start_node=start_node, start_t_s=start_t, onboard=onboard, seats=seats,
                             stops_node=np.array([s[0] for s in stops], dtype=np.int64),
                             stops_request=np.array([s[1] for s in stops], dtype=np.int64),
                             stops_is_pickup=np.array([s[2] for s in stops], dtype=bool),
                             requests=limits, new_request=new, new_pick_node=pick, new_drop_node=drop,
                             new_limits=lim, tt=counting, dwell_s=dwell)
        assert counting.calls == 1 and counting.pairs <= 5 * len(stops) + 3
        want = oracle_best(start_node, start_t, onboard, seats, stops, all_limits, new, pick, drop, D, dwell)
        if want is None:
            assert got is None
            continue
        n_found += 1
        added, pick_pos, drop_pos, cand = want
        assert got is not None
        assert (got.pick_pos, got.drop_pos) == (pick_pos, drop_pos)
        assert abs(got.added_drive_s - added) <= 1e-9
        assert list(zip(got.stops_node.tolist(), got.stops_request.tolist(), got.stops_is_pickup.tolist())) == cand
        arrive, service = oracle_simulate(start_node, start_t, cand, all_limits, D, dwell)
        np.testing.assert_allclose(got.arrive_s, arrive, rtol=0, atol=1e-9)
        assert abs(got.pick_s - service[pick_pos]) <= 1e-9 and abs(got.drop_s - service[drop_pos]) <= 1e-9
        assert feasible(start_node=start_node, start_t_s=start_t, onboard=onboard, seats=seats,
                        stops_node=got.stops_node, stops_request=got.stops_request,
                        stops_is_pickup=got.stops_is_pickup, requests=all_limits, tt=tt, dwell_s=dwell)
        # feasible() agrees with the oracle on every candidate schedule
        for i in range(len(stops) + 1):
            for j in range(i, len(stops) + 1):
                c = stops[:i] + [(pick, new, True)] + stops[i:j] + [(drop, new, False)] + stops[j:]
                assert feasible(start_node=start_node, start_t_s=start_t, onboard=onboard, seats=seats,
                                stops_node=np.array([s[0] for s in c], dtype=np.int64),
                                stops_request=np.array([s[1] for s in c], dtype=np.int64),
                                stops_is_pickup=np.array([s[2] for s in c], dtype=bool),
                                requests=all_limits, tt=tt, dwell_s=dwell) == \
                    oracle_ok(start_node, start_t, onboard, seats, c, all_limits, D, dwell)
    assert n_found >= 100  # the oracle finds insertions often enough for the comparison to mean something
