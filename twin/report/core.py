"""The report core: section registry, run-folder context, page assembly.

A report is a list of *sections*, each a function ``fn(ctx) -> str | None`` returning an HTML
fragment (``None``: nothing to show, e.g. the comparison without a baseline). Sections are kept in a
registry ordered by ``order``; domains add theirs without touching this module::

    from twin.report import register_section

    @register_section("evacuation", order=50, title="Evacuation")
    def evacuation(ctx):
        t = ctx.table("evacuation.parquet")
        if t is None:
            return None
        return f"<p>{len(t['resident_id']):,} evacuees</p>"

``ctx`` (:class:`ReportContext`) reads the run folder lazily and caches what it read, so sections
share one read of each table, and nothing is read that no section needs.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np
import numpy.typing as npt

from twin._errors import TwinError
from twin.report import svg as S

if TYPE_CHECKING:
    import pyarrow as pa

    from twin.domains.base import Domain

__all__ = [
    "ReportError", "Section", "ReportContext", "register_section", "unregister_section", "registered_sections",
    "register_kpi", "format_kpi", "kpi_label", "kpi_better", "kpi_verdict", "write_report", "write_compare_report",
    "read_gpkg_lines", "check_run_folder",
]

log = logging.getLogger("twin")

class ReportError(TwinError, ValueError):
    """A report cannot be written: not a run folder, unknown section, missing events or geometry."""


SectionFn = Callable[["ReportContext"], "str | None"]


@dataclass(frozen=True)
class Section:
    name: str
    order: float
    fn: SectionFn
    title: str | None = None


_REGISTRY: dict[str, Section] = {}


@overload
def register_section(name: str, order: float = 50.0, fn: None = None, *, title: str | None = None,
                     replace: bool = True) -> Callable[[SectionFn], SectionFn]: ...
@overload
def register_section(name: str, order: float, fn: SectionFn, *, title: str | None = None,
                     replace: bool = True) -> SectionFn: ...
@overload
def register_section(name: str, *, fn: SectionFn, title: str | None = None, replace: bool = True) -> SectionFn: ...
def register_section(name: str, order: float = 50.0, fn: SectionFn | None = None, *, title: str | None = None,
                     replace: bool = True) -> SectionFn | Callable[[SectionFn], SectionFn]:
    """Add (or replace) a report section; usable as a decorator when ``fn`` is omitted.

    ``order`` places it (header 0, KPIs 10, comparison 15, maps 20, day charts 30, iterations 40,
    run details 90); ``title`` is its heading (``None``: the fragment brings its own). Returns ``fn``.
    """
    def add(f: SectionFn) -> SectionFn:
        if not replace and name in _REGISTRY:
            raise ReportError(f"report section {name!r} is already registered")
        _REGISTRY[name] = Section(name, float(order), f, title)
        return f

    return add if fn is None else add(fn)


def unregister_section(name: str) -> Section | None:
    """Remove a section from the registry; returns it (``None`` if it was not registered)."""
    return _REGISTRY.pop(name, None)


def registered_sections() -> list[Section]:
    """The registered sections in page order."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


# --------------------------------------------------------------------------------------------- KPIs

# key -> (label, unit kind, better). Kinds: count, share, min (seconds shown in minutes), clock
# (seconds after midnight), km, h, vehh, kmh, money, gap, num. ``better`` is the desirable direction
# of a change: "lower", "higher" or None (no direction: a comparison shows the change in grey).
# Mode shares have no direction on purpose: which way a modal shift should go is the planner's
# goal, not the model's (a lower car share is not "better" for every study). Domains add their KPIs
# with register_kpi.
_KPIS: dict[str, tuple[str, str, str | None]] = {
    "residents": ("residents", "count", None),
    "sample_share": ("sample share", "share", None),
    "population_represented": ("population represented", "count", None),
    "trips_total": ("trips planned", "count", None),
    "trips_completed": ("trips completed", "count", "higher"),
    "trips_aborted": ("trips aborted (stuck)", "count", "lower"),
    "completion_rate": ("completion rate", "share", "higher"),
    "mode_share_car": ("mode share car", "share", None),
    "mode_share_walk": ("mode share walk", "share", None),
    "mode_share_bike": ("mode share bike", "share", None),
    "car_trips": ("car trips", "count", None),
    "travel_time_mean_s": ("mean travel time", "min", "lower"),
    "travel_time_p50_s": ("median travel time", "min", "lower"),
    "travel_time_p95_s": ("p95 travel time", "min", "lower"),
    "car_travel_time_mean_s": ("mean car travel time", "min", "lower"),
    "delay_mean_s": ("mean car delay", "min", "lower"),
    "delay_total_veh_h": ("total car delay (full population)", "vehh", "lower"),
    "vkt_km": ("vehicle kilometres travelled (full population)", "km", "lower"),
    "vht_h": ("vehicle hours travelled (full population)", "vehh", "lower"),
    "mean_speed_kmh": ("mean car speed", "kmh", "higher"),
    "tolls_paid": ("tolls paid (full population)", "money", None),
    "forced_moves": ("stuck vehicles moved on", "count", "lower"),
    "removed_stuck": ("stuck vehicles removed", "count", "lower"),
    "last_arrival_s": ("last arrival", "clock", None),
    "iterations": ("simulated days (iterations)", "count", None),
    "relative_gap": ("relative gap (last day)", "gap", "lower"),
    "network_nodes": ("network nodes", "count", None),
    "network_links": ("network links", "count", None),
}

