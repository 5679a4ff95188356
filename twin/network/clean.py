"""Clean an osmnx graph into a simulation-ready road network.

Steps (each documented in ``docs/concepts.md``):

0. put the tag lists of merged ways in a fixed order (osmnx's simplification builds them from
   sets, whose order changes from one Python process to the next with string hashing): the
   ``highway`` values by class, the lowest flow capacity per lane first (the bottleneck, as for
   ``lanes``), then by name; every other list sorted by value.  The first ``highway`` value is
   the edge's class and ``osmid`` the smallest way id, so the network is the same in every process;
1. drop self-loops; keep the largest strongly connected component for ``drive`` (every node can
   reach every other, so any OD pair has a route), the largest weakly connected one otherwise;
2. lengths: links shorter than ``min_length_m`` (osmnx simplification leaves stubs of a few
   decimetres at complex junctions) get that length, so no link has zero or negative length;
3. speeds and travel times through osmnx's ``add_edge_speeds`` / ``add_edge_travel_times``:
   ``maxspeed`` tags where present, else the mean of the same highway class in this map, else
   :data:`DEFAULT_SPEED_KPH` of the class; walk and bike networks use a constant speed;
4. lanes per direction (the ``lanes`` tag counts both directions of a two-way road) → flow capacity
   ``capacity_vph = lanes × CAPACITY_VPH_PER_LANE[class]`` and storage capacity
   ``storage_veh = max(1, length × lanes / 7.5 m)``.

Shapes: osmnx's ``geometry`` (a shapely LineString on merged edges) is kept as it is, through every
step (no step splits, merges or turns round an edge); a reversed copy of a one-way edge that lost
its geometry (``twin.maps`` adds them for walk and bike networks of GraphML maps) first gets its
forward edge's geometry turned round (:func:`restore_reversed_geometry`).
:class:`~twin.network.RoadNetwork` stores the shapes as flat polyline arrays.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import networkx as nx
import numpy as np

from twin._errors import NoDrivableRoadError

__all__ = [
    "CAPACITY_VPH_PER_LANE",
    "DEFAULT_LANES",
    "DEFAULT_SPEED_KPH",
    "HIGHWAY_CLASSES",
    "VEHICLE_LENGTH_M",
    "canonical_tag_list",
    "canonical_tag_lists",
    "clean_graph",
    "highway_class",
    "lanes_and_capacity",
    "restore_reversed_geometry",
    "untagged_class_speeds",
]

VEHICLE_LENGTH_M = 7.5
WALK_SPEED_KPH = 4.8  # 1.33 m/s
BIKE_SPEED_KPH = 15.0

# Flow capacity per lane (veh/h) by road class: the defaults of MATSim's OSM network reader
# (org.matsim.core.utils.io.OsmNetworkReader), which calibrated them on European cities.
CAPACITY_VPH_PER_LANE: dict[str, float] = {
    "motorway": 2000.0, "motorway_link": 1500.0, "trunk": 2000.0, "trunk_link": 1500.0,
    "primary": 1500.0, "primary_link": 1500.0, "secondary": 1000.0, "secondary_link": 1000.0,
    "tertiary": 1000.0, "tertiary_link": 1000.0, "unclassified": 600.0, "residential": 600.0,
    "living_street": 300.0, "service": 300.0, "road": 600.0, "busway": 600.0,
}
OTHER_CAPACITY_VPH_PER_LANE = 600.0
# Lanes per direction when the lanes tag is missing (MATSim's defaults).
DEFAULT_LANES: dict[str, float] = {"motorway": 2.0, "trunk": 1.0}
# Speeds (km/h) for classes with no maxspeed tag anywhere in the map.
DEFAULT_SPEED_KPH: dict[str, float] = {
    "motorway": 100.0, "motorway_link": 60.0, "trunk": 80.0, "trunk_link": 50.0,
    "primary": 60.0, "primary_link": 50.0, "secondary": 50.0, "secondary_link": 40.0,
    "tertiary": 40.0, "tertiary_link": 30.0, "unclassified": 30.0, "residential": 30.0,
    "living_street": 10.0, "service": 20.0, "road": 30.0,
}
FALLBACK_SPEED_KPH = 30.0

HIGHWAY_CLASSES: tuple[str, ...] = tuple(CAPACITY_VPH_PER_LANE) + ("other",)
_NUM = re.compile(r"\d+(?:\.\d+)?")


def highway_class(value: Any) -> str:
    """The first highway value of an edge (osmnx merges ways into lists when simplifying)."""
    if isinstance(value, list):
        value = value[0] if value else "other"
    v = str(value) if value is not None else "other"
    return v if v in CAPACITY_VPH_PER_LANE else "other"


def _lanes_total(value: Any) -> float | None:
    """Smallest lane count of an edge's ``lanes`` tag(s): the bottleneck of merged ways."""
    vals = value if isinstance(value, list) else [value]
    nums = []
    for v in vals:
        if v is None:
            continue
        for m in _NUM.findall(str(v)):
            x = float(m)
            if x > 0:
                nums.append(x)
    return min(nums) if nums else None


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order before anything else, then by text."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def canonical_tag_lists(G: nx.MultiDiGraph) -> None:
    """Sort, in place, the tag lists that osmnx's simplification leaves on merged edges.

    osmnx builds them from sets, so their order follows Python's string hashing, which changes
    from process to process (``PYTHONHASHSEED``); whatever reads "the first value" (osmnx's speed
    imputation and :func:`highway_class` read the first ``highway``) or averages in list order
    would differ between runs.  ``highway`` lists are ordered by class, lowest flow capacity per
    lane first (the bottleneck, as the lane count is), then by name; other lists by value.
    """
    for _, _, d in G.edges(data=True):
        for key, value in d.items():
            if isinstance(value, list):
                d[key] = canonical_tag_list(key, value)


