"""The evacuation domain: hazards that spread and close roads, orders to evacuate with compliance and
response delays, shelters with capacity, and clearance times on the congested network.

How a day goes
--------------
* **Hazards** (:mod:`~twin.domains.evacuation.hazards`): each hazard's area appears at its onset
  and widens at its stages. From the model step whose interval holds a stage's start, every link
  whose street geometry meets the area is closed to entry (``mobility.close_links``: cars whose
  remaining route enters it are rerouted from the end of their current link, or wait at the
  closure when there is no other way; the kernel never moves a car into a closed link).
* **At risk**: a resident whose position (the node of their activity, the origin of a trip on foot,
  bike or another mode, the end of the link a car is on) is inside an active area, and who is not
  in a shelter. Counted every step; exposure = Σ at risk × step length (person-seconds).
* **Orders** (``orders:``): simultaneous (everyone in the evacuation zone at ``at_s``) or staged
  by distance rings around the hazards' base areas (the innermost ring at ``at_s``, the next
  ``ring_interval_s`` later, ...). The evacuation zone is the hazards' largest areas widened by
  ``zone_m``. A resident is ordered where they are at the order time; a share ``compliance`` of
  them (one draw per resident and day) evacuates, after a response delay (Rayleigh or Weibull,
  one draw per resident and day). Evacuees go straight to a shelter, or home first
  (``home_first``) and then to a shelter, by within-day replanning (``mobility.replace_plans``: the
  rest of their day is replaced; a trip under way ends first). Their mode is their tour's when it
  is car, walk or bike, else car for those who can drive, else walk; cars are routed around the
  links closed at the time.
* **Shelters** (``shelters:``): listed ones and the map's education buildings outside the hazards'
  areas, with capacity floor area / ``m2_per_person``. An evacuee heads for the shelter nearest by
  network time (free-flow car times, closed links left out) from where the new trip starts. On
  arrival they are admitted while the shelter has room (its occupancy never exceeds its capacity,
  checked every step); when it is full they are turned away, and with ``choice: capacity_aware``
  go on to the nearest shelter that has room then (shelters only fill during the day, so the
  ones that turned them away are full).
* **Clearance**: the times at which 50 / 90 / 95 / 100% of the evacuees are in a shelter, counted
  from the first order.

Simplifications (see docs/evacuation.md): one network time (car free flow) picks every evacuee's
shelter, walkers included; walkers walk at the configured walking speed (no crowd density);
a shelter stay is the ``leisure`` activity of the rest of the day.

Outputs: ``evacuation_evacuees.parquet`` (per evacuee), ``evacuation_series.parquet`` (per step:
at risk, ordered, in shelters, links closed), ``evacuation_shelters.parquet`` (per shelter:
capacity, peak occupancy, turned away) and the ``evacuation_*`` KPIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.domains.base import Domain, Phase, register_domain
from twin.domains.evacuation.config import EvacuationConfig

if TYPE_CHECKING:  # pragma: no cover
    from twin._tables import Categorical
    from twin.context import DomainContext
    from twin.network.road_network import RoadNetwork

__all__ = ["EvacuationDomain", "CLEARANCE_SHARES"]

#: shares of evacuees in shelters whose times are the clearance KPIs
CLEARANCE_SHARES = (0.5, 0.9, 0.95, 1.0)


def _project(net: RoadNetwork, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from twin.network.road_network import _project as project

    return project(np.asarray(lon, np.float64), np.asarray(lat, np.float64), net.crs)


def hazard_stages(h: Any, net: RoadNetwork) -> Any:
    """The :class:`~twin.domains.evacuation.hazards.HazardStages` of a scenario hazard."""
    import shapely

    from twin.domains.evacuation.hazards import HazardStages, read_hazard_geometry

    if h.file is not None:
        base = read_hazard_geometry(h.file)
        radius = 0.0
    else:
        base = shapely.MultiPoint([tuple(p) for p in h.points])
        radius = h.radius_m
    return HazardStages(base, net.crs, h.onset_s, [(s.at_s, s.grow_m) for s in h.stages], radius_m=radius)


def listed_nodes(config: EvacuationConfig, net: RoadNetwork) -> list[int]:
    """The drive-network node of every listed shelter (its OSM node, or the node nearest its
    coordinate)."""
    from scipy.spatial import cKDTree

    out: list[int] = []
    if not config.shelters.listed:
        return out
    idx = {int(o): k for k, o in enumerate(net.node_osmid.tolist())}
    tree = cKDTree(np.column_stack([net.node_x_m, net.node_y_m]))
    for s in config.shelters.listed:
        if s.osmid is not None:
            out.append(idx[int(s.osmid)])
        else:
            x, y = _project(net, np.array([s.lon]), np.array([s.lat]))
            out.append(int(tree.query(np.column_stack([x, y]))[1][0]))
    return out


def shelter_table(config: EvacuationConfig, net: RoadNetwork, node_hazard: np.ndarray,
                  sample_share: float, places: Any = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shelters as ``(node, capacity, name)``, one per node (capacities of shelters at one node
    added): the listed ones, then the map's education buildings whose node no hazard reaches, then
    the tagged places of ``places`` (:class:`twin.maps._osm.ShelterPlaces`) whose nearest node no
    hazard reaches and no shelter above stands at."""

    sh = config.shelters
    nodes: list[int] = listed_nodes(config, net)
    caps: list[float] = [float(s.capacity) for s in sh.listed]
    names: list[str] = [s.name or f"shelter {k}" for k, s in enumerate(sh.listed)]
    if sh.file is not None:  # like listed ones, at the nearest node
        from scipy.spatial import cKDTree

        from twin.domains.evacuation.shelters import read_shelter_file

        rows = read_shelter_file(sh.file, sh.m2_per_person)
        x, y = _project(net, rows.lon, rows.lat)
        near = cKDTree(np.column_stack([net.node_x_m, net.node_y_m])).query(np.column_stack([x, y]))[1]
        nodes.extend(int(n) for n in near.tolist())
        caps.extend(rows.capacity.tolist())
        names.extend(nm or f"shelter {len(names) + k}" for k, nm in enumerate(rows.name))
    b = net.buildings
    if sh.from_map and b is not None and b.n_osm:
        from twin.network.buildings import KIND_NAMES

        edu = np.flatnonzero((b.kind[: b.n_osm] == KIND_NAMES.index("education"))
                             & np.isfinite(b.footprint_area_m2[: b.n_osm]))
        edu = edu[node_hazard[b.node[edu]] < 0]
        area = b.footprint_area_m2[edu] * np.where(np.isfinite(b.levels[edu]), np.maximum(b.levels[edu], 1.0), 1.0)
        nodes.extend(b.node[edu].astype(np.int64).tolist())
        caps.extend((area / sh.m2_per_person).tolist())
        names.extend(f"building {int(o)}" for o in b.osm_id[edu].tolist())
    if places is not None and places.osm_id.size:
        from scipy.spatial import cKDTree

        x, y = _project(net, places.lon, places.lat)
        near = cKDTree(np.column_stack([net.node_x_m, net.node_y_m])).query(np.column_stack([x, y]))[1]
        taken = set(nodes)
        for k, n in enumerate(near.tolist()):
            if node_hazard[n] >= 0 or n in taken:
                continue
            taken.add(n)
            c = places.capacity[k]
            nodes.append(int(n))
            caps.append(float(c) if np.isfinite(c) and c >= 0 else float(sh.osm_capacity))
            names.append(f"{places.tag[k]} {int(places.osm_id[k])}")
    if not nodes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    node = np.array(nodes, np.int64)
    cap = np.array(caps, np.float64) * (sample_share if sh.scale_capacity else 1.0)
    uniq, first, inv = np.unique(node, return_index=True, return_inverse=True)
    total = np.bincount(inv, weights=cap, minlength=uniq.size)
    return uniq, np.floor(total + 1e-9).astype(np.int64), [names[i] for i in first.tolist()]