_BETTER = ("lower", "higher", None)


def register_kpi(key: str, label: str, kind: str = "num", better: str | None = None) -> None:
    """Label, unit kind (count, share, min, clock, km, h, vehh, kmh, money, gap, num) and desirable
    direction of a KPI: ``better="lower"`` (delay, travel time), ``"higher"`` (completion rate,
    speed) or ``None`` (no direction: comparisons show its change in grey)."""
    if better not in _BETTER:
        raise ValueError(f"register_kpi({key!r}): better must be 'lower', 'higher' or None, got {better!r}")
    _KPIS[key] = (label, kind, better)


def _kpi_spec(key: str) -> tuple[str, str, str | None]:
    spec = _KPIS.get(key)
    if spec is not None:
        return spec
    if key.startswith("mode_share_"):  # a plug-in mode's share (e.g. mode_share_taxi)
        return (f"mode share {key[len('mode_share_'):]}", "share", None)
    return (key.replace("_", " "), "num", None)


def kpi_label(key: str) -> str:
    """The KPI's label (``delay_mean_s`` -> ``mean car delay``); unregistered keys with spaces."""
    return _kpi_spec(key)[0]


def kpi_better(key: str) -> str | None:
    """The KPI's desirable direction: ``"lower"``, ``"higher"`` or ``None`` (none declared)."""
    return _kpi_spec(key)[2]


def kpi_verdict(key: str, diff: float | None) -> str:
    """A B − A change judged by the KPI's direction: ``"better"``, ``"worse"`` or ``"neutral"``
    (no change, no declared direction, or not a number)."""
    better = kpi_better(key)
    if better is None or not isinstance(diff, int | float) or isinstance(diff, bool) or not math.isfinite(diff) \
            or diff == 0:
        return "neutral"
    return "better" if (diff < 0) == (better == "lower") else "worse"


