"""The ``evacuation:`` section of a scenario: hazards, orders and shelters.

Only pydantic here: validating a scenario imports neither the model nor the network (files named
here are read when the run starts; ``twin validate`` checks them through the domain's preflight).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from twin.scenario import Seconds, Section, _as_tuple

#: a (lon, lat) point; YAML lists are read as tuples
LonLat = Annotated[tuple[float, float], BeforeValidator(_as_tuple)]

__all__ = ["Contraflow", "Delay", "EvacuationConfig", "Hazard", "OrderZone", "Orders", "Shelter", "Shelters", "Stage",
           "Walkers"]


class Stage(Section):
    """A growth stage of a hazard: from ``at_s`` on, its area is the base area widened by ``grow_m``."""

    at_s: Seconds = Field(..., description="Start of the stage (seconds after midnight or 'HH:MM').")
    grow_m: float = Field(..., ge=0, le=100_000, description="Widening of the base area, metres.")
    depth_m: float | None = Field(None, ge=0, le=50, description="effect: slow: water depth in the whole area from "
                                                                 "this stage on, metres (default: the stage before's).")


class Hazard(Section):
    """An area that becomes unsafe at ``onset_s`` and can widen in stages: the polygons of a GeoJSON
    or GeoPackage file, or circles of ``radius_m`` around points. Links whose street geometry
    meets the active area close to entry; residents inside it are at risk."""

    name: str = Field("hazard", min_length=1, description="Identifier of the hazard (outputs).")
    file: str | None = Field(None, description="GeoJSON or GeoPackage with the hazard's polygons (relative to the "
                                               "scenario file), instead of points.")
    points: list[LonLat] = Field(default_factory=list, description="Centres of circular areas, (lon, lat).")
    radius_m: float = Field(500.0, gt=0, le=100_000, description="Radius of the circles around points, metres.")
    onset_s: Seconds = Field(..., description="When the area becomes unsafe (seconds after midnight or 'HH:MM').")
    stages: list[Stage] = Field(default_factory=list,
                                description="Later stages (times after onset, increasing; widening increasing).")
    effect: Literal["close", "slow"] = Field(
        "close", description="What the hazard does to links it reaches: close them to entry; or slow: cars drive at "
                             "the safe speed for the water depth (Pregnolato et al. 2017), and links under 0.3 m "
                             "or more close.")
    depth_m: float | None = Field(None, ge=0, le=50, description="effect: slow: water depth at onset, metres.")

    @model_validator(mode="after")
    def _source(self) -> Hazard:
        if (self.file is None) == (not self.points):
            raise ValueError("a hazard has either file or points")
        times = [self.onset_s, *(s.at_s for s in self.stages)]
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("stages must start after onset_s, in increasing order")
        grows = [s.grow_m for s in self.stages]
        if any(b < a for a, b in zip(grows, grows[1:], strict=False)):
            raise ValueError("stages' grow_m must not decrease")
        if self.effect == "slow" and self.depth_m is None:
            raise ValueError("effect: slow needs depth_m (the water depth at onset, metres)")
        return self

    def depths_m(self) -> list[float]:
        """The water depth of every stage, onset first (each stage without one keeps the last)."""
        out = [float(self.depth_m or 0.0)]
        for s in self.stages:
            out.append(out[-1] if s.depth_m is None else float(s.depth_m))
        return out


class Delay(Section):
    """Time from an evacuation order to a resident's departure, drawn per resident (ETE practice)."""

    distribution: Literal["none", "rayleigh", "weibull"] = Field(
        "rayleigh", description="none: leave at the order; rayleigh (scale); weibull (scale, shape).")
    scale_s: float = Field(600.0, ge=0, le=86_400, description="Scale of the distribution, seconds.")
    shape: float = Field(2.0, gt=0, le=20, description="Shape of the Weibull distribution.")


class OrderZone(Section):
    """A zone of staged orders: everyone inside the polygon is told at ``at_s``."""

    polygon: list[LonLat] = Field(..., min_length=3, description="The zone's outline, (lon, lat) points.")
    at_s: Seconds = Field(..., description="Time of the zone's order (seconds after midnight or 'HH:MM').")
    name: str = Field("", description="Name (outputs).")


