"""citytwin's queue simulation side by side with Eclipse SUMO's mesoscopic mode.

Usage::

    pip install eclipse-sumo            # not a citytwin dependency; ships `sumo`, `netconvert`, `duarouter`
    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_sumo.py --map baltimore --residents 20000

Both simulators get the same network and the same trips, in this one invocation:

1. citytwin's drive network (``RoadNetwork.load(MAP, "drive")``) is written as SUMO plain XML
   (node id = citytwin node index, edge id = citytwin link index, explicit ``length`` = citytwin's
   link length, ``speed``, ``numLanes`` = max(1, round(lanes))) and converted with ``netconvert``;
2. citytwin builds and simulates the day (``CityModel``: population, activity chains, mode choice,
   free-flow routes); for its **car** trips, the departure times it actually used (``sim.depart_s``:
   a trip after an activity leaves at the arrival time + the activity's duration) and its routes,
   edge by edge, become a SUMO ``.rou.xml`` sorted by departure;
3. ``sumo --mesosim true`` runs those vehicles; its process wall time is "whole run", the
   ``Performance: Duration`` it prints is its simulation loop;
4. ``twin.run.run_scenario`` runs the same scenario end to end (population, demand, mode choice,
   routing, simulation, writing the run folder including report.html); its ``move`` phase is
   citytwin's simulation loop, the wall time of the call is its whole run;
5. end to end with routing on both sides: the same car trips as SUMO **trips** (origin and
   destination junction = citytwin's node ids, ``fromJunction``/``toJunction``, departure time, no
   route) are routed by ``duarouter --junction-taz`` (free-flow fastest routes, SUMO's default
   Dijkstra) and the routes run by ``sumo --mesosim``: "SUMO duarouter + meso" = the sum of the two
   process wall times. citytwin's routing of the same car trips alone (``Router.route`` on the same
   origin/destination nodes, free-flow times) is timed too, and gives an estimate of a car-only
   citytwin pipeline (whole run - population/demand - plan phase + car routing);
6. a car-only citytwin scenario (``modes.available: [car]``, no children, every household owns a
   car) is run end to end with default outputs, with ``events``, ``geopackage`` or ``report`` off
   in turn, and with all three off, to show what each output costs; and, as the congested case, the same
   car-only day's car trips (routes, departure times) are given to ``sumo --mesosim`` too.

Prints wall times, vehicle-seconds simulated per wall second (sum over completed trips of
arrive - depart, divided by loop and by whole-run wall time), mean travel times, completed trips
and the citytwin / SUMO ratios. Best of ``--repeat`` runs for each. Figures are printed, never
asserted. netconvert's time is reported but not counted (it is the analogue of citytwin's network
cache, which is filled before timing).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

try:
    from twin.kernels.queue import STATUS_ARRIVED
except ImportError:
    STATUS_ARRIVED = 3

NETCONVERT_OPTS = [
    "--no-turnarounds", "false",      # keep U-turn connections (citytwin allows any link -> next link)
    "--junctions.join", "false",      # one SUMO junction per citytwin node
    "--geometry.remove", "false",     # keep every node (ids = citytwin node indices)
    "--no-internal-links", "true",    # vehicles jump from edge to edge, as in citytwin's queue model
    "--tls.guess", "false",           # no traffic lights (citytwin has none)
]


# duarouter: free-flow fastest routes (no --weight-files), SUMO's default algorithm (Dijkstra), trips
# given as junctions = citytwin's origin/destination nodes (--junction-taz: start on any edge leaving
# the origin node, end on any edge entering the destination node, as citytwin's node-to-node routing)
DUAROUTER_OPTS = ["--junction-taz", "--no-step-log", "--seed", "1"]

# the car-only citytwin runs: (label, scenario "output" overrides)
CAR_ONLY_OUTPUTS = [
    ("default outputs", None),
    ("events off", {"events": False}),
    ("geopackage off", {"geopackage": False}),
    ("report off", {"report": False}),
    ("events/gpkg/report off", {"events": False, "geopackage": False, "report": False}),
]


def sumo_opts(stuck_time_s: float, begin_s: float) -> list[str]:
    return [
        "--mesosim", "true",
        "--meso-junction-control", "false",  # SUMO's default: no right-of-way at junctions (citytwin has none)
        "--step-length", "1",                # citytwin's dt_s
        "--begin", f"{begin_s:g}",           # no --end: like citytwin, stop when the last vehicle arrived
        "--time-to-teleport", f"{stuck_time_s:g}",  # ~ citytwin's stuck_time_s
        "--route-steps", "200",              # SUMO's default: routes are read while simulating
        "--no-step-log", "true",
        "--duration-log.statistics", "true",
        "--seed", "1",
    ]


# ---------------------------------------------------------------------------------------- SUMO
def find_sumo() -> tuple[str, str, str]:
    """Paths of the ``sumo``, ``netconvert`` and ``duarouter`` binaries, or exit with an install hint."""
    cands = []
    try:
        import sumo  # the eclipse-sumo wheel

        cands.append(Path(sumo.SUMO_HOME) / "bin")
    except ImportError:
        pass
    if os.environ.get("SUMO_HOME"):
        cands.append(Path(os.environ["SUMO_HOME"]) / "bin")
    for d in cands:
        if all((d / b).exists() for b in ("sumo", "netconvert", "duarouter")):
            return str(d / "sumo"), str(d / "netconvert"), str(d / "duarouter")
    s, n, r = shutil.which("sumo"), shutil.which("netconvert"), shutil.which("duarouter")
    if s and n and r:
        return s, n, r
    sys.exit("error: Eclipse SUMO not found. Install it with `pip install eclipse-sumo` "
             "(not a citytwin dependency) or set SUMO_HOME.")


def write_plain_xml(net, d: Path) -> tuple[Path, Path, Path]:
    """citytwin network -> SUMO plain nodes/edges/connections (ids = citytwin indices)."""
    nod, edg, con = d / "net.nod.xml", d / "net.edg.xml", d / "net.con.xml"
    with open(nod, "w") as f:
        f.write("<nodes>\n")
        for i, (x, y) in enumerate(zip(net.node_x_m, net.node_y_m)):
            f.write(f'  <node id="{i}" x="{x:.3f}" y="{y:.3f}"/>\n')
        f.write("</nodes>\n")
    # parallel links (same tail and head) get a slightly bent shape, else netconvert may merge them
    seen: dict[tuple[int, int], int] = {}
    with open(edg, "w") as f:
        f.write("<edges>\n")
        for e in range(net.n_links):
            u, v = int(net.link_tail[e]), int(net.link_head[e])
            k = seen.get((u, v), 0)
            seen[(u, v)] = k + 1
            shape = ""
            if k:
                x0, y0, x1, y1 = net.node_x_m[u], net.node_y_m[u], net.node_x_m[v], net.node_y_m[v]
                dx, dy = x1 - x0, y1 - y0
                norm = max(np.hypot(dx, dy), 1e-9)
                off = 5.0 * k
                mx, my = (x0 + x1) / 2 - dy / norm * off, (y0 + y1) / 2 + dx / norm * off
                shape = f' shape="{x0:.3f},{y0:.3f} {mx:.3f},{my:.3f} {x1:.3f},{y1:.3f}"'
            lanes = max(1, int(round(float(net.link_lanes[e]))))
            f.write(f'  <edge id="{e}" from="{u}" to="{v}" numLanes="{lanes}" '
                    f'speed="{net.link_speed_mps[e]:.6f}" length="{net.link_length_m[e]:.3f}"{shape}/>\n')
        f.write("</edges>\n")
    # every move citytwin allows (link a -> any link leaving head(a), U-turns included), so that
    # netconvert's connection guessing (which skips some sharp turns) does not restrict the routes
    with open(con, "w") as f:
        f.write("<connections>\n")
        for a in range(net.n_links):
            h = net.link_head[a]
            for b in range(net.indptr[h], net.indptr[h + 1]):
                f.write(f'  <connection from="{a}" to="{b}"/>\n')
        f.write("</connections>\n")
    return nod, edg, con


def read_sumo_net(path: Path) -> tuple[set[str], set[tuple[str, str]], dict[str, float]]:
    """Edge ids, (from, to) edge connections and edge lengths of a SUMO .net.xml."""
    edges, conns, length = set(), set(), {}
    for _, el in ET.iterparse(path, events=("end",)):
        if el.tag == "edge" and el.get("function") != "internal":
            edges.add(el.get("id"))
            lane = el.find("lane")
            if lane is not None:
                length[el.get("id")] = float(lane.get("length"))
        elif el.tag == "connection":
            conns.add((el.get("from"), el.get("to")))
        if el.tag in ("edge", "junction", "connection"):
            el.clear()
    return edges, conns, length


def write_routes(path: Path, trips: np.ndarray, depart: np.ndarray, indptr: np.ndarray, links: np.ndarray) -> None:
    order = trips[np.lexsort((trips, depart[trips]))]
    with open(path, "w") as f:
        f.write("<routes>\n")
        # speedDev 0: every vehicle drives at the speed limit (citytwin's free-flow speed)
        f.write('  <vType id="car" vClass="passenger" length="5" minGap="2.5" speedDev="0"/>\n')
        for t in order:
            edges = " ".join(map(str, links[indptr[t]:indptr[t + 1]].tolist()))
            f.write(f'  <vehicle id="{t}" type="car" depart="{depart[t]:.2f}"><route edges="{edges}"/></vehicle>\n')
        f.write("</routes>\n")


def write_trips(path: Path, trips: np.ndarray, depart: np.ndarray, origin: np.ndarray, dest: np.ndarray) -> None:
    """SUMO trips (no routes): origin/destination junction = citytwin node, departure time."""
    order = trips[np.lexsort((trips, depart[trips]))]
    with open(path, "w") as f:
        f.write("<routes>\n")
        f.write('  <vType id="car" vClass="passenger" length="5" minGap="2.5" speedDev="0"/>\n')
        for t in order:
            f.write(f'  <trip id="{t}" type="car" depart="{depart[t]:.2f}" '
                    f'fromJunction="{origin[t]}" toJunction="{dest[t]}"/>\n')
        f.write("</routes>\n")


def run_duarouter(duarouter: str, net_xml: Path, trips_xml: Path, out: Path, extra: list[str]) -> dict:
    cmd = [duarouter, "-n", str(net_xml), "--route-files", str(trips_xml), "-o", str(out), *DUAROUTER_OPTS, *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"duarouter failed ({p.returncode}):\n{log[-3000:]}")
    return {"wall_s": wall, "warnings": sum(1 for ln in log.splitlines() if ln.startswith("Warning")), "log": log}


def run_sumo(sumo: str, net_xml: Path, rou: Path, stats: Path, opts: list[str]) -> dict:
    cmd = [sumo, "-n", str(net_xml), "-r", str(rou), "--statistic-output", str(stats), *opts]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"sumo failed ({p.returncode}):\n{out[-3000:]}")

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else float("nan")

    res = {
        "wall_s": wall,
        "loop_s": num(r"Duration:\s*([\d.]+)\s*s"),
        "ups": num(r"UPS:\s*([\d.]+)"),
        "inserted": num(r"Inserted:\s*(\d+)"),
        "teleports": num(r"Teleports:\s*(\d+)"),
        "route_load_s": num(r"Loading route-files from .*? done \((\d+)ms\)") / 1000.0,
        "log": out,
    }
    st = ET.parse(stats).getroot()
    vts = st.find("vehicleTripStatistics")
    res["arrived"] = int(st.find("vehicles").get("loaded")) - int(st.find("vehicles").get("running")) \
        - int(st.find("vehicles").get("waiting"))
    res["trip_count"] = int(vts.get("count"))
    res["total_tt_s"] = float(vts.get("totalTravelTime"))
    res["total_depart_delay_s"] = float(vts.get("totalDepartDelay"))
    res["duration_mean_s"] = float(vts.get("duration"))
    res["depart_delay_mean_s"] = float(vts.get("departDelay"))
    res["route_length_mean_m"] = float(vts.get("routeLength"))
    res["time_loss_mean_s"] = float(vts.get("timeLoss"))
    tel = st.find("teleports")
    res["teleports"] = int(tel.get("total")) if tel is not None else res["teleports"]
    return res


# ------------------------------------------------------------------------------------ citytwin
def make_scenario(map_source: str, residents: int, seed: int, *, car_only: bool = False,
                  outputs: dict | None = None):
    from twin.scenario import scenario_from_dict

    d = {
        "name": "bench_sumo", "seed": seed, "map": {"source": map_source},
        "population": {"residents": residents},
        "simulation": {"start_s": "05:00", "end_s": "30:00"},
    }
    if car_only:
        d["population"].update(child_share=0.0, car_ownership=1.0)
        d["modes"] = {"available": ["car"]}
    if outputs:
        d["output"] = dict(outputs)
    return scenario_from_dict(d)


def timed_run(sc, out: Path, net) -> tuple[object, float]:
    """``run_scenario`` and the wall time of the whole call (the manifest's wall_s excludes report.html)."""
    from twin.run import run_scenario

    t0 = time.perf_counter()
    r = run_scenario(sc, out, network=net, overwrite=True)
    return r, time.perf_counter() - t0


def car_trips(m):
    """Routes (CSR), queue state and number of the car trips of a run model (old and new API)."""
    if hasattr(m, "car_route_indptr"):  # activity chains + modes: car trips are a subset
        return m.car_route_indptr, m.car_route_links, m.sim, int(m.car_trips.size)
    return m.route_indptr, m.route_links, m.sim, int(m.route_indptr.size - 1)


def car_od(m) -> tuple[np.ndarray, np.ndarray]:
    """Origin and destination node of each car trip, in the queue's order."""
    idx = m.car_trips if hasattr(m, "car_trips") else np.arange(m.trips.n)
    return np.asarray(m.trips.origin)[idx], np.asarray(m.trips.dest)[idx]


def sumo_network(net, work: Path, netconvert: str) -> tuple[Path, set[tuple[str, str]], set[str]]:
    nod, edg, con = write_plain_xml(net, work)
    net_xml = work / "net.net.xml"
    t0 = time.perf_counter()
    p = subprocess.run([netconvert, "-n", str(nod), "-e", str(edg), "-x", str(con), "-o", str(net_xml),
                        *NETCONVERT_OPTS], capture_output=True, text=True)
    nc_s = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"netconvert failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    nc_warn = sum(1 for line in (p.stdout + p.stderr).splitlines() if line.startswith("Warning"))
    s_edges, s_conns, s_len = read_sumo_net(net_xml)
    missing = {str(e) for e in range(net.n_links) if str(e) not in s_edges}
    len_err = max(abs(s_len[str(e)] - net.link_length_m[e]) for e in range(net.n_links) if str(e) in s_len)
    moves = sum(int(net.indptr[h + 1] - net.indptr[h]) for h in net.link_head)
    moves_ok = sum(1 for a in range(net.n_links) for b in range(net.indptr[net.link_head[a]], net.indptr[net.link_head[a] + 1])
                   if (str(a), str(b)) in s_conns)
    print(f"netconvert: {nc_s:.2f} s (not timed below), {len(s_edges)} SUMO edges, {len(missing)} citytwin links missing, "
          f"{moves_ok}/{moves} citytwin link-to-link moves present, {nc_warn} warnings, "
          f"max |SUMO length - citytwin length| = {len_err:.3f} m")
    return net_xml, s_conns, missing


def bench_one(args, n: int, net, work: Path, tools: tuple[str, str, str], net_xml: Path, s_conns, missing) -> dict:
    from twin.model import CityModel
    from twin.network.routing import Router

    sumo, _, duarouter = tools
    print(f"\n=== {n} residents (seed {args.seed}, 05:00-30:00, dt 1 s), best of {args.repeat} ===")
    sc = make_scenario(args.map, n, args.seed)
    # trips, routes and the departure times citytwin actually used
    m = CityModel(sc, network=net)
    m.run()
    ip, ln, sim, n_car = car_trips(m)
    done = sim.status[:n_car] == STATUS_ARRIVED
    tt = sim.arrive_s[:n_car][done] - sim.depart_s[:n_car][done]
    ct_vs, ct_done, ct_mean = float(tt.sum()), int(done.sum()), float(tt.mean()) if tt.size else float("nan")
    ct_len = float(np.mean([net.link_length_m[ln[ip[i]:ip[i + 1]]].sum() for i in np.flatnonzero(done)]))
    departed = np.flatnonzero(np.isfinite(sim.depart_s[:n_car]))
    k = m.kpis()
    # citytwin end to end, timed (the whole run_scenario call, report.html included)
    runs = [timed_run(sc, work / f"citytwin_{n}", net) for _ in range(args.repeat)]
    if not all(r.kpis == k for r, _ in runs):
        print("WARNING: run_scenario's KPIs differ from the CityModel run used for the SUMO trips")
    ct_wall = min(w for _, w in runs)
    ct_move = min(r.phase_time_s["move"] for r, _ in runs)
    best, best_wall = min(runs, key=lambda rw: rw[1])
    if not args.keep:
        shutil.rmtree(work / f"citytwin_{n}", ignore_errors=True)

    # SUMO: same trips, same routes, same departure times
    ok = np.ones(departed.size, dtype=bool)
    for j, t in enumerate(departed):
        r = [str(x) for x in ln[ip[t]:ip[t + 1]]]
        if any(x in missing for x in r) or any((a, b) not in s_conns for a, b in zip(r, r[1:])):
            ok[j] = False
    trips = departed[ok]
    rou = work / f"routes_{n}.rou.xml"
    write_routes(rou, trips, sim.depart_s, ip, ln)
    opts = sumo_opts(sc.simulation.stuck_time_s, sc.simulation.start_s)
    s_runs = [run_sumo(sumo, net_xml, rou, work / f"stats_{n}.xml", opts) for _ in range(args.repeat)]
    s_wall = min(r["wall_s"] for r in s_runs)
    s_loop = min(r["loop_s"] for r in s_runs)
    s = s_runs[0]
    # supplementary: all routes parsed before the loop (--route-steps 0); its Duration still includes the
    # parsing, which SUMO reports separately, so loop - parsing = the simulation alone
    opts0 = [o if o != "200" else "0" for o in opts]
    s0 = [run_sumo(sumo, net_xml, rou, work / f"stats0_{n}.xml", opts0) for _ in range(args.repeat)]
    s_pure = min(r["loop_s"] - r["route_load_s"] for r in s0)
    if args.keep:
        (work / f"sumo_{n}.log").write_text(s["log"])
    s_vs = s["total_tt_s"] + s["total_depart_delay_s"]  # arrive - scheduled depart, arrived vehicles

    # end to end with routing on both sides: the same car trips (OD nodes + departure), no routes
    o_node, d_node = car_od(m)
    same = o_node[departed] == d_node[departed]
    dtrips = departed[~same]  # a trip from a junction to itself has no route in either tool
    trips_xml = work / f"trips_{n}.trips.xml"
    write_trips(trips_xml, dtrips, sim.depart_s, o_node, d_node)
    dua_rou = work / f"dua_{n}.rou.xml"
    pipe = []
    for _ in range(args.repeat):
        dr = run_duarouter(duarouter, net_xml, trips_xml, dua_rou, [])
        sm = run_sumo(sumo, net_xml, dua_rou, work / f"stats_dua_{n}.xml", opts)
        pipe.append((dr["wall_s"] + sm["wall_s"], dr, sm))
    p_wall, p_dr, p_sm = min(pipe, key=lambda x: x[0])
    dua_s = min(x[1]["wall_s"] for x in pipe)
    p_vs = p_sm["total_tt_s"] + p_sm["total_depart_delay_s"]
    # supplementary: duarouter with contraction hierarchies (not SUMO's default), same meso run
    ch = [run_duarouter(duarouter, net_xml, trips_xml, work / f"dua_ch_{n}.rou.xml", ["--routing-algorithm", "CH"])
          for _ in range(args.repeat)]
    dua_ch_s = min(r["wall_s"] for r in ch)
    sm_ch = [run_sumo(sumo, net_xml, work / f"dua_ch_{n}.rou.xml", work / f"stats_ch_{n}.xml", opts)
             for _ in range(args.repeat)]
    p_ch_wall = dua_ch_s + min(r["wall_s"] for r in sm_ch)
    p_ch_vs = sm_ch[0]["total_tt_s"] + sm_ch[0]["total_depart_delay_s"]
    # citytwin's router on the same car trips alone (free-flow times, as duarouter), in process
    router = Router(net.indptr, net.link_head, net.link_tail, net.link_fftt_s)
    route_s = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rs = router.route(o_node[dtrips], d_node[dtrips])
        route_s.append(time.perf_counter() - t0)
    ct_route = min(route_s)
    ct_route_len = float(np.mean([net.link_length_m[rs.route_links[rs.route_indptr[i]:rs.route_indptr[i + 1]]].sum()
                                  for i in range(dtrips.size)]))
    bp = best.phase_time_s
    ct_carpipe = best_wall - bp["population"] - bp["plan"] + ct_route

    # car-only citytwin scenario: default outputs, each optional output off in turn, all three off
    co = {}
    for label, outputs in CAR_ONLY_OUTPUTS:
        sco = make_scenario(args.map, n, args.seed, car_only=True, outputs=outputs)
        # unfinished car trips (NaN arrival) make twin.model's KPI/trip-table arithmetic warn: silenced here
        with np.errstate(invalid="ignore"):
            rr = [timed_run(sco, work / f"citytwin_car_{n}", net) for _ in range(args.repeat)]
        co[label] = min(rr, key=lambda rw: rw[1])
    shutil.rmtree(work / f"citytwin_car_{n}", ignore_errors=True)
    c_move = min(r.phase_time_s["move"] for r, _ in co.values())

    # the car-only day (heavier traffic; congested at 50,000 on Baltimore) given to SUMO too:
    # its car trips, routes and departure times
    mc = CityModel(make_scenario(args.map, n, args.seed, car_only=True), network=net)
    with np.errstate(invalid="ignore"):
        mc.run()
    cip, cln, csim, cn = car_trips(mc)
    c_done = csim.status[:cn] == STATUS_ARRIVED
    c_tt = csim.arrive_s[:cn][c_done] - csim.depart_s[:cn][c_done]
    c_vs, c_mean = float(c_tt.sum()), float(c_tt.mean()) if c_tt.size else float("nan")
    c_dep = np.flatnonzero(np.isfinite(csim.depart_s[:cn]))
    c_ok = np.array([not any(str(x) in missing for x in cln[cip[t]:cip[t + 1]])
                     and all((str(a), str(b)) in s_conns for a, b in zip(cln[cip[t]:cip[t + 1] - 1],
                                                                         cln[cip[t] + 1:cip[t + 1]]))
                     for t in c_dep], dtype=bool)
    c_rou = work / f"routes_car_{n}.rou.xml"
    write_routes(c_rou, c_dep[c_ok], csim.depart_s, cip, cln)
    cs_runs = [run_sumo(sumo, net_xml, c_rou, work / f"stats_car_{n}.xml", opts) for _ in range(args.repeat)]
    cs = cs_runs[0]
    cs_loop = min(r["loop_s"] for r in cs_runs)
    cs_vs = cs["total_tt_s"] + cs["total_depart_delay_s"]
    cong_x = (c_vs / c_move) / (cs_vs / cs_loop)

    print(f"trips given to SUMO: {trips.size} of {departed.size} departed in citytwin "
          f"({departed.size - trips.size} dropped: a move missing in the SUMO net)")
    print("citytwin phases (s, fastest end-to-end run): "
          + ", ".join(f"{kk} {v:.3f}" for kk, v in bp.items())
          + f"; manifest wall {best.wall_s:.3f} (excl. report.html), whole call {best_wall:.3f}")
    print(f"citytwin: {m.trips.n if hasattr(m, 'trips') else n_car} trips of all modes, {n_car} by car; "
          f"car trips: forced moves {k.get('forced_moves', '-')}, mean route length {ct_len:.0f} m")
    print(f"SUMO: UPS {s['ups']:.3g}, inserted {s['inserted']:.0f}, teleports {s['teleports']}, "
          f"mean time loss {s['time_loss_mean_s']:.1f} s, mean depart delay {s['depart_delay_mean_s']:.2f} s, "
          f"mean route length {s['route_length_mean_m']:.0f} m")
    print(f"SUMO loop with all routes pre-parsed (--route-steps 0): Duration - route parsing = {s_pure:.3f} s")
    print(f"trips given to duarouter: {dtrips.size} ({int(same.sum())} with origin = destination left out); "
          f"duarouter {dua_s:.3f} s ({p_dr['warnings']} warnings), meso on its routes {p_sm['wall_s']:.3f} s "
          f"(loop {p_sm['loop_s']:.2f} s, {p_sm['trip_count']} arrived, teleports {p_sm['teleports']}, "
          f"mean route length {p_sm['route_length_mean_m']:.0f} m)")
    print(f"routing the same {dtrips.size} car trips alone: citytwin Router.route {ct_route:.3f} s "
          f"(mean route length {ct_route_len:.0f} m), duarouter {dua_s:.3f} s, "
          f"duarouter --routing-algorithm CH {dua_ch_s:.3f} s")
    s_mean = s_vs / max(1, s["trip_count"])
    p_mean = p_vs / max(1, p_sm["trip_count"])
    loop_x = (ct_vs / ct_move) / (s_vs / s_loop)
    e2e_x = (ct_vs / ct_wall) / (s_vs / s_wall)
    pure_x = (ct_vs / ct_move) / (s_vs / s_pure)
    dua_x = (ct_vs / ct_wall) / (p_vs / p_wall)
    pipe_x = (ct_vs / ct_carpipe) / (p_vs / p_wall)
    ch_x = (ct_vs / ct_wall) / (p_ch_vs / p_ch_wall)
    rows = [
        ("car trips completed", f"{ct_done:d}", f"{s['trip_count']:d}", f"{ct_done / max(1, s['trip_count']):.3f}"),
        ("mean travel time s (arrive - depart)", f"{ct_mean:.1f}", f"{s_mean:.1f}", f"{ct_mean / s_mean:.3f}"),
        ("vehicle-seconds simulated", f"{ct_vs:.4g}", f"{s_vs:.4g}", f"{ct_vs / s_vs:.3f}"),
        ("simulation loop wall s", f"{ct_move:.3f}", f"{s_loop:.3f}", f"{ct_move / s_loop:.3f}"),
        ("whole run wall s", f"{ct_wall:.3f}", f"{s_wall:.3f}", f"{ct_wall / s_wall:.3f}"),
        ("veh-s per wall s, simulation loop", f"{ct_vs / ct_move:.3g}", f"{s_vs / s_loop:.3g}", f"{loop_x:.1f}x"),
        ("veh-s per wall s, whole run", f"{ct_vs / ct_wall:.3g}", f"{s_vs / s_wall:.3g}", f"{e2e_x:.1f}x"),
        ("veh-s per wall s, loop w/o route parsing", f"{ct_vs / ct_move:.3g}", f"{s_vs / s_pure:.3g}", f"{pure_x:.1f}x"),
        ("-- both route: SUMO = duarouter + meso", "", "", ""),
        ("car trips completed", f"{ct_done:d}", f"{p_sm['trip_count']:d}", f"{ct_done / max(1, p_sm['trip_count']):.3f}"),
        ("mean travel time s (arrive - depart)", f"{ct_mean:.1f}", f"{p_mean:.1f}", f"{ct_mean / p_mean:.3f}"),
        ("routing the car trips alone, wall s", f"{ct_route:.3f}", f"{dua_s:.3f}", f"{ct_route / dua_s:.3f}"),
        ("whole run wall s (ct: run_scenario)", f"{ct_wall:.3f}", f"{p_wall:.3f}", f"{ct_wall / p_wall:.3f}"),
        ("veh-s per wall s, whole run", f"{ct_vs / ct_wall:.3g}", f"{p_vs / p_wall:.3g}", f"{dua_x:.1f}x"),
        ("car pipeline wall s (ct: estimate)", f"{ct_carpipe:.3f}", f"{p_wall:.3f}", f"{ct_carpipe / p_wall:.3f}"),
        ("veh-s per wall s, car pipeline", f"{ct_vs / ct_carpipe:.3g}", f"{p_vs / p_wall:.3g}", f"{pipe_x:.1f}x"),
        ("whole run vs duarouter CH + meso", f"{ct_wall:.3f}", f"{p_ch_wall:.3f}", f"{ch_x:.1f}x"),
    ]
    w = [42, 12, 12, 15]
    print()
    print("".ljust(w[0]) + "citytwin".rjust(w[1]) + "SUMO meso".rjust(w[2]) + "citytwin/SUMO".rjust(w[3]))
    print("-" * sum(w))
    for r in rows:
        print(r[0].ljust(w[0]) + "".join(c.rjust(w[i + 1]) for i, c in enumerate(r[1:])))
    print("\ncitytwin car-only scenario (modes [car], child_share 0, car_ownership 1), end to end:")
    for label, (r, wall) in co.items():
        kk = r.kpis
        print(f"  {label:<23} wall {wall:6.3f} s (manifest {r.wall_s:.3f}); {kk['car_trips']} car trips, "
              f"{kk['trips_completed']} completed ({kk['completion_rate']:.1%}), forced moves {kk['forced_moves']}; "
              "phases " + ", ".join(f"{a} {b:.3f}" for a, b in r.phase_time_s.items() if b >= 0.0005))
    print(f"\ncar-only day (every adult drives; heavier traffic) given to SUMO as well ({int(c_ok.sum())} of "
          f"{c_dep.size} departed car trips, same routes and departure times):")
    print(f"  completed: citytwin {int(c_done.sum())} (forced moves {mc.sim.n_forced_moves}), SUMO {cs['trip_count']} "
          f"(teleports {cs['teleports']}); mean travel time citytwin {c_mean:.1f} s, "
          f"SUMO {cs_vs / max(1, cs['trip_count']):.1f} s (mean time loss {cs['time_loss_mean_s']:.1f} s)")
    print(f"  simulation loop: citytwin move phase {c_move:.3f} s ({c_vs / c_move:.3g} veh-s/s), SUMO meso loop "
          f"{cs_loop:.3f} s ({cs_vs / cs_loop:.3g} veh-s/s): {cong_x:.1f}x")
    return {"n": n, "loop_x": loop_x, "cong_x": cong_x, "e2e_x": e2e_x, "pure_x": pure_x, "ct_move": ct_move, "s_loop": s_loop,
            "ct_wall": ct_wall, "s_wall": s_wall, "ct_mean": ct_mean, "s_mean": s_mean, "n_car": n_car,
            "p_wall": p_wall, "dua_x": dua_x, "ct_carpipe": ct_carpipe, "pipe_x": pipe_x, "ct_route": ct_route,
            "dua_s": dua_s, "dua_ch_s": dua_ch_s, "p_ch_wall": p_ch_wall, "ch_x": ch_x,
            "co": {lab: (wall, r.kpis, dict(r.phase_time_s), r.wall_s) for lab, (r, wall) in co.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--map", default="baltimore", help="citytwin map source (catalogue name or file)")
    ap.add_argument("--residents", type=int, nargs="+", default=[20000],
                    help="residents (car trips are those citytwin's mode choice gives the car); several values run in turn")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each simulator (best reported)")
    ap.add_argument("--keep", metavar="DIR", help="write the SUMO files (and citytwin run folders) here and keep them")
    args = ap.parse_args()

    tools = find_sumo()
    sumo, netconvert, duarouter = tools
    import numba

    from twin.network import RoadNetwork
    from twin.run import run_scenario

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sumo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        net = RoadNetwork.load(args.map, "drive")
        ver = subprocess.run([sumo, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        print(f"map: {args.map} (drive)  nodes={net.n_nodes}  links={net.n_links}")
        print(f"python {platform.python_version()}  numba {numba.__version__}  cpus={os.cpu_count()}  "
              f"numba threads={numba.get_num_threads()}  {ver}")
        print("netconvert " + " ".join(NETCONVERT_OPTS))
        print("sumo " + " ".join(sumo_opts(300, 18000)))
        print("duarouter " + " ".join(DUAROUTER_OPTS) + "   (trips: fromJunction/toJunction = citytwin nodes)")
        # warm-up: compile / load every Numba kernel, import the writers
        t0 = time.perf_counter()
        run_scenario(make_scenario(args.map, 200, args.seed), work / "warmup", network=net, overwrite=True)
        run_scenario(make_scenario(args.map, 200, args.seed, car_only=True), work / "warmup", network=net,
                     overwrite=True)
        shutil.rmtree(work / "warmup", ignore_errors=True)
        print(f"citytwin warm-up (200 residents, default and car-only, compile or cache load): "
              f"{time.perf_counter() - t0:.2f} s")
        net_xml, s_conns, missing = sumo_network(net, work, netconvert)

        res = [bench_one(args, n, net, work, tools, net_xml, s_conns, missing) for n in args.residents]

        print("\n=== summary: vehicle-seconds per wall second, citytwin / SUMO meso ===")
        print("(default scenario; from 'ct whole s' on, SUMO routes too: duarouter + meso on the same car trips)")
        print(f"{'residents':>10}{'sim loop':>10}{'(target)':>10}{'whole run':>11}{'(target)':>10}"
              f"{'loop w/o parse':>16}{'mean tt ct/SUMO s':>20}"
              f"{'ct whole s':>12}{'SUMO duarouter + meso (s)':>27}{'ratio':>8}{'(target)':>10}{'car pipeline':>14}")
        for r in res:
            print(f"{r['n']:>10}{r['loop_x']:>9.1f}x{'>= 20x':>10}{r['e2e_x']:>10.1f}x{'>= 5x':>10}"
                  f"{r['pure_x']:>15.1f}x{r['ct_mean']:>12.0f} /{r['s_mean']:>6.0f}"
                  f"{r['ct_wall']:>12.2f}{r['p_wall']:>27.2f}{r['dua_x']:>7.1f}x{'>= 5x':>10}{r['pipe_x']:>13.1f}x")
        print("\n=== routing the same car trips alone (s) ===")
        print(f"{'residents':>10}{'car trips':>11}{'citytwin':>10}{'duarouter':>11}{'duarouter CH':>14}")
        for r in res:
            print(f"{r['n']:>10}{r['n_car']:>11}{r['ct_route']:>10.3f}{r['dua_s']:>11.3f}{r['dua_ch_s']:>14.3f}")
        print("\n=== citytwin car-only scenario, end to end (s) ===")
        print("(cost of an output = default-outputs wall - wall with only that output off)")
        print(f"{'residents':>10}{'car trips':>11}{'completed':>11}{'outputs off':>13}{'default outputs':>17}"
              f"{'all 3 cost':>12}{'events':>9}{'gpkg':>8}{'report':>8}")
        for r in res:
            c = r["co"]
            w_on, k_on = c["default outputs"][0], c["default outputs"][1]
            w_off = c["events/gpkg/report off"][0]
            print(f"{r['n']:>10}{k_on['car_trips']:>11}{k_on['completion_rate']:>10.1%}{w_off:>13.2f}{w_on:>17.2f}"
                  f"{w_on - w_off:>+12.2f}{w_on - c['events off'][0]:>+9.2f}{w_on - c['geopackage off'][0]:>+8.2f}"
                  f"{w_on - c['report off'][0]:>+8.2f}")
        print("\n=== the car-only day in both simulators (heavier traffic): simulation loop ratio ===")
        for r in res:
            print(f"{r['n']:>10} residents: {r['cong_x']:.1f}x")
        for r in res:
            print(f"{r['n']} residents: simulation loop {'met' if r['loop_x'] >= 20 else 'NOT met'} "
                  f"({r['loop_x']:.1f}x vs 20x); end to end vs SUMO meso on given routes "
                  f"{'met' if r['e2e_x'] >= 5 else 'NOT met'} ({r['e2e_x']:.1f}x vs 5x); end to end vs "
                  f"duarouter + meso {'met' if r['dua_x'] >= 5 else 'NOT met'} ({r['dua_x']:.1f}x vs 5x; "
                  f"car-pipeline estimate {r['pipe_x']:.1f}x)")
        print("citytwin loop = move phase; whole run = the run_scenario call (population, demand, mode choice, routing, "
              "simulation, run folder incl. report.html; network preloaded). SUMO loop = its 'Performance: Duration' "
              "(includes incremental route parsing); whole run = sumo process wall time (load net + routes, simulate, "
              "statistics); duarouter + meso = the two process wall times added. car pipeline = citytwin whole run - "
              "population/demand - plan phase + routing the car trips alone.")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