def format_kpi(key: str, v: Any, *, diff: bool = False) -> str:
    """A KPI value with its unit; ``diff=True`` formats a B − A difference (signed, shares in points)."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return escape(str(v))
    if isinstance(v, float) and not np.isfinite(v):
        return "-"
    kind = _kpi_spec(key)[1]
    sign = "+" if diff and v > 0 else ""
    if kind == "count":
        return f"{sign}{v:,.0f}"
    if kind == "share":
        return f"{sign}{100 * v:.1f} pp" if diff else f"{100 * v:.1f} %"
    if kind == "min":
        return f"{sign}{v:.3g} s" if abs(v) < 60 else f"{sign}{v / 60:,.2f} min"
    if kind == "clock":
        if diff:
            return f"{sign}{v / 60:,.1f} min"
        d, r = divmod(int(round(v)), 86400)
        return f"{r // 3600:02d}:{r % 3600 // 60:02d}" + (f" (+{d} d)" if d else "")
    if kind in ("km", "h", "vehh"):
        num = f"{v:,.1f}" if abs(v) >= 10 or v == 0 else f"{v:.3g}"
        return f"{sign}{num} {dict(km='km', h='h', vehh='veh·h')[kind]}"
    if kind == "kmh":
        return f"{sign}{v:,.1f} km/h"
    if kind == "money":
        return f"{sign}{v:,.2f}"
    if kind == "gap":
        return f"{v:+.2e}" if diff else f"{v:.2e}"
    return sign + S.fmt_num(v)


# ----------------------------------------------------------------------------------------- geometry

def read_gpkg_lines(path: Path, layer: str = "links"
                    ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None:
    """Read a GeoPackage line layer with the standard library's sqlite3 (no GDAL: ~1 ms per 1,000
    features). Returns ``(columns, lines)``: attribute columns as numpy arrays plus ``lon1, lat1,
    lon2, lat2`` (first and last vertex; NaN for a feature without a line), and ``lines``, every
    vertex as flat arrays ``(indptr, lon, lat)`` (feature ``i``'s are ``indptr[i]:indptr[i+1]``, none
    for a feature without a line), or ``None`` when every feature is a straight segment."""
    try:
        con = sqlite3.connect(f"file:{Path(path).resolve().as_posix()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        gcol = con.execute("select column_name from gpkg_geometry_columns where table_name=?", (layer,)).fetchone()
        if gcol is None:
            return None
        gcol = gcol[0]
        names = [r[1] for r in con.execute(f'pragma table_info("{layer}")')]
        attrs = [c for c in names if c != gcol and c != "fid"]
        sel = ", ".join(f'"{c}"' for c in [*attrs, gcol])
        rows = con.execute(f'select {sel} from "{layer}" order by fid').fetchall()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    cols: dict[str, np.ndarray] = {}
    if not rows:
        return {**{c: np.zeros(0) for c in attrs}, **{k: np.zeros(0) for k in ("lon1", "lat1", "lon2", "lat2")}}, None
    transposed = list(zip(*rows))
    for c, vals in zip(attrs, transposed[:-1]):
        try:
            cols[c] = np.array(vals, dtype=np.float64 if any(isinstance(v, float) for v in vals[:50]) else None)
        except (TypeError, ValueError):
            cols[c] = np.array(vals, dtype=object)
        if cols[c].dtype == object:
            try:
                cols[c] = cols[c].astype(np.float64)
            except (TypeError, ValueError):
                pass
    blobs = transposed[-1]
    coords, lines = _parse_gpkg_lines(blobs)
    cols["lon1"], cols["lat1"], cols["lon2"], cols["lat2"] = coords
    return cols, lines


_ENV = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _parse_gpkg_lines(blobs: Sequence[bytes | None]
                      ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """GeoPackage geometry blobs of LineStrings as end points and flat vertex arrays (see
    :func:`read_gpkg_lines`); anything else (empty, another type, damaged) has no vertices."""
    n = len(blobs)
    out = _parse_gpkg_lines_fast(blobs)
    if out is None:
        out = _parse_gpkg_lines_each(blobs)
    ptr, lon, lat = out
    cnt = np.diff(ptr)
    has = cnt > 0
    ends = [np.full(n, np.nan) for _ in range(4)]
    for e, arr, at in zip(ends, (lon, lat, lon, lat), (ptr[:-1], ptr[:-1], ptr[1:] - 1, ptr[1:] - 1)):
        e[has] = arr[at[has]]
    return tuple(ends), (None if (cnt[has] == 2).all() else (ptr, lon, lat))


def _parse_gpkg_lines_fast(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Vectorised: every blob a 2-D little-endian LineString of >= 2 points with one header layout
    (what GDAL writes); ``None`` otherwise."""
    n = len(blobs)
    if n == 0 or any(b is None for b in blobs):
        return None
    present = cast("Sequence[bytes]", blobs)  # none is None
    lens = np.fromiter(map(len, present), dtype=np.int64, count=n)
    first = bytes(present[0])
    if len(first) < 8:
        return None
    hlen = 8 + _ENV.get((first[3] >> 1) & 7, 0)
    if (lens < hlen + 9 + 32).any():
        return None
    buf = np.frombuffer(b"".join(bytes(b) for b in present), dtype=np.uint8)
    off = np.zeros(n, dtype=np.int64)
    np.cumsum(lens[:-1], out=off[1:])
    if not ((buf[off] == 0x47) & (buf[off + 1] == 0x50) & (buf[off + 3] == first[3]) & (buf[off + hlen] == 1)).all():
        return None
    k = np.arange(4)

    def u32(at: np.ndarray) -> np.ndarray:
        return buf[at[:, None] + k].copy().view("<u4").ravel().astype(np.int64)

    if not (u32(off + hlen + 1) == 2).all():  # 2-D LineString
        return None
    npts = u32(off + hlen + 5)
    if not ((npts >= 2) & (lens == hlen + 9 + 16 * npts)).all():
        return None
    body = np.ones(buf.size, dtype=bool)
    body[(off[:, None] + np.arange(hlen + 9)).ravel()] = False
    xy = buf[body].view("<f8").reshape(-1, 2)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(npts, out=ptr[1:])
    return ptr, xy[:, 0].copy(), xy[:, 1].copy()


