"""Static user-equilibrium assignment and the TNTP readers.

Real data: ``../shared/validation/tntp/SiouxFalls`` (TransportationNetworks;
academic use only, never copied into the repository). Those tests skip without
the folder, and fail when the environment variable ``CI`` is set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import networkx as nx
import numba
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from twin.assignment import (
    TntpNetwork,
    parse_tntp_flow,
    parse_tntp_net,
    parse_tntp_trips,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
    solve_ue,
)
from twin.kernels import assignment as ka

SHARED = Path(__file__).resolve().parents[2] / "shared"
SIOUX = SHARED / "validation" / "tntp" / "SiouxFalls"
# README: "Optimal objective function value: 42.31335287107440" in units of 1e5 (flows in
# hundreds of vehicles); the files' own units give 100000 x that.
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
    flow = read_tntp_flow(d / "SiouxFalls_flow.tntp")
    return net, od, flow


# --------------------------------------------------------------------------- SiouxFalls


def test_sioux_files_read(sioux):
    net, od, flow = sioux
    assert (net.n_zones, net.n_nodes, net.n_links, net.first_thru_node) == (24, 24, 76, 1)
    assert od.shape == (24, 24)
    assert od.sum() == pytest.approx(360600.0)
    assert od[0, 1] == 100.0 and od[0, 9] == 1300.0 and od[23, 23] == 0.0
    assert net.init_node[0] == 0 and net.term_node[0] == 1
    assert net.capacity[0] == pytest.approx(25900.20064)
    np.testing.assert_array_equal(flow.init_node, net.init_node)
    np.testing.assert_array_equal(flow.term_node, net.term_node)


@pytest.mark.parametrize("method", ["bfw", "cfw"])
def test_sioux_ue_gap_and_objective(sioux, method):
    net, od, _ = sioux
    res = solve_ue(net, od, method=method, gap_tol=1e-4, max_iter=2000)
    assert res.converged
    assert res.relative_gap[-1] <= 1e-4
    assert res.iterations == len(res.relative_gap) - 1 == len(res.step_size)
    rel = abs(res.objective[-1] - SIOUX_BEST_OBJECTIVE) / SIOUX_BEST_OBJECTIVE
    assert rel <= 1e-4, rel
    # the objective decreases monotonically along exact line searches, from above the optimum
    assert np.all(np.diff(res.objective) <= 1e-9 * res.objective[0])
    assert res.objective.min() >= SIOUX_BEST_OBJECTIVE * (1 - 1e-9)
    # consistency of the reported quantities
    assert res.tstt == pytest.approx(float(res.flow @ res.cost), rel=1e-12)
    assert res.relative_gap[-1] == pytest.approx((res.tstt - res.sptt) / res.tstt, rel=1e-12)


def test_sioux_bfw_beats_fw(sioux):
    net, od, _ = sioux
    bfw = solve_ue(net, od, method="bfw", gap_tol=1e-4, max_iter=3000)
    fw = solve_ue(net, od, method="fw", gap_tol=1e-4, max_iter=3000)
    assert bfw.converged and fw.converged
    assert bfw.iterations * 4 < fw.iterations  # about 85 vs 1100 iterations


def test_sioux_flows_match_best_known(sioux):
    """At gap 1e-6 every link with more than 100 veh is within 0.2 % of the best-known flow.

    (Link flows converge more slowly than the objective: at gap 1e-4 the error is about 0.5 %.)
    """
    net, od, best = sioux
    res = solve_ue(net, od, method="bfw", gap_tol=1e-6, max_iter=5000)
    assert res.converged
    big = best.volume > 100
    rel_err = np.abs(res.flow - best.volume)[big] / best.volume[big]
    assert rel_err.max() <= 2e-3, rel_err.max()
    np.testing.assert_allclose(res.cost, best.cost, rtol=2e-3)  # power 4 amplifies flow errors
    # our BPR cost of the best-known flows reproduces the file's costs
    cost = np.empty(net.n_links)
    ka.bpr_cost(net.free_flow_time, net.b, net.power, net.capacity, best.volume, cost)
    np.testing.assert_allclose(cost, best.cost, rtol=1e-9)
    rel = abs(res.objective[-1] - SIOUX_BEST_OBJECTIVE) / SIOUX_BEST_OBJECTIVE
    assert rel <= 1e-6


def test_sioux_deterministic_and_link_order_independent(sioux):
    net, od, _ = sioux
    a = solve_ue(net, od, gap_tol=1e-5)
    b = solve_ue(net, od, gap_tol=1e-5)
    np.testing.assert_array_equal(a.flow, b.flow)
    np.testing.assert_array_equal(a.relative_gap, b.relative_gap)
    # independent of the number of threads (fixed origin blocks, fixed reduction order)
    n_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = solve_ue(net, od, gap_tol=1e-5)
    finally:
        numba.set_num_threads(n_threads)
    np.testing.assert_array_equal(a.flow, one.flow)
    # shuffled link order: same equilibrium, reported in the caller's order
    perm = np.random.default_rng(7).permutation(net.n_links)
    shuffled = TntpNetwork.from_links(
        net.init_node[perm],
        net.term_node[perm],
        net.free_flow_time[perm],
        net.capacity[perm],
        b=net.b[perm],
        power=net.power[perm],
        n_zones=net.n_zones,
        n_nodes=net.n_nodes,
        first_thru_node=net.first_thru_node,
    )
    c = solve_ue(shuffled, od, gap_tol=1e-8, max_iter=20000)
    d = solve_ue(net, od, gap_tol=1e-8, max_iter=20000)
    np.testing.assert_allclose(c.flow, d.flow[perm], rtol=1e-3, atol=1.0)


# --------------------------------------------------------------------------- small analytical cases


@pytest.mark.parametrize("method", ["fw", "cfw", "bfw"])
def test_two_parallel_links_match_analytical_equilibrium(method):
    fft = np.array([10.0, 15.0])
    cap = np.array([1000.0, 3000.0])
    b, p = 0.15, 4.0
    demand = 5000.0
    net = TntpNetwork.from_links([0, 0], [1, 1], fft, cap, b=b, power=p, n_zones=2)
    od = np.array([[0.0, demand], [0.0, 0.0]])

    def t(i, x):
        return fft[i] * (1 + b * (x / cap[i]) ** p)

    x1 = brentq(lambda x: t(0, x) - t(1, demand - x), 0.0, demand, xtol=1e-13, rtol=1e-15)
    res = solve_ue(net, od, method=method, gap_tol=1e-12, max_iter=100)
    assert res.converged
    np.testing.assert_allclose(res.flow, [x1, demand - x1], rtol=1e-6)
    np.testing.assert_allclose(res.cost, [t(0, x1), t(1, demand - x1)], rtol=1e-6)
    obj = sum(quad(lambda s, i=i: t(i, s), 0.0, xf)[0] for i, xf in enumerate([x1, demand - x1]))
    assert res.objective[-1] == pytest.approx(obj, rel=1e-9)


def test_first_thru_node_blocks_paths_through_zones():
    # nodes 1, 2, 3 (0-based 0, 1, 2): short path 1 -> 2 -> 3 through node 2, long link 1 -> 3
    links = ([0, 1, 0], [1, 2, 2])
    fft = [1.0, 1.0, 10.0]
    od = np.zeros((3, 3))
    od[0, 2] = 100.0
    od[0, 1] = 5.0
    free = TntpNetwork.from_links(
        *links, fft, [1.0, 1.0, 1.0], b=0.0, power=0.0, n_zones=3, first_thru_node=1
    )
    res = solve_ue(free, od, gap_tol=1e-12)
    np.testing.assert_allclose(res.flow, [105.0, 100.0, 0.0])
    assert res.sptt == pytest.approx(100 * 2.0 + 5 * 1.0)
    # node 2 is a zone (first thru node 3): it may end a path but not be passed through
    blocked = TntpNetwork.from_links(
        *links, fft, [1.0, 1.0, 1.0], b=0.0, power=0.0, n_zones=3, first_thru_node=3
    )
    res = solve_ue(blocked, od, gap_tol=1e-12)
    np.testing.assert_allclose(res.flow, [5.0, 0.0, 100.0])
    assert res.sptt == pytest.approx(100 * 10.0 + 5 * 1.0)
    # without the direct link, the demand 1 -> 3 has no allowed path
    nolink = TntpNetwork.from_links(
        [0, 1], [1, 2], [1.0, 1.0], [1.0, 1.0], b=0.0, power=0.0, n_zones=3, first_thru_node=3
    )
    with pytest.raises(ValueError, match="no path"):
        solve_ue(nolink, od)


def test_braess_network_equilibrium():
    """Braess network: 4000 trips s -> t, sides 1 + x/100 and 45, a free bridge a -> b.

    Every trip uses s -> a -> b -> t at equilibrium (cost 2 + 80 = 82 < 1 + 40 + 45 = 86).
    """
    # s=0, t=1 (zones), a=2, b=3; links: s-a, a-t, s-b, b-t, a-b
    init = [0, 2, 0, 3, 2]
    term = [2, 1, 3, 1, 3]
    fft = [1.0, 45.0, 45.0, 1.0, 0.0]
    cap = [100.0, 1.0, 1.0, 100.0, 1.0]
    net = TntpNetwork.from_links(
        init,
        term,
        fft,
        cap,
        b=[1.0, 0, 0, 1.0, 0],
        power=[1.0, 0, 0, 1.0, 0],
        n_zones=2,
        first_thru_node=3,
    )
    od = np.array([[0.0, 4000.0], [0.0, 0.0]])
    res = solve_ue(net, od, gap_tol=1e-9, max_iter=2000)
    assert res.converged
    np.testing.assert_allclose(res.flow, [4000, 0, 0, 4000, 4000], atol=1e-6)
    assert res.sptt / 4000 == pytest.approx(82.0, rel=1e-12)
    # the reverse (demand 4000 with the bridge removed): even split, cost 1 + 20 + 45 = 66
    net2 = TntpNetwork.from_links(
        init[:4],
        term[:4],
        fft[:4],
        cap[:4],
        b=[1.0, 0, 0, 1.0],
        power=[1.0, 0, 0, 1.0],
        n_zones=2,
        first_thru_node=3,
    )
    res2 = solve_ue(net2, od, gap_tol=1e-12, max_iter=100)
    np.testing.assert_allclose(res2.flow, [2000, 2000, 2000, 2000], rtol=1e-9)


def test_solve_ue_input_errors():
    net = TntpNetwork.from_links([0], [1], [1.0], [1.0], n_zones=2)
    with pytest.raises(ValueError, match="shape"):
        solve_ue(net, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        solve_ue(net, np.array([[0.0, -1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="method"):
        solve_ue(net, np.zeros((2, 2)), method="msa")
    res = solve_ue(net, np.zeros((2, 2)))  # no demand: trivially at equilibrium
    assert res.converged and res.flow.tolist() == [0.0]


# --------------------------------------------------------------------------- TNTP parser

NET_TEXT = (
    "~ a hand-written network\r\n"
    "<NUMBER OF ZONES> 2\r\n"
    "<NUMBER OF NODES>\t\t3\r\n"
    "<FIRST THRU NODE> 3\r\n"
    "<NUMBER OF LINKS> 3\r\n"
    "<ORIGINAL HEADER>~ Init node Term node ;\r\n"
    "<END OF METADATA>\r\n"
    "\r\n"
    "~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\tlink_type\t;\r\n"
    "\t1\t3\t1000\t2.5\t3\t0.15\t4\t50\t0\t1\t;\r\n"
    "3 2 2000.5 1 1.5e0 0.15 4 50 0 2 ; ~ trailing comment\r\n"
    "   2  1  500 4 4 0 0 0 0 9\r\n"
)

TRIPS_TEXT = (
    "<NUMBER OF ZONES> 3\n"
    "<TOTAL OD FLOW> 13.5\n"
    "<END OF METADATA>\n"
    "~ comment line\n"
    "Origin 1\n"
    "    1 :      0.0;     2 :    4.0;  3:1.5e0;\n"
    "Origin \t2\n"
    "3 : 7 ;  1 : 1\n"
    "Origin 3 ~ nothing from zone 3\n"
)


def test_parse_net_metadata_comments_and_columns():
    net = parse_tntp_net(NET_TEXT, source="x_net.tntp")
    assert (net.n_zones, net.n_nodes, net.n_links, net.first_thru_node) == (2, 3, 3, 3)
    np.testing.assert_array_equal(net.init_node, [0, 2, 1])
    np.testing.assert_array_equal(net.term_node, [2, 1, 0])
    np.testing.assert_allclose(net.capacity, [1000, 2000.5, 500])
    np.testing.assert_allclose(net.length, [2.5, 1, 4])
    np.testing.assert_allclose(net.free_flow_time, [3, 1.5, 4])
    np.testing.assert_allclose(net.b, [0.15, 0.15, 0])
    np.testing.assert_allclose(net.power, [4, 4, 0])
    np.testing.assert_allclose(net.speed, [50, 50, 0])
    np.testing.assert_array_equal(net.link_type, [1, 2, 9])
    assert net.init_node.dtype == np.int32
    assert net.metadata["ORIGINAL HEADER"].startswith("~ Init node")
    assert net.source == "x_net.tntp"


def test_parse_trips_blocks_and_several_entries_per_line():
    od = parse_tntp_trips(TRIPS_TEXT)
    expected = np.array([[0.0, 4.0, 1.5], [1.0, 0.0, 7.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(od, expected)
    # a larger network: the matrix has the network's zone count
    od5 = parse_tntp_trips(TRIPS_TEXT, n_zones=5)
    assert od5.shape == (5, 5)
    np.testing.assert_array_equal(od5[:3, :3], expected)


def test_parse_flow_file():
    fl = parse_tntp_flow(
        "From \tTo \tVolume \tCost \r\n1 \t2 \t4494.65 \t6.0008 \r\n2\t1\t0\t6\r\n"
    )
    np.testing.assert_array_equal(fl.init_node, [0, 1])
    np.testing.assert_array_equal(fl.term_node, [1, 0])
    np.testing.assert_allclose(fl.volume, [4494.65, 0.0])
    np.testing.assert_allclose(fl.cost, [6.0008, 6.0])


def test_read_files_and_malformed_lines_name_file_and_line(tmp_path):
    p = tmp_path / "t_net.tntp"
    p.write_bytes(NET_TEXT.encode())
    assert read_tntp_net(p).n_links == 3
    bad = NET_TEXT.replace("3 2 2000.5 1 1.5e0", "3 2 2000.5 1 fast")
    p.write_text(bad)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:11: non-numeric"):
        read_tntp_net(p)
    p.write_text(NET_TEXT.replace("   2  1  500 4 4 0 0 0 0 9", "2 1 500 4"))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:12: expected 10 link fields"):
        read_tntp_net(p)
    p.write_text(NET_TEXT.replace("<NUMBER OF LINKS> 3", "<NUMBER OF LINKS> 4"))
    with pytest.raises(ValueError, match="NUMBER OF LINKS"):
        read_tntp_net(p)
    p.write_text(NET_TEXT.replace("3 2 2000.5", "7 2 2000.5"))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:11: node 7 outside 1..3"):
        read_tntp_net(p)
    p.write_text(NET_TEXT.replace("<NUMBER OF ZONES> 2\r\n", ""))
    with pytest.raises(ValueError, match="NUMBER OF ZONES"):
        read_tntp_net(p)

    t = tmp_path / "t_trips.tntp"
    t.write_text(TRIPS_TEXT.replace("3 : 7 ;", "3 = 7 ;"))
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(t))}:8: expected 'Origin N' or 'dest : value;'"
    ):
        read_tntp_trips(t, 3)
    t.write_text(TRIPS_TEXT.replace("Origin 1\n", ""))
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(t))}:5: 'dest : value' entry before the first 'Origin N'",
    ):
        read_tntp_trips(t, 3)
    t.write_text(TRIPS_TEXT.replace("3 : 7", "4 : 7"))
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(t))}:8: destination zone 4 outside 1..3"
    ):
        read_tntp_trips(t, 3)
    t.write_text(TRIPS_TEXT)
    with pytest.raises(ValueError, match="exceeds"):
        read_tntp_trips(t, 2)

    f = tmp_path / "t_flow.tntp"
    f.write_text("From To Volume Cost\n1 2 3\n")
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(f))}:2: expected 'from to volume cost'"
    ):
        read_tntp_flow(f)
    with pytest.raises(ValueError, match="cannot read"):
        read_tntp_net(tmp_path / "missing_net.tntp")


# --------------------------------------------------------------------------- kernels


def _random_network(seed, n_nodes=40, n_zones=8, avg_degree=4):
    rng = np.random.default_rng(seed)
    n_links = n_nodes * avg_degree
    tail = rng.integers(0, n_nodes, n_links)
    head = rng.integers(0, n_nodes, n_links)
    # a ring guarantees strong connectivity
    tail = np.concatenate([tail, np.arange(n_nodes)])
    head = np.concatenate([head, (np.arange(n_nodes) + 1) % n_nodes])
    order = np.argsort(tail, kind="stable")
    tail, head = tail[order], head[order]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=n_nodes), out=indptr[1:])
    weight = rng.uniform(0.0, 10.0, tail.size)
    weight[rng.random(tail.size) < 0.05] = 0.0
    od = rng.uniform(0, 100, (n_zones, n_zones)) * (rng.random((n_zones, n_zones)) < 0.7)
    return indptr, head.astype(np.int32), tail.astype(np.int32), weight, od


@pytest.mark.parametrize("first_thru", [0, 5])
def test_aon_kernel_equals_py_func_and_networkx(first_thru):
    indptr, head, tail, weight, od = _random_network(3)
    n_blocks, n_links = 3, head.size
    outs = []
    for fn in (ka.aon_load, ka.aon_load.py_func):
        flow = np.empty((n_blocks, n_links))
        sptt = np.empty(n_blocks)
        unreached = np.empty(n_blocks)
        fn(indptr, head, tail, weight, od, first_thru, flow, sptt, unreached)
        outs.append((flow, sptt, unreached))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    # tree kernel and its twin, and least costs against networkx on the graph without zone nodes
    n = indptr.size - 1
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n))
    for e in range(n_links):
        g.add_edge(int(tail[e]), int(head[e]), weight=float(weight[e]))
    for src in range(od.shape[0]):
        res = []
        for fn in (ka.sssp_tree_zones, ka.sssp_tree_zones.py_func):
            dist, pred, order = np.empty(n), np.empty(n, np.int32), np.empty(n, np.int64)
            k = fn(
                indptr,
                head,
                weight,
                src,
                first_thru,
                dist,
                pred,
                order,
                np.empty(n, np.bool_),
                np.empty(n_links + 1),
                np.empty(n_links + 1, np.int64),
            )
            res.append((k, dist.copy(), pred.copy(), order[:k].copy()))
        assert res[0][0] == res[1][0]
        for a, b in zip(res[0][1:], res[1][1:], strict=True):
            np.testing.assert_array_equal(a, b)
        # networkx: zones other than the source may only be path ends
        h = g.copy()
        h.remove_edges_from(
            [(u, v, key) for u, v, key in g.edges(keys=True) if u < first_thru and u != src]
        )
        ref = nx.single_source_dijkstra_path_length(h, src)
        dist = res[0][1]
        for v in range(n):
            assert dist[v] == pytest.approx(ref.get(v, np.inf), abs=1e-9)
    # all-or-nothing flows on least-cost paths: SPTT = sum of cost x flow
    flow_tot = outs[0][0].sum(axis=0)
    assert outs[0][1].sum() == pytest.approx(float(flow_tot @ weight), rel=1e-12)


def test_bpr_kernels_equal_py_func_and_closed_forms():
    rng = np.random.default_rng(11)
    n = 50
    fft = rng.uniform(0.5, 5, n)
    b = rng.uniform(0, 1, n)
    b[:5] = 0.0
    power = rng.uniform(0, 5, n)
    power[5:10] = 0.0
    power[10:15] = 1.0
    cap = rng.uniform(100, 1000, n)
    x = rng.uniform(0, 2000, n)
    x[15:20] = 0.0
    d = rng.uniform(-500, 500, n)
    d = np.maximum(d, -x)  # stays feasible
    for k in ("bpr_cost", "bpr_cost_derivative"):
        fn = getattr(ka, k)
        o1, o2 = np.empty(n), np.empty(n)
        fn(fft, b, power, cap, x, o1)
        fn.py_func(fft, b, power, cap, x, o2)
        np.testing.assert_array_equal(o1, o2)
    cost = np.empty(n)
    ka.bpr_cost(fft, b, power, cap, x, cost)
    np.testing.assert_allclose(cost, fft * (1 + b * (x / cap) ** power), rtol=1e-14)
    obj = ka.beckmann_objective(fft, b, power, cap, x)
    assert obj == ka.beckmann_objective.py_func(fft, b, power, cap, x)
    ref = sum(
        quad(lambda s, i=i: fft[i] * (1 + b[i] * (s / cap[i]) ** power[i]), 0, x[i])[0]
        for i in range(n)
    )
    assert obj == pytest.approx(ref, rel=1e-10)
    a1 = ka.beckmann_line_search(fft, b, power, cap, x, d, 1e-12)
    a2 = ka.beckmann_line_search.py_func(fft, b, power, cap, x, d, 1e-12)
    assert a1 == a2 and 0.0 <= a1 <= 1.0
    grid = np.linspace(0, 1, 2001)
    vals = [ka.beckmann_objective(fft, b, power, cap, x + g * d) for g in grid]
    assert ka.beckmann_objective(fft, b, power, cap, x + a1 * d) <= min(vals) + 1e-9 * abs(
        min(vals)
    )
