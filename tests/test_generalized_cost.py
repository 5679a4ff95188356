"""Static UE with the TNTP generalized cost ``t(x) + toll_factor * toll + distance_factor * len``.

Small cases are checked against equilibria derived by hand; SiouxFalls
(``../shared/validation/tntp/SiouxFalls``, academic use only, read in place) is
used for the zero-factor identity and for an independent Wardrop check. Tests
that need it skip without the folder and fail when ``CI`` is set.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.sparse.csgraph import csgraph_from_dense, dijkstra

from twin.assignment import (
    TntpNetwork,
    parse_tntp_net,
    read_tntp_net,
    read_tntp_trips,
    solve_ue,
)
from twin.kernels import assignment as ka

SHARED = Path(__file__).resolve().parents[2] / "shared"
SIOUX = SHARED / "validation" / "tntp" / "SiouxFalls"
# README of SiouxFalls: optimal Beckmann objective 42.31335287107440 x 1e5 in the files' units
SIOUX_BEST_OBJECTIVE = 42.31335287107440e5


def _sioux_dir() -> Path:
    if not (SIOUX / "SiouxFalls_net.tntp").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{SIOUX} is missing in CI: tests that need real data must not skip there")
        pytest.skip(f"TNTP SiouxFalls data not found at {SIOUX} (../shared beside the project)")
    return SIOUX


@pytest.fixture(scope="module")
def sioux():
    d = _sioux_dir()
    net = read_tntp_net(d / "SiouxFalls_net.tntp")
    od = read_tntp_trips(d / "SiouxFalls_trips.tntp", net.n_zones)
    return net, od


# --------------------------------------------------------------------------- two parallel links
#
# One OD pair (zone 1 -> zone 2, demand D) and two parallel links i = 1, 2 with BPR power 1:
#     t_i(x) = fft_i * (1 + b * x / cap_i) = a_i + s_i * x,   a_i = fft_i,  s_i = fft_i * b / cap_i,
# and the flow-independent generalized part k_i = toll_factor * toll_i + distance_factor * length_i,
# so c_i(x) = a_i + k_i + s_i * x. Wardrop: if both links are used, c_1(x_1) = c_2(D - x_1):
#     a_1 + k_1 + s_1 x_1 = a_2 + k_2 + s_2 (D - x_1)
#  => x_1 = (a_2 + k_2 - a_1 - k_1 + s_2 D) / (s_1 + s_2),
# valid when 0 <= x_1 <= D; otherwise everything takes the link that is cheaper at full demand
# (x_1 = 0 if a_1 + k_1 >= a_2 + k_2 + s_2 D). The generalized Beckmann objective is
#     sum_i (a_i x_i + s_i x_i^2 / 2 + k_i x_i),
# the travel time TSTT = sum_i x_i (a_i + s_i x_i), and at equilibrium every unit pays
# c_1(x_1) = c_2(x_2) (interior case), so SPTT (generalized) = D * c_1(x_1).

FFT = np.array([10.0, 15.0])
CAP = np.array([1000.0, 3000.0])
B = 1.0
DEMAND = 3000.0


def _linear_split(k):
    """Equilibrium flows on the two links for fixed costs ``k`` (see the derivation above)."""
    a = FFT
    s = FFT * B / CAP
    x1 = (a[1] + k[1] - a[0] - k[0] + s[1] * DEMAND) / (s[0] + s[1])
    x1 = min(max(x1, 0.0), DEMAND)
    return np.array([x1, DEMAND - x1])


def _two_links(toll=(0.0, 0.0), length=(1.0, 1.0), power=1.0, **kw):
    return TntpNetwork.from_links(
        [0, 0], [1, 1], FFT, CAP, b=B, power=power, n_zones=2, toll=toll, length=length, **kw
    )


OD2 = np.array([[0.0, DEMAND], [0.0, 0.0]])


@pytest.mark.parametrize("method", ["fw", "cfw", "bfw"])
def test_toll_shifts_the_two_link_split_as_derived(method):
    toll = np.array([4.0, 0.0])
    tf = 1.25  # k = (5, 0): x_1 = (15 - 15 + 0.005 * 3000) / 0.015 = 1000 (1333.3 without the toll)
    net = _two_links(toll=toll)
    base = solve_ue(net, OD2, method=method, gap_tol=1e-12, max_iter=200)
    res = solve_ue(net, OD2, method=method, gap_tol=1e-12, max_iter=200, toll_factor=tf)
    assert base.converged and res.converged
    k = tf * toll
    x = _linear_split(k)
    assert 0 < x[0] < DEMAND  # interior: both links used
    np.testing.assert_allclose(base.flow, _linear_split(np.zeros(2)), rtol=1e-6)
    np.testing.assert_allclose(res.flow, x, rtol=1e-6)
    assert res.flow[0] < base.flow[0] - 300  # the toll moves a quarter of link 1's users away
    s = FFT * B / CAP
    t = FFT + s * x
    np.testing.assert_allclose(res.cost, t, rtol=1e-6)  # travel time only
    np.testing.assert_allclose(res.generalized_cost, t + k, rtol=1e-6)
    assert res.generalized_cost[0] == pytest.approx(res.generalized_cost[1], rel=1e-6)  # Wardrop
    beckmann = float(np.sum(FFT * x + s * x**2 / 2 + k * x))
    assert res.objective[-1] == pytest.approx(beckmann, rel=1e-9)
    assert res.tstt == pytest.approx(float(x @ t), rel=1e-6)
    assert res.total_cost == pytest.approx(float(x @ (t + k)), rel=1e-6)
    assert res.sptt == pytest.approx(DEMAND * (t[0] + k[0]), rel=1e-6)
    assert res.total_toll == pytest.approx(float(x @ toll), rel=1e-6)
    assert res.total_cost == pytest.approx(
        res.tstt + tf * res.total_toll + 0.0 * res.total_distance, rel=1e-12
    )
    assert (res.toll_factor, res.distance_factor) == (tf, 0.0)
    # consistency of the reported gap with the reported totals
    assert res.relative_gap[-1] == pytest.approx((res.total_cost - res.sptt) / res.total_cost)


def test_prohibitive_toll_empties_the_link():
    # a_1 + k_1 = 10 + 25 >= a_2 + s_2 D = 15 + 15: every trip takes link 2 (corner solution)
    toll = np.array([20.0, 0.0])
    res = solve_ue(_two_links(toll=toll), OD2, gap_tol=1e-12, toll_factor=1.25)
    np.testing.assert_allclose(res.flow, [0.0, DEMAND], atol=1e-9 * DEMAND)
    assert res.sptt == pytest.approx(DEMAND * (15.0 + 15.0 * DEMAND / 3000.0), rel=1e-12)
    assert res.total_toll == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", ["fw", "bfw"])
def test_distance_factor_shifts_the_split_as_derived(method):
    length = np.array([2.0, 8.0])  # link 2 is the long one
    net = _two_links(length=length)
    for df in (0.0, 0.5, 1.0):
        res = solve_ue(net, OD2, method=method, gap_tol=1e-12, max_iter=200, distance_factor=df)
        x = _linear_split(df * length)
        assert 0 < x[0] < DEMAND
        np.testing.assert_allclose(res.flow, x, rtol=1e-6)
        assert res.total_distance == pytest.approx(float(x @ length), rel=1e-6)
    # the longer the trip weighs, the more use the short link: 1333.3 -> 1533.3 -> 1733.3
    x1 = [_linear_split(df * length)[0] for df in (0.0, 0.5, 1.0)]
    assert x1[0] < x1[1] < x1[2]
    # toll and distance together: k = toll_factor * toll + distance_factor * length
    toll = np.array([6.0, 1.0])
    both = solve_ue(
        _two_links(toll=toll, length=length),
        OD2,
        gap_tol=1e-12,
        toll_factor=0.5,
        distance_factor=1.0,
    )
    np.testing.assert_allclose(both.flow, _linear_split(0.5 * toll + 1.0 * length), rtol=1e-6)


def test_power_two_bpr_with_toll_matches_quadratic_root():
    # power 2: c_i(x) = a_i + k_i + q_i x^2 with q_i = fft_i * b / cap_i^2. Equal costs give
    #   (q_1 - q_2) x^2 + 2 q_2 D x + (a_1 + k_1 - a_2 - k_2 - q_2 D^2) = 0,
    # whose root in [0, D] is x_1.
    toll = np.array([3.0, 0.0])
    tf = 1.0
    res = solve_ue(_two_links(toll=toll, power=2.0), OD2, gap_tol=1e-12, toll_factor=tf)
    q = FFT * B / CAP**2
    k = tf * toll
    A, Bq, C = q[0] - q[1], 2 * q[1] * DEMAND, FFT[0] + k[0] - FFT[1] - k[1] - q[1] * DEMAND**2
    disc = math.sqrt(Bq * Bq - 4 * A * C)
    roots = [(-Bq + disc) / (2 * A), (-Bq - disc) / (2 * A)]
    x1 = next(r for r in roots if 0 <= r <= DEMAND)
    np.testing.assert_allclose(res.flow, [x1, DEMAND - x1], rtol=1e-6)
    obj = sum(
        quad(lambda s, i=i: FFT[i] * (1 + B * (s / CAP[i]) ** 2) + k[i], 0.0, xi)[0]
        for i, xi in enumerate([x1, DEMAND - x1])
    )
    assert res.objective[-1] == pytest.approx(obj, rel=1e-9)


def test_subsidy_attracts_flow_and_negative_costs_are_refused():
    # a negative toll (subsidy) is fine while the link's cost at zero flow stays >= 0
    toll = np.array([-4.0, 0.0])
    res = solve_ue(_two_links(toll=toll), OD2, gap_tol=1e-12, toll_factor=1.25)
    np.testing.assert_allclose(res.flow, _linear_split(1.25 * toll), rtol=1e-6)
    with pytest.raises(ValueError, match=r"generalized link costs must be finite and >= 0.*1 -> 2"):
        solve_ue(_two_links(toll=[-20.0, 0.0]), OD2, toll_factor=1.0)


# --------------------------------------------------------------------------- SiouxFalls


def _same(a, b):
    for f in ("flow", "cost", "generalized_cost", "relative_gap", "objective", "step_size"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    for f in ("iterations", "tstt", "sptt", "total_cost"):
        assert getattr(a, f) == getattr(b, f), f


@pytest.mark.parametrize("method", ["fw", "bfw"])
def test_zero_factors_give_the_time_only_solver_bit_for_bit(sioux, method):
    """Factors 0 (default, explicit) run the time-only code path; the generalized path with all
    fixed costs 0 (SiouxFalls has no tolls, so toll_factor > 0 adds nothing) agrees bit for bit,
    and both reach the README's best-known objective."""
    net, od = sioux
    assert (net.toll_factor, net.distance_factor) == (0.0, 0.0)  # no tags in the file
    assert not np.any(net.toll)
    kw = dict(method=method, gap_tol=1e-5, max_iter=300)
    default = solve_ue(net, od, **kw)
    explicit = solve_ue(net, od, toll_factor=0.0, distance_factor=0.0, **kw)
    generalized = solve_ue(net, od, toll_factor=3.0, **kw)  # fixed costs all 0.0
    _same(default, explicit)
    _same(default, generalized)
    np.testing.assert_array_equal(default.cost, default.generalized_cost)
    assert default.tstt == default.total_cost
    assert default.objective[-1] == pytest.approx(SIOUX_BEST_OBJECTIVE, rel=1e-3)
    assert default.total_toll == 0.0
    # with a distance factor the fixed costs are not 0: a different equilibrium
    dist = solve_ue(net, od, distance_factor=1.0, **kw)
    assert not np.allclose(dist.flow, default.flow, rtol=1e-3)


