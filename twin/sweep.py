"""Scenario sweeps: one experiment YAML, run serially or on Ray, into one results store.

An experiment names a base scenario, axes over any scenario field (dotted paths such as
``population.residents`` or ``policies.0.price``) and a number of replicates (seeds)::

    name: pricing_sweep
    base: ../scenarios/helsinki_cordon.yaml      # relative to this file
    overrides: {population.residents: 1000}      # applied to every run
    axes:
      - grid: {policies.0.price: [0, 2, 5, 10]}  # cartesian product
      - zip: {modes.asc_bike: [-1, -0.5], modes.asc_walk: [0, 0.2]}   # paired values
      - lhs: {samples: 4, params: {modes.car_parking_cost: [0, 5]}}  # Latin hypercube in [low, high]
    replicates: 3
    seed: 2024

Runs are the product of every axis' points times the replicates. A run's seed (128 bits, so that
even a design of millions of runs shares no seed by the birthday bound) is drawn from
``SeedSequence(seed)`` keyed by a hash of the run's parameters and replicate, so results do not
depend on scheduling, worker count or the order of other runs. In ``kpis.parquet`` the seed is a
decimal string (Parquet has no 128-bit integer).

Experiment files are read by the same strict reader and validator as scenarios
(:mod:`twin._yaml`, :func:`twin.scenario.validation_problems`): unknown keys list the allowed ones,
YAML errors give line and column, and a dotted path that runs into a value or past a list is named.

The store (``--out``, default ``runs/sweeps/NAME``):

``experiment.resolved.yaml``  the experiment and the list of runs
``runs/RUN_ID/``               each run's own run folder (see :mod:`twin.run`), written atomically
``failed/RUN_ID.json``         a failed run's error and traceback (the sweep goes on)
``kpis.parquet``               one row per finished run: run_id, replicate, seed, parameters, KPIs
                               (deterministic: byte-identical whatever the executor)
``provenance.parquet``         per run: wall time, host, process, citytwin version, git commit

Re-running an experiment skips runs whose folder is complete; ``--retry-failed`` runs failed ones again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin._errors import ScenarioError, TwinError
from twin._tables import write_table
from twin._yaml import load_yaml
from twin.scenario import NAME_PATTERN, Scenario, scenario_from_dict, validation_problems

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Experiment", "RunSpec", "load_experiment", "expand_runs", "run_sweep", "collect", "SweepSummary"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class LhsAxis(_Strict):
    """Latin-hypercube (or plain random) samples of continuous parameters in [low, high]."""

    samples: int = Field(ge=1, le=100_000)
    params: dict[str, Annotated[tuple[float, float], BeforeValidator(_as_tuple)]]
    method: Literal["lhs", "random"] = "lhs"

    @model_validator(mode="after")
    def _bounds(self) -> LhsAxis:
        for k, (lo, hi) in self.params.items():
            if not hi >= lo:
                raise ValueError(f"{k}: high ({hi}) must be >= low ({lo})")
        return self


class Axis(_Strict):
    """One axis: exactly one of ``grid``, ``zip`` or ``lhs``."""

    grid: dict[str, list[Any]] | None = Field(None, description="Cartesian product of the value lists.")
    zip: dict[str, list[Any]] | None = Field(None, description="Values taken together, position by position.")
    lhs: LhsAxis | None = Field(None, description="Latin-hypercube / random samples in ranges.")

    @model_validator(mode="after")
    def _one(self) -> Axis:
        given = [k for k in ("grid", "zip", "lhs") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an axis needs exactly one of grid, zip, lhs (got {', '.join(given) or 'none'})")
        for kind in ("grid", "zip"):
            vals = getattr(self, kind)
            if vals is not None:
                if not vals or any(len(v) == 0 for v in vals.values()):
                    raise ValueError(f"{kind}: every parameter needs at least one value")
                if kind == "zip" and len({len(v) for v in vals.values()}) != 1:
                    raise ValueError("zip: all value lists must have the same length")
        return self


class Experiment(_Strict):
    """A sweep: a base scenario, axes over its fields, replicates."""

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    description: str = ""
    base: str | None = Field(None, description="Base scenario file, relative to the experiment file.")
    scenario: dict[str, Any] | None = Field(None, description="Inline base scenario (instead of `base`).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted-path values applied to every run.")
    axes: list[Axis] = Field(default_factory=list)
    replicates: int = Field(1, ge=1, le=10_000, description="Runs per parameter point, with different seeds.")
    seed: int = Field(0, ge=0, le=2**128 - 1,
                      description="Experiment root seed; run seeds derive from it and the run's parameters.")
    seed_mode: Literal["per_run", "common"] = Field(
        "per_run", description="'per_run': seed from parameters + replicate; 'common': from the replicate only "
        "(common random numbers: every parameter point sees the same population)."
    )

    @model_validator(mode="after")
    def _base(self) -> Experiment:
        if (self.base is None) == (self.scenario is None):
            raise ValueError("give exactly one of `base` (a scenario file) or `scenario` (inline)")
        return self

    @field_validator("overrides")
    @classmethod
    def _no_seed(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        for k in ("seed", "name"):
            if k in overrides:
                raise ValueError(f"{k}: set by the experiment for every run (its `seed` and `replicates`, its `name`); "
                                 "remove it from overrides")
        return overrides

    @field_validator("axes")
    @classmethod
    def _no_seed_axis(cls, axes: list[Axis]) -> list[Axis]:
        for i, a in enumerate(axes):
            keys = list(a.grid or {}) + list(a.zip or {}) + list(a.lhs.params if a.lhs else {})
            for k in ("seed", "name"):
                if k in keys:
                    raise ValueError(f"{i}: {k} is set by the experiment for every run; use `replicates` and "
                                     "`seed_mode` to vary seeds")
        return axes


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment."""

    index: int
    run_id: str
    params: dict[str, Any]
    replicate: int
    seed: int
    scenario: Scenario


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    cur: Any = data
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, list):
            try:
                idx = int(part)
            except ValueError:
                raise KeyError(f"{dotted}: '{part}' must be a list index") from None
            if not 0 <= idx < len(cur):
                raise KeyError(f"{dotted}: index {idx} out of range (the list has {len(cur)} entries)")
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        elif isinstance(cur, dict):
            if last:
                cur[part] = value
            else:
                nxt = cur.get(part)
                if nxt is None:
                    if parts[i + 1].isdigit():
                        where = ".".join(parts[: i + 1])
                        raise KeyError(f"{dotted}: {where} is not a list in the base scenario (index {parts[i + 1]} "
                                       "out of range)")
                    nxt = cur[part] = {}
                cur = nxt
        else:
            where = ".".join(parts[:i])
            raise KeyError(f"{dotted}: {where} is a value ({cur!r:.40}), not a section or a list")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _points(axis: Axis, rng: np.random.Generator) -> list[dict[str, Any]]:
    if axis.grid is not None:
        keys = list(axis.grid)
        pts: list[dict[str, Any]] = [{}]
        for k in keys:
            pts = [{**p, k: v} for p in pts for v in axis.grid[k]]
        return pts
    if axis.zip is not None:
        keys = list(axis.zip)
        n = len(axis.zip[keys[0]])
        return [{k: axis.zip[k][i] for k in keys} for i in range(n)]
    assert axis.lhs is not None
    n = axis.lhs.samples
    out: list[dict[str, Any]] = [dict() for _ in range(n)]
    for k, (lo, hi) in axis.lhs.params.items():
        if axis.lhs.method == "lhs":
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        for i in range(n):
            out[i][k] = float(lo + u[i] * (hi - lo))
    return out


