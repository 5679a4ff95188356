"""Inline SVG building blocks for reports: network maps, line and bar charts, colour scales.

Everything here is numpy plus string joins (no matplotlib): a map of tens of thousands of links is
formatted in one ``%`` operation over a tuple of integers, and charts are a few hundred bytes of SVG.
Section plug-ins (``twin.report.register_section``) can use these helpers for their own figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Geometry", "project_lines", "network_map", "legend_html", "classify", "quantile_breaks", "policy_overlay",
    "policy_legend_html", "POLICY_STYLES",
    "line_chart", "bar_chart", "stacked_hbar", "nice_ticks", "fmt_num", "SEQ_VOLUME", "SEQ_DELAY",
    "DIV_RATIO", "DIV_DIFF", "GREY",
]

OFFSET = 8  # right-hand shift of each direction of a street, in map units
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'
SIZE = 10000  # map viewBox: the longer side spans SIZE integer units (about 5 significant digits)
SIMPLIFY = 1.0  # street shapes are drawn Douglas-Peucker simplified to this many units (~0.1 px)

GREY = "#c9cdd2"
SEQ_VOLUME = ["#fde68a", "#fbbf24", "#f59e0b", "#ea580c", "#c2410c", "#7f1d1d"]
SEQ_DELAY = ["#e9d5ff", "#c084fc", "#a855f7", "#7e22ce", "#581c87", "#2e1065"]
DIV_RATIO = ["#7f1d1d", "#dc2626", "#f97316", "#facc15", "#84cc16", "#15803d"]
DIV_DIFF = ["#1e3a8a", "#3b82f6", "#93c5fd", "#d4d4d8", "#fca5a5", "#ef4444", "#7f1d1d"]
SERIES = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"]
MODE_COLORS = {"car": "#dc2626", "walk": "#16a34a", "bike": "#2563eb", "pt": "#9333ea", "maas": "#ea580c"}


# --------------------------------------------------------------------------------------------- maps

@dataclass
class Geometry:
    """Links projected to integer SVG units: polylines per link, ends ``(x1, y1, x2, y2)``.

    ``link_id[i]`` is the link of row ``i``; ``width``/``height`` the viewBox; ``d[i]`` the path data
    (``"M x y L x y ..."``, the street's shape). ``x1, y1`` and ``x2, y2`` are the first and last
    points of each drawn line (the straight segment used by the animation); ``path_ptr``,
    ``path_x``, ``path_y`` every drawn vertex (row ``i``'s are ``path_ptr[i]:path_ptr[i+1]``).
    """

    link_id: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    width: int
    height: int
    d: np.ndarray  # object array of "M.. ..L.. .." strings
    lon0: float
    lat0: float
    scale: float
    coslat: float
    path_ptr: np.ndarray | None = None
    path_x: np.ndarray | None = None
    path_y: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.link_id.size)

    def project(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Any lon/lat to this map's SVG units (floats)."""
        x = (np.asarray(lon, float) - self.lon0) * self.coslat * self.scale
        y = (self.lat0 - np.asarray(lat, float)) * self.scale
        return x, y


def project_lines(link_id: npt.ArrayLike, lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike,
                  lat2: npt.ArrayLike, mid: Sequence[npt.ArrayLike | None] | None = None,
                  offset: float = OFFSET, *, lines: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                  ) -> Geometry:
    """Equirectangular projection (x scaled by cos of the mean latitude) of links.

    ``lines``, optional, gives every link's polyline as flat arrays ``(indptr, lon, lat)`` (row
    ``i``'s vertices are ``indptr[i]:indptr[i+1]``, at least two, from its first to its last
    point); without it each link is the straight segment ``(lon1, lat1) -> (lon2, lat2)``.
    ``mid`` (older form) gives per link an ``(k, 2)`` lon/lat array of intermediate vertices.
    Vertices are rounded to integer units (the map's longer side is ``SIZE`` units, a unit about
    a tenth of a screen pixel), those that fall on the previous one are dropped and the shapes
    simplified to :data:`SIMPLIFY` units (Douglas-Peucker; the ends stay). ``offset`` shifts
    each line to its right by that many units (at the inner vertices of a polyline along the
    bisector, mitred), so that the two directions of a street are drawn side by side.
    """
    lon1, lat1, lon2, lat2 = (np.asarray(a, dtype=np.float64) for a in (lon1, lat1, lon2, lat2))
    link_id = np.asarray(link_id, dtype=np.int64)
    if link_id.size == 0:
        return Geometry(link_id, *(np.zeros(0, np.int64),) * 4, 1, 1, np.zeros(0, object), 0.0, 0.0, 1.0, 1.0)
    if lines is None and mid is not None:
        lines = _mid_to_lines(lon1, lat1, lon2, lat2, mid)
    if lines is not None:
        ptr = np.asarray(lines[0], dtype=np.int64)
        vlon, vlat = np.asarray(lines[1], dtype=np.float64), np.asarray(lines[2], dtype=np.float64)
        if (np.diff(ptr) == 2).all():  # all straight: the segment path below
            lon1, lat1, lon2, lat2 = vlon[ptr[:-1]], vlat[ptr[:-1]], vlon[ptr[1:] - 1], vlat[ptr[1:] - 1]
            lines = None
    if lines is None:
        lons = np.concatenate([lon1, lon2])
        lats = np.concatenate([lat1, lat2])
    else:
        lons, lats = vlon, vlat
    lon0, lon_max = float(lons.min()), float(lons.max())
    lat0, lat_max = float(lats.min()), float(lats.max())
    coslat = math.cos(math.radians(0.5 * (lat0 + lat_max)))
    span = max((lon_max - lon0) * coslat, lat_max - lat0, 1e-9)
    scale = (SIZE - 20) / span
    pad = 10

    def px(lon: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.rint((lon - lon0) * coslat * scale + pad).astype(np.int64)

    def py(lat: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.rint((lat_max - lat) * scale + pad).astype(np.int64)

    width = int(math.ceil((lon_max - lon0) * coslat * scale)) + 2 * pad
    height = int(math.ceil((lat_max - lat0) * scale)) + 2 * pad
    n = link_id.size
    if lines is not None:
        d, x1, y1, x2, y2, pptr, pxs, pys = _polyline_paths(px(vlon), py(vlat), ptr, offset)
        return Geometry(link_id, x1, y1, x2, y2, width, height, d, lon0 - pad / (coslat * scale),
                        lat_max + pad / scale, scale, coslat, pptr, pxs, pys)
    x1, y1, x2, y2 = px(lon1), py(lat1), px(lon2), py(lat2)
    if offset:
        dx, dy = (x2 - x1).astype(float), (y2 - y1).astype(float)
        ln = np.hypot(dx, dy)
        ln[ln == 0] = 1.0
        ox = np.rint(-dy / ln * offset).astype(np.int64)  # right-hand normal (SVG y points down)
        oy = np.rint(dx / ln * offset).astype(np.int64)
        x1, x2, y1, y2 = x1 + ox, x2 + ox, y1 + oy, y2 + oy
    flat = np.column_stack([x1, y1, x2, y2]).ravel().tolist()
    d = np.array(("M%d %dL%d %d\x00" * n % tuple(flat)).split("\x00")[:-1], dtype=object)
    geom = Geometry(link_id, x1, y1, x2, y2, width, height, d, lon0 - pad / (coslat * scale),
                    lat_max + pad / scale, scale, coslat, np.arange(0, 2 * n + 1, 2, dtype=np.int64),
                    np.column_stack([x1, x2]).ravel(), np.column_stack([y1, y2]).ravel())
    return geom


def _mid_to_lines(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray,
                  mid: Sequence[npt.ArrayLike | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-link intermediate vertices (``mid``) as flat polyline arrays."""
    lon_parts: list[np.ndarray] = []
    lat_parts: list[np.ndarray] = []
    counts: list[int] = []
    for i, m in enumerate(mid):
        m = np.zeros((0, 2)) if m is None else np.asarray(m, float).reshape(-1, 2)
        lon_parts += [lon1[i:i + 1], m[:, 0], lon2[i:i + 1]]
        lat_parts += [lat1[i:i + 1], m[:, 1], lat2[i:i + 1]]
        counts.append(m.shape[0] + 2)
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, np.concatenate(lon_parts), np.concatenate(lat_parts)


def _simplify(X: np.ndarray, Y: np.ndarray, row: np.ndarray, cnt: np.ndarray, tol: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Douglas-Peucker (GEOS, one vectorised call) of the lines with inner vertices; their end
    points stay. Returns the kept ``(X, Y, row, cnt)``, rows in order."""
    import shapely

    multi = cnt > 2
    rank = np.cumsum(multi) - 1
    sel = multi[row]
    lines = shapely.linestrings(np.column_stack([X[sel], Y[sel]]).astype(np.float64), indices=rank[row[sel]])
    xy, idx = shapely.get_coordinates(shapely.simplify(lines, tol, preserve_topology=False), return_index=True)
    rows_multi = np.flatnonzero(multi)
    new_cnt = cnt.copy()
    new_cnt[multi] = np.bincount(idx, minlength=rows_multi.size)
    if (new_cnt[multi] < 2).any():  # never expected from Douglas-Peucker: keep every vertex then
        return X, Y, row, cnt
    out_row = np.concatenate([row[~sel], rows_multi[idx]])
    order = np.argsort(out_row, kind="stable")  # rows in order, each line's vertices in order
    out_x = np.concatenate([X[~sel], np.rint(xy[:, 0]).astype(np.int64)])[order]
    out_y = np.concatenate([Y[~sel], np.rint(xy[:, 1]).astype(np.int64)])[order]
    return out_x, out_y, out_row[order], new_cnt


def _polyline_paths(X: np.ndarray, Y: np.ndarray, ptr: np.ndarray, offset: float) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Path data of integer polylines (vectorised): repeated vertices dropped, simplified, offset
    to the right.

    Returns ``(d, x1, y1, x2, y2, ptr, x, y)``: per row the path string and its drawn end points,
    and the drawn vertices as flat arrays.
    """
    n = ptr.size - 1
    cnt = np.diff(ptr)
    nv = X.size
    row = np.repeat(np.arange(n), cnt)
    first = np.zeros(nv, bool)
    first[ptr[:-1]] = True
    last = np.zeros(nv, bool)
    last[ptr[1:] - 1] = True
    # runs of equal consecutive vertices: keep the first vertex of each run, except that the run
    # holding a line's last vertex is represented by that last vertex; first and last always stay
    start = first.copy()
    start[1:] |= (X[1:] != X[:-1]) | (Y[1:] != Y[:-1])
    run = np.cumsum(start)
    in_last_run = run == run[ptr[1:] - 1][row]
    keep = first | last | (start & ~in_last_run)
    X, Y, row = X[keep], Y[keep], row[keep]
    cnt = np.bincount(row, minlength=n)
    if SIMPLIFY > 0 and (cnt > 2).any():
        X, Y, row, cnt = _simplify(X, Y, row, cnt, SIMPLIFY)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cnt, out=ptr[1:])
    nv = X.size
    first = np.zeros(nv, bool)
    first[ptr[:-1]] = True
    last = np.zeros(nv, bool)
    last[ptr[1:] - 1] = True
    if offset:
        dx, dy = np.diff(X).astype(float), np.diff(Y).astype(float)
        ln = np.hypot(dx, dy)
        ln[ln == 0] = 1.0
        inside = row[1:] == row[:-1]  # segment j joins vertices j and j+1 of the same line
        sx = np.where(inside, -dy / ln, 0.0)  # right-hand unit normal (SVG y points down)
        sy = np.where(inside, dx / ln, 0.0)
        zero = np.zeros(1)
        ax, ay = np.concatenate([zero, sx]), np.concatenate([zero, sy])  # normal of the segment before
        bx, by = np.concatenate([sx, zero]), np.concatenate([sy, zero])  # and after each vertex
        inner = ~first & ~last
        denom = np.where(inner, np.maximum(1.0 + ax * bx + ay * by, 0.5), 1.0)  # mitre, at most 2 offsets
        X = X + np.rint((ax + bx) / denom * offset).astype(np.int64)
        Y = Y + np.rint((ay + by) / denom * offset).astype(np.int64)
    flat: list[object] = [None] * (3 * nv)
    flat[0::3] = np.where(first, "\x00M", "L").tolist()
    flat[1::3] = X.tolist()
    flat[2::3] = Y.tolist()
    d = np.array(("%s%d %d" * nv % tuple(flat))[1:].split("\x00"), dtype=object)
    a, b = ptr[:-1], ptr[1:] - 1
    return d, X[a], Y[a], X[b], Y[b], ptr, X, Y


def width_classes(lanes: np.ndarray | None, capacity: np.ndarray | None, n: int) -> np.ndarray:
    """Line width class 1..4 from lanes (or capacity / 1,000 veh/h when lanes are missing)."""
    if lanes is not None:
        v = np.nan_to_num(np.asarray(lanes, float), nan=1.0)
    elif capacity is not None:
        v = np.nan_to_num(np.asarray(capacity, float), nan=1000.0) / 1000.0
    else:
        return np.ones(n, np.int64)
    classes: np.ndarray = np.clip(np.rint(v), 1, 4).astype(np.int64)
    return classes


def network_map(geom: Geometry, cls: np.ndarray | None, palette: list[str], *, widths: np.ndarray | None = None,
                priority: np.ndarray | None = None, max_links: int = 20000, map_id: str = "map",
                data_src: str | None = None, title: str = "", overlay: str = "",
                layers: Sequence[tuple[str, np.ndarray | None, np.ndarray | None]] | None = None) -> str:
    """An inline ``<svg class="map">``: one ``<path data-k=LINK>`` per drawn link, grouped by colour.

    ``cls[i]`` is the colour class of row ``i`` (an index into ``palette``; ``-1``: not drawn on its
    own). Classes are drawn in palette order (the last on top). When more than ``max_links`` links
    have a class, only the ``max_links`` with the highest ``priority`` are drawn individually; the
    others, and the unclassed ones, go into one thin grey background path. ``overlay`` (SVG
    elements, e.g. :func:`policy_overlay`) is drawn on top of the links.

    ``layers`` (instead of ``cls`` and ``priority``): ``[(css_class, cls, priority), ...]``, several
    classifications of the same links (e.g. runs A and B of a comparison, in one palette), each in
    its own ``<g class=css_class>`` (the last on top; the page shows one at a time).
    """
    n = geom.n
    if widths is None:
        widths = np.ones(n, np.int64)

    def drawn_of(c: np.ndarray | None, pr: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(c, dtype=np.int64)
        drawn = c >= 0
        if drawn.sum() > max_links:
            pr = np.asarray(pr if pr is not None else np.zeros(n), float).copy()
            pr[~drawn] = -np.inf
            keep = np.argsort(-pr, kind="stable")[:max_links]
            mask = np.zeros(n, bool)
            mask[keep] = True
            drawn &= mask
        return c, drawn

    spec = list(layers) if layers else [(None, cls, priority)]
    done = [(name, *drawn_of(c, pr)) for name, c, pr in spec]
    any_drawn = np.logical_or.reduce([d for _, _, d in done]) if done else np.zeros(n, bool)
    parts = [f'<svg class="map" id="{escape(map_id)}" viewBox="0 0 {geom.width} {geom.height}" '
             f'preserveAspectRatio="xMidYMid meet"'
             + (f' data-src="{escape(data_src)}"' if data_src else "") + ">"]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    bg = ~any_drawn
    if bg.any():
        parts.append(f'<path class="bg" d="{"".join(geom.d[bg])}"/>')
    elems = _path_elements(geom, widths)
    for name, c_arr, drawn in done:
        if name is not None:
            parts.append(f'<g class="{escape(name)}">')
            own_bg = ~drawn & any_drawn  # drawn in another layer only: background in this one
            if own_bg.any():
                parts.append(f'<path class="bg" d="{"".join(geom.d[own_bg])}"/>')
        for c, color in enumerate(palette):
            idx = np.flatnonzero(drawn & (c_arr == c))
            if idx.size:
                parts.append(f'<g stroke="{color}">{"".join(elems[idx])}</g>')
        if name is not None:
            parts.append("</g>")
    if overlay:
        parts.append(overlay)
    parts.append("</svg>")
    return "".join(parts)


def _path_elements(geom: Geometry, widths: np.ndarray) -> np.ndarray:
    w = np.asarray(widths, np.int64)
    cache = getattr(geom, "_elems", None)
    if cache is not None and np.array_equal(cache[0], w):
        cached: np.ndarray = cache[1]
        return cached
    n = geom.n
    if n:
        # one % over a tuple: link id, width class, path data per link
        flat: list[object] = [None] * (3 * n)
        flat[0::3] = geom.link_id.tolist()
        flat[1::3] = w.tolist()
        flat[2::3] = geom.d.tolist()
        elems = np.array(('<path data-k="%d" class="w%d" d="%s"/>\x00' * n % tuple(flat)).split("\x00")[:-1],
                         dtype=object)
    else:
        elems = np.zeros(0, object)
    geom._elems = (w.copy(), elems)  # type: ignore[attr-defined]
    return elems


# Policy overlays: how each kind of policy effect is drawn on top of a map (SVG presentation
# attributes, so that no stylesheet is needed; widths and dashes are screen pixels: map paths do not
# scale their strokes, and have round caps, which lengthen each dash by its width). Kinds: closed
# links, changed links (capacity or speed), priced links (a marker at the link's middle), areas (a
# bbox outline).
POLICY_STYLES = {
    "closed": {"stroke": "#111827", "stroke-width": "4", "stroke-dasharray": "4 8"},
    "changed": {"stroke": "#0891b2", "stroke-width": "4", "stroke-dasharray": "0.1 7"},
    "priced": {"fill": "#ffffff", "stroke": "#111827", "stroke-width": "1.6"},
    "area": {"fill": "#111827", "fill-opacity": "0.05", "stroke": "#111827", "stroke-width": "2",
             "stroke-dasharray": "10 5"},
}
POLICY_LABELS = {"closed": "closed links", "changed": "capacity / speed changed", "priced": "charged links",
                 "area": "charged area"}


def _attrs(style: dict[str, str]) -> str:
    return " ".join(f'{k}="{escape(v)}"' for k, v in style.items())


def policy_overlay(geom: Geometry, layers: list[dict[str, Any]]) -> str:
    """SVG elements that draw policies on a map of ``geom`` (pass to :func:`network_map` as
    ``overlay``). ``layers`` is ``[{"kind": closed|changed|priced|area, "policy": index,
    "name": label, "link_ids": ids (link kinds), "bbox": [W, S, E, N] (area)}, ...]``.

    Each layer is a ``<g class="pol pol-KIND" data-policy=INDEX data-kind=KIND>``: links as
    ``<path data-pk=LINK>`` (closed, changed), markers as ``<circle data-pk=LINK>`` (priced), areas
    as one ``<rect>``. Overlays let the pointer through (``pointer-events="none"``): hovering still
    shows the link underneath."""
    out: list[str] = []
    r = max(geom.width, geom.height) / 220.0  # marker radius, map units (~3 px on a 640 px map)
    for layer in layers:
        kind = layer["kind"]
        style = POLICY_STYLES[kind]
        head = (f'<g class="pol pol-{kind}" data-policy="{int(layer.get("policy", 0))}" data-kind="{kind}" '
                f'pointer-events="none" {_attrs(style)}>')
        name = layer.get("name")
        title = f"<title>{escape(str(name))}: {POLICY_LABELS[kind]}</title>" if name else ""
        if kind == "area":
            bbox = layer.get("bbox")
            if not bbox or len(bbox) != 4:
                continue
            w, s, e, n = (float(v) for v in bbox)
            xa, ya = geom.project(np.array([w, e]), np.array([n, s]))
            x0, x1 = sorted(xa.tolist())
            y0, y1 = sorted(ya.tolist())
            out.append(f'{head}{title}<rect x="{x0:.0f}" y="{y0:.0f}" width="{max(x1 - x0, 1):.0f}" '
                       f'height="{max(y1 - y0, 1):.0f}" vector-effect="non-scaling-stroke"/></g>')
            continue
        ids = np.asarray(layer.get("link_ids") or [], dtype=np.int64)
        rows = np.flatnonzero(np.isin(geom.link_id, ids)) if ids.size and geom.n else np.zeros(0, np.int64)
        if rows.size == 0:
            continue
        if kind == "priced":
            cx = 0.5 * (geom.x1[rows] + geom.x2[rows])
            cy = 0.5 * (geom.y1[rows] + geom.y2[rows])
            items = "".join(f'<circle data-pk="{k}" cx="{x:.0f}" cy="{y:.0f}" r="{r:.0f}" '
                            'vector-effect="non-scaling-stroke"/>'
                            for k, x, y in zip(geom.link_id[rows].tolist(), cx.tolist(), cy.tolist()))
        else:
            items = "".join(f'<path data-pk="{k}" d="{d}"/>' for k, d in zip(geom.link_id[rows].tolist(),
                                                                            geom.d[rows].tolist()))
        out.append(f"{head}{title}{items}</g>")
    return "".join(out)


def policy_legend_html(entries: list[tuple[str, str]], *, title: str = "policies") -> str:
    """A legend of policy overlays: ``entries`` is ``[(kind, label), ...]``, each shown with a small
    swatch drawn in that kind's overlay style."""
    if not entries:
        return ""
    items = []
    for kind, label in entries:
        st = _attrs(POLICY_STYLES[kind])
        if kind == "area":
            sw = f'<rect x="1" y="1" width="20" height="10" {st}/>'
        elif kind == "priced":
            sw = (f'<line x1="0" y1="6" x2="22" y2="6" stroke="{GREY}" stroke-width="3"/>'
                  f'<circle cx="11" cy="6" r="4" {st}/>')
        else:
            sw = f'<path d="M3 6H19" fill="none" stroke-linecap="round" {st}/>'
        items.append(f'<span class="sw pol-sw" data-kind="{kind}"><svg width="22" height="12" '
                     f'viewBox="0 0 22 12" style="vertical-align:middle;margin-right:4px">{sw}</svg>'
                     f"{escape(label)}</span>")
    return f'<div class="legend pol-legend"><b>{escape(title)}</b> {"".join(items)}</div>'


def legend_html(palette: list[str], labels: list[str], *, title: str = "",
                extra: Sequence[tuple[str, str]] = ()) -> str:
    """A colour legend (HTML swatches) for a map."""
    items = [f'<span class="sw"><i style="background:{c}"></i>{escape(lab)}</span>'
             for c, lab in [*zip(palette, labels), *extra]]
    head = f"<b>{escape(title)}</b> " if title else ""
    return f'<div class="legend">{head}{"".join(items)}</div>'


def nice_round(v: float, digits: int = 2) -> float:
    if v == 0 or not math.isfinite(v):
        return v
    e = math.floor(math.log10(abs(v))) - digits + 1
    rounded: float = round(v / 10**e) * 10**e
    return rounded


def quantile_breaks(values: npt.ArrayLike, qs: Sequence[float] = (0.3, 0.55, 0.75, 0.9, 0.97)) -> list[float]:
    """Increasing breaks at quantiles of ``values``, rounded to two significant digits."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    out: list[float] = []
    for b in np.quantile(v, qs):
        b = nice_round(float(b))
        if b > 0 and (not out or b > out[-1]) and b < v.max():
            out.append(b)
    return out


def classify(values: npt.ArrayLike, breaks: list[float]) -> np.ndarray:
    """Class index 0..len(breaks) of each value (``-1`` for NaN)."""
    v = np.asarray(values, float)
    c = np.searchsorted(np.asarray(breaks, float), v, side="right").astype(np.int64)
    c[~np.isfinite(v)] = -1
    return c


def range_labels(breaks: list[float], fmt: Callable[[float], str] | None = None, unit: str = "") -> list[str]:
    fmt = fmt or fmt_num
    if not breaks:
        return [f"all{unit}"]
    labels = [f"< {fmt(breaks[0])}{unit}"]
    labels += [f"{fmt(a)}–{fmt(b)}{unit}" for a, b in zip(breaks[:-1], breaks[1:])]
    labels.append(f"≥ {fmt(breaks[-1])}{unit}")
    return labels


# ------------------------------------------------------------------------------------------- charts

def fmt_num(v: float | int | None) -> str:
    """Short human number: 1,234 / 12.3 / 0.0123 / 1.2e-05."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.4g}"
    if a >= 0.01:
        return f"{v:.3g}"
    return f"{v:.2g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def _hour_ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = 1 if span <= 8 else 2 if span <= 16 else 3 if span <= 30 else 6
    t0 = math.ceil(lo / step) * step
    return list(np.arange(t0, hi + 1e-9, step))


#: a line of :func:`line_chart`: ``(label, x, y)`` or ``(label, x, y, colour)``
Series = tuple[str, npt.ArrayLike, npt.ArrayLike] | tuple[str, npt.ArrayLike, npt.ArrayLike, str]


def line_chart(series: Sequence[Series], *, xlabel: str = "", ylabel: str = "",
               x_hours: bool = False, logy: bool = False, ymin: float | None = 0.0, w: int = 640, h: int = 240,
               markers: bool = False, integer_x: bool = False, title: str = "") -> str:
    """A small inline SVG line chart; ``series`` is ``[(label, x, y), ...]`` (NaN breaks a line)."""
    lines = [(s[0], np.asarray(s[1], float), np.asarray(s[2], float),
              s[3] if len(s) > 3 else SERIES[i % len(SERIES)]) for i, s in enumerate(series)]
    lines = [s for s in lines if s[1].size]
    if not lines:
        return '<p class="empty">no data</p>'
    ml, mr, mb = 58, 14, 34
    mt = 12 + (16 if title else 0) + (16 if len(lines) > 1 else 0)
    pw, ph = w - ml - mr, h - mt - mb
    xs = np.concatenate([s[1] for s in lines])
    ys = np.concatenate([s[2] for s in lines])
    if logy:
        ys = ys[ys > 0]
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(np.nanmin(xs)), float(np.nanmax(xs))
    if x1 <= x0:
        x1 = x0 + 1
    if logy:
        if ys.size == 0:
            ys = np.array([1e-3, 1.0])
        e0, e1 = math.floor(math.log10(ys.min())), math.ceil(math.log10(ys.max()))
        if e1 <= e0:
            e1 = e0 + 1
        yt = [10.0**e for e in range(e0, e1 + 1)]
        y0, y1 = float(e0), float(e1)
        ty: Callable[[npt.ArrayLike], np.ndarray] = lambda v: np.log10(np.where(np.asarray(v) > 0, v, np.nan))  # noqa: E731
    else:
        lo = float(ys.min()) if ys.size else 0.0
        hi = float(ys.max()) if ys.size else 1.0
        if ymin is not None:
            lo = min(lo, ymin)
        yt = nice_ticks(lo, hi)
        y0, y1 = yt[0], yt[-1]
        ty = lambda v: np.asarray(v, float)  # noqa: E731
    if y1 <= y0:
        y1 = y0 + 1
    sx: Callable[[npt.ArrayLike], np.ndarray] = lambda v: ml + (np.asarray(v, float) - x0) / (x1 - x0) * pw  # noqa: E731
    sy: Callable[[npt.ArrayLike], np.ndarray] = lambda v: mt + ph - (ty(v) - y0) / (y1 - y0) * ph  # noqa: E731
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" {_FONT}>']
    if title:
        out.append(f'<text class="ct" x="{ml}" y="16">{escape(title)}</text>')
    for v in yt:
        yy = float(sy(v))
        lab = (f"1e{int(round(math.log10(v)))}" if logy and (v < 0.01 or v >= 1e4) else fmt_num(v))
        out.append(f'<line class="grid" x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="yt" x="{ml - 5}" y="{yy + 4:.1f}">{lab}</text>')
    xt = _hour_ticks(x0, x1) if x_hours else (
        list(range(int(math.ceil(x0)), int(x1) + 1, max(1, int(math.ceil((x1 - x0) / 8))))) if integer_x
        else nice_ticks(x0, x1, 6))
    for v in xt:
        if v < x0 - 1e-9 or v > x1 + 1e-9:
            continue
        xx = float(sx(v))
        lab = f"{int(v) % 24:02d}:00" if x_hours and float(v).is_integer() else fmt_num(v)
        out.append(f'<line class="tick" x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt + ph}" y2="{mt + ph + 4}"/>'
                   f'<text class="xt" x="{xx:.1f}" y="{mt + ph + 16}">{lab}</text>')
    out.append(f'<line class="axis" x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}"/>'
               f'<line class="axis" x1="{ml}" x2="{ml}" y1="{mt}" y2="{mt + ph}"/>')
    if xlabel:
        out.append(f'<text class="xl" x="{ml + pw / 2:.0f}" y="{h - 3}">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text class="yl" transform="translate(12 {mt + ph / 2:.0f}) rotate(-90)">{escape(ylabel)}</text>')
    for lab, x, y, color in lines:
        px, py = sx(x), sy(y)
        ok = np.isfinite(px) & np.isfinite(py)
        # split into runs of finite points
        d = []
        pen = False
        pts = np.column_stack([px, py]).round(1).tolist()
        for good, (a, b) in zip(ok.tolist(), pts):
            if good:
                d.append(("L" if pen else "M") + f"{a:g} {b:g}")
                pen = True
            else:
                pen = False
        out.append(f'<path class="ln" stroke="{color}" d="{"".join(d)}"><title>{escape(lab)}</title></path>')
        if markers:
            for good, (a, b), xv, yv in zip(ok.tolist(), pts, x.tolist(), y.tolist()):
                if good:
                    out.append(f'<circle cx="{a:g}" cy="{b:g}" r="3" fill="{color}">'
                               f'<title>{escape(lab)}: {fmt_num(xv)} → {fmt_num(yv)}</title></circle>')
    if len(lines) > 1:
        out.append(_legend_row([(s[0], s[3]) for s in lines], ml, mt - 16))
    out.append("</svg>")
    return "".join(out)


def _legend_row(items: list[tuple[str, str]], x: float, y: float) -> str:
    out = []
    for lab, color in items:
        out.append(f'<rect x="{x:.0f}" y="{y + 2:.0f}" width="10" height="10" fill="{color}"/>'
                   f'<text class="lg" x="{x + 14:.0f}" y="{y + 11:.0f}">{escape(lab)}</text>')
        x += 30 + 6.5 * len(lab)
    return "".join(out)


def bar_chart(labels: list[str], stacks: list[tuple[str, np.ndarray, str]], *, ylabel: str = "", w: int = 640,
              h: int = 240, title: str = "") -> str:
    """Vertical stacked bars: ``stacks`` is ``[(name, values per label, colour), ...]``."""
    n = len(labels)
    if n == 0 or not stacks:
        return '<p class="empty">no data</p>'
    ml, mr, mb = 58, 14, 34
    mt = 12 + (16 if title else 0) + 16
    pw, ph = w - ml - mr, h - mt - mb
    tot = np.sum([np.asarray(v, float) for _, v, _ in stacks], axis=0)
    yt = nice_ticks(0.0, float(tot.max()) if tot.size else 1.0)
    y1 = yt[-1] or 1.0
    bw = pw / n
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" {_FONT}>']
    if title:
        out.append(f'<text class="ct" x="{ml}" y="16">{escape(title)}</text>')
    for v in yt:
        yy = mt + ph - v / y1 * ph
        out.append(f'<line class="grid" x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="yt" x="{ml - 5}" y="{yy + 4:.1f}">{fmt_num(v)}</text>')
    base = np.zeros(n)
    for name, vals, color in stacks:
        vals = np.asarray(vals, float)
        for i in np.flatnonzero(vals > 0):
            y_top = mt + ph - (base[i] + vals[i]) / y1 * ph
            hh = vals[i] / y1 * ph
            out.append(f'<rect x="{ml + i * bw + 1:.1f}" y="{y_top:.1f}" width="{max(bw - 2, 1):.1f}" '
                       f'height="{hh:.1f}" fill="{color}"><title>{escape(labels[i])} {escape(name)}: '
                       f'{fmt_num(vals[i])}</title></rect>')
        base += vals
    step = max(1, int(math.ceil(n / 12)))
    for k in range(0, n, step):
        out.append(f'<text class="xt" x="{ml + (k + 0.5) * bw:.1f}" y="{mt + ph + 16}">{escape(labels[k])}</text>')
    out.append(f'<line class="axis" x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}"/>')
    if ylabel:
        out.append(f'<text class="yl" transform="translate(12 {mt + ph / 2:.0f}) rotate(-90)">{escape(ylabel)}</text>')
    out.append(_legend_row([(name, color) for name, _, color in stacks], ml, mt - 16))
    out.append("</svg>")
    return "".join(out)


def stacked_hbar(parts: list[tuple[str, float, str]], *, w: int = 640, h: int = 30,
                 fmt: Callable[[float], str] | None = None) -> str:
    """One horizontal 100 % bar (e.g. mode shares): ``parts`` is ``[(label, share, colour), ...]``.

    Segments wide enough carry their label inside; every part (the small ones too) is also named
    with its value in a legend row under the bar (``<g class="bar-legend">``, one
    ``<text data-part=LABEL>`` each)."""
    fmt = fmt or (lambda v: f"{100 * v:.1f} %")
    total = sum(max(v, 0.0) for _, v, _ in parts) or 1.0
    # legend rows under the bar: items wrap at the bar's width
    rows: list[list[tuple[float, str, str, str]]] = [[]]
    x = 0.0
    for label, v, color in parts:
        text = f"{label} {fmt(v)}"
        iw = 18 + 6.5 * len(text)
        if rows[-1] and x + iw > w:
            rows.append([])
            x = 0.0
        rows[-1].append((x, label, text, color))
        x += iw + 10
    hh = h + 6 + 16 * len(rows)
    out = [f'<svg class="chart" viewBox="0 0 {w} {hh}" width="{w}" height="{hh}" role="img" {_FONT}>']
    x = 0.0
    for label, v, color in parts:
        ww = max(v, 0.0) / total * w
        if ww <= 0:
            continue
        out.append(f'<rect x="{x:.1f}" y="0" width="{ww:.1f}" height="{h}" fill="{color}">'
                   f'<title>{escape(label)}: {fmt(v)}</title></rect>')
        if ww > 7.5 * (len(label) + len(fmt(v)) + 1) + 8:
            out.append(f'<text class="bl" x="{x + ww / 2:.1f}" y="{h / 2 + 4:.1f}">{escape(label)} {fmt(v)}</text>')
        x += ww
    out.append('<g class="bar-legend">')
    for r, row in enumerate(rows):
        y = h + 6 + 16 * r
        for xx, label, text, color in row:
            out.append(f'<rect x="{xx:.0f}" y="{y + 2:.0f}" width="10" height="10" fill="{color}"/>'
                       f'<text class="lg" data-part="{escape(label)}" x="{xx + 14:.0f}" y="{y + 11:.0f}">'
                       f"{escape(text)}</text>")
    out.append("</g></svg>")
    return "".join(out)