def _parse_gpkg_lines_each(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob by blob: either byte order, Z/M coordinates (dropped), damaged or other blobs skipped."""
    n = len(blobs)
    parts: list[np.ndarray] = []
    cnt = np.zeros(n, dtype=np.int64)
    for i, b in enumerate(blobs):
        if b is None:
            continue
        try:
            b = bytes(b)
            h = 8 + _ENV.get((b[3] >> 1) & 7, 0)
            bo = "<" if b[h] == 1 else ">"
            gtype = struct.unpack_from(bo + "I", b, h + 1)[0]
            dims = 2
            if gtype & 0x80000000 or gtype & 0x40000000:  # EWKB-style Z/M flags
                dims += bool(gtype & 0x80000000) + bool(gtype & 0x40000000)
                gtype &= 0xFFFF
            elif gtype >= 1000:
                dims = {1: 3, 2: 3, 3: 4}.get(gtype // 1000, 0)
                gtype %= 1000
            if gtype != 2 or dims == 0:
                continue
            npts = struct.unpack_from(bo + "I", b, h + 5)[0]
            if npts < 2:
                continue
            pts = np.frombuffer(b, dtype=bo + "f8", count=npts * dims, offset=h + 9).reshape(npts, dims)[:, :2]
        except (IndexError, ValueError, struct.error):  # a damaged blob: no line for this feature
            continue
        parts.append(pts.astype(np.float64))
        cnt[i] = npts
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cnt, out=ptr[1:])
    xy = np.concatenate(parts) if parts else np.zeros((0, 2))
    return ptr, xy[:, 0].copy(), xy[:, 1].copy()


# ------------------------------------------------------------------------------------------ context

class ReportContext:
    """Lazy, cached access to a run folder for report sections.

    Attributes: ``run_dir``, ``baseline`` (the baseline run's context or ``None``), ``options``
    (keyword options given to :func:`write_report`). Everything else is read on first use:
    ``kpis``, ``manifest``, ``scenario`` (resolved YAML as a dict), ``network_summary``,
    ``table(name)`` (a Parquet file as ``{column: numpy array}``), ``geometry`` (projected links,
    :class:`twin.report.svg.Geometry`), ``link_attrs`` (lanes, capacity... per geometry row),
    ``link_metrics`` (daily volume, delay, peak-hour speed ratio per geometry row).
    """

    def __init__(self, run_dir: str | Path, *, baseline: ReportContext | None = None, network: Any = None,
                 geometry: Sequence[npt.ArrayLike] | None = None, options: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.baseline = baseline
        self.options = dict(options or {})
        self._network = network
        self._geometry_arg = geometry
        self._tables: dict[tuple[str, tuple[str, ...] | None], dict[str, np.ndarray] | None] = {}
        self._uid = 0

    # -- files ----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.run_dir / name

    def has(self, name: str) -> bool:
        return (self.run_dir / name).is_file()

    def _json(self, name: str) -> dict[str, Any]:
        """A JSON object of the run folder; ``{}`` when the file is missing; a damaged file (not
        readable, not JSON, not an object) is a :class:`ReportError` naming it."""
        p = self.run_dir / name
        return _json_object(p, self.run_dir) if p.exists() else {}

    @cached_property
    def kpis(self) -> dict[str, Any]:
        return self._json("kpis.json")

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return self._json("manifest.json")

    @cached_property
    def network_summary(self) -> dict[str, Any]:
        return self._json("network.json")

    @cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario as a dict, read with citytwin's safe YAML reader (``{}`` when the file
        is missing, unreadable or not a mapping: a report never fails on it)."""
        p = self.run_dir / "scenario.resolved.yaml"
        if not p.is_file():
            return {}
        from twin._yaml import load_yaml

        try:
            doc = load_yaml(p, what="resolved scenario")
        except TwinError as exc:
            raise ReportError(f"{exc}; damaged run folder") from None
        if not isinstance(doc, dict):
            raise ReportError(f"{p}: not a mapping of scenario keys; damaged run folder")
        return doc

    def table(self, name: str, columns: Iterable[str] | None = None) -> dict[str, np.ndarray] | None:
        """A Parquet table of the run folder as numpy columns (strings as object arrays); ``None``
        when the file is missing. Cached per (name, columns)."""
        key = (name, tuple(columns) if columns is not None else None)
        if key in self._tables:
            return self._tables[key]
        p = self.run_dir / name
        if not p.exists():
            self._tables[key] = None
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not p.is_file():
            raise ReportError(f"{p}: not a regular file; damaged run folder")
        try:
            pf = pq.ParquetFile(p)  # not pq.read_table: that imports pyarrow.dataset (and pandas), ~0.1 s
            cols = list(columns) if columns is not None else None
            if cols is not None:
                avail = set(pf.schema_arrow.names)
                cols = [c for c in cols if c in avail]
            t = pf.read(columns=cols)
        except (OSError, pa.ArrowException) as exc:
            raise ReportError(f"{p}: not a readable Parquet table ({str(exc).splitlines()[0][:100]}); "
                              "damaged run folder") from None
        out: dict[str, np.ndarray] = {}
        for c in t.column_names:
            col = t.column(c).combine_chunks()  # also for no rows (a run without car trips: links.parquet)
            if pa.types.is_dictionary(col.type):
                dic = np.asarray(col.dictionary.to_pylist(), dtype=object)
                idx = _arrow_to_numpy(col.indices)
                out[c] = dic[idx] if dic.size else np.zeros(len(idx), object)
            elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                out[c] = np.asarray(col.to_pylist(), dtype=object)
            else:
                out[c] = _arrow_to_numpy(col)
        self._tables[key] = out
        return out

    def uid(self, prefix: str = "el") -> str:
        """A page-unique element id."""
        self._uid += 1
        return f"{prefix}{self._uid}"

    # -- links ----------------------------------------------------------------------------------
    @cached_property
    def _gpkg(self) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None:
        if not self.has("links.gpkg"):
            return None
        return read_gpkg_lines(self.run_dir / "links.gpkg")

    @cached_property
    def geometry(self) -> S.Geometry | None:
        """Links projected for maps: from ``network=``, ``geometry=`` or ``links.gpkg`` (in that order)."""
        net = self._network
        if net is not None:
            t, h = np.asarray(net.link_tail), np.asarray(net.link_head)
            ptr = getattr(net, "link_geom_indptr", None)  # the street shapes (RoadNetwork)
            lines = None if ptr is None else (ptr, net.link_geom_lon, net.link_geom_lat)
            return S.project_lines(np.arange(t.size), net.node_lon[t], net.node_lat[t],
                                   net.node_lon[h], net.node_lat[h], lines=lines)
        g = self._geometry_arg
        if g is not None:
            lon1, lat1, lon2, lat2 = (np.asarray(a, float) for a in g)
            return S.project_lines(np.arange(lon1.size), lon1, lat1, lon2, lat2)
        gp = self._gpkg
        if gp is None:
            return None
        cols, lines = gp
        ok = np.isfinite(cols["lon1"]) & np.isfinite(cols["lon2"])
        lid = cols.get("link_id", np.arange(ok.size)).astype(np.int64)
        if lines is not None:  # the features with a line, their vertices
            cnt = np.diff(lines[0])
            sel = np.repeat(ok, cnt)
            ptr = np.zeros(int(ok.sum()) + 1, dtype=np.int64)
            np.cumsum(cnt[ok], out=ptr[1:])
            lines = (ptr, lines[1][sel], lines[2][sel])
        return S.project_lines(lid[ok], cols["lon1"][ok], cols["lat1"][ok], cols["lon2"][ok], cols["lat2"][ok],
                               lines=lines)

    @cached_property
    def n_links(self) -> int:
        """Links in the network (ids run 0..n_links-1)."""
        n = self.network_summary.get("links") or self.kpis.get("network_links")
        if not n and self.geometry is not None and self.geometry.n:
            n = int(self.geometry.link_id.max()) + 1
        if not n:
            lk = self.table("links.parquet", ["link_id"])
            n = int(lk["link_id"].max()) + 1 if lk is not None and lk["link_id"].size else 0
        return int(n)

    @cached_property
    def link_attrs(self) -> dict[str, np.ndarray]:
        """Static link attributes by link id (``lanes``, ``capacity_vph``, ``length_m``,
        ``freeflow_speed_mps``, ``osm_way_id``; those available)."""
        n = self.n_links
        out: dict[str, np.ndarray] = {}
        net = self._network
        if net is not None:
            for k, a in (("lanes", "link_lanes"), ("capacity_vph", "link_capacity_vph"), ("length_m", "link_length_m"),
                         ("freeflow_speed_mps", "link_speed_mps"), ("osm_way_id", "link_osmid")):
                if hasattr(net, a):
                    out[k] = np.asarray(getattr(net, a))
            return out
        gp = self._gpkg
        if gp is not None:
            cols = gp[0]
            lid = cols.get("link_id", np.arange(len(cols["lon1"]))).astype(np.int64)
            ok = (lid >= 0) & (lid < n)
            for k in ("lanes", "capacity_vph", "length_m", "freeflow_speed_mps", "osm_way_id"):
                if k in cols and cols[k].dtype != object:
                    vals = np.full(n, np.nan)
                    vals[lid[ok]] = cols[k][ok]
                    out[k] = vals
            return out
        lk = self.table("links.parquet", ["link_id", "length_m", "freeflow_speed_mps", "capacity_vph", "osm_way_id"])
        if lk is not None:
            for k in ("capacity_vph", "length_m", "freeflow_speed_mps", "osm_way_id"):
                if k in lk:
                    vals = np.full(n, np.nan)
                    vals[lk["link_id"]] = lk[k]
                    out[k] = vals
        return out

    @cached_property
    def link_metrics(self) -> dict[str, Any]:
        """Per link id: ``volume_day`` (veh), ``delay_veh_h`` (volume × (travel time − free-flow
        time)), ``peak_ratio`` (mean / free-flow speed in the network's peak hour, NaN without
        traffic then); and ``peak_hour`` (hour with the most link exits), ``hourly`` (volume,
        veh·km and veh·h per hour)."""
        n = self.n_links
        lk = self.table("links.parquet", ["link_id", "hour", "volume_veh", "mean_travel_time_s", "length_m",
                                          "freeflow_speed_mps", "mean_speed_mps"])
        if lk is None or lk["link_id"].size == 0:
            vol: np.ndarray = np.zeros(n)
            gp = self._gpkg
            if gp is not None and "volume_day_veh" in gp[0]:
                lid = gp[0].get("link_id", np.arange(len(gp[0]["lon1"]))).astype(np.int64)
                vol[lid] = gp[0]["volume_day_veh"]
            return {"volume_day": vol, "delay_veh_h": np.full(n, np.nan), "peak_ratio": np.full(n, np.nan),
                    "peak_hour": None, "hourly": None}
        lid = lk["link_id"].astype(np.int64)
        n = max(n, int(lid.max()) + 1)
        v = lk["volume_veh"].astype(np.float64)
        tt = lk["mean_travel_time_s"].astype(np.float64)
        ff_tt = lk["length_m"] / np.maximum(lk["freeflow_speed_mps"], 1e-9)
        vol = np.bincount(lid, weights=v, minlength=n)
        delay = np.bincount(lid, weights=v * np.maximum(tt - ff_tt, 0.0), minlength=n) / 3600.0
        hour = lk["hour"].astype(np.int64)
        hmin = int(hour.min())
        hv = np.bincount(hour - hmin, weights=v)
        peak = int(np.argmax(hv)) + hmin
        ratio = np.full(n, np.nan)
        m = hour == peak
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[lid[m]] = lk["mean_speed_mps"][m] / lk["freeflow_speed_mps"][m]
        hours = np.arange(hmin, hmin + hv.size)
        vkm = np.bincount(hour - hmin, weights=v * lk["length_m"]) / 1000.0
        vh = np.bincount(hour - hmin, weights=v * tt) / 3600.0
        vh_ff = np.bincount(hour - hmin, weights=v * ff_tt) / 3600.0
        return {"volume_day": vol, "delay_veh_h": delay, "peak_ratio": ratio, "peak_hour": peak,
                "hourly": {"hour": hours, "volume": hv, "veh_km": vkm, "veh_h": vh, "veh_h_ff": vh_ff}}

    def by_row(self, values_by_id: np.ndarray) -> np.ndarray:
        """Per-link-id values reordered to the rows of :attr:`geometry` (NaN where missing)."""
        g = self.geometry
        assert g is not None, "by_row needs the link geometry"
        vals = np.asarray(values_by_id, float)
        out = np.full(g.n, np.nan)
        ok = g.link_id < vals.size
        out[ok] = vals[g.link_id[ok]]
        return out


def _arrow_to_numpy(col: pa.Array) -> np.ndarray:
    """An Arrow array as numpy; fixed-width numbers without nulls straight from the buffer
    (``Array.to_numpy`` imports pandas on first use: ~0.1 s in a process that has not)."""
    import pyarrow as pa

    t = col.type
    if col.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t)) and not pa.types.is_float16(t):
        kind = "f" if pa.types.is_floating(t) else ("i" if pa.types.is_signed_integer(t) else "u")
        dt = np.dtype(f"<{kind}{t.bit_width // 8}")
        if len(col) == 0:
            return np.zeros(0, dt)
        return np.frombuffer(col.buffers()[1], dtype=dt, count=len(col), offset=col.offset * dt.itemsize)
    return np.asarray(col.to_numpy(zero_copy_only=False))