def load_experiment(path: str | Path) -> tuple[Experiment, dict[str, Any]]:
    """Read and validate an experiment file; returns it and its base scenario mapping."""
    p = Path(path)
    data = load_yaml(p, what="experiment file")
    if not isinstance(data, dict):
        got = "empty" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(p, [("", f"the top level must be a mapping of keys (name, base, axes, ...), got {got}")])
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(p, validation_problems(exc, Experiment)[:10]) from None
    if exp.base is not None:
        try:
            bpath = (p.parent / exp.base).resolve()
        except (OSError, ValueError, RuntimeError) as exc:
            raise ScenarioError(p, [("base", f"cannot look up {exp.base!r:.80} ({exc})")]) from None
        try:
            base = load_yaml(bpath, what="base scenario file")
        except ScenarioError as exc:
            msgs = "; ".join(m for _, m in exc.problems)
            raise ScenarioError(p, [("base", f"{exp.base!r:.100} (read relative to {p.parent}): {msgs}")]) from None
        if base is None:
            base = {}
        if not isinstance(base, dict):
            raise ScenarioError(p, [("base", f"{exp.base}: the top level must be a mapping of scenario keys")])
        try:  # a bad base is reported against the base file, not against every run
            scenario_from_dict(base, bpath, check_memory=False)
        except ScenarioError as exc:
            raise ScenarioError(bpath, [(f, f"{m} (the base scenario of {p})") for f, m in exc.problems]) from None
        src = base.get("map", {}).get("source") if isinstance(base.get("map"), dict) else None
        try:
            if isinstance(src, str) and src and (bpath.parent / src).is_file():  # map files next to the base
                base["map"]["source"] = str((bpath.parent / src).resolve())
        except (OSError, ValueError):
            pass
    else:
        base = dict(exp.scenario or {})
    return exp, base


