"""Traffic-flow properties of the queue kernel: analytical answers on small networks."""

from __future__ import annotations

import numpy as np
import pytest

from twin.kernels.queue import STATUS_ARRIVED, STATUS_REMOVED, QueueSim


def chain(n_trips, fftt, cap, storage, depart=0.0, **kw):
    n_links = len(fftt)
    indptr = np.arange(0, n_links * (n_trips + 1), n_links)
    links = np.tile(np.arange(n_links), n_trips)
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=cap, storage_veh=storage, route_indptr=indptr,
                   route_links=links, **kw)
    sim.schedule(np.arange(n_trips), np.full(n_trips, depart))
    return sim


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_two_bottlenecks_in_series_queue_only_at_the_first(backend):
    # A (0.5 veh/s) -> B (0.5 veh/s) -> C (wide): B receives at most 0.5 veh/s and never queues
    sim = chain(60, [10.0, 20.0, 5.0], [0.5, 0.5, 5.0], [1000, 1000, 1000], backend=backend)
    sim.advance(2000)
    assert np.all(sim.status == STATUS_ARRIVED)
    enter = sim.route_enter_s.reshape(60, 3)
    exit_a = enter[:, 1]
    exit_b = enter[:, 2]
    delay_a = exit_a - enter[:, 0] - 10.0
    time_on_b = exit_b - enter[:, 1]
    assert delay_a.max() > 100  # a queue at A
    np.testing.assert_allclose(time_on_b, 20.0, atol=1e-9)  # none at B


def clearance_s(cap):
    sim = chain(200, [30.0], [cap], [1000.0])
    sim.advance(5000)
    assert np.all(sim.status == STATUS_ARRIVED)
    return sim.arrive_s.max() - sim.arrive_s.min()


@pytest.mark.parametrize("cap", [0.9, 0.5, 0.3])
def test_halving_exit_capacity_doubles_clearance(cap):
    ratio = clearance_s(cap / 2) / clearance_s(cap)
    assert abs(ratio - 2.0) <= 0.1, ratio


def test_route_enter_times_are_consistent():
    sim = chain(30, [7.3, 11.1, 4.2], [0.4, 1.0, 1.0], [5, 2, 100], depart=3.3)
    sim.advance(3000)
    enter = sim.route_enter_s.reshape(30, 3)
    assert np.all(np.isfinite(enter))
    assert np.all(np.diff(enter, axis=1) >= np.array([7.3, 11.1]) - 1e-9)  # never faster than free flow
    assert np.all(sim.arrive_s - enter[:, 2] >= 4.2 - 1e-9)
    assert enter[0, 0] == pytest.approx(3.3)  # the first vehicle enters at its departure time
    # FIFO on every link
    assert np.all(np.diff(enter, axis=0) >= 0)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_stuck_vehicles_can_be_removed_and_are_counted(backend):
    # B is nearly blocked (tiny capacity, storage 1): vehicles on A wait; after stuck_time they leave
    sim = chain(20, [5.0, 5.0], [1.0, 0.001], [100, 1], stuck_time_s=60.0, stuck_action="remove",
                backend=backend)
    for t in range(1, 400):
        sim.advance(float(t))
        n_removed = int(np.count_nonzero(sim.status == STATUS_REMOVED))
        assert sim.n_departed == sim.n_waiting + sim.n_on_links + sim.n_arrived + n_removed
        assert int(sim.occ.sum()) == sim.n_on_links
    assert sim.n_removed == int(np.count_nonzero(sim.status == STATUS_REMOVED)) > 0
    assert sim.n_forced_moves == 0


def test_bin_width_of_link_statistics():
    sim = chain(10, [10.0], [1.0], [100.0], depart=0.0, n_hours=8, bin_s=5.0)
    sim.advance(100)
    # exits at 10, 11, ..., 19 s -> bins 2 and 3 of 5 s
    assert sim.link_volume[0].tolist() == [0, 0, 5, 5, 0, 0, 0, 0]


# ------------------------------------------------------------------- merge fairness


