"""Closing roads within the day: the mobility domain closes links in the kernel and reroutes the cars
whose remaining route enters them; nobody enters a closed link while it is closed."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from twin.context import DomainContext
from twin.domains.base import Domain, register_domain
from twin.registry import DOMAINS
from twin.scenario import Section, TimelineEvent, scenario_from_dict


class RoadWorksConfig(Section):
    """Road works: which links close."""

    busiest: int = Field(3, ge=1, description="Close the links most used by the day's planned car routes.")


class CloseRoads(TimelineEvent):
    """Close the road works' links now."""

    type: Literal["close_roads"]


class ReopenRoads(TimelineEvent):
    """Open them again."""

    type: Literal["reopen_roads"]


class RoadWorks(Domain):
    """Closes the busiest links at one event and reopens them at another."""

    name = "roadworks"
    Config = RoadWorksConfig
    timeline_events: ClassVar[dict[str, type[TimelineEvent]]] = {"close_roads": CloseRoads, "reopen_roads": ReopenRoads}

    def attach(self, ctx: DomainContext) -> None:
        mob = ctx.mobility
        use = np.bincount(mob.route_links, minlength=ctx.network.n_links)
        self.links = np.argsort(-use, kind="stable")[: self.config.busiest]
        self.log: list[tuple[str, float, int]] = []

    def on_event(self, ctx: DomainContext, event) -> None:
        mob = ctx.mobility
        if event.type == "close_roads":
            rerouted = mob.close_links(self.links)
            self.log.append(("close", mob.sim.t_s, int(rerouted.size)))
        else:
            mob.open_links(self.links)
            self.log.append(("open", mob.sim.t_s, 0))

    def kpis(self, ctx: DomainContext) -> dict[str, object]:
        return {"roadworks_rerouted": sum(n for _, _, n in self.log)}


@pytest.fixture
def roadworks():
    register_domain(RoadWorks)
    yield
    DOMAINS.unregister("roadworks")


def test_closed_links_are_not_entered_and_cars_are_rerouted(roadworks, tmp_path):
    from twin.run import run_scenario

    sc = scenario_from_dict({
        "name": "rw", "map": {"source": "helsinki"}, "population": {"residents": 2000},
        "roadworks": {"busiest": 3},
        "timeline": [{"type": "close_roads", "at_s": "07:30"}, {"type": "reopen_roads", "at_s": "16:00"}],
        "output": {"report": False, "geopackage": False},
    })
    run = run_scenario(sc, tmp_path / "rw")
    ev = pq.read_table(run.out_dir / "events.parquet").to_pandas()
    trips = pq.read_table(run.out_dir / "trips.parquet").to_pandas()
    import json

    kpis = json.loads((run.out_dir / "kpis.json").read_text())
    assert kpis["roadworks_rerouted"] > 0
    enters = ev[ev["type"] == "enter_link"]
    # every car trip completes (the network has other ways round)
    car = trips[trips["mode"] == "car"]
    assert car.completed.all()
    # the rerouted trips' routes are the routes driven: as many link entries as route links
    n_enter = enters.groupby("trip_id").size().reindex(car.trip_id, fill_value=0).to_numpy()
    assert np.array_equal(n_enter, car.route_links.to_numpy())
    # nobody enters a closed link while it is closed
    from twin.model import CityModel

    m = CityModel(sc)
    dom = m.domain("roadworks")
    m.run()
    (_, t_closed, _), (_, t_opened, _) = dom.log
    got = m.events_columns()
    sel = (got["type"].codes == 1) & np.isin(got["link_id"], dom.links)
    t_in = got["t_s"][sel]
    assert not ((t_in > t_closed) & (t_in < t_opened)).any()
    assert (t_in >= t_opened).any() and (t_in <= t_closed).any()  # busy links, before and after
