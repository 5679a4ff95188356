"""A domain defined only in this file plugs in through the public protocol and an entry point.

``OccupancyDomain`` counts the residents at home per home place every ``period_s`` seconds from the
location query, has a scenario section (``occupancy:``) and a timeline event type (``census``), and
writes a table and KPIs: nothing in twin/model.py knows about it. The counts are checked against an
independent reconstruction from ``trips.parquet``.

The same domain is the example of docs/domains.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import ClassVar, Literal

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from twin._errors import ScenarioError
from twin.context import DomainContext
from twin.demand import HOME
from twin.domains.base import Domain, Phase
from twin.locations import AT_ACTIVITY
from twin.registry import DOMAINS
from twin.scenario import Seconds, Section, TimelineEvent, scenario_from_dict


class OccupancyConfig(Section):
    """Options of the occupancy domain."""

    period_s: Seconds = Field(900.0, gt=0, description="Sampling period, seconds or 'HH:MM'.")


class Census(TimelineEvent):
    """Count everyone at home once, at ``at_s``."""

    type: Literal["census"]
    label: str = Field("census", description="Name of the count in the KPIs.")


class OccupancyDomain(Domain):
    """Residents at home per home place (building, or node where the map has no building)."""

    name = "occupancy"
    Config = OccupancyConfig
    timeline_events: ClassVar[dict[str, type[TimelineEvent]]] = {"census": Census}

    def attach(self, ctx: DomainContext) -> None:
        ctx.events.register_type("occupancy_sample", ("t_s", "at_home"))
        self.samples: list[tuple[float, np.ndarray]] = []
        self.census: dict[str, int] = {}

    def phases(self) -> list[Phase]:
        return [Phase("occupancy", self.sample, period_s=self.config.period_s, after="move")]

    def start_day(self, ctx: DomainContext) -> None:
        self.samples = []
        self.census = {}

    def _at_home(self, ctx: DomainContext) -> tuple[float, np.ndarray]:
        loc = ctx.locations()
        home = (loc.state == AT_ACTIVITY) & (loc.activity == HOME)
        return loc.t_s, home

    def sample(self, ctx: DomainContext) -> None:
        t_s, home = self._at_home(ctx)
        self.samples.append((t_s, home))
        ctx.events.publish("occupancy_sample", {"t_s": np.array([t_s]), "at_home": np.array([home.sum()])})

    def on_event(self, ctx: DomainContext, event: Census) -> None:
        self.census[event.label] = int(self._at_home(ctx)[1].sum())

    def kpis(self, ctx: DomainContext) -> dict[str, object]:
        peak = max((int(h.sum()) for _, h in self.samples), default=0)
        return {"occupancy_samples": len(self.samples), "occupancy_peak_at_home": peak,
                **{f"occupancy_{k}": v for k, v in self.census.items()}}

    @classmethod
    def report_sections(cls):
        def chart(ctx):
            t = ctx.table("occupancy.parquet")
            if t is None:
                return None
            peak = int(np.bincount(np.unique(t["t_s"], return_inverse=True)[1], weights=t["residents"]).max())
            return f"<p>Peak residents at home: <b>{peak}</b></p>"
        return [("Occupancy", chart)]

    def tables(self, ctx: DomainContext) -> dict[str, dict[str, np.ndarray]]:
        pop = ctx.population
        # home building where the map has one, else the home node (as a negative id)
        hb = getattr(pop, "home_building", None)
        place = pop.home_node.astype(np.int64) if hb is None else np.asarray(hb, np.int64)
        t, who = [], []
        for t_s, home in self.samples:
            t.append(np.full(int(home.sum()), t_s))
            who.append(np.flatnonzero(home))
        rows = np.concatenate(who) if who else np.zeros(0, np.int64)
        ts = np.concatenate(t) if t else np.zeros(0)
        key = np.unique(np.column_stack([ts, place[rows].astype(np.float64)]), axis=0, return_counts=True)
        return {"occupancy": {"t_s": key[0][:, 0], "building_id": key[0][:, 1].astype(np.int64),
                              "residents": key[1].astype(np.int64)}}


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install OccupancyDomain as a package would: an entry point in a dist-info on sys.path."""
    dist = tmp_path / "occupancy_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: occupancy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[citytwin.domains]\noccupancy = {__name__}:OccupancyDomain\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert sys.modules[__name__].OccupancyDomain is OccupancyDomain
    DOMAINS.refresh()
    yield
    DOMAINS.unregister("occupancy")
    monkeypatch.undo()
    importlib.invalidate_caches()
    DOMAINS.refresh()


