"""Quickest-evacuation lower bound on the time-expanded network, and the burst clearance.

Hand-derived values on paths and parallel exits, the maximum flow against networkx on the unpruned
network (the textbook construction where it applies), the bound against the queue kernel, and a
real map.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from twin.domains.evacuation.bounds import burst_clearance_s, quickest_evacuation_time_s, time_expanded_max_flow
from twin.kernels.queue import STATUS_ARRIVED, QueueSim
from twin.network.road_network import RoadNetwork

PATH_TAIL = np.array([0, 1, 2], dtype=np.int32)
PATH_HEAD = np.array([1, 2, 3], dtype=np.int32)


def simulate(tau_s: np.ndarray, cap_veh_per_s: np.ndarray, routes: list[list[int]],
             storage_veh: np.ndarray | None = None, dt_s: float = 1.0) -> float:
    """The queue kernel's clearance (last arrival) of vehicles leaving at 0 s on these routes."""
    storage = np.full(tau_s.size, 1e6) if storage_veh is None else storage_veh
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in routes])])
    sim = QueueSim(fftt_s=tau_s, cap_veh_per_s=cap_veh_per_s, storage_veh=storage, route_indptr=indptr,
                   route_links=np.concatenate(routes), dt_s=dt_s, backend="python")
    sim.schedule(np.arange(len(routes)), np.zeros(len(routes)))
    t_s = 0.0
    while not np.all(sim.status == STATUS_ARRIVED):
        assert t_s < 1e5, "the simulation does not clear"
        t_s += 600.0
        sim.advance(t_s)
    return float(sim.arrive_s.max())


def test_single_path_exact_value_and_burst() -> None:
    # tau = 3 + 5 + 7 = 15 s, mu = 1 veh/s, step 1 s, N = 10 at node 0. D(0) = 15: the evacuees
    # start in layer 15; every link is on the shortest path, so its reduced time is 0 and it joins
    # layer t to layer t. One vehicle a layer passes, so layers 15, 16, ..., L deliver L - 14: the
    # tenth arrives in layer 24, i.e. tau + N - 1 = 24 s (the last leaves node 0 at 9 s).
    tau = np.array([3.0, 5.0, 7.0])
    mu = np.ones(3)
    args = (PATH_TAIL, PATH_HEAD, tau, mu, [0], [10], [3])
    q = quickest_evacuation_time_s(*args, step_s=1.0, max_horizon_s=1000)
    assert q == 24.0
    assert quickest_evacuation_time_s(*args, step_s=1.0, max_horizon_s=1000, whole_vehicles=False) == 24.0
    # the fluid burst: the queue empties at N/mu = 10 s, the last arrives at 25 s, one step later
    assert burst_clearance_s(10, 15.0, 1.0) == 25.0
    assert 0 < burst_clearance_s(10, 15.0, 1.0) - q <= 1.0
    # the queue kernel (whole vehicles, first one at once) takes exactly as long
    assert simulate(tau, mu, [[0, 1, 2]] * 10) == 24.0
    # mu = 0.5 veh/s, step 2 s (one vehicle a layer), tau = 16 s: start layer 8, ten layers 8..17
    tau2 = np.array([3.0, 5.0, 8.0])
    q2 = quickest_evacuation_time_s(PATH_TAIL, PATH_HEAD, tau2, mu / 2, [0], [10], [3], 2.0, 1000)
    assert q2 == 16.0 + 9 * 2.0 == simulate(tau2, mu / 2, [[0, 1, 2]] * 10)
    assert 0 < burst_clearance_s(10, 16.0, 0.5) - q2 <= 2.0


def test_no_rounding_up_of_travel_times() -> None:
    # three 11 s links, ample capacity, one evacuee: 33 s (rounding each link up to 10 s steps: 60)
    tau = np.full(3, 11.0)
    q = quickest_evacuation_time_s(PATH_TAIL, PATH_HEAD, tau, np.full(3, 100.0), [0], [1], [3], 10.0, 1000)
    assert q == 33.0 == simulate(tau, np.full(3, 100.0), [[0, 1, 2]])
    # five evacuees at 1 veh/s: the last leaves at 4 s and arrives at 37 s in the kernel; a 10 s layer
    # passes all five, so the bound stays at the free-flow 33 s
    q5 = quickest_evacuation_time_s(PATH_TAIL, PATH_HEAD, tau, np.ones(3), [0], [5], [3], 10.0, 1000)
    assert q5 == 33.0 <= simulate(tau, np.ones(3), [[0, 1, 2]] * 5) == 37.0