def _generalized_costs(net, x, tf, df):
    """Independent numpy evaluation of the TNTP generalized link cost."""
    t = net.free_flow_time * (1 + net.b * (x / net.capacity) ** net.power)
    return t + tf * net.toll + df * net.length


def _independent_gap(net, od, x, cost):
    """(TC - SPC) / TC with least costs from scipy's Dijkstra (SiouxFalls: first thru node 1)."""
    n = net.n_nodes
    w = np.full((n, n), np.inf)
    np.minimum.at(w, (net.init_node, net.term_node), cost)  # parallel links: the cheaper one
    dist = dijkstra(csgraph_from_dense(w, null_value=np.inf), indices=np.arange(net.n_zones))
    dz = dist[:, : net.n_zones]
    mask = od > 0
    np.fill_diagonal(mask, False)
    spc = float(np.sum(od[mask] * dz[mask]))
    tc = float(x @ cost)
    return (tc - spc) / tc


def test_generalized_equilibrium_satisfies_wardrop_on_siouxfalls(sioux):
    net, od = sioux
    rng = np.random.default_rng(2024)
    toll = np.where(rng.random(net.n_links) < 0.3, rng.uniform(0.5, 3.0, net.n_links), 0.0)
    tolled = TntpNetwork(**{**net.__dict__, "toll": toll})
    tf, df = 1.5, 0.2
    gap_tol = 1e-6
    res = solve_ue(tolled, od, gap_tol=gap_tol, max_iter=5000, toll_factor=tf, distance_factor=df)
    assert res.converged
    x = res.flow
    # feasibility: flows carry the OD demand (node balance)
    inflow = np.bincount(net.term_node, x, net.n_nodes)
    balance = inflow - np.bincount(net.init_node, x, net.n_nodes)
    demand = np.zeros(net.n_nodes)
    odd = od.copy()
    np.fill_diagonal(odd, 0.0)
    demand[: net.n_zones] = odd.sum(axis=0) - odd.sum(axis=1)
    np.testing.assert_allclose(balance, demand, atol=1e-6 * od.sum())
    # the reported generalized costs are the TNTP formula at those flows
    c = _generalized_costs(tolled, x, tf, df)
    np.testing.assert_allclose(res.generalized_cost, c, rtol=1e-12)
    # Wardrop, checked independently: used paths cost at most the OD minimum + the gap
    gap = _independent_gap(tolled, od, x, c)
    assert 0 <= gap <= gap_tol * (1 + 1e-6)
    assert gap == pytest.approx(res.relative_gap[-1], rel=1e-6, abs=1e-12)
    # the time-only equilibrium is far from a generalized one: the check can fail
    plain = solve_ue(tolled, od, gap_tol=gap_tol, max_iter=5000, toll_factor=0.0)
    c_plain = _generalized_costs(tolled, plain.flow, tf, df)
    assert _independent_gap(tolled, od, plain.flow, c_plain) > 1e-3
    # variational-inequality consequences (t monotone): the generalized UE pays no more fixed
    # cost than the time-only UE, and each equilibrium minimises its own Beckmann objective
    k = tf * toll + df * net.length
    assert k @ x <= k @ plain.flow * (1 + 1e-6)
    fft, b, p, cap = net.free_flow_time, net.b, net.power, net.capacity
    assert ka.beckmann_objective(fft, b, p, cap, x) >= plain.objective[-1] * (1 - 1e-6)
    assert res.objective[-1] <= ka.generalized_objective(fft, b, p, cap, k, plain.flow) * (1 + 1e-6)
    assert res.tstt == pytest.approx(float(x @ res.cost), rel=1e-12)
    assert res.total_cost == pytest.approx(
        res.tstt + tf * res.total_toll + df * res.total_distance, rel=1e-12
    )


