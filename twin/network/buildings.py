"""The buildings of a map as a table kept with its road network.

:func:`building_table` turns the footprints :mod:`twin.maps` read (:class:`twin.maps.Buildings`) into
a :class:`BuildingTable` whose rows are snapped to the nodes of a compiled network; it is saved
with the network's cache and is :attr:`twin.network.RoadNetwork.buildings`.

Rows ``0..n_osm-1`` are the map's OSM buildings in file order; the rows after them are *synthetic*
buildings: one at each node that has no OSM building able to hold homes or none able to hold
jobs, at the node's coordinates, with ``osm_id = -1``, ``footprint_area_m2 = NaN``, ``levels = NaN``
and kind ``"synthetic"``. A resident whose home or workplace node has no suitable OSM building
lives or works in its node's synthetic building (:meth:`BuildingTable.at_nodes`), so every
resident has a building even on a map without any (the Porto extract, uniform placement).

The per-node weights of the network (``node_home_weight``, ...) are counts of the OSM rows by
kind and node (:meth:`BuildingTable.node_weights`); synthetic rows weight nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.maps import Buildings
from twin.maps._osm import (
    BUILDING_EDUCATION,
    BUILDING_GENERIC,
    BUILDING_RESIDENTIAL,
    BUILDING_RETAIL,
    BUILDING_WORK,
)

__all__ = ["BUILDING_SYNTHETIC", "KIND_NAMES", "HOME_KINDS", "WORK_KINDS", "BuildingTable", "building_table",
           "ring_areas_m2"]

#: kind code of the synthetic buildings appended to a table (after the OSM kinds 0..4)
BUILDING_SYNTHETIC = 5
#: ``KIND_NAMES[kind]``: the name of each kind code
KIND_NAMES = ("residential", "generic", "work", "education", "retail", "synthetic")
#: OSM kinds that hold homes (they weight ``node_home_weight``) and jobs (``node_work_weight``)
HOME_KINDS = (BUILDING_RESIDENTIAL, BUILDING_GENERIC)
WORK_KINDS = (BUILDING_GENERIC, BUILDING_WORK, BUILDING_EDUCATION, BUILDING_RETAIL)
_ROLE_KINDS = {"home": HOME_KINDS, "work": WORK_KINDS}

_COLUMNS = ("osm_id", "footprint_area_m2", "levels", "kind", "node", "lon", "lat")
_DTYPES = {"osm_id": np.int64, "footprint_area_m2": np.float64, "levels": np.float64, "kind": np.int8,
           "node": np.int32, "lon": np.float64, "lat": np.float64}


@dataclass(eq=False)
class BuildingTable:
    """Buildings as columns (struct of arrays), one row per building; ``building_id`` is the row.

    Attributes
    ----------
    osm_id : int64 (B,)
        OSM way id; -1 for synthetic buildings.
    footprint_area_m2 : float64 (B,)
        Footprint area (m²) of the closed way's polygon in the network's UTM projection
        (:attr:`twin.network.RoadNetwork.crs`); NaN for open or incomplete ways (nodes missing
        from the file) and synthetic buildings.
    levels : float64 (B,)
        Storeys from ``building:levels`` (its first number); NaN when untagged (and synthetic).
    kind : int8 (B,)
        Index into :data:`KIND_NAMES`: 0 residential, 1 generic (``building=yes``...), 2 work,
        3 education, 4 retail (the classification of :mod:`twin.maps._osm`), 5 synthetic.
    node : int32 (B,)
        Dense index of the network node the building snaps to (nearest node to ``lon, lat``
        in the UTM projection, as the per-node weights always used).
    lon, lat : float64 (B,)
        WGS84 degrees: the mean of the footprint's vertices (its closing vertex counted once),
        the point that snaps to ``node``; a synthetic building's node's coordinates.
    n_osm : int
        Rows ``0..n_osm-1`` are OSM buildings, the rest synthetic.
    """

    osm_id: np.ndarray
    footprint_area_m2: np.ndarray
    levels: np.ndarray
    kind: np.ndarray
    node: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    n_osm: int
    _at: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @property
    def building_id(self) -> np.ndarray:
        """int64 (B,): the dense ids ``0..B-1`` (the row numbers)."""
        return np.arange(len(self), dtype=np.int64)

    @property
    def is_synthetic(self) -> np.ndarray:
        """bool (B,): True for the synthetic rows."""
        return self.kind == BUILDING_SYNTHETIC

    @property
    def kind_name(self) -> np.ndarray:
        """str (B,): the kind of each building by name (:data:`KIND_NAMES`)."""
        return np.asarray(KIND_NAMES, dtype=object)[self.kind]

    def node_weights(self, n_nodes: int) -> dict[str, np.ndarray]:
        """Per-node counts of OSM buildings: ``home`` (residential + generic), ``work`` (generic,
        work, education, retail), ``school`` (education) and ``shop`` (retail); float64 (n_nodes,)."""
        node = self.node[: self.n_osm].astype(np.int64)
        kind = self.kind[: self.n_osm]

        def count(mask: np.ndarray) -> np.ndarray:
            return np.bincount(node[mask], minlength=n_nodes).astype(np.float64)

        return {"home": count(kind <= BUILDING_GENERIC), "work": count(kind >= BUILDING_GENERIC),
                "school": count(kind == BUILDING_EDUCATION), "shop": count(kind == BUILDING_RETAIL)}

    def at_nodes(self, role: str, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """The buildings each node offers for ``role`` (``"home"`` or ``"work"``), as CSR.

        Returns
        -------
        indptr : int64 (n_nodes + 1,)
        building : int64
            Node ``v``'s candidates are ``building[indptr[v]:indptr[v + 1]]``, in building id order:
            its OSM buildings of the role's kinds (:data:`HOME_KINDS`, :data:`WORK_KINDS`), or its
            synthetic building when it has none; every node has at least one candidate.

        Raises
        ------
        ValueError
            ``role`` unknown, or a node has no candidate (a table not built for this network).
        """
        key = f"{role}:{n_nodes}"
        if key in self._at:
            return self._at[key]
        if role not in _ROLE_KINDS:
            raise ValueError(f"role must be 'home' or 'work', got {role!r}")
        osm = np.zeros(len(self), dtype=bool)
        osm[: self.n_osm] = np.isin(self.kind[: self.n_osm], _ROLE_KINDS[role])
        has = np.zeros(n_nodes, dtype=bool)
        has[self.node[osm]] = True
        use = osm | (self.is_synthetic & ~has[self.node])
        ids = np.flatnonzero(use)
        ids = ids[np.argsort(self.node[ids], kind="stable")]
        counts = np.bincount(self.node[ids], minlength=n_nodes)
        if counts.shape[0] != n_nodes or not np.all(counts > 0):
            raise ValueError("the building table does not cover every node of this network")
        indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        self._at[key] = (indptr, ids.astype(np.int64))
        return self._at[key]

    def to_frame(self) -> Any:
        """A pandas DataFrame with ``building_id`` and every column, ``kind`` by name."""
        import pandas as pd

        cols: dict[str, Any] = {"building_id": self.building_id}
        for c in _COLUMNS:
            cols[c] = self.kind_name if c == "kind" else getattr(self, c)
        return pd.DataFrame(cols)

    # ------------------------------------------------------------ cache I/O
    def to_arrays(self, prefix: str = "building_") -> dict[str, np.ndarray]:
        """The columns as named arrays (for :meth:`twin.network.RoadNetwork.write_npz`)."""
        out = {prefix + c: getattr(self, c) for c in _COLUMNS}
        out[prefix + "n_osm"] = np.array([self.n_osm], dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str = "building_") -> BuildingTable:
        """Inverse of :meth:`to_arrays`."""
        cols = {c: np.asarray(arrays[prefix + c], dtype=_DTYPES[c]) for c in _COLUMNS}
        return cls(**cols, n_osm=int(np.asarray(arrays[prefix + "n_osm"])[0]))


def ring_areas_m2(indptr: np.ndarray, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """Area (m²) of each ring ``x_m/y_m[indptr[b]:indptr[b + 1]]`` (closing vertex not repeated),
    by the shoelace formula about the ring's first vertex; NaN for rings of fewer than 3 vertices."""
    n = indptr.shape[0] - 1
    counts = np.diff(indptr)
    area = np.full(n, np.nan)
    if x_m.size == 0:
        return area
    ring = np.repeat(np.arange(n), counts)
    first = indptr[:-1][ring]
    nxt = np.arange(x_m.size) + 1
    nxt[indptr[1:][counts > 0] - 1] = indptr[:-1][counts > 0]  # last vertex -> first
    x = x_m - x_m[first]
    y = y_m - y_m[first]
    cross = x * y[nxt] - x[nxt] * y
    s = np.bincount(ring, weights=cross, minlength=n)
    ok = counts >= 3
    area[ok] = 0.5 * np.abs(s[ok])
    return area


