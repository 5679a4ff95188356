"""The walker kernel (twin/kernels/pedestrian.py): free walking against distance / speed, a crowd on one
link against Weidmann's diagram, the compiled kernel against its pure-Python twin, and calls cut at
sub-step boundaries against one call."""

from __future__ import annotations

import numpy as np
import pytest

from twin.kernels.pedestrian import WEIDMANN_RHO_MAX, advance_walkers, weidmann_capacity, weidmann_speed_mps


def walk(paths, length, area, start, t1, *, dt=10.0, v0=1.34, v_min=0.1, ppw=1.0, crowd=True, cuts=(),
         kernel=advance_walkers, cap=None):
    ptr = np.concatenate([[0], np.cumsum([len(p) for p in paths])]).astype(np.int64)
    links = np.concatenate(paths).astype(np.int64)
    pos = ptr[:-1].copy()
    rem = np.asarray(length, np.float64)[links[pos]].copy()
    done = np.full(len(paths), np.nan)
    cap = np.full(len(length), np.inf) if cap is None else np.asarray(cap, np.float64)
    acc = np.zeros(len(length))
    t = 0.0
    for c in [*cuts, t1]:
        kernel(t, c, dt, ptr, links, np.asarray(length, np.float64), np.asarray(area, np.float64), v0, v_min, ppw,
               np.asarray(start, np.float64), pos, rem, done, crowd, cap, acc)
        t = c
    return done, pos, rem


def test_weidmann_values():
    v = weidmann_speed_mps(np.array([0.0, 0.5, 1.0, 2.0, 4.0, WEIDMANN_RHO_MAX, 8.0]), 1.34, 0.1)
    # 1 person/m^2: 1.34 (1 - exp(-1.913 (1 - 1/5.4))) = 1.058 m/s
    assert v[0] == 1.34 and v[2] == pytest.approx(1.34 * (1 - np.exp(-1.913 * (1 - 1 / 5.4))), rel=1e-12)
    assert v[2] == pytest.approx(1.058, abs=1e-3)
    assert np.all(np.diff(v) <= 0) and v[-2] == v[-1] == 0.1


def test_free_walking_is_distance_over_speed():
    length = np.array([100.0, 37.5, 250.0])
    area = length * 3.0
    done, _, _ = walk([[0, 1, 2], [2], [1, 0]], length, area, [5.0, 0.0, 100.0], 2000.0, crowd=False)
    np.testing.assert_allclose(done, [5.0 + 387.5 / 1.34, 250.0 / 1.34, 100.0 + 137.5 / 1.34], rtol=1e-12)


@pytest.mark.parametrize("n", [1, 50, 400, 3000])
def test_a_crowd_on_one_link_walks_at_weidmanns_speed(n):
    # everyone starts together on the same 200 m x 2 m link: the density stays n / 400 until they all
    # arrive together, at 200 / v(rho) (floored at v_min)
    done, _, _ = walk([[0]] * n, [200.0], [400.0], np.zeros(n), 50_000.0, dt=7.0)
    v = float(weidmann_speed_mps(n / 400.0, 1.34, 0.1))
    np.testing.assert_allclose(done, 200.0 / v, rtol=1e-9)
    # a sample of 10%: each walker stands for ten people
    done10, _, _ = walk([[0]] * n, [200.0], [400.0], np.zeros(n), 50_000.0, dt=7.0, ppw=10.0)
    np.testing.assert_allclose(done10, 200.0 / float(weidmann_speed_mps(10 * n / 400.0, 1.34, 0.1)), rtol=1e-9)


def test_weidmann_capacity_is_the_largest_specific_flow():
    j = weidmann_capacity(1.34)
    assert 1.15 < j < 1.3  # the diagram's maximal flow, about 1.2 persons / (m s)
    rho = np.linspace(0.01, 5.39, 5000)
    assert np.max(rho * weidmann_speed_mps(rho, 1.34)) <= j + 1e-4


@pytest.mark.parametrize("n", [1, 12, 40])
def test_a_burst_through_a_narrow_link_leaves_at_its_capacity(n):
    # free speed (no crowding), a 26.8 m link walked in 20 s that lets 0.25 walkers/s out: the
    # first arrives at 20 s, then one every 4 s: tau + (N - 1) / mu, as a queue's burst
    done, _, _ = walk([[0]] * n, [26.8], [100.0], np.zeros(n), 10_000.0, dt=1.0, crowd=False, cap=[0.25])
    np.testing.assert_allclose(np.sort(done), 20.0 + 4.0 * np.arange(n), atol=1e-9)
    # a wide first link feeding it: the same arrivals (shifted by its 10 s), the queue in between
    done2, _, _ = walk([[1, 0]] * n, [26.8, 13.4], [100.0, 100.0], np.zeros(n), 10_000.0, dt=1.0, crowd=False,
                       cap=[0.25, np.inf])
    np.testing.assert_allclose(np.sort(done2), 30.0 + 4.0 * np.arange(n), atol=1e-9)


def test_capacity_spreads_a_crowd_that_starts_together():
    # 1,000 walkers leave one node together over ten 80 m links: without a capacity they move as one
    # block at the jam speed; with the diagram's capacity they spread out and most arrive sooner
    n, w = 1000, 4.0
    length = np.full(10, 80.0)
    block, _, _ = walk([list(range(10))] * n, length, length * w, np.zeros(n), 1e6, dt=5.0)
    stream, _, _ = walk([list(range(10))] * n, length, length * w, np.zeros(n), 1e6, dt=5.0,
                        cap=np.full(10, weidmann_capacity(1.34) * w))
    assert np.ptp(block) == 0.0 and np.ptp(stream) > 60.0
    assert np.median(stream) < np.median(block)


def random_case(seed):
    rng = np.random.default_rng(seed)
    n_links = 12
    length = rng.uniform(5.0, 300.0, n_links)
    area = length * rng.uniform(1.0, 4.0, n_links)
    paths = [rng.choice(n_links, int(rng.integers(1, 6))).tolist() for _ in range(300)]
    start = np.round(rng.uniform(0.0, 900.0, 300), 1)
    return paths, length, area, start


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_equals_python_twin_and_calls_can_be_cut(seed):
    paths, length, area, start = random_case(seed)
    cap = np.random.default_rng(seed).uniform(0.2, 3.0, length.size)
    a = walk(paths, length, area, start, 4000.0, ppw=5.0, cap=cap)
    b = walk(paths, length, area, start, 4000.0, ppw=5.0, kernel=advance_walkers.py_func, cap=cap)
    c = walk(paths, length, area, start, 4000.0, ppw=5.0, cuts=(600.0, 1200.0, 3000.0), cap=cap)
    for x, y, z in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    assert np.isfinite(a[0]).all()


def test_crowds_slow_walkers_down():
    paths, length, area, start = random_case(5)
    free, _, _ = walk(paths, length, area, start, 40_000.0, crowd=False)
    slow, _, _ = walk(paths, length, area, start, 40_000.0, ppw=20.0)
    assert np.all(slow >= free - 1e-9) and np.mean(slow - free) > 10.0
