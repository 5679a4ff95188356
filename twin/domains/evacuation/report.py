"""The evacuation section of ``report.html``: the KPIs, the evacuation curve (evacuees ordered and
in shelters, people at risk, over the day), two maps and the shelters' filling table. It reads the
run folder only (``evacuation_series.parquet``, ``evacuation_shelters.parquet``,
``evacuation_hazards.parquet``, ``evacuation_contraflow.parquet``, ``kpis.json``, ``links.gpkg``).

The maps, on the road network in grey:

* *Hazard by stage*: the hazard's area at each stage (one ``<polygon>`` per hazard, stage and
  polygon part, coloured from the first stage, dark, to the last, light), the shelters (circles,
  area proportional to capacity) and the contraflow links (thick blue lines).
* *Shelter filling*: the shelters coloured by peak occupancy as a share of capacity, full ones in
  red, those that turned people away with a black ring.

Every marker carries its numbers as ``data-*`` attributes (``data-osmid``, ``data-capacity``,
``data-peak``, ``data-turned-away``; ``data-hazard``, ``data-stage``, ``data-at-s``; ``data-from``,
``data-to``, ``data-corridor``) and a ``<title>`` tooltip; tests and scripts can read them back.
Old run folders without the hazard table get no hazard map (a note says why); the section itself
still renders.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext
    from twin.report.svg import Geometry

__all__ = ["evacuation_section", "stage_colours", "fill_classes"]

_KPIS = (
    ("evacuation_ordered", "told to leave", "{:,}"), ("evacuation_evacuees", "evacuees", "{:,}"),
    ("evacuation_sheltered", "in shelters", "{:,}"), ("evacuation_not_sheltered", "never sheltered", "{:,}"),
    ("evacuation_left_car", "left a stuck car", "{:,}"), ("evacuation_turned_away", "turned away (times)", "{:,}"),
    ("evacuation_at_risk_peak", "at risk, peak", "{:,}"), ("evacuation_exposure_person_h", "exposure (person-h)",
                                                          "{:,.0f}"),
    ("evacuation_links_closed", "links closed", "{:,}"),
)

#: hazard stages: first (dark red) to last (light orange), interpolated for more stages
_STAGE_RAMP = ("#800026", "#bd0026", "#e31a1c", "#fc4e2a", "#fd8d3c", "#feb24c")
_SHELTER = "#15803d"  # shelters on the hazard map
_CONTRAFLOW = "#2563eb"
#: shelter filling: peak occupancy / capacity in [0, 25), [25, 50), [50, 75), [75, 100) %, then full
FILL_BREAKS = (0.25, 0.5, 0.75)
FILL_COLOURS = ("#dbeafe", "#93c5fd", "#3b82f6", "#1e3a8a")
FILL_LABELS = ("0–25 %", "25–50 %", "50–75 %", "75–99 %")
_FULL = "#dc2626"
_RING = "#111827"  # outline of the shelters that turned people away
_EDGE = "#475569"  # outline of the other shelters on the filling map


def _minutes(v: object) -> str:
    return f"{float(v) / 60:.0f} min" if isinstance(v, (int, float)) else "not reached"


def _clock(s: float) -> str:
    """Seconds after midnight as ``HH:MM`` (``HH:MM (+1 d)`` on a later day; ``-`` if not a number)."""
    if not np.isfinite(s):
        return "-"
    d, r = divmod(int(round(float(s))), 86400)
    return f"{r // 3600:02d}:{r % 3600 // 60:02d}" + (f" (+{d} d)" if d else "")


def _n(k: int, word: str, plural: str | None = None) -> str:
    """``k`` and ``word``, plural unless ``k`` is 1 (``1 corridor``, ``2 corridors``)."""
    return f"{k:,} {word if k == 1 else plural or word + 's'}"


def stage_colours(n: int) -> list[str]:
    """``n`` colours of a sequential ramp, the first stage darkest and the last lightest.

    Parameters
    ----------
    n
        Number of stages (distinct stage start times).

    Returns
    -------
    list of str
        ``#rrggbb`` colours, piecewise-linearly interpolated along :data:`_STAGE_RAMP`.
    """
    if n <= 0:
        return []
    if n == 1:
        return [_STAGE_RAMP[0]]
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _STAGE_RAMP], float)
    at = np.linspace(0.0, len(_STAGE_RAMP) - 1.0, n)
    lo = np.minimum(np.floor(at).astype(np.int64), len(_STAGE_RAMP) - 2)
    f = (at - lo)[:, None]
    mix = np.rint(rgb[lo] * (1 - f) + rgb[lo + 1] * f).astype(np.int64)
    return ["#{:02x}{:02x}{:02x}".format(*row) for row in mix.tolist()]


def fill_classes(capacity: np.ndarray, peak: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shelter filling: the share ``peak / capacity`` (1 where the capacity is 0), its class (an
    index into :data:`FILL_COLOURS`, or ``len(FILL_COLOURS)`` for a full shelter) and whether it
    is full (peak occupancy at or above capacity).

    Parameters
    ----------
    capacity, peak
        Places and peak occupancy per shelter.

    Returns
    -------
    share, cls, full
        Arrays of the shelters' length.
    """
    cap = np.asarray(capacity, float)
    pk = np.asarray(peak, float)
    full = pk >= cap
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(cap > 0, pk / np.where(cap > 0, cap, 1.0), 1.0)
    cls = np.searchsorted(np.asarray(FILL_BREAKS), share, side="right").astype(np.int64)
    cls = np.where(full, len(FILL_COLOURS), np.minimum(cls, len(FILL_COLOURS) - 1))
    return share, cls, full


