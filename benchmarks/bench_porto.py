"""Porto: building a 122,000-link network, and 1,000,000 car trips end to end on it.

Usage::

    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_porto.py [--residents 500000] [--osmnx] [--throughput]

Cases, each in a fresh subprocess (so peak RSS is the case's own), with a private network cache:

1. **network build** of Porto and Columbus from their ``.osm.pbf`` (empty cache: pyosmium read and
   the direct array builder, :mod:`twin.network.build`); ``--osmnx`` also times the reference path
   through osmnx graphs (``builder="osmnx"``, about a minute for Porto; the same arrays);
2. a warm-up run (fills the Numba compile cache and the network cache);
3. **20,000 residents**, a car-only day (the case that used to gridlock: every home and job sat on
   the 9 nodes of Porto's 9 buildings);
4. **about 1M car trips**: ``--residents`` commuters (every resident an employed adult of a car-owning
   household, no errands, shopping or leisure: exactly 2 car trips each), car only, real capacities
   (``sample_share`` 1), 05:00 to 29:00, one iteration, outputs without events, GeoPackage and report;
   ``--throughput`` repeats it with capacities x8 (traffic flows: a throughput test of the engine).

For the runs it prints wall time and peak RSS per phase (network load, population, routing =
``plan``, simulation = ``demand`` + ``dispatch`` + ``move`` + ``record``, scoring, outputs, and the
run's work between the timed phases, such as loading the day's vehicles into the queue kernel): the
peak is the largest resident set sampled (every 10 ms) while the phase ran. Figures are printed,
never asserted.
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

# phase of the run each sample of the resident set belongs to
PHASES = {"network": "network load", "population": "population", "plan": "routing", "demand": "simulation",
          "dispatch": "simulation", "move": "simulation", "record": "simulation", "energy": "simulation",
          "timeline": "simulation", "score": "scoring", "output": "outputs"}
ORDER = ("network load", "population", "routing", "simulation", "scoring", "outputs", "between phases")

SAMPLER = r"""
import os, threading, time
_PAGE = os.sysconf("SC_PAGE_SIZE")
CUR = ["network load"]
PEAK = {}
def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE
def _sample():
    while True:
        r = _rss()
        k = CUR[0]
        if r > PEAK.get(k, 0):
            PEAK[k] = r
        time.sleep(0.01)
threading.Thread(target=_sample, daemon=True).start()
"""

RUN_CHILD = SAMPLER + r"""
import json, resource, sys, time
from contextlib import contextmanager
t0 = time.perf_counter()
import twin.model as tm
from twin.run import run_scenario
from twin.scenario import scenario_from_dict
PHASES = json.loads(sys.argv[3])
_orig_phase = tm.CityModel._phase
@contextmanager
def _phase(self, name):
    prev = CUR[0]
    CUR[0] = PHASES.get(name, name)
    try:
        with _orig_phase(self, name):
            yield
    finally:
        CUR[0] = prev if prev != "network load" else "between phases"
tm.CityModel._phase = _phase
_orig_run = tm.CityModel.run
def _run(self, *a, **k):
    try:
        return _orig_run(self, *a, **k)
    finally:
        CUR[0] = "outputs"
tm.CityModel.run = _run
import twin.network.routing as tr
ROUTER_S = {}
def _timed(name):
    orig = getattr(tr.Router, name)
    def wrapper(self, *a, **k):
        t = time.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            ROUTER_S[name] = ROUTER_S.get(name, 0.0) + time.perf_counter() - t
    setattr(tr.Router, name, wrapper)
for _name in ("route", "costs"):
    _timed(_name)