def canonical_tag_list(key: str, values: list) -> list:
    """The fixed order of one tag list of a merged edge (see :func:`canonical_tag_lists`)."""
    if key == "highway":
        return sorted(values, key=lambda h: (
            CAPACITY_VPH_PER_LANE.get(highway_class(h), OTHER_CAPACITY_VPH_PER_LANE), str(h)))
    return sorted(values, key=_sort_key)


def restore_reversed_geometry(G: nx.MultiDiGraph) -> int:
    """Give reversed edge copies without a ``geometry`` their forward edge's, turned round.

    An edge ``u -> v`` flagged ``reversed`` with no geometry takes that of an edge ``v -> u`` with
    the same ``osmid`` and ``length`` (the same key first, then by key), reversed so that it runs
    from ``u`` to ``v``. Edits ``G`` in place; returns the number of edges given a geometry.
    """
    import shapely

    n = 0
    for u, v, k, d in G.edges(keys=True, data=True):
        flag = d.get("reversed")
        if d.get("geometry") is not None or not (flag is True or flag in ("True", "true")):
            continue
        fwd = G.get_edge_data(v, u)
        if not fwd:
            continue
        for kk in ([k] if k in fwd else []) + sorted((x for x in fwd if x != k), key=str):
            f = fwd[kk]
            g = f.get("geometry")
            if g is None or f.get("osmid") != d.get("osmid") or f.get("length") != d.get("length"):
                continue
            if isinstance(g, str):
                try:
                    g = shapely.from_wkt(g)
                except Exception:  # noqa: BLE001 - no usable geometry: the link stays a chord
                    break
            if isinstance(g, shapely.LineString):
                d["geometry"] = shapely.reverse(g)
                n += 1
            break
    return n


def _is_oneway(d: dict[str, Any]) -> bool:
    ow = d.get("oneway", False)
    if isinstance(ow, list):
        return any(bool(x) and str(x).lower() not in ("false", "no", "0") for x in ow)
    if isinstance(ow, str):
        return ow.lower() in ("true", "yes", "1", "-1")
    return bool(ow)


