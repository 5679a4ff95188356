"""Within-day replanning: a domain sends everyone home at a timeline event.

``GoHome`` (defined here, registered by a call) rewrites the unstarted rest of every resident's day
at its event: one trip home, staying there. The run's tables must show exactly that: planned trips
after the event are cancelled, the added trips go home from where each resident is (or from the
destination of the trip under way, on arrival), cars drive them in the kernel, and nothing else
changes before the event.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from twin.context import DomainContext
from twin.demand import HOME
from twin.domains.base import Domain, register_domain
from twin.registry import DOMAINS
from twin.scenario import Section, TimelineEvent, scenario_from_dict


class GoHomeConfig(Section):
    """Options of the go-home domain."""

    mode: Literal["keep", "walk"] = Field("keep", description="Mode of the trip home.")


class GoHomeOrder(TimelineEvent):
    """Everyone goes home now."""

    type: Literal["go_home"]


class GoHome(Domain):
    """Sends every resident home at a go_home event."""

    name = "gohome"
    Config = GoHomeConfig
    timeline_events: ClassVar[dict[str, type[TimelineEvent]]] = {"go_home": GoHomeOrder}

    def on_event(self, ctx: DomainContext, event: GoHomeOrder) -> None:
        pop = ctx.population
        res = np.arange(pop.n)
        self.t_order_s = ctx.mobility.sim.t_s
        self.first_new = ctx.mobility.replace_plans(
            res, np.arange(pop.n + 1), pop.home_node.astype(np.int64), np.full(pop.n, HOME), np.full(pop.n, np.inf),
            mode=None if self.config.mode == "keep" else "walk", source=self.name)


@pytest.fixture
def gohome():
    register_domain(GoHome)
    yield
    DOMAINS.unregister("gohome")


def _scenario(with_domain=True, mode="keep", iterations=1):
    data = {"name": "gohome", "map": {"source": "helsinki"}, "population": {"residents": 800},
            "replanning": {"iterations": iterations},
            "simulation": {"end_s": "30:00"}, "output": {"report": False, "geopackage": False}}
    if with_domain:
        data["gohome"] = {"mode": mode}
        data["timeline"] = [{"type": "go_home", "at_s": "12:00"}]
    return scenario_from_dict(data)


def _table(run, name):
    return pq.read_table(run.out_dir / name).to_pandas()


def test_everyone_goes_home_at_the_order(gohome, tmp_path):
    from twin.run import run_scenario

    run = run_scenario(_scenario(), tmp_path / "a")
    plain = run_scenario(_scenario(with_domain=False), tmp_path / "b")
    trips, base = _table(run, "trips.parquet"), _table(plain, "trips.parquet")
    changes = _table(run, "plan_changes.parquet")
    m_plan = len(base)
    T = float(changes.t_s.iloc[0])
    assert 12 * 3600 - 300 < T <= 12 * 3600
    planned, added = trips[trips.trip_id < m_plan], trips[trips.trip_id >= m_plan]
    # before the order nothing changed: the same departures
    early = base.depart_s < T
    assert np.array_equal(planned.depart_s[early].to_numpy(), base.depart_s[early].to_numpy())
    # no planned trip departs at or after the order; the cancelled ones have no departure
    assert not (planned.depart_s >= T).any()
    cancelled = planned.depart_s.isna() & ~planned.completed
    assert cancelled.sum() == changes.trips_cancelled.sum() > 0
    # one trip home per resident replanned, leaving no earlier than the order
    assert len(changes) == len(added) == trips.resident_id.nunique()
    assert (added.purpose == "home").all() and (added.depart_s >= T).all()
    assert set(added.trip_id) == set(changes.first_new_trip_id)
    # the trip home starts where the resident was: a resident under way at T leaves on arrival
    last_before = planned[planned.depart_s < T].sort_values("seq").groupby("resident_id").last()
    under_way = last_before[last_before.arrive_s > T]
    a = added.set_index("resident_id")
    assert (a.loc[under_way.index, "depart_s"] >= under_way.arrive_s - 1e-9).all()
    # every added trip is done by the end of the day and everyone ends at home
    assert added.completed.all()
    last = trips[trips.completed].sort_values(["resident_id", "seq"]).groupby("resident_id").last()
    assert (last.purpose == "home").all()
    # cars drove in the kernel: link events of the added car trips, travel time >= free flow
    ev = _table(run, "events.parquet")
    car_added = added[(added["mode"] == "car") & (added.route_links > 0)]
    assert len(car_added) > 0
    entered = ev[(ev["type"] == "enter_link") & ev.trip_id.isin(car_added.trip_id)].groupby("trip_id").size()
    assert (entered.reindex(car_added.trip_id).to_numpy() == car_added.route_links.to_numpy()).all()
    assert (car_added.travel_time_s >= car_added.freeflow_time_s - 1e-6).all()
    # determinism
    again = run_scenario(_scenario(), tmp_path / "c")
    assert trips.equals(_table(again, "trips.parquet"))  # NaN-aware (pyarrow's equals is not)
    assert changes.equals(_table(again, "plan_changes.parquet"))


def test_walking_home(gohome, tmp_path):
    from twin.run import run_scenario

    run = run_scenario(_scenario(mode="walk", iterations=2), tmp_path / "w")  # the order again on day 2
    trips = _table(run, "trips.parquet")
    added = trips[trips.trip_id >= len(trips) - len(_table(run, "plan_changes.parquet"))]
    assert (added["mode"] == "walk").all()
    same = added.route_length_m == 0
    speed = added.route_length_m[~same] / added.travel_time_s[~same]
    assert np.allclose(speed, 1.33)
    it = _table(run, "iterations.parquet")
    assert len(it) == 2