def run_seed(root: int, params: dict[str, Any], replicate: int, mode: str = "per_run") -> int:
    """The seed of a run: ``SeedSequence(root)`` keyed by the parameters' hash and the replicate."""
    key = [replicate]
    if mode == "per_run":
        h = hashlib.sha256(_canonical(params).encode()).digest()
        key = [int.from_bytes(h[i:i + 4], "little") for i in range(0, 16, 4)] + [replicate]
    ss = np.random.SeedSequence(root, spawn_key=tuple(key))
    words = ss.generate_state(4, dtype=np.uint32)  # 128 bits
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


def expand_runs(exp: Experiment, base: dict[str, Any], path: str | Path | None = None) -> list[RunSpec]:
    """Every run of the experiment, validated (all problems reported before anything runs)."""
    rng = np.random.default_rng(np.random.SeedSequence(exp.seed, spawn_key=(2**31 - 1,)))
    points: list[dict[str, Any]] = [{}]
    for axis in exp.axes:
        points = [{**p, **q} for p in points for q in _points(axis, rng)]
    runs: list[RunSpec] = []
    problems: list[tuple[str, str]] = []
    for params in points:
        for rep in range(exp.replicates):
            data = copy.deepcopy(base)
            try:
                for k, v in {**exp.overrides, **params}.items():
                    _set_dotted(data, k, v)
            except KeyError as exc:
                msg = str(exc).strip("'\"")
                if ("axes", msg) not in problems:
                    problems.append(("axes", msg))
                continue
            seed = run_seed(exp.seed, params, rep, exp.seed_mode)
            data["seed"] = seed
            data["name"] = f"{exp.name}"
            try:
                sc = scenario_from_dict(data)
            except ScenarioError as exc:
                for f, m in exc.problems:
                    if all(m != q[1] for q in problems):  # each distinct problem once, with its first run
                        problems.append((f"{f or 'scenario'} (run with {_canonical(params)})", m))
                continue
            rid = hashlib.sha256(_canonical({"params": params, "replicate": rep}).encode()).hexdigest()[:12]
            runs.append(RunSpec(len(runs), rid, params, rep, seed, sc))
    if problems:
        raise ScenarioError(path, problems[:10])
    return runs


# --------------------------------------------------------------------------- execution

