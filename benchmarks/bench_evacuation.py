"""Evacuation on Baltimore: a staged flood evacuation of a whole day's population, cars and walkers
(printed; not a timed test).

A hypothetical flood spreads from the Inner Harbor at 08:30 (600 m, then +400 m at 08:50 and +800 m
at 09:10); orders are staged by distance rings (1, 2, 3 km, 10 minutes apart), compliance 0.9, Rayleigh
delays (scale 10 min), shelters: the map's education buildings and four listed ones at the map's
edges; contraflow on the busiest outbound arterial corridors from the first order (``--contraflow``
corridors chosen automatically; ``--compare`` also runs the day without, for the clearance
before/after). Prints the wall time of the whole run (population, demand, routing, the day) and its phases,
and the evacuation KPIs, for each population size.

    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_evacuation.py --residents 20000 100000 --compare
"""

from __future__ import annotations

import argparse
import time


def scenario(map_source: str, residents: int, record_s: float, contraflow: int = 0):
    from twin.scenario import scenario_from_dict

    d = {
        "name": "bench_evacuation", "seed": 1, "map": {"source": map_source},
        "population": {"residents": residents},
        "simulation": {"start_s": "05:00", "end_s": "14:00", "record_interval_s": record_s},
        "output": {"events": False, "geopackage": False, "report": False},
        "evacuation": {
            "hazards": [{"name": "harbor", "points": [[-76.6075, 39.2855]], "radius_m": 600, "onset_s": "08:30",
                         "stages": [{"at_s": "08:50", "grow_m": 400}, {"at_s": "09:10", "grow_m": 800}]}],
            "orders": {"mode": "staged", "at_s": "08:30", "rings_m": [1000, 2000, 3000], "ring_interval_s": 600,
                       "zone_m": 1000, "compliance": 0.9, "delay": {"distribution": "rayleigh", "scale_s": 600}},
            "shelters": {"from_map": True, "listed": [
                {"name": "north", "lon": -76.58, "lat": 39.31, "capacity": 20000},
                {"name": "east", "lon": -76.52, "lat": 39.29, "capacity": 20000},
                {"name": "south", "lon": -76.57, "lat": 39.255, "capacity": 20000},
                {"name": "north-west", "lon": -76.61, "lat": 39.312, "capacity": 20000}]},
        },
    }
    if contraflow:
        d["evacuation"]["contraflow"] = {"auto": contraflow}
    return scenario_from_dict(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="baltimore")
    ap.add_argument("--residents", type=int, nargs="+", default=[20000, 100000])
    ap.add_argument("--record-s", type=float, default=60.0, help="model step (closures, orders), seconds")
    ap.add_argument("--contraflow", type=int, default=3, help="corridors reversed (0: none)")
    ap.add_argument("--compare", action="store_true", help="also run each size without contraflow")
    args = ap.parse_args()
    from twin.model import CityModel, load_network

    net = load_network(scenario(args.map, 100, args.record_s))
    CityModel(scenario(args.map, 200, args.record_s), network=net).run()  # compile, warm caches
    print(f"{args.map}: {net.n_links} links; staged flood evacuation, {args.record_s:.0f} s steps")
    print("| residents | contraflow links | wall s | evacuees | sheltered | not sheltered | left car "
          "| clearance 50/90/95% (min) | exposure person-h | links closed | phases s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [(n, cf) for n in args.residents for cf in ([args.contraflow, 0] if args.compare and args.contraflow
                                                        else [args.contraflow])]
    for n, cf in runs:
        t0 = time.perf_counter()
        m = CityModel(scenario(args.map, n, args.record_s, cf), network=net)
        m.run()
        wall = time.perf_counter() - t0
        k = m.kpis()
        cl = "/".join("-" if k[f"evacuation_clearance_{q}_s"] is None else f"{k[f'evacuation_clearance_{q}_s'] / 60:.1f}"
                      for q in (50, 90, 95))
        ph = {p: round(v, 1) for p, v in m.phase_time_s.items() if v >= 0.1}
        print(f"| {n} | {k['evacuation_contraflow_links']} | {wall:.1f} | {k['evacuation_evacuees']} | {k['evacuation_sheltered']} "
              f"| {k['evacuation_not_sheltered']} | {k['evacuation_left_car']} | {cl} | {k['evacuation_exposure_person_h']} "
              f"| {k['evacuation_links_closed']} | {ph} |", flush=True)


if __name__ == "__main__":
    main()
