"""Strict inputs: the YAML reader, the one validator, the schema, `twin validate` means "will run",
defaults that mean what they say, and deterministic outputs whatever the spelling of a time."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from twin._errors import ScenarioError
from twin._yaml import MAX_DEPTH, load_yaml, load_yaml_text
from twin.cli import app, main
from twin.scenario import (
    MAX_TIME_S,
    Scenario,
    dump_scenario,
    format_clock,
    load_scenario,
    parse_time_s,
    scenario_from_dict,
    scenario_schema,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def err(data: dict) -> str:
    with pytest.raises(ScenarioError) as e:
        scenario_from_dict(data, "s.yaml")
    return str(e.value)


# ------------------------------------------------------------------------------------------ YAML

def test_clock_times_stay_clock_times_quoted_or_not():
    doc = load_yaml_text('a: 7:00\nb: "07:00"\nc: 30:00\nd: 1:30:00.5\ne: 420\nf: 1e3\ng: 0x1f\nh: yes\n')
    assert doc == {"a": "7:00", "b": "07:00", "c": "30:00", "d": "1:30:00.5", "e": 420, "f": 1000.0, "g": 31,
                   "h": True}
    # what YAML 1.1 (PyYAML's own SafeLoader) makes of the same text: the bug this reader fixes
    assert yaml.safe_load("a: 7:00")["a"] == 420


def test_duplicate_keys_name_the_key_and_both_lines():
    with pytest.raises(ScenarioError, match=r"s.yaml: population.residents: duplicate key \(first on line 2, again on "
                                            r"line 4\)"):
        load_yaml_text("population:\n  residents: 3000\n  placement: uniform\n  residents: 25\n", "s.yaml")
    with pytest.raises(ScenarioError, match=r"population\.residents: duplicate key"):
        load_yaml_text("population: {residents: 3000, residents: 25}", "s.yaml")


def test_alias_bomb_and_deep_nesting_are_refused_fast():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for n in "bcdefghi":
        bomb += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    for text, needle in ((bomb, "alias"), ("[" * 10_000 + "]" * 10_000, "nesting"),
                         ("{a: " * 10_000 + "1" + "}" * 10_000, "nesting"), ("a: &x [*x]", "alias"),
                         ("a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 5)), "nesting")):
        t0 = time.perf_counter()
        with pytest.raises(ScenarioError, match=needle) as e:
            load_yaml_text(text, "s.yaml")
        assert time.perf_counter() - t0 < 1.0
        assert len(str(e.value)) < 300  # the expanded value is never echoed


def test_python_tags_are_not_constructed():
    with pytest.raises(ScenarioError, match=r"tag !!python/object/apply:os\.system is not allowed"):
        load_yaml_text("a: !!python/object/apply:os.system [echo hi]", "s.yaml")


@pytest.mark.parametrize("make,needle", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: __import__("os").mkfifo(p), "FIFO"),
    (lambda p: p.write_bytes(b"name: \xff\xfe x\n"), "not a UTF-8 text file (byte 0xff on line 1)"),
    (lambda p: p.write_bytes(b"name: a\n\x00\n"), "NUL byte on line 2"),
    (lambda p: None, "not found"),
])
def test_files_that_are_not_yaml_text(tmp_path, make, needle):
    p = tmp_path / "s.yaml"
    make(p)
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=re.escape(needle)):
        load_yaml(p)
    assert time.perf_counter() - t0 < 1.0


def test_devices_are_refused():
    with pytest.raises(ScenarioError, match="device"):
        load_yaml("/dev/zero")


# ------------------------------------------------------------------------------------- validator

@pytest.mark.parametrize("data,needle", [
    ({"population": {"residents": True}}, "population.residents: must be a number, not a boolean"),
    ({"population": {"residents": "3000"}}, "population.residents: Input should be a valid integer (got '3000')"),
    ({"population": {"residents": 2.5}}, "population.residents"),
    ({"modes": {"asc_walk": float("nan")}}, "modes.asc_walk: must be a finite number"),
    ({"modes": {"car_cost_per_km": float("inf")}}, "modes.car_cost_per_km: must be a finite number"),
    ({"replanning": {"route_share": 7}}, "replanning.route_share: Input should be less than or equal to 1"),
    ({"replanning": {"route_share": -5}}, "replanning.route_share"),
    ({"replanning": {"route_share": float("nan")}}, "replanning.route_share: must be a finite number"),
    ({"population": {"car_ownership": 1.5}}, "population.car_ownership"),
    ({"demand": {"shop": {"opens_s": "20:00", "closes_s": "08:00"}}},
     "demand.shop: closes_s (08:00) must be after opens_s (20:00)"),
    ({"demand": {"work": {"opens_s": "08:99"}}}, "minutes and seconds must be below 60"),
    ({"demand": {"work": {"opens_s": "07:00:75"}}}, "minutes and seconds must be below 60"),
    ({"demand": {"work": {"opens_s": "noon"}}}, "not a time: 'noon'"),
    ({"simulation": {"end_s": float("inf")}}, "simulation.end_s: must be a finite number"),
    ({"simulation": {"end_s": 1e12}}, f"less than or equal to {MAX_TIME_S:.0f}"),
    ({"simulation": {"dt_s": 1e-9}}, "simulation.dt_s: Input should be greater than or equal to 0.1"),
    ({"simulation": {"record_interval_s": 1e-300}}, "simulation.record_interval_s"),
    ({"simulation": {"dt_s": 30, "record_interval_s": 10}}, "record_interval_s (10) must be >= dt_s (30)"),
    ({"policies": [{"type": "link_change", "osm_way_ids": [2**63], "closed": True}]},
     "policies.0.osm_way_ids.0: Input should be less than or equal to 9223372036854775807"),
    ({"policies": [{"type": "road_pricing", "bbox": [1, 2, 3, 4], "foo": 1}]},
     "policies.0.foo: unknown key; allowed keys: type, name, kind, bbox"),
    ({"policies": [{"type": "road_pricing", "bbox": [3, 2, 1, 4]}]}, "west < east"),
    ({"policies": [{"type": "teleport"}]}, "policies.0: unknown type 'teleport'"),
    ({"population": {"residentz": 3}},
     "population.residentz: unknown key; allowed keys: residents, sample_share, placement"),
    ({"population": {"residents": 9_000_000}}, "population.residents: 9,000,000 residents need about"),
    ({"seed": 2**128}, "seed"),
    (["a"], "the top level must be a mapping"),
])
def test_bad_values_are_one_clear_line(data, needle):
    msg = err(data)
    assert msg.startswith("s.yaml: ")
    assert needle in msg, msg
    assert "\n" not in msg


def test_huge_echoed_values_are_capped():
    msg = err({"name": "x" * 10_000 + "!"})
    assert len(msg) < 400


def test_clock_strings_round_trip_exactly():
    for v in (0.0, 60.0, 25200.0, 30615.0, 0.5, 28800.1, 86399.999, 107999.0, MAX_TIME_S):
        assert parse_time_s(format_clock(v)) == v
    assert format_clock(25200.0) == "07:00" and format_clock(30615.0) == "08:30:15"


def test_resolved_scenario_writes_times_as_clock_strings():
    sc = scenario_from_dict({"policies": [{"type": "road_pricing", "bbox": [24.94, 60.166, 24.949, 60.174],
                                           "from_s": "7:00", "to_s": 68400}]})
    text = dump_scenario(sc)
    assert 'from_s: "07:00"' in text and 'to_s: "19:00"' in text and 'end_s: "30:00"' in text
    assert scenario_from_dict(load_yaml_text(text)) == sc
    # quoted: also a YAML 1.1 reader (PyYAML's own) reads them back as strings, never base 60
    assert yaml.safe_load(text)["policies"][0]["from_s"] == "07:00"


def test_partial_nested_section_keeps_its_real_defaults():
    default = Scenario().demand.shop
    sc = scenario_from_dict({"demand": {"shop": {"duration": {"std_s": 600, "min_s": 600}}}})
    shop = sc.demand.shop
    assert (shop.opens_s, shop.closes_s) == (default.opens_s, default.closes_s) == (8 * 3600.0, 21 * 3600.0)
    assert shop.duration.mean_s == default.duration.mean_s == 1800.0
    assert shop.duration.max_s == default.duration.max_s
    assert (shop.duration.std_s, shop.duration.min_s) == (600.0, 600.0)
    # the other activities are untouched, and a partial school section keeps the school's hours
    assert sc.demand.work == Scenario().demand.work
    sc = scenario_from_dict({"demand": {"school": {"opens_s": "07:30"}}})
    assert sc.demand.school.closes_s == Scenario().demand.school.closes_s == 17 * 3600.0
    assert sc.demand.school.duration == Scenario().demand.school.duration


def test_reference_documents_the_real_defaults():
    doc = (ROOT / "docs" / "scenario-reference.md").read_text()
    assert "| `demand.shop.opens_s` | time | `'08:00'` |" in doc
    assert "| `demand.shop.duration.mean_s` | time | `'00:30'` |" in doc


# ----------------------------------------------------------------------------------------- schema

def _schema_validator():
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _shipped_scenarios() -> list[Path]:
    return sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", _shipped_scenarios(), ids=lambda p: p.name)
def test_shipped_scenarios_validate_against_the_schema(path):
    v = _schema_validator()
    errors = [e.message for e in v.iter_errors(load_yaml(path))]
    assert not errors, errors


def test_experiments_and_their_runs_validate_against_the_schema():
    from twin.sweep import expand_runs, load_experiment

    v = _schema_validator()
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    assert files
    for f in files:
        exp, base = load_experiment(f)
        assert not list(v.iter_errors(base)), f
        for r in expand_runs(exp, base, f)[:6]:
            doc = load_yaml_text(dump_scenario(r.scenario))
            errors = [e.message for e in v.iter_errors(doc)]
            assert not errors, (f, errors)


@pytest.mark.parametrize("map_source", ["helsinki", "bbox:24.93,60.16,24.95,60.18"])
def test_twin_new_output_validates_against_the_schema(tmp_path, map_source):
    from twin.starter import starter_yaml

    doc = load_yaml_text(starter_yaml("mine", map_source))
    assert not [e.message for e in _schema_validator().iter_errors(doc)]


def test_schema_types_fields_as_the_loader_accepts_them():
    v = _schema_validator()
    assert not list(v.iter_errors({"simulation": {"end_s": "30:00", "start_s": 3600}}))
    for bad in ({"simulation": {"end_s": "08:99"}}, {"simulation": {"end_s": 1e12}},
                {"population": {"residents": True}}, {"population": {"residentz": 1}},
                {"replanning": {"route_share": 7}}):
        assert list(v.iter_errors(bad)), bad
        with pytest.raises(ScenarioError):
            scenario_from_dict(bad)


# --------------------------------------------------------------------- validate means "will run"

def _catalog_offline_entries() -> list[str]:
    from twin.maps import catalog

    return [n for n, e in catalog().items() if "pyrosm" not in e]


@pytest.mark.parametrize("name", _catalog_offline_entries())
def test_validate_fails_for_catalogue_maps_not_available_offline(tmp_path, monkeypatch, name):
    from twin.maps import catalog

    monkeypatch.setenv("TWIN_OFFLINE", "1")
    monkeypatch.setenv("TWIN_MAPS_PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\nmap: {{source: {name}}}\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2, res.output
    expected = catalog()[name]["file"]
    line = res.output.strip()
    assert line.count("\n") == 0 and line.startswith(f"error: {p}: map.source:") and expected in line, line
    assert "TWIN_MAPS_PATH" in line
    res = runner.invoke(app, ["maps", "list"])
    assert res.exit_code == 0 and "unavailable" in res.output


def test_validate_loads_the_map_and_checks_policies(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\npolicies:\n  - {type: road_pricing, name: off-map cordon, bbox: [10, 10, 11, 11]}\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2
    assert "policies.0: 'off-map cordon' selects no link of the map: bbox [10.0, 10.0, 11.0, 11.0] holds no node" \
        in res.output
    p.write_text("name: s\npolicies:\n  - {type: link_change, osm_way_ids: [1], closed: true}\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2 and "no link of the drive network belongs to OSM way(s) 1" in res.output
    res = runner.invoke(app, ["validate", str(ROOT / "scenarios" / "helsinki_cordon.yaml")])
    assert res.exit_code == 0 and "1 policies" in res.output


def test_cli_misuse_is_one_line(capsys):
    for argv, needle in ((["run"], "Missing argument"), (["run", "x.yaml", "--seed", "abc"], "--seed"),
                         (["run", "x.yaml", "--nope"], "No such option: --nope"), (["frobnicate"], "No such command")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: twin") and needle in lines[0], out.err


def test_markup_in_names_and_values_is_printed_literally(tmp_path, capsys):
    d = tmp_path / "[bold]x"  # markup, but no '/' (a file name cannot hold one)
    d.mkdir()
    p = d / "[link=file:x]s.yaml"
    p.write_text("name: s\npopulation: {residents: '[/]'}\n")
    with pytest.raises(SystemExit) as e:
        main(["validate", str(p)])
    assert e.value.code == 2
    line = capsys.readouterr().err.strip()
    assert str(p) in line and "'[/]'" in line and "\x1b]8;" not in line


# --------------------------------------------------------------- the same run, however it is spelled

CORDON = """name: cordon
seed: 11
population: {{residents: 300}}
modes: {{available: [car, walk]}}
simulation: {{start_s: {start}, end_s: {end}, record_interval_s: 600}}
policies:
  - {{type: road_pricing, name: centre, kind: cordon, bbox: [24.940, 60.166, 24.949, 60.174], price: 5.0,
     from_s: {t0}, to_s: {t1}}}