def _run_one(spec_dict: dict[str, Any], out_dir: str, networks: dict[str, Any] | None) -> dict[str, Any]:
    """Run one scenario into ``out_dir`` (atomic). Idempotent: a complete folder is not rerun."""
    from twin.run import run_scenario

    out = Path(out_dir)
    if (out / "manifest.json").exists():
        return {"status": "ok", "skipped": True}
    sc = scenario_from_dict(spec_dict)
    nets = networks or {}
    t0 = time.perf_counter()
    try:
        run_scenario(sc, out, network=nets.get("drive"), walk_network=nets.get("walk"),
                     bike_network=nets.get("bike"), overwrite=out.exists())
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    return {"status": "ok", "wall_s": time.perf_counter() - t0, "host": platform.node(), "pid": os.getpid()}


def _map_key(sc: Scenario) -> str:
    return _canonical([sc.map.source, sc.map.network_type, sc.map.min_link_length_m, sorted(sc.modes.available)])


def _load_networks(sc: Scenario) -> dict[str, Any] | None:
    """The networks a run needs, loaded once per distinct map (None if the map cannot be loaded:
    each run then loads, fails and is recorded with the error)."""
    from twin.model import load_network

    try:
        nets = {"drive": load_network(sc)}
        for mode in ("walk", "bike"):
            if mode in sc.modes.available:
                nets[mode] = load_network(sc, mode)
    except TwinError:
        return None
    return nets


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did."""

    out_dir: Path
    total: int
    ran: int
    skipped: int
    failed: int
    interrupted: bool
    wall_s: float


def _pending(runs: list[RunSpec], out: Path, retry_failed: bool) -> tuple[list[RunSpec], int]:
    todo, skipped = [], 0
    for r in runs:
        done = (out / "runs" / r.run_id / "manifest.json").exists()
        failed = (out / "failed" / f"{r.run_id}.json").exists()
        if done or (failed and not retry_failed):
            skipped += 1
        else:
            todo.append(r)
    return todo, skipped


def _record(out: Path, r: RunSpec, result: dict[str, Any], executor: str) -> None:
    failed_file = out / "failed" / f"{r.run_id}.json"
    if result["status"] == "failed":
        failed_file.parent.mkdir(parents=True, exist_ok=True)
        failed_file.write_text(json.dumps({"run_id": r.run_id, "params": r.params, "replicate": r.replicate,
                                           "seed": r.seed, "error": result["error"],
                                           "traceback": result["traceback"]}, indent=2, default=str))
        return
    failed_file.unlink(missing_ok=True)
    prov = out / "runs" / r.run_id / "provenance.json"
    if not result.get("skipped") and (out / "runs" / r.run_id).exists():
        prov.write_text(json.dumps({"executor": executor, "host": result.get("host"), "pid": result.get("pid"),
                                    "wall_s": result.get("wall_s")}, indent=2))


def run_sweep(
    exp: Experiment,
    runs: list[RunSpec],
    out_dir: str | Path,
    *,
    executor: Literal["serial", "ray"] = "ray",
    address: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: Callable[[int, int, RunSpec, dict[str, Any]], None] | None = None,
) -> SweepSummary:
    """Run every pending run of ``runs`` into the store ``out_dir`` and rebuild its tables.

    Parameters
    ----------
    executor
        ``"serial"`` (in this process, for debugging) or ``"ray"`` (local Ray started with
        ``workers`` CPUs, or the cluster at ``address``: ``"auto"`` or ``HOST:PORT``).
    retry_failed
        Run again the runs recorded as failed.
    progress
        ``f(done, total, run, result)`` after each finished run.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for stale in (out / "runs").glob(".*.partial-*"):  # left by a killed process
        shutil.rmtree(stale, ignore_errors=True)
    (out / "experiment.resolved.yaml").write_text(yaml.safe_dump({
        "experiment": exp.model_dump(mode="json"),
        "runs": [{"run_id": r.run_id, "replicate": r.replicate, "seed": r.seed, "params": r.params} for r in runs],
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    todo, skipped = _pending(runs, out, retry_failed)
    n_failed = 0
    interrupted = False
    done = 0
    if todo:
        nets: dict[str, Any] = {}
        for r in todo:
            k = _map_key(r.scenario)
            if k not in nets:
                nets[k] = _load_networks(r.scenario)
        if executor == "serial":
            try:
                for r in todo:
                    res = _run_one(r.scenario.model_dump(mode="json"), str(out / "runs" / r.run_id),
                                   nets[_map_key(r.scenario)])
                    _record(out, r, res, "serial")
                    n_failed += res["status"] == "failed"
                    done += 1
                    if progress:
                        progress(done, len(todo), r, res)
            except KeyboardInterrupt:
                interrupted = True
        elif executor == "ray":
            interrupted, n_failed, done = _run_ray(todo, out, nets, address, workers, progress)
        else:
            raise TwinError(f"--executor must be serial or ray, got {executor!r}")
    collect(runs, out)
    return SweepSummary(out, len(runs), done, skipped, n_failed, interrupted, time.perf_counter() - t0)


def _ray_task(spec_dict: dict[str, Any], out_dir: str, nets: dict[str, Any]) -> dict[str, Any]:
    return _run_one(spec_dict, out_dir, nets)


def _run_ray(todo: list[RunSpec], out: Path, nets: dict[str, Any], address: str | None, workers: int | None,
             progress: Callable[[int, int, RunSpec, dict[str, Any]], None] | None) -> tuple[bool, int, int]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True,
                              "runtime_env": {"env_vars": {"NUMBA_NUM_THREADS": "1"}}}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), **kw)
    try:
        # each distinct map's networks go to the object store once, shared by all workers
        refs = {k: ray.put(v) for k, v in nets.items()}
        task = ray.remote(num_cpus=1, max_retries=5)(_ray_task)
        pending = {task.remote(r.scenario.model_dump(mode="json"), str(out / "runs" / r.run_id),
                               refs[_map_key(r.scenario)]): r for r in todo}
        n_failed = done = 0
        interrupted = False
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    r = pending.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the task died more often than it may be retried
                        res = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": ""}
                    _record(out, r, res, "ray")
                    n_failed += res["status"] == "failed"
                    done += 1
                    if progress:
                        progress(done, len(todo), r, res)
        except KeyboardInterrupt:
            interrupted = True
            for ref in pending:
                ray.cancel(ref, force=True)
        return interrupted, n_failed, done
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------------------ tables

