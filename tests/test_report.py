"""HTML reports: self-contained, one SVG path per link, every KPI, comparison, animation, plug-ins."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.report import (
    read_gpkg_lines,
    register_section,
    registered_sections,
    unregister_section,
    write_animation,
    write_compare_report,
    write_report,
)
from twin.run import run_scenario
from twin.scenario import scenario_from_dict


def _scenario(name: str, residents: int):
    return scenario_from_dict({"name": name, "population": {"residents": residents},
                               "simulation": {"start_s": "05:00", "end_s": "27:00", "record_interval_s": 600}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("report")
    a = run_scenario(_scenario("base", 250), base / "base").out_dir
    b = run_scenario(_scenario("r", 300), base / "run").out_dir
    return a, b


@pytest.fixture(scope="module")
def report(runs) -> tuple[Path, str]:
    path = write_report(runs[1], strict=True)
    return path, path.read_text(encoding="utf-8")


def _maps(html: str) -> list[str]:
    return re.findall(r'<svg class="map".*?</svg>', html, re.S)


def _gpkg_link_ids(run: Path) -> list[int]:
    con = sqlite3.connect(run / "links.gpkg")
    try:
        return [r[0] for r in con.execute("select link_id from links where geom is not null order by fid")]
    finally:
        con.close()


def test_report_is_one_self_contained_file(report, runs):
    path, html = report
    assert path == runs[1] / "report.html"
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", html)
    assert "@import" not in html and "url(" not in html
    assert "<style>" in html and "<script>" in html


def test_every_map_draws_one_path_per_link(report, runs):
    _, html = report
    ids = _gpkg_link_ids(runs[1])
    assert len(ids) > 100
    maps = _maps(html)
    assert len(maps) >= 2  # volume, speed ratio (and delay when there is any)
    for m in maps:
        drawn = [int(k) for k in re.findall(r'<path data-k="(\d+)"', m)]
        assert sorted(drawn) == sorted(ids)
        assert len(re.findall(r"<path ", m)) == len(ids)  # nothing in a background path


def test_tooltip_tables_are_valid_json(report):
    _, html = report
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S)
    assert blocks
    for eid, text in blocks:
        d = json.loads(text)
        assert len(d["v"]) == len(d["k"]) * len(d["f"])
        assert f'data-src="{eid}"' in html


def test_report_lists_every_kpi_and_the_header(report, runs):
    _, html = report
    kpis = json.loads((runs[1] / "kpis.json").read_text())
    for key in kpis:
        assert f'data-kpi="{key}"' in html, key
    assert "<h1>r</h1>" in html
    assert "seed" in html and "wall time" in html and "300" in html
    # charts: en route over the day, speed by hour, departures, iterations
    assert html.count('<svg class="chart"') >= 5


def test_comparison_only_with_baseline_and_right_difference(report, runs):
    a, b = runs
    _, html = report
    assert 'data-section="comparison"' not in html
    out = write_compare_report(a, b, b / "cmp.html")
    cmp_html = out.read_text(encoding="utf-8")
    assert 'data-section="comparison"' in cmp_html
    ka, kb = (json.loads((p / "kpis.json").read_text()) for p in (a, b))
    row = re.search(r'<tr data-kpi="residents" data-a="([^"]+)" data-b="([^"]+)" data-diff="([^"]+)"', cmp_html)
    assert row is not None
    assert (int(row.group(1)), int(row.group(2)), int(row.group(3))) == (250, 300, 50)
    row = re.search(r'<tr data-kpi="vkt_km" data-a="[^"]+" data-b="[^"]+" data-diff="([^"]+)"', cmp_html)
    assert float(row.group(1)) == pytest.approx(kb["vkt_km"] - ka["vkt_km"])
    assert "+50</td>" in cmp_html and "+20.0 %" in cmp_html  # residents: 250 -> 300
    # the difference map: one more map, its links coloured by the volume difference
    assert len(_maps(cmp_html)) == len(_maps(html)) + 1


def _link_stays(events: Path):
    """Independent pairing (pandas) of enter_link/leave_link events: one row per link traversal."""
    ev = pq.read_table(events, columns=["t_s", "type", "trip_id", "link_id"]).to_pandas()
    ev["type"] = ev["type"].astype(str)
    key = ["trip_id", "link_id"]
    en, lv = (ev[ev["type"] == t].sort_values([*key, "t_s"], kind="stable") for t in ("enter_link", "leave_link"))
    en = en.assign(k=en.groupby(key).cumcount())
    lv = lv.assign(k=lv.groupby(key).cumcount())
    m = en.merge(lv, on=[*key, "k"], how="left", suffixes=("_in", "_out"))
    m["t_s_out"] = m["t_s_out"].fillna(np.inf)
    assert (m["t_s_out"] >= m["t_s_in"]).all()
    return m


def _anim_data(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<svg" in html and 'id="play"' in html and 'type="range"' in html
    return json.loads(re.search(r'<script type="application/json" id="anim">(.*?)</script>', html, re.S).group(1))


def test_animation_embeds_one_segment_per_link_traversal(runs, tmp_path):
    run = runs[1]
    stays = _link_stays(run / "events.parquet")
    # start the window while a car is on a long link, so that stays across the start count too
    long = stays[(stays["t_s_in"] > 7 * 3600) & (stays["t_s_out"] - stays["t_s_in"] > 20)].iloc[0]
    t0 = float(np.floor(long["t_s_in"] + 10))
    w = stays[(stays["t_s_in"] < t0 + 3600) & (stays["t_s_out"] > t0)]
    n_exp, veh_exp = len(w), w["trip_id"].nunique()
    assert n_exp > 10 and (w["t_s_in"] < t0).sum() >= 1
    d = _anim_data(write_animation(run, tmp_path / "a.html", hour=t0 / 3600, max_vehicles=None))
    seg = np.array(d["seg"]).reshape(-1, 4)
    assert d["nseg"] == len(seg) == n_exp
    assert (np.diff(seg[:, 1]) >= 0).all()  # sorted by entry time
    assert (seg[:, 2] >= seg[:, 1]).all() and (seg[:, 1] < 36000).all() and (seg[:, 2] > 0).all()
    assert seg[:, 0].max() < len(d["links"]) // 4
    # capped: at most 3 cars
    d3 = _anim_data(write_animation(run, tmp_path / "b.html", hour=t0 / 3600, max_vehicles=3))
    assert veh_exp > 3 and 0 < d3["nseg"] < n_exp and d3["nveh"] == 3


def test_custom_section_is_added_and_removed(runs, tmp_path):
    marker = "Evacuation zones: 42"

    def evac(ctx):
        assert ctx.kpis["residents"] == 300
        return f"<p>{marker}</p>"

    register_section("evacuation_test", order=55, fn=evac, title="Evacuation")
    try:
        assert "evacuation_test" in [s.name for s in registered_sections()]
        html = write_report(runs[1], tmp_path / "x.html", strict=True).read_text()
        assert marker in html and 'href="#sec-evacuation_test"' in html
        assert html.index('data-section="maps"') < html.index(marker) < html.index('data-section="run"')
    finally:
        assert unregister_section("evacuation_test") is not None
    assert marker not in write_report(runs[1], tmp_path / "y.html", strict=True).read_text()
    assert unregister_section("evacuation_test") is None


def test_section_subset_errors_and_broken_plugins(runs, tmp_path):
    html = write_report(runs[1], tmp_path / "s.html", sections=["header", "kpis"]).read_text()
    assert 'data-section="kpis"' in html and "<svg class=\"map\"" not in html
    with pytest.raises(ValueError, match="unknown report section"):
        write_report(runs[1], tmp_path / "s.html", sections=["nope"])

    def broken(ctx):
        raise RuntimeError("boom")

    register_section("broken_test", order=60, fn=broken, title="Broken")
    try:
        html = write_report(runs[1], tmp_path / "b.html").read_text()
        assert "section failed: RuntimeError: boom" in html and 'data-section="kpis"' in html
        with pytest.raises(RuntimeError, match="boom"):
            write_report(runs[1], tmp_path / "b.html", strict=True)
    finally:
        unregister_section("broken_test")


def test_gpkg_reader_and_in_memory_network_agree(runs, tmp_path):
    from twin.model import load_network

    run = runs[1]
    net = load_network(_scenario("r", 300))
    cols, lines = read_gpkg_lines(run / "links.gpkg")
    assert lines is not None  # the street shapes, not straight chords
    np.testing.assert_array_equal(lines[0], net.link_geom_indptr)
    np.testing.assert_array_equal(lines[1], net.link_geom_lon)
    np.testing.assert_array_equal(lines[2], net.link_geom_lat)
    lid = cols["link_id"].astype(int)
    np.testing.assert_array_equal(cols["lon1"], net.node_lon[net.link_tail[lid]])
    np.testing.assert_array_equal(cols["lat2"], net.node_lat[net.link_head[lid]])
    a = write_report(run, tmp_path / "a.html", strict=True).read_text()
    b = write_report(run, tmp_path / "b.html", network=net, strict=True).read_text()
    assert _maps(a) == _maps(b)


def test_report_is_deterministic(runs, tmp_path):
    a = write_report(runs[1], tmp_path / "1.html").read_bytes()
    b = write_report(runs[1], tmp_path / "2.html").read_bytes()
    assert a == b


def test_errors_name_the_problem(tmp_path):
    from twin._errors import TwinError

    with pytest.raises(TwinError, match=r"not a run folder .no such folder."):
        write_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TwinError, match="not a run folder"):
        write_animation(tmp_path / "empty")


def test_big_networks_draw_the_busiest_links_and_a_background(runs, tmp_path):
    html = write_report(runs[1], tmp_path / "cap.html", max_links=50, strict=True).read_text()
    vol_map = _maps(html)[0]
    assert len(re.findall(r'<path data-k="', vol_map)) == 50
    assert vol_map.count('<path class="bg"') == 1
    assert "most relevant of each map are drawn on their own" in html


def test_report_with_trips_that_never_departed(tmp_path):
    """Regression: a day cut short by end_s leaves trips without departure (NaN) in trips.parquet."""
    from twin.report import write_report
    from twin.run import run_scenario
    from twin.scenario import scenario_from_dict

    sc = scenario_from_dict({"name": "short", "population": {"residents": 300},
                             "simulation": {"start_s": "05:00", "end_s": "09:00", "record_interval_s": 600},
                             "output": {"report": False}})
    res = run_scenario(sc, tmp_path / "run")
    html = write_report(res.out_dir, strict=True).read_text()
    assert "Departures per hour by mode" in html
