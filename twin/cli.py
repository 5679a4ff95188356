"""The ``twin`` command line.

``twin run SCENARIO``, ``twin validate FILE``, ``twin schema``, ``twin new FILE --map NAME``,
``twin compare RUN_A RUN_B``, ``twin sweep [report] EXPERIMENT``, ``twin assign NET TRIPS``,
``twin maps list|info``.

Every failure is one line on stderr, never a traceback: a user error (bad scenario or experiment,
missing or corrupt map, damaged run folder, an output that cannot be written, CLI misuse such as an
unknown flag or ``--seed abc``) prints ``error: ...`` naming the file and the field and exits with
code 2; a sweep with failed runs exits with code 1 after writing its store; an interrupt exits with
130; a bug in citytwin prints ``error: internal error ...`` and exits with code 1 (``TWIN_DEBUG=1``
shows the traceback). User text (file names, values) is printed literally, never as markup.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict, cast

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from twin import __version__
from twin._errors import InputError, TwinError

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.progress import TaskID

    from twin.network.road_network import RoadNetwork
    from twin.sweep import RunSpec

try:  # typer >= 0.20 vendors its own copy of Click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]  # the same module, before typer vendored it

app = typer.Typer(
    name="twin",
    rich_markup_mode=None,  # plain help: flags shown as flags (rich help prints "--overwrite <bool>")
    help="citytwin: an agent-based digital twin of a city on real OpenStreetMap road networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
maps_app = typer.Typer(help="List and inspect maps.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(maps_app, name="maps")

# markup off: file names and values such as "[/]" or "[link=...]" are printed as they are
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_MESSAGE = 2000


def _one_line(text: str) -> str:
    """A message as one printable line: newlines and control characters (terminal escapes) shown
    escaped, capped in length."""
    text = " ".join(str(text).split("\n"))
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _say_error(message: str) -> None:
    err_console.print(Text("error: ", style="bold red") + Text(_one_line(message)), soft_wrap=True)


def _fail(exc: BaseException, code: int = 2) -> None:
    _say_error(str(exc))
    raise typer.Exit(code=code)


def _os_message(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    reason = "the file name is too long" if exc.errno == errno.ENAMETOOLONG else (
        os.strerror(exc.errno) if exc.errno else str(exc))
    return f"{name}: {reason}" if name else reason


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure of a command into the one-line form (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, _cx.ClickException, KeyboardInterrupt):
            raise
        except TwinError as exc:
            _fail(exc)
        except OSError as exc:
            _fail(TwinError(_os_message(exc)))
        except MemoryError:
            _fail(TwinError("out of memory; simulate a smaller population or a shorter day"))
        except Exception as exc:
            if os.environ.get("TWIN_DEBUG"):
                raise
            _fail(TwinError(f"internal error: {type(exc).__name__}: {exc} (a bug in citytwin; "
                            "TWIN_DEBUG=1 shows the traceback)"), code=1)

    return wrapper


def _version(value: bool) -> None:
    if value:
        console.print(f"citytwin {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """citytwin command line."""


def _fmt(v: object, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def _min(v: float | None) -> str:
    return "-" if v is None else f"{v / 60:,.1f} min"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


KPI_ROWS: list[tuple[str, str, Any]] = [
    ("residents", "residents", _fmt),
    ("trips completed", "trips_completed", _fmt),
    ("trips aborted (stuck)", "trips_aborted", _fmt),
    ("mode share car", "mode_share_car", _pct),
    ("mode share walk", "mode_share_walk", _pct),
    ("mode share bike", "mode_share_bike", _pct),
    ("mean travel time", "travel_time_mean_s", _min),
    ("p95 travel time", "travel_time_p95_s", _min),
    ("mean car travel time", "car_travel_time_mean_s", _min),
    ("mean car delay", "delay_mean_s", _min),
    ("total car delay (veh·h)", "delay_total_veh_h", _fmt),
    ("vehicle km travelled", "vkt_km", _fmt),
    ("mean car speed (km/h)", "mean_speed_kmh", _fmt),
    ("tolls paid", "tolls_paid", _fmt),
    ("stuck vehicles moved on", "forced_moves", _fmt),
    ("iterations", "iterations", _fmt),
    ("relative gap (last day)", "relative_gap", lambda v: "-" if v is None else f"{v:.2e}"),
]


#: KPIs reported for the full population when the residents are a sample (population.sample_share)
_EXTENSIVE = ("vkt_km", "vht_h", "delay_total_veh_h", "tolls_paid")


def _kpi_table(kpis: dict[str, Any], title: str) -> Table:
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("KPI")
    t.add_column("value", justify="right")
    listed = {key for _, key, _ in KPI_ROWS}
    sampled = isinstance(kpis.get("sample_share"), float | int) and kpis["sample_share"] < 1
    for label, key, fmt in KPI_ROWS:
        if key in kpis:
            if sampled and key in _EXTENSIVE:
                label += " (full population)"
            t.add_row(label, fmt(kpis[key]))
        if key == "residents" and sampled and "population_represented" in kpis:
            t.add_row("  a sample of", f"{kpis['population_represented']:,} ({100 * kpis['sample_share']:g} %)")
        if key == "mode_share_bike":  # then the plug-in modes' shares
            for k, v in kpis.items():
                if k.startswith("mode_share_") and k not in listed:
                    t.add_row(f"mode share {k[len('mode_share_'):]}", _pct(v))
    return t


@app.command()
@_guard
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default runs/NAME).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the scenario's seed.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a scenario: simulate the day and write a run folder with KPIs, trips and link results."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from twin.preflight import check_runnable
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    try:
        if seed is not None and not 0 <= seed < 2**128:
            raise TwinError(f"twin run: --seed: must be in 0 .. 2^128-1, got {seed}")
        sc = load_scenario(scenario, overrides={"seed": seed} if seed is not None else None)
        if not quiet and not _kernels_compiled():
            err_console.print(Text("first run: Numba compiles the simulation kernels once (15-40 s on a 2-core "
                                   "machine; later runs reuse them)"))
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(), console=err_console, disable=quiet, transient=False,
        )
        with progress:
            t_map = progress.add_task(f"map {sc.map.source}", total=None, info="")
            from twin.run import check_target

            check_target(sc, out, overwrite=overwrite)  # before any work: an existing or unwritable target
            net = check_runnable(sc, scenario)
            tasks: dict[str, TaskID] = {}

            def on_network(net: RoadNetwork) -> None:
                progress.update(t_map, total=1, completed=1, info=f"{net.n_nodes:,} nodes, {net.n_links:,} links")
                tasks["route"] = progress.add_task("routing", total=1, info="")

            def route_progress(done: int, total: int) -> None:
                progress.update(tasks["route"], total=total, completed=done, info=f"{done:,}/{total:,} trips")
                if done == total and "sim" not in tasks:
                    tasks["sim"] = progress.add_task("simulation", total=sc.simulation.end_s - sc.simulation.start_s,
                                                     info="")

            n_days = sc.replanning.iterations
            span = sc.simulation.end_s - sc.simulation.start_s

            def sim_progress(t_s: float, end_s: float, day: int = 0) -> None:
                if "sim" not in tasks:
                    tasks["sim"] = progress.add_task("simulation", total=span * n_days, info="")
                h, m = divmod(int(t_s) // 60, 60)
                info = f"day {day + 1}/{n_days} t={h:02d}:{m:02d}" if n_days > 1 else f"t={h:02d}:{m:02d}"
                progress.update(tasks["sim"], completed=day * span + t_s - sc.simulation.start_s, info=info)

            res = run_scenario(sc, out, overwrite=overwrite, network=net, on_network=on_network,
                               route_progress=route_progress, sim_progress=sim_progress,
                               base_dir=scenario.resolve().parent)
            if "sim" in tasks:
                progress.update(tasks["sim"], completed=span * n_days)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(_kpi_table(res.kpis, f"{sc.name} (seed {sc.seed}) on {res.network_summary.get('source', '')}"))
    console.print(f"wall time {res.wall_s:.1f} s; run folder: {res.out_dir}")
    if (res.out_dir / "report.html").exists():
        console.print(f"report: open {res.out_dir / 'report.html'} in a browser")


@app.command()
@_guard
def calibrate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (targets in modes.target_shares).")],
    target: Annotated[list[str] | None, typer.Option("--target", "-t", help="MODE=SHARE, e.g. car=0.3 "
                                                        "(repeat; overrides modes.target_shares).")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Stop when every share is this close "
                                             "(0.01 = 1 point).")] = 0.01,
    max_iterations: Annotated[int, typer.Option("--max-iterations", help="Simulations at most.")] = 15,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder of the calibrated scenario "
                                                "(default runs/NAME-calibrated).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Fit the mode constants to target mode shares; write a run of the calibrated scenario with the
    fitted constants (calibrated_modes.yaml) and the iterations (calibration.parquet)."""
    from twin._errors import ScenarioError
    from twin.calibrate import asc_snippet, write_calibration
    from twin.calibrate import calibrate as fit
    from twin.preflight import check_runnable
    from twin.run import check_target, run_scenario
    from twin.scenario import load_scenario

    sc = load_scenario(scenario)
    targets = None
    if target:
        targets = {}
        for item in target:
            mode, sep, val = item.partition("=")
            try:
                targets[mode.strip()] = float(val)
            except ValueError:
                sep = ""
            if not sep:
                raise TwinError(f"twin calibrate: --target: expected MODE=SHARE such as car=0.3, got {item!r}")
    if not 0 < tolerance < 1:
        raise TwinError(f"twin calibrate: --tolerance: must be in (0, 1), got {tolerance}")
    if max_iterations < 1:
        raise TwinError(f"twin calibrate: --max-iterations: must be >= 1, got {max_iterations}")
    target_dir = out or Path("runs") / f"{sc.name}-calibrated"
    check_target(sc, target_dir, overwrite=overwrite)
    net = check_runnable(sc, scenario)

    def show(rec: dict[str, Any]) -> None:
        if not quiet:
            shares = ", ".join(f"{k[6:]} {100 * v:.1f}%" for k, v in rec.items() if k.startswith("share_"))
            err_console.print(Text(f"iteration {rec['iteration']}: {shares} (largest error "
                                   f"{100 * rec['max_abs_error']:.2f} points)"))

    try:
        res = fit(sc, targets, tolerance=tolerance, max_iterations=max_iterations, network=net, progress=show)
    except ScenarioError as exc:
        raise ScenarioError(scenario, exc.problems) from None
    assert res.scenario is not None  # calibrate() always returns the calibrated scenario
    run = run_scenario(res.scenario, target_dir, overwrite=overwrite, network=net, base_dir=scenario.resolve().parent)
    write_calibration(res, run.out_dir)
    state = "converged" if res.converged else f"NOT converged after {len(res.history)} iterations"
    console.print(f"{state}: " + ", ".join(f"{m} {100 * res.shares[m]:.1f}% (target {100 * t:.1f}%)"
                                          for m, t in res.targets.items()))
    console.print(asc_snippet(res.asc).rstrip())
    console.print(f"run folder: {run.out_dir} (calibrated_modes.yaml, calibration.parquet)")
    if not res.converged:
        raise typer.Exit(code=1)