def _flat(value: Any) -> Any:
    return _canonical(value) if isinstance(value, list | dict) else value


def collect(runs: list[RunSpec], out_dir: str | Path) -> tuple[int, int]:
    """Rebuild ``kpis.parquet`` (deterministic) and ``provenance.parquet`` from the run folders."""
    out = Path(out_dir)
    rows, prov = [], []
    param_keys: list[str] = []
    for r in runs:
        for k in r.params:
            if k not in param_keys:
                param_keys.append(k)
    for r in runs:
        folder = out / "runs" / r.run_id
        if not (folder / "manifest.json").exists():
            continue
        try:
            kpis = json.loads((folder / "kpis.json").read_text(encoding="utf-8"))
            man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(kpis, dict) or not isinstance(man, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError):  # a damaged run folder counts as not done (rerun it with --retry-failed)
            continue
        row = {"run_id": r.run_id, "run_index": r.index, "replicate": r.replicate, "seed": str(r.seed)}
        row.update({f"param.{k}": _flat(r.params.get(k)) for k in param_keys})
        row.update(kpis)
        rows.append(row)
        pf = folder / "provenance.json"
        try:
            p = json.loads(pf.read_text(encoding="utf-8")) if pf.exists() else {}
        except (OSError, ValueError):
            p = {}
        prov.append({"run_id": r.run_id, "executor": p.get("executor"), "host": p.get("host") or man.get("host"),
                     "pid": p.get("pid"), "wall_s": man.get("wall_s"), "citytwin_version": man.get("citytwin_version"),
                     "git_commit": man.get("git_commit")})
    _write_rows(rows, out / "kpis.parquet")
    _write_rows(prov, out / "provenance.parquet")
    return len(rows), len(runs)


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys:
                keys.append(k)
    cols: dict[str, Any] = {}
    for k in keys:
        vals = [row.get(k) for row in rows]
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {int} and None not in vals:
            cols[k] = np.array(vals, dtype=np.int64)
        elif kinds <= {int, float}:
            cols[k] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        elif kinds <= {bool}:
            cols[k] = np.array([bool(v) for v in vals])
        else:
            cols[k] = np.array(["" if v is None else str(v) for v in vals], dtype=object)
    if not rows:
        cols = {"run_id": np.array([], dtype=object)}
    write_table(cols, path)


