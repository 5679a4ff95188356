"""Sweep throughput: serial vs Ray with 1, 2, ... workers on the same experiment, in one process.

Usage::

    python benchmarks/bench_sweep.py [--runs 16] [--residents 1500] [--workers 1 2]

Prints the wall time of the same sweep (N runs of the Helsinki day) with the serial executor and
with local Ray at each worker count, the per-run overhead of the Ray path against serial, runs per
second and the scaling efficiency ``T(1 worker) / (k * T(k workers))``. Ray start-up is timed
separately. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--residents", type=int, default=1500)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import ray
    import yaml

    from twin._yaml import load_yaml
    from twin.sweep import expand_runs, load_experiment, run_sweep

    base = load_yaml(ROOT / "scenarios" / "helsinki_commute.yaml")
    exp_d = {"name": "bench", "scenario": base, "seed": 1, "replicates": args.runs,
             "overrides": {"population.residents": args.residents, "replanning.iterations": 1,
                           "output.events": False, "output.geopackage": False}}
    with tempfile.TemporaryDirectory(prefix="twin-bench-sweep-") as tmp:
        p = Path(tmp) / "exp.yaml"
        p.write_text(yaml.safe_dump(exp_d))
        exp, b = load_experiment(p)
        runs = expand_runs(exp, b)
        run_sweep(exp, runs[:1], Path(tmp) / "warm", executor="serial")  # Numba + network caches
        t0 = time.perf_counter()
        s = run_sweep(exp, runs, Path(tmp) / "serial", executor="serial")
        t_serial = time.perf_counter() - t0
        rows = [("serial", 1, t_serial, None)]
        for w in args.workers:
            t0 = time.perf_counter()
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"NUMBA_NUM_THREADS": "1"}})
            t_start = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = run_sweep(exp, runs, Path(tmp) / f"ray{w}", executor="ray")
            t = time.perf_counter() - t0
            ray.shutdown()
            assert r.ran == len(runs) and r.failed == 0
            rows.append(("ray", w, t, t_start))
        same = len({(Path(tmp) / d / "kpis.parquet").read_bytes() for d in ["serial"] + [f"ray{w}" for w in args.workers]}) == 1
    assert s.ran == len(runs)
    print(f"sweep: {len(runs)} runs of the Helsinki day, {args.residents:,} residents each; cpus={os.cpu_count()}")
    print(f"KPI tables byte-identical across executors: {same}")
    print()
    print(f"{'executor':<10}{'workers':>8}{'wall s':>9}{'runs/s':>9}{'s/run':>8}{'ray start s':>13}{'efficiency':>12}")
    t1 = next((t for e, w, t, _ in rows if e == "ray" and w == 1), None)
    for e, w, t, ts in rows:
        eff = "" if (e != "ray" or t1 is None) else f"{t1 / (w * t):.2f}"
        print(f"{e:<10}{w:>8}{t:>9.2f}{len(runs) / t:>9.2f}{t / len(runs):>8.3f}{'' if ts is None else f'{ts:.2f}':>13}{eff:>12}")
    if t1 is not None:
        print(f"\nper-run overhead of the Ray path (1 worker vs serial): {(t1 - t_serial) / len(runs) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
