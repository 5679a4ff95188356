"""The queue kernel alone: replay the kernel calls of a simulated day, without the rest of the model.

Usage::

    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_queue_kernel.py --map baltimore --residents 50000

1. ``CityModel`` simulates one day (default demand: population, activity chains, mode choice) and
   records, for every call of the queue kernel (one per model step), the step range and the
   departure times the model had scheduled by then;
2. the same calls are replayed ``--repeat`` times on a fresh ``QueueSim`` (same network arrays,
   routes and departure times; the kernel sees exactly the inputs it saw in the model), timing only
   the kernel calls;
3. the replay's results are checked against the model's (arrival times, link statistics: equal
   bit for bit), and the figures printed: kernel seconds (best and median of the repeats), link
   moves, ns per move, vehicle-seconds per second, and the kernel's CPU time (of the calling thread:
   steadier than wall time on a machine shared with other work).

To compare two versions of the kernel in the same run, give the other version's file with
``--baseline`` (e.g. ``git worktree add /tmp/qk_base HEAD`` before a change, then
``--baseline /tmp/qk_base/twin/kernels/queue.py``): its ``QueueSim`` is loaded under another module
name and the repeats alternate between the two kernels on the same recorded calls, so that both see
the same state of a shared, noisy machine; its replay is checked against the model run as well.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="baltimore")
    ap.add_argument("--residents", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", default=None,
                    help="path of another twin/kernels/queue.py to time against, alternating repeats")
    args = ap.parse_args()

    import numba

    from twin.kernels.queue import QueueSim
    from twin.model import CityModel, load_network
    from twin.scenario import scenario_from_dict

    sc = scenario_from_dict({
        "name": "bench_kernel", "seed": args.seed, "map": {"source": args.map},
        "population": {"residents": args.residents},
        "simulation": {"start_s": "05:00", "end_s": "30:00"},
    })
    net = load_network(sc)
    m = CityModel(sc, network=net)
    s = m.sim
    calls = []
    kernel = s._kernel

    def record(*a):
        calls.append((int(a[0]), int(a[1]), s.depart_s.copy()))
        return kernel(*a)

    s._kernel = record
    m.run()
    print(f"python {platform.python_version()}  numba {numba.__version__}  threads {numba.get_num_threads()}")
    print(f"{args.map}: {net.n_links} links; {args.residents} residents, {s.n_trips} car trips, "
          f"{s.route_links.size} route links, {len(calls)} kernel calls, {s.step} steps")

    def replay(QueueSim=QueueSim):
        r = QueueSim(fftt_s=s.fftt_s, cap_veh_per_s=s.cap_veh_per_s, storage_veh=s.storage_veh,
                     route_indptr=s.route_indptr, route_links=s.route_links, dt_s=s.dt_s, t_start_s=s.t_start_s,
                     stuck_time_s=s.stuck_time_s, n_hours=s.n_hours, bin_s=s.bin_s, stuck_action=s.stuck_action,
                     **({"merge_seed": s.merge_seed} if hasattr(s, "merge_seed") else {}))
        inner = r._kernel
        spent = [0.0, 0.0]

        def timed(*a):
            t0, c0 = time.perf_counter(), time.thread_time()
            out = inner(*a)
            spent[0] += time.perf_counter() - t0
            spent[1] += time.thread_time() - c0
            return out

        r._kernel = timed
        for k0, n, dep in calls:
            if hasattr(r, "_dep_head"):  # departures are filed when scheduled: schedule the new ones
                new = np.flatnonzero((dep != r.depart_s) & (r.status == 0))
                r.schedule(new, dep[new])
            else:  # older kernels read depart_s at every call
                r.depart_s[:] = dep
            r.advance(r.t_start_s + (k0 + n) * r.dt_s)
        return r, spent[0], spent[1]

    impls = {"this": QueueSim}
    if args.baseline:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_bench_queue_baseline", args.baseline)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # Numba's cache finds the module again by its name
        spec.loader.exec_module(mod)
        impls = {"baseline": mod.QueueSim, "this": QueueSim}
    times = {name: [] for name in impls}
    cpu = {name: [] for name in impls}
    last = {}
    for _ in range(args.repeat):
        for name, cls in impls.items():  # alternating: both kernels see the machine in the same state
            r, t, c = replay(cls)
            times[name].append(t)
            cpu[name].append(c)
            last[name] = r
    for label, r in last.items():
        for name in ("arrive_s", "link_volume", "link_tt_sum_s", "route_enter_s"):
            if not np.array_equal(getattr(r, name), getattr(s, name), equal_nan=True):
                raise SystemExit(f"replay ({label}) differs from the model run in {name}")
    r = last["this"]
    moves = int(np.count_nonzero(np.isfinite(r.route_enter_s)))
    arrived = r.status == 3
    veh_s = float(np.sum(r.arrive_s[arrived] - r.depart_s[arrived]))
    for label, ts in times.items():
        best = min(ts)
        med = float(np.median(ts))
        tag = f"{label} ({args.baseline}) " if label == "baseline" else (f"{label} " if len(times) > 1 else "")
        print(f"{tag}kernel s: best {best:.4f}, median {med:.4f}, all {' '.join(f'{t:.4f}' for t in ts)} "
              f"(replay = model run: bit-identical)")
        print(f"{tag}link entries {moves:,}: {1e9 * best / moves:.1f} ns per link move (median "
              f"{1e9 * med / moves:.1f}), {moves / best:,.0f} moves/s, {veh_s / best:.3g} vehicle-seconds/s")
        # CPU time of the calling thread: not counting the time the thread waits for a core on a
        # shared machine (the kernel runs in the calling thread)
        cb, cm = min(cpu[label]), float(np.median(cpu[label]))
        print(f"{tag}kernel CPU s: best {cb:.4f}, median {cm:.4f}: {1e9 * cb / moves:.1f} ns per link move "
              f"(median {1e9 * cm / moves:.1f})")
    if len(times) > 1:
        b, n = min(times["baseline"]), min(times["this"])
        ratio_med = np.median(times["this"]) / np.median(times["baseline"])
        ratio_cpu = np.median(cpu["this"]) / np.median(cpu["baseline"])
        print(f"this / baseline: best {n / b:.3f}, median {ratio_med:.3f}, median CPU time {ratio_cpu:.3f}")


if __name__ == "__main__":
    main()
