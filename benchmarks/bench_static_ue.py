"""Benchmark static user-equilibrium assignment (Frank-Wolfe vs bi-conjugate Frank-Wolfe).

Usage::

    PYTHONPATH=. python benchmarks/bench_static_ue.py                 # ../shared TNTP folders
    PYTHONPATH=. python benchmarks/bench_static_ue.py DIR [DIR ...]   # *_net, *_trips.tntp inside
    PYTHONPATH=. python benchmarks/bench_static_ue.py --gaps 1e-4,1e-5 --max-time 20
    PYTHONPATH=. python benchmarks/bench_static_ue.py --distance-share 0.5 --toll-factor 1

For every TNTP instance found (by default ``../shared/validation/tntp/*`` and
``../shared/holdout/tntp/*`` beside the repository) and every method, runs the
solver once to the smallest target gap (or the caps) and prints, for each
target, the iterations and wall time at which it was first reached, the gap
and the Beckmann objective there. Where a ``*_flow.tntp`` best-known
solution exists, the objective is also compared with the Beckmann objective of
those flows. JIT compilation is done (and timed) once before the runs.

Generalized cost (``t(x) + toll_factor * toll + distance_factor * length``):
by default each network's ``<TOLL FACTOR>`` / ``<DISTANCE FACTOR>`` (0 where
absent); ``--toll-factor`` / ``--distance-factor`` override them for every
network, and ``--distance-share S`` sets each network's distance factor to
``S * sum(free_flow_time) / sum(length)`` (the distance term then adds, on
average over links, ``S`` times the free-flow time, whatever the file's length
unit). With a factor in use, the objective is the generalized Beckmann
objective (not comparable with a flow file's) and the time-only total system
travel time of the final solution is printed per run.

The TNTP data are for academic research only; they are read in place, never
copied.
"""

import argparse
import platform
import time
from pathlib import Path

import numba
import numpy as np

from twin.assignment import (
    TntpNetwork,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
    solve_ue,
)
from twin.kernels.assignment import beckmann_objective

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GLOBS = ["validation/tntp/*", "holdout/tntp/*"]


def find_instances(dirs):
    """``(name, net_path, trips_path, flow_path or None)`` for each net + trips file pair."""
    out = []
    for d in dirs:
        for net_path in sorted(Path(d).glob("*_net.tntp")):
            stem = net_path.name[: -len("_net.tntp")]
            trips = net_path.with_name(f"{stem}_trips.tntp")
            if not trips.is_file():
                continue
            flow = net_path.with_name(f"{stem}_flow.tntp")
            out.append((stem, net_path, trips, flow if flow.is_file() else None))
    return out


def warm_up():
    """Compile (or load from cache) every kernel on a two-link network; returns seconds."""
    t0 = time.perf_counter()
    net = TntpNetwork.from_links([0, 0], [1, 1], [1.0, 2.0], [1.0, 1.0], n_zones=2)
    for method in ("fw", "cfw", "bfw"):
        od = np.array([[0.0, 10.0], [0.0, 0.0]])  # congests link 0: both links used
        solve_ue(net, od, method=method, gap_tol=0.0, max_iter=3)
    return time.perf_counter() - t0


