"""Hazard areas that spread in stages, and the links, nodes and points they reach.

A hazard is a base geometry (WGS84: polygons read from a GeoJSON or GeoPackage file with
:func:`read_hazard_geometry`, or points and lines given a ``radius_m``) with an onset time and a
list of growth stages (:class:`HazardStages`): from ``onset_s`` the area is the base buffered by
``radius_m`` (stage 0), and from each later stage's ``at_s`` the base buffered by
``radius_m + grow_m`` (a flood that widens every 20 minutes is stages ``(1200, 100), (2400, 200),
...``). Buffering is done in the network's metric CRS (UTM metres), never in degrees; every
stage keeps its polygon in metres and in WGS84.

What a hazard reaches is computed once per scenario, as the *first* stage that reaches each
element, ``-1`` for never:

* :func:`links_hit`: the first stage whose polygon intersects a link's street geometry (its
  polyline, ``link_geom_lon/lat``, not the chord between its nodes), for closing or slowing the
  link at step resolution: link ``e`` is affected at stage ``s`` when ``0 <= hit[e] <= s``
  (:func:`reached`);
* :func:`nodes_hit` and :func:`points_hit`: the first stage whose polygon holds a node or a point
  (people at risk); :func:`points_inside` tests one stage.

A point on a polygon's boundary counts as inside, and a link that only touches a polygon's
boundary is hit (the ``intersects`` predicate throughout). All the work is vectorised: the link
polylines are built once with :func:`shapely.linestrings`, and one :class:`shapely.STRtree`
query answers every stage at once; Python loops run only over the (few) stages.

:func:`distance_rings` and :func:`zone_of_points` serve evacuation orders staged by distance
rings around a centre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from twin.network.road_network import RoadNetwork

__all__ = [
    "flood_speed_mps",
    "HazardStages",
    "read_hazard_geometry",
    "link_lines_m",
    "links_hit",
    "nodes_hit",
    "points_hit",
    "points_inside",
    "reached",
    "distance_rings",
    "zone_of_points",
]

#: segments per quarter circle of the buffers: a buffered point's area is within 0.17 % of π·r²
QUAD_SEGS = 16

_TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
               "GeometryCollection")


# ------------------------------------------------------------------------------------ helpers
def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _transformer(src: str, dst: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def _reproject(geom: Any, src: str, dst: str) -> Any:
    """``geom`` (a geometry or an array of them), vertices transformed from ``src`` to ``dst``
    (edges stay straight lines in both)."""
    tr = _transformer(src, dst)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([np.asarray(x, np.float64), np.asarray(y, np.float64)])

    return shapely.transform(geom, fn)


def _polygon_parts(geoms: Any) -> np.ndarray:
    """The polygons in a geometry or an array of them, collections opened (object array)."""
    parts = shapely.get_parts(np.asarray(geoms, dtype=object).reshape(-1))
    nested = shapely.get_type_id(parts) == 7  # GeometryCollection
    while nested.any():  # collections inside collections (make_valid can return them)
        parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
        nested = shapely.get_type_id(parts) == 7
    return np.asarray(parts[shapely.get_type_id(parts) == 3], dtype=object)  # MultiPolygons were opened


def _polygonal_part(geoms: Any) -> BaseGeometry:
    """The union of the polygons in ``geoms``, invalid ones made valid first (an empty polygon
    when there are none)."""
    polys = _polygon_parts(geoms)
    bad = ~shapely.is_valid(polys)
    if bad.any():
        polys = np.concatenate([polys[~bad], _polygon_parts(shapely.make_valid(polys[bad]))])
    polys = polys[~shapely.is_empty(polys)]
    if polys.size == 0:
        return shapely.Polygon()
    return shapely.union_all(polys)


def _metric_crs(crs: str) -> str:
    """``crs`` checked to be a projected CRS in metres."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError as exc:
        raise ValueError(f"hazard crs {crs!r} is not a coordinate reference system: {_reason(exc)}") from None
    units = {a.unit_name for a in c.axis_info}
    if not c.is_projected or not units <= {"metre", "meter"}:
        raise ValueError(f"hazard crs {crs!r} must be a projected CRS in metres (the network's UTM crs)")
    return crs


