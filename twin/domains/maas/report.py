"""The MaaS section of ``report.html``: the fleet's KPIs, its state over the day, requests and
waits per hour, and three maps: where rides were picked up and dropped off (and where rejected
requests came from), where idle vehicles stood, and the fleet's kilometres per link. It reads the
run folder only (``maas_*.parquet``, ``kpis.json``, ``links.gpkg``).

The maps aggregate per node (one marker per OSM node, its area proportional to the count) and per
link (one path per link the fleet drove), so the page stays small however many requests a run has.
Each marker group is a ``<g class="maas-pts" data-kind=KIND data-n=MARKERS data-total=COUNT>`` and
each marker a ``<circle>``/``<rect>`` with ``data-osmid`` and ``data-count``; tests and scripts can
read the numbers drawn back from the page.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext
    from twin.report.svg import Geometry

__all__ = ["maas_section", "node_positions", "stop_counts", "idle_counts", "fleet_link_km"]

_KPIS = (
    ("maas_requests", "requests", "{:,}"), ("maas_rejection_rate", "rejected", "{:.1%}"),
    ("maas_wait_mean_s", "wait, mean (s)", "{:.0f}"), ("maas_wait_p95_s", "wait, p95 (s)", "{:.0f}"),
    ("maas_shared_share", "shared rides", "{:.1%}"), ("maas_detour_ratio_mean", "ride / direct time", "{:.2f}"),
    ("maas_vkt_km", "fleet km", "{:,.0f}"), ("maas_empty_share", "empty km", "{:.1%}"),
    ("maas_occupancy", "passenger-km per vehicle-km", "{:.2f}"), ("maas_utilisation", "utilisation", "{:.1%}"),
    ("maas_revenue", "revenue", "{:,.0f}"), ("maas_energy_used_kwh", "energy used (kWh)", "{:,.0f}"),
)

#: marker styles of the maps: (SVG shape, fill, stroke, label)
MARKERS: dict[str, tuple[str, str, str, str]] = {
    "pickup": ("circle", "#2563eb", "#ffffff", "pick-ups (served)"),
    "dropoff": ("square", "#ea580c", "#ffffff", "drop-offs"),
    "rejected": ("ring", "none", "#dc2626", "rejected requests (where they asked)"),
    "idle": ("circle", "#16a34a", "#ffffff", "idle vehicles"),
}


# ------------------------------------------------------------------------------------------- data

def node_positions(ctx: ReportContext) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(osmid, x, y)`` of the network's nodes in the map units of ``ctx.geometry``, sorted by
    OSM id; from the in-memory network when the report has one, else from the end points of the
    links in ``links.gpkg`` (``u_osmid`` / ``v_osmid``). ``None`` when neither is available."""
    g = ctx.geometry
    if g is None:
        return None
    net = getattr(ctx, "_network", None)
    if net is not None and hasattr(net, "node_osmid"):
        ids = np.asarray(net.node_osmid, np.int64)
        lon, lat = np.asarray(net.node_lon, float), np.asarray(net.node_lat, float)
    else:
        gp = getattr(ctx, "_gpkg", None)
        if gp is None:
            return None
        cols = gp[0]
        if "u_osmid" not in cols or "v_osmid" not in cols:
            return None
        ids = np.concatenate([cols["u_osmid"], cols["v_osmid"]])
        lon = np.concatenate([cols["lon1"], cols["lon2"]]).astype(float)
        lat = np.concatenate([cols["lat1"], cols["lat2"]]).astype(float)
        ok = np.isfinite(ids.astype(float)) & np.isfinite(lon) & np.isfinite(lat)
        ids, lon, lat = ids[ok].astype(np.int64), lon[ok], lat[ok]
    ids, first = np.unique(ids, return_index=True)
    x, y = g.project(lon[first], lat[first])
    return ids, x, y