def _scenario(**extra):
    data = {"name": "occ", "map": {"source": "helsinki"}, "population": {"residents": 600},
            "simulation": {"end_s": "26:00"}, "output": {"report": False, "geopackage": False}}
    data.update(extra)
    return scenario_from_dict(data)


def test_section_and_timeline_are_validated_by_the_installed_domain(installed):
    sc = _scenario(occupancy={"period_s": "00:30"}, timeline=[{"type": "census", "at_s": "12:00", "label": "noon"}])
    assert sc.section("occupancy").period_s == 1800.0
    assert sc.timeline[0].at_s == 12 * 3600.0 and sc.timeline[0].label == "noon"
    with pytest.raises(ScenarioError, match=r"occupancy\.period_s"):
        _scenario(occupancy={"period_s": -1})
    with pytest.raises(ScenarioError, match=r"occupancy\.every: unknown key; allowed keys: period_s"):
        _scenario(occupancy={"every": 5})
    with pytest.raises(ScenarioError,
                       match=r"timeline\.0: unknown type 'flood'.*census.*installed domains: .*occupancy"):
        _scenario(timeline=[{"type": "flood", "at_s": 0}])
    with pytest.raises(ScenarioError, match=r"timeline\.0\.label"):
        _scenario(timeline=[{"type": "census", "at_s": 0, "label": 3}])
    with pytest.raises(ScenarioError, match="time order"):
        _scenario(timeline=[{"type": "census", "at_s": 100}, {"type": "census", "at_s": 50}])


def test_unknown_section_lists_the_installed_domains(installed):
    with pytest.raises(ScenarioError,
                       match=r"heating: unknown key; allowed keys: .*occupancy.*installed domains: .*occupancy"):
        _scenario(heating={})


def test_without_the_plugin_the_section_is_unknown():
    assert "occupancy" not in DOMAINS.names()
    with pytest.raises(ScenarioError, match="occupancy: unknown key"):
        _scenario(occupancy={})


def _at_home_from_trips(trips, n_residents: int, t: float, dt_s: float):
    """Residents at home at ``t`` from trips.parquet alone, and those too close to call (a departure or
    arrival within one kernel step of ``t``)."""
    home = np.ones(n_residents, dtype=bool)
    unsure = np.zeros(n_residents, dtype=bool)
    dep = trips["depart_s"]
    arr = trips["arrive_s"]
    gone = dep < t
    for r, _d, a, purpose in zip(trips["resident_id"][gone], dep[gone], arr[gone], trips["purpose"][gone]):
        # rows are in (resident, seq) order: the last departed trip decides
        home[r] = bool(np.isfinite(a) and a <= t and purpose == "home")
        unsure[r] = abs(a - t) <= dt_s if np.isfinite(a) else False
    close = np.abs(np.nan_to_num(dep, nan=-1e9) - t) <= dt_s
    unsure[trips["resident_id"][close]] = True
    return home, unsure