def _check_lonlat(geom: BaseGeometry, what: str) -> None:
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise ValueError(f"{what} has coordinates that are not finite numbers")
    if xy.size and (np.abs(xy[:, 0]).max() > 180.0 or np.abs(xy[:, 1]).max() > 90.0):
        raise ValueError(f"{what} has coordinates outside longitude [-180, 180] / latitude [-90, 90]")


def _first_hit(query: np.ndarray, tree_geoms: np.ndarray) -> np.ndarray:
    """int32 (len(tree_geoms),): the smallest index ``k`` of a ``query`` geometry that intersects
    each tree geometry, ``-1`` for none (one vectorised :class:`shapely.STRtree` query)."""
    n = len(tree_geoms)
    first = np.full(n, len(query), dtype=np.int64)
    if n and len(query):
        q_idx, t_idx = shapely.STRtree(tree_geoms).query(query, predicate="intersects")
        np.minimum.at(first, t_idx, q_idx)
    return np.where(first == len(query), -1, first).astype(np.int32)


# ------------------------------------------------------------------------------------ reading
def read_hazard_geometry(path: str | Path) -> BaseGeometry:
    """The union of the polygons of a GeoJSON or GeoPackage file, in WGS84 (lon/lat).

    The file is read with :func:`geopandas.read_file` (first layer) and reprojected to
    EPSG:4326 when it has another CRS; a file without a CRS is taken as WGS84 (as GeoJSON
    says) if its coordinates are longitudes and latitudes. Polygons and multipolygons (also
    inside geometry collections) are kept; points and lines in the file are ignored. A polygon
    that is invalid only because it intersects itself (a bow-tie, a ring that crosses itself) is
    repaired with :func:`shapely.make_valid` and its polygonal part kept, not refused.

    Parameters
    ----------
    path
        A ``.geojson``/``.json``, ``.gpkg`` or any other vector file GDAL reads.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        Valid, two-dimensional, not empty.

    Raises
    ------
    ValueError
        One line naming the file: it cannot be read, holds no polygon, has no usable CRS, or
        has geometry that cannot be repaired (coordinates that are not finite, no area left).
    """
    import geopandas as gpd

    name = str(path)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - every reading problem is the file's, one line
        raise ValueError(f"hazard file {name}: cannot be read: {_reason(exc)}") from None
    try:
        geoms = np.asarray(gdf.geometry.values, dtype=object).reshape(-1)
    except AttributeError:  # a table without a geometry column
        geoms = np.zeros(0, dtype=object)
    geoms = geoms[~shapely.is_missing(geoms)]
    geoms = geoms[~shapely.is_empty(geoms)]
    if geoms.size == 0:
        raise ValueError(f"hazard file {name}: holds no geometry (no polygon)")
    geoms = shapely.force_2d(geoms)
    if not np.isfinite(shapely.get_coordinates(geoms)).all():
        raise ValueError(f"hazard file {name}: invalid geometry: coordinates that are not finite numbers")
    src_crs = getattr(gdf, "crs", None)
    if src_crs is not None and not src_crs.equals("EPSG:4326"):
        try:
            geoms = _reproject(geoms, src_crs.to_wkt(), "EPSG:4326")
        except Exception as exc:  # noqa: BLE001 - a CRS pyproj cannot use is the file's problem
            raise ValueError(f"hazard file {name}: cannot reproject from {src_crs} to EPSG:4326: "
                             f"{_reason(exc)}") from None
    if _polygon_parts(geoms).size == 0:
        kinds = sorted(set(shapely.get_type_id(shapely.get_parts(geoms)).tolist()))
        names = ", ".join(_TYPE_NAMES[k] for k in kinds if 0 <= k < len(_TYPE_NAMES))
        raise ValueError(f"hazard file {name}: holds no polygon (only {names})")
    try:
        poly = _polygonal_part(geoms)
    except GEOSException as exc:
        raise ValueError(f"hazard file {name}: invalid geometry: {_reason(exc)}") from None
    if poly.is_empty or not poly.is_valid or poly.area <= 0.0:
        raise ValueError(f"hazard file {name}: invalid geometry: no polygon with an area after repair")
    try:
        _check_lonlat(poly, f"hazard file {name}")
    except ValueError as exc:
        hint = "" if src_crs is not None else " (the file has no CRS, so WGS84 was assumed)"
        raise ValueError(f"{exc}{hint}") from None
    return poly


