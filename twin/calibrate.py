"""Calibration of mode choice: alternative-specific constants fitted to target mode shares.

``twin calibrate SCENARIO`` (or :func:`calibrate`) iterates *simulate → compare shares → adjust the
constants* until every mode's share of trips is within ``tolerance`` of its target. The update is the
standard log-ratio correction of logit constants (as in ActivitySim's and MATSim's calibration
scripts; Train, *Discrete Choice Methods with Simulation*, §2.8)::

    asc_m  <-  asc_m + damping * ln(target_m / simulated_m)

with one mode held fixed as the reference (only differences of constants matter in a logit), so the
fitted constants stay comparable between runs. Each iteration simulates the whole scenario (every
replanning day), so congestion feedback on car times is part of the fit. The same seed is used in
every iteration (common random numbers), so the shares move because the constants move, not
because of new draws.

Targets come from the scenario (``modes.target_shares``) or the caller; shares of modes left out
are free. Writes nothing by itself: :func:`write_calibration` puts the history and the fitted
constants (a YAML snippet ready to paste into the scenario) into a run folder.

Why by hand: no maintained library fits logit constants to aggregate shares inside an agent-based
simulation loop (Biogeme and PyLogit estimate from choice observations, not from target shares).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twin._errors import ScenarioError
from twin.domains.mobility.modes import BUILTIN_MODES
from twin.scenario import Scenario

__all__ = ["CalibrationResult", "calibrate", "asc_of", "with_asc", "asc_snippet"]


@dataclass
class CalibrationResult:
    """What :func:`calibrate` found.

    Attributes
    ----------
    asc
        The fitted alternative-specific constants, by mode.
    shares
        The simulated trip shares with those constants, by mode.
    targets
        The target shares.
    converged
        Every targeted share within ``tolerance`` of its target.
    history
        One record per iteration: iteration, the constants used, the shares they gave, the largest
        absolute error.
    scenario
        The scenario with the fitted constants.
    """

    asc: dict[str, float]
    shares: dict[str, float]
    targets: dict[str, float]
    converged: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    scenario: Scenario | None = None


def asc_of(sc: Scenario, mode: str) -> float:
    """The constant of ``mode`` in ``sc`` (built-in ``modes.asc_MODE`` or ``modes.plugins.MODE.asc``)."""
    if mode in BUILTIN_MODES:
        return float(getattr(sc.modes, f"asc_{mode}"))
    from twin.domains.mobility.modes import get_mode

    opts = get_mode(mode).Options.model_validate(sc.modes.plugins.get(mode, {}))
    return float(opts.asc)


def with_asc(sc: Scenario, asc: dict[str, float]) -> Scenario:
    """``sc`` with the constants of ``asc`` (validated like a scenario file)."""
    data = sc.model_dump(mode="json")
    for mode, v in asc.items():
        v = round(float(v), 6)
        if mode in BUILTIN_MODES:
            data["modes"][f"asc_{mode}"] = v
        else:
            data["modes"].setdefault("plugins", {}).setdefault(mode, {})["asc"] = v
    from twin.scenario import scenario_from_dict

    return scenario_from_dict(data)


def asc_snippet(asc: dict[str, float]) -> str:
    """The fitted constants as scenario YAML (``modes:`` section), ready to paste."""
    lines = ["modes:"]
    plug = {m: v for m, v in asc.items() if m not in BUILTIN_MODES}
    for m, v in asc.items():
        if m in BUILTIN_MODES:
            lines.append(f"  asc_{m}: {v:.6g}")
    if plug:
        lines.append("  plugins:")
        for m, v in plug.items():
            lines.append(f"    {m}: {{asc: {v:.6g}}}")
    return "\n".join(lines) + "\n"


def _shares(kpis: dict[str, Any], modes: list[str]) -> dict[str, float]:
    return {m: float(kpis.get(f"mode_share_{m}") or 0.0) for m in modes}


def calibrate(
    sc: Scenario,
    targets: dict[str, float] | None = None,
    *,
    tolerance: float = 0.01,
    max_iterations: int = 15,
    damping: float = 1.0,
    reference: str | None = None,
    network: Any = None,
    walk_network: Any = None,
    bike_network: Any = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> CalibrationResult:
    """Fit the mode constants of ``sc`` so that simulated trip shares hit ``targets``.

    Parameters
    ----------
    sc
        The scenario (its seed is used in every iteration).
    targets
        Target share of trips by mode (default ``sc.modes.target_shares``). Modes must be in
        ``modes.available``; shares in (0, 1) summing to at most 1 (to exactly 1 when every available
        mode has a target).
    tolerance
        Stop when every targeted share is within this of its target (absolute, e.g. 0.01 = 1 point).
    max_iterations
        Simulations at most.
    damping
        Step factor of the log-ratio update (1 = the full step).
    reference
        The mode whose constant stays fixed (default: the first available mode without a target,
        else the first available mode).
    network, walk_network, bike_network
        Preloaded networks (loaded once otherwise).
    progress
        Called with each iteration's record.

    Raises
    ------
    ScenarioError
        Bad targets (unknown or unavailable mode, share outside (0, 1), sum above 1).
    """
    from twin.model import CityModel, load_network

    targets = dict(targets if targets is not None else (sc.modes.target_shares or {}))
    modes = list(sc.modes.available)
    given: Mapping[str, object] = targets  # callers of the Python API may pass anything: checked here
    problems = []
    if not targets:
        problems.append(("modes.target_shares", ("no target shares to calibrate to (give e.g. {car: 0.3, walk: 0.5, "
                                                 "bike: 0.2})")))
    for m, v in given.items():
        if m not in modes:
            problems.append((f"modes.target_shares.{m}", f"not in modes.available ({', '.join(modes)})"))
        elif not (isinstance(v, int | float) and 0 < v < 1):
            problems.append((f"modes.target_shares.{m}", f"must be a share in (0, 1), got {v!r}"))
    total = sum(v for v in given.values() if isinstance(v, int | float))
    if not problems and (total > 1 + 1e-9 or (set(targets) == set(modes) and abs(total - 1) > 1e-6)):
        problems.append(("modes.target_shares", (f"shares sum to {total:g}; they must sum to 1 over all available "
                                                 "modes, or to less when some modes are free")))
    if problems:
        raise ScenarioError(None, problems)
    if reference is None:
        free = [m for m in modes if m not in targets]
        reference = free[0] if free else modes[0]
    net = network if network is not None else load_network(sc)
    nets = {"walk": walk_network, "bike": bike_network}
    for m in ("walk", "bike"):
        if nets[m] is None and m in modes:
            nets[m] = load_network(sc, m)
    asc = {m: asc_of(sc, m) for m in modes}
    history: list[dict[str, Any]] = []
    cur = sc
    shares: dict[str, float] = {}
    converged = False
    for it in range(max_iterations):
        model = CityModel(cur, network=net, walk_network=nets["walk"], bike_network=nets["bike"])
        model.run()
        shares = _shares(model.kpis(), modes)
        err = max(abs(shares[m] - t) for m, t in targets.items())
        rec = {"iteration": it, "max_abs_error": round(err, 6),
               **{f"asc_{m}": asc[m] for m in modes}, **{f"share_{m}": shares[m] for m in modes},
               **{f"target_{m}": t for m, t in targets.items()}}
        history.append(rec)
        if progress is not None:
            progress(rec)
        if err <= tolerance:
            converged = True
            break
        if it == max_iterations - 1:
            break
        # log-ratio update; a mode that nobody chose gets a bounded push instead of log(0)
        step = {m: damping * math.log(t / max(shares[m], 1e-4)) for m, t in targets.items()}
        if reference in step:  # only differences matter: keep the reference's constant where it is
            ref = step.pop(reference)
            step = {m: s - ref for m, s in step.items()}
            for m in modes:
                if m not in targets and m != reference:
                    step[m] = -ref
        for m, s in step.items():
            asc[m] = max(-50.0, min(50.0, asc[m] + max(-5.0, min(5.0, s))))
        cur = with_asc(sc, asc)
    return CalibrationResult(asc=dict(asc), shares=shares, targets=targets, converged=converged,
                             history=history, scenario=cur)


def write_calibration(result: CalibrationResult, run_dir: Any) -> list[str]:
    """Add the calibration to a run folder (the run of the calibrated scenario): ``calibration.parquet``
    (one row per iteration), ``calibrated_modes.yaml`` (the fitted constants, ready to paste into the
    scenario) and ``calibration.json``; the manifest lists them. Returns the file names."""
    import json
    from pathlib import Path

    import numpy as np

    from twin._fs import write_output
    from twin._tables import write_table

    out = Path(run_dir)
    keys = list(dict.fromkeys(k for rec in result.history for k in rec))
    cols = {k: np.array([rec.get(k, np.nan) for rec in result.history],
                        dtype=np.int64 if k == "iteration" else np.float64) for k in keys}
    import tempfile

    with tempfile.TemporaryDirectory(dir=out, prefix=".calibration-") as tmp:
        f = Path(tmp) / "calibration.parquet"
        write_table(cols, f)
        write_output(out / "calibration.parquet", f.read_bytes(), what="calibration table")
    write_output(out / "calibrated_modes.yaml",
                 "# fitted by `twin calibrate`: paste into the scenario to use these constants\n"
                 + asc_snippet(result.asc), what="calibrated constants")
    summary = {"converged": result.converged, "iterations": len(result.history), "asc": result.asc,
               "shares": result.shares, "targets": result.targets,
               "max_abs_error": result.history[-1]["max_abs_error"] if result.history else None}
    write_output(out / "calibration.json", json.dumps(summary, indent=2) + "\n", what="calibration summary")
    names = ["calibration.parquet", "calibrated_modes.yaml", "calibration.json"]
    man_path = out / "manifest.json"
    man = json.loads(man_path.read_text(encoding="utf-8"))
    man["files"] = sorted(set(man.get("files", [])) | set(names))
    write_output(man_path, json.dumps(man, indent=2) + "\n", what="manifest")
    return names
