"""Mode-choice calibration: constants fitted to target shares by the log-ratio update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from twin._errors import ScenarioError
from twin.calibrate import asc_of, asc_snippet, calibrate, with_asc
from twin.cli import app
from twin.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_calibration_reaches_the_default_scenarios_targets_from_uncalibrated_constants():
    sc = load_scenario(ROOT / "scenarios" / "helsinki_commute.yaml")
    targets = dict(sc.modes.target_shares)
    assert targets and abs(sum(targets.values()) - 1) < 1e-9
    start = with_asc(sc, {"car": 0.0, "walk": 0.0, "bike": -1.0})  # the generic defaults
    res = calibrate(start, tolerance=0.01, max_iterations=12)
    assert res.converged and len(res.history) > 1
    assert res.history[0]["max_abs_error"] > 0.05  # it had something to fit
    for m, t in targets.items():
        assert abs(res.shares[m] - t) <= 0.01, (m, res.shares[m], t)
    assert res.asc["car"] == 0.0  # the reference's constant stays put
    # the fitted scenario reproduces the shares when simulated again (same seed)
    from twin.model import CityModel

    k = CityModel(res.scenario).run().kpis()
    assert all(abs(k[f"mode_share_{m}"] - res.shares[m]) < 1e-9 for m in targets)


def test_bad_targets_are_named():
    sc = scenario_from_dict({"population": {"residents": 20}})
    for targets, needle in (({}, "no target shares"),
                            ({"tram": 0.5}, "modes.target_shares.tram: not in modes.available"),
                            ({"car": 1.2}, "modes.target_shares"), ({"car": 0.6, "walk": 0.6}, "sum to 1.2"),
                            ({"car": 0.3, "walk": 0.3, "bike": 0.3}, "sum to 0.9")):
        with pytest.raises(ScenarioError, match=needle):
            calibrate(sc, targets)
    with pytest.raises(ScenarioError, match=r"modes\.target_shares\.car"):
        scenario_from_dict({"modes": {"target_shares": {"car": 1.5}}})


def test_constants_round_trip_through_the_snippet():
    sc = scenario_from_dict({"modes": {"available": ["car", "walk", "bike", "taxi"]}})
    asc = {"car": 0.0, "walk": -0.5, "bike": -2.25, "taxi": 1.5}
    fitted = with_asc(sc, asc)
    assert {m: asc_of(fitted, m) for m in asc} == asc
    snippet = yaml.safe_load(asc_snippet(asc))
    again = scenario_from_dict({"modes": {**snippet["modes"], "available": ["car", "walk", "bike", "taxi"]}})
    assert {m: asc_of(again, m) for m in asc} == asc


def test_twin_calibrate_writes_the_fitted_constants_into_a_run_folder(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: cal\nseed: 5\npopulation: {residents: 300}\nmodes: {available: [car, walk], "
                 "target_shares: {car: 0.3, walk: 0.7}}\nsimulation: {start_s: '05:00', end_s: '28:00', "
                 "record_interval_s: 600}\noutput: {report: false}\n")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["calibrate", str(p), "--out", str(out), "-q", "--tolerance", "0.02"])
    assert res.exit_code == 0, res.output
    assert "converged" in res.output and "asc_walk" in res.output
    fitted = yaml.safe_load((out / "calibrated_modes.yaml").read_text())["modes"]
    summary = json.loads((out / "calibration.json").read_text())
    assert summary["converged"] and abs(summary["shares"]["car"] - 0.3) <= 0.02
    assert fitted["asc_walk"] == pytest.approx(summary["asc"]["walk"], abs=1e-5)
    man = json.loads((out / "manifest.json").read_text())
    assert {"calibration.parquet", "calibrated_modes.yaml", "calibration.json"} <= set(man["files"])
    from twin.report import check_run_folder

    check_run_folder(out)
    # the run folder is the calibrated scenario's run
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["mode_share_car"] == pytest.approx(summary["shares"]["car"])