# --------------------------------------------------------------------------- TNTP metadata


def _tntp_net(tags=""):
    # the two parallel links above; link 1: toll 4, length 2; link 2: toll 0, length 8
    return (
        "<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 2\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 2\n"
        f"{tags}<END OF METADATA>\n\n"
        "~ init term capacity length fft b power speed toll type ;\n"
        "1\t2\t1000\t2\t10\t1\t1\t0\t4\t1\t;\n"
        "1\t2\t3000\t8\t15\t1\t1\t0\t0\t1\t;\n"
    )


def test_metadata_factors_are_the_defaults_and_arguments_override(tmp_path):
    p = tmp_path / "tiny_net.tntp"
    p.write_text(_tntp_net("<TOLL FACTOR>\t1.25\t;\n<DISTANCE FACTOR> 0.5\n"))
    t = tmp_path / "tiny_trips.tntp"
    t.write_text(f"<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 2 : {DEMAND};\n")
    net = read_tntp_net(p)
    od = read_tntp_trips(t, net.n_zones)
    assert (net.toll_factor, net.distance_factor) == (1.25, 0.5)
    toll, length = np.array([4.0, 0.0]), np.array([2.0, 8.0])
    np.testing.assert_array_equal(net.toll, toll)

    def check(res, tf, df):
        assert (res.toll_factor, res.distance_factor) == (tf, df)
        np.testing.assert_allclose(res.flow, _linear_split(tf * toll + df * length), rtol=1e-6)

    check(solve_ue(net, od, gap_tol=1e-12), 1.25, 0.5)  # the file's factors
    check(solve_ue(net, od, gap_tol=1e-12, toll_factor=0.0), 0.0, 0.5)
    check(solve_ue(net, od, gap_tol=1e-12, distance_factor=0.0), 1.25, 0.0)
    check(solve_ue(net, od, gap_tol=1e-12, toll_factor=0.25, distance_factor=1.0), 0.25, 1.0)
    # the three splits differ: the factors matter
    ks = (1.25 * toll + 0.5 * length, 0.5 * length, 1.25 * toll, 0.25 * toll + length)
    assert len({round(float(_linear_split(k)[0]), 6) for k in ks}) == 4
    # without the tags: 0
    plain = parse_tntp_net(_tntp_net())
    assert (plain.toll_factor, plain.distance_factor) == (0.0, 0.0)
    check(solve_ue(plain, od, gap_tol=1e-12), 0.0, 0.0)


