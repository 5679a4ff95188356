"""Sweeps: expansion, seeds, determinism across executors, resumability, failures, worker loss."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from twin.cli import app
from twin.sweep import expand_runs, load_experiment, run_seed, run_sweep

BASE = {
    "name": "base", "seed": 1,
    "population": {"residents": 150},
    "modes": {"available": ["car", "walk"]},
    "simulation": {"start_s": "05:00", "end_s": "27:00", "record_interval_s": 600},
    "output": {"events": False, "geopackage": False, "timeseries": False},
    "policies": [{"type": "road_pricing", "kind": "cordon", "bbox": [24.940, 60.166, 24.949, 60.174], "price": 1.0}],
}


def write_exp(tmp_path: Path, **over) -> Path:
    exp = {"name": "t", "scenario": BASE, "axes": [{"grid": {"policies.0.price": [0.0, 5.0]}},
                                                    {"zip": {"modes.asc_walk": [0.0, 0.5],
                                                             "modes.car_cost_per_km": [0.1, 0.3]}}],
           "replicates": 3, "seed": 7}
    exp.update(over)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(exp))
    return p


def test_expansion_ids_and_seeds(tmp_path):
    exp, base = load_experiment(write_exp(tmp_path))
    runs = expand_runs(exp, base)
    assert len(runs) == 2 * 2 * 3
    assert len({r.run_id for r in runs}) == 12 and len({r.seed for r in runs}) == 12
    r = runs[5]
    assert r.scenario.seed == r.seed == run_seed(7, r.params, r.replicate)
    assert r.scenario.policies[0].price == r.params["policies.0.price"]
    # adding a value to an axis changes no existing run's id or seed (seeds do not depend on order)
    exp2, base2 = load_experiment(write_exp(tmp_path, axes=[{"grid": {"policies.0.price": [9.0, 0.0, 5.0]}},
                                                            {"zip": {"modes.asc_walk": [0.0, 0.5],
                                                                     "modes.car_cost_per_km": [0.1, 0.3]}}]))
    by_id = {x.run_id: x.seed for x in expand_runs(exp2, base2)}
    assert all(by_id[x.run_id] == x.seed for x in runs)
    # common random numbers: the seed depends on the replicate only
    exp3, base3 = load_experiment(write_exp(tmp_path, seed_mode="common"))
    runs3 = expand_runs(exp3, base3)
    assert len({x.seed for x in runs3}) == 3


def test_lhs_axis_covers_strata(tmp_path):
    axes = [{"lhs": {"samples": 10, "params": {"modes.car_cost_per_km": [0.0, 1.0]}}}]
    exp, base = load_experiment(write_exp(tmp_path, axes=axes, replicates=1))
    vals = sorted(r.params["modes.car_cost_per_km"] for r in expand_runs(exp, base))
    assert [int(v * 10) for v in vals] == list(range(10))  # one sample per tenth


@pytest.mark.parametrize("over,needle", [
    ({"axes": [{"grid": {"policies.3.price": [1.0]}}]}, "index 3 out of range"),
    ({"axes": [{"grid": {"population.residents": [-1]}}]}, "population.residents"),
    ({"axes": [{"grid": {"x": [1]}, "zip": {"y": [1]}}]}, "exactly one of grid, zip, lhs"),
    ({"replicatez": 2}, "replicatez: unknown key"),
])
def test_bad_experiments(tmp_path, over, needle):
    p = write_exp(tmp_path, **over)
    res = CliRunner().invoke(app, ["sweep", str(p), "-e", "serial", "--out", str(tmp_path / "store")])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "store").exists()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_kpi_table_identical_serial_and_ray_1_and_2_workers(tmp_path):
    exp, base = load_experiment(write_exp(tmp_path))
    runs = expand_runs(exp, base)
    s = run_sweep(exp, runs, tmp_path / "serial", executor="serial")
    assert s.ran == 12 and s.failed == 0
    w1 = run_sweep(exp, runs, tmp_path / "ray1", executor="ray", workers=1)
    w2 = run_sweep(exp, runs, tmp_path / "ray2", executor="ray", workers=2)
    assert w1.ran == w2.ran == 12
    d = {_digest(tmp_path / x / "kpis.parquet") for x in ("serial", "ray1", "ray2")}
    assert len(d) == 1
    t = pq.read_table(tmp_path / "serial" / "kpis.parquet")
    assert t.num_rows == 12 and "param.policies.0.price" in t.column_names
    prov = pq.read_table(tmp_path / "ray2" / "provenance.parquet").to_pydict()
    assert set(prov["executor"]) == {"ray"} and all(w > 0 for w in prov["wall_s"])


def test_interrupted_sweep_resumes_only_missing_runs(tmp_path):
    exp, base = load_experiment(write_exp(tmp_path))
    runs = expand_runs(exp, base)

    def stop_after_5(done, total, r, res):
        if done == 5:
            raise KeyboardInterrupt

    first = run_sweep(exp, runs, tmp_path / "s", executor="serial", progress=stop_after_5)
    assert first.interrupted and first.ran == 5
    assert pq.read_table(tmp_path / "s" / "kpis.parquet").num_rows == 5
    again = run_sweep(exp, runs, tmp_path / "s", executor="serial")
    assert again.skipped == 5 and again.ran == 7 and not again.interrupted
    assert pq.read_table(tmp_path / "s" / "kpis.parquet").num_rows == 12


def test_failed_runs_are_recorded_and_retried(tmp_path):
    p = write_exp(tmp_path, axes=[{"grid": {"map.source": ["helsinki", "missing_map.osm.pbf"]}}], replicates=2)
    exp, base = load_experiment(p)
    runs = expand_runs(exp, base)
    s = run_sweep(exp, runs, tmp_path / "s", executor="serial")
    assert s.ran == 4 and s.failed == 2
    failed = sorted((tmp_path / "s" / "failed").glob("*.json"))
    assert len(failed) == 2
    rec = json.loads(failed[0].read_text())
    assert "missing_map.osm.pbf" in rec["error"] and rec["params"]["map.source"] == "missing_map.osm.pbf"
    again = run_sweep(exp, runs, tmp_path / "s", executor="serial")
    assert again.ran == 0 and again.skipped == 4  # failed runs are not retried by default
    retry = run_sweep(exp, runs, tmp_path / "s", executor="serial", retry_failed=True)
    assert retry.ran == 2 and retry.failed == 2


def _ray_task_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if cmd.startswith("ray::_ray_task"):
                pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to find Ray worker processes")
def test_killing_a_ray_worker_loses_and_duplicates_nothing(tmp_path):
    exp, base = load_experiment(write_exp(tmp_path,
                                          axes=[{"grid": {"policies.0.price": [0.0, 1.0, 2.0, 3.0, 5.0, 8.0]}}],
                                          replicates=2))
    runs = expand_runs(exp, base)
    killed: list[int] = []

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            pids = _ray_task_pids()
            if pids:
                time.sleep(0.2)  # let it get into the run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    s = run_sweep(exp, runs, tmp_path / "s", executor="ray", workers=2)
    th.join(timeout=1)
    assert killed, "no Ray worker was seen running a task"
    assert s.failed == 0 and s.ran == 12
    folders = [p for p in (tmp_path / "s" / "runs").iterdir()]
    assert sorted(p.name for p in folders) == sorted(r.run_id for r in runs)  # each run exactly once
    assert all((p / "manifest.json").exists() for p in folders)
    t = pq.read_table(tmp_path / "s" / "kpis.parquet").to_pydict()
    assert sorted(t["run_id"]) == sorted(r.run_id for r in runs)


def test_sweep_cli_and_report(tmp_path):
    p = write_exp(tmp_path, replicates=1)
    store = tmp_path / "store"
    r = CliRunner().invoke(app, ["sweep", str(p), "-e", "serial", "--out", str(store), "-q"])
    assert r.exit_code == 0, r.output
    assert "4 runs: 4 run now" in r.output.replace("\n", " ")
    r = CliRunner().invoke(app, ["sweep", "report", str(p), "--out", str(store)])
    assert r.exit_code == 0, r.output
    assert "mean ± std" in r.output
    plots = sorted(p.name for p in (store / "plots").glob("*.png"))
    assert "delay_mean_s_vs_policies.0.price.png" in plots and len(plots) == 3 * 4  # 3 parameters x 4 KPIs
