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