@pytest.mark.parametrize(
    ("tag", "msg"),
    [
        ("<TOLL FACTOR> cheap\n", r"<TOLL FACTOR> must be a number"),
        ("<TOLL FACTOR>\n", r"<TOLL FACTOR> must be a number"),
        ("<DISTANCE FACTOR> -0.5\n", r"<DISTANCE FACTOR> must be a finite number >= 0"),
        ("<DISTANCE FACTOR> nan\n", r"<DISTANCE FACTOR> must be a finite number >= 0"),
        ("<TOLL FACTOR> inf\n", r"<TOLL FACTOR> must be a finite number >= 0"),
    ],
)
def test_malformed_metadata_factor_names_file_and_line(tmp_path, tag, msg):
    p = tmp_path / "bad_net.tntp"
    p.write_text(_tntp_net(tag))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:5: {msg}"):
        read_tntp_net(p)


# --------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    "bad", [-1.0, -1e-300, float("nan"), float("inf"), -float("inf"), True, "1"]
)
@pytest.mark.parametrize("name", ["toll_factor", "distance_factor"])
def test_bad_factors_raise_value_error(name, bad):
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number >= 0, got"):
        solve_ue(_two_links(toll=[1.0, 0.0]), OD2, **{name: bad})


def test_bad_network_factor_and_missing_columns_raise_value_error():
    with pytest.raises(ValueError, match=r"^toll_factor of the network .* finite number >= 0"):
        solve_ue(_two_links(toll_factor=-2.0), OD2)
    with pytest.raises(ValueError, match=r"^distance_factor of the network .* >= 0, got nan"):
        solve_ue(_two_links(distance_factor=float("nan")), OD2)
    # an explicit valid argument overrides an invalid network value
    assert solve_ue(_two_links(toll_factor=-2.0), OD2, toll_factor=0.0).converged
    base = _two_links()
    keys = "init_node term_node free_flow_time capacity b power n_nodes n_zones first_thru_node"
    bare = SimpleNamespace(**{k: getattr(base, k) for k in keys.split()})
    assert solve_ue(bare, OD2).toll_factor == 0.0  # no factor attributes: 0
    assert math.isnan(solve_ue(bare, OD2).total_toll)
    with pytest.raises(ValueError, match="needs the network's per-link toll"):
        solve_ue(bare, OD2, toll_factor=1.0)
    with pytest.raises(ValueError, match="toll must be finite"):
        solve_ue(_two_links(toll=[np.inf, 0.0]), OD2, toll_factor=1.0)