def milestone(res, target):
    """``(iterations, seconds, gap, objective, reached)`` when ``res`` first reached ``target``."""
    hit = np.flatnonzero(res.relative_gap <= target)
    k = int(hit[0]) if hit.size else len(res.relative_gap) - 1
    return k, res.elapsed_s[k], res.relative_gap[k], res.objective[k], bool(hit.size)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("dirs", nargs="*", help="folders holding <name>_net.tntp and <name>_trips.tntp")
    ap.add_argument(
        "--gaps",
        default="1e-4,1e-6",
        help="target relative gaps, comma-separated (default 1e-4,1e-6); one run per method "
        "goes to the smallest and each target is read off its history",
    )
    ap.add_argument("--max-iter", type=int, default=5000, help="iteration cap per run")
    ap.add_argument("--max-time", type=float, default=12.0, help="wall-time cap per run, s")
    ap.add_argument("--methods", default="fw,bfw", help="comma-separated: fw, cfw, bfw")
    ap.add_argument("--toll-factor", type=float, default=None, help="override <TOLL FACTOR>")
    ap.add_argument(
        "--distance-factor", type=float, default=None, help="override <DISTANCE FACTOR>"
    )
    ap.add_argument(
        "--distance-share",
        type=float,
        default=None,
        help="distance factor per network = SHARE * sum(free_flow_time) / sum(length)",
    )
    args = ap.parse_args()
    dirs = args.dirs
    if not dirs:
        shared = ROOT.parent / "shared"
        dirs = [p for g in DEFAULT_GLOBS for p in sorted(shared.glob(g)) if p.is_dir()]
    instances = find_instances(dirs)
    if not instances:
        raise SystemExit("no TNTP instances found (give folders with *_net.tntp and *_trips.tntp)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    gaps = sorted((float(g) for g in args.gaps.split(",") if g.strip()), reverse=True)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"{numba.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"JIT warm-up (compile or load cache): {warm_up():.2f} s")
    print(
        f"caps per run: {args.max_iter} iterations, {args.max_time:g} s; '*' = target not reached"
    )
    hdr = (
        f"{'network':<14} {'zones':>5} {'nodes':>6} {'links':>6} {'method':>6} {'target':>7} "
        f"{'iters':>6} {'time_s':>7} {'gap':>9} {'objective':>17} {'vs flow file':>12}"
    )
    print(hdr)
    print("-" * len(hdr))
    t_all = time.perf_counter()
    for name, net_path, trips_path, flow_path in instances:
        net = read_tntp_net(net_path)
        od = read_tntp_trips(trips_path, net.n_zones)
        ref_obj = None
        if flow_path is not None:
            fl = read_tntp_flow(flow_path)
            same = np.array_equal(fl.init_node, net.init_node)
            if same and np.array_equal(fl.term_node, net.term_node):
                ref_obj = beckmann_objective(
                    net.free_flow_time, net.b, net.power, net.capacity, fl.volume
                )
        df = args.distance_factor
        if args.distance_share is not None:
            df = args.distance_share * float(net.free_flow_time.sum()) / float(net.length.sum())
        for method in methods:
            res = solve_ue(
                net,
                od,
                method=method,
                gap_tol=gaps[-1],
                max_iter=args.max_iter,
                max_time_s=args.max_time,
                toll_factor=args.toll_factor,
                distance_factor=df,
            )
            generalized = res.toll_factor != 0.0 or res.distance_factor != 0.0
            if generalized:
                ref_obj = None  # the flow file's objective is time-only
            for target in gaps:
                k, sec, gap, obj, reached = milestone(res, target)
                vs = f"{(obj - ref_obj) / ref_obj:+.2e}" if ref_obj else "n/a"
                print(
                    f"{name:<14} {net.n_zones:>5} {net.n_nodes:>6} {net.n_links:>6} {method:>6} "
                    f"{target:>7.0e} {k:>6}{' ' if reached else '*'}{sec:>7.2f} {gap:>9.2e} "
                    f"{obj:>17.6f} {vs:>12}",
                    flush=True,
                )
            if generalized:
                print(
                    f"{'':<14} toll factor {res.toll_factor:g}, distance factor "
                    f"{res.distance_factor:.6g}: final TSTT (time only) {res.tstt:.6f}, "
                    f"total toll {res.total_toll:g}, total distance {res.total_distance:.6g}"
                )
        if ref_obj:
            print(f"{'':<14} Beckmann objective of {flow_path.name}: {ref_obj:.6f}")
    print(f"total {time.perf_counter() - t_all:.1f} s")


if __name__ == "__main__":
    main()