# --------------------------------------------------------------------------------------------- page

#: Files of a run folder that readers rewrite or add themselves (not checked against the manifest).
_REWRITTEN = ("report.html",)


def _json_object(p: Path, run_dir: Path) -> dict[str, Any]:
    from twin._yaml import read_text_file

    try:
        doc = json.loads(read_text_file(p, what="JSON file"))
    except TwinError as exc:
        raise ReportError(f"{exc}; damaged run folder {run_dir}") from None
    except ValueError as exc:
        raise ReportError(f"{p}: not valid JSON ({str(exc)[:80]}); damaged run folder") from None
    if not isinstance(doc, dict):
        raise ReportError(f"{p}: not a JSON object; damaged run folder")
    return doc


def check_run_folder(run_dir: str | Path) -> dict[str, Any]:
    """Check that ``run_dir`` is a complete, undamaged citytwin run folder, cheaply (no table is read),
    and return its KPIs (``kpis.json``).

    A run folder holds ``manifest.json`` and ``kpis.json`` (JSON objects; KPIs are finite numbers
    or null), every file the manifest lists (regular files), Parquet tables whose footers read,
    a ``links.gpkg`` that is an SQLite database, and a ``scenario.resolved.yaml`` that is a mapping.

    Raises
    ------
    ReportError
        One line naming the folder or the damaged file.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run folder (a file, not a folder)")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run folder (no such folder)")
    for name in ("manifest.json", "kpis.json"):
        if not (run_dir / name).exists():
            raise ReportError(f"{run_dir}: not a run folder, or an incomplete one (no {name}); run `twin run` first")
    man = _json_object(run_dir / "manifest.json", run_dir)
    kpis = _json_object(run_dir / "kpis.json", run_dir)
    for k, v in kpis.items():  # KPIs are finite numbers or null (no value)
        if not (v is None or (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))):
            raise ReportError(f"{run_dir / 'kpis.json'}: KPI {k!r} is not a finite number (got {str(v)[:40]!r}); "
                              "damaged run folder")
    files = man.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ReportError(f"{run_dir / 'manifest.json'}: `files` is not a list of names; damaged run folder")
    import stat

    present = sorted(p.name for p in run_dir.iterdir() if p.name.endswith((".parquet", ".gpkg", ".yaml")))
    for name in list(dict.fromkeys([*files, *present])):
        if name in _REWRITTEN or "/" in name or name.startswith("."):
            continue
        p = run_dir / name
        try:
            mode = p.stat().st_mode
        except OSError:
            raise ReportError(f"{p}: listed in manifest.json but missing; damaged run folder") from None
        if not stat.S_ISREG(mode):
            raise ReportError(f"{p}: not a regular file; damaged run folder")
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                pq.ParquetFile(p)
            except (OSError, pa.ArrowException) as exc:
                raise ReportError(f"{p}: not a readable Parquet table ({str(exc).splitlines()[0][:80]}); "
                                  "damaged run folder") from None
        elif name.endswith(".gpkg"):
            with open(p, "rb") as f:
                head = f.read(16)
            if head != b"SQLite format 3\x00" or not _gpkg_readable(p):
                raise ReportError(f"{p}: not a readable GeoPackage (SQLite) file; damaged run folder")
        elif name.endswith(".yaml"):
            from twin._yaml import load_yaml

            try:
                doc = load_yaml(p, what="resolved scenario")
            except TwinError as exc:
                raise ReportError(f"{exc}; damaged run folder") from None
            if not isinstance(doc, dict):
                raise ReportError(f"{p}: not a mapping of scenario keys; damaged run folder")
    return kpis


def _gpkg_readable(p: Path) -> bool:
    """True when the GeoPackage opens read-only and lists its layers (a cheap integrity check)."""
    import sqlite3
    from urllib.parse import quote

    try:
        con = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
        try:
            con.execute("SELECT table_name FROM gpkg_contents").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return True


def _check_run_dir(run_dir: Path) -> None:
    check_run_folder(run_dir)


def _page(title: str, body: str, nav: list[tuple[str, str]]) -> str:
    from twin.report.assets import CSS, JS

    links = "".join(f'<a href="#{escape(i)}">{escape(t)}</a>' for i, t in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<meta name=\"generator\" content=\"citytwin\"><title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><nav>{links}</nav><main>{body}</main><div id=\"tip\" hidden></div>"
            f"<script>{JS}</script></body></html>\n")


def _domain_sections(ctx: ReportContext) -> list[Section]:
    """Sections of the installed domains the run had (a section in its resolved scenario, or always
    on): each domain's ``report_sections()``, ``(title, fn)`` pairs read from the run folder."""
    from twin.registry import DOMAINS

    scen = ctx.scenario
    out = []
    for name, cls in DOMAINS.classes().items():
        if name not in scen and not getattr(cls, "always", False):
            continue
        domain = cast("type[Domain]", cls)  # the registry admits Domain subclasses only
        for i, (title, fn) in enumerate(domain.report_sections()):
            out.append(Section(f"domain-{name}-{i}", 60.0 + i / 100, fn, title))
    return out


