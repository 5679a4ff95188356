"""Readable policy results: the report names and draws each policy, comparisons colour KPI changes
by each KPI's declared direction and share their maps' class breaks, `twin compare` uses the
report's names and units."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.domains.mobility.policies import PolicySet
from twin.model import load_network
from twin.report import register_kpi, write_compare_report, write_report
from twin.report import svg as S
from twin.report.core import ReportContext, kpi_better, kpi_verdict
from twin.run import run_scenario
from twin.scenario import scenario_from_dict

CORDON = {"type": "road_pricing", "name": "centre cordon", "kind": "cordon", "bbox": [24.940, 60.166, 24.949, 60.174],
          "price": 5.0, "from_s": "07:00", "to_s": "19:00"}
CLOSURE = {"type": "link_change", "name": "bridge closed", "bbox": [24.940, 60.166, 24.949, 60.174], "closed": True,
           "from_s": "07:00", "to_s": "10:00"}
LANE_CUT = {"type": "link_change", "name": "lane cut", "bbox": [24.936, 60.165, 24.940, 60.170], "capacity_factor": 0.5}


def _sc(name: str, residents: int = 300, policies=()):
    return scenario_from_dict({"name": name, "seed": 5, "population": {"residents": residents},
                               "simulation": {"start_s": "05:00", "end_s": "27:00", "record_interval_s": 600},
                               "policies": list(policies)})


@pytest.fixture(scope="module")
def net():
    return load_network(_sc("n"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, net) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("polreport")
    return {
        "base": run_scenario(_sc("base"), root / "base", network=net).out_dir,
        "small": run_scenario(_sc("small", 120), root / "small", network=net).out_dir,
        "cordon": run_scenario(_sc("cordon", policies=[CORDON]), root / "cordon", network=net).out_dir,
        "closure": run_scenario(_sc("closure", policies=[CLOSURE, LANE_CUT]), root / "closure", network=net).out_dir,
    }


def _maps(html: str) -> list[str]:
    return re.findall(r'<svg class="map".*?</svg>', html, re.S)


def _section(html: str, name: str) -> str:
    m = re.search(rf'<section id="sec-{name}".*?</section>', html, re.S)
    assert m is not None, name
    return m.group(0)


def _mask(net, policy: dict) -> set[int]:
    """The links a policy selects, from the network itself (not from the run's outputs)."""
    w, s, e, n = policy["bbox"]
    inside = (net.node_lon >= w) & (net.node_lon <= e) & (net.node_lat >= s) & (net.node_lat <= n)
    if policy.get("kind") == "cordon":
        sel = ~inside[net.link_tail] & inside[net.link_head]
    else:
        sel = inside[net.link_tail] & inside[net.link_head]
    return set(np.flatnonzero(sel).tolist())


# ------------------------------------------------------------------------------------ the policies

def test_network_json_lists_what_where_and_which_links(runs, net):
    pols = json.loads((runs["closure"] / "network.json").read_text())["policies"]
    assert [p["name"] for p in pols] == ["bridge closed", "lane cut"]
    closed, cut = pols
    assert closed["closed"] is True and closed["capacity_factor"] == 1.0 and closed["bbox"] == CLOSURE["bbox"]
    assert (closed["from_s"], closed["to_s"]) == (7 * 3600, 10 * 3600)
    assert cut["closed"] is False and cut["capacity_factor"] == 0.5
    assert set(closed["link_ids"]) == _mask(net, CLOSURE) and closed["links"] == len(closed["link_ids"]) > 0
    assert set(cut["link_ids"]) == _mask(net, LANE_CUT)
    (pr,) = json.loads((runs["cordon"] / "network.json").read_text())["policies"]
    assert pr["kind"] == "cordon" and pr["price"] == 5.0 and set(pr["link_ids"]) == _mask(net, CORDON)
    ps = PolicySet(_sc("x", policies=[CORDON]).policies, net)
    assert pr["link_ids"] == np.flatnonzero(ps.policies[0].mask).tolist()


def test_report_names_each_policy_where_and_when(runs):
    html = (runs["cordon"] / "report.html").read_text(encoding="utf-8")  # written by twin run
    sec = _section(html, "policies")
    row = re.search(r'<tr data-policy="0" data-type="road_pricing">(.*?)</tr>', sec, re.S).group(1)
    n = json.loads((runs["cordon"] / "network.json").read_text())["policies"][0]["links"]
    for text in ("centre cordon", "road pricing (cordon)", f"{n} links entering area",
                 "[24.9400, 60.1660, 24.9490, 60.1740] (W, S, E, N)", "07:00–19:00", "charge 5.00 per entry"):
        assert text in row, text
    assert "centre cordon (07:00–19:00)" in _section(html, "header")  # not just "policies 1"
    html = write_report(runs["closure"], runs["closure"] / "r.html", strict=True).read_text(encoding="utf-8")
    sec = _section(html, "policies")
    closed = re.search(r'<tr data-policy="0" data-type="link_change">(.*?)</tr>', sec, re.S).group(1)
    cut = re.search(r'<tr data-policy="1" data-type="link_change">(.*?)</tr>', sec, re.S).group(1)
    assert "bridge closed" in closed and "07:00–10:00" in closed and ">closed<" in closed
    assert "lane cut" in cut and "all day" in cut and "capacity ×0.5" in cut


def test_maps_draw_the_cordon_and_the_closed_links(runs, net):
    html = (runs["cordon"] / "report.html").read_text(encoding="utf-8")
    maps = _maps(html)
    assert len(maps) >= 2
    g = ReportContext(runs["cordon"]).geometry
    x, y = g.project(np.array([CORDON["bbox"][0], CORDON["bbox"][2]]), np.array([CORDON["bbox"][3], CORDON["bbox"][1]]))
    for m in maps:  # every map: the area outline and a marker on each charged entry link
        rect = re.search(r'<g class="pol pol-area" data-policy="0"[^>]*>.*?<rect x="(-?\d+)" y="(-?\d+)" '
                         r'width="(\d+)" height="(\d+)"', m, re.S)
        assert rect is not None
        assert [int(v) for v in rect.groups()] == pytest.approx([x[0], y[0], x[1] - x[0], y[1] - y[0]], abs=1)
        priced = re.search(r'<g class="pol pol-priced" data-policy="0".*?</g>', m, re.S).group(0)
        assert {int(k) for k in re.findall(r'<circle data-pk="(\d+)"', priced)} == _mask(net, CORDON)
    assert "centre cordon: cordon, charge 5.00 per entry, 07:00–19:00" in html  # the map legend
    html = write_report(runs["closure"], runs["closure"] / "r.html", strict=True).read_text(encoding="utf-8")
    for m in _maps(html):
        closed = re.search(r'<g class="pol pol-closed" data-policy="0".*?</g>', m, re.S).group(0)
        assert {int(k) for k in re.findall(r'<path data-pk="(\d+)"', closed)} == _mask(net, CLOSURE)
        changed = re.search(r'<g class="pol pol-changed" data-policy="1".*?</g>', m, re.S).group(0)
        assert {int(k) for k in re.findall(r'<path data-pk="(\d+)"', changed)} == _mask(net, LANE_CUT)
        assert 'pointer-events="none"' in closed  # hovering still reaches the link underneath
    assert 'class="sw pol-sw" data-kind="closed"' in html and "bridge closed: closed, 07:00–10:00" in html


# --------------------------------------------------------------------------------------- comparison

def _fake_pair(runs, tmp_path: Path, a: dict, b: dict) -> tuple[Path, Path]:
    """Two copies of a real run folder whose kpis.json are changed to the given values."""
    out = []
    for name, over in (("A", a), ("B", b)):
        d = tmp_path / name
        shutil.copytree(runs["base"], d)
        k = json.loads((d / "kpis.json").read_text())
        k.update(over)
        (d / "kpis.json").write_text(json.dumps(k))
        out.append(d)
    return out[0], out[1]


def test_comparison_colours_follow_each_kpis_direction(runs, tmp_path):
    assert (kpi_better("delay_mean_s"), kpi_better("completion_rate"), kpi_better("mode_share_walk")) == (
        "lower", "higher", None)
    a, b = _fake_pair(runs, tmp_path,
                      {"delay_mean_s": 60.0, "completion_rate": 1.0, "mean_speed_kmh": 30.0, "vkt_km": 100.0,
                       "mode_share_walk": 0.30, "travel_time_mean_s": 300.0},
                      {"delay_mean_s": 30.0, "completion_rate": 0.9, "mean_speed_kmh": 35.0, "vkt_km": 120.0,
                       "mode_share_walk": 0.40, "travel_time_mean_s": 300.0})
    html = write_compare_report(a, b, tmp_path / "c.html", strict=True).read_text(encoding="utf-8")
    sec = _section(html, "comparison")
    expect = {"delay_mean_s": "better",  # went down, lower is better
              "mean_speed_kmh": "better",  # went up, higher is better
              "completion_rate": "worse",  # went down, higher is better
              "vkt_km": "worse",  # went up, lower is better
              "mode_share_walk": "neutral",  # no direction: a higher walk share is not shown red
              "travel_time_mean_s": "neutral"}  # unchanged
    colours = {"better": "#15803d", "worse": "#b91c1c", "neutral": "#6b7280"}
    for key, verdict in expect.items():
        row = re.search(rf'<tr data-kpi="{key}".*?</tr>', sec, re.S).group(0)
        cells = re.findall(r'<td class="(\w+)" data-verdict="(\w+)" style="color:(#\w+)"', row)
        assert cells == [(verdict, verdict, colours[verdict])] * 2, key


def test_register_kpi_declares_a_direction():
    register_kpi("evacuated_share_test", "evacuated", "share", better="higher")
    assert kpi_verdict("evacuated_share_test", 0.1) == "better" and kpi_verdict("evacuated_share_test", -0.1) == "worse"
    assert kpi_verdict("evacuated_share_test", 0.0) == "neutral" and kpi_verdict("some_unknown_kpi", 5.0) == "neutral"
    with pytest.raises(ValueError, match="better must be"):
        register_kpi("bad_test", "bad", "num", better="up")


def _daily_volume(run: Path) -> np.ndarray:
    t = pq.read_table(run / "links.parquet", columns=["link_id", "volume_veh"])
    n = json.loads((run / "network.json").read_text())["links"]
    return np.bincount(t["link_id"].to_numpy(), weights=t["volume_veh"].to_numpy(), minlength=n)


def test_comparison_maps_share_class_breaks(runs):
    a, b = runs["small"], runs["base"]
    va, vb = _daily_volume(a), _daily_volume(b)
    both = np.concatenate([va[va > 0], vb[vb > 0]])
    shared, b_only = S.quantile_breaks(both), S.quantile_breaks(vb[vb > 0])
    assert shared != b_only  # the two runs differ enough for shared breaks to matter
    html = write_compare_report(a, b, b / "cmp_small.html", strict=True).read_text(encoding="utf-8")
    fig = re.search(r'<figure data-map="volume" data-breaks="([^"]*)">(.*?)</figure>', html, re.S)
    assert fig is not None
    assert json.loads(fig.group(1).replace("&quot;", '"')) == pytest.approx(shared)
    # the map has both runs, A and B, as layers in one palette (a switch shows one)
    svg = fig.group(2)
    assert 'class="ab-a"' in svg and 'class="ab-b"' in svg and "A (baseline)" in svg
    pal = [S.GREY, *S.SEQ_VOLUME[-(len(shared) + 1):]]
    for layer, vol in (("run-a", va), ("run-b", vb)):
        part = re.search(rf'<g class="{layer}">(.*?)</g></g>', svg, re.S).group(1)
        for colour, paths in re.findall(r'<g stroke="(#\w+)">(.*?)</g>', part, re.S):
            for k in re.findall(r'data-k="(\d+)"', paths):
                v = vol[int(k)] if int(k) < vol.size else 0.0
                want = 0 if v <= 0 else int(S.classify(np.array([v]), shared)[0]) + 1
                assert pal.index(colour) == want, (layer, k, v)
    # and the plain report of B alone keeps its own breaks
    plain = write_report(b, b / "plain.html", strict=True).read_text(encoding="utf-8")
    own = re.search(r'<figure data-map="volume" data-breaks="([^"]*)">', plain).group(1)
    assert json.loads(own.replace("&quot;", '"')) == pytest.approx(b_only)


# -------------------------------------------------------------------------------------- twin compare

def test_compare_command_uses_report_names_and_units_and_names_a_and_b(runs):
    a, b = runs["base"], runs["cordon"]
    res = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    out = res.output
    title = out[:out.index("┏")]
    assert "A (baseline):" in title and "B:" in title and title.index(a.name) < title.index(b.name)
    for label in ("mean car delay", "mode share car", "tolls paid", "last arrival"):
        assert label in out, label
    for key in ("mode_share_car", "delay_mean_s", "last_arrival_s", "travel_time_mean_s"):
        assert key not in out, key
    assert re.search(r"mode share car\s*│\s*\d+\.\d %", out)  # shares in %, not 0.2037
    assert re.search(r"last arrival\s*│\s*\d\d:\d\d", out)  # a clock time, not 8.323e+04
    assert "e+0" not in out
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    doc = json.loads(res.output)
    assert set(doc) == {"a", "b", "kpis"} and set(doc["kpis"][0]) == {"kpi", "a", "b", "diff", "rel"}
    assert "delay_mean_s" in {r["kpi"] for r in doc["kpis"]}


# ------------------------------------------------------------------------------------- small things

def test_mode_share_bar_labels_small_segments():
    svg = S.stacked_hbar([("car", 0.90, "#f00"), ("walk", 0.095, "#0f0"), ("taxi", 0.005, "#00f")])
    legend = re.search(r'<g class="bar-legend">(.*?)</g>', svg, re.S).group(1)
    assert re.findall(r'<text class="lg" data-part="(\w+)"[^>]*>([^<]*)</text>', legend) == [
        ("car", "car 90.0 %"), ("walk", "walk 9.5 %"), ("taxi", "taxi 0.5 %")]


def test_run_details_commit_does_not_run_into_the_python_version(runs, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(runs["base"], d)
    man = json.loads((d / "manifest.json").read_text())
    man["git_commit"] = "0123456789abcdef0123456789abcdef01234567"
    (d / "manifest.json").write_text(json.dumps(man))
    sec = _section(write_report(d, strict=True).read_text(encoding="utf-8"), "run")
    dd = re.search(r"<dt>git_commit</dt><dd([^>]*)>([^<]*)</dd>", sec)
    assert dd.group(2) == "0123456789ab" and "overflow-wrap:anywhere" in dd.group(1)
