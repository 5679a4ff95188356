"""The evacuation section's maps (hazard by stage with shelters and contraflow links, shelter
filling), drawn from the run folder only: one polygon per hazard stage part, one circle per
shelter, the contraflow links, identical bytes on every rendering, and old run folders (without
the hazard or contraflow tables, the shelters' coordinates or the link geometry) still render."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.domains.evacuation.report import evacuation_section, fill_classes, stage_colours
from twin.report import write_report
from twin.report.core import ReportContext
from twin.run import run_scenario
from twin.scenario import scenario_from_dict

CENTRE = (140.1316, 36.0634)  # as tests/test_evacuation.py: a growing flood in Tsukuba AIST
SHELTERS = [{"lon": 140.105, "lat": 36.04, "capacity": 300}, {"lon": 140.155, "lat": 36.085, "capacity": 2000},
            {"lon": 140.15, "lat": 36.04, "capacity": 150}]


def _scenario(shared: Path):
    return scenario_from_dict({
        "name": "evac_report", "seed": 3, "map": {"source": str(shared / "maps" / "japan/tsukuba_aist.osm")},
        "population": {"residents": 600},
        "simulation": {"start_s": "05:00", "end_s": "13:00"},
        "output": {"events": False, "geopackage": True, "report": False},
        "evacuation": {"hazards": [{"points": [list(CENTRE)], "radius_m": 400, "onset_s": "08:30",
                                    "stages": [{"at_s": "08:50", "grow_m": 300}, {"at_s": "09:10", "grow_m": 600}]}],
                       "orders": {"at_s": "08:30", "zone_m": 300},
                       "shelters": {"listed": SHELTERS, "from_map": False},
                       "contraflow": {"auto": 1}}})


@pytest.fixture(scope="module")
def run(shared, tmp_path_factory) -> Path:
    return run_scenario(_scenario(shared), tmp_path_factory.mktemp("evac_report") / "run").out_dir


def _copy(run: Path, dst: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the run folder without the files ``drop`` (as a run that did not write them)."""
    shutil.copytree(run, dst)
    for name in drop:
        (dst / name).unlink()
    man = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    man["files"] = [f for f in man.get("files", []) if f not in drop]
    (dst / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    return dst


def _figure(html: str, name: str) -> str | None:
    m = re.search(rf'<figure data-map="{name}".*?</figure>', html, re.S)
    return m.group(0) if m else None


def _group(fig: str, cls: str) -> str:
    m = re.search(rf'<g class="{cls}"[^>]*>(.*?)</g>', fig, re.S)
    assert m is not None, f"no <g class={cls}>"
    return m.group(1)


def _maps_parse(html: str) -> None:
    for svg in re.findall(r'<svg class="map".*?</svg>', html, re.S):
        ET.fromstring(svg)  # well-formed, self-contained


def test_hazard_map_has_a_polygon_per_stage_part_the_shelters_and_the_contraflow_links(run):
    html = evacuation_section(ReportContext(run))
    assert html is not None
    _maps_parse(html)
    fig = _figure(html, "evac-hazard")
    assert fig is not None and "<h3>Hazard by stage</h3>" in fig and "<h3>Shelter filling</h3>" in html
    hz = pq.read_table(run / "evacuation_hazards.parquet").to_pandas()
    parts = hz[["hazard", "stage", "part"]].drop_duplicates()
    polys = re.findall(r'<polygon data-hazard="(\d+)" data-stage="(\d+)" data-part="(\d+)" data-at-s="(\d+)"',
                       _group(fig, "evac-hazard"))
    assert len(polys) == len(parts) > 1
    assert {tuple(map(int, p[:3])) for p in polys} == set(map(tuple, parts.to_numpy().tolist()))
    # the legend names every stage's start time, in order, each with its own colour
    times = sorted(hz["at_s"].unique())
    labels = re.findall(r"from (\d\d:\d\d)</span>", fig)
    assert labels == [f"{int(t) // 3600:02d}:{int(t) % 3600 // 60:02d}" for t in times]
    assert len(set(stage_colours(len(times)))) == len(times)
    # one circle per shelter, sized by capacity
    sh = pq.read_table(run / "evacuation_shelters.parquet").to_pandas()
    circles = re.findall(r'<circle data-osmid="(\d+)" data-capacity="(\d+)" cx="-?\d+" cy="-?\d+" r="(\d+)"',
                         _group(fig, "evac-shelters"))
    assert sorted(int(c[0]) for c in circles) == sorted(sh["shelter_osmid"].tolist())
    by_cap = sorted((int(c[1]), int(c[2])) for c in circles)
    assert all(r0 <= r1 for (_, r0), (_, r1) in zip(by_cap, by_cap[1:]))
    # the contraflow links, thick, with their legend entry
    cf = pq.read_table(run / "evacuation_contraflow.parquet").to_pandas()
    assert len(cf) > 0
    paths = re.findall(r'<path data-corridor="(\d+)" data-from="(\d+)" data-to="(\d+)" d="M', fig)
    assert sorted((int(f), int(t)) for _, f, t in paths) == sorted(zip(cf["from_osmid"], cf["to_osmid"]))
    assert 'stroke-width="5"' in fig and "contraflow links</span>" in fig
    assert f'data-contraflow-links="{len(cf)}"' in fig


def test_filling_map_colours_shelters_by_peak_share_and_counts_them(run):
    html = evacuation_section(ReportContext(run))
    fig = _figure(html, "evac-filling")
    assert fig is not None
    sh = pq.read_table(run / "evacuation_shelters.parquet").to_pandas()
    circles = re.findall(r'<circle data-osmid="(\d+)" data-capacity="(\d+)" data-peak="(\d+)" '
                         r'data-turned-away="(\d+)" data-full="([01])"', _group(fig, "evac-filling"))
    assert len(circles) == len(sh)
    got = {int(c[0]): tuple(map(int, c[1:])) for c in circles}
    for row in sh.itertuples():
        assert got[row.shelter_osmid] == (row.capacity, row.peak_occupancy, row.turned_away,
                                          int(row.peak_occupancy >= row.capacity))
    nfull = int((sh["peak_occupancy"] >= sh["capacity"]).sum())
    nturn = int((sh["turned_away"] > 0).sum())
    assert nfull > 0 and nturn > 0  # the small shelter fills and turns people away
    assert f"{len(sh):,} shelters" in fig and f"{nfull:,} full" in fig and f"{nturn:,} turned people away" in fig
    assert len(re.findall(r"<circle data-osmid", _group(fig, "evac-turned"))) == nturn
    assert "0–25 %" in fig and "full (100 %)" in fig


def test_fill_classes_and_stage_colours():
    share, cls, full = fill_classes(np.array([100, 100, 100, 100, 0]), np.array([0, 30, 99, 100, 0]))
    assert share.tolist() == [0.0, 0.3, 0.99, 1.0, 1.0]
    assert cls.tolist() == [0, 1, 3, 4, 4] and full.tolist() == [False, False, False, True, True]
    assert stage_colours(0) == [] and len(stage_colours(1)) == 1
    c = stage_colours(9)
    assert len(c) == 9 and c[0] == "#800026" and c[-1] == "#feb24c"


def test_rendering_is_deterministic(run, tmp_path):
    a = evacuation_section(ReportContext(run))
    b = evacuation_section(ReportContext(_copy(run, tmp_path / "copy")))
    assert a is not None and a.encode() == b.encode()


def test_old_run_folders_still_render(run, tmp_path):
    # no hazard or contraflow tables: no hazard map, the filling map still there
    old = _copy(run, tmp_path / "old", ("evacuation_hazards.parquet", "evacuation_contraflow.parquet"))
    html = evacuation_section(ReportContext(old))
    assert html is not None and "Evacuation curve" in html
    assert _figure(html, "evac-hazard") is None and "Hazard by stage" not in html
    assert "no evacuation_hazards.parquet" in html and _figure(html, "evac-filling") is not None
    _maps_parse(html)
    # hazards without contraflow: the hazard map, no contraflow legend entry
    mid = _copy(run, tmp_path / "mid", ("evacuation_contraflow.parquet",))
    fig = _figure(evacuation_section(ReportContext(mid)), "evac-hazard")
    assert fig is not None and "contraflow links</span>" not in fig and "evac-contraflow" not in fig
    # shelters without coordinates (older still): placed at their OSM nodes
    sh = pq.read_table(old / "evacuation_shelters.parquet").drop_columns(["lon", "lat"])
    pq.write_table(sh, old / "evacuation_shelters.parquet")
    fig = _figure(evacuation_section(ReportContext(old)), "evac-filling")
    assert fig is not None and len(re.findall(r"<circle data-osmid=\"\d+\" data-capacity", fig)) == sh.num_rows
    # no link geometry: no maps, a note
    (old / "links.gpkg").unlink()
    html = evacuation_section(ReportContext(old))
    assert html is not None and "<figure" not in html and "no link geometry" in html


def test_full_report_has_the_maps(run, tmp_path):
    html = write_report(run, tmp_path / "r.html", strict=True).read_text(encoding="utf-8")
    assert 'data-map="evac-hazard"' in html and 'data-map="evac-filling"' in html