def building_table(buildings: Buildings | None, node_lon: np.ndarray, node_lat: np.ndarray, node_x_m: np.ndarray,
                   node_y_m: np.ndarray, crs: str) -> BuildingTable:
    """Snap a map's buildings to a network's nodes and append the synthetic ones (module docs).

    Parameters
    ----------
    buildings
        What :func:`twin.maps.load_raw` read (``None``: no buildings).
    node_lon, node_lat, node_x_m, node_y_m
        The network's node coordinates (WGS84 degrees; metres in ``crs``).
    crs
        The network's projected CRS (UTM), for snapping and footprint areas.
    """
    from scipy.spatial import cKDTree

    from twin.network.road_network import _project

    n_nodes = node_lon.shape[0]
    nb = 0 if buildings is None else int(len(buildings.kind))
    if nb:
        lonlat = np.asarray(buildings.lonlat, dtype=np.float64)
        bx, by = _project(lonlat[:, 0], lonlat[:, 1], crs)
        _, nearest = cKDTree(np.column_stack([node_x_m, node_y_m])).query(np.column_stack([bx, by]))
        nearest = np.asarray(nearest, dtype=np.int64)
        kind = np.asarray(buildings.kind, dtype=np.int8)
        ring = np.asarray(buildings.ring_lonlat, dtype=np.float64).reshape(-1, 2)
        if ring.shape[0]:
            rx, ry = _project(ring[:, 0], ring[:, 1], crs)
        else:
            rx = ry = np.zeros(0)
        area = ring_areas_m2(np.asarray(buildings.ring_indptr, dtype=np.int64), rx, ry)
        osm_id = np.asarray(buildings.osm_id, dtype=np.int64)
        levels = np.asarray(buildings.levels, dtype=np.float64)
        lon, lat = lonlat[:, 0].copy(), lonlat[:, 1].copy()
    else:
        nearest = np.zeros(0, dtype=np.int64)
        kind = np.zeros(0, dtype=np.int8)
        area = levels = lon = lat = np.zeros(0)
        osm_id = np.zeros(0, dtype=np.int64)
    home = np.zeros(n_nodes, dtype=bool)
    work = np.zeros(n_nodes, dtype=bool)
    home[nearest[np.isin(kind, HOME_KINDS)]] = True
    work[nearest[np.isin(kind, WORK_KINDS)]] = True
    syn = np.flatnonzero(~(home & work))
    ns = syn.size
    return BuildingTable(
        osm_id=np.concatenate([osm_id, np.full(ns, -1, dtype=np.int64)]),
        footprint_area_m2=np.concatenate([area, np.full(ns, np.nan)]),
        levels=np.concatenate([levels, np.full(ns, np.nan)]),
        kind=np.concatenate([kind, np.full(ns, BUILDING_SYNTHETIC, dtype=np.int8)]),
        node=np.concatenate([nearest, syn]).astype(np.int32),
        lon=np.concatenate([lon, node_lon[syn]]),
        lat=np.concatenate([lat, node_lat[syn]]),
        n_osm=nb,
    )