def write_report(run_dir: str | Path, out_html: str | Path | None = None, *, baseline_dir: str | Path | None = None,
                 sections: Iterable[str] | None = None, network: Any = None,
                 geometry: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
                 strict: bool = False, **options: Any) -> Path:
    """Write one self-contained HTML report of a run folder (no network access needed to view it).

    Parameters
    ----------
    run_dir
        A run folder (``twin run`` output).
    out_html
        Target file (default ``run_dir/report.html``).
    baseline_dir
        Another run folder: adds the comparison section (KPIs A/B/diff and a link volume
        difference map; this run is B, the baseline A).
    sections
        Names of the sections to include (default: every registered section), in registry order.
    network
        Optional :class:`~twin.network.RoadNetwork` already in memory (``twin run`` passes it):
        link geometry and attributes come from it instead of ``links.gpkg``.
    geometry
        Optional ``(lon1, lat1, lon2, lat2)`` arrays by link id (straight links), instead of
        ``links.gpkg``.
    strict
        Re-raise a section's exception (default: the section shows the error, the report is written).
    options
        Passed to sections as ``ctx.options`` (e.g. ``max_links=20000`` for the maps).
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    if baseline_dir is not None:
        _check_run_dir(Path(baseline_dir))
    out = Path(out_html) if out_html is not None else run_dir / "report.html"
    base = ReportContext(baseline_dir, options=options) if baseline_dir is not None else None
    ctx = ReportContext(run_dir, baseline=base, network=network, geometry=geometry, options=options)
    chosen = sorted(registered_sections() + _domain_sections(ctx), key=lambda s: s.order)
    if sections is not None:
        names = list(sections)
        unknown = [s for s in names if s not in _REGISTRY]
        if unknown:
            raise ReportError(f"unknown report section(s) {unknown}; registered: {[s.name for s in chosen]}")
        chosen = [s for s in chosen if s.name in set(names)]
    body: list[str] = []
    nav: list[tuple[str, str]] = []
    for sec in chosen:
        try:
            frag = sec.fn(ctx)
        except Exception as exc:  # a broken plug-in must not cost the user the whole report
            if strict or isinstance(exc, TwinError):  # damaged inputs are the user's to know, not a section bug
                raise
            log.warning("report section %s failed: %s", sec.name, exc)
            frag = f'<p class="err">section failed: {escape(type(exc).__name__)}: {escape(str(exc))}</p>'
        if frag is None:
            continue
        sid = f"sec-{sec.name}"
        head = f"<h2>{escape(sec.title)}</h2>" if sec.title else ""
        body.append(f'<section id="{escape(sid)}" class="sec" data-section="{escape(sec.name)}">{head}{frag}</section>')
        if sec.title:
            nav.append((sid, sec.title))
    name = ctx.scenario.get("name") or ctx.manifest.get("scenario") or run_dir.name
    html = _page(f"{name} · citytwin report", "".join(body), nav)
    from twin._fs import write_output

    write_output(out, html, what="report")
    log.info("report %s written in %.3f s (%d kB)", out, time.perf_counter() - t0, len(html) // 1024)
    return out


def write_compare_report(run_a: str | Path, run_b: str | Path, out_html: str | Path | None = None, **kw: Any) -> Path:
    """The report of run B (e.g. a policy) with run A as its baseline (``twin compare A B``'s order).

    Default target: ``run_b/compare_<A name>.html``.
    """
    run_a, run_b = Path(run_a), Path(run_b)
    out = Path(out_html) if out_html is not None else run_b / f"compare_{run_a.name}.html"
    return write_report(run_b, out, baseline_dir=run_a, **kw)
