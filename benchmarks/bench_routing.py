"""Benchmark one-to-all least-cost trees: Numba kernels vs networkx.

Usage::

    PYTHONPATH=. python benchmarks/bench_routing.py                  # 150x150 grid
    PYTHONPATH=. python benchmarks/bench_routing.py --graphml city.graphml --weight-attr travel_time
    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_routing.py --map baltimore

Prints JIT compile time, one-to-all trees per second for
``twin.kernels.dijkstra.sssp_tree`` (1 thread) and ``sssp_trees`` (1 thread and
all threads), networkx ``single_source_dijkstra_path_length`` on the same graph
in the same process, and the speed-up ratios. Costs are cross-checked against
networkx for one source.
"""

import argparse
import os
import platform
import time

import networkx as nx
import numpy as np


def grid_links(side, seed):
    """Directed ``side x side`` grid, both directions, random weights in [1, 60) s."""
    idx = np.arange(side * side).reshape(side, side)
    pairs = [
        (idx[:, :-1].ravel(), idx[:, 1:].ravel()),
        (idx[:-1, :].ravel(), idx[1:, :].ravel()),
    ]
    tail = np.concatenate([a for a, b in pairs] + [b for a, b in pairs])
    head = np.concatenate([b for a, b in pairs] + [a for a, b in pairs])
    rng = np.random.default_rng(seed)
    weight_s = 1.0 + 59.0 * rng.random(tail.size)
    return side * side, tail, head, weight_s


def graphml_links(path, weight_attr):
    """Links of a graphml file (e.g. saved by osmnx); nodes renumbered 0..n-1."""
    G = nx.read_graphml(path)
    ids = {v: i for i, v in enumerate(G.nodes)}
    edges = G.edges(data=True)
    tail = np.fromiter((ids[u] for u, _, _ in edges), dtype=np.int64)
    head = np.fromiter((ids[v] for _, v, _ in edges), dtype=np.int64)
    weight = np.fromiter((float(d.get(weight_attr, 1.0)) for _, _, d in edges), dtype=np.float64)
    return len(ids), tail, head, weight


def to_nx(router):
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(router.n_nodes))
    G.add_edges_from(
        (int(u), int(v), {"w": float(w)})
        for u, v, w in zip(router.link_tail, router.link_head, router.weight)
    )
    return G


def timed(fn, repeat=5):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--map", help="a citytwin map source (e.g. baltimore, helsinki, a .osm.pbf) instead of the grid")
    ap.add_argument("--graphml", help="load this graphml instead of the grid")
    ap.add_argument("--weight-attr", default="travel_time", help="edge attribute for --graphml")
    ap.add_argument("--side", type=int, default=150, help="grid side (nodes per row)")
    ap.add_argument("--sources", type=int, default=64, help="sources for the Numba runs")
    ap.add_argument("--nx-sources", type=int, default=8, help="sources for networkx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cold", action="store_true", help="compile into a fresh Numba cache dir (true JIT time)"
    )
    args = ap.parse_args()
    if args.cold:
        import tempfile

        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_routing_numba_")
    # imported after NUMBA_CACHE_DIR is set
    import numba

    from twin.network.routing import Router, links_to_csr

    if args.map:
        from twin.network import RoadNetwork

        net = RoadNetwork.load(args.map, "drive")
        n, tail, head, w = net.n_nodes, net.link_tail, net.link_head, net.link_fftt_s
        name = f"{args.map} (drive, free-flow travel time)"
    elif args.graphml:
        n, tail, head, w = graphml_links(args.graphml, args.weight_attr)
        name = os.path.basename(args.graphml)
    else:
        n, tail, head, w = grid_links(args.side, args.seed)
        name = f"grid {args.side}x{args.side}"
    indptr, link_head, link_tail, weight, _ = links_to_csr(n, tail, head, w)
    router = Router(indptr, link_head, link_tail, weight)
    rng = np.random.default_rng(args.seed + 1)
    sources = rng.integers(0, n, args.sources).astype(np.int64)
    nx_sources = sources[: args.nx_sources]

    from twin.kernels.dijkstra import sssp_tree, sssp_trees

    # JIT warm-up (compile, or load from the on-disk cache) on a tiny graph
    t0 = time.perf_counter()
    tiny = Router(*links_to_csr(2, [0], [1], [1.0])[:4])
    tiny.tree(0)
    tiny.trees([0, 1])
    t_compile = time.perf_counter() - t0

    dist = np.empty(n)
    pred = np.empty(n, dtype=np.int32)
    dist2 = np.empty((sources.size, n))
    pred2 = np.empty((sources.size, n), dtype=np.int32)

    def run_serial():
        for s in sources:
            sssp_tree(router.indptr, router.link_head, router.weight, s, dist, pred)

    def run_batch():
        sssp_trees(router.indptr, router.link_head, router.weight, sources, dist2, pred2)

    max_threads = numba.config.NUMBA_NUM_THREADS
    rows = []
    numba.set_num_threads(1)
    rows.append(("numba sssp_tree loop", 1, sources.size / timed(run_serial)))
    rows.append(("numba sssp_trees", 1, sources.size / timed(run_batch)))
    numba.set_num_threads(max_threads)
    rows.append(("numba sssp_trees", max_threads, sources.size / timed(run_batch)))

    G = to_nx(router)

    def run_nx():
        for s in nx_sources:
            nx.single_source_dijkstra_path_length(G, int(s), weight="w")

    rows.append(("networkx sssp_path_length", 1, nx_sources.size / timed(run_nx, repeat=1)))

    # exactness cross-check on one source
    ref = nx.single_source_dijkstra_path_length(G, int(sources[0]), weight="w")
    d0, _ = router.tree(int(sources[0]))
    ref_arr = np.full(n, np.inf)
    ref_arr[list(ref)] = list(ref.values())
    identical = bool(np.array_equal(d0, ref_arr))

    nx_rate = rows[-1][2]
    print(f"graph: {name}  nodes={n}  links={router.n_links}  reachable from s0={len(ref)}")
    print(
        f"python {platform.python_version()}  numba {numba.__version__}  "
        f"networkx {nx.__version__}  cpus={os.cpu_count()}  numba threads={max_threads}"
    )
    how = "compile, fresh cache" if args.cold else "compile or on-disk cache load"
    print(f"JIT warm-up ({how}): {t_compile:.2f} s")
    print(f"costs bit-identical to networkx (source {sources[0]}): {identical}")
    print()
    print(f"{'method':<28}{'threads':>8}{'trees/s':>12}{'vs networkx':>14}")
    print("-" * 62)
    for label, th, rate in rows:
        print(f"{label:<28}{th:>8}{rate:>12.1f}{rate / nx_rate:>13.1f}x")


if __name__ == "__main__":
    main()
