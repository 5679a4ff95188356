"""Run a scenario and write its run folder atomically.

Everything is written into a hidden temporary folder beside the target (``.NAME.partial-XXXX``)
and renamed to the target only when the run has succeeded, so a failed or interrupted run never
leaves a folder that looks complete. An existing target is kept unless ``overwrite=True``.

Run folder contents:

``scenario.resolved.yaml``  the scenario with every default spelled out
``kpis.json``               run-level KPIs (deterministic)
``trips.parquet``           one row per trip
``links.parquet``           hourly volume and mean speed per link (rows with traffic)
``links.gpkg``              daily link results with geometry, for GIS tools (QGIS, geopandas)
``events.parquet``          depart / enter_link / leave_link / arrive / aborted events of the last day
``iterations.parquet``      KPIs and relative gap of every simulated day (equilibrium convergence)
``timeseries.parquet``      Mesa DataCollector model variables per model step (last day)
``report.html``             a self-contained report: KPIs, maps, charts (see :mod:`twin.report`)
``network.json``            summary of the road network used
``manifest.json``           versions, seed, wall times per phase, files (not deterministic)
``run.log``                 the log of the run
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin import __version__
from twin._errors import OutputExistsError
from twin._tables import write_table
from twin.scenario import Scenario, dump_scenario

__all__ = ["RunResult", "run_scenario", "default_out_dir", "write_table"]

log = logging.getLogger("twin")


@dataclass
class RunResult:
    """What :func:`run_scenario` returns."""

    out_dir: Path
    kpis: dict[str, Any]
    wall_s: float
    phase_time_s: dict[str, float] = field(default_factory=dict)
    network_summary: dict[str, Any] = field(default_factory=dict)


def default_out_dir(scenario: Scenario) -> Path:
    """``runs/NAME`` (``runs/NAME-seedN`` when the seed was overridden is up to the caller)."""
    return Path("runs") / scenario.name


def write_links_gpkg(model: Any, path: Path) -> None:
    """Daily link results (volume, peak hour, speeds, volume/capacity) as a GeoPackage layer."""
    import geopandas as gpd
    from shapely import linestrings

    net = model.network
    cols = model.links_columns()
    L = net.n_links
    vol = np.bincount(cols["link_id"], weights=cols["volume_veh"], minlength=L)
    tt = np.bincount(cols["link_id"], weights=cols["volume_veh"] * cols["mean_travel_time_s"], minlength=L)
    peak_vol = np.zeros(L)
    peak_hour = np.full(L, -1)
    for link, hour, v in zip(cols["link_id"], cols["hour"], cols["volume_veh"]):
        if v > peak_vol[link]:
            peak_vol[link] = v
            peak_hour[link] = hour
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_speed = np.where(tt > 0, net.link_length_m * vol / tt, net.link_speed_mps)
    coords = np.stack([np.column_stack([net.node_lon[net.link_tail], net.node_lat[net.link_tail]]),
                       np.column_stack([net.node_lon[net.link_head], net.node_lat[net.link_head]])], axis=1)
    gdf = gpd.GeoDataFrame({
        "link_id": np.arange(L), "u_osmid": net.node_osmid[net.link_tail], "v_osmid": net.node_osmid[net.link_head],
        "osm_way_id": net.link_osmid, "length_m": net.link_length_m, "lanes": net.link_lanes,
        "capacity_vph": net.link_capacity_vph, "freeflow_speed_mps": net.link_speed_mps,
        "volume_day_veh": vol.astype(np.int64), "peak_hour": peak_hour, "peak_volume_veh": peak_vol.astype(np.int64),
        "peak_vc_ratio": peak_vol / net.link_capacity_vph, "mean_speed_mps": mean_speed,
    }, geometry=linestrings(coords), crs="EPSG:4326")
    gdf.to_file(path, layer="links", driver="GPKG")


@contextmanager
def _run_log(path: Path):
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(old)


def _git_commit() -> str | None:
    from twin.settings import project_root

    root = project_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        import subprocess

        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    network: Any = None,
    walk_network: Any = None,
    bike_network: Any = None,
    on_network: Callable[[Any], None] | None = None,
    route_progress: Callable[[int, int], None] | None = None,
    sim_progress: Callable[[float, float], None] | None = None,
    base_dir: str | Path | None = None,
) -> RunResult:
    """Simulate a scenario and write its run folder (see module docs).

    Parameters
    ----------
    scenario
        A validated scenario.
    out_dir
        Target folder (default ``runs/NAME``).
    overwrite
        Replace an existing target folder (only after the new run succeeded).
    network, walk_network, bike_network
        Preloaded :class:`~twin.network.RoadNetwork` objects (else loaded from ``scenario.map``;
        sweeps load them once and share them).
    on_network, route_progress, sim_progress
        Callbacks for progress display.

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``overwrite`` is False (checked before any work).
    TwinError
        Bad map, etc.; no output folder is left behind.
    """
    from twin.model import CityModel, load_network

    out = Path(out_dir) if out_dir is not None else default_out_dir(scenario)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output folder {out} exists; pass --overwrite to replace it or --out to choose another")
    t0 = time.perf_counter()
    created_parent = not out.parent.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        with _run_log(tmp / "run.log"):
            log.info("citytwin %s: scenario %s, seed %d", __version__, scenario.name, scenario.seed)
            t_net = time.perf_counter()
            net = network if network is not None else load_network(scenario)
            net_load_s = time.perf_counter() - t_net
            log.info("network %s: %d nodes, %d links (cache %s, %.2f s)", net.source, net.n_nodes, net.n_links,
                     net.meta.get("cache", "-"), net_load_s)
            if on_network is not None:
                on_network(net)
            model = CityModel(scenario, network=net, walk_network=walk_network, bike_network=bike_network,
                              route_progress=route_progress, base_dir=base_dir)
            model.phase_time_s["network"] = net_load_s
            log.info("population: %d residents, %d trips planned", model.pop.n, model.trips.n)
            model.run(progress=sim_progress)
            for rec in model.iteration_records:
                log.info("iteration %d: relative gap %s, car trips %d, mean car travel time %s s",
                         rec["iteration"], rec["relative_gap"], rec["car_trips"], rec["car_travel_time_mean_s"])
            t_out = time.perf_counter()
            kpis = model.kpis()
            log.info("simulation done at t=%.0f s: %d of %d trips completed", model.sim.t_s,
                     kpis["trips_completed"], kpis["trips_total"])
            (tmp / "scenario.resolved.yaml").write_text(dump_scenario(scenario), encoding="utf-8")
            (tmp / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
            write_table(model.trips_columns(), tmp / "trips.parquet")
            if scenario.output.links:
                write_table(model.links_columns(), tmp / "links.parquet")
            if scenario.output.events:
                write_table(model.events_columns(), tmp / "events.parquet")
            if scenario.output.geopackage:
                write_links_gpkg(model, tmp / "links.gpkg")
            write_table(model.iterations_columns(), tmp / "iterations.parquet")
            if scenario.output.timeseries:
                df = model.datacollector.get_model_vars_dataframe()
                write_table({c: df[c].to_numpy() for c in df.columns}, tmp / "timeseries.parquet")
            summary = net.summary()
            summary["policies"] = model.policies.summary()
            (tmp / "network.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            model.phase_time_s["output"] = time.perf_counter() - t_out
            wall = time.perf_counter() - t0
            manifest = {
                "citytwin_version": __version__,
                "git_commit": _git_commit(),
                "scenario": scenario.name,
                "seed": scenario.seed,
                "python": platform.python_version(),
                "host": platform.node(),
                "wall_s": round(wall, 3),
                "phase_time_s": {k: round(v, 4) for k, v in model.phase_time_s.items()},
                "files": sorted([p.name for p in tmp.iterdir()] + ["manifest.json"]
                                + (["report.html"] if scenario.output.report else [])),
            }
            log.info("wall %.2f s; phases %s", wall, manifest["phase_time_s"])
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if scenario.output.report:
            try:
                from twin.report import write_report

                write_report(tmp, network=net)
            except Exception as exc:  # a report problem never fails the run
                log.warning("report.html not written: %s", exc)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "run")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_parent:
            try:
                out.parent.rmdir()
            except OSError:
                pass
        raise
    return RunResult(out, kpis, wall, dict(model.phase_time_s), summary)