@pytest.mark.parametrize("two_sinks", [False, True])
def test_two_equal_exits_halve_the_queue(two_sinks: bool) -> None:
    # 20 evacuees at node 0, exits of 10 s and 0.5 veh/s (one vehicle a 2 s layer), D = 10 s: start
    # layer 5. One exit: 20 layers, 5..24 -> 48 s; two exits: 2 vehicles a layer, 5..14 -> 28 s.
    # The queueing part after the first arrival halves up to a step: 38 s -> 18 s.
    tail = np.array([0, 0])
    head = np.array([1, 2]) if two_sinks else np.array([1, 1])
    sinks = [1, 2] if two_sinks else [1]
    tau, mu = np.full(2, 10.0), np.full(2, 0.5)
    one = quickest_evacuation_time_s(tail[:1], head[:1], tau[:1], mu[:1], [0], [20], [1], 2.0, 1000)
    two = quickest_evacuation_time_s(tail, head, tau, mu, [0], [20], sinks, 2.0, 1000)
    assert one == 48.0
    assert two == 28.0
    assert (two - 10.0) == (one - 10.0 - 2.0) / 2
    for q, n_exits in ((one, 1), (two, 2)):
        assert 0 <= burst_clearance_s(20, 10.0, 0.5, n_exits) - q <= 2.0
    assert burst_clearance_s(20, 10.0, 0.5, 2) - 10.0 == (burst_clearance_s(20, 10.0, 0.5) - 10.0) / 2
    # through the queue kernel (2 s steps): the burst clears in tau + N / mu within one step (the
    # first vehicle leaves at once: tau + (N - 1) / mu), and splitting it over the two exits halves
    # the queueing part, within one step
    for dt in (1.0, 2.0):
        sim_one = simulate(tau, mu, [[0]] * 20, dt_s=dt)
        sim_two = simulate(tau, mu, [[0], [1]] * 10, dt_s=dt)
        assert 0 <= burst_clearance_s(20, 10.0, 0.5) - sim_one <= max(dt, 1 / 0.5) and sim_one >= one
        assert 0 <= burst_clearance_s(20, 10.0, 0.5, 2) - sim_two <= max(dt, 1 / 0.5) and sim_two >= two
        assert abs((sim_two - 10.0) - (sim_one - 10.0) / 2) <= dt


def test_bottleneck_in_the_middle_governs() -> None:
    # tau = 4 + 8 + 4 = 16 s, capacities 2, 0.25, 2 veh/s, step 4 s (the bottleneck passes one vehicle
    # a layer, the others 8), 12 evacuees: start layer 4, 12 layers 4..15 -> 60 s = 16 + 11 / 0.25
    tau = np.array([4.0, 8.0, 4.0])
    cap = np.array([2.0, 0.25, 2.0])
    args = (PATH_TAIL, PATH_HEAD, tau)
    q = quickest_evacuation_time_s(*args, cap, [0], [12], [3], 4.0, 1000)
    assert q == 60.0 == simulate(tau, cap, [[0, 1, 2]] * 12)
    # the other links do not matter, the bottleneck does
    assert quickest_evacuation_time_s(*args, np.array([50.0, 0.25, 50.0]), [0], [12], [3], 4.0, 1000) == 60.0
    # a bottleneck twice as wide: 2 a layer, 6 layers 4..9 -> 36 s (the kernel: 16 + 11 / 0.5 = 38 s)
    wider = np.array([2.0, 0.5, 2.0])
    assert quickest_evacuation_time_s(*args, wider, [0], [12], [3], 4.0, 1000) == 36.0
    assert simulate(tau, wider, [[0, 1, 2]] * 12) == 38.0
    assert 0 <= burst_clearance_s(12, 16.0, 0.25) - q <= 4.0


def test_whole_vehicles_bound_the_kernel_where_the_fluid_does_not() -> None:
    # 19 vehicles through one 10 s link of 0.25 veh/s, step 5 s: the kernel lets the first go at once
    # and then one every 4 s: 10 + 18 * 4 = 82 s. The fluid 1.25 vehicles a layer needs
    # ceil(19 / 1.25) = 16 layers from layer 2: 85 s, above the kernel; whole vehicles, 2 a layer:
    # 10 layers, 55 s.
    tau, cap = np.array([10.0]), np.array([0.25])
    sim = simulate(tau, cap, [[0]] * 19)
    assert sim == 82.0
    args = ([0], [1], tau, cap, [0], [19], [1], 5.0, 1000)
    assert quickest_evacuation_time_s(*args, whole_vehicles=False) == 85.0
    assert quickest_evacuation_time_s(*args) == 55.0
    assert quickest_evacuation_time_s(*args, burst_veh=1.0) == 40.0  # 3 a layer: 7 layers


