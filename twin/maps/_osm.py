"""Read OSM files (.osm, .osm.bz2, .osm.gz, .osm.pbf) with pyosmium and hand them to osmnx.

osmnx's ``graph_from_xml`` applies no tag filter: footways, buildings and abandoned rails would all
become edges. This module therefore reads any OSM format with pyosmium, keeps the highway ways that
pass osmnx's own network-type filter (the Overpass filter osmnx uses for downloads, parsed into
conditions), splits ways at references to nodes missing from the file (clipped extracts), and writes
the survivors to a temporary OSM XML file that ``osmnx.graph_from_xml`` turns into a graph. Building
footprints are read in the same pass (their centroids weight where homes and workplaces go).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from twin._errors import MapFormatError

__all__ = ["NETWORK_TYPES", "SHELTER_TAGS", "OsmExtract", "ShelterPlaces", "building_kind", "network_filter",
           "parse_levels", "read_osm", "read_shelter_places", "way_passes"]

NETWORK_TYPES = ("drive", "walk", "bike", "all")

# osmnx 2.x network filters (osmnx/_overpass.py::_get_network_filter), with settings.default_access
# = ["access"!~"private"]. tests/test_maps.py checks that these equal the installed osmnx's strings.
_ACCESS = '["access"!~"private"]'
_FILTERS = {
    "drive": (
        f'["highway"]["area"!~"yes"]{_ACCESS}'
        '["highway"!~"abandoned|bridleway|bus_guideway|construction|corridor|'
        "cycleway|elevator|escalator|footway|no|path|pedestrian|planned|platform|"
        'proposed|raceway|razed|rest_area|service|services|steps|track"]'
        '["motor_vehicle"!~"no"]["motorcar"!~"no"]'
        '["service"!~"alley|driveway|emergency_access|parking|parking_aisle|private"]'
    ),
    "walk": (
        f'["highway"]["area"!~"yes"]{_ACCESS}'
        '["highway"!~"abandoned|bus_guideway|construction|cycleway|motor|no|planned|'
        'platform|proposed|raceway|razed|rest_area|services"]'
        '["foot"!~"no"]["service"!~"private"]'
        '["sidewalk"!~"separate"]["sidewalk:both"!~"separate"]'
        '["sidewalk:left"!~"separate"]["sidewalk:right"!~"separate"]'
    ),
    "bike": (
        f'["highway"]["area"!~"yes"]{_ACCESS}'
        '["highway"!~"abandoned|bus_guideway|construction|corridor|elevator|'
        "escalator|footway|motor|no|planned|platform|proposed|raceway|razed|"
        'rest_area|services|steps"]'
        '["bicycle"!~"no"]["service"!~"private"]'
    ),
    "all": (
        f'["highway"]["area"!~"yes"]{_ACCESS}'
        '["highway"!~"abandoned|construction|no|planned|platform|proposed|raceway|'
        'razed|rest_area|services"]'
        '["service"!~"private"]'
    ),
}
# "all" is osmnx's "all_public": every highway in use that is not private.
OSMNX_NAME = {"drive": "drive", "walk": "walk", "bike": "bike", "all": "all_public"}

_COND = re.compile(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]')

# tags kept on ways/nodes (osmnx's settings.useful_tags_way / useful_tags_node)
_WAY_TAGS = (
    "bridge", "tunnel", "oneway", "lanes", "ref", "name", "highway", "maxspeed", "service",
    "access", "area", "landuse", "width", "est_width", "junction",
)
_NODE_TAGS = ("highway", "junction", "railway", "ref")

# building values that mark homes (kind 0); "yes" and a few placeholders are generic (kind 1: homes or
# jobs); every other tagged use (offices, factories...) holds jobs (kind 2); education (kind 3) and
# retail (kind 4) buildings also hold jobs.
BUILDING_RESIDENTIAL, BUILDING_GENERIC, BUILDING_WORK, BUILDING_EDUCATION, BUILDING_RETAIL = 0, 1, 2, 3, 4
GENERIC_BUILDINGS = frozenset({"yes", "building", "construction", "roof", "ruins"})
EDUCATION_BUILDINGS = frozenset({"school", "kindergarten", "university", "college"})
RETAIL_BUILDINGS = frozenset({"retail", "supermarket", "kiosk", "commercial", "mall", "shop", "department_store"})
RESIDENTIAL_BUILDINGS = frozenset({
    "apartments", "bungalow", "cabin", "detached", "dormitory", "farm", "house", "houseboat",
    "residential", "semidetached_house", "static_caravan", "terrace",
})


def network_filter(network_type: str) -> list[tuple[str, str | None, re.Pattern[str] | None]]:
    """Parse the osmnx Overpass filter of ``network_type`` into ``(key, op, regex)`` conditions.

    ``op`` is ``None`` (the key must exist), ``"~"`` (value must match) or ``"!~"`` (the key is
    absent or its value must not match), with Overpass's unanchored regex semantics.
    """
    if network_type not in _FILTERS:
        raise ValueError(f"network_type must be one of {', '.join(NETWORK_TYPES)}, got {network_type!r}")
    out = []
    for key, op, rx in _COND.findall(_FILTERS[network_type]):
        out.append((key, op or None, re.compile(rx) if op else None))
    return out


def way_passes(tags: dict[str, str], conditions) -> bool:
    """True when a way with ``tags`` passes every condition of :func:`network_filter`."""
    for key, op, rx in conditions:
        value = tags.get(key)
        if op is None:
            if value is None:
                return False
        elif op == "~":
            if value is None or not rx.search(value):
                return False
        elif value is not None and rx.search(value):  # "!~"
            return False
    return True


@dataclass
class OsmExtract:
    """What :func:`read_osm` keeps of an OSM file.

    Buildings (closed or open ways tagged ``building``; multipolygon relations are not read) are
    rows ``0..B-1`` in file order: ``building_osm_id`` (way id), ``building_kind`` (``BUILDING_*``),
    ``building_levels`` (float64: the first number of the ``building:levels`` tag, NaN when it is
    missing or holds no number), ``building_lonlat`` (the mean of the footprint's vertices present in
    the file, the closing vertex counted once: where the building snaps to the network) and the
    footprint ring ``building_ring_lonlat[building_ring_indptr[b]:building_ring_indptr[b + 1]]``
    (its distinct vertices, closing vertex dropped; empty when the way is not closed, has fewer
    than three distinct vertices or references nodes missing from the file).
    """

    n_highway_ways: int = 0  # ways with a highway tag, before the network-type filter
    n_kept_ways: int = 0  # after the filter
    n_missing_refs: int = 0  # node references not present in the file (clipped extracts)
    node_lonlat: dict[int, tuple[float, float]] = field(default_factory=dict)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    ways: list[tuple[int, list[int], dict[str, str]]] = field(default_factory=list)
    building_lonlat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    building_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    building_osm_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    building_levels: np.ndarray = field(default_factory=lambda: np.zeros(0))
    building_ring_indptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    building_ring_lonlat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def read_osm(path: Path, network_type: str) -> OsmExtract:
    """Read the highway ways that pass ``network_type``'s filter, and building centroids.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` file.
    network_type
        One of :data:`NETWORK_TYPES`.

    Raises
    ------
    MapFormatError
        The file cannot be parsed (truncated, corrupt, not OSM).
    """
    import osmium

    conditions = network_filter(network_type)
    ext = OsmExtract()
    raw_ways: list[tuple[int, list[int], dict[str, str]]] = []
    buildings: list[tuple[list[int], int]] = []
    needed: set[int] = set()
    try:
        # pass 1: ways (node locations come in pass 2 so that negative ids, as in JOSM exports,
        # and references to nodes missing from clipped extracts are handled alike)
        ways = osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(
            osmium.filter.KeyFilter("highway", "building")
        )
        for w in ways:
            tags = w.tags
            if "highway" in tags:
                ext.n_highway_ways += 1
                tagd = {k: tags[k] for k in ("highway", *_FILTER_KEYS) if k in tags}
                if not way_passes(tagd, conditions):
                    continue
                refs = [n.ref for n in w.nodes]
                if len(refs) < 2:
                    continue
                keep = {k: tags[k] for k in _WAY_TAGS if k in tags}
                raw_ways.append((w.id, refs, keep))
                needed.update(refs)
            elif "building" in tags:
                refs = [n.ref for n in w.nodes]
                if refs:
                    buildings.append((refs, building_kind(tags["building"]), w.id,
                                      parse_levels(tags.get("building:levels"))))
                    needed.update(refs)
        for n in osmium.FileProcessor(str(path), osmium.osm.NODE):
            if n.id in needed:
                loc = n.location
                if loc.valid():
                    ext.node_lonlat[n.id] = (loc.lon, loc.lat)
                    if len(n.tags):
                        t = {k: n.tags[k] for k in _NODE_TAGS if k in n.tags}
                        if t:
                            ext.node_tags[n.id] = t
    except osmium.InvalidLocationError as exc:  # a node at latitude 999, a coordinate that is not a number
        raise MapFormatError(f"{path}: a node has an invalid location ({_short(exc)}); latitudes must lie in "
                             "[-90, 90] and longitudes in [-180, 180]") from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise MapFormatError(f"{path}: cannot read OSM data ({_short(exc)}); the file is truncated, "
                             "corrupt or not an OSM file (.osm, .osm.bz2, .osm.gz, .osm.pbf)") from exc

    lonlat = ext.node_lonlat
    synthetic = -(10**15)
    for wid, refs, tags in raw_ways:
        # split at references to nodes missing from the file: keep each contiguous run of >= 2 nodes
        runs: list[list[int]] = []
        cur: list[int] = []
        for r in refs:
            if r in lonlat:
                cur.append(r)
            else:
                ext.n_missing_refs += 1
                if len(cur) >= 2:
                    runs.append(cur)
                cur = []
        if len(cur) >= 2:
            runs.append(cur)
        for j, run in enumerate(runs):
            if j == 0:
                ext.ways.append((wid, run, tags))
            else:
                synthetic -= 1
                ext.ways.append((synthetic, run, tags))
    ext.n_kept_ways = len(ext.ways)

    cents = []
    resid = []
    osm_ids = []
    levels = []
    ring_ptr = [0]
    ring: list[tuple[float, float]] = []
    for refs, kind, wid, lev in buildings:
        pts = [lonlat[r] for r in refs if r in lonlat]
        if len(pts) > 1 and pts[0] == pts[-1]:
            pts = pts[:-1]
        if pts:
            a = np.asarray(pts)
            cents.append(a.mean(axis=0))
            resid.append(kind)
            osm_ids.append(wid)
            levels.append(lev)
            if len(refs) >= 4 and refs[0] == refs[-1] and len(pts) == len(refs) - 1 and len(set(refs)) >= 3:
                ring.extend(pts)
            ring_ptr.append(len(ring))
    if cents:
        ext.building_lonlat = np.asarray(cents, dtype=np.float64)
        ext.building_kind = np.asarray(resid, dtype=np.int8)
        ext.building_osm_id = np.asarray(osm_ids, dtype=np.int64)
        ext.building_levels = np.asarray(levels, dtype=np.float64)
        ext.building_ring_indptr = np.asarray(ring_ptr, dtype=np.int64)
        ext.building_ring_lonlat = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    return ext


def building_kind(value: str) -> int:
    """The ``BUILDING_*`` kind of a ``building=*`` value (see the module's building sets)."""
    return (BUILDING_RESIDENTIAL if value in RESIDENTIAL_BUILDINGS
            else BUILDING_GENERIC if value in GENERIC_BUILDINGS
            else BUILDING_EDUCATION if value in EDUCATION_BUILDINGS
            else BUILDING_RETAIL if value in RETAIL_BUILDINGS else BUILDING_WORK)


_LEVELS = re.compile(r"\d+(?:[.,]\d+)?")


def parse_levels(value: str | None) -> float:
    """Number of storeys from a ``building:levels`` value: its first number (``"3"`` → 3,
    ``"2,5"`` → 2.5, ``"3;4"`` → 3); NaN when the tag is missing or holds no number."""
    if value is None:
        return float("nan")
    m = _LEVELS.search(value)
    return float(m.group(0).replace(",", ".")) if m else float("nan")


_FILTER_KEYS = tuple(sorted({k for f in _FILTERS.values() for k, _, _ in _COND.findall(f)} - {"highway"}))


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return msg[0][:160] if msg else type(exc).__name__


def write_osm_xml(ext: OsmExtract, directory: Path) -> Path:
    """Write the kept ways and their nodes as OSM XML for ``osmnx.graph_from_xml``."""
    used: set[int] = set()
    for _, refs, _ in ext.ways:
        used.update(refs)
    fd, name = tempfile.mkstemp(suffix=".osm", dir=directory)
    out = Path(name)
    with open(fd, "w", encoding="utf-8") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6' generator='citytwin'>\n")
        for nid in sorted(used):
            lon, lat = ext.node_lonlat[nid]
            tags = ext.node_tags.get(nid)
            if tags:
                f.write(f"<node id='{nid}' lat='{lat!r}' lon='{lon!r}'>")
                for k, v in tags.items():
                    f.write(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>")
                f.write("</node>\n")
            else:
                f.write(f"<node id='{nid}' lat='{lat!r}' lon='{lon!r}'/>\n")
        for wid, refs, tags in ext.ways:
            f.write(f"<way id='{wid}'>")
            for r in refs:
                f.write(f"<nd ref='{r}'/>")
            for k, v in tags.items():
                f.write(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>")
            f.write("</way>\n")
        f.write("</osm>\n")
    return out


#: OSM tags of places that take in evacuees (docs/evacuation.md): key -> values
SHELTER_TAGS: dict[str, frozenset[str]] = {
    "emergency": frozenset({"assembly_point", "shelter"}),
    "social_facility": frozenset({"shelter"}),
    "amenity": frozenset({"shelter", "community_centre"}),
}
#: ``amenity=shelter`` types that shelter from rain, not from a hazard (bus stops, picnic roofs, huts)
NOT_REFUGES = frozenset({"public_transport", "picnic_shelter", "weather_shelter", "lean_to", "basic_hut",
                         "field_shelter", "rock_shelter", "sun_shelter", "gazebo", "changing_rooms", "wildlife_hide"})


@dataclass
class ShelterPlaces:
    """Nodes and ways of an OSM file tagged as places that take in evacuees (:data:`SHELTER_TAGS`).

    Attributes
    ----------
    osm_id : int64 (k,)
        Node id, or way id (a way's place is the mean of its nodes).
    lon, lat : float64 (k,)
    capacity : float64 (k,)
        The ``capacity`` tag (persons; NaN when absent or not a number).
    tag : list of str
        The matching ``key=value``.
    """

    osm_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    capacity: np.ndarray
    tag: list[str]


def _shelter_tag(tags: object) -> str | None:
    get = tags.get  # type: ignore[attr-defined]  # osmium's TagList
    for key, values in SHELTER_TAGS.items():
        v = get(key)
        if v in values:
            if key == "amenity" and v == "shelter" and get("shelter_type") in NOT_REFUGES:
                continue
            return f"{key}={v}"
    return None


def read_shelter_places(path: Path) -> ShelterPlaces:
    """The places of ``path`` tagged as shelters or assembly points (nodes, and ways by the mean of
    their nodes; multipolygon relations are left out). Raises ``MapFormatError`` for an unreadable
    file."""
    import osmium

    ids: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    cap: list[float] = []
    tag: list[str] = []
    ways: list[tuple[int, list[int], float, str]] = []
    needed: set[int] = set()

    def capacity(tags: object) -> float:
        try:
            return float(tags.get("capacity", "nan"))  # type: ignore[attr-defined]
        except ValueError:
            return float("nan")

    keys = tuple(SHELTER_TAGS)
    try:
        for w in osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(osmium.filter.KeyFilter(*keys)):
            t = _shelter_tag(w.tags)
            if t is not None:
                refs = [n.ref for n in w.nodes]
                ways.append((w.id, refs, capacity(w.tags), t))
                needed.update(refs)
        where: dict[int, tuple[float, float]] = {}
        for n in osmium.FileProcessor(str(path), osmium.osm.NODE):
            loc = n.location
            if not loc.valid():
                continue
            if n.id in needed:
                where[n.id] = (loc.lon, loc.lat)
            if len(n.tags):
                t = _shelter_tag(n.tags)
                if t is not None:
                    ids.append(n.id)
                    lon.append(loc.lon)
                    lat.append(loc.lat)
                    cap.append(capacity(n.tags))
                    tag.append(t)
    except (RuntimeError, ValueError, OSError) as exc:
        raise MapFormatError(f"{path}: cannot read OSM data ({_short(exc)})") from exc
    for wid, refs, c, t in ways:
        pts = [where[r] for r in dict.fromkeys(refs) if r in where]
        if pts:
            a = np.asarray(pts)
            ids.append(wid)
            lon.append(float(a[:, 0].mean()))
            lat.append(float(a[:, 1].mean()))
            cap.append(c)
            tag.append(t)
    return ShelterPlaces(np.asarray(ids, np.int64), np.asarray(lon, np.float64), np.asarray(lat, np.float64),
                         np.asarray(cap, np.float64), tag)