def test_plugged_in_domain_runs_without_model_changes(installed, tmp_path):
    from twin.run import run_scenario

    sc = _scenario(occupancy={"period_s": 900}, timeline=[{"type": "census", "at_s": "12:00", "label": "noon"}],
                   output={"report": True, "geopackage": False})
    res = run_scenario(sc, tmp_path / "run")
    assert "Occupancy" in (res.out_dir / "report.html").read_text() and "Peak residents at home" in (
        res.out_dir / "report.html").read_text()
    kpis = json.loads((res.out_dir / "kpis.json").read_text())
    occ = pq.read_table(res.out_dir / "occupancy.parquet").to_pandas()
    trips = pq.read_table(res.out_dir / "trips.parquet").to_pandas()
    # a sample in every model step that contains a multiple of 15 minutes
    assert kpis["occupancy_samples"] > 90
    assert "occupancy_noon" in kpis
    assert (res.out_dir / "manifest.json").exists()
    manifest = json.loads((res.out_dir / "manifest.json").read_text())
    assert "occupancy" in manifest["phase_time_s"]
    # the counts agree with what trips.parquet says about where everyone was
    trips = trips.sort_values(["resident_id", "seq"])
    cols = {c: trips[c].to_numpy() for c in ("resident_id", "depart_s", "arrive_s")}
    cols["purpose"] = trips["purpose"].astype(str).to_numpy()
    from twin.network.road_network import RoadNetwork  # noqa: F401 - the network is cached

    n = 600
    for t in (6 * 3600.0, 8.5 * 3600.0, 12 * 3600.0, 18 * 3600.0):
        got = occ[occ.t_s == t]
        assert len(got), f"no sample at {t}"
        home, unsure = _at_home_from_trips(cols, n, t, dt_s=1.0)
        total = int(got.residents.sum())
        assert abs(total - int(home.sum())) <= int(unsure.sum()), (t, total, int(home.sum()))
    assert kpis["occupancy_noon"] == int(occ[occ.t_s == 12 * 3600.0].residents.sum())
    # determinism: the plugged-in run gives the same mobility results as one without the domain
    plain = run_scenario(_scenario(), tmp_path / "plain")
    a = pq.read_table(res.out_dir / "trips.parquet")
    b = pq.read_table(plain.out_dir / "trips.parquet")
    assert a.equals(b)


def test_phase_periods():
    p = Phase("x", lambda ctx: None, period_s=900, after="dispatch")
    assert p.due(0, 60) and not p.due(60, 120) and p.due(840, 900.5) and not p.due(841, 899)
    q = Phase("x", lambda ctx: None, period_s=900)  # after move: the step's end reaches the period
    assert not q.due(0, 60) and q.due(600, 900) and not q.due(900, 1200) and q.due(1700, 1900)
    with pytest.raises(ValueError, match="after"):
        Phase("x", lambda ctx: None, after="nowhere")


def test_event_bus_publishes_arrays_by_type():
    from twin.events import EventBus

    bus = EventBus()
    got = []
    bus.subscribe("depart", got.append)
    assert bus.wants("depart") and not bus.wants("arrive")
    bus.publish("depart", {"t_s": np.array([1.0, 2.0]), "trip_id": np.array([3, 4]),
                           "resident_id": np.array([0, 0]), "mode": np.array([0, 0])})
    bus.publish("depart", {"t_s": np.zeros(0), "trip_id": np.zeros(0), "resident_id": np.zeros(0), "mode": np.zeros(0)})
    assert len(got) == 1 and len(got[0]) == 2 and got[0]["trip_id"].tolist() == [3, 4]
    with pytest.raises(ValueError, match="differ"):
        bus.publish("depart", {"t_s": np.zeros(1)})
    with pytest.raises(KeyError):
        bus.subscribe("nope", got.append)


def test_location_query_matches_the_kernel(tmp_path):
    """Every driving resident's link is their car's current link; counts by state add up."""
    from twin.locations import DRIVING, WAITING
    from twin.model import CityModel

    m = CityModel(_scenario())
    seen_driving = 0
    while m.running and m.t_s < 9 * 3600:
        m.step()
        loc = m.locations()
        assert loc.n == m.pop.n
        drv = np.flatnonzero(loc.state == DRIVING)
        seen_driving += drv.size
        v = loc.vehicle_id[drv]
        assert (m.sim.status[v] == 2).all()
        assert (loc.link_id[drv] >= 0).all()
        assert (np.count_nonzero(loc.state == DRIVING) + np.count_nonzero(loc.state == WAITING)
                <= m.sim.n_on_links + m.sim.n_waiting + m.sim.n_finished)
        assert np.count_nonzero(loc.state == DRIVING) == m.sim.n_on_links
    assert seen_driving > 0


def test_schema_reference_and_starter_include_installed_domains(installed):
    from twin.scenario import scenario_reference_markdown, scenario_schema
    from twin.starter import starter_yaml

    schema = scenario_schema()
    assert "occupancy" in schema["properties"]
    md = scenario_reference_markdown()
    assert "`occupancy.period_s`" in md and "timeline[] with type: census" in md
    text = starter_yaml("occ", "helsinki")
    assert "# occupancy:" in text and "#   period_s:" in text and "type: census" in text
    # uncommented, the starter's domain section validates
    from twin._yaml import load_yaml_text

    data = load_yaml_text(text)
    data["occupancy"] = {"period_s": 600}
    assert scenario_from_dict(data).section("occupancy").period_s == 600