def random_network(seed: int, n: int = 7, m: int = 16, integer_steps: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n, m)
    head = (tail + rng.integers(1, n, m)) % n  # no self-loops; parallel links allowed
    if integer_steps:
        tau = rng.integers(0, 4, m) * float(integer_steps)
    else:
        tau = np.round(rng.uniform(0.0, 25.0, m), 2)
    cap = rng.choice([0.1, 0.25, 0.5, 1.0], m)
    return {"tail": tail, "head": head, "tau": tau, "cap": cap, "supply_node": rng.choice(n - 2, 3),
            "supply": rng.integers(1, 8, 3).astype(float), "sink": np.array([n - 2, n - 1])}


def brute_force_flow(net: dict[str, np.ndarray], horizon_s: float, step_s: float, *, reduced: bool,
                     sink_capacity: list[float] | None = None) -> float:
    """The maximum flow of the full, unpruned time-expanded network, built edge by edge in networkx.

    ``reduced``: the module's layers in reduced time (D from networkx's Dijkstra); else the textbook
    construction (travel times whole multiples of the step, every node copy from layer 0). Every
    sink copy drains into the supersink, through one intermediate node per sink when capacitated.
    """
    n = int(max(net["tail"].max(), net["head"].max(), net["sink"].max())) + 1
    g = nx.MultiDiGraph()
    for u, v, t in zip(net["tail"].tolist(), net["head"].tolist(), net["tau"].tolist()):
        g.add_edge(v, u, w=t)  # reversed, for the distances to the sinks
    d = nx.multi_source_dijkstra_path_length(g, set(net["sink"].tolist()), weight="w") if reduced else {}
    big = 1e9
    n_layers = int(math.floor(horizon_s / step_s + 1e-9))
    te = nx.DiGraph()

    def add(a: object, b: object, c: float) -> None:
        c0 = te.edges[a, b]["capacity"] if te.has_edge(a, b) else 0.0
        te.add_edge(a, b, capacity=c0 + c)

    for v in range(n):
        for t in range(n_layers):
            add((v, t), (v, t + 1), big)
    for u, v, tau, c in zip(net["tail"].tolist(), net["head"].tolist(), net["tau"].tolist(), net["cap"].tolist()):
        if reduced:
            if u not in d or v not in d:
                continue
            k = int(math.floor((tau + d[v] - d[u]) / step_s + 1e-9))
        else:
            k = int(round(tau / step_s))
        for t in range(n_layers - k + 1):
            add((u, t), (v, t + k), math.ceil(c * step_s))
    for s, amount in zip(net["supply_node"].tolist(), net["supply"].tolist()):
        if reduced and (s not in d or d[s] > horizon_s):
            continue
        start = int(math.floor(d[s] / step_s + 1e-9)) if reduced else 0
        add("source", (s, start), amount)
    for j, kk in enumerate(net["sink"].tolist()):
        for t in range(n_layers + 1):
            if sink_capacity is None:
                add((kk, t), "sink", big)
            else:
                add((kk, t), ("shelter", kk), big)
        if sink_capacity is not None:
            add(("shelter", kk), "sink", sink_capacity[j])
    if "source" not in te or "sink" not in te:
        return 0.0
    return float(nx.maximum_flow_value(te, "source", "sink"))


def flow(net: dict[str, np.ndarray], horizon_s: float, step_s: float, **kw: Any) -> float:
    return time_expanded_max_flow(net["tail"], net["head"], net["tau"], net["cap"], net["supply_node"],
                                  net["supply"], net["sink"], horizon_s, step_s, **kw)