class Orders(Section):
    """Who is told to evacuate, and when: everyone in the evacuation zone at once (simultaneous), or
    by distance rings around the hazard, the innermost first (staged)."""

    mode: Literal["simultaneous", "staged"] = Field("simultaneous", description="simultaneous | staged.")
    at_s: Seconds | None = Field(None, description="Time of the (first) order; default: the first hazard's onset.")
    zone_m: float = Field(500.0, ge=0, le=100_000,
                          description="The evacuation zone: the hazards' largest areas widened by this, metres.")
    rings_m: list[float] = Field(default_factory=lambda: [1000.0, 2000.0, 4000.0],
                                 description="Staged: outer radii of the rings around the hazards' base areas, "
                                             "metres, increasing (the last ring also takes the rest of the zone).")
    ring_interval_s: float = Field(900.0, ge=0, le=86_400, description="Staged: time between the rings' orders, s.")
    zones: list[OrderZone] = Field(default_factory=list,
                                   description="Staged by zone instead of rings: polygons with their order times "
                                               "(only residents inside a zone are told; the first zone listed "
                                               "holding a place wins).")
    compliance: float = Field(0.9, ge=0, le=1, description="Share of the residents ordered who evacuate.")
    delay: Delay = Field(default_factory=Delay, description="Response delay after the order.")
    go: Literal["shelter", "home_first"] = Field(
        "shelter", description="shelter: straight to a shelter; home_first: home first (for the household), "
                               "then to a shelter.")
    home_stay_s: float = Field(600.0, ge=0, le=86_400, description="home_first: time at home before leaving, s.")
    avoid_factor: float = Field(10.0, ge=1, le=1e6, description="From the first order the hazards' areas are "
                                                                "announced: car routes planned or changed after it "
                                                                "see the links any stage will reach at this many times "
                                                                "their cost (1: not avoided).")
    shuttles: bool = Field(False, description="Evacuees who would walk (no car) ride the fleet of the scenario's "
                                              "maas: section instead (its dispatch as for any request; a rejected "
                                              "ride walks).")
    shuttle_priority: bool = Field(True, description="shuttles: evacuees' ride requests go before the others in the "
                                                     "fleet's queue (immediate and pooling dispatch take requests in "
                                                     "queue order).")
    stay_away: bool = Field(False, description="Residents not evacuating whose planned trips lead into an active "
                                               "hazard area give up the rest of their day: those out go home (when "
                                               "home is outside the area), the others stay where they are.")

    @model_validator(mode="after")
    def _rings(self) -> Orders:
        if self.zones and self.mode != "staged":
            raise ValueError("zones are for mode: staged")
        if self.mode == "staged" and not self.zones and (
                not self.rings_m or any(b <= a for a, b in zip(self.rings_m, self.rings_m[1:], strict=False))):
            raise ValueError("staged orders need rings_m, increasing (or zones)")
        return self


class Shelter(Section):
    """A shelter: an OSM node id or a coordinate (snapped to the nearest drive-network node), and its
    capacity in persons."""

    osmid: int | None = Field(None, description="OSM node id.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude (with lat, instead of osmid).")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude (with lon, instead of osmid).")
    capacity: int = Field(..., ge=0, le=10_000_000, description="Persons it holds.")
    name: str = Field("", description="Name (outputs).")
    zone: list[LonLat] = Field(default_factory=list, description="choice: by_zone: the area it serves, a polygon "
                                                                  "ring of (lon, lat) points.")

    @model_validator(mode="after")
    def _one_way(self) -> Shelter:
        if (self.osmid is None) == (self.lon is None or self.lat is None):
            raise ValueError("a shelter is either osmid or lon and lat")
        if self.zone and len(self.zone) < 3:
            raise ValueError("a zone is a polygon of at least 3 (lon, lat) points")
        return self


class Shelters(Section):
    """Where evacuees go: shelters listed here, the map's education buildings (schools,
    universities: ``building=school|university|college|kindergarten``, the usual designated
    shelters in Japan), with a capacity of floor area / ``m2_per_person``, and (``from_osm_tags``)
    the map's places tagged as shelters or assembly points."""

    listed: list[Shelter] = Field(default_factory=list, description="Shelters given here.")
    file: str | None = Field(None, description="Shelters from a file (relative to the scenario): a CSV with lon, lat, "
                                               "capacity (name optional), or a GeoJSON / GeoPackage of points or "
                                               "polygons with capacity and name properties (a polygon without "
                                               "capacity: area / m2_per_person).")
    from_map: bool = Field(True, description="Also the map's education buildings outside the hazards' areas.")
    m2_per_person: float = Field(2.0, gt=0, le=100, description="Floor area per sheltered person, m² (from the "
                                                                "footprint × levels, 1 level when untagged).")
    from_osm_tags: bool = Field(False, description="Also the map file's places tagged emergency=assembly_point|"
                                                   "shelter, social_facility=shelter, amenity=community_centre, or "
                                                   "amenity=shelter (not bus-stop, picnic or weather shelters), "
                                                   "outside the hazards' areas.")
    osm_capacity: int = Field(200, ge=0, le=1_000_000, description="from_osm_tags: persons a tagged place holds "
                                                                   "when it has no capacity tag.")
    choice: Literal["nearest", "capacity_aware", "by_zone"] = Field(
        "capacity_aware", description="nearest: the nearest by network time, turned away when full; "
                                      "capacity_aware: the nearest, then on to the next with room when full; "
                                      "by_zone: the listed shelter whose zone holds where the evacuee sets out "
                                      "(else the nearest), then on to the next with room when full.")
    scale_capacity: bool = Field(True, description="Scale capacities by the population's sample share.")

    @model_validator(mode="after")
    def _zones(self) -> Shelters:
        if not self.listed and not self.from_map and self.file is None and not self.from_osm_tags:
            raise ValueError("no shelter: list some, give a file, or set from_map or from_osm_tags")
        if self.choice == "by_zone" and not any(s.zone for s in self.listed):
            raise ValueError("choice: by_zone needs listed shelters with a zone")
        return self