def _counts(osmids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(osmids)
    if v.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    v = v[np.isfinite(v.astype(float))].astype(np.int64)
    ids, n = np.unique(v, return_counts=True)
    return ids, n.astype(np.int64)


def stop_counts(rq: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per kind (``pickup``, ``dropoff`` of the served requests; ``rejected``: the pick-up node of
    the rejected ones) the distinct OSM nodes and the requests at each."""
    if "pickup_osmid" not in rq or "dropoff_osmid" not in rq:
        return {}
    rej = np.asarray(rq["rejected"], bool)
    served = ~rej & np.isfinite(np.asarray(rq["pickup_s"], float))
    return {"pickup": _counts(rq["pickup_osmid"][served]), "dropoff": _counts(rq["dropoff_osmid"][served]),
            "rejected": _counts(rq["pickup_osmid"][rej])}


def idle_counts(idle: dict[str, np.ndarray], hour: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct OSM nodes where idle vehicles stood in the hourly samples of ``maas_idle.parquet``
    (all day, or the sample of ``hour`` only) and the samples at each (vehicle-hours)."""
    sel = np.ones(idle["osmid"].size, bool)
    if hour is not None:
        sel = np.floor(np.asarray(idle["t_s"], float) / 3600.0).astype(np.int64) == int(hour)
    return _counts(idle["osmid"][sel])


def fleet_link_km(ctx: ReportContext, links: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(link_id, km, empty_km)`` per link the fleet entered (``maas_links.parquet``; link lengths
    from the run's link attributes), link ids sorted."""
    lid = np.asarray(links["link_id"], np.int64)
    if lid.size == 0:
        z = np.zeros(0)
        return np.zeros(0, np.int64), z, z
    length = ctx.link_attrs.get("length_m")
    if length is None or length.size <= int(lid.max()):
        km = np.full(lid.size, np.nan)
    else:
        km = np.asarray(length, float)[lid] / 1000.0
    km = np.nan_to_num(km, nan=0.0)
    empty = np.asarray(links["passengers"]) == 0 if "passengers" in links else np.zeros(lid.size, bool)
    ids, inv = np.unique(lid, return_inverse=True)
    tot = np.bincount(inv, weights=km, minlength=ids.size)
    emp = np.bincount(inv, weights=np.where(empty, km, 0.0), minlength=ids.size)
    return ids, tot, emp


# ------------------------------------------------------------------------------------------- maps

def _marker_elements(kind: str, ids: np.ndarray, n: np.ndarray, pos: tuple[np.ndarray, np.ndarray, np.ndarray],
                     g: Geometry, nmax: int, what: str) -> tuple[str, int]:
    """One marker group: the nodes of ``ids`` found on the map, area proportional to ``n``."""
    shape, fill, stroke, _ = MARKERS[kind]
    osm, px, py = pos
    at = np.searchsorted(osm, ids)
    at_c = np.minimum(at, max(osm.size - 1, 0))
    found = (at < osm.size) & (osm[at_c] == ids) if osm.size else np.zeros(ids.size, bool)
    ids, n, at = ids[found], n[found], at_c[found]
    order = np.argsort(-n, kind="stable")  # the big ones below the small ones
    ids, n, at = ids[order], n[order], at[order]
    base = max(g.width, g.height) / 260.0
    r = base * (0.8 + 2.2 * np.sqrt(n / max(nmax, 1)))
    x, y = px[at], py[at]
    head = (f'<g class="maas-pts maas-{kind}" data-kind="{kind}" data-n="{ids.size}" data-total="{int(n.sum())}" '
            f'fill="{fill}" fill-opacity="{0.75 if fill != "none" else 1}" stroke="{stroke}" '
            f'stroke-width="{2 if shape == "ring" else 1}">')
    items = []
    for k, c, xx, yy, rr in zip(ids.tolist(), n.tolist(), x.tolist(), y.tolist(), r.tolist()):
        tip = f"<title>node {k}: {c:,} {escape(what)}</title>"
        if shape == "square":
            items.append(f'<rect data-osmid="{k}" data-count="{c}" x="{xx - rr:.0f}" y="{yy - rr:.0f}" '
                         f'width="{2 * rr:.0f}" height="{2 * rr:.0f}" vector-effect="non-scaling-stroke">{tip}</rect>')
        else:
            items.append(f'<circle data-osmid="{k}" data-count="{c}" cx="{xx:.0f}" cy="{yy:.0f}" r="{rr:.0f}" '
                         f'vector-effect="non-scaling-stroke">{tip}</circle>')
    return head + "".join(items) + "</g>", int(ids.size)


def _swatch(kind: str) -> str:
    shape, fill, stroke, label = MARKERS[kind]
    if shape == "square":
        sw = f'<rect x="2" y="1" width="10" height="10" fill="{fill}" stroke="#6b7280" stroke-width=".5"/>'
    elif shape == "ring":
        sw = f'<circle cx="7" cy="6" r="4.5" fill="none" stroke="{stroke}" stroke-width="2"/>'
    else:
        sw = f'<circle cx="7" cy="6" r="5" fill="{fill}"/>'
    return (f'<span class="sw" data-kind="{kind}"><svg width="14" height="12" viewBox="0 0 14 12" '
            f'style="vertical-align:middle;margin-right:4px">{sw}</svg>{escape(label)}</span>')


def _points_map(ctx: ReportContext, groups: list[tuple[str, np.ndarray, np.ndarray, str]],
                pos: tuple[np.ndarray, np.ndarray, np.ndarray], title: str) -> tuple[str, str, dict[str, int]]:
    """A map of the network (one grey background path) with marker groups on top; returns the SVG,
    its legend and the number of markers drawn per kind."""
    from twin.report import svg as S

    g = ctx.geometry
    assert g is not None
    nmax = max((int(n.max()) for _, _, n, _ in groups if n.size), default=1)
    overlay, drawn = [], {}
    for kind, ids, n, what in groups:
        el, k = _marker_elements(kind, ids, n, pos, g, nmax, what)
        overlay.append(el)
        drawn[kind] = k
    svg = S.network_map(g, np.full(g.n, -1, np.int64), [S.GREY], map_id=ctx.uid("map"), title=title,
                        overlay="".join(overlay))
    legend = (f'<div class="legend">{"".join(_swatch(kind) for kind, _, _, _ in groups)}'
              f'<span class="sw">marker area ∝ count (largest {nmax:,})</span></div>')
    return svg, legend, drawn


def _figure(title: str, body: str, legend: str, caption: str, attrs: dict[str, Any]) -> str:
    a = "".join(f' data-{k}="{escape(v if isinstance(v, str) else json.dumps(v))}"' for k, v in attrs.items())
    return f"<figure{a}><h3>{escape(title)}</h3>{body}{legend}<figcaption>{escape(caption)}</figcaption></figure>"


def _maps(ctx: ReportContext, rq: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """The section's map figures and notes on those that cannot be drawn."""
    from twin.report import svg as S

    figs: list[str] = []
    notes: list[str] = []
    g = ctx.geometry
    if g is None or g.n == 0:
        return figs, ["no MaaS maps: the run folder has no link geometry (links.gpkg)"]
    pos = node_positions(ctx)
    # (a) pick-ups, drop-offs, rejected requests
    stops = stop_counts(rq)
    if pos is None:
        notes.append("no pick-up or idle maps: no node coordinates (links.gpkg without u_osmid / v_osmid)")
    elif not stops:
        notes.append("no pick-up map: maas_requests.parquet has no pickup_osmid / dropoff_osmid (an older run)")
    elif not rq["request_s"].size:
        notes.append("no pick-up map: no requests")
    else:
        groups = [("pickup", *stops["pickup"], "pick-ups"), ("dropoff", *stops["dropoff"], "drop-offs")]
        if stops["rejected"][0].size:
            groups.append(("rejected", *stops["rejected"], "rejected requests"))
        svg, legend, drawn = _points_map(ctx, groups, pos, "Pick-ups and drop-offs")
        totals = {k: int(stops[k][1].sum()) for k in stops}
        figs.append(_figure(
            "Pick-ups and drop-offs", svg, legend,
            (f"Served requests per node: {totals['pickup']:,} pick-ups at {drawn['pickup']:,} nodes, drop-offs at "
             f"{drawn['dropoff']:,} nodes; {totals['rejected']:,} rejected requests at "
             f"{drawn.get('rejected', 0):,} nodes (rings)."),
            {"map": "maas-stops", **{f"{k}-nodes": v for k, v in drawn.items()}}))
    # (b) idle vehicles
    idle = ctx.table("maas_idle.parquet")
    if pos is not None:
        if idle is None:
            notes.append("no idle-vehicle map: no maas_idle.parquet (an older run)")
        elif not idle["osmid"].size:
            notes.append("no idle-vehicle map: no vehicle was idle at an hourly sample")
        else:
            ids, n = idle_counts(idle)
            hours = np.unique(np.floor(np.asarray(idle["t_s"], float) / 3600.0)).size
            svg, legend, drawn = _points_map(ctx, [("idle", ids, n, "idle vehicle-hours")], pos,
                                             "Idle vehicles")
            figs.append(_figure(
                "Where idle vehicles stand", svg, legend,
                (f"Idle vehicles at the first model step of each hour ({hours} samples, {int(n.sum()):,} "
                 f"vehicle-samples), counted per node over the day: about the vehicle-hours spent idle there."),
                {"map": "maas-idle", "idle-nodes": drawn["idle"], "samples": int(n.sum())}))
    # (c) fleet km per link
    mlinks = ctx.table("maas_links.parquet", ["link_id", "passengers"])
    if mlinks is None:
        notes.append("no fleet-km map: no maas_links.parquet (an older run)")
    elif mlinks["link_id"].size:
        lid, km, emp = fleet_link_km(ctx, mlinks)
        val = np.zeros(int(max(lid.max(), g.link_id.max())) + 1)
        val[lid] = km
        by_row = ctx.by_row(val)
        br = S.quantile_breaks(by_row[by_row > 0])
        pal = [S.GREY, *S.SEQ_VOLUME[-(len(br) + 1):]]
        cls = np.where(by_row > 0, S.classify(by_row, br) + 1, -1)
        src = ctx.uid("maaslinks")
        svg = S.network_map(g, cls, pal, priority=np.nan_to_num(by_row), map_id=ctx.uid("map"), data_src=src,
                            title="Fleet km per link", max_links=int(ctx.options.get("max_links", 20000)))
        vals = np.column_stack([np.round(km, 3), np.round(emp, 3)]).ravel().tolist()
        table = (f'<script type="application/json" id="{src}">{{"f":["fleet km","of which empty"],'
                 f'"k":{json.dumps(lid.tolist())},"v":{json.dumps(vals)}}}</script>')
        figs.append(_figure(
            "Fleet km per link", svg, S.legend_html(pal[1:], S.range_labels(br), title="km/day"),
            (f"Kilometres the fleet drove on each link over the day ({float(km.sum()):,.0f} km on "
             f"{lid.size:,} links, {float(emp.sum()):,.0f} km empty); grey: links the fleet did not use."),
            {"map": "maas-km", "links": int(lid.size), "breaks": [round(b, 6) for b in br]}) + table)
    return figs, notes


# ---------------------------------------------------------------------------------------- section

def maas_section(ctx: ReportContext) -> str | None:
    """HTML of the section (``None`` when the run has no fleet tables)."""
    from twin.report import svg as S

    fleet = ctx.table("maas_fleet.parquet")
    rq = ctx.table("maas_requests.parquet")
    if fleet is None or rq is None:
        return None
    k = ctx.kpis
    facts = "".join(f"<div><dt>{escape(label)}</dt><dd>{escape(fmt.format(k[key]))}</dd></div>"
                    for key, label, fmt in _KPIS if isinstance(k.get(key), (int, float)))
    parts = [f'<dl class="facts">{facts}</dl>']
    if fleet["t_s"].size:
        x = fleet["t_s"] / 3600.0
        series = [(name.replace("_", " "), x, fleet[name]) for name in
                  ("idle", "to_pickup", "occupied", "rebalancing", "to_charger", "charging") if fleet[name].any()]
        parts.append(S.line_chart(series, x_hours=True, ylabel="vehicles", title="Fleet state over the day"))
    if rq["request_s"].size:
        hour = np.floor(rq["request_s"] / 3600.0).astype(np.int64)
        hours = np.arange(hour.min(), hour.max() + 1)
        n = np.bincount(hour - hour.min(), minlength=hours.size)
        rej = np.bincount(hour - hour.min(), weights=rq["rejected"].astype(float), minlength=hours.size)
        served = ~rq["rejected"] & np.isfinite(rq["wait_s"])
        wsum = np.bincount(hour[served] - hour.min(), weights=rq["wait_s"][served], minlength=hours.size)
        wn = np.bincount(hour[served] - hour.min(), minlength=hours.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            wait_min = np.where(wn > 0, wsum / wn / 60.0, np.nan)
        parts.append(S.line_chart([("requests", hours + 0.5, n), ("rejected", hours + 0.5, rej)], x_hours=True,
                                  markers=True, ylabel="per hour", title="Requests per hour"))
        parts.append(S.line_chart([("mean wait", hours + 0.5, wait_min)], x_hours=True, markers=True,
                                  ylabel="min", title="Mean wait by hour of request"))
    figs, notes = _maps(ctx, rq)
    parts += [f'<p class="note">{escape(t)}</p>' for t in notes]
    if figs:
        parts.append('<p class="hint">Wheel to zoom, drag to pan, double-click to reset; hover a marker or a '
                     "link for its count.</p>")
        parts.append(f'<div class="grid">{"".join(figs)}</div>')
    return "".join(parts)