@app.command()
@_guard
def validate(file: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check that a scenario will run: schema and values, the map (loaded as `twin run` loads it:
    file, catalogue, cache, offline availability) and the policies on it, without simulating."""
    from twin.preflight import check_runnable
    from twin.scenario import load_scenario

    try:
        sc = load_scenario(file)
        with err_console.status(Text(f"loading {sc.map.source}")):
            net = check_runnable(sc, file)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(f"{file}: ok (scenario {sc.name!r}, map {sc.map.source}: {net.n_links:,} links; "
                  f"{sc.population.residents:,} residents; {len(sc.policies)} policies)", soft_wrap=True)


@app.command()
@_guard
def schema(out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None) -> None:
    """Print the JSON Schema of scenario files (for editor completion and validation)."""
    from twin._fs import write_output
    from twin.scenario import scenario_schema

    text = json.dumps(scenario_schema(), indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        write_output(out, text + "\n", what="schema")
        console.print(f"wrote {out}")


@app.command()
@_guard
def new(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file to create.")],
    map_source: Annotated[str, typer.Option("--map", "-m", help="Catalogue name (twin maps list), map file, "
                                            "place:NAME or bbox:W,S,E,N.")] = "helsinki",
    name: Annotated[str | None, typer.Option("--name", help="Scenario name (default: from the file name).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter scenario: the most useful keys with their defaults."""
    from twin.starter import write_starter

    try:
        path = write_starter(scenario, name, map_source, overwrite=force)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(f"wrote {path} (map {map_source}); next: twin validate {path}, then twin run {path}",
                  soft_wrap=True)


class _KpiRow(TypedDict):
    kpi: str
    a: float
    b: float
    diff: float
    rel: float | None


@app.command()
@_guard
def compare(
    run_a: Annotated[Path, typer.Argument(help="Baseline run folder.")],
    run_b: Annotated[Path, typer.Argument(help="Policy run folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the comparison report (HTML) here.")] = None,
) -> None:
    """Compare the KPIs of two runs, such as a policy run against its baseline."""
    try:
        ka, kb = (_read_kpis(p) for p in (run_a, run_b))
        if html is not None:
            from twin.report import write_compare_report

            write_compare_report(run_a, run_b, html)
    except TwinError as exc:
        _fail(exc)
        return
    rows: list[_KpiRow] = []
    # keys of both runs; a mode used in only one of them (a plug-in mode) has share 0 in the other
    keys = list(ka)
    extra = [k for k in kb if k not in ka]
    share_at = max((i for i, k in enumerate(keys) if k.startswith("mode_share_")), default=len(keys) - 1)
    keys[share_at + 1:share_at + 1] = [k for k in extra if k.startswith("mode_share_")]
    keys += [k for k in extra if not k.startswith("mode_share_")]
    for key in keys:
        a, b = ka.get(key), kb.get(key)
        if key.startswith("mode_share_"):
            a = 0.0 if a is None else a
            b = 0.0 if b is None else b
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            diff = b - a
            rel = diff / a if a else None
            rows.append({"kpi": key, "a": a, "b": b, "diff": diff, "rel": rel})
    if as_json:
        sys.stdout.write(json.dumps({"a": str(run_a), "b": str(run_b), "kpis": rows}, indent=2) + "\n")
        return
    # the HTML report's names and units (twin.report's KPI registry), and its colours: a change is
    # green when better, red when worse, by the direction each KPI declares (none: not coloured)
    from twin.report.core import format_kpi, kpi_label, kpi_verdict

    def _named(run: Path) -> str:
        try:
            name = json.loads((run / "manifest.json").read_text(encoding="utf-8")).get("scenario")
        except (OSError, ValueError, AttributeError):
            name = None
        return f"{run} ({name})" if isinstance(name, str) and name and name != run.name else str(run)

    t = Table(title=f"A (baseline): {_named(run_a)}\nB: {_named(run_b)}", header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (("KPI", "left"), ("A (baseline)", "right"), ("B", "right"),
                                                      ("B − A", "right"), ("change", "right"))
    for c, j in columns:
        t.add_column(c, justify=j)
    style = {"better": "green", "worse": "red", "neutral": ""}
    for r in rows:
        st = style[kpi_verdict(r["kpi"], r["diff"])]
        t.add_row(kpi_label(r["kpi"]), format_kpi(r["kpi"], r["a"]), format_kpi(r["kpi"], r["b"]),
                  Text(format_kpi(r["kpi"], r["diff"], diff=True), style=st),
                  Text("-" if r["rel"] is None else f"{100 * r['rel']:+.1f} %", style=st))
    console.print(t)
    console.print("B − A: green better, red worse (by each KPI's direction); mode shares have none.")
    if html is not None:
        console.print(f"comparison report: {html}")


@app.command()
@_guard
def sweep(
    experiment: Annotated[str, typer.Argument(help="Experiment YAML file (or 'report' followed by the file).")],
    report_target: Annotated[Path | None, typer.Argument(help="With 'report': the experiment file.",
                                                            show_default=False)] = None,
    executor: Annotated[str, typer.Option("--executor", "-e", help="ray (default) or serial.")] = "ray",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster: auto or HOST:PORT.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Local Ray workers (default: cores).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Store folder (default runs/sweeps/NAME).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed runs again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a sweep (scenario x parameters x seeds) on Ray or serially; `twin sweep report FILE` summarizes it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin import sweep as sw

    is_report = experiment == "report"
    path = report_target if is_report else Path(experiment)
    try:
        if path is None:
            raise TwinError("twin sweep report: missing argument EXPERIMENT (twin sweep report EXPERIMENT.yaml)")
        if not is_report and report_target is not None:
            raise TwinError(f"twin sweep: unexpected argument {report_target}; use twin sweep EXPERIMENT or "
                            "twin sweep report EXPERIMENT")
        if executor not in ("ray", "serial"):
            raise TwinError(f"twin sweep: --executor: must be ray or serial, got {executor!r}")
        if workers is not None and workers < 1:
            raise TwinError(f"twin sweep: --workers: must be >= 1, got {workers}")
        exp, base = sw.load_experiment(path)
        runs = sw.expand_runs(exp, base, path)
        store = out or Path("runs") / "sweeps" / exp.name
        if is_report:
            if not (store / "kpis.parquet").exists():
                raise TwinError(f"{store}: no results yet; run: twin sweep {path}")
            sw.check_store(store)
            n_done, _ = sw.collect(runs, store)
            if n_done == 0:
                raise TwinError(f"{store}: no finished runs yet; run: twin sweep {path}")
            table = sw.summarize(store)
            t = Table(title=f"{exp.name}: mean ± std over replicates ({store})", header_style="bold")
            names = cast("list[str]", table.index.names if table.index.names != [None] else [])  # param.* columns
            idx_names = [n.removeprefix("param.") for n in names]
            for n in idx_names:
                t.add_column(n)
            kpi_names = list(dict.fromkeys(c[0] for c in table.columns))
            for k in kpi_names:
                t.add_column(k, justify="right")
            t.add_column("runs", justify="right")
            for idx, row in table.iterrows():
                keys = idx if isinstance(idx, tuple) else (idx,)
                cells = [str(x) for x in keys][: len(idx_names)]
                cells += [f"{row[(k, 'mean')]:.4g} ± {0 if row[(k, 'std')] != row[(k, 'std')] else row[(k, 'std')]:.2g}"
                          for k in kpi_names]
                cells.append(str(int(row[(kpi_names[0], "count")])) if kpi_names else "")
                t.add_row(*cells)
            console.print(t)
            files = sw.plot_report(store)
            console.print(f"{len(files)} plots in {store / 'plots'}")
            return
        progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn(),
                            console=err_console, disable=quiet)
        with progress:
            task = progress.add_task(f"sweep {exp.name} ({executor})", total=None, info="")

            def on_done(done: int, total: int, r: RunSpec, res: dict[str, Any]) -> None:
                progress.update(task, total=total, completed=done,
                                info=f"{'FAILED ' if res['status'] == 'failed' else ''}{r.run_id}")

            # run_sweep refuses an executor other than serial or ray
            summary = sw.run_sweep(exp, runs, store, executor=cast(Literal["serial", "ray"], executor),
                                   address=address, workers=workers,
                                   retry_failed=retry_failed, progress=on_done)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(f"{summary.total} runs: {summary.ran} run now, {summary.skipped} already done or failed before, "
                  f"{summary.failed} failed{' (interrupted)' if summary.interrupted else ''}; "
                  f"{summary.wall_s:.1f} s; store: {summary.out_dir}")
    if summary.interrupted:
        raise typer.Exit(code=130)
    n_failed = sw.count_failed(runs, summary.out_dir)
    if n_failed:
        _fail(TwinError(f"{path}: {n_failed} of {summary.total} runs failed; their errors are in "
                        f"{summary.out_dir / 'failed'} (rerun them with --retry-failed)"), code=1)


@app.command()
@_guard
def assign(
    net_file: Annotated[Path, typer.Argument(help="TNTP network file (*_net.tntp).")],
    trips_file: Annotated[Path, typer.Argument(help="TNTP trips file (*_trips.tntp).")],
    method: Annotated[str, typer.Option("--method", help="bfw (bi-conjugate Frank-Wolfe), cfw or fw.")] = "bfw",
    gap: Annotated[float, typer.Option("--gap", help="Target relative gap.")] = 1e-4,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Iteration cap.")] = 1000,
    demand_factor: Annotated[float, typer.Option("--demand-factor", help="Scale the OD matrix (what-if).")] = 1.0,
    toll_factor: Annotated[float | None, typer.Option(
        "--toll-factor", help="Generalized cost per unit of toll (default: the file's <TOLL FACTOR>, else 0).")] = None,
    distance_factor: Annotated[float | None, typer.Option(
        "--distance-factor", help="Generalized cost per unit of length (default: the file's <DISTANCE FACTOR>, "
        "else 0).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write link flows to this Parquet file.")] = None,
) -> None:
    """Static user equilibrium of a TNTP network (BPR time + toll and distance factors, the TNTP
    generalized cost): a planner's quick what-if."""
    from twin.assignment import METHODS, read_tntp_net, read_tntp_trips, solve_ue

    try:
        if method not in METHODS:
            raise TwinError(f"twin assign: --method: must be one of {', '.join(METHODS)}, got {method!r}")
        if not 0 < gap < float("inf"):
            raise TwinError(f"twin assign: --gap: must be a finite number > 0, got {gap}")
        if max_iter < 1:
            raise TwinError(f"twin assign: --max-iter: must be >= 1, got {max_iter}")
        if not 0 <= demand_factor < float("inf"):
            raise TwinError(f"twin assign: --demand-factor: must be a finite number >= 0, got {demand_factor}")
        for flag, v in (("--toll-factor", toll_factor), ("--distance-factor", distance_factor)):
            if v is not None and not 0 <= v < float("inf"):
                raise TwinError(f"twin assign: {flag}: must be a finite number >= 0, got {v}")
        for f in (net_file, trips_file):
            _check_input_file(f, "TNTP file")
        if out is not None:
            from twin._fs import check_output_file

            check_output_file(out, what="link flows")
        try:
            net = read_tntp_net(net_file)
            od = read_tntp_trips(trips_file, net.n_zones) * demand_factor
        except (ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
            raise InputError(f"{_first_name(exc, net_file, trips_file)}: not a valid TNTP file "
                             f"({_one_line(str(exc))[:160]})") from None
        try:
            res = solve_ue(net, od, method=method, gap_tol=gap, max_iter=max_iter, toll_factor=toll_factor,
                           distance_factor=distance_factor)
        except ValueError as exc:  # a bad factor in the file, a link with a negative generalized cost
            raise InputError(f"{net_file}: {_one_line(str(exc))[:200]}") from None
    except TwinError as exc:
        _fail(exc)
        return
    t = Table(title=f"static user equilibrium: {net_file.name}", show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    generalized = res.toll_factor > 0 or res.distance_factor > 0
    rows = [("method", res.method), ("iterations", f"{res.iterations:,}"), ("converged", str(res.converged)),
            ("relative gap", f"{res.relative_gap[-1]:.3e}"),
            ("Beckmann objective" + (" (generalized)" if generalized else ""), f"{res.objective[-1]:,.6f}"),
            ("total system travel time", f"{res.tstt:,.3f}")]
    if generalized:
        rows += [("toll factor", f"{res.toll_factor:g}"), ("distance factor", f"{res.distance_factor:g}"),
                 ("total generalized cost", f"{res.total_cost:,.3f}"), ("total toll", f"{res.total_toll:,.3f}"),
                 ("total distance", f"{res.total_distance:,.3f}")]
    rows.append(("wall time", f"{res.wall_time_s:.2f} s"))
    for label, value in rows:
        t.add_row(label, value)
    console.print(t)
    if out is not None:
        import tempfile

        from twin._fs import write_output
        from twin.run import write_table

        with tempfile.TemporaryDirectory(prefix=".twin-flows-") as tmp:
            f = Path(tmp) / "flows.parquet"
            write_table({"init_node": net.init_node.astype(np.int64) + 1,
                         "term_node": net.term_node.astype(np.int64) + 1,
                         "flow": res.flow, "cost": res.cost, "generalized_cost": res.generalized_cost,
                         "capacity": net.capacity}, f)
            write_output(out, f.read_bytes(), what="link flows")
        console.print(f"link flows written to {out}")


@app.command()
@_guard
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder.")],
    baseline: Annotated[Path | None, typer.Option("--baseline", "-b",
                                                  help="Baseline run folder to compare with.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default RUN/report.html).")] = None,
) -> None:
    """(Re)write the HTML report of a run, optionally with a comparison against a baseline run."""
    from twin.report import write_report

    try:
        path = write_report(run_dir, out, baseline_dir=baseline)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(f"wrote {path}")


@app.command()
@_guard
def animate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (needs events.parquet, or maas_links.parquet).")],
    hour: Annotated[int, typer.Option("--hour", help="Hour of the day to animate.")] = 8,
    max_vehicles: Annotated[int, typer.Option("--max-vehicles",
                                              help="Cap on animated cars (MaaS fleet vehicles are all kept).")] = 5000,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default RUN/animation_HH.html).")] = None,
) -> None:
    """An offline HTML animation of the cars on the network during one hour, and of the MaaS fleet's
    vehicles (drawn apart: empty, or with passengers) when the run has one."""
    from twin.report import write_animation

    try:
        if not 0 <= hour <= 47:
            raise TwinError(f"twin animate: --hour: must be in 0..47, got {hour}")
        if max_vehicles < 1:
            raise TwinError(f"twin animate: --max-vehicles: must be >= 1, got {max_vehicles}")
        path = write_animation(run_dir, out or run_dir / f"animation_{hour:02d}.html", hour=hour,
                               max_vehicles=max_vehicles)
    except TwinError as exc:
        _fail(exc)
        return
    console.print(f"wrote {path}")


def _kernels_compiled() -> bool:
    """Whether Numba's on-disk cache holds the queue kernel (else the first run compiles it)."""
    import twin.kernels

    here = Path(twin.kernels.__file__).resolve().parent
    dirs = [here / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    try:
        return any(next(d.rglob("queue.*.nbi"), None) is not None for d in dirs if d.is_dir())
    except OSError:
        return True


def _check_input_file(f: Path, what: str) -> None:
    """A missing file, a folder, FIFO or device as an input: one line (a FIFO would block the reader)."""
    import stat

    from twin._fs import file_kind

    try:
        mode = f.stat().st_mode
    except OSError as exc:
        raise InputError(f"{f}: {what} not found" if isinstance(exc, FileNotFoundError)
                         else f"{f}: cannot read the {what} ({_os_message(exc)})") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{f}: is {file_kind(mode)}, not a {what}")


def _first_name(exc: BaseException, *files: Path) -> str:
    text = str(exc)
    for f in files:
        if str(f) in text or f.name in text:
            return str(f)
    return " / ".join(str(f) for f in files)


def _read_kpis(run: Path) -> dict[str, Any]:
    from twin.report import check_run_folder

    return check_run_folder(run)  # a damaged run folder is named, never half-compared


@maps_app.command("list")
@_guard
def maps_list() -> None:
    """List the catalogue's maps and where each comes from."""
    from twin.maps import catalog, resolve_source

    t = Table(show_header=True, header_style="bold")
    for c in ("name", "description", "source"):
        t.add_column(c)
    from twin.maps import availability_problem

    for name, entry in catalog().items():
        try:
            src = resolve_source(name)
            problem = availability_problem(src)
            if problem is not None and src.kind == "download" and src.expected_file:
                where = (f"unavailable offline: file {src.expected_file} not found "
                         "(put it in ./maps or a folder of TWIN_MAPS_PATH)")
            elif problem is not None:
                where = f"unavailable: {problem}"
            elif src.kind == "download":
                where = "download (bbox) when online" + (f"; or put {src.expected_file} in a maps folder"
                                                         if src.expected_file else "")
            else:
                where = str(src.path)
        except TwinError as exc:
            where = f"unavailable: {exc}"
        t.add_row(name, entry.get("description", ""), where)
    console.print(t)


@maps_app.command("info")
@_guard
def maps_info(
    source: Annotated[str, typer.Argument(help="Catalogue name, map file, place:NAME or bbox:W,S,E,N.")],
    network_type: Annotated[str, typer.Option("--network-type", "-n", help="drive, walk, bike or all.")] = "drive",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load a map and print node/edge counts and checks."""
    from twin.maps import NETWORK_TYPES
    from twin.network import RoadNetwork

    try:
        if network_type not in NETWORK_TYPES:
            raise TwinError(f"twin maps info: --network-type: must be one of {', '.join(NETWORK_TYPES)}, "
                            f"got {network_type!r}")
        with err_console.status(Text(f"loading {source} ({network_type})")):
            net = RoadNetwork.load(source, network_type)
        summary = net.summary()
    except TwinError as exc:
        _fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    t = Table(title=f"{source} ({network_type})", show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    for k, v in summary.items():
        t.add_row(k, _fmt(v) if not isinstance(v, list) else ", ".join(str(x) for x in v))
    console.print(t)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and exits; CLI misuse (a missing argument, an
    unknown flag, ``--seed abc``) is one line and exit code 2, like every other error."""
    try:
        rc = app(args=argv, prog_name="twin", standalone_mode=False)
    except _cx.NoArgsIsHelpError as exc:
        # (ctx is declared a Context, yet UsageError's ctx may be None)
        sys.stdout.write((exc.ctx.get_help() if exc.ctx is not None else str(exc)) + "\n")  # type: ignore[redundant-expr]
        sys.exit(0)
    except _cx.UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "twin"
        _say_error(f"{where}: {exc.format_message()} (see {where} --help)")
        sys.exit(2)
    except _cx.ClickException as exc:
        _say_error(exc.format_message())
        sys.exit(exc.exit_code if exc.exit_code else 2)
    except (typer.Abort, KeyboardInterrupt):
        _say_error("interrupted")
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