@register_domain
class EvacuationDomain(Domain):
    """Hazards, orders, shelters and clearance (see the module docstring)."""

    name = "evacuation"
    Config = EvacuationConfig
    config: EvacuationConfig

    @classmethod
    def preflight(cls, config: Any, scenario: Any, network: Any) -> list[tuple[str, str]]:
        if config is None:
            return []
        problems: list[tuple[str, str]] = []
        if not config.hazards:
            problems.append(("evacuation.hazards", "needs at least one hazard (a file, or points with radius_m)"))
        ids = set(network.node_osmid.tolist())
        for k, s in enumerate(config.shelters.listed):
            if s.osmid is not None and s.osmid not in ids:
                problems.append((f"evacuation.shelters.listed.{k}.osmid",
                                 f"OSM node {s.osmid} is not on the drive network of {scenario.map.source}"))
        for k, h in enumerate(config.hazards):
            try:
                hazard_stages(h, network)
            except ValueError as exc:
                problems.append((f"evacuation.hazards.{k}", str(exc)))
        if config.orders.shuttles and "maas" not in scenario.modes.available:
            problems.append(("evacuation.orders.shuttles", "needs the maas mode (modes.available) and a maas: section"))
        cf = config.contraflow
        if cf is not None and cf.ways:
            from twin.domains.evacuation.contraflow import reverse_links

            two_way = set(network.link_osmid[reverse_links(network) >= 0].tolist())
            for k, w in enumerate(cf.ways):
                if w not in two_way:
                    problems.append((f"evacuation.contraflow.ways.{k}",
                                     f"OSM way {w} has no two-way link on the drive network of {scenario.map.source}"))
        if config.shelters.file is not None:
            from twin.domains.evacuation.shelters import read_shelter_file

            try:
                read_shelter_file(config.shelters.file, config.shelters.m2_per_person)
            except ValueError as exc:
                problems.append(("evacuation.shelters.file", str(exc)))
        return problems

    def attach(self, ctx: DomainContext) -> None:
        from twin.domains.evacuation.hazards import links_hit, nodes_hit

        net: RoadNetwork = ctx.network
        self.net = net
        self.mob = ctx.mobility
        cfg = self.config
        self.stages = [hazard_stages(h, net) for h in cfg.hazards]
        #: per hazard: first stage reaching each link / node (-1 never)
        self.link_stage = [links_hit(st, net) for st in self.stages]
        self.node_stage = [nodes_hit(st, net) for st in self.stages]
        node_any = np.full(net.n_nodes, -1, np.int64)
        for ns in self.node_stage:
            node_any = np.where(ns >= 0, 0, node_any)
        # the evacuation zone, and its rings for staged orders (ring index per node; -1 outside)
        import shapely

        last = shapely.union_all([st.polygon_m(len(st.times_s) - 1) for st in self.stages])
        zone = shapely.buffer(last, cfg.orders.zone_m) if cfg.orders.zone_m > 0 else last
        in_zone = shapely.intersects_xy(zone, net.node_x_m, net.node_y_m)
        if cfg.orders.mode == "staged":  # rings by distance to the hazards' base areas
            base = shapely.union_all([st.polygon_m(0) for st in self.stages])
            ring = np.full(net.n_nodes, len(cfg.orders.rings_m) - 1, np.int64)  # the last takes the rest of the zone
            for k in range(len(cfg.orders.rings_m) - 1, -1, -1):
                inner = shapely.intersects_xy(shapely.buffer(base, cfg.orders.rings_m[k]), net.node_x_m, net.node_y_m)
                ring[inner] = k
        else:
            ring = np.zeros(net.n_nodes, np.int64)
        self.node_ring = np.where(in_zone, ring, -1).astype(np.int64)
        self.n_rings = int(self.node_ring.max()) + 1 if (self.node_ring >= 0).any() else 0
        t_order = cfg.orders.at_s if cfg.orders.at_s is not None else min(h.onset_s for h in cfg.hazards)
        self.ring_order_s = t_order + np.arange(max(self.n_rings, 1)) * (
            cfg.orders.ring_interval_s if cfg.orders.mode == "staged" else 0.0)
        if cfg.orders.zones:  # staged by zone: a "ring" per zone, in order of their times
            zs = sorted(range(len(cfg.orders.zones)), key=lambda k: (cfg.orders.zones[k].at_s, k))
            ring = np.full(net.n_nodes, -1, np.int64)
            for k in range(len(cfg.orders.zones) - 1, -1, -1):  # the first zone listed wins
                inside = shapely.intersects_xy(shapely.Polygon(cfg.orders.zones[k].polygon), net.node_lon, net.node_lat)
                ring[inside] = zs.index(k)
            self.node_ring = ring
            self.n_rings = len(zs)
            self.ring_order_s = np.array([float(cfg.orders.zones[k].at_s) for k in zs])
        share = float(ctx.scenario.population.sample_share)
        places = None
        if cfg.shelters.from_osm_tags:
            from twin.maps import resolve_source
            from twin.maps._osm import read_shelter_places

            src = resolve_source(ctx.scenario.map.source)
            if src.kind == "osm" and src.path is not None:
                places = read_shelter_places(src.path)
            else:
                import logging

                logging.getLogger("twin").warning("evacuation.shelters.from_osm_tags: %s is not an OSM file; no "
                                                  "tagged shelters read", ctx.scenario.map.source)
        self.shelter_node, self.shelter_cap, self.shelter_name = shelter_table(cfg, net, node_any, share, places)
        # by_zone: the shelter each node's zone assigns (-1: in no zone)
        self.node_zone = np.full(net.n_nodes, -1, np.int64)
        if cfg.shelters.choice == "by_zone":
            lut = {int(n): k for k, n in enumerate(self.shelter_node.tolist())}
            for s_cfg, n in zip(cfg.shelters.listed, listed_nodes(cfg, net), strict=True):
                if s_cfg.zone:
                    inside = shapely.intersects_xy(shapely.Polygon(s_cfg.zone), net.node_lon, net.node_lat)
                    self.node_zone[inside & (self.node_zone < 0)] = lut[int(n)]
        # evacuees on foot walk on the walk network, around the hazards' areas as they reach its links
        from twin.network.routing import Router

        self.wnet, self.wsnap = self.mob.walk_network()
        self.wlink_stage = [links_hit(st, self.wnet) for st in self.stages]
        w = self.wnet
        self.wrouter = Router(w.indptr, w.link_head, w.link_tail, w.link_length_m)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self.people_per_walker = 1.0 / share
        #: the plug-in mode evacuees without a car ride (orders.shuttles), None: they walk
        self.shuttle_mode = "maas" if cfg.orders.shuttles else None
        self.scenario_walk_speed = float(ctx.scenario.modes.walk_speed_mps)
        from twin.kernels.pedestrian import weidmann_capacity

        cw = cfg.walkers
        # walkers (each standing for 1 / sample share persons) that can leave a link per second
        j_max = weidmann_capacity(self.scenario_walk_speed)
        self.w_cap = np.full(w.n_links, j_max * cw.width_m / self.people_per_walker if cw.crowd else np.inf)
        ctx.events.register_type("evacuation_order", ("t_s", "resident_id", "depart_s", "shelter"))
        ctx.events.register_type("shelter_arrival", ("t_s", "resident_id", "shelter", "admitted"))

    def phases(self) -> list[Phase]:
        return [Phase("evacuation", self.step, after="dispatch")]

    # ------------------------------------------------------------------------------- the day
    def start_day(self, ctx: DomainContext) -> None:
        n = ctx.population.n
        o = self.config.orders
        self.u_comply = ctx.rng("compliance").random(n)
        d = ctx.rng("delay")
        if o.delay.distribution == "rayleigh":
            self.delay_s = d.rayleigh(o.delay.scale_s, n) if o.delay.scale_s > 0 else np.zeros(n)
        elif o.delay.distribution == "weibull":
            self.delay_s = o.delay.scale_s * d.weibull(o.delay.shape, n)
        else:
            self.delay_s = np.zeros(n)
        self.ordered_s = np.full(n, np.nan)
        self.evacuee = np.zeros(n, bool)
        self.depart_s = np.full(n, np.nan)
        self.target = np.full(n, -1, np.int64)  # shelter index heading for
        self.first_target = np.full(n, -1, np.int64)  # the shelter chosen at the order
        self.start_node = np.full(n, -1, np.int64)  # where the evacuation trips start
        self.trip = np.full(n, -1, np.int64)  # its trip to the shelter
        self.safe_s = np.full(n, np.nan)
        self.sheltered_at = np.full(n, -1, np.int64)
        self.turned = np.zeros(n, np.int64)
        self.walked_out = np.zeros(n, bool)  # left a car stuck at a closure
        self.stayed_away = np.zeros(n, bool)  # gave up trips into a hazard (orders.stay_away)
        self.occupancy = np.zeros(self.shelter_node.size, np.int64)
        self.peak = np.zeros(self.shelter_node.size, np.int64)
        self.turned_at = np.zeros(self.shelter_node.size, np.int64)
        self.stage_now = [-1] * len(self.stages)
        self.rings_done = 0
        self.closed = np.zeros(self.net.n_links, bool)
        self.closed_at_s = np.full(self.net.n_links, np.nan)  # start of the step it closed in
        net = self.net
        self.link_speed_mps = net.link_length_m / np.maximum(net.link_fftt_s, 1e-9)  # the kernel's, as hazards slow
        self.slowed = np.zeros(net.n_links, bool)
        self.exposure_ps = 0.0
        self.series: list[tuple[float, int, int, int, int, int]] = []
        self.first_order_s = np.nan
        self.cf_links = self.cf_corridor = np.zeros(0, np.int64)
        self.cf_flow = np.zeros(0)
        self.cf_at_s = np.nan
        # walkers (trips held by mobility: their arrivals come from the walker kernel)
        self.held = np.zeros(0, np.int64)  # held shelter walk trips not yet walking
        self.w_trip = np.zeros(0, np.int64)
        self.w_ptr = np.zeros(1, np.int64)
        self.w_links = np.zeros(0, np.int64)
        self.w_start = np.zeros(0)
        self.w_pos = np.zeros(0, np.int64)
        self.w_rem = np.zeros(0)
        self.w_done = np.zeros(0)
        self.w_reported = np.zeros(0, bool)
        self.w_acc = np.zeros(self.wnet.n_links)

    def step(self, ctx: DomainContext) -> None:
        """One model step, before the kernel moves: stages and closures, orders, shelter arrivals,
        people at risk."""
        t, t_end = ctx.t_s, ctx.t_end_s
        self._hazards(t, t_end)
        while self.rings_done < self.n_rings and self.ring_order_s[self.rings_done] < t_end:
            self._order(ctx, self.rings_done, max(t, float(self.ring_order_s[self.rings_done])))
            self.rings_done += 1
        cf = self.config.contraflow
        if cf is not None and np.isnan(self.cf_at_s):
            t_cf = cf.at_s if cf.at_s is not None else float(self.ring_order_s[0])
            if t_cf < t_end:
                self.cf_at_s = max(t, t_cf)
                self._contraflow(ctx, self.cf_at_s)
        if self._stage_changed and self.config.orders.stay_away:  # after the orders: evacuees are known
            self._stay_away()
        self._arrivals(ctx)
        self._walk_out(ctx)
        self._walk(t, t_end)
        if np.any(self.occupancy > self.shelter_cap):
            raise RuntimeError("a shelter holds more than its capacity")
        n_risk = 0
        if max(self.stage_now) >= 0:  # nobody is at risk before an onset
            n_risk = int(self._at_risk(ctx.locations()).sum())
        self.exposure_ps += n_risk * (t_end - t)
        self.series.append((t, n_risk, int(self.evacuee.sum()), int(np.isfinite(self.safe_s).sum()),
                            int(self.occupancy.sum()), int(self.closed.sum())))

    def _hazards(self, t: float, t_end: float) -> None:
        """Links the active stages reach close from the step whose interval holds the stage's start."""
        from twin.domains.evacuation.hazards import flood_speed_mps

        new = np.zeros(self.net.n_links, bool)
        changed = False
        for k, st in enumerate(self.stages):
            times = np.asarray(st.times_s)
            s = int(np.searchsorted(times, t_end, side="left")) - 1  # last stage starting before t_end
            if s > self.stage_now[k]:
                self.stage_now[k] = s
                changed = True
                reached = (self.link_stage[k] >= 0) & (self.link_stage[k] <= s)
                h = self.config.hazards[k]
                v = float(flood_speed_mps(h.depths_m()[s])) if h.effect == "slow" else 0.0
                if v <= 0.0:  # closed (or too deep to drive)
                    new |= reached
                    continue
                slower = np.flatnonzero(reached & (self.link_speed_mps > v) & ~self.closed)
                if slower.size:  # cars drive at the safe speed for the depth
                    self.mob.scale_links(slower, speed_factor=v / self.link_speed_mps[slower])
                    self.link_speed_mps[slower] = v
                    self.slowed[slower] = True
        self._stage_changed = changed
        new &= ~self.closed
        if new.any():
            self.closed |= new
            self.closed_at_s[new] = t
            self.mob.close_links(np.flatnonzero(new))

    def _inside_now(self, nodes: np.ndarray) -> np.ndarray:
        """Whether each node is inside an active hazard area."""
        inside = np.zeros(nodes.size, bool)
        for k, ns in enumerate(self.node_stage):
            if self.stage_now[k] >= 0:
                stg = ns[nodes]
                inside |= (stg >= 0) & (stg <= self.stage_now[k])
        return inside

    def _stay_away(self) -> None:
        """Residents who are not evacuating and whose planned trips (not begun) lead into an active
        area give up the rest of their day: home, when they are out and home is outside the area;
        else they stay where they are."""
        from twin.demand import HOME

        mob = self.mob
        # not departed: planned, or scheduled for a later departure (begun at an activity's end)
        t = float(mob.sim.t_s)
        planned = np.flatnonzero((mob.trip_state == 0) | ((mob.trip_state == 1) & ~(mob.trip_depart_s <= t)))
        into = planned[self._inside_now(mob.trips.dest[planned].astype(np.int64))]
        res = np.unique(mob.trips.person[into]).astype(np.int64)
        res = res[~self.evacuee[res] & (self.sheltered_at[res] < 0) & ~self.stayed_away[res]]
        if res.size == 0:
            return
        home = self.mob.pop.home_node[res].astype(np.int64)
        cur = mob._cur_trip[res]
        out = cur >= 0  # out of home since their first trip ...
        out[out] &= mob.trips.purpose[cur[out]] != HOME  # ... and not on their way home or back
        go_home = out & ~self._inside_now(home)
        ptr = np.zeros(res.size + 1, np.int64)
        np.cumsum(go_home, out=ptr[1:])
        mob.replace_plans(res, ptr, home[go_home], np.full(int(go_home.sum()), HOME),
                          np.full(int(go_home.sum()), np.inf), source="evacuation")
        self.stayed_away[res] = True

    def _position(self, loc: Any) -> np.ndarray:
        """Each resident's node now (a car: the end of its link), -1 stranded."""
        from twin.locations import DRIVING

        head = self.net.link_head
        pos: np.ndarray = np.where(loc.state == DRIVING, head[np.maximum(loc.link_id, 0)], loc.node).astype(np.int64)
        return pos

    def _at_risk(self, loc: Any) -> np.ndarray:
        pos = self._position(loc)
        out: np.ndarray = (pos >= 0) & self._inside_now(np.maximum(pos, 0)) & (self.sheltered_at < 0)
        return out

    def _weights(self) -> np.ndarray:
        w = np.asarray(self.net.link_fftt_s, np.float64).copy()
        w[self.closed] = np.inf
        return w

    def _nearest_shelter(self, nodes: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Index of the shelter nearest by network time from each node (free-flow car times, closed
        links left out; ``exclude``: shelters not to choose); -1 when none is reachable."""
        from twin.domains.evacuation.contraflow import shelter_tree

        keep = np.ones(self.shelter_node.size, bool) if exclude is None else ~exclude
        if not keep.any() or nodes.size == 0:
            return np.full(nodes.size, -1, np.int64)
        src = np.flatnonzero(keep)
        _, _, near = shelter_tree(self.net, self._weights(), self.shelter_node[src])
        out: np.ndarray = np.where(near[nodes] >= 0, src[np.maximum(near[nodes], 0)], -1).astype(np.int64)
        return out

    def _contraflow(self, ctx: DomainContext, t: float) -> None:
        """Reverse the inbound lanes of the corridors: the inbound twin closes, the outbound link gets
        its flow capacity and storage. Corridors follow the routes from where the zone's residents
        are now to their nearest shelters."""
        from twin.domains.evacuation.contraflow import auto_corridors, reverse_links, shelter_tree, tree_link_flow

        cf = self.config.contraflow
        assert cf is not None
        net = self.net
        w = self._weights()
        dist, nxt, _ = shelter_tree(net, w, self.shelter_node)
        pos = self._position(ctx.locations())
        origin = pos[(pos >= 0) & (self.sheltered_at < 0)]
        origin = origin[self.node_ring[origin] >= 0]
        flow = tree_link_flow(net, w, dist, nxt, origin)
        rev = reverse_links(net)
        corridors: list[np.ndarray] = []
        if cf.ways:  # the direction the routes use, else away from the hazard (towards the shelters)
            from twin.domains.evacuation.contraflow import way_corridors

            corridors = way_corridors(net, cf.ways, flow, -np.where(np.isfinite(dist), dist, np.inf), rev)
        if cf.auto:
            taken = np.zeros(net.n_links, bool)
            for c in corridors:
                taken[c] = True
                taken[rev[c]] = True
            ok_flow = np.where(taken, 0.0, flow)
            # the cars (residents' and fleets') whose remaining routes of the day use each link
            from twin.domains.evacuation.contraflow import remaining_use
            from twin.kernels.queue import STATUS_ON_LINK

            sim = self.mob.sim
            live = (sim.rpos >= 0) & (sim.status < 3)
            start = np.where(sim.status == STATUS_ON_LINK, sim.rpos + 1, sim.rpos)[live]
            use = remaining_use(sim.route_links, start, sim.r_end[live], net.n_links)
            corridors += auto_corridors(net, ok_flow, nxt, cf.auto, cf.min_share, rev, other_use=use)
        out = np.concatenate(corridors) if corridors else np.zeros(0, np.int64)
        cid = np.repeat(np.arange(len(corridors)), [c.size for c in corridors]) if corridors else out
        _, first = np.unique(out, return_index=True)  # a link in two corridors: the first
        keep = np.zeros(out.size, bool)
        keep[first] = True
        keep &= ~np.isin(out, rev[out])  # never both directions of a pair
        out, cid = out[keep], cid[keep]
        if out.size == 0:
            return
        inbound = rev[out]
        cap, sto = net.link_capacity_vph, net.link_storage_veh
        self.mob.close_links(inbound)
        self.mob.scale_links(out, (cap[out] + cap[inbound]) / cap[out], (sto[out] + sto[inbound]) / sto[out])
        self.cf_links, self.cf_corridor, self.cf_flow = out, cid.astype(np.int64), flow[out]

    def _order(self, ctx: DomainContext, ring: int, t_order: float) -> None:
        """Residents in ``ring`` now are ordered out; the compliant ones get their trips."""
        from twin.demand import HOME, LEISURE
        from twin.locations import STRANDED

        loc = ctx.locations()
        pos = self._position(loc)
        here = (pos >= 0) & (self.node_ring[np.maximum(pos, 0)] == ring) & np.isnan(self.ordered_s)
        here &= loc.state != STRANDED
        res = np.flatnonzero(here)
        if np.isnan(self.first_order_s):
            self.first_order_s = t_order
            # the warning announces every stage's area: routes planned from now on go round it
            f = self.config.orders.avoid_factor
            announced = np.flatnonzero(np.any([ls >= 0 for ls in self.link_stage], axis=0))
            if f > 1.0 and announced.size:
                self.mob.avoid_links(announced, f)
        self.ordered_s[res] = t_order
        go = res[self.u_comply[res] < self.config.orders.compliance]
        if go.size == 0 or self.shelter_node.size == 0:
            return
        # where the new trips start: a trip under way ends first
        mob = self.mob
        under_way = (loc.trip_id[go] >= 0) & (mob.trip_state[np.maximum(loc.trip_id[go], 0)] == 1)
        start = np.where(under_way, mob.trips.dest[np.maximum(loc.trip_id[go], 0)], pos[go])
        home_first = self.config.orders.go == "home_first"
        home = ctx.population.home_node[go].astype(np.int64)
        origin = home if home_first else start
        shelter = self._nearest_shelter(origin)
        zoned = self.node_zone[origin]
        shelter = np.where(zoned >= 0, zoned, shelter)  # by_zone: the zone's shelter (node_zone is -1 else)
        ok = shelter >= 0
        go, shelter, home = go[ok], shelter[ok], home[ok]
        if go.size == 0:
            return
        dep = t_order + self.delay_s[go]
        n_legs = 2 if home_first else 1
        ptr = np.arange(go.size + 1, dtype=np.int64) * n_legs
        if home_first:
            dest = np.column_stack([home, self.shelter_node[shelter]]).ravel()
            purpose = np.tile([HOME, LEISURE], go.size)
            dur = np.tile([self.config.orders.home_stay_s, np.inf], go.size)
        else:
            dest = self.shelter_node[shelter]
            purpose = np.full(go.size, LEISURE)
            dur = np.full(go.size, np.inf)
        first = mob.replace_plans(go, ptr, dest, purpose, dur, depart_s=dep, source="evacuation",
                                  walkers_take=self.shuttle_mode)
        live = first >= 0
        go, shelter, first, dep = go[live], shelter[live], first[live], dep[live]
        if self.shuttle_mode is not None and self.config.orders.shuttle_priority:
            maas = ctx.domain("maas")
            ride = first + (n_legs - 1)
            ride = ride[mob.trip_mode[ride] == 3 + [p.name for p in mob.mode_providers].index(self.shuttle_mode)]
            if maas is not None and ride.size:
                maas.prioritize(ride)  # type: ignore[attr-defined]
        self.evacuee[go] = True
        self.start_node[go] = start[ok][live]
        self.depart_s[go] = np.maximum(dep, t_order)
        self.target[go] = shelter
        self.first_target[go] = shelter
        self.trip[go] = first + (n_legs - 1)
        self._hold_walks(self.trip[go])
        ctx.events.publish("evacuation_order", {"t_s": np.full(go.size, t_order), "resident_id": go,
                                                "depart_s": self.depart_s[go], "shelter": shelter})

    def _walk_out(self, ctx: DomainContext) -> None:
        """Evacuees whose car is held at a closed link leave it and walk to their shelter: a car that
        cannot enter its first link (closed since they set out) is left where it stands; a car on a
        link whose next link is closed (rerouting found no other way: every way out of a flooded
        area closed) is left at the end of that link (``mobility.leave_cars``). The car that held
        them may be on their evacuation trip or on the trip they were on when told to leave."""
        from twin.demand import LEISURE
        from twin.kernels.queue import STATUS_ON_LINK, STATUS_WAITING

        mob = self.mob
        pend = np.flatnonzero(self.evacuee & (self.sheltered_at < 0) & (self.trip >= 0))
        if pend.size == 0:
            return
        cur = mob._cur_trip[pend]
        ok = cur >= 0
        pend, cur = pend[ok], cur[ok]
        veh = mob.car_index[cur]
        on = (mob.trip_state[cur] == 1) & (veh >= 0)
        pend, cur, veh = pend[on], cur[on], veh[on]
        if pend.size == 0:
            return
        sim = mob.sim
        status = sim.status[veh]
        rp = sim.rpos[veh]
        closed = sim.closed
        first_shut = (status == STATUS_WAITING) & (closed[sim.route_links[rp]] != 0)
        nxt = np.minimum(rp + 1, sim.route_links.size - 1)
        ahead_shut = (status == STATUS_ON_LINK) & (rp + 1 < sim.r_end[veh]) & (closed[sim.route_links[nxt]] != 0)
        held = first_shut | ahead_shut
        if not held.any():
            return
        stuck, cur_h = pend[held], cur[held]
        left = ahead_shut[held]
        if left.any():
            at = mob.leave_cars(cur_h[left])
            # the nearest shelter from where they leave the car
            near = self._nearest_shelter(np.maximum(at, 0), self.occupancy >= self.shelter_cap)
            tgt = self.target[stuck].copy()
            upd = (at >= 0) & (near >= 0)
            tgt[np.flatnonzero(left)[upd]] = near[upd]
            self.target[stuck] = tgt
            keep = np.ones(stuck.size, bool)
            keep[np.flatnonzero(left)[at < 0]] = False
            stuck = stuck[keep]
        if stuck.size == 0:
            return
        from_node = self.shelter_node[self.target[stuck]]
        new = mob.replace_plans(stuck, np.arange(stuck.size + 1), from_node, np.full(stuck.size, LEISURE),
                                np.full(stuck.size, np.inf), mode="walk", source="evacuation")
        live = new >= 0
        self.trip[stuck[live]] = new[live]
        self.walked_out[stuck[live]] = True
        self._hold_walks(new[live])

    # ------------------------------------------------------------------------- walkers
    def _hold_walks(self, trips: np.ndarray) -> None:
        """Shelter trips on foot: mobility leaves their arrivals to the walker kernel."""
        from twin.domains.mobility.mode_choice import WALK

        tr = trips[trips >= 0]
        tr = tr[self.mob.trip_mode[tr] == WALK]
        if tr.size:
            self.mob.hold_arrivals(tr)
            self.held = np.union1d(self.held, tr)

    def _walk_weights(self) -> np.ndarray:
        """Walk-network link costs: length, ×1000 inside an active hazard area (``avoid_hazards``)."""
        w = np.asarray(self.wnet.link_length_m, np.float64)
        if not self.config.walkers.avoid_hazards:
            return w
        inside = np.zeros(w.size, bool)
        for k, ls in enumerate(self.wlink_stage):
            if self.stage_now[k] >= 0:
                inside |= (ls >= 0) & (ls <= self.stage_now[k])
        out: np.ndarray = np.where(inside, w * 1000.0, w)
        return out

    def _start_walkers(self, trips: np.ndarray) -> None:
        """Walkers for held trips that have begun: their paths on the walk network now."""
        mob = self.mob
        t = mob.trips
        o, d = self.wsnap[t.origin[trips]], self.wsnap[t.dest[trips]]
        rs = self.wrouter.route(o, d, weight=self._walk_weights())  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        lens = np.diff(rs.route_indptr)
        dep = mob.trip_depart_s[trips]
        n0 = self.w_trip.size
        base = self.w_ptr[-1]
        self.w_ptr = np.concatenate([self.w_ptr, base + np.cumsum(lens)])
        self.w_links = np.concatenate([self.w_links, rs.route_links.astype(np.int64)])
        first = self.w_ptr[n0:-1]
        self.w_pos = np.concatenate([self.w_pos, first])
        has = lens > 0
        rem = np.zeros(trips.size)
        rem[has] = self.wnet.link_length_m[self.w_links[first[has]]]
        self.w_rem = np.concatenate([self.w_rem, rem])
        # no link to walk: there already (the same node) or no way (they never arrive)
        done = np.where(has, np.nan, np.where(o == d, dep, np.inf))
        self.w_done = np.concatenate([self.w_done, done])
        self.w_start = np.concatenate([self.w_start, dep])
        self.w_trip = np.concatenate([self.w_trip, trips])
        self.w_reported = np.concatenate([self.w_reported, np.zeros(trips.size, bool)])

    def _walk(self, t: float, t_end: float) -> None:
        """Held walks that have begun get walkers; walkers move to ``t_end`` (Weidmann speeds on
        crowded links); arrivals go to mobility."""
        from twin.kernels.pedestrian import advance_walkers

        mob = self.mob
        if self.held.size:
            st = mob.trip_state[self.held]
            begin = (st == 1) & (mob.trip_depart_s[self.held] < t_end)
            over = st >= 2  # cancelled or replaced before they set out
            if begin.any():
                self._start_walkers(self.held[begin])
            self.held = self.held[~begin & ~over]
        if np.isnan(self.w_done).any():
            cw = self.config.walkers
            advance_walkers(t, t_end, cw.substep_s, self.w_ptr, self.w_links, self.wnet.link_length_m,
                            self.wnet.link_length_m * cw.width_m, float(self.scenario_walk_speed), cw.min_speed_mps,
                            self.people_per_walker, self.w_start, self.w_pos, self.w_rem, self.w_done, cw.crowd,
                            self.w_cap, self.w_acc)
        new = np.flatnonzero(~self.w_reported & np.isfinite(self.w_done))
        if new.size:
            self.w_reported[new] = True
            live = new[mob.trip_state[self.w_trip[new]] == 1]
            if live.size:
                mob.report_arrivals(self.w_trip[live], self.w_done[live])

    def _arrivals(self, ctx: DomainContext) -> None:
        """Evacuees whose shelter trip ended: admitted while there is room (in arrival order), else
        turned away (and, capacity-aware, sent on to the next shelter with room)."""
        from twin.demand import LEISURE

        mob = self.mob
        pend = np.flatnonzero((self.trip >= 0) & (self.sheltered_at < 0))
        if pend.size == 0:
            return
        st = mob.trip_state[self.trip[pend]]
        done = pend[st == 2]
        if done.size == 0:
            return
        arr = mob.trip_arrive_s[self.trip[done]]
        done = done[np.lexsort((done, arr))]
        admitted = np.zeros(done.size, bool)
        for k, r in enumerate(done.tolist()):
            s = int(self.target[r])
            if self.occupancy[s] < self.shelter_cap[s]:
                self.occupancy[s] += 1
                self.sheltered_at[r] = s
                self.safe_s[r] = float(mob.trip_arrive_s[self.trip[r]])
                admitted[k] = True
            else:
                self.turned[r] += 1
                self.turned_at[s] += 1
        self.peak = np.maximum(self.peak, self.occupancy)
        ctx.events.publish("shelter_arrival", {"t_s": mob.trip_arrive_s[self.trip[done]], "resident_id": done,
                                               "shelter": self.target[done], "admitted": admitted})
        away = done[~admitted]
        if away.size == 0:
            return
        if self.config.shelters.choice == "nearest":
            self.trip[away] = -1  # they stay where they are, outside
            return
        # shelters only fill (nobody leaves one during the day): those that turned anyone away are
        # full, so the shelters with room now are the same for everyone turned away
        full = self.occupancy >= self.shelter_cap
        nxt = self._nearest_shelter(self.shelter_node[self.target[away]], full)
        ok = nxt >= 0
        self.trip[away[~ok]] = -1
        go, nxt = away[ok], nxt[ok]
        if go.size == 0:
            return
        first = mob.replace_plans(go, np.arange(go.size + 1), self.shelter_node[nxt], np.full(go.size, LEISURE),
                                  np.full(go.size, np.inf), source="evacuation")
        live = first >= 0
        self.trip[go[~live]] = -1
        self.target[go[live]] = nxt[live]
        self.trip[go[live]] = first[live]
        self._hold_walks(first[live])

    # ---------------------------------------------------------------------------- results
    @classmethod
    def report_sections(cls) -> list[tuple[str, Any]]:
        from twin.domains.evacuation.report import evacuation_section

        return [("Evacuation", evacuation_section)]

    def clearance_s(self) -> dict[float, float]:
        """Time from the first order until each share of :data:`CLEARANCE_SHARES` of the evacuees is
        in a shelter (``inf``: never that day)."""
        safe = np.sort(self.safe_s[self.evacuee])
        n = safe.size
        out = {}
        for q in CLEARANCE_SHARES:
            k = int(np.ceil(q * n)) - 1
            out[q] = float(safe[k] - self.first_order_s) if n and np.isfinite(safe[k]) else (np.inf if n else np.nan)
        return out

    def kpis(self, ctx: DomainContext) -> dict[str, Any]:
        def r(x: float) -> float | None:
            return round(float(x), 1) if np.isfinite(x) else None

        cl = self.clearance_s()
        risk = np.array([s[1] for s in self.series]) if self.series else np.zeros(1)
        out: dict[str, Any] = {
            "evacuation_ordered": int(np.isfinite(self.ordered_s).sum()),
            "evacuation_evacuees": int(self.evacuee.sum()),
            "evacuation_sheltered": int(np.isfinite(self.safe_s).sum()),
            "evacuation_not_sheltered": int((self.evacuee & ~np.isfinite(self.safe_s)).sum()),
            "evacuation_turned_away": int(self.turned.sum()),
            "evacuation_left_car": int(self.walked_out.sum()),
            "evacuation_stayed_away": int(self.stayed_away.sum()),
            "evacuation_at_risk_peak": int(risk.max()),
            "evacuation_exposure_person_h": round(self.exposure_ps / 3600.0, 2),
            "evacuation_links_closed": int(self.closed.sum()),
            "evacuation_links_slowed": int((self.slowed & ~self.closed).sum()),
            "evacuation_shelters": int(self.shelter_node.size),
            "evacuation_shelter_capacity": int(self.shelter_cap.sum()),
            "evacuation_contraflow_links": int(self.cf_links.size),
        }
        for q, v in cl.items():
            out[f"evacuation_clearance_{round(q * 100)}_s"] = r(v)
        return out

    def hazard_outlines(self) -> dict[str, np.ndarray]:
        """The outer rings of every hazard's area at every stage, as vertex rows (lon, lat) keyed by
        hazard, stage (its start ``at_s``), polygon ``part`` and vertex ``seq`` (holes left out: a
        map outline)."""
        import shapely

        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("hazard", "stage", "at_s", "part", "seq", "lon", "lat")}
        for h, st in enumerate(self.stages):
            for k, at in enumerate(st.times_s):
                parts = shapely.get_parts(st.polygon_lonlat(k))
                for p, poly in enumerate(parts.tolist()):
                    xy = np.asarray(poly.exterior.coords)
                    n = xy.shape[0]
                    for key, val in (("hazard", h), ("stage", k), ("at_s", float(at)), ("part", p)):
                        cols[key].append(np.full(n, val))
                    cols["seq"].append(np.arange(n))
                    cols["lon"].append(xy[:, 0])
                    cols["lat"].append(xy[:, 1])
        ints = ("hazard", "stage", "part", "seq")
        return {name: (np.concatenate(v) if v else np.zeros(0)).astype(np.int64 if name in ints else np.float64)
                for name, v in cols.items()}

    def tables(self, ctx: DomainContext) -> Mapping[str, Mapping[str, np.ndarray | Categorical]]:
        ev = np.flatnonzero(np.isfinite(self.ordered_s))
        osm = self.net.node_osmid
        tgt = self.target[ev]
        ser = np.array(self.series, np.float64).reshape(-1, 6)
        return {
            "evacuation_evacuees": {
                "resident_id": ev, "ordered_s": self.ordered_s[ev], "evacuee": self.evacuee[ev],
                "depart_s": self.depart_s[ev],
                "shelter_osmid": np.where(tgt >= 0, osm[self.shelter_node[np.maximum(tgt, 0)]], -1),
                "safe_s": self.safe_s[ev], "turned_away": self.turned[ev], "left_car": self.walked_out[ev],
            },
            "evacuation_series": {
                "t_s": ser[:, 0], "at_risk": ser[:, 1].astype(np.int64), "evacuees": ser[:, 2].astype(np.int64),
                "sheltered": ser[:, 3].astype(np.int64), "in_shelters": ser[:, 4].astype(np.int64),
                "links_closed": ser[:, 5].astype(np.int64),
            },
            "evacuation_hazards": self.hazard_outlines(),
            "evacuation_contraflow": {
                "corridor": self.cf_corridor, "way_osmid": self.net.link_osmid[self.cf_links],
                "from_osmid": osm[self.net.link_tail[self.cf_links]],
                "to_osmid": osm[self.net.link_head[self.cf_links]],
                "evacuees_routed": self.cf_flow, "at_s": np.full(self.cf_links.size, self.cf_at_s),
            },
            "evacuation_shelters": {
                "shelter_osmid": osm[self.shelter_node], "lon": self.net.node_lon[self.shelter_node],
                "lat": self.net.node_lat[self.shelter_node], "capacity": self.shelter_cap,
                "peak_occupancy": self.peak, "turned_away": self.turned_at,
            },
        }
