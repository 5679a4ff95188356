"""Regression tests for small output defects: no negative delays from round-off, trips whose origin
is their destination, one resident id in every table, what ``route_links`` means per mode, and a
report for runs without car traffic or optional outputs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

import twin.model
from twin._tables import write_table
from twin.domains.mobility.domain import MobilityDomain
from twin.model import CityModel, load_network
from twin.run import run_scenario
from twin.scenario import scenario_from_dict

FORCED = 40  # workers whose workplace is forced onto their home node


def _scenario(**over):
    base = {
        "name": "defects",
        "seed": 11,
        "population": {"residents": 400},
        "modes": {"available": ["car", "walk", "bike", "taxi"], "plugins": {"taxi": {"asc": 0.5}}},
        "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600},
    }
    for k, v in over.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and k in base else v
    return scenario_from_dict(base)


@pytest.fixture(scope="module")
def nets():
    sc = _scenario()
    return load_network(sc), load_network(sc, "walk"), load_network(sc, "bike")


@pytest.fixture(scope="module")
def day(nets, tmp_path_factory):
    """One simulated day in which FORCED workers (half of them drivers) work at their home node,
    so their trips to work and back start and end at one node; the trips and events tables as
    ``twin run`` writes them."""
    orig = twin.model.synthesize_population

    def population(*a, **kw):
        pop = orig(*a, **kw)
        w = np.flatnonzero(pop.employed)[:FORCED]
        pop.work_node[w] = pop.home_node[w]
        pop.can_drive[w[::2]] = True
        return pop

    mp = pytest.MonkeyPatch()
    mp.setattr(twin.model, "synthesize_population", population)
    try:
        m = CityModel(_scenario(), network=nets[0], walk_network=nets[1], bike_network=nets[2]).run()
    finally:
        mp.undo()
    out = tmp_path_factory.mktemp("defects")
    write_table(m.trips_columns(), out / "trips.parquet")
    write_table(m.events_columns(), out / "events.parquet")
    trips = pq.read_table(out / "trips.parquet").to_pandas()
    events = pq.read_table(out / "events.parquet").to_pandas()
    return m, trips, events


# --------------------------------------------------------------------------- 1. delays >= 0

def test_delays_are_never_negative_by_round_off(day):
    m, trips, _ = day
    done = trips[trips["completed"]]
    assert len(done) == len(trips)
    # uncongested trips are exactly free flow: their delay is 0, not -1e-11
    assert (done["delay_s"] >= 0).all(), done.loc[done["delay_s"] < 0, ["mode", "delay_s"]]
    assert (done["delay_s"] == 0).sum() > len(done) // 2
    assert not np.signbit(done["delay_s"].to_numpy()).any()  # no -0.0 either
    k = m.kpis()
    assert k["delay_mean_s"] >= 0 and not math.copysign(1.0, k["delay_mean_s"]) < 0
    assert k["delay_total_veh_h"] >= 0 and not math.copysign(1.0, k["delay_total_veh_h"]) < 0
    it = m.iterations_columns()
    assert np.all(it["delay_mean_s"] >= 0) and not np.signbit(it["delay_mean_s"]).any()


def test_only_round_off_is_clamped():
    free = np.array([100.0, 100.0, 0.0, 5000.0, np.nan, 100.0])
    tt = np.array([100.0 - 1e-9, 99.0, -1e-12, 5000.0 - 1e-3, 10.0, np.nan])
    d = MobilityDomain._delay_s(tt, free)
    assert d[0] == 0.0 and d[2] == 0.0 and d[3] == 0.0  # round-off
    assert d[1] == pytest.approx(-1.0)  # a real difference is kept (it would be a bug to hide)
    assert np.isnan(d[4]) and np.isnan(d[5])


# ------------------------------------------------------- 2. origin == destination (one node)

def test_trips_to_the_same_node_complete_at_once_in_their_mode(day):
    m, trips, events = day
    same = trips["origin_osmid"] == trips["destination_osmid"]
    np.testing.assert_array_equal(same.to_numpy(), m.trip_same_node)
    s = trips[same]
    assert len(s) >= FORCED  # to work and back home
    assert s["completed"].all()
    assert (s["arrive_s"] == s["depart_s"]).all()
    for c in ("travel_time_s", "route_length_m", "freeflow_time_s", "delay_s", "toll"):
        assert (s[c] == 0).all(), c
    assert (s["route_links"] == 0).all()
    # a car tour stays a car tour (it used to be switched to walking); taxis do not wait
    modes = set(s["mode"].astype(str))
    assert "car" in modes and modes - {"car"}, modes
    tour = m.trips.tour
    for i in s.index[s["mode"] == "car"]:
        assert (m.trip_mode[tour == tour[i]] == m.trip_mode[i]).all()
    # no car on the network: not in the kernel, no link events; depart and arrive at one time
    assert not np.isin(s.index.to_numpy(), m.car_trips).any()
    e = events[events["trip_id"].isin(s["trip_id"])]
    assert set(e["type"].astype(str)) == {"depart", "arrive"}
    assert len(e) == 2 * len(s)
    ts = e.groupby("trip_id")["t_s"].agg(["min", "max"])
    np.testing.assert_array_equal(ts["min"].to_numpy(), ts["max"].to_numpy())
    np.testing.assert_array_equal(ts["min"].to_numpy(), s.set_index("trip_id").loc[ts.index, "depart_s"].to_numpy())
    assert m.sim.link_volume.sum() == m.car_route_links.size
    # they count as completed trips; the resident's day goes on after them
    k = m.kpis()
    assert k["trips_completed"] == k["trips_total"] == len(trips)
    nxt = s.index.to_numpy() + 1
    nxt = nxt[(nxt < len(trips))]
    nxt = nxt[trips["resident_id"].to_numpy()[nxt] == trips["resident_id"].to_numpy()[nxt - 1]]
    assert nxt.size
    assert (trips["depart_s"].to_numpy()[nxt] >= trips["arrive_s"].to_numpy()[nxt - 1] + 600 - 1e-9).all()


# ------------------------------------------------------------------ 3. one resident id

def test_one_resident_id_in_every_table(day):
    m, trips, events = day
    for cols in (trips.columns, events.columns):
        assert "resident_id" in cols and "agent_id" not in cols and "person" not in cols
    np.testing.assert_array_equal(trips["resident_id"].to_numpy(), m.trips.person)
    assert trips["resident_id"].min() == 0 and trips["resident_id"].max() < m.pop.n
    # events name the resident of their trip
    by_trip = trips.set_index("trip_id")["resident_id"]
    np.testing.assert_array_equal(events["resident_id"].to_numpy(), by_trip.loc[events["trip_id"]].to_numpy())
    # the Mesa agent of a table id is that resident
    for rid in (0, int(trips["resident_id"].iloc[len(trips) // 2]), m.pop.n - 1):
        a = m.resident(rid)
        assert a.resident_id == rid and a.row == rid
        np.testing.assert_array_equal(a.trip_ids, trips.index[trips["resident_id"] == rid].to_numpy())
    assert sorted(a.resident_id for a in m.residents) == list(range(m.pop.n))


def test_lazy_residents_have_the_table_id(nets):
    sc = _scenario(population={"residents": 50, "mesa_agents": "lazy"})
    m = CityModel(sc, network=nets[0], walk_network=nets[1], bike_network=nets[2])
    a = m.resident(7)
    assert a.resident_id == 7
    assert "resident_id=7" in repr(a)
    np.testing.assert_array_equal(m.trips_columns()["resident_id"], m.trips.person)


# -------------------------------------------------------------- 4. route_links per mode

def test_route_links_counts_car_links_and_is_zero_for_other_modes(day):
    m, trips, events = day
    doc = MobilityDomain.trips_columns.__doc__
    assert "route_links" in doc and "walk" in doc and "0 for walk" in doc
    car = trips[(trips["mode"] == "car") & (trips["origin_osmid"] != trips["destination_osmid"])]
    enters = events[events["type"] == "enter_link"].groupby("trip_id").size()
    np.testing.assert_array_equal(car["route_links"].to_numpy(),
                                  enters.reindex(car["trip_id"], fill_value=0).to_numpy())
    assert (car["route_links"] > 0).all()
    other = trips[trips["mode"] != "car"]
    assert (other["route_links"] == 0).all()
    assert not events["trip_id"][events["type"] == "enter_link"].isin(other["trip_id"]).any()
    # walk and bike lengths come from their own networks
    for mode, dist in (("walk", m.trip_walk_m), ("bike", m.trip_bike_m)):
        rows = trips.index[trips["mode"] == mode]
        assert rows.size
        np.testing.assert_array_equal(trips.loc[rows, "route_length_m"].to_numpy(), dist[rows])


# ------------------------------------------------------- 5. reports without car traffic

@pytest.mark.parametrize("optional", [True, False], ids=["all-outputs", "no-optional-outputs"])
def test_report_of_a_run_without_cars(optional, nets, tmp_path, caplog):
    from twin.report import write_report

    out = {} if optional else {"events": False, "links": False, "geopackage": False, "timeseries": False}
    sc = _scenario(name="nocar", population={"residents": 200},
                   modes={"available": ["walk", "bike"], "plugins": {}}, output=out)
    with caplog.at_level(logging.WARNING, logger="twin"):
        r = run_scenario(sc, tmp_path / "run", network=nets[0], walk_network=nets[1], bike_network=nets[2])
        assert r.kpis["car_trips"] == 0
        pages = [(r.out_dir / "report.html").read_text(encoding="utf-8")]  # written by the run (network given)
        pages.append(write_report(r.out_dir, tmp_path / "again.html").read_text(encoding="utf-8"))  # `twin report`
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING], caplog.text
    for page in pages:
        assert 'class="err"' not in page and "section failed" not in page
        for sec in ("header", "kpis", "maps", "day", "iterations", "run"):
            assert f'data-section="{sec}"' in page, sec
        assert "no car trips in this run" in page
        assert "no car delay or car travel time per iteration" in page
        if not optional:
            assert "not written in this run" in page
            for f in ("events.parquet", "links.parquet", "links.gpkg", "timeseries.parquet"):
                assert f"{f} (" in page, f
            assert "output.links: false" in page and "output.events: false" in page


def test_report_reads_the_resolved_scenario_with_the_strict_reader(nets, tmp_path, caplog):
    """scenario.resolved.yaml goes through twin._yaml (safe, strict): Python tags are not run,
    duplicate keys are refused; a damaged file is named (a damaged run folder), never half-read."""
    from twin.report import write_report

    sc = _scenario(name="yamlrun", population={"residents": 50}, output={"report": False, "geopackage": False})
    r = run_scenario(sc, tmp_path / "run", network=nets[0], walk_network=nets[1], bike_network=nets[2])
    p = r.out_dir / "scenario.resolved.yaml"
    text = p.read_text(encoding="utf-8")
    p.write_text(text.rstrip("\n") + "\nname: other\n", encoding="utf-8")  # a duplicate key (PyYAML: last wins)
    from twin.report import ReportError

    with pytest.raises(ReportError, match=r"name: duplicate key .*damaged run folder"):
        write_report(r.out_dir)
    assert not (r.out_dir / "report.html").exists()
    marker = tmp_path / "ran"
    p.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    with pytest.raises(ReportError, match="is not allowed"):
        write_report(r.out_dir)
    assert not marker.exists()
    p.write_text(text, encoding="utf-8")
    page = write_report(r.out_dir).read_text(encoding="utf-8")
    assert "<title>yamlrun · citytwin report" in page
