"""The MaaS fleet in the report (pick-up / drop-off, idle and fleet-km maps), in the animation (fleet
vehicles as their own segment classes) and in the app (fleet vehicles on the map)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.domains.maas.report import maas_section
from twin.report import write_animation, write_report
from twin.report.animation import FLEET_EMPTY, FLEET_OCCUPIED, animation_data
from twin.report.core import ReportContext, ReportError
from twin.run import run_scenario
from twin.scenario import scenario_from_dict

MAAS_TABLES = ("maas_requests", "maas_vehicles", "maas_charging", "maas_fleet", "maas_links", "maas_idle")


def _scenario():
    return scenario_from_dict({
        "name": "maas_report", "seed": 3, "map": {"source": "helsinki"},
        "population": {"residents": 1500, "sample_share": 0.1},
        "modes": {"available": ["car", "walk", "bike", "maas"], "plugins": {"maas": {"asc": 1.0}}},
        "replanning": {"iterations": 1},
        "simulation": {"start_s": "05:00", "end_s": "27:00", "record_interval_s": 60},
        # the shift ends at 18:00: the evening's requests are rejected (markers of their own)
        "maas": {"operators": [{"name": "pool", "fleet_size": 10, "dispatcher": "pooling", "batch_s": 60,
                                "shift_end_s": "18:00"}]},
        "output": {"report": False},
    })


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return run_scenario(_scenario(), tmp_path_factory.mktemp("maas_report") / "run").out_dir


def _copy(run: Path, dst: Path, drop: tuple[str, ...]) -> Path:
    """A copy of the run folder without the files ``drop`` (as a run that did not write them)."""
    shutil.copytree(run, dst)
    for name in drop:
        (dst / name).unlink()
    _unlist(dst, drop)
    return dst


def _unlist(run: Path, names: tuple[str, ...]) -> None:
    man = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    man["files"] = [f for f in man.get("files", []) if f not in names]
    (run / "manifest.json").write_text(json.dumps(man), encoding="utf-8")


def _table(run: Path, name: str):
    return pq.read_table(run / f"{name}.parquet").to_pandas()


def _groups(html: str) -> dict[str, list[tuple[int, int, float, float]]]:
    """Marker groups of the section: kind -> [(osmid, count, centre x, centre y), ...]."""
    out = {}
    for kind, body in re.findall(r'<g class="maas-pts maas-(\w+)"[^>]*>(.*?)</g>', html, re.S):
        marks = []
        for m in re.finditer(r'<(circle|rect) data-osmid="(\d+)" data-count="(\d+)" (?:cx|x)="(-?\d+)" '
                             r'(?:cy|y)="(-?\d+)"(?: width="(\d+)")?', body):
            half = float(m.group(6)) / 2 if m.group(6) else 0.0  # a square's corner -> its centre
            marks.append((int(m.group(2)), int(m.group(3)), float(m.group(4)) + half, float(m.group(5)) + half))
        out[kind] = marks
    return out


def _expected(series) -> dict[int, int]:
    v = series.dropna().astype("int64")
    return {int(k): int(n) for k, n in v.value_counts().items()}


def test_section_draws_pickups_dropoffs_and_rejections_per_node(run):
    html = maas_section(ReportContext(run))
    assert html is not None
    rq = _table(run, "maas_requests")
    served = rq[~rq["rejected"] & rq["pickup_s"].notna()]
    rejected = rq[rq["rejected"]]
    assert len(served) > 20 and len(rejected) > 0  # the scenario has both
    g = _groups(html)
    for kind, exp in (("pickup", _expected(served["pickup_osmid"])), ("dropoff", _expected(served["dropoff_osmid"])),
                      ("rejected", _expected(rejected["pickup_osmid"]))):
        got = {k: n for k, n, _, _ in g[kind]}
        assert got == exp, kind  # one marker per distinct node, with its number of requests
        head = re.search(rf'<g class="maas-pts maas-{kind}" data-kind="{kind}" data-n="(\d+)" data-total="(\d+)"',
                         html)
        assert head and int(head.group(1)) == len(exp) and int(head.group(2)) == sum(exp.values())
    fig = re.search(r'<figure data-map="maas-stops"[^>]*>', html).group(0)
    assert f'data-pickup-nodes="{served["pickup_osmid"].nunique()}"' in fig
    assert f'data-rejected-nodes="{rejected["pickup_osmid"].nunique()}"' in fig
    # markers lie on the map, near the network's nodes (links' ends in the same map units)
    vb = [float(v) for v in re.search(r'<svg class="map"[^>]*viewBox="([^"]+)"', html).group(1).split()]
    xy = np.array([(x, y) for marks in g.values() for _, _, x, y in marks])
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= vb[2]).all() and (xy[:, 1] >= 0).all() and (xy[:, 1] <= vb[3]).all()
    ctx = ReportContext(run)
    geo = ctx.geometry
    ends = np.column_stack([np.r_[geo.x1, geo.x2], np.r_[geo.y1, geo.y2]]).astype(float)
    near = np.sqrt(((xy[:, None, :] - ends[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert near.max() < 30  # drawn ends are offset by 8 units to the right of the centre line


def test_section_draws_idle_positions_and_fleet_km(run):
    html = maas_section(ReportContext(run))
    idle = _table(run, "maas_idle")
    assert len(idle) > 0
    got = {k: n for k, n, _, _ in _groups(html)["idle"]}
    assert got == _expected(idle["osmid"])
    assert f'data-samples="{len(idle)}"' in html
    # fleet km: one coloured path per link the fleet drove, a tooltip table with the km
    links = _table(run, "maas_links")
    fig = re.search(r'<figure data-map="maas-km"[^>]*>.*?</figure>', html, re.S).group(0)
    drawn = {int(k) for k in re.findall(r'<path data-k="(\d+)"', fig)}
    assert drawn == set(links["link_id"].astype(int))
    src = re.search(r'<svg class="map"[^>]*data-src="([^"]+)"', fig).group(1)
    tab = json.loads(re.search(rf'<script type="application/json" id="{src}">(.*?)</script>', html, re.S).group(1))
    km = np.array(tab["v"]).reshape(-1, 2)
    length = _table(run, "links").groupby("link_id")["length_m"].first()
    exp = (length.reindex(links["link_id"]).to_numpy() / 1000.0).sum()
    assert km[:, 0].sum() == pytest.approx(exp, rel=1e-3)
    assert (km[:, 1] <= km[:, 0] + 1e-9).all() and km[:, 1].sum() < km[:, 0].sum()


def test_full_report_has_the_maps_and_stays_small(run, tmp_path):
    html = write_report(run, tmp_path / "r.html", strict=True).read_text(encoding="utf-8")
    for m in ("maas-stops", "maas-idle", "maas-km"):
        assert f'data-map="{m}"' in html
    assert len(html) < 3_000_000


def test_old_run_folders_still_render(run, tmp_path):
    old = _copy(run, tmp_path / "old", ("maas_links.parquet", "maas_idle.parquet"))
    html = maas_section(ReportContext(old))
    assert html is not None and 'data-map="maas-stops"' in html
    assert "no maas_links.parquet" in html and "no maas_idle.parquet" in html
    assert 'data-map="maas-km"' not in html and 'data-map="maas-idle"' not in html
    # requests without the node columns (older still), and no geometry at all
    rq = pq.read_table(old / "maas_requests.parquet").drop_columns(["pickup_osmid", "dropoff_osmid"])
    pq.write_table(rq, old / "maas_requests.parquet")
    html = maas_section(ReportContext(old))
    assert html is not None and "Fleet state over the day" in html and "<figure" not in html
    (old / "links.gpkg").unlink()
    html = maas_section(ReportContext(old))
    assert html is not None and "no link geometry" in html
    # no fleet at all: no section, and the report is still written
    none = _copy(run, tmp_path / "none", tuple(f"{t}.parquet" for t in MAAS_TABLES))
    assert maas_section(ReportContext(none)) is None
    assert "maas-pts" not in write_report(none, tmp_path / "n.html").read_text(encoding="utf-8")


def _anim(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="anim">(.*?)</script>', html, re.S).group(1))


def test_animation_draws_fleet_segments(run, tmp_path):
    links = _table(run, "maas_links")
    hour = int(np.floor(links["enter_s"].median() / 3600))
    t0, t1 = hour * 3600.0, hour * 3600.0 + 3600.0
    w = links[(links["enter_s"] < t1) & (links["leave_s"] > t0)]
    assert len(w) > 10
    path = write_animation(run, tmp_path / "a.html", hour=hour, max_vehicles=3)
    d = _anim(path)
    seg = np.array(d["seg"]).reshape(-1, 4)
    fleet = seg[:, 3] >= FLEET_EMPTY
    assert d["nfleet"] == fleet.sum() == len(w)  # every fleet stay in the window; the car cap does not apply
    assert (seg[fleet, 3] == FLEET_OCCUPIED).sum() == (w["passengers"] > 0).sum()
    assert 0 < (w["passengers"] > 0).sum() < len(w)
    assert (np.diff(seg[:, 1]) >= 0).all()  # one sorted list: the page stops at the first segment not entered
    assert d["nveh"] == 3 and d["fleet"] == FLEET_EMPTY and len(d["colors"]) == FLEET_OCCUPIED + 1
    html = path.read_text(encoding="utf-8")
    assert "fleet:" in html and "with passengers" in html and "cars and fleet vehicles" in html
    # the rows are geometry rows of the links the fleet entered
    geo = ReportContext(run).geometry
    assert sorted(geo.link_id[seg[fleet, 0]].tolist()) == sorted(w["link_id"].astype(int).tolist())


def test_animation_without_fleet_or_without_events(run, tmp_path):
    links = _table(run, "maas_links")
    hour = int(np.floor(links["enter_s"].median() / 3600))
    full = animation_data(ReportContext(run), hour=hour, max_vehicles=None)
    seg = full["segments"].reshape(-1, 4)
    # a run without the fleet's links: the cars' segments as before, nothing else
    nofleet = _copy(run, tmp_path / "nofleet", ("maas_links.parquet",))
    d = _anim(write_animation(nofleet, tmp_path / "b.html", hour=hour, max_vehicles=None))
    cars = np.array(d["seg"]).reshape(-1, 4)
    assert d["nfleet"] == 0 and (cars[:, 3] < FLEET_EMPTY).all()
    assert np.array_equal(cars, seg[seg[:, 3] < FLEET_EMPTY])
    assert "fleet:" not in (tmp_path / "b.html").read_text(encoding="utf-8")
    # a run with the fleet's links but no events: the fleet alone
    noev = _copy(run, tmp_path / "noev", ("events.parquet",))
    p = write_animation(noev, tmp_path / "c.html", hour=hour)
    d = _anim(p)
    assert d["nveh"] == 0 and d["nfleet"] == d["nseg"] == int((seg[:, 3] >= FLEET_EMPTY).sum())
    assert "fleet vehicles" in p.read_text(encoding="utf-8")
    # neither: the error of a run without events
    (noev / "maas_links.parquet").unlink()
    _unlist(noev, ("maas_links.parquet",))
    with pytest.raises(ReportError, match="no events to animate"):
        write_animation(noev, tmp_path / "d.html", hour=hour)
    # a window without any vehicle names the busy hours
    with pytest.raises(ReportError, match="no car or fleet vehicle"):
        write_animation(run, tmp_path / "e.html", hour=2)


def test_app_draws_fleet_vehicles():
    pytest.importorskip("matplotlib")
    from twin import app

    m = app.AppModel(residents=300, maas_fleet=6, run_until_h=7.5)
    assert app.MODEL_PARAMS["maas_fleet"]["value"] == 0
    pos, occ = app.fleet_positions(m)
    net = m.network
    assert pos.shape == (6, 2) and occ.shape == (6,)
    assert ((pos[:, 0] >= net.node_lon.min() - 1e-3) & (pos[:, 0] <= net.node_lon.max() + 1e-3)).all()
    m.domain("maas").vehicles[0].onboard = 1  # one with a passenger: drawn in its own colour
    assert app.fleet_positions(m)[1].sum() == 1 + occ[1:].sum()
    labels = [t.get_text() for t in app.draw_city_map(m).axes[0].get_legend().get_texts()]
    assert any(x.startswith("fleet, empty (") for x in labels)
    assert any(x.startswith("fleet, with passengers (") for x in labels)
    k = app.kpi_panel(m)
    assert k["fleet_vehicles"] == 6 and "mode_share_maas" in k
    assert "MaaS fleet" in app._kpi_markdown(m)
    base = app.AppModel(residents=300, run_until_h=0.0)
    assert app.fleet_positions(base)[0].shape == (0, 2) and app.kpi_panel(base)["fleet_vehicles"] == 0