_BUILTIN_SHARES = ("mode_share_car", "mode_share_walk", "mode_share_bike")


def _with_plugin_shares(kpis: tuple[str, ...], columns: Iterable[str]) -> tuple[str, ...]:
    """``kpis`` plus the shares of plug-in modes present in the table (e.g. ``mode_share_taxi``)."""
    extra = [c for c in columns if c.startswith("mode_share_") and c not in _BUILTIN_SHARES and c not in kpis]
    return tuple(kpis) + tuple(extra)


def summarize(out_dir: str | Path, kpis: tuple[str, ...] = ("travel_time_mean_s", "delay_mean_s", "mode_share_car",
                                                            "vkt_km", "completion_rate")) -> pd.DataFrame:
    """KPIs per parameter point (mean and std over replicates) as a pandas DataFrame; the shares of
    plug-in modes in the runs are added to ``kpis``."""
    import pandas as pd

    df = pd.read_parquet(Path(out_dir) / "kpis.parquet")
    kpis = _with_plugin_shares(kpis, df.columns)
    params = [c for c in df.columns if c.startswith("param.")]
    present = [k for k in kpis if k in df.columns]
    if not params:
        return df[present].agg(["mean", "std", "count"]).T
    g = df.groupby(params, dropna=False)[present]
    return g.agg(["mean", "std", "count"])


def plot_report(out_dir: str | Path, kpis: tuple[str, ...] = ("travel_time_mean_s", "delay_mean_s", "mode_share_car",
                                                               "vkt_km")) -> list[Path]:
    """One PNG per (KPI, parameter): the KPI against the parameter, replicates as points, means as a line
    (plug-in modes' shares included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    df = pd.read_parquet(out / "kpis.parquet")
    kpis = _with_plugin_shares(kpis, df.columns)
    params = [c for c in df.columns if c.startswith("param.")]
    files = []
    (out / "plots").mkdir(exist_ok=True)
    for p in params:
        x = pd.to_numeric(df[p], errors="coerce")
        if x.isna().all():
            continue
        for k in kpis:
            if k not in df.columns:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.scatter(x, df[k], s=14, alpha=0.6, label="runs")
            m = df.assign(_x=x).groupby("_x")[k].mean()
            ax.plot(m.index, m.to_numpy(), "-o", color="C3", label="mean")
            ax.set_xlabel(p.removeprefix("param."))
            ax.set_ylabel(k)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            f = out / "plots" / f"{k}_vs_{p.removeprefix('param.')}.png"
            fig.savefig(f, dpi=110)
            plt.close(fig)
            files.append(f)
    return files


def check_store(out_dir: str | Path) -> None:
    """Refuse a damaged results store (``kpis.parquet`` that does not read) with one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    for name in ("kpis.parquet", "provenance.parquet"):
        p = out / name
        if not p.exists():
            continue
        try:
            if not p.is_file():
                raise OSError("not a regular file")
            pq.ParquetFile(p)
        except (OSError, pa.ArrowException) as exc:
            raise ScenarioError(p, [("", (f"not a readable Parquet table ({str(exc).splitlines()[0][:80]}); damaged "
                                          "sweep store (delete it and run the sweep again to rebuild it)"))]) from None


def count_failed(runs: list[RunSpec], out_dir: str | Path) -> int:
    """How many of ``runs`` are recorded as failed in the store ``out_dir``."""
    out = Path(out_dir)
    return sum((out / "failed" / f"{r.run_id}.json").exists() for r in runs)