def merge_shares(idx, cap_up, *, n_per_approach=300, n_counted=200, merge_seed=0, backend="numba"):
    """Two upstream links feed one full bottleneck (0.2 veh/s, storage 3), both saturated.

    ``idx`` = (a, m, b): link indices of the two approaches and of the bottleneck, so that the
    bottleneck can come before, between or after the approaches in the kernel's index order.
    Returns the share of approach ``a`` among the first ``n_counted`` vehicles that entered the
    bottleneck after both approaches queued (the first 10 entries are skipped).
    """
    a, m, b = idx
    n_links = 3
    fftt = np.full(n_links, 5.0)
    cap = np.full(n_links, 1.0)
    cap[a], cap[b] = cap_up
    cap[m] = 0.2
    storage = np.full(n_links, 1000.0)
    storage[m] = 3.0
    routes = [[a, m]] * n_per_approach + [[b, m]] * n_per_approach
    indptr = np.arange(0, 2 * len(routes) + 1, 2)
    links = np.array([x for r in routes for x in r])
    sim = QueueSim(fftt_s=fftt, cap_veh_per_s=cap, storage_veh=storage, route_indptr=indptr,
                   route_links=links, merge_seed=merge_seed, backend=backend)
    sim.schedule(np.arange(len(routes)), np.zeros(len(routes)))
    sim.advance(2500.0)
    assert sim.n_forced_moves == 0
    enter_m = sim.route_enter_s.reshape(-1, 2)[:, 1]
    from_a = np.arange(len(routes)) < n_per_approach
    order = np.argsort(enter_m, kind="stable")
    counted = order[10:10 + n_counted]
    assert np.all(np.isfinite(enter_m[counted]))
    return from_a[counted].mean()


@pytest.mark.parametrize("idx", [(0, 1, 2), (1, 2, 0), (0, 2, 1), (2, 0, 1)])
def test_merge_equal_capacities_share_the_bottleneck_equally(idx):
    # A scan in index order alone gives every freed slot to one approach (share 0 or 1);
    # the capacity-weighted draw splits it 50:50 whatever the indices (binomial sd 0.035).
    share = merge_shares(idx, (1.0, 1.0))
    assert abs(share - 0.5) < 0.12, share


@pytest.mark.parametrize("idx", [(0, 1, 2), (2, 0, 1)])
def test_merge_shares_follow_flow_capacities(idx):
    # approach a has twice the flow capacity of b (both above their share): 2/3 of the slots
    share = merge_shares(idx, (1.0, 0.5))
    assert abs(share - 2 / 3) < 0.12, share


def test_merge_draws_depend_on_the_seed_and_match_the_python_twin():
    s0 = merge_shares((0, 1, 2), (1.0, 1.0), n_per_approach=60, n_counted=80, merge_seed=0)
    s0_py = merge_shares((0, 1, 2), (1.0, 1.0), n_per_approach=60, n_counted=80, merge_seed=0,
                         backend="python")
    assert s0 == s0_py
    shares = {merge_shares((0, 1, 2), (1.0, 1.0), n_per_approach=60, n_counted=80, merge_seed=s)
              for s in range(5)}
    assert len(shares) > 1  # other seeds give other (equally fair) sequences


def test_merge_key_compiled_equals_python_and_is_capacity_weighted():
    import numba

    from twin.kernels.queue import merge_key

    compiled = numba.njit(lambda s, k, m, u, c: merge_key(s, k, m, u, c))
    rng = np.random.default_rng(3)
    for _ in range(300):
        args = (int(rng.integers(0, 2**63)) * 2 + 1, int(rng.integers(0, 10**6)), int(rng.integers(0, 10**5)),
                int(rng.integers(0, 10**5)), float(rng.uniform(0.01, 3.0)))
        assert merge_key(*args) == compiled(np.uint64(args[0]), *args[1:])
    # link 1 (capacity 3) against link 2 (capacity 1) over 4,000 draws: wins 3/4 (sd 0.007)
    wins = np.mean([merge_key(9, k, 0, 1, 3.0) < merge_key(9, k, 0, 2, 1.0) for k in range(4000)])
    assert abs(wins - 0.75) < 0.03