# ------------------------------------------------------------------------------------ stages
class HazardStages:
    """A hazard area growing in stages, each a buffer of one base geometry in metres.

    Stage 0 starts at ``onset_s`` and is the base buffered by ``radius_m``; stage ``k >= 1``
    starts at ``stages[k-1][0]`` and is the base buffered by ``radius_m + stages[k-1][1]`` (its
    growth beyond the onset area). Growth never decreases, so each stage holds the one before it
    (buffers of one base by growing distances are nested; with the buffers' polygonal
    approximation of arcs, two stages whose distances differ by less than about 0.1 % of the
    distance may not be nested exactly: :func:`links_hit` and friends return the *first* stage
    that reaches an element, whatever the later ones do). Once active a hazard does not recede.

    Parameters
    ----------
    base_lonlat
        The hazard's base geometry in WGS84 lon/lat: polygons (:func:`read_hazard_geometry`),
        or points and lines, which need ``radius_m > 0``.
    crs
        The network's metric CRS (``net.crs``, a UTM EPSG string); buffers are in its metres.
    onset_s
        When the hazard starts (seconds on the simulation clock).
    stages
        ``[(at_s, grow_m), ...]`` or ``[(at_s, grow_m, intensity), ...]``: from ``at_s`` the
        area is the base buffered by ``radius_m + grow_m``. ``at_s`` strictly increasing and
        after ``onset_s``; ``grow_m`` finite, >= 0, never decreasing.
    radius_m
        Buffer distance of stage 0 (default 0: the polygons as they are). Required (> 0) when
        the base holds points or lines.
    intensity
        Optional depth or intensity of stage 0 (NaN: not given); a later stage without one
        keeps the stage before's.
    quad_segs
        Segments per quarter circle of the buffers (:data:`QUAD_SEGS`).

    Attributes
    ----------
    crs : str
    times_s : float64 (n_stages,)
        Stage start times, strictly increasing; ``times_s[0] == onset_s``.
    buffer_m : float64 (n_stages,)
        Each stage's buffer distance of the base (``radius_m + grow_m``; ``radius_m`` at stage 0).
    intensity : float64 (n_stages,)
        Each stage's depth or intensity (NaN where none was ever given).
    polygons_m, polygons_lonlat : object (n_stages,)
        Each stage's area as a shapely (multi)polygon, in metres in ``crs`` and in WGS84.

    Raises
    ------
    ValueError
        A stage list that is not as above, an empty or non-finite base, a base of points or
        lines without ``radius_m > 0``, or a CRS that is not projected in metres.
    """

    def __init__(
        self,
        base_lonlat: BaseGeometry,
        crs: str,
        onset_s: float,
        stages: Sequence[Sequence[float]] = (),
        *,
        radius_m: float = 0.0,
        intensity: float = math.nan,
        quad_segs: int = QUAD_SEGS,
    ) -> None:
        self.crs = _metric_crs(crs)
        given: object = base_lonlat
        if not isinstance(given, BaseGeometry) or given.is_empty:
            raise ValueError("hazard base geometry is empty or not a shapely geometry")
        base = shapely.force_2d(base_lonlat)
        _check_lonlat(base, "hazard base geometry")
        if not base.is_valid:  # a self-intersecting polygon: repaired, as read_hazard_geometry does
            base = shapely.make_valid(base)
        radius_m = float(radius_m)
        onset_s = float(onset_s)
        if not math.isfinite(onset_s):
            raise ValueError(f"hazard onset_s must be a finite number, got {onset_s}")
        if not (math.isfinite(radius_m) and radius_m >= 0.0):
            raise ValueError(f"hazard radius_m must be a finite number >= 0, got {radius_m}")
        parts = shapely.get_parts(base)
        non_area = ~np.isin(shapely.get_type_id(parts), (3, 6, 7))
        if non_area.any() and radius_m <= 0.0:
            raise ValueError("hazard base geometry holds points or lines: give radius_m > 0 to buffer them")

        times, grows, intens = [onset_s], [0.0], [float(intensity)]
        for i, st in enumerate(stages):
            try:
                vals = [float(v) for v in st]
            except (TypeError, ValueError):
                raise ValueError(f"hazard stage {i + 1}: expected (at_s, grow_m[, intensity]), got {st!r}") from None
            if len(vals) not in (2, 3):
                raise ValueError(f"hazard stage {i + 1}: expected (at_s, grow_m[, intensity]), got {st!r}")
            at_s, grow_m = vals[0], vals[1]
            if not (math.isfinite(at_s) and math.isfinite(grow_m)):
                raise ValueError(f"hazard stage {i + 1}: at_s and grow_m must be finite numbers, got {st!r}")
            if at_s <= times[-1]:
                raise ValueError(f"hazard stage {i + 1}: at_s={at_s:g} must be after the previous stage's "
                                 f"start {times[-1]:g} (onset_s={onset_s:g}); stage times strictly increase")
            if grow_m < 0.0:
                raise ValueError(f"hazard stage {i + 1}: grow_m={grow_m:g} must be >= 0")
            if grow_m < grows[-1]:
                raise ValueError(f"hazard stage {i + 1}: grow_m={grow_m:g} is less than the previous stage's "
                                 f"{grows[-1]:g}; a hazard area only grows")
            times.append(at_s)
            grows.append(grow_m)
            intens.append(vals[2] if len(vals) == 3 else intens[-1])
        self.onset_s = onset_s
        self.times_s = np.asarray(times, dtype=np.float64)
        self.buffer_m = radius_m + np.asarray(grows, dtype=np.float64)
        self.intensity = np.asarray(intens, dtype=np.float64)

        base_m = _reproject(base, "EPSG:4326", self.crs)
        area_m = _polygonal_part(base_m)
        polys = np.empty(self.times_s.size, dtype=object)
        for k, d in enumerate(self.buffer_m.tolist()):  # a few stages, not a hot path
            polys[k] = area_m if d == 0.0 else _polygonal_part(shapely.buffer(base_m, d, quad_segs=quad_segs))
        if shapely.is_empty(polys).any() or float(shapely.area(polys[0])) <= 0.0:
            raise ValueError("hazard base geometry has no area at onset (radius_m = 0 and no polygon with an area)")
        self.polygons_m: np.ndarray = polys
        self.polygons_lonlat: np.ndarray = np.array(
            [_reproject(p, self.crs, "EPSG:4326") for p in polys], dtype=object)

    @classmethod
    def from_file(cls, path: str | Path, crs: str, onset_s: float, stages: Sequence[Sequence[float]] = (),
                  **kwargs: Any) -> HazardStages:
        """Stages of the polygons of a GeoJSON or GeoPackage file (:func:`read_hazard_geometry`)."""
        return cls(read_hazard_geometry(path), crs, onset_s, stages, **kwargs)

    @property
    def n_stages(self) -> int:
        """Number of stages (the onset is stage 0)."""
        return int(self.times_s.size)

    @overload
    def stage_at(self, t_s: float) -> int: ...
    @overload
    def stage_at(self, t_s: np.ndarray) -> np.ndarray: ...

    def stage_at(self, t_s: float | np.ndarray) -> int | np.ndarray:
        """The stage active at time ``t_s``: the last one with ``times_s[k] <= t_s``, ``-1`` before
        the onset. An array of times gives an int32 array of stages."""
        k = np.searchsorted(self.times_s, t_s, side="right") - 1
        if np.ndim(k) == 0:
            return int(k)
        return np.asarray(k, dtype=np.int32)

    def _check_stage(self, stage: int) -> int:
        s = int(stage)
        if not -1 <= s < self.n_stages:
            raise IndexError(f"hazard stage {stage} out of range -1..{self.n_stages - 1}")
        return s

    def polygon_m(self, stage: int) -> BaseGeometry:
        """Stage ``stage``'s area in metres (``crs``); an empty polygon for stage -1."""
        s = self._check_stage(stage)
        return shapely.Polygon() if s < 0 else self.polygons_m[s]

    def polygon_lonlat(self, stage: int) -> BaseGeometry:
        """Stage ``stage``'s area in WGS84 lon/lat; an empty polygon for stage -1."""
        s = self._check_stage(stage)
        return shapely.Polygon() if s < 0 else self.polygons_lonlat[s]

    def nested(self) -> bool:
        """Whether every stage's polygon covers the one before it (true but for buffer rounding)."""
        p = self.polygons_m
        return bool(shapely.covers(p[1:], p[:-1]).all()) if p.size > 1 else True

    def __repr__(self) -> str:
        return (f"HazardStages(n_stages={self.n_stages}, onset_s={self.onset_s:g}, "
                f"buffer_m={self.buffer_m.tolist()}, crs={self.crs!r})")