"""


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name not in ("manifest.json", "run.log")}


def test_unquoted_and_quoted_clock_times_give_byte_identical_outputs(tmp_path):
    from twin.run import run_scenario

    outs = []
    for i, (start, end, t0, t1) in enumerate((("5:00", "30:00", "7:00", "19:00"),
                                              ('"05:00"', '"30:00"', '"07:00"', '"19:00"'),
                                              ("18000", "108000", "25200", "68400"))):
        p = tmp_path / f"s{i}.yaml"
        p.write_text(CORDON.format(start=start, end=end, t0=t0, t1=t1))
        sc = load_scenario(p)
        assert sc.policies[0].from_s == 7 * 3600 and sc.simulation.end_s == 30 * 3600
        res = run_scenario(sc, tmp_path / f"run{i}" / "cordon")
        outs.append(_digest(res.out_dir))
    assert outs[0] == outs[1] == outs[2]
    assert {"trips.parquet", "events.parquet", "links.gpkg", "scenario.resolved.yaml", "kpis.json",
            "report.html"} <= set(outs[0])
    kpis = json.loads((tmp_path / "run0" / "cordon" / "kpis.json").read_text())
    assert kpis["tolls_paid"] > 0  # the cordon charged somebody (with YAML 1.1's 7:00 = 00:07 it would not)


# -------------------------------------------------------------------------------------- sweeps

def test_sweep_seeds_have_128_bits_and_differ():
    from twin.sweep import run_seed

    seeds = {run_seed(2026, {"x": i}, r) for i in range(200) for r in range(5)}
    assert len(seeds) == 1000
    assert max(seeds) > 2**96 and all(0 <= s < 2**128 for s in seeds)
    assert run_seed(2026, {"x": 1}, 0) == run_seed(2026, {"x": 1}, 0)


def test_sweep_whose_runs_all_fail_exits_non_zero_after_writing_its_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(
        "name: b\npopulation: {residents: 50}\nmodes: {available: [car]}\n"
        "policies: [{type: link_change, osm_way_ids: [1], closed: true}]\n")
    (tmp_path / "exp.yaml").write_text("name: e\nbase: base.yaml\nreplicates: 2\n")
    res = runner.invoke(app, ["sweep", str(tmp_path / "exp.yaml"), "-e", "serial", "-q"])
    assert res.exit_code == 1, res.output
    assert "2 of 2 runs failed" in res.output
    store = tmp_path / "runs" / "sweeps" / "e"
    assert (store / "kpis.parquet").is_file() and len(list((store / "failed").glob("*.json"))) == 2


@pytest.mark.parametrize("text,needle", [
    ("name: e\nbase: [unclosed\n", "not valid YAML (line 3, column 1"),
    ("name: e\nbase: b.yaml\nbogus: 1\n", "bogus: unknown key; allowed keys: name, description, base"),
    ("name: e\nbase: b.yaml\noverrides: {population.residents.x: 3}\n", "population.residents is a value"),
    ("name: e\nbase: b.yaml\naxes: [{grid: {policies.3.price: [1]}}]\n", "index 3 out of range"),
    ("name: e\nbase: missing.yaml\n", "base: 'missing.yaml'"),
    ("- 1\n", "the top level must be a mapping"),
    ("", "got empty"),
])
def test_bad_experiments_are_one_line(tmp_path, text, needle):
    (tmp_path / "b.yaml").write_text("name: b\npopulation: {residents: 10}\n")
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    res = runner.invoke(app, ["sweep", str(p), "-e", "serial"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert "\n" not in line and line.startswith(f"error: {p}") and needle in line, line
    assert not (tmp_path / "runs").exists()
