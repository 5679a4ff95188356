"""MaaS dispatch cost: a ride-pooling fleet on the Baltimore day, dispatch time per batch and the
whole-day wall time, for several fleet sizes (printed; not a timed test).

Residents choose the ``maas`` mode almost always (``asc`` 5, no cars), so requests follow the day's
demand; the fleet (4 seats, pooling, 30-second batches, 10-minute maximum wait) is spread over
the network. For each fleet size: requests, the peak hour's requests, batches, dispatch time per
batch (mean, p95, max; only batches with requests), and the whole day's wall time and phases.

    TWIN_MAPS_PATH=../shared/maps python benchmarks/bench_maas.py --residents 20000 --vehicles 250 500 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def scenario(map_source: str, residents: int, vehicles: int, dispatcher: str):
    from twin.scenario import scenario_from_dict

    return scenario_from_dict({
        "name": "bench_maas", "seed": 1, "map": {"source": map_source},
        "population": {"residents": residents, "car_ownership": 0.0, "sample_share": 1.0},
        "modes": {"available": ["walk", "bike", "maas"], "plugins": {"maas": {"asc": 5.0}}},
        "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 30},
        "maas": {"operators": [{"name": "pool", "fleet_size": vehicles, "seats": 4, "dispatcher": dispatcher,
                                "batch_s": 30, "max_wait_s": 600}]},
        "output": {"events": False, "geopackage": False, "report": False},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="baltimore")
    ap.add_argument("--residents", type=int, default=20000)
    ap.add_argument("--vehicles", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--dispatcher", default="pooling", choices=["immediate", "batch", "pooling"])
    args = ap.parse_args()
    from twin.domains.maas import dispatch, pooling
    from twin.model import CityModel, load_network

    net = load_network(scenario(args.map, 100, 10, args.dispatcher))
    CityModel(scenario(args.map, 200, 10, args.dispatcher), network=net).run()  # compile, warm caches
    cls = {"pooling": pooling.PoolingDispatcher, "batch": dispatch.BatchDispatcher}.get(args.dispatcher)
    print(f"{args.map}: {net.n_links} links; {args.residents} residents; dispatcher {args.dispatcher}, 30 s batches")
    print("| vehicles | requests | peak-hour requests | batches with requests | dispatch ms per batch: mean | p95 | max "
          "| rejected | shared | wall s | phases s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_veh in args.vehicles:
        times: list[float] = []
        if cls is not None:
            orig = cls._batch

            def timed(self, b_s, t_s, orig=orig):
                t0 = time.perf_counter()
                n = orig(self, b_s, t_s)
                if n:
                    times.append(time.perf_counter() - t0)
                return n
            cls._batch = timed
        try:
            t0 = time.perf_counter()
            m = CityModel(scenario(args.map, args.residents, n_veh, args.dispatcher), network=net)
            m.run()
            wall = time.perf_counter() - t0
        finally:
            if cls is not None:
                cls._batch = orig
        rq = m.domain("maas").request_columns()
        hour = np.floor(rq["request_s"] / 3600)
        peak = int(np.bincount(hour.astype(np.int64)).max()) if hour.size else 0
        ms = np.array(times) * 1000
        k = m.kpis()
        ph = {p: round(v, 1) for p, v in m.phase_time_s.items() if v >= 0.1}
        print(f"| {n_veh} | {rq['request_id'].size} | {peak} | {ms.size} | {ms.mean():.1f} | {np.percentile(ms, 95):.1f} "
              f"| {ms.max():.1f} | {k['maas_rejection_rate']} | {k['maas_shared_share']} | {wall:.1f} | {ph} |",
              flush=True)


if __name__ == "__main__":
    main()