# ------------------------------------------------------------------------------- what it hits
def _check_net_crs(stages: HazardStages, net: RoadNetwork) -> None:
    if stages.crs != net.crs:
        raise ValueError(f"hazard crs {stages.crs!r} is not the network's {net.crs!r}: build HazardStages with net.crs")


def link_lines_m(net: RoadNetwork) -> np.ndarray:
    """The links' street polylines (``link_geom_lon/lat``) in metres in ``net.crs``: an object
    array (n_links,) of shapely ``LineString``, built in one vectorised call."""
    ptr, lon, lat = net.link_geom_indptr, net.link_geom_lon, net.link_geom_lat
    assert ptr is not None and lon is not None and lat is not None  # set by RoadNetwork.__post_init__
    if net.n_links == 0:
        return np.zeros(0, dtype=object)
    x, y = _transformer("EPSG:4326", net.crs).transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    counts = np.asarray(np.diff(np.asarray(ptr, np.int64)), dtype=np.int64)
    idx = np.repeat(np.arange(net.n_links), counts)
    return np.asarray(shapely.linestrings(np.column_stack([x, y]), indices=idx), dtype=object)


def links_hit(stages: HazardStages, net: RoadNetwork, *, lines_m: np.ndarray | None = None) -> np.ndarray:
    """int32 (n_links,): the first stage whose polygon intersects each link's street geometry.

    The polyline of each link (``link_geom_lon/lat`` projected to ``net.crs``), not the chord
    between its nodes, is tested, so a curved street that bends into the hazard is hit. A link
    touching a polygon's boundary is hit. ``-1``: no stage reaches the link. A link is affected
    (closed or slowed) at stage ``s`` when ``0 <= hit <= s`` (:func:`reached`).

    Parameters
    ----------
    stages
        The hazard, built with ``crs=net.crs``.
    net
        The road network.
    lines_m
        The links' polylines in metres (:func:`link_lines_m`), to reuse across hazards.

    Raises
    ------
    ValueError
        The hazard's CRS is not the network's.
    """
    _check_net_crs(stages, net)
    lines = link_lines_m(net) if lines_m is None else lines_m
    if len(lines) != net.n_links:
        raise ValueError(f"lines_m has {len(lines)} lines for {net.n_links} links")
    return _first_hit(stages.polygons_m, lines)


