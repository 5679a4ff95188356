"""Shelters from a file: a CSV table or a vector file (GeoJSON, GeoPackage) of points or polygons.

* **CSV** (``.csv``): columns ``lon``, ``lat``, ``capacity`` (persons), optionally ``name``.
* **Vector file** (read with :func:`geopandas.read_file`, reprojected to WGS84): points, or polygons
  (a building's outline: its centroid, and when it has no ``capacity`` property, its area /
  ``m2_per_person``); properties ``capacity`` and ``name`` (optional).

Every problem is a ``ValueError`` of one line naming the file, the row and the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["ShelterRows", "read_shelter_file"]


class ShelterRows(NamedTuple):
    lon: np.ndarray
    lat: np.ndarray
    capacity: np.ndarray
    name: list[str]


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_shelter_file(path: str | Path, m2_per_person: float) -> ShelterRows:
    """The shelters of ``path`` (see the module docstring)."""
    import pandas as pd

    name = str(path)
    if name.lower().endswith(".csv"):
        try:
            df = pd.read_csv(path)
        except Exception as exc:  # noqa: BLE001 - every reading problem is the file's, one line
            raise ValueError(f"shelter file {name}: cannot be read: {_reason(exc)}") from None
        missing = [c for c in ("lon", "lat", "capacity") if c not in df.columns]
        if missing:
            raise ValueError(f"shelter file {name}: missing column(s) {', '.join(missing)} "
                             "(needs lon, lat, capacity; name optional)")
        lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(np.float64)
        lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(np.float64)
        cap = pd.to_numeric(df["capacity"], errors="coerce").to_numpy(np.float64)
        names = df["name"].astype(str).tolist() if "name" in df.columns else [""] * len(df)
    else:
        import geopandas as gpd
        import shapely

        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"shelter file {name}: cannot be read: {_reason(exc)}") from None
        if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
            gdf = gdf.to_crs("EPSG:4326")
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        if geoms.size == 0 or shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any():
            raise ValueError(f"shelter file {name}: every feature needs a point or polygon geometry")
        kinds = set(shapely.get_type_id(geoms).tolist())
        if not kinds <= {0, 3, 6}:  # Point, Polygon, MultiPolygon
            raise ValueError(f"shelter file {name}: geometries must be points or polygons")
        cent = shapely.centroid(geoms)
        lon, lat = shapely.get_x(cent), shapely.get_y(cent)
        given = (pd.to_numeric(gdf["capacity"], errors="coerce").to_numpy(np.float64) if "capacity" in gdf.columns
                 else np.full(geoms.size, np.nan))
        # a polygon without a capacity: its area (m², in its UTM zone) / m2_per_person
        area_m2 = np.full(geoms.size, np.nan)
        poly = shapely.get_type_id(geoms) != 0
        if poly.any():
            utm = gdf[poly].estimate_utm_crs()
            area_m2[poly] = gdf[poly].to_crs(utm).area.to_numpy(np.float64)
        cap = np.where(np.isfinite(given), given, area_m2 / m2_per_person)
        names = gdf["name"].astype(str).tolist() if "name" in gdf.columns else [""] * geoms.size
    for col, v, lo, hi in (("lon", lon, -180, 180), ("lat", lat, -90, 90), ("capacity", cap, 0, 10_000_000)):
        bad = np.flatnonzero(~(np.isfinite(v) & (v >= lo) & (v <= hi)))
        if bad.size:
            raise ValueError(f"shelter file {name}: row {int(bad[0]) + 1}: {col} must be a number in [{lo}, {hi}]"
                             + (" (a point needs a capacity)" if col == "capacity" else ""))
    return ShelterRows(np.asarray(lon, np.float64), np.asarray(lat, np.float64), np.asarray(cap, np.float64),
                       names)
