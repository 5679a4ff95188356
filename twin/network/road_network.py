"""`RoadNetwork`: a cleaned road graph compiled once into flat numpy arrays (CSR).

Dense integer indices inside, OSM ids at the edges: nodes are numbered ``0..n_nodes-1`` in order of
their OSM id, links ``0..n_links-1`` in CSR order (sorted by tail node, then head node, then the
osmnx edge key), so ``link_head[indptr[u]:indptr[u+1]]`` are the heads of the links leaving ``u``.
Compiled networks are cached on disk, keyed by the map file's content hash and the options, so the
second load of a map skips parsing and cleaning.

Each link also keeps its street's shape: the polyline of link ``e`` is
``link_geom_lon/lat[link_geom_indptr[e]:link_geom_indptr[e+1]]`` (WGS84 degrees, at least two
vertices, the first exactly its tail node's coordinates and the last its head node's), the
``geometry`` osmnx's simplification leaves on merged edges, or the straight chord for links
without one. Only outputs and maps read it: routing and the simulation use ``link_length_m``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from twin import settings
from twin.maps import Buildings
from twin.network.buildings import BuildingTable, building_table
from twin.network.clean import HIGHWAY_CLASSES, clean_graph

__all__ = ["RoadNetwork", "FORMAT_VERSION", "cache_key", "clean_options_with_defaults", "utm_crs"]


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


FORMAT_VERSION = 6  # 4: tag lists of merged ways in a fixed order; 5: link polylines (link_geom_*);
# 6: the buildings table (building_*)

_ARRAYS = (
    "node_osmid", "node_lon", "node_lat", "node_x_m", "node_y_m", "indptr", "link_tail", "link_head",
    "link_osmid", "link_key", "link_length_m", "link_speed_mps", "link_fftt_s", "link_lanes",
    "link_capacity_vph", "link_storage_veh", "link_class", "node_home_weight", "node_work_weight",
    "node_school_weight", "node_shop_weight", "link_geom_indptr", "link_geom_lon", "link_geom_lat",
)


def clean_options_with_defaults(clean_options: dict[str, Any]) -> dict[str, Any]:
    """Every option of :func:`~twin.network.clean.clean_graph` (keyword-only ones but ``label``),
    ``clean_options`` over the defaults, numbers as floats (``5`` and ``5.0`` are one option).

    Raises
    ------
    TypeError
        An option :func:`~twin.network.clean.clean_graph` does not take.
    """
    import inspect

    params = inspect.signature(clean_graph).parameters
    opts = {k: p.default for k, p in params.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("network_type", "label")}
    unknown = sorted(set(clean_options) - set(opts))
    if unknown:
        raise TypeError(f"unknown network cleaning option(s): {', '.join(unknown)}; allowed: {', '.join(opts)}")
    opts.update(clean_options)
    return {k: float(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else v
            for k, v in opts.items()}


def cache_key(fingerprint: str, network_type: str, clean_options: dict[str, Any]) -> str:
    """The network cache's key: map content, network type, :data:`FORMAT_VERSION` and the cleaning
    options with their defaults filled in (:func:`clean_options_with_defaults`)."""
    key_src = json.dumps(
        {"fp": fingerprint, "nt": network_type, "opt": sorted(clean_options_with_defaults(clean_options).items()),
         "v": FORMAT_VERSION},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(key_src.encode()).hexdigest()[:24]


def utm_crs(lon: float, lat: float) -> str:
    """EPSG code (``"EPSG:326zz"`` north, ``"EPSG:327zz"`` south) of the UTM zone holding a point."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def _project(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _link_polylines(geoms: list, node_lon: np.ndarray, node_lat: np.ndarray, tail: np.ndarray,
                    head: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat polyline arrays ``(indptr, lon, lat)`` from the edges' osmnx ``geometry`` values.

    A LineString of two or more finite vertices whose ends lie at the link's nodes (within about
    10 m) is kept, turned round when it runs from the head to the tail; anything else (none, a
    WKT string that does not parse, another geometry type) is the straight chord. The first and
    last vertices are then set to the tail and head node's coordinates exactly.
    """
    import shapely

    m = len(geoms)
    arr = np.empty(m, dtype=object)
    for i, g in enumerate(geoms):
        if isinstance(g, str):
            try:
                g = shapely.from_wkt(g)
            except Exception:  # noqa: BLE001 - a damaged geometry is the chord, never an error
                g = None
        arr[i] = g if isinstance(g, shapely.LineString) else None
    t, h = tail.astype(np.int64), head.astype(np.int64)
    if m:
        xy, idx = shapely.get_coordinates(arr, return_index=True)
    else:
        xy, idx = np.zeros((0, 2)), np.zeros(0, np.int64)
    counts = np.bincount(idx, minlength=m)
    bad = np.bincount(idx[~np.isfinite(xy).all(axis=1)], minlength=m) > 0
    use = (counts >= 2) & ~bad
    g0 = np.searchsorted(idx, np.arange(m))  # each geometry's first vertex in xy
    if idx.size:
        top = idx.size - 1
        first, last = np.clip(g0, 0, top), np.clip(g0 + counts - 1, 0, top)
        coslat = np.cos(np.radians(node_lat[t]))

        def d2(i: np.ndarray, n: np.ndarray) -> np.ndarray:  # squared distance, degrees of latitude
            return ((xy[i, 0] - node_lon[n]) * coslat) ** 2 + (xy[i, 1] - node_lat[n]) ** 2

        fwd = d2(first, t) + d2(last, h)
        rev = d2(first, h) + d2(last, t)
        use &= np.minimum(fwd, rev) <= 2 * 1e-4 ** 2  # ends within ~10 m of the nodes
        flip = use & (rev < fwd)
    else:
        flip = np.zeros(m, bool)
    n_geo = np.where(use, counts, 2)
    ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(n_geo, out=ptr[1:])
    lon = np.empty(int(ptr[-1]))
    lat = np.empty(int(ptr[-1]))
    keep = use[idx]
    k = np.arange(idx.size) - g0[idx]  # vertex number within its geometry
    k = np.where(flip[idx], counts[idx] - 1 - k, k)
    pos = ptr[idx[keep]] + k[keep]
    lon[pos], lat[pos] = xy[keep, 0], xy[keep, 1]
    lon[ptr[:-1]], lat[ptr[:-1]] = node_lon[t], node_lat[t]  # chords get both ends here
    lon[ptr[1:] - 1], lat[ptr[1:] - 1] = node_lon[h], node_lat[h]
    return ptr, lon, lat


@dataclass(eq=False)
class RoadNetwork:
    """A road network as arrays (see module docs for the index conventions).

    Attributes
    ----------
    node_osmid : int64 (n_nodes,)
    node_lon, node_lat : float64 (n_nodes,), WGS84 degrees
    node_x_m, node_y_m : float64 (n_nodes,), metres in :attr:`crs` (UTM)
    indptr : int64 (n_nodes + 1,), CSR row pointers over links
    link_tail, link_head : int32 (n_links,), node indices
    link_osmid : int64 (n_links,), the (first) OSM way id of each link
    link_key : int64 (n_links,), osmnx's multigraph edge key
    link_length_m, link_speed_mps, link_fftt_s : float64 (n_links,)
    link_lanes : float64 (n_links,), lanes in the link's direction
    link_capacity_vph : float64 (n_links,), flow capacity (veh/h, all lanes)
    link_storage_veh : float64 (n_links,), storage capacity (vehicles, >= 1)
    link_class : int8 (n_links,), index into :data:`twin.network.clean.HIGHWAY_CLASSES`
    node_home_weight, node_work_weight : float64 (n_nodes,), building centroids snapped to each
        node: residential + generic (``building=yes``) ones weight homes, generic + other uses
        (shops, offices, ...) weight workplaces (all zero when the map has no buildings)
    node_school_weight, node_shop_weight : float64 (n_nodes,), education (school, university...)
        and retail (retail, supermarket, commercial...) buildings snapped to each node
    link_geom_indptr : int64 (n_links + 1,), row pointers of each link's polyline vertices
    link_geom_lon, link_geom_lat : float64 (n_vertices,), WGS84 degrees; link ``e``'s vertices are
        ``link_geom_indptr[e]:link_geom_indptr[e+1]`` (>= 2, the ends exactly its tail and head
        node); ``None`` when constructing means straight chords
    buildings : twin.network.buildings.BuildingTable
        The map's buildings snapped to the nodes, then one synthetic building per node that has
        no OSM building for homes or none for jobs; the ``node_*_weight`` arrays are its counts.
        ``None`` when constructing means no OSM buildings (synthetic ones only).
    """

    node_osmid: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    node_x_m: np.ndarray
    node_y_m: np.ndarray
    indptr: np.ndarray
    link_tail: np.ndarray
    link_head: np.ndarray
    link_osmid: np.ndarray
    link_key: np.ndarray
    link_length_m: np.ndarray
    link_speed_mps: np.ndarray
    link_fftt_s: np.ndarray
    link_lanes: np.ndarray
    link_capacity_vph: np.ndarray
    link_storage_veh: np.ndarray
    link_class: np.ndarray
    node_home_weight: np.ndarray
    node_work_weight: np.ndarray
    node_school_weight: np.ndarray
    node_shop_weight: np.ndarray
    link_geom_indptr: np.ndarray | None = None
    link_geom_lon: np.ndarray | None = None
    link_geom_lat: np.ndarray | None = None
    crs: str = "EPSG:4326"
    network_type: str = "drive"
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    buildings: BuildingTable | None = None

    def __post_init__(self) -> None:
        if self.buildings is None:  # no table given: synthetic buildings only, one per node
            self.buildings = building_table(None, self.node_lon, self.node_lat, self.node_x_m, self.node_y_m, self.crs)
        if self.link_geom_indptr is None or self.link_geom_lon is None or self.link_geom_lat is None:
            t, h = np.asarray(self.link_tail, np.int64), np.asarray(self.link_head, np.int64)
            self.link_geom_indptr = np.arange(0, 2 * t.size + 1, 2, dtype=np.int64)
            self.link_geom_lon = np.column_stack([self.node_lon[t], self.node_lon[h]]).ravel()
            self.link_geom_lat = np.column_stack([self.node_lat[t], self.node_lat[h]]).ravel()

    # ------------------------------------------------------------------ sizes
    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_osmid.shape[0])

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return int(self.link_head.shape[0])

    def link_lines(self) -> np.ndarray:
        """The links' polylines as a numpy array of shapely ``LineString`` (WGS84 lon/lat)."""
        import shapely

        ptr = self.link_geom_indptr
        if self.n_links == 0:
            return np.zeros(0, dtype=object)
        idx = np.repeat(np.arange(self.n_links), np.diff(ptr))
        return shapely.linestrings(np.column_stack([self.link_geom_lon, self.link_geom_lat]), indices=idx)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_graph(
        cls,
        G: nx.MultiDiGraph,
        *,
        network_type: str = "drive",
        source: str = "",
        buildings: Buildings | None = None,
        buildings_lonlat: np.ndarray | None = None,
        buildings_kind: np.ndarray | None = None,
    ) -> RoadNetwork:
        """Compile a cleaned graph (see :func:`twin.network.clean.clean_graph`) into arrays.

        ``buildings`` (what :func:`twin.maps.load_raw` read) become :attr:`buildings` and the
        per-node weights; ``buildings_lonlat`` / ``buildings_kind`` (centroids and kinds only) are
        the older way to pass them.
        """
        if buildings is None and buildings_lonlat is not None:
            buildings = Buildings(np.asarray(buildings_lonlat, dtype=np.float64).reshape(-1, 2),
                                  np.asarray(buildings_kind, dtype=np.int8))
        osmids = np.array(sorted(G.nodes), dtype=np.int64)
        index = {int(o): i for i, o in enumerate(osmids)}
        lon = np.array([float(G.nodes[o]["x"]) for o in osmids])
        lat = np.array([float(G.nodes[o]["y"]) for o in osmids])

        rows = []
        for u, v, k, d in G.edges(keys=True, data=True):
            rows.append((index[int(u)], index[int(v)], int(k), d))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        m = len(rows)

        def col(name: str, dtype: Any = np.float64) -> np.ndarray:
            return np.array([float(r[3][name]) for r in rows], dtype=dtype)

        def first_osmid(v: Any) -> int:
            v = v[0] if isinstance(v, list) else v
            try:
                return int(v)
            except (TypeError, ValueError):
                return -1

        cls_index = {c: i for i, c in enumerate(HIGHWAY_CLASSES)}
        return cls.compile(
            node_osmid=osmids, node_lon=lon, node_lat=lat,
            link_tail=np.fromiter((r[0] for r in rows), dtype=np.int32, count=m),
            link_head=np.fromiter((r[1] for r in rows), dtype=np.int32, count=m),
            link_key=np.array([r[2] for r in rows], dtype=np.int64),
            link_osmid=np.array([first_osmid(r[3].get("osmid")) for r in rows], dtype=np.int64),
            link_length_m=col("length"), link_fftt_s=col("travel_time"), link_lanes=col("lanes_n"),
            link_capacity_vph=col("capacity_vph"), link_storage_veh=col("storage_veh"),
            link_class=np.array([cls_index[r[3]["hwy_class"]] for r in rows], dtype=np.int8),
            link_geometry=[r[3].get("geometry") for r in rows],
            network_type=network_type, source=source, buildings=buildings,
        )

    @classmethod
    def compile(
        cls,
        *,
        node_osmid: np.ndarray,
        node_lon: np.ndarray,
        node_lat: np.ndarray,
        link_tail: np.ndarray,
        link_head: np.ndarray,
        link_key: np.ndarray,
        link_osmid: np.ndarray,
        link_length_m: np.ndarray,
        link_fftt_s: np.ndarray,
        link_lanes: np.ndarray,
        link_capacity_vph: np.ndarray,
        link_storage_veh: np.ndarray,
        link_class: np.ndarray,
        link_geometry: list | np.ndarray,
        network_type: str,
        source: str,
        buildings: Buildings | None,
    ) -> RoadNetwork:
        """Assemble a network from cleaned link columns (what every builder ends with).

        Nodes must be in OSM id order and links in CSR order (by tail, head, key);
        ``link_geometry`` holds each link's shapely LineString (or ``None``: the chord), see
        :func:`_link_polylines`. Projects the nodes to their UTM zone, snaps ``buildings`` to the
        nodes (:func:`twin.network.buildings.building_table`) and derives the per-node weights.
        """
        n = node_osmid.shape[0]
        crs = utm_crs(float(np.mean(node_lon)), float(np.mean(node_lat)))
        x, y = _project(node_lon, node_lat, crs)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, link_tail.astype(np.int64) + 1, 1)
        indptr = np.cumsum(indptr)
        geom_ptr, geom_lon, geom_lat = _link_polylines(list(link_geometry), node_lon, node_lat, link_tail, link_head)
        table = building_table(buildings, node_lon, node_lat, x, y, crs)
        w = table.node_weights(n)
        return cls(
            node_osmid=node_osmid, node_lon=node_lon, node_lat=node_lat, node_x_m=x, node_y_m=y,
            indptr=indptr, link_tail=link_tail, link_head=link_head,
            link_osmid=link_osmid, link_key=link_key,
            link_length_m=link_length_m, link_speed_mps=link_length_m / link_fftt_s, link_fftt_s=link_fftt_s,
            link_lanes=link_lanes, link_capacity_vph=link_capacity_vph, link_storage_veh=link_storage_veh,
            link_class=link_class,
            node_home_weight=w["home"], node_work_weight=w["work"],
            node_school_weight=w["school"], node_shop_weight=w["shop"],
            link_geom_indptr=geom_ptr, link_geom_lon=geom_lon, link_geom_lat=geom_lat,
            crs=crs, network_type=network_type, source=source,
            meta={"n_buildings": table.n_osm}, buildings=table,
        )

    @classmethod
    def load(
        cls,
        source: str | Path,
        network_type: str = "drive",
        *,
        use_cache: bool = True,
        builder: str = "auto",
        **clean_options: Any,
    ) -> RoadNetwork:
        """Load a map (file, catalogue name, ``place:``/``bbox:``) as a :class:`RoadNetwork`.

        The compiled arrays are cached in ``settings.cache_dir()/networks`` keyed by the map's
        content hash, ``network_type`` and the cleaning options with their defaults filled in
        (:func:`cache_key`: ``min_length_m=5.0`` given or left out is the same network, the same
        file); a second call reads the cache.

        Parameters
        ----------
        source
            A map file, a catalogue name, ``place:NAME`` or ``bbox:W,S,E,N``.
        network_type
            ``"drive"``, ``"walk"``, ``"bike"`` or ``"all"``.
        use_cache
            Read and write the on-disk cache.
        builder
            ``"auto"`` (default): OSM files are compiled straight from the pyosmium extract
            (:func:`twin.network.build.build_network`), GraphML files and downloads through osmnx;
            ``"osmnx"``: always through an osmnx graph and :func:`~twin.network.clean.clean_graph`
            (the reference the direct builder equals, array for array). Not part of the cache key.
        **clean_options
            Options of :func:`~twin.network.clean.clean_graph` (``min_length_m``, ...).
        """
        from twin.maps import resolve_source

        if builder not in ("auto", "osmnx"):
            raise ValueError(f"builder must be 'auto' or 'osmnx', got {builder!r}")
        src = resolve_source(source)
        key = cache_key(src.fingerprint(), network_type, clean_options)
        try:
            path = settings.cache_dir() / "networks" / f"{key}.npz"
        except OSError as exc:  # the cache folder cannot be created: no cache, the run goes on
            logging.getLogger("twin").warning("network cache not used: %s", _reason(exc))
            path, use_cache = Path(os.devnull), False
        label = str(src.label)
        if use_cache and path.exists():
            try:
                net = cls.read_npz(path)
                net.source = label
                net.meta["cache"] = "hit"
                return net
            except Exception:  # noqa: BLE001 - a corrupt cache entry is rebuilt, never trusted
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # a read-only cache: rebuilt every time, the run goes on
                    pass
        net = cls._build(src, network_type, label, builder, clean_options)
        if use_cache:
            try:  # a full or read-only cache disk costs the cache, never the run
                net.write_npz(path)
            except Exception as exc:  # noqa: BLE001 - a full or read-only disk costs the cache
                logging.getLogger("twin").warning("network cache %s not written: %s", path, _reason(exc))
        net.meta["cache"] = "miss"
        return net

    @classmethod
    def _build(cls, src: Any, network_type: str, label: str, builder: str,
               clean_options: dict[str, Any]) -> RoadNetwork:
        """Read and compile a resolved map source (no cache)."""
        from twin.maps import load_raw

        if builder == "auto" and src.kind == "osm":
            from twin.network.build import build_network

            return build_network(src, network_type, source_label=label, **clean_options)
        G, buildings, src = load_raw(src, network_type)
        G = clean_graph(G, network_type=network_type, label=str(src.path or src.label), **clean_options)
        return cls.from_graph(G, network_type=network_type, source=label, buildings=buildings)

    # ----------------------------------------------------------------- caching
    def write_npz(self, path: Path) -> None:
        """Write the arrays atomically: a hidden temporary file in the same folder, flushed, then
        renamed over ``path``. On any failure (no space, read-only, ...) the temporary file is
        removed and the exception re-raised: ``path`` is never left truncated."""
        from twin._fs import replacing

        meta = {"crs": self.crs, "network_type": self.network_type, "source": self.source,
                "meta": self.meta, "format_version": FORMAT_VERSION}
        with replacing(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as f:
            np.savez(f, _meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                     **{a: getattr(self, a) for a in _ARRAYS}, **self.buildings.to_arrays())
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def read_npz(cls, path: Path) -> RoadNetwork:
        """Read arrays written by :meth:`write_npz`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["_meta"]).decode())
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError("stale cache format")
            arrays = {a: z[a] for a in _ARRAYS}
            table = BuildingTable.from_arrays(z)
        return cls(**arrays, crs=meta["crs"], network_type=meta["network_type"],
                   source=meta["source"], meta=dict(meta["meta"]), buildings=table)

    # ------------------------------------------------------------------- views
    def to_networkx(self, weight: str = "travel_time") -> nx.MultiDiGraph:
        """A MultiDiGraph on node indices with ``length``, ``travel_time`` and ``link`` per edge."""
        G = nx.MultiDiGraph()
        G.add_nodes_from(range(self.n_nodes))
        for e in range(self.n_links):
            G.add_edge(int(self.link_tail[e]), int(self.link_head[e]), link=e,
                       length=float(self.link_length_m[e]), travel_time=float(self.link_fftt_s[e]))
        return G

    def node_index(self, osmids: Any) -> np.ndarray:
        """Dense indices of OSM node ids (``KeyError`` for unknown ids)."""
        osmids = np.atleast_1d(np.asarray(osmids, dtype=np.int64))
        pos = np.searchsorted(self.node_osmid, osmids)
        pos = np.clip(pos, 0, self.n_nodes - 1)
        bad = self.node_osmid[pos] != osmids
        if bad.any():
            raise KeyError(f"unknown OSM node ids: {osmids[bad][:5].tolist()}")
        return pos

    def is_strongly_connected(self) -> bool:
        """True when every node reaches every other: node 0 reaches all nodes forwards and backwards.

        (A plain traversal of the CSR arrays; scipy's ``connected_components`` was seen to hang on
        multigraph CSR input with repeated column indices.)
        """
        if self.n_nodes == 0:
            return False
        order = np.argsort(self.link_head, kind="stable")
        rev_indptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.add.at(rev_indptr, self.link_head.astype(np.int64) + 1, 1)
        rev_indptr = np.cumsum(rev_indptr)
        rev_nbr = self.link_tail[order]
        for ptr, nbr in ((self.indptr, self.link_head), (rev_indptr, rev_nbr)):
            seen = np.zeros(self.n_nodes, dtype=bool)
            seen[0] = True
            stack = [0]
            while stack:
                u = stack.pop()
                for v in nbr[ptr[u]:ptr[u + 1]].tolist():
                    if not seen[v]:
                        seen[v] = True
                        stack.append(v)
            if not seen.all():
                return False
        return True

    def summary(self) -> dict[str, Any]:
        """Counts and totals for ``twin maps info`` and run reports."""
        return {
            "source": self.source,
            "network_type": self.network_type,
            "nodes": self.n_nodes,
            "links": self.n_links,
            "length_km": round(float(self.link_length_m.sum()) / 1000.0, 3),
            "lane_km": round(float((self.link_length_m * self.link_lanes).sum()) / 1000.0, 3),
            "bbox_lonlat": [round(float(v), 5) for v in (self.node_lon.min(), self.node_lat.min(),
                                                          self.node_lon.max(), self.node_lat.max())],
            "crs": self.crs,
            "strongly_connected": self.is_strongly_connected(),
            "buildings": int(self.meta.get("n_buildings", 0)),
            "min_length_m": round(float(self.link_length_m.min()), 3),
            "min_capacity_vph": round(float(self.link_capacity_vph.min()), 3),
        }

    def __repr__(self) -> str:
        return f"RoadNetwork({self.source!r}, {self.network_type}, nodes={self.n_nodes}, links={self.n_links})"


assert set(_ARRAYS) <= {f.name for f in fields(RoadNetwork)}
