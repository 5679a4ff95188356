"""Cost of the HTML report (and the animation) against the run's own wall time.

Usage::

    python benchmarks/bench_report.py                 # Helsinki default run (+ Baltimore 20k when the map is there)
    python benchmarks/bench_report.py --runs DIR ...  # existing run folders

Each run is simulated in this process with :func:`twin.run.run_scenario` (so the modules a run
imports are loaded, as they are when ``twin run`` writes the report), then:

* **first**: ``import twin.report`` + the first :func:`write_report` (what ``twin run`` pays once);
* **warm**: the best of ``--repeat`` further calls;
* **animation**: one :func:`write_animation` of 08:00-09:00.

and prints each as a percentage of the run's ``manifest.json`` ``wall_s`` (the target is < 10 %).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BALTIMORE = {
    "name": "baltimore_report", "description": "Baltimore, 20,000 residents (report benchmark).",
    "map": {"source": "baltimore"}, "population": {"residents": 20000}, "replanning": {"iterations": 4},
    "simulation": {"flow_capacity_factor": 0.1, "storage_capacity_factor": 0.3},
}


def make_runs(tmp: Path, with_baltimore: bool) -> list[Path]:
    from twin.run import run_scenario
    from twin.scenario import load_scenario, scenario_from_dict

    out = []
    sc = load_scenario(ROOT / "scenarios" / "helsinki_commute.yaml")
    run_scenario(sc, tmp / "helsinki", overwrite=True)  # first run: Numba compile, network cache
    out.append(run_scenario(sc, tmp / "helsinki", overwrite=True).out_dir)
    if with_baltimore:
        try:
            out.append(run_scenario(scenario_from_dict(BALTIMORE), tmp / "baltimore", overwrite=True).out_dir)
        except Exception as exc:  # no map: report Helsinki only
            print(f"(baltimore skipped: {exc})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="*", help="existing run folders (default: simulate them)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-baltimore", action="store_true")
    args = ap.parse_args()

    import twin.run  # noqa: F401  (the state of a process that has just run a scenario)

    with tempfile.TemporaryDirectory(prefix="twin-bench-report-") as tmp:
        runs = args.runs or make_runs(Path(tmp), not args.no_baltimore)
        print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
        print(f"{'run':<22}{'links':>8}{'run wall':>10}{'first':>10}{'warm':>10}{'% of run':>10}"
              f"{'size':>9}{'animation':>11}{'anim size':>11}")
        first_import = True
        for run in runs:
            man = json.loads((run / "manifest.json").read_text())
            wall = float(man["wall_s"])
            t0 = time.perf_counter()
            from twin.report import write_animation, write_report

            path = write_report(run, Path(tmp) / f"{run.name}.html")
            first = time.perf_counter() - t0
            label = "first" if first_import else "first*"
            first_import = False
            warm = float("inf")
            for _ in range(args.repeat):
                t1 = time.perf_counter()
                write_report(run, Path(tmp) / f"{run.name}.html")
                warm = min(warm, time.perf_counter() - t1)
            t2 = time.perf_counter()
            anim = write_animation(run, Path(tmp) / f"{run.name}_anim.html", hour=8)
            t_anim = time.perf_counter() - t2
            links = json.loads((run / "network.json").read_text()).get("links", 0)
            print(f"{man['scenario'][:21]:<22}{links:>8,}{wall:>9.2f}s{first:>9.3f}s{warm:>9.3f}s"
                  f"{100 * first / wall:>5.1f}/{100 * warm / wall:.1f}%"
                  f"{path.stat().st_size / 1024:>7.0f}kB{t_anim:>10.3f}s{anim.stat().st_size / 1024:>9.0f}kB"
                  + ("" if label == "first" else "  (* imports already done)"))
        print("first: import twin.report + first report; warm: best of", args.repeat,
              "; % of run: first/warm over the run's manifest wall_s")


if __name__ == "__main__":
    main()
