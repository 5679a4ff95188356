"""What events.parquet costs: the car-only Baltimore day, end to end, with and without it.

The issue's target: ``events.parquet`` at most 25% of the wall time of the 50,000-resident car-only
Baltimore run, with the same rows as before. For each code version (this checkout, and optionally a
baseline checkout given with ``--baseline DIR``, e.g. a ``git worktree`` of an older commit, run in a
subprocess with ``PYTHONPATH=DIR`` so that both are timed in the same hour on the same box) the
scenario (``modes.available: [car]``, ``child_share: 0``, ``car_ownership: 1``; geopackage and report
off) runs ``--repeat`` times with ``output.events`` on and off, alternately; the cost of events is the
difference of the best times, and its share is that difference over the best time with events on.
The rows of events.parquet are compared by a content hash between the versions.

Run::

    git worktree add /tmp/ct_base c954a8f   # the code before the event bus
    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_events.py --baseline /tmp/ct_base
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scenario(map_source: str, residents: int, events: bool, seed: int = 1):
    from twin.scenario import scenario_from_dict

    return scenario_from_dict({
        "name": "bench_events", "seed": seed, "map": {"source": map_source},
        "population": {"residents": residents, "child_share": 0.0, "car_ownership": 1.0},
        "modes": {"available": ["car"]},
        "simulation": {"start_s": "05:00", "end_s": "30:00"},
        "output": {"events": events, "geopackage": False, "report": False},
    })


def events_hash(path: Path) -> str:
    import numpy as np
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    h = hashlib.sha256()
    for col in t.column_names:
        a = t.column(col).to_numpy(zero_copy_only=False)
        h.update(col.encode())
        h.update(json.dumps([str(v) for v in a.tolist()]).encode() if a.dtype == object
                 else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def worker(args: argparse.Namespace) -> None:
    """Time the runs in this process (the code on sys.path) and print one JSON line."""
    from twin.model import load_network
    from twin.run import run_scenario

    net = load_network(scenario(args.map, 100, True))
    run_scenario(scenario(args.map, 300, True), Path(args.work) / "warm", network=net, overwrite=True)
    best = {True: float("inf"), False: float("inf")}
    phases = {}
    out_phase = {}
    for _ in range(args.repeat):
        for ev in (True, False):
            sc = scenario(args.map, args.residents, ev)
            t0 = time.perf_counter()
            r = run_scenario(sc, Path(args.work) / f"run_{int(ev)}", network=net, overwrite=True)
            wall = time.perf_counter() - t0
            if wall < best[ev]:
                best[ev] = wall
                phases[ev] = r.phase_time_s
                out_phase[ev] = r.phase_time_s.get("output", 0.0)
    k = json.loads((Path(args.work) / "run_1" / "kpis.json").read_text())
    print(json.dumps({
        "wall_events_s": best[True], "wall_no_events_s": best[False],
        "move_s": phases[True].get("move"), "output_events_s": out_phase[True], "output_no_events_s": out_phase[False],
        "car_trips": k["car_trips"], "trips_completed": k["trips_completed"],
        "events_rows": _rows(Path(args.work) / "run_1" / "events.parquet"),
        "events_hash": events_hash(Path(args.work) / "run_1" / "events.parquet"),
    }))


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="baltimore")
    ap.add_argument("--residents", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", help="a checkout of older code to time in the same run (PYTHONPATH)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    versions = [("this checkout", str(HERE.parent))]
    if args.baseline:
        versions.insert(0, ("baseline " + Path(args.baseline).name, str(Path(args.baseline).resolve())))
    results: dict[str, dict] = {}
    for _ in range(args.repeat):  # versions alternate, so that a slower hour of the box hits both
        for label, root in versions:
            with tempfile.TemporaryDirectory() as work:
                env = dict(os.environ, PYTHONPATH=root)
                cmd = [sys.executable, str(HERE / "bench_events.py"), "--worker", "--work", work, "--map", args.map,
                       "--residents", str(args.residents), "--repeat", "1"]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=root).stdout
                r = json.loads(out.strip().splitlines()[-1])
            best = results.get(label)
            if best is None:
                results[label] = r
            else:
                for k in ("wall_events_s", "wall_no_events_s", "move_s", "output_events_s", "output_no_events_s"):
                    best[k] = min(best[k], r[k])
    print(f"car-only {args.map} day, {args.residents:,} residents, best of {args.repeat} (s):")
    print("| code | car trips (completed) | wall, events on | wall, events off | events.parquet | share of wall "
          "| move phase | events rows |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        cost = r["wall_events_s"] - r["wall_no_events_s"]
        print(f"| {label} | {r['car_trips']:,} ({r['trips_completed']:,}) | {r['wall_events_s']:.2f} | "
              f"{r['wall_no_events_s']:.2f} | {cost:+.2f} | {100 * cost / r['wall_events_s']:.0f}% | "
              f"{r['move_s']:.2f} | {r['events_rows']:,} |")
    hashes = {r["events_hash"] for r in results.values()}
    print("events.parquet rows identical across versions:", "yes" if len(hashes) == 1 else "NO")


if __name__ == "__main__":
    main()