@pytest.mark.parametrize("seed", range(6))
def test_pruned_flow_equals_the_unpruned_network(seed: int) -> None:
    net = random_network(seed)
    step = 5.0
    for horizon in (0.0, 12.0, 30.0, 55.0, 90.0):
        ref = brute_force_flow(net, horizon, step, reduced=True)
        assert flow(net, horizon, step) == pytest.approx(ref, abs=1e-9)
        assert flow(net, horizon, step, method="networkx") == pytest.approx(ref, abs=1e-9)
        caps = [3.0, 100.0]
        assert flow(net, horizon, step, sink_capacity=caps) == pytest.approx(
            brute_force_flow(net, horizon, step, reduced=True, sink_capacity=caps), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_reduced_layers_equal_the_textbook_network_for_whole_step_times(seed: int) -> None:
    # travel times in whole steps: the reduced layering is an exact relabelling of Ford and Fulkerson's
    # time-expanded network (node v's layer shifted by D(v) / step)
    net = random_network(seed, integer_steps=3)
    for horizon in (0.0, 6.0, 15.0, 27.0, 45.0):
        assert flow(net, horizon, 3.0) == pytest.approx(brute_force_flow(net, horizon, 3.0, reduced=False), abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_flow_monotone_in_horizon_and_quickest_is_the_least_feasible(seed: int) -> None:
    net = random_network(seed)
    step = 5.0
    q = quickest_evacuation_time_s(net["tail"], net["head"], net["tau"], net["cap"], net["supply_node"],
                                   net["supply"], net["sink"], step, 1e4)
    total = float(net["supply"].sum())
    if math.isinf(q):  # a supply that reaches no sink: never everyone
        assert flow(net, 1e3, step) < total
        return
    values = [flow(net, h, step) for h in np.arange(0.0, q + 6 * step, step / 2)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert flow(net, q, step) == total
    assert flow(net, q - step, step) < total
    assert values[-1] == total


def test_never_above_the_queue_kernel_on_random_networks() -> None:
    # vehicles on shortest paths to a random sink, small storage (spillback): the kernel's clearance is
    # never below the bound (whole vehicles, any step), and the bound is not trivial either
    n_checked, n_queueing = 0, 0
    for seed in range(30):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(4, 10))
        g = nx.gnm_random_graph(n, int(rng.integers(n, 3 * n)), seed=seed, directed=True)
        edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
        tail, head = edges[:, 0], edges[:, 1]
        tau = np.round(rng.uniform(1.0, 30.0, tail.size), 2)
        cap = rng.choice([1 / 6, 0.25, 0.5, 1.0, 1.25], tail.size)
        sinks = rng.choice(n, int(rng.integers(1, 3)), replace=False)
        for e, (u, v) in enumerate(zip(tail.tolist(), head.tolist())):
            g.edges[u, v]["w"], g.edges[u, v]["e"] = tau[e], e
        origins, routes = [], []
        for s in rng.choice(n, 3, replace=False).tolist():
            for _ in range(int(rng.integers(1, 15))):
                k = int(rng.choice(sinks))
                if s == k or not nx.has_path(g, s, k):
                    continue
                p = nx.shortest_path(g, s, k, weight="w")
                routes.append([g.edges[a, b]["e"] for a, b in zip(p, p[1:])])
                origins.append(s)
        if not routes:
            continue
        sim_s = simulate(tau, cap, routes, rng.uniform(1.0, 6.0, tail.size))
        step = float(rng.choice([1.0, 2.0, 5.0, 6.0, 10.0, 30.0]))
        q = quickest_evacuation_time_s(tail, head, tau, cap, origins, np.ones(len(origins)), sinks, step, 1e5)
        assert q <= sim_s + 1e-6, (seed, q, sim_s)
        n_checked += 1
        free = quickest_evacuation_time_s(tail, head, tau, np.full(tail.size, 1e6), origins,
                                          np.ones(len(origins)), sinks, step, 1e5)
        n_queueing += q > free
    assert n_checked >= 20
    assert n_queueing >= 5  # the capacities matter in some of them


def test_sink_capacity_limits_and_unreachable_supply() -> None:
    # 0 -> 1 (sink, 10 s) and 0 -> 2 (sink, 40 s), 1 veh/s each, 6 evacuees, step 1 s
    tail, head = np.array([0, 0]), np.array([1, 2])
    tau, mu = np.array([10.0, 40.0]), np.ones(2)
    base = (tail, head, tau, mu, [0], [6], [1, 2], 1.0, 1000)
    assert quickest_evacuation_time_s(*base) == 15.0  # all via the near sink: 10 + 5
    # the near sink takes 4: two go to the far one, one a second, leaving at 0 and 1 s: 41 s
    assert quickest_evacuation_time_s(*base, sink_capacity=[4, 10]) == 41.0
    assert quickest_evacuation_time_s(*base, sink_capacity=[4, 1]) == math.inf  # room for 5 of 6
    # a supply node that reaches no sink, no supply, the horizon too short
    assert quickest_evacuation_time_s(tail, head, tau, mu, [1, 0], [1, 1], [2], 1.0, 1000) == math.inf
    assert quickest_evacuation_time_s(tail, head, tau, mu, [0], [0], [1], 1.0, 1000) == 0.0
    assert quickest_evacuation_time_s(*base[:7], 1.0, 14.0) == math.inf
    assert time_expanded_max_flow(*base[:7], 9.9, 1.0) == 0.0
    assert time_expanded_max_flow(*base[:7], 12.0, 1.0) == 3.0


def test_input_checks() -> None:
    ok = (PATH_TAIL, PATH_HEAD, np.ones(3), np.ones(3), [0], [1], [3])
    with pytest.raises(ValueError, match="link_time_s"):
        quickest_evacuation_time_s(PATH_TAIL, PATH_HEAD, np.ones(2), np.ones(3), [0], [1], [3], 1.0, 10)
    with pytest.raises(ValueError, match="supply"):
        quickest_evacuation_time_s(*ok[:5], [-1], [3], 1.0, 10)
    with pytest.raises(ValueError, match="sink_node"):
        quickest_evacuation_time_s(*ok[:6], [], 1.0, 10)
    with pytest.raises(ValueError, match="step_s"):
        quickest_evacuation_time_s(*ok, 0.0, 10)
    with pytest.raises(ValueError, match="method"):
        time_expanded_max_flow(*ok, 10.0, 1.0, method="simplex")
    with pytest.raises(ValueError, match="mu_veh_per_s"):
        burst_clearance_s(10, 1.0, 0.0)
    with pytest.raises(ValueError, match="n_exits"):
        burst_clearance_s(10, 1.0, 1.0, n_exits=0)
    assert burst_clearance_s(0, 7.0, 2.0) == 7.0
    assert burst_clearance_s(30, 5.0, 0.5, n_exits=3) == 25.0


@pytest.fixture(scope="module")
def tsukuba(shared: Path) -> RoadNetwork:
    return RoadNetwork.load(shared / "maps/japan/tsukuba_aist.osm", "drive")


def test_real_map_bound(tsukuba: RoadNetwork) -> None:
    net = tsukuba
    rng = np.random.default_rng(7)
    nodes = rng.choice(net.n_nodes, 23, replace=False)
    src, sinks = nodes[:20], nodes[20:]
    n_each = 20
    cap = net.link_capacity_vph / 3600.0
    args = (net.link_tail, net.link_head, net.link_fftt_s, cap, src, np.full(20, float(n_each)), sinks)
    step = 30.0
    q = quickest_evacuation_time_s(*args, step, 4 * 3600.0)
    assert math.isfinite(q)
    # a lower bound of the lower bound: the farthest supplied node's free-flow time to its nearest sink
    g = net.to_networkx(weight="travel_time").reverse()
    d = nx.multi_source_dijkstra_path_length(g, set(sinks.tolist()), weight="travel_time")
    free_s = max(d[int(s)] for s in src)
    assert q >= free_s - 1e-6
    assert q > free_s + 120.0  # 400 evacuees on 600-1000 veh/h links: queues, not only travel
    half = quickest_evacuation_time_s(*args[:5], np.full(20, n_each / 2), sinks, step, 4 * 3600.0)
    assert free_s - 1e-6 <= half < q
    total = 20.0 * n_each
    assert time_expanded_max_flow(*args, q, step) == total
    assert time_expanded_max_flow(*args, q - step, step) < total
    # the queue kernel, everyone on a shortest path to the nearest sink, clears no earlier
    fastest = {}
    for e in np.argsort(-net.link_fftt_s, kind="stable"):  # the fastest link between two nodes wins
        fastest[(int(net.link_tail[e]), int(net.link_head[e]))] = int(e)
    _, paths = nx.multi_source_dijkstra(g, set(sinks.tolist()), weight="travel_time")
    routes = []
    for s in src:
        nodes_to_sink = paths[int(s)][::-1]  # paths in the reversed graph run from a sink to s
        routes += [[fastest[(a, b)] for a, b in zip(nodes_to_sink, nodes_to_sink[1:])]] * n_each
    sim_s = simulate(net.link_fftt_s, cap, routes, net.link_storage_veh)
    assert sim_s >= q - 1e-6