def clean_graph(
    G: nx.MultiDiGraph,
    *,
    network_type: str = "drive",
    label: str = "<graph>",
    min_length_m: float = 5.0,
    walk_speed_kph: float = WALK_SPEED_KPH,
    bike_speed_kph: float = BIKE_SPEED_KPH,
) -> nx.MultiDiGraph:
    """Return a cleaned copy of ``G`` (see module docs); ``label`` names the map in errors."""
    import osmnx as ox

    H = G.copy()
    restore_reversed_geometry(H)
    canonical_tag_lists(H)
    H.remove_edges_from(list(nx.selfloop_edges(H, keys=True)))
    if H.number_of_edges() == 0:
        raise NoDrivableRoadError(f"map {label}: no {network_type} road left after cleaning")
    strongly = network_type == "drive"
    H = ox.truncate.largest_component(H, strongly=strongly)
    if H.number_of_edges() == 0 or H.number_of_nodes() < 2:
        raise NoDrivableRoadError(
            f"map {label}: the largest {'strongly ' if strongly else ''}connected {network_type} network has no links"
        )
    for _, _, d in H.edges(data=True):
        length = float(d.get("length", 0.0) or 0.0)
        if not math.isfinite(length) or length < min_length_m:
            length = float(min_length_m)
        d["length"] = length

    if network_type in ("walk", "bike"):
        speed = walk_speed_kph if network_type == "walk" else bike_speed_kph
        nx.set_edge_attributes(H, speed, "speed_kph")
    else:
        for _, _, d in H.edges(data=True):
            if d.get("highway") is None:
                d["highway"] = "road"
        # osmnx imputes a missing maxspeed by the mean of the same (first) highway value in the
        # map; values that are never tagged in this map get DEFAULT_SPEED_KPH of their class
        first, tagged = [], []
        for _, _, d in H.edges(data=True):
            h = d["highway"][0] if isinstance(d["highway"], list) else d["highway"]
            first.append(str(h))
            tagged.append(d.get("maxspeed") is not None)
        hwy_speeds = untagged_class_speeds(first, tagged)
        with warnings.catch_warnings():
            # osmnx fills an all-None speed column of a map without maxspeed tags; pandas 2.x warns
            # that it downcasts the object column (the values are the same)
            warnings.filterwarnings("ignore", "Downcasting object dtype arrays", FutureWarning)
            H = ox.add_edge_speeds(H, hwy_speeds=hwy_speeds, fallback=FALLBACK_SPEED_KPH)
        for _, _, d in H.edges(data=True):
            s = float(d["speed_kph"])
            if not math.isfinite(s) or s <= 0:
                d["speed_kph"] = FALLBACK_SPEED_KPH
    H = ox.add_edge_travel_times(H)

    for _, _, d in H.edges(data=True):
        d["lanes_n"], d["capacity_vph"], d["storage_veh"], d["hwy_class"] = lanes_and_capacity(d)
    return H


def lanes_and_capacity(d: dict[str, Any]) -> tuple[float, float, float, str]:
    """Step 4 for one edge's attributes (``highway``, ``lanes``, ``oneway``, ``length`` in m).

    Returns
    -------
    lanes_n, capacity_vph, storage_veh, hwy_class
        Lanes in the edge's direction, flow capacity (veh/h), storage capacity (vehicles) and the
        road class (:func:`highway_class`).
    """
    cls = highway_class(d.get("highway"))
    total = _lanes_total(d.get("lanes"))
    if total is None:
        lanes = DEFAULT_LANES.get(cls, 1.0)
    elif _is_oneway(d):
        lanes = total
    else:
        lanes = max(1.0, math.floor(total / 2.0))
    return (float(lanes), lanes * CAPACITY_VPH_PER_LANE.get(cls, OTHER_CAPACITY_VPH_PER_LANE),
            max(1.0, d["length"] * lanes / VEHICLE_LENGTH_M), cls)


def untagged_class_speeds(first_highway: list[str], has_maxspeed: list[bool]) -> dict[str, float]:
    """Speeds (km/h) of the highway values that no edge of the map tags with ``maxspeed``.

    ``first_highway[i]`` is edge ``i``'s first ``highway`` value and ``has_maxspeed[i]`` whether it
    has a ``maxspeed`` attribute; values never tagged get :data:`DEFAULT_SPEED_KPH` of their class
    (:data:`FALLBACK_SPEED_KPH` for unknown classes), the others are left to osmnx's imputation.
    """
    raw: dict[str, bool] = {}
    for h, tagged in zip(first_highway, has_maxspeed):
        raw[h] = raw.get(h, False) or tagged
    return {h: DEFAULT_SPEED_KPH.get(highway_class(h), FALLBACK_SPEED_KPH) for h, tagged in raw.items() if not tagged}


def lengths_ok(G: nx.MultiDiGraph) -> bool:
    """True when every edge has a finite, positive length (used by tests and ``maps info``)."""
    return all(np.isfinite(d["length"]) and d["length"] > 0 for _, _, d in G.edges(data=True))
