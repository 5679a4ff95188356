"""Wall time of the default scenario, cold (Numba compiles) and warm (compile cache), end to end.

Usage::

    python benchmarks/bench_default_run.py [--scenario scenarios/helsinki_commute.yaml] [--repeat 3]

Runs ``twin run`` as a fresh process, as a user would, three ways, in this one invocation:

1. **cold**: empty Numba cache (``NUMBA_CACHE_DIR``) and empty network cache (``TWIN_CACHE_DIR``):
   every kernel compiles and the OSM file is parsed and cleaned;
2. **warm**: the same caches, now filled: kernels load from the compile cache, the network from its
   ``.npz``;
3. the phases of a warm run (from its ``manifest.json``).

and prints residents × simulated seconds per wall second (for the whole process and for the
simulation phase alone). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(scenario: Path, env: dict[str, str], out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli", "run", str(scenario), "--out", str(out), "--overwrite", "--quiet"],
        env=env, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["kpis"] = json.loads((out / "kpis.json").read_text())
    return wall, manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "helsinki_commute.yaml")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs (best is reported)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="twin-bench-") as tmp:
        tmp_p = Path(tmp)
        env = dict(os.environ)
        env["NUMBA_CACHE_DIR"] = str(tmp_p / "numba")
        env["TWIN_CACHE_DIR"] = str(tmp_p / "cache")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cold_wall, cold = run_once(args.scenario, env, tmp_p / "run_cold")
        warm = [run_once(args.scenario, env, tmp_p / f"run_warm{i}") for i in range(args.repeat)]
        warm_wall, warm_m = min(warm, key=lambda x: x[0])

    import numba

    from twin._yaml import load_yaml

    sc = load_yaml(args.scenario)
    residents = warm_m["kpis"]["residents"]
    from twin.scenario import scenario_from_dict

    s = scenario_from_dict(sc)
    last = warm_m["kpis"]["last_arrival_s"] or s.simulation.end_s
    days = int(warm_m["kpis"].get("iterations") or 1)
    sim_s = (min(s.simulation.end_s, last) - s.simulation.start_s) * days
    move_s = warm_m["phase_time_s"]["move"]
    print(f"scenario: {args.scenario.name}  residents={residents:,}  trips={warm_m['kpis']['trips_total']:,}  "
          f"network links={warm_m['kpis']['network_links']:,}")
    print(f"python {platform.python_version()}  numba {numba.__version__}  cpus={os.cpu_count()}  "
          f"machine={platform.machine()}")
    print()
    print(f"{'run':<44}{'wall s':>10}")
    print("-" * 54)
    print(f"{'cold: Numba compiles, OSM parsed (process)':<44}{cold_wall:>10.2f}")
    print(f"{'warm: compile cache + network cache (process)':<44}{warm_wall:>10.2f}")
    print(f"{'warm: inside run_scenario':<44}{warm_m['wall_s']:>10.2f}")
    print()
    print("phases of the warm run (s):", ", ".join(f"{k} {v:.3f}" for k, v in warm_m["phase_time_s"].items()))
    print("phases of the cold run (s):", ", ".join(f"{k} {v:.3f}" for k, v in cold["phase_time_s"].items()))
    print()
    print(f"simulated seconds: {sim_s:,.0f} ({days} day(s), start to last arrival)")
    print(f"residents x simulated s per wall s, warm process: {residents * sim_s / warm_wall:,.0f}")
    print(f"residents x simulated s per wall s, move phase:   {residents * sim_s / move_s:,.0f}")
    print(f"targets: cold <= 60 s, warm <= 20 s on a 2-core machine -> "
          f"cold {'met' if cold_wall <= 60 else 'MISSED'}, warm {'met' if warm_wall <= 20 else 'MISSED'}")


if __name__ == "__main__":
    main()