# ------------------------------------------------------------------------------------------- data

def _shelter_xy(ctx: ReportContext, sh: dict[str, np.ndarray], g: Geometry
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map positions of the shelters (from their ``lon``/``lat``, else their OSM node) and which
    of them have one."""
    n = int(sh["shelter_osmid"].size)
    if "lon" in sh and "lat" in sh:
        x, y = g.project(np.asarray(sh["lon"], float), np.asarray(sh["lat"], float))
        return x, y, np.isfinite(x) & np.isfinite(y)
    from twin.domains.maas.report import node_positions

    x, y = np.full(n, np.nan), np.full(n, np.nan)
    pos = node_positions(ctx)
    if pos is not None and pos[0].size:
        osm, px, py = pos
        ids = np.asarray(sh["shelter_osmid"], np.int64)
        at = np.minimum(np.searchsorted(osm, ids), osm.size - 1)
        ok = osm[at] == ids
        x[ok], y[ok] = px[at[ok]], py[at[ok]]
    return x, y, np.isfinite(x) & np.isfinite(y)


def _link_ends(ctx: ReportContext, g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(u_osmid, v_osmid, way_osmid)`` of each row of the map's geometry (``-1`` where unknown),
    from the in-memory network or ``links.gpkg``; ``None`` without node ids."""
    lid = np.asarray(g.link_id, np.int64)
    net = getattr(ctx, "_network", None)
    if net is not None and hasattr(net, "node_osmid"):
        osm = np.asarray(net.node_osmid, np.int64)
        u = osm[np.asarray(net.link_tail, np.int64)[lid]]
        v = osm[np.asarray(net.link_head, np.int64)[lid]]
        way = np.asarray(net.link_osmid, np.int64)[lid] if hasattr(net, "link_osmid") else np.full(lid.size, -1)
        return u, v, way
    gp = getattr(ctx, "_gpkg", None)
    if gp is None or "u_osmid" not in gp[0] or "v_osmid" not in gp[0]:
        return None
    cols = gp[0]
    src = np.asarray(cols.get("link_id", np.arange(len(cols["u_osmid"]))), np.int64)
    size = int(max(src.max(initial=-1), lid.max(initial=-1))) + 1
    out = []
    for name in ("u_osmid", "v_osmid", "osm_way_id"):
        by_id = np.full(size, -1, np.int64)
        if name in cols:
            vals = np.asarray(cols[name], float)
            ok = np.isfinite(vals) & (src >= 0)
            by_id[src[ok]] = vals[ok].astype(np.int64)
        out.append(by_id[lid])
    return out[0], out[1], out[2]


def _contraflow_paths(ctx: ReportContext, cf: dict[str, np.ndarray], g: Geometry) -> list[tuple[int, str]]:
    """Per contraflow row (in table order) the path data of its link on the map: the geometry row
    from ``from_osmid`` to ``to_osmid`` (the one of its OSM way first), else a straight line
    between the two nodes; rows not on the map are left out. Returns ``[(row, d), ...]``."""
    ends = _link_ends(ctx, g)
    out: list[tuple[int, str]] = []
    pos = None
    for i, (f, t, w) in enumerate(zip(np.asarray(cf["from_osmid"], np.int64).tolist(),
                                      np.asarray(cf["to_osmid"], np.int64).tolist(),
                                      np.asarray(cf["way_osmid"], np.int64).tolist())):
        if ends is not None:
            rows = np.flatnonzero((ends[0] == f) & (ends[1] == t))
            if rows.size:
                same_way = rows[ends[2][rows] == w]
                r = int(same_way[0] if same_way.size else rows[0])
                out.append((i, str(g.d[r])))
                continue
        if pos is None:
            from twin.domains.maas.report import node_positions

            pos = node_positions(ctx) or (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        osm, px, py = pos
        if osm.size == 0:
            continue
        at = np.minimum(np.searchsorted(osm, np.array([f, t], np.int64)), osm.size - 1)
        if (osm[at] == np.array([f, t])).all():
            xy = np.rint(np.column_stack([px[at], py[at]])).astype(np.int64).tolist()
            out.append((i, f"M{xy[0][0]} {xy[0][1]}L{xy[1][0]} {xy[1][1]}"))
    return out


def _hazard_parts(hz: dict[str, np.ndarray], g: Geometry) -> list[tuple[int, int, int, float, str]]:
    """The hazard outlines as ``(hazard, stage, part, at_s, points)`` per polygon part, sorted by
    hazard, stage and part; ``points`` is an SVG ``points`` list in integer map units (the
    closing vertex and repeated vertices dropped)."""
    n = int(hz["hazard"].size)
    if n == 0:
        return []
    h, st, pt = (np.asarray(hz[k], np.int64) for k in ("hazard", "stage", "part"))
    seq = np.asarray(hz["seq"], np.int64)
    order = np.lexsort((seq, pt, st, h))
    h, st, pt, seq = h[order], st[order], pt[order], seq[order]
    at = np.asarray(hz["at_s"], float)[order]
    x, y = g.project(np.asarray(hz["lon"], float)[order], np.asarray(hz["lat"], float)[order])
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    new = np.ones(n, bool)
    new[1:] = (h[1:] != h[:-1]) | (st[1:] != st[:-1]) | (pt[1:] != pt[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        px, py = xi[a:b], yi[a:b]
        keep = np.ones(b - a, bool)
        keep[1:] = (px[1:] != px[:-1]) | (py[1:] != py[:-1])
        px, py = px[keep], py[keep]
        if px.size > 3 and px[0] == px[-1] and py[0] == py[-1]:
            px, py = px[:-1], py[:-1]
        pts = " ".join(f"{u},{v}" for u, v in zip(px.tolist(), py.tolist()))
        out.append((int(h[a]), int(st[a]), int(pt[a]), float(at[a]), pts))
    return out


# ------------------------------------------------------------------------------------------- maps

def _swatch(inner: str, label: str, w: int = 14) -> str:
    return (f'<span class="sw"><svg width="{w}" height="12" viewBox="0 0 {w} 12" '
            f'style="vertical-align:middle;margin-right:4px">{inner}</svg>{escape(label)}</span>')


def _radii(capacity: np.ndarray, g: Geometry) -> tuple[np.ndarray, int]:
    """Circle radii in map units, area proportional to capacity (the largest shelter's radius
    about 12 px on a 640 px map; none under 0.3 of that), and the largest capacity."""
    cap = np.maximum(np.asarray(capacity, float), 0.0)
    cmax = int(cap.max()) if cap.size else 0
    rmax = max(g.width, g.height) / 55.0
    r = rmax * np.sqrt(cap / max(cmax, 1))
    return np.maximum(r, 0.3 * rmax), cmax


def _shelter_tip(osmid: int, cap: int, peak: int, share: float, turned: int) -> str:
    return (f"<title>shelter (node {osmid}): {cap:,} places, peak {peak:,} ({100 * share:.0f} %)"
            + (f", turned away {turned:,} times" if turned else "") + "</title>")


def _hazard_map(ctx: ReportContext, g: Geometry, sh: dict[str, np.ndarray], hz: dict[str, np.ndarray],
                cf: dict[str, np.ndarray] | None) -> tuple[str | None, str | None]:
    """The *Hazard by stage* figure (``None`` when the hazard table has no rows) and a note."""
    from twin.domains.maas.report import _figure
    from twin.report import svg as S

    parts = _hazard_parts(hz, g)
    if not parts:
        return None, "no hazard map: evacuation_hazards.parquet has no outlines"
    times = sorted({p[3] for p in parts})
    rank = {t: i for i, t in enumerate(times)}
    colours = stage_colours(len(times))
    # the last stage (largest area) at the bottom, the first on top
    drawn = sorted(parts, key=lambda p: (-rank[p[3]], p[0], p[2]))
    polys = "".join(
        f'<polygon data-hazard="{hh}" data-stage="{st}" data-part="{pt}" data-at-s="{at:.0f}" '
        f'fill="{colours[rank[at]]}" stroke="{colours[rank[at]]}" vector-effect="non-scaling-stroke" points="{pts}">'
        f"<title>hazard {hh + 1}, stage {st + 1}: from {_clock(at)}</title></polygon>"
        for hh, st, pt, at, pts in drawn)
    overlay = [(f'<g class="evac-hazard" fill-opacity="0.28" stroke-width="1.5" stroke-linejoin="round" '
                f'data-n="{len(parts)}">{polys}</g>')]
    # contraflow links
    cf_drawn: list[tuple[int, str]] = []
    if cf is not None and cf["from_osmid"].size:
        cf_drawn = _contraflow_paths(ctx, cf, g)
        routed = np.asarray(cf.get("evacuees_routed", np.zeros(cf["from_osmid"].size)), float)
        items = "".join(
            f'<path data-corridor="{int(cf["corridor"][i])}" data-from="{int(cf["from_osmid"][i])}" '
            f'data-to="{int(cf["to_osmid"][i])}" d="{d}"><title>contraflow, corridor {int(cf["corridor"][i]) + 1} '
            f'(way {int(cf["way_osmid"][i])}): {routed[i]:,.0f} evacuees routed, from {_clock(cf["at_s"][i])}'
            "</title></path>" for i, d in cf_drawn)
        overlay.append(f'<g class="evac-contraflow" stroke="{_CONTRAFLOW}" stroke-width="5" stroke-opacity="0.9" '
                       f'data-n="{len(cf_drawn)}">{items}</g>')
    # shelters, area ∝ capacity, the big ones below the small ones
    x, y, ok = _shelter_xy(ctx, sh, g)
    cap = np.asarray(sh["capacity"], np.int64)
    osm = np.asarray(sh["shelter_osmid"], np.int64)
    r, cmax = _radii(cap, g)
    share, _, _ = fill_classes(cap, sh["peak_occupancy"])
    order = [i for i in np.lexsort((osm, -cap)).tolist() if ok[i]]
    peak, turned = np.asarray(sh["peak_occupancy"], np.int64), np.asarray(sh["turned_away"], np.int64)
    circles = "".join(
        f'<circle data-osmid="{osm[i]}" data-capacity="{cap[i]}" cx="{int(np.rint(x[i]))}" cy="{int(np.rint(y[i]))}" '
        f'r="{int(np.rint(r[i]))}" vector-effect="non-scaling-stroke">'
        f"{_shelter_tip(int(osm[i]), int(cap[i]), int(peak[i]), float(share[i]), int(turned[i]))}</circle>"
        for i in order)
    overlay.append(f'<g class="evac-shelters" fill="{_SHELTER}" fill-opacity="0.85" stroke="#ffffff" '
                   f'stroke-width="1" data-n="{len(order)}">{circles}</g>')
    svg = S.network_map(g, np.full(g.n, -1, np.int64), [S.GREY], map_id=ctx.uid("map"), title="Hazard by stage",
                        overlay="".join(overlay))
    stages = "".join(_swatch(f'<rect x="1" y="1" width="12" height="10" fill="{c}" fill-opacity="0.5" '
                             f'stroke="{c}" stroke-width="1.5"/>', f"from {_clock(t)}")
                     for c, t in zip(colours, times))
    legend = (f'<div class="legend"><b>hazard area</b> {stages}'
              + _swatch(f'<circle cx="7" cy="6" r="5" fill="{_SHELTER}"/>', f"shelters (area ∝ capacity, largest "
                                                                          f"{cmax:,} places)")
              + (_swatch(f'<line x1="1" y1="6" x2="21" y2="6" stroke="{_CONTRAFLOW}" stroke-width="4"/>',
                         "contraflow links", w=22) if cf_drawn else "")
              + "</div>")
    nh = len({p[0] for p in parts})
    cap_text = (f"The hazard's area at each of its {_n(len(times), 'stage start time')}"
                + (f" ({nh} hazards)" if nh > 1 else "")
                + f", from {_clock(times[0])} to {_clock(times[-1])}: earlier stages darker and drawn on top. "
                f"{_n(len(order), 'shelter')}, {int(cap.sum()):,} places in all, circle area ∝ capacity.")
    if cf is not None and cf["from_osmid"].size:
        ncorr = int(np.unique(np.asarray(cf["corridor"], np.int64)).size)
        cap_text += (f" Contraflow from {_clock(float(np.min(cf['at_s'])))}: {_n(int(cf['from_osmid'].size), 'link')} "
                     f"on {_n(ncorr, 'corridor')} (blue, drawn on their outbound side), the inbound lanes reversed"
                     + (f"; {int(cf['from_osmid'].size) - len(cf_drawn):,} not on the map"
                        if len(cf_drawn) < cf["from_osmid"].size else "") + ".")
    elif cf is not None:
        cap_text += " No contraflow."
    fig = _figure("Hazard by stage", svg, legend, cap_text,
                  {"map": "evac-hazard", "stages": len(times), "polygons": len(parts), "shelters": len(order),
                   "contraflow-links": len(cf_drawn)})
    return fig, None


def _filling_map(ctx: ReportContext, g: Geometry, sh: dict[str, np.ndarray],
                 hz: dict[str, np.ndarray] | None) -> str:
    """The *Shelter filling* figure: shelters coloured by peak occupancy / capacity."""
    from twin.domains.maas.report import _figure
    from twin.report import svg as S

    cap = np.asarray(sh["capacity"], np.int64)
    osm = np.asarray(sh["shelter_osmid"], np.int64)
    peak, turned = np.asarray(sh["peak_occupancy"], np.int64), np.asarray(sh["turned_away"], np.int64)
    share, cls, full = fill_classes(cap, peak)
    x, y, ok = _shelter_xy(ctx, sh, g)
    r, cmax = _radii(cap, g)
    palette = [*FILL_COLOURS, _FULL]
    overlay = []
    if hz is not None and hz["hazard"].size:  # context: the last stage's outline
        parts = _hazard_parts(hz, g)
        last = max(p[3] for p in parts)
        outl = "".join(f'<polygon vector-effect="non-scaling-stroke" points="{p[4]}"/>' for p in parts if p[3] == last)
        overlay.append(f'<g class="evac-hazard-last" fill="none" stroke="#6b7280" stroke-width="1.2" '
                       f'stroke-dasharray="6 4" pointer-events="none">{outl}</g>')
    order = [i for i in np.lexsort((osm, -cap)).tolist() if ok[i]]
    circles, rings = [], []
    gap = max(g.width, g.height) / 400.0  # the ring around a shelter that turned people away, map units
    for i in order:
        cx, cy, rr = int(np.rint(x[i])), int(np.rint(y[i])), int(np.rint(r[i]))
        circles.append(
            f'<circle data-osmid="{osm[i]}" data-capacity="{cap[i]}" data-peak="{peak[i]}" '
            f'data-turned-away="{turned[i]}" data-full="{int(full[i])}" cx="{cx}" cy="{cy}" r="{rr}" '
            f'fill="{palette[cls[i]]}" vector-effect="non-scaling-stroke">'
            f"{_shelter_tip(int(osm[i]), int(cap[i]), int(peak[i]), float(share[i]), int(turned[i]))}</circle>")
        if turned[i] > 0:
            rings.append(f'<circle data-osmid="{osm[i]}" cx="{cx}" cy="{cy}" r="{int(np.rint(r[i] + gap))}" '
                         'vector-effect="non-scaling-stroke"/>')
    overlay.append(f'<g class="evac-filling" fill-opacity="0.95" stroke="{_EDGE}" stroke-width="1" '
                   f'data-n="{len(order)}">{"".join(circles)}</g>')
    if rings:
        overlay.append(f'<g class="evac-turned" fill="none" stroke="{_RING}" stroke-width="2.5" '
                       f'pointer-events="none" data-n="{len(rings)}">{"".join(rings)}</g>')
    svg = S.network_map(g, np.full(g.n, -1, np.int64), [S.GREY], map_id=ctx.uid("map"), title="Shelter filling",
                        overlay="".join(overlay))
    sw = [_swatch(f'<circle cx="7" cy="6" r="5" fill="{c}" stroke="{_EDGE}" stroke-width="1"/>', lab)
          for c, lab in zip(palette, [*FILL_LABELS, "full (100 %)"])]
    sw.append(_swatch(f'<circle cx="7" cy="6" r="2.5" fill="{_FULL}"/><circle cx="7" cy="6" r="5" fill="none" '
                      f'stroke="{_RING}" stroke-width="1.8"/>', "turned people away (ring)"))
    if overlay[0].startswith('<g class="evac-hazard-last"'):
        sw.append(_swatch('<line x1="1" y1="6" x2="21" y2="6" stroke="#6b7280" stroke-width="1.5" '
                          'stroke-dasharray="4 3"/>', "hazard area, last stage", w=22))
    sw.append(f'<span class="sw">circle area ∝ capacity (largest {cmax:,} places)</span>')
    legend = f'<div class="legend"><b>peak occupancy / capacity</b> {"".join(sw)}</div>'
    n, nfull, nturn = int(osm.size), int(full.sum()), int((turned > 0).sum())
    caption = (f"Peak occupancy of each shelter as a share of its capacity (0–100 %): {_n(n, 'shelter')}, "
               f"{int(cap.sum()):,} places, {int(peak.sum()):,} people at the shelters' peaks; {nfull:,} full "
               f"(red), {nturn:,} turned people away (black ring, {_n(int(turned.sum()), 'time')} in all)."
               + (f" {n - len(order):,} shelters not on the map." if len(order) < n else ""))
    return _figure("Shelter filling", svg, legend, caption,
                   {"map": "evac-filling", "shelters": len(order), "full": nfull, "turned-away": nturn})


def _maps(ctx: ReportContext, sh: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """The section's map figures and notes on those that cannot be drawn."""
    g = ctx.geometry
    if g is None or g.n == 0:
        return [], ["no evacuation maps: the run folder has no link geometry (links.gpkg)"]
    if not sh["shelter_osmid"].size:
        return [], ["no evacuation maps: the run had no shelters"]
    figs: list[str] = []
    notes: list[str] = []
    hz = ctx.table("evacuation_hazards.parquet")
    cf = ctx.table("evacuation_contraflow.parquet")
    if hz is None:
        notes.append("no hazard map: no evacuation_hazards.parquet (an older run)")
    else:
        fig, note = _hazard_map(ctx, g, sh, hz, cf)
        figs += [fig] if fig else []
        notes += [note] if note else []
    figs.append(_filling_map(ctx, g, sh, hz))
    return figs, notes


# ---------------------------------------------------------------------------------------- section

def evacuation_section(ctx: ReportContext) -> str | None:
    """HTML of the evacuation section.

    Parameters
    ----------
    ctx
        The run folder's report context.

    Returns
    -------
    str or None
        The fragment: KPIs, the evacuation curve, the *Hazard by stage* and *Shelter filling*
        maps (when the run folder has link geometry and the tables), the busiest shelters;
        ``None`` when the run has no evacuation tables.
    """
    from twin.report import svg as S

    ser = ctx.table("evacuation_series.parquet")
    sh = ctx.table("evacuation_shelters.parquet")
    if ser is None or sh is None:
        return None
    k = ctx.kpis
    facts = [(label, fmt.format(k[key])) for key, label, fmt in _KPIS if isinstance(k.get(key), (int, float))]
    facts += [(f"clearance {q}%", _minutes(k.get(f"evacuation_clearance_{q}_s"))) for q in (50, 90, 95, 100)]
    parts = ['<dl class="facts">' + "".join(f"<div><dt>{escape(a)}</dt><dd>{escape(b)}</dd></div>"
                                            for a, b in facts) + "</dl>"]
    if ser["t_s"].size:
        x = ser["t_s"] / 3600.0
        parts.append(S.line_chart([("evacuees", x, ser["evacuees"]), ("in shelters", x, ser["sheltered"]),
                                   ("at risk", x, ser["at_risk"])], x_hours=True, ylabel="residents",
                                  title="Evacuation curve"))
    figs, notes = _maps(ctx, sh)
    parts += [f'<p class="note">{escape(t)}</p>' for t in notes]
    if figs:
        parts.append('<p class="hint">Wheel to zoom, drag to pan, double-click to reset; hover a shelter, a hazard '
                     "area or a contraflow link for its numbers.</p>")
        parts.append(f'<div class="grid">{"".join(figs)}</div>')
    if sh["capacity"].size:
        order = np.argsort(-sh["peak_occupancy"], kind="stable")[:20]
        rows = "".join(
            f"<tr><td>{int(sh['shelter_osmid'][i])}</td><td>{int(sh['capacity'][i]):,}</td>"
            f"<td>{int(sh['peak_occupancy'][i]):,}</td><td>{int(sh['turned_away'][i]):,}</td></tr>" for i in order)
        parts.append('<table class="evac-shelters"><thead><tr><th>shelter (OSM node)</th><th>capacity</th>'
                     f"<th>peak occupancy</th><th>turned away</th></tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)