sc = scenario_from_dict(json.loads(sys.argv[1]))
t_imp = time.perf_counter() - t0
res = run_scenario(sc, sys.argv[2], overwrite=True)
out = {"wall_s": time.perf_counter() - t0, "import_s": t_imp, "run_wall_s": res.wall_s,
       "phases": res.phase_time_s, "kpis": res.kpis, "peak_mb": {k: v / 2**20 for k, v in PEAK.items()},
       "router_s": ROUTER_S,
       "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print("RESULT " + json.dumps(out))
"""

BUILD_CHILD = SAMPLER + r"""
import json, resource, sys, time
t0 = time.perf_counter()
from twin.network import RoadNetwork
t_imp = time.perf_counter() - t0
t1 = time.perf_counter()
net = RoadNetwork.load(sys.argv[1], "drive", use_cache=False, builder=sys.argv[2], min_length_m=5.0)
out = {"build_s": time.perf_counter() - t1, "import_s": t_imp, "nodes": net.n_nodes, "links": net.n_links,
       "buildings": net.buildings.n_osm, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print("RESULT " + json.dumps(out))
"""


def child(code: str, args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"case failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def report(title: str, r: dict) -> None:
    p = r["phases"]
    k = r["kpis"]
    wall = {name: 0.0 for name in ORDER}
    for ph, s in p.items():
        wall[PHASES.get(ph, ph)] = wall.get(PHASES.get(ph, ph), 0.0) + s
    # run_scenario's own work outside the timed phases (setting up the day's vehicles, KPIs, ...)
    wall["between phases"] = max(0.0, r["run_wall_s"] - sum(p.values()))
    print(f"\n{title}")
    print(f"  residents {k['residents']:,}  trips {k['trips_total']:,}  car trips {k['car_trips']:,}  "
          f"completed {k['completion_rate']:.3f}  mean car delay {k['delay_mean_s']} s  "
          f"forced moves {k['forced_moves']:,}")
    print(f"  wall {r['wall_s']:.1f} s (imports {r['import_s']:.1f} s), peak RSS {r['maxrss_mb']:,.0f} MB")
    print(f"  {'phase':<14}{'wall s':>9}{'peak RSS MB':>13}")
    for name in ORDER:
        print(f"  {name:<14}{wall.get(name, 0.0):>9.1f}{r['peak_mb'].get(name, float('nan')):>13,.0f}")
    if "move" in p:
        print(f"  (queue kernel {p['move']:.1f} s of the simulation)")
    rt = r.get("router_s", {})
    if rt:
        print(f"  (routing: Router.costs {rt.get('costs', 0.0):.1f} s, Router.route {rt.get('route', 0.0):.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--residents", type=int, default=500_000, help="commuters (2 car trips each)")
    ap.add_argument("--osmnx", action="store_true", help="also build Porto through osmnx graphs (the reference)")
    ap.add_argument("--throughput", action="store_true", help="also run the 1M trips with capacities x8")
    ap.add_argument("--skip-20k", action="store_true", help="skip the 20,000-resident day")
    args = ap.parse_args()
    import numba

    print(f"python {sys.version.split()[0]}  numba {numba.__version__}  cpus={os.cpu_count()}  "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="twin-porto-") as tmp:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["TWIN_CACHE_DIR"] = str(Path(tmp) / "cache")
        print("\nnetwork build from the .osm.pbf (no cache)")
        builds = [("porto", "auto"), ("columbus", "auto")] + ([("porto", "osmnx"), ("columbus", "osmnx")]
                                                              if args.osmnx else [])
        for src, builder in builds:
            b = child(BUILD_CHILD, [src, builder], env)
            how = "direct arrays" if builder == "auto" else "osmnx graphs "
            print(f"  {src:<9} {how}  {b['build_s']:6.1f} s  peak RSS {b['maxrss_mb']:6,.0f} MB  "
                  f"{b['nodes']:,} nodes  {b['links']:,} links  {b['buildings']:,} buildings")

        base = {"name": "porto", "seed": 1, "map": {"source": "porto"},
                "modes": {"available": ["car"]},
                "output": {"events": False, "geopackage": False, "report": False},
                "simulation": {"start_s": "05:00", "end_s": "29:00"}}
        commuters = {"child_share": 0.0, "senior_share": 0.0, "employment_rate": 1.0, "car_ownership": 1.0}
        no_errands = {"shop_after_work": 0.0, "errand_share": 0.0, "evening_leisure": 0.0}
        phases = json.dumps(PHASES)
        warm = dict(base, population={"residents": 500, **commuters}, demand=no_errands)
        child(RUN_CHILD, [json.dumps(warm), str(Path(tmp) / "warm"), phases], env)  # Numba and network caches
        if not args.skip_20k:
            day = dict(base, population={"residents": 20_000, "child_share": 0.0, "car_ownership": 1.0})
            report("20,000 residents, a car-only day on porto (default demand), real capacities",
                   child(RUN_CHILD, [json.dumps(day), str(Path(tmp) / "day"), phases], env))
        spec = dict(base, population={"residents": args.residents, **commuters}, demand=no_errands)
        report(f"~{2 * args.residents / 1e6:.1f}M car trips on porto ({args.residents:,} commuters), real capacities",
               child(RUN_CHILD, [json.dumps(spec), str(Path(tmp) / "million"), phases], env))
        if args.throughput:
            spec8 = dict(spec, simulation=dict(base["simulation"], flow_capacity_factor=8.0,
                                               storage_capacity_factor=8.0))
            report(f"~{2 * args.residents / 1e6:.1f}M car trips on porto, capacities x8 (free-flowing throughput test)",
                   child(RUN_CHILD, [json.dumps(spec8), str(Path(tmp) / "million8"), phases], env))


if __name__ == "__main__":
    main()