class Contraflow(Section):
    """Contraflow: from ``at_s``, the inbound direction of chosen two-way corridors is closed and its
    lanes are given to the outbound direction (flow capacity and storage of the two directions
    added). Corridors are the links of OSM ways (``ways``, outbound = the direction the evacuation
    routes use), and/or the ``auto`` busiest outbound arterials of the evacuation routes. With
    neither (``auto: 0``, no ways) nothing is reversed: the baseline of a sweep."""

    at_s: Seconds | None = Field(None, description="When the lanes are reversed; default: the first order.")
    ways: list[int] = Field(default_factory=list, description="OSM way ids of the corridors.")
    auto: int = Field(0, ge=0, le=1000, description="Number of corridors chosen automatically: the two-way "
                                                   "arterials (secondary and above) with the most evacuees per unit "
                                                   "of capacity on the routes from the evacuation zone to the "
                                                   "shelters.")
    min_share: float = Field(0.5, gt=0, le=1, description="auto: a corridor runs on along the routes while its "
                                                         "links carry at least this share of its busiest link's "
                                                         "evacuees.")



class Walkers(Section):
    """Evacuees on foot: they walk on the walk network (the drive network's streets when the scenario
    has no walk mode), around the active hazard areas, at Weidmann's density-dependent speed on
    crowded links (docs/evacuation.md)."""

    crowd: bool = Field(True, description="Density-dependent speed (Weidmann's fundamental diagram) from the "
                                          "evacuees walking on each link; false: the free walking speed.")
    width_m: float = Field(4.0, gt=0, le=100, description="Walkable width of every link, metres (a street's two "
                                                          "sidewalks).")
    min_speed_mps: float = Field(0.1, gt=0, le=2, description="Floor of the crowd speed, m/s (Weidmann's speed "
                                                              "is 0 at 5.4 persons/m²).")
    substep_s: float = Field(10.0, gt=0, le=600, description="Sub-step of the walkers' movement, seconds.")
    avoid_hazards: bool = Field(True, description="Paths avoid the active hazard areas: a metre inside costs "
                                                  "1,000 outside, so walkers inside leave by the shortest way out "
                                                  "and the others go round.")


class EvacuationConfig(Section):
    """Evacuation: hazards that spread, orders with compliance and response delays, shelters with
    capacity (docs/evacuation.md)."""

    hazards: list[Hazard] = Field(default_factory=list, description="The hazards (at least one).")
    orders: Orders = Field(default_factory=Orders, description="The evacuation orders.")
    shelters: Shelters = Field(default_factory=Shelters, description="The shelters.")
    contraflow: Contraflow | None = Field(None, description="Lane reversal on outbound corridors (none by default).")
    walkers: Walkers = Field(default_factory=Walkers, description="Evacuees on foot.")

    def resolve_paths(self, base: Path) -> EvacuationConfig:
        """Hazard and shelter files relative to the scenario's folder ``base``, checked to be regular files."""

        def resolved(name: str, field: str, what: str) -> str:
            f = Path(name) if Path(name).is_absolute() else base / name
            if not f.is_file():
                raise ValueError(f"{field}: {name} not found (relative paths are read next to the scenario; {what})")
            return str(f.resolve())

        hz = [h if h.file is None else h.model_copy(update={"file": resolved(h.file, f"hazards.{k}.file",
                                                                             "a GeoJSON or GeoPackage of polygons")})
              for k, h in enumerate(self.hazards)]
        sh = self.shelters
        if sh.file is not None:
            sh = sh.model_copy(update={"file": resolved(sh.file, "shelters.file",
                                                        "a CSV, GeoJSON or GeoPackage of shelters")})
        return self.model_copy(update={"hazards": hz, "shelters": sh})
