"""`twin new` starter files: commented, valid, equal to the defaults, never overwritten by accident."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from twin._errors import MapError, ScenarioError, TwinError
from twin.scenario import MapConfig, Scenario, load_scenario
from twin.starter import scenario_name_from_path, starter_yaml, write_starter

TSUKUBA_FILE = Path("maps") / "japan" / "tsukuba_aist.osm"  # in ../shared (TWIN_MAPS_PATH)

# Fields a starter may leave out (shown as a comment instead).
OMITTED = {"population.grid"}


def expected(name: str, source: str) -> Scenario:
    """The default scenario with this name and map (with the installed domains' sections)."""
    from twin.scenario import scenario_class

    return scenario_class()(name=name, map=MapConfig(source=source))


def test_helsinki_starter_validates_and_equals_defaults(tmp_path: Path) -> None:
    path = write_starter(tmp_path / "helsinki_day.yaml", "helsinki_day", "helsinki")
    sc = load_scenario(path)
    assert sc == expected("helsinki_day", "helsinki")
    d = Scenario()
    for section in ("population", "demand", "modes", "replanning", "simulation", "output"):
        assert getattr(sc, section) == getattr(d, section), section
    assert sc.policies == d.policies == []
    assert sc.map.model_dump(exclude={"source"}) == d.map.model_dump(exclude={"source"})


def test_tsukuba_catalogue_name(tmp_path: Path, shared: Path) -> None:
    path = write_starter(tmp_path / "tsukuba.yaml", "tsukuba_day", "tsukuba")
    sc = load_scenario(path)
    assert sc == expected("tsukuba_day", "tsukuba")
    assert sc.population == Scenario().population


def test_shared_map_file_absolute(tmp_path: Path, shared: Path) -> None:
    osm = str(shared / TSUKUBA_FILE)
    path = write_starter(tmp_path / "aist.yaml", "aist", osm)
    sc = load_scenario(path)
    assert Path(sc.map.source).resolve() == Path(osm).resolve()
    assert sc.model_copy(update={"map": MapConfig(source="x")}) == expected("aist", "x")


def test_map_file_relative_to_cwd_is_written_relative_to_the_scenario(
    tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shared)
    target = tmp_path / "elsewhere" / "aist.yaml"
    write_starter(target, None, str(TSUKUBA_FILE))
    written = yaml.safe_load(target.read_text())["map"]["source"]
    assert not Path(written).is_absolute()
    assert (target.parent / written).resolve() == (shared / TSUKUBA_FILE).resolve()
    monkeypatch.chdir(tmp_path)  # loads from anywhere
    sc = load_scenario(target)
    assert Path(sc.map.source).resolve() == (shared / TSUKUBA_FILE).resolve()
    assert sc.name == "aist"


def test_starter_is_commented() -> None:
    text = starter_yaml("commented", "helsinki")
    assert text.startswith("# citytwin scenario commented")
    lines = text.splitlines()
    key_lines = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key_lines += 1
        # every key has a one-line comment: on its line or on the line above (long flow mappings)
        assert "#" in line or lines[i - 1].strip().startswith("#"), f"no comment: {line!r}"
    assert key_lines > 60
    assert "- {type: road_pricing" in text and "- {type: link_change" in text  # policy examples


def test_starter_covers_every_field() -> None:
    """A field added to the scenario models must be added to the starter (or to OMITTED)."""
    data = yaml.safe_load(starter_yaml("full", "helsinki"))
    missing = []

    def walk(model: type[BaseModel], values: dict, prefix: str) -> None:
        for name, f in model.model_fields.items():
            key = f"{prefix}{name}"
            if name not in values:
                missing.append(key)
                continue
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(values[name], dict):
                walk(ann, values[name], f"{key}.")

    walk(Scenario, data, "")
    assert set(missing) == OMITTED


def test_defaults_come_from_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is hard-coded: the values are read from the models' defaults (``Scenario()``)."""
    import twin.starter

    changed = Scenario(population={"residents": 1234, "car_ownership": 0.35},
                       simulation={"end_s": 27 * 3600.0, "stuck_time_s": 123.0})
    monkeypatch.setattr(twin.starter, "Scenario", lambda: changed)
    text = starter_yaml("x", "helsinki")
    data = yaml.safe_load(text)
    assert data["population"]["residents"] == 1234 and data["population"]["car_ownership"] == 0.35
    assert data["simulation"]["end_s"] == "27:00" and data["simulation"]["stuck_time_s"] == 123.0


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\n")
    with pytest.raises(TwinError, match=r"exists.*--force"):
        write_starter(path, "mine", "helsinki")
    assert path.read_text() == "name: mine\n"
    write_starter(path, "mine", "helsinki", overwrite=True)
    assert load_scenario(path) == expected("mine", "helsinki")


def test_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="is a folder"):
        write_starter(tmp_path, "x", "helsinki")


def test_bad_name_and_unknown_map_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="name"):
        write_starter(tmp_path / "a.yaml", "no spaces allowed", "helsinki")
    with pytest.raises(MapError, match="not a map file, a catalogue name"):
        write_starter(tmp_path / "b.yaml", "b", "atlantis")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("given, name", [("my city.yaml", "my_city"), ("runs/x/day-1.yml", "day-1"),
                                         ("ü.yaml", "scenario"), ("a.b.yaml", "a.b")])
def test_name_from_path(given: str, name: str) -> None:
    assert scenario_name_from_path(given) == name


def test_starter_runs(tmp_path: Path) -> None:
    from twin.model import CityModel

    path = write_starter(tmp_path / "run_me.yaml", None, "helsinki")
    sc = load_scenario(path, overrides={"population.residents": 150})
    model = CityModel(sc)
    model.run()
    assert model.kpis()["trips_completed"] > 0