def points_hit(stages: HazardStages, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """int32 (n,): the first stage whose polygon holds each point (metres in ``stages.crs``;
    on the boundary counts as inside), ``-1`` for none."""
    x, y = np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)
    return _first_hit(stages.polygons_m, np.asarray(shapely.points(x, y), dtype=object).reshape(-1))


def nodes_hit(stages: HazardStages, net: RoadNetwork) -> np.ndarray:
    """int32 (n_nodes,): the first stage whose polygon holds each node (``node_x_m/y_m``; on the
    boundary counts as inside), ``-1`` for none.

    Raises
    ------
    ValueError
        The hazard's CRS is not the network's.
    """
    _check_net_crs(stages, net)
    return points_hit(stages, net.node_x_m, net.node_y_m)


def points_inside(stages: HazardStages, stage: int, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """bool (n,): which points (metres in ``stages.crs``) lie in stage ``stage``'s polygon, the
    boundary included (:func:`shapely.intersects_xy`); all false for stage ``-1``."""
    x, y = np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)
    poly = stages.polygon_m(stage)
    if poly.is_empty:
        return np.zeros(x.shape, dtype=bool)
    shapely.prepare(poly)
    return np.asarray(shapely.intersects_xy(poly, x, y), dtype=bool)


def reached(first_stage: np.ndarray, stage: int) -> np.ndarray:
    """bool: which elements a hazard at stage ``stage`` has reached, from :func:`links_hit`,
    :func:`nodes_hit` or :func:`points_hit` (``0 <= first_stage <= stage``; none for -1)."""
    f = np.asarray(first_stage)
    return (f >= 0) & (f <= int(stage))


