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
from twin.network.clean import HIGHWAY_CLASSES, clean_graph

__all__ = ["RoadNetwork", "FORMAT_VERSION", "utm_crs"]


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


FORMAT_VERSION = 5  # 4: tag lists of merged ways in a fixed order; 5: link polylines (link_geom_*)

_ARRAYS = (
    "node_osmid", "node_lon", "node_lat", "node_x_m", "node_y_m", "indptr", "link_tail", "link_head",
    "link_osmid", "link_key", "link_length_m", "link_speed_mps", "link_fftt_s", "link_lanes",
    "link_capacity_vph", "link_storage_veh", "link_class", "node_home_weight", "node_work_weight",
    "node_school_weight", "node_shop_weight", "link_geom_indptr", "link_geom_lon", "link_geom_lat",
)


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

    def __post_init__(self) -> None:
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
        buildings_lonlat: np.ndarray | None = None,
        buildings_kind: np.ndarray | None = None,
    ) -> RoadNetwork:
        """Compile a cleaned graph (see :func:`twin.network.clean.clean_graph`) into arrays."""
        osmids = np.array(sorted(G.nodes), dtype=np.int64)
        index = {int(o): i for i, o in enumerate(osmids)}
        lon = np.array([float(G.nodes[o]["x"]) for o in osmids])
        lat = np.array([float(G.nodes[o]["y"]) for o in osmids])
        crs = utm_crs(float(np.mean(lon)), float(np.mean(lat)))
        x, y = _project(lon, lat, crs)

        rows = []
        for u, v, k, d in G.edges(keys=True, data=True):
            rows.append((index[int(u)], index[int(v)], int(k), d))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        n, m = len(osmids), len(rows)
        tail = np.fromiter((r[0] for r in rows), dtype=np.int32, count=m)
        head = np.fromiter((r[1] for r in rows), dtype=np.int32, count=m)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, tail.astype(np.int64) + 1, 1)
        indptr = np.cumsum(indptr)

        def col(name: str, dtype: Any = np.float64) -> np.ndarray:
            return np.array([float(r[3][name]) for r in rows], dtype=dtype)

        def first_osmid(v: Any) -> int:
            v = v[0] if isinstance(v, list) else v
            try:
                return int(v)
            except (TypeError, ValueError):
                return -1

        length = col("length")
        fftt = col("travel_time")
        geom_ptr, geom_lon, geom_lat = _link_polylines([r[3].get("geometry") for r in rows], lon, lat, tail, head)
        cls_index = {c: i for i, c in enumerate(HIGHWAY_CLASSES)}
        home_w = np.zeros(n)
        work_w = np.zeros(n)
        school_w = np.zeros(n)
        shop_w = np.zeros(n)
        if buildings_lonlat is not None and len(buildings_lonlat):
            from scipy.spatial import cKDTree

            bx, by = _project(buildings_lonlat[:, 0], buildings_lonlat[:, 1], crs)
            _, nearest = cKDTree(np.column_stack([x, y])).query(np.column_stack([bx, by]))
            kind = np.asarray(buildings_kind)
            home_w = np.bincount(nearest[kind <= 1], minlength=n).astype(np.float64)
            work_w = np.bincount(nearest[kind >= 1], minlength=n).astype(np.float64)
            school_w = np.bincount(nearest[kind == 3], minlength=n).astype(np.float64)
            shop_w = np.bincount(nearest[kind == 4], minlength=n).astype(np.float64)
        return cls(
            node_osmid=osmids, node_lon=lon, node_lat=lat, node_x_m=x, node_y_m=y,
            indptr=indptr, link_tail=tail, link_head=head,
            link_osmid=np.array([first_osmid(r[3].get("osmid")) for r in rows], dtype=np.int64),
            link_key=np.array([r[2] for r in rows], dtype=np.int64),
            link_length_m=length, link_speed_mps=length / fftt, link_fftt_s=fftt,
            link_lanes=col("lanes_n"), link_capacity_vph=col("capacity_vph"),
            link_storage_veh=col("storage_veh"),
            link_class=np.array([cls_index[r[3]["hwy_class"]] for r in rows], dtype=np.int8),
            node_home_weight=home_w, node_work_weight=work_w,
            node_school_weight=school_w, node_shop_weight=shop_w,
            link_geom_indptr=geom_ptr, link_geom_lon=geom_lon, link_geom_lat=geom_lat,
            crs=crs, network_type=network_type, source=source,
            meta={"n_buildings": 0 if buildings_lonlat is None else int(len(buildings_lonlat))},
        )

    @classmethod
    def load(
        cls,
        source: str | Path,
        network_type: str = "drive",
        *,
        use_cache: bool = True,
        **clean_options: Any,
    ) -> RoadNetwork:
        """Load a map (file, catalogue name, ``place:``/``bbox:``) as a :class:`RoadNetwork`.

        The compiled arrays are cached in ``settings.cache_dir()/networks`` keyed by the map's
        content hash, ``network_type`` and ``clean_options``; a second call reads the cache.
        """
        from twin.maps import load_raw, resolve_source

        src = resolve_source(source)
        key_src = json.dumps(
            {"fp": src.fingerprint(), "nt": network_type, "opt": sorted(clean_options.items()),
             "v": FORMAT_VERSION},
            sort_keys=True, default=str,
        )
        key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
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
            except Exception:  # a corrupt cache entry is rebuilt, never trusted
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # a read-only cache: rebuilt every time, the run goes on
                    pass
        G, buildings, src = load_raw(src, network_type)
        G = clean_graph(G, network_type=network_type, label=str(src.path or src.label), **clean_options)
        net = cls.from_graph(
            G, network_type=network_type, source=label,
            buildings_lonlat=buildings.lonlat, buildings_kind=buildings.kind,
        )
        if use_cache:
            try:  # a full or read-only cache disk costs the cache, never the run
                net.write_npz(path)
            except Exception as exc:
                logging.getLogger("twin").warning("network cache %s not written: %s", path, _reason(exc))
        net.meta["cache"] = "miss"
        return net

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
                     **{a: getattr(self, a) for a in _ARRAYS})
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
        return cls(**arrays, crs=meta["crs"], network_type=meta["network_type"],
                   source=meta["source"], meta=dict(meta["meta"]))

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