# --------------------------------------------------------------------------- kernels


def test_generalized_kernels_equal_py_func_closed_forms_and_time_only_kernels():
    rng = np.random.default_rng(5)
    n = 40
    fft = rng.uniform(0.5, 5, n)
    b = rng.uniform(0, 1, n)
    b[:4] = 0.0
    power = rng.uniform(0, 5, n)
    power[4:8] = 0.0
    power[8:12] = 1.0
    cap = rng.uniform(100, 1000, n)
    fixed = rng.uniform(0, 3, n) * (rng.random(n) < 0.6)
    x = rng.uniform(0, 2000, n)
    x[12:16] = 0.0
    d = rng.uniform(0, 2000, n) - x  # towards a random feasible target: a step in (0, 1)
    c1, c2, t = np.empty(n), np.empty(n), np.empty(n)
    ka.generalized_cost(fft, b, power, cap, fixed, x, c1)
    ka.generalized_cost.py_func(fft, b, power, cap, fixed, x, c2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_allclose(c1, fft * (1 + b * (x / cap) ** power) + fixed, rtol=1e-14)
    obj = ka.generalized_objective(fft, b, power, cap, fixed, x)
    assert obj == ka.generalized_objective.py_func(fft, b, power, cap, fixed, x)
    ref = sum(
        quad(lambda s, i=i: fft[i] * (1 + b[i] * (s / cap[i]) ** power[i]) + fixed[i], 0, x[i])[0]
        for i in range(n)
    )
    assert obj == pytest.approx(ref, rel=1e-10)
    a1 = ka.generalized_line_search(fft, b, power, cap, fixed, x, d, 1e-12)
    assert a1 == ka.generalized_line_search.py_func(fft, b, power, cap, fixed, x, d, 1e-12)
    grid = np.linspace(0, 1, 2001)
    vals = [ka.generalized_objective(fft, b, power, cap, fixed, x + g * d) for g in grid]
    best = ka.generalized_objective(fft, b, power, cap, fixed, x + a1 * d)
    assert best <= min(vals) + 1e-9 * abs(min(vals))
    # fixed costs change the step: the time-only minimiser is not the generalized one
    a0 = ka.beckmann_line_search(fft, b, power, cap, x, d, 1e-12)
    assert 0 < a1 < 1 and 0 < a0 < 1 and a0 != a1
    # with zero fixed costs the generalized kernels are the time-only kernels, bit for bit
    zero = np.zeros(n)
    ka.generalized_cost(fft, b, power, cap, zero, x, c1)
    ka.bpr_cost(fft, b, power, cap, x, t)
    np.testing.assert_array_equal(c1, t)
    assert ka.generalized_objective(fft, b, power, cap, zero, x) == ka.beckmann_objective(
        fft, b, power, cap, x
    )
    assert ka.generalized_line_search(fft, b, power, cap, zero, x, d, 1e-12) == a0


def test_twin_assign_takes_the_factors_and_writes_generalized_costs(tmp_path):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from twin.cli import app

    p = tmp_path / "tiny_net.tntp"
    p.write_text(_tntp_net())
    t = tmp_path / "tiny_trips.tntp"
    t.write_text(f"<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 2 : {DEMAND};\n")
    out = tmp_path / "flows.parquet"
    res = CliRunner().invoke(app, ["assign", str(p), str(t), "--gap", "1e-10", "--toll-factor", "0.25",
                                   "--distance-factor", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "toll factor" in res.output and "total generalized cost" in res.output
    tab = pq.read_table(out).to_pydict()
    toll, length = np.array([4.0, 0.0]), np.array([2.0, 8.0])
    np.testing.assert_allclose(tab["flow"], _linear_split(0.25 * toll + length), rtol=1e-6)
    np.testing.assert_allclose(np.array(tab["generalized_cost"]) - np.array(tab["cost"]), 0.25 * toll + length)
    res = CliRunner().invoke(app, ["assign", str(p), str(t), "--distance-factor", "nan"])
    assert res.exit_code == 2 and "--distance-factor: must be a finite number" in res.output
