"""Scale: 100k residents for a full day on Baltimore, and 1M car trips on the largest available map.

Usage::

    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_scale.py [--residents 100000] [--million]

Each case runs in a fresh subprocess (so peak RSS is the case's own; Numba kernels load from the
compile cache after a warm-up run) and prints wall time split into phases (population, routing =
``plan``, simulation = ``move`` + ``demand`` + ``dispatch``, scoring, output), peak RSS and
agent-seconds simulated per wall second. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from twin.run import run_scenario
from twin.scenario import scenario_from_dict
sc = scenario_from_dict(json.loads(sys.argv[1]))
t_imp = time.perf_counter() - t0
res = run_scenario(sc, sys.argv[2], overwrite=True)
out = {"wall_s": time.perf_counter() - t0, "import_s": t_imp, "run_wall_s": res.wall_s,
       "phases": res.phase_time_s, "kpis": res.kpis,
       "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print("RESULT " + json.dumps(out))
"""


def run_case(spec: dict, out: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec), str(out)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"case failed:\n{proc.stdout}\n{proc.stderr}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def report(title: str, r: dict) -> None:
    p = r["phases"]
    k = r["kpis"]
    sim = p.get("move", 0) + p.get("demand", 0) + p.get("dispatch", 0) + p.get("record", 0)
    span = (k["last_arrival_s"] or 0) - 5 * 3600
    agent_s = k["residents"] * span
    print(f"\n{title}")
    print(f"  residents {k['residents']:,}  trips {k['trips_total']:,}  car trips {k['car_trips']:,}  "
          f"completed {k['completion_rate']:.3f}  mean car delay {k['delay_mean_s']} s  forced moves {k['forced_moves']:,}")
    print(f"  wall {r['wall_s']:.1f} s (imports {r['import_s']:.1f}, network {p.get('network', 0):.1f}, "
          f"population+demand {p.get('population', 0):.1f}, routing+mode choice {p.get('plan', 0):.1f}, "
          f"simulation {sim:.1f} [queue kernel {p.get('move', 0):.1f}], scoring {p.get('score', 0):.1f}, "
          f"output {p.get('output', 0):.1f})")
    print(f"  peak RSS {r['maxrss_mb']:,.0f} MB")
    print(f"  agent-seconds per wall second: {agent_s / r['wall_s']:,.0f} (whole process), "
          f"{agent_s / max(sim, 1e-9):,.0f} (simulation phase)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="baltimore")
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--million", action="store_true", help="also run 1M car trips on the largest catalogue map")
    ap.add_argument("--million-map", default="luxembourg", help="map for the 1M-trip case (largest drive network)")
    args = ap.parse_args()
    import numba

    print(f"python {sys.version.split()[0]}  numba {numba.__version__}  cpus={os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="twin-scale-") as tmp:
        base = {"name": "scale", "seed": 1, "output": {"events": False, "geopackage": False},
                "simulation": {"start_s": "05:00", "end_s": "29:00"}}
        warm = dict(base, map={"source": args.map}, population={"residents": 500})
        run_case(warm, Path(tmp) / "warm")  # fills the Numba and network caches
        spec = dict(base, map={"source": args.map}, population={"residents": args.residents})
        report(f"{args.residents:,} residents, full day on {args.map} (car/walk/bike, 1 iteration)",
               run_case(spec, Path(tmp) / "a"))
        if args.million:
            n = 455_000  # 2.2 trips per resident on average -> about 1M trips
            spec = dict(base, map={"source": args.million_map},
                        population={"residents": n, "child_share": 0.0, "car_ownership": 1.0},
                        modes={"available": ["car"]})
            run_case(dict(spec, population={"residents": 500, "child_share": 0.0, "car_ownership": 1.0}),
                     Path(tmp) / "warm2")
            report(f"~1M car trips on {args.million_map} (every resident drives), real capacities",
                   run_case(spec, Path(tmp) / "b"))
            # the same trips with capacities x8, as if the network had 8x the lanes: traffic flows and
            # every vehicle makes all its moves (a throughput test of the engine, not a city)
            spec8 = dict(spec, simulation=dict(base["simulation"], flow_capacity_factor=8.0, storage_capacity_factor=8.0))
            report(f"~1M car trips on {args.million_map}, capacities x8 (free-flowing throughput test)",
                   run_case(spec8, Path(tmp) / "c"))


if __name__ == "__main__":
    main()