# ------------------------------------------------------------------------------ distance rings
def distance_rings(center_lon: float, center_lat: float, radii_m: Sequence[float] | np.ndarray, crs: str, *,
                   quad_segs: int = 64) -> np.ndarray:
    """Rings (annuli) around a centre, in metres in ``crs``, for evacuation orders by distance.

    Ring 0 is the disc of radius ``radii_m[0]``, ring ``k`` the annulus between ``radii_m[k-1]``
    and ``radii_m[k]`` (planar distance in ``crs`` from the projected centre). The circles are
    polygons of ``4 * quad_segs`` sides inscribed in them (at 64, within 0.008 % of the radius).

    Parameters
    ----------
    center_lon, center_lat
        The centre, WGS84 degrees.
    radii_m
        Outer radii, strictly increasing, > 0.
    crs
        The network's metric CRS.
    quad_segs
        Segments per quarter circle.

    Returns
    -------
    object (len(radii_m),)
        Shapely polygons (ring 0 a disc, the others with one hole).

    Raises
    ------
    ValueError
        Radii that are not finite, positive and strictly increasing; a bad centre or CRS.
    """
    crs = _metric_crs(crs)
    r = np.asarray(radii_m, dtype=np.float64).reshape(-1)
    if r.size == 0 or not np.isfinite(r).all() or (r <= 0).any() or (np.diff(r) <= 0).any():
        raise ValueError(f"distance ring radii_m must be finite, > 0 and strictly increasing, got {r.tolist()}")
    if not (math.isfinite(center_lon) and math.isfinite(center_lat)
            and abs(center_lon) <= 180.0 and abs(center_lat) <= 90.0):
        raise ValueError(f"distance ring centre ({center_lon}, {center_lat}) is not a WGS84 lon/lat")
    cx, cy = _transformer("EPSG:4326", crs).transform(float(center_lon), float(center_lat))
    discs = shapely.buffer(shapely.points(np.full(r.size, cx), np.full(r.size, cy)), r, quad_segs=quad_segs)
    inner = np.concatenate([[shapely.Polygon()], discs[:-1]])
    return np.asarray(shapely.difference(discs, inner), dtype=object)


def zone_of_points(zones_m: Sequence[BaseGeometry] | np.ndarray, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """int32 (n,): the index of the first zone (in order) holding each point, ``-1`` for none.

    A point on the boundary of a zone is in it (so a point on the circle between two
    :func:`distance_rings` is in the inner ring). One vectorised :class:`shapely.STRtree` query.
    """
    zones = np.asarray(zones_m, dtype=object).reshape(-1)
    x, y = np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)
    return _first_hit(zones, np.asarray(shapely.points(x, y), dtype=object).reshape(-1))


def flood_speed_mps(depth_m: float | np.ndarray) -> np.ndarray:
    """The safe driving speed in standing water ``depth_m`` deep: Pregnolato et al. (2017), "The
    impact of flooding on road transport: a depth-disruption function", Transportation Research
    Part D 55, eq. 3: v = 0.0009 d² − 0.5529 d + 86.9448 km/h for a depth d in mm, and 0 (the road
    impassable) from 300 mm on. Returned in m/s."""
    d_mm = np.asarray(depth_m, dtype=np.float64) * 1000.0
    v_kph = 0.0009 * d_mm**2 - 0.5529 * d_mm + 86.9448
    out: np.ndarray = np.where(d_mm >= 300.0, 0.0, np.maximum(v_kph, 0.0)) / 3.6
    return out
