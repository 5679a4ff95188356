"""The energy section of ``report.html``: the day's KPIs and three line charts over the day, the load
of the busiest feeders against their limit, the city's load, PV and grid exchange, and the batteries
(charging, discharging, stored energy); a map of the buildings by their peak grid import with the
feeders' substations; then the feeders' table. It reads the run folder only
(``energy_series.parquet``, ``energy_feeder_series.parquet``, ``energy_feeders.parquet``,
``energy_buildings.parquet``, ``kpis.json``, the link geometry), so ``twin report`` can redo it
later.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext
    from twin.report.svg import Series

__all__ = ["energy_section", "busiest_feeders", "peak_classes"]

#: buildings by peak import: light (low) to dark (high); the classes' breaks are the 50th, 80th and
#: 95th percentiles of the buildings' peaks (so every map uses its colours)
PEAK_COLOURS = ("#fde68a", "#f59e0b", "#c2410c", "#7f1d1d")
_SUBSTATION = "#111827"

_KPIS = (
    ("energy_buildings", "buildings", "{:,}"), ("energy_feeders", "feeders", "{:,}"),
    ("energy_load_kwh", "load (kWh)", "{:,.0f}"), ("energy_pv_kwh", "PV (kWh)", "{:,.0f}"),
    ("energy_import_kwh", "imported (kWh)", "{:,.0f}"), ("energy_export_kwh", "exported (kWh)", "{:,.0f}"),
    ("energy_pv_self_consumption", "PV self-consumption", "{:.1%}"),
    ("energy_ev_charged_kwh", "EV charged (kWh)", "{:,.0f}"), ("energy_cars", "electric cars (sample)", "{:,}"),
    ("energy_peak_feeder_kw", "peak feeder load (kW)", "{:,.0f}"), ("energy_overload_h", "overload (feeder-h)",
                                                                     "{:,.2f}"),
    ("energy_cost", "cost", "{:,.0f}"), ("energy_co2_kg", "CO2 (kg)", "{:,.0f}"),
)


def busiest_feeders(feeders: dict[str, np.ndarray], n: int = 4) -> np.ndarray:
    """The ``n`` feeders with the highest peak as a share of their limit (ties by feeder number).

    Parameters
    ----------
    feeders
        The ``energy_feeders`` table (``feeder``, ``peak_kw``, ``limit_kw``).
    n
        How many.

    Returns
    -------
    numpy.ndarray
        Their feeder numbers, int64, busiest first.
    """
    f = np.asarray(feeders["feeder"], np.int64)
    rel = np.asarray(feeders["peak_kw"], float) / np.maximum(np.asarray(feeders["limit_kw"], float), 1e-9)
    out: np.ndarray = f[np.lexsort((f, -rel))][:n]
    return out


def peak_classes(peak_kw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class (0-3) of each building's peak import and the three breaks (kW): the 50th, 80th and
    95th percentiles of the peaks (rounded to 0.1 kW)."""
    p = np.asarray(peak_kw, float)
    fin = p[np.isfinite(p)]
    breaks = np.round(np.quantile(fin, [0.5, 0.8, 0.95]), 1) if fin.size else np.zeros(3)
    cls: np.ndarray = np.searchsorted(breaks, np.where(np.isfinite(p), p, 0.0), side="right").astype(np.int64)
    return cls, breaks


def _peak_map(ctx: ReportContext, b: dict[str, np.ndarray], fd: dict[str, np.ndarray]) -> str | None:
    """The *Buildings by peak load* figure (``None`` without link geometry or buildings)."""
    from twin.domains.maas.report import _figure
    from twin.report import svg as S

    g = getattr(ctx, "geometry", None)
    if g is None or g.n == 0 or not b["lon"].size:
        return None
    peak = np.asarray(b["peak_import_kw"], float)
    cls, breaks = peak_classes(peak)
    x, y = g.project(np.asarray(b["lon"], float), np.asarray(b["lat"], float))
    ok = np.isfinite(x) & np.isfinite(y)
    r = max(1, int(round(max(g.width, g.height) / 220.0)))
    order = [i for i in np.lexsort((np.arange(peak.size), np.where(np.isfinite(peak), peak, -1.0))).tolist() if ok[i]]
    osm = np.asarray(b["building_osmid"], np.int64)
    circles = "".join(
        f'<circle data-osmid="{osm[i]}" data-peak-kw="{peak[i]:.1f}" cx="{int(np.rint(x[i]))}" '
        f'cy="{int(np.rint(y[i]))}" r="{r}" fill="{PEAK_COLOURS[cls[i]]}" vector-effect="non-scaling-stroke">'
        f"<title>building {osm[i]}: peak import {peak[i]:,.1f} kW</title></circle>" for i in order)
    sx, sy = g.project(np.asarray(fd["lon"], float), np.asarray(fd["lat"], float))
    h = 2 * r + 2
    subs = "".join(
        f'<rect data-feeder="{int(f)}" x="{int(np.rint(u)) - h}" y="{int(np.rint(v)) - h}" width="{2 * h}" '
        f'height="{2 * h}" vector-effect="non-scaling-stroke"><title>substation of feeder {int(f)}</title></rect>'
        for f, u, v in zip(np.asarray(fd["feeder"]).tolist(), sx.tolist(), sy.tolist()) if np.isfinite(u + v))
    overlay = (f'<g class="energy-buildings" stroke="#78350f" stroke-width="0.5" data-n="{len(order)}">{circles}</g>'
               f'<g class="energy-substations" fill="{_SUBSTATION}" fill-opacity="0.85">{subs}</g>')
    svg = S.network_map(g, np.full(g.n, -1, np.int64), [S.GREY], map_id=ctx.uid("map"), title="Buildings by peak load",
                        overlay=overlay)
    b0, b1, b2 = (f"{v:,.1f}" for v in breaks.tolist())
    labels = [f"under {b0} kW", f"{b0}–{b1} kW", f"{b1}–{b2} kW", f"{b2} kW and more"]
    sw = "".join(f'<span class="sw"><svg width="14" height="12" viewBox="0 0 14 12" style="vertical-align:middle;'
                 f'margin-right:4px"><circle cx="7" cy="6" r="5" fill="{c}" stroke="#78350f" stroke-width="0.5"/>'
                 f"</svg>{escape(lab)}</span>" for c, lab in zip(PEAK_COLOURS, labels))
    sw += ('<span class="sw"><svg width="14" height="12" viewBox="0 0 14 12" style="vertical-align:middle;'
           f'margin-right:4px"><rect x="2" y="1" width="10" height="10" fill="{_SUBSTATION}"/></svg>substation</span>')
    legend = f'<div class="legend"><b>peak grid import of the day</b> {sw}</div>'
    caption = (f"Each building's highest import over the day's 15-minute intervals, in classes at the 50th, 80th "
               f"and 95th percentiles: {len(order):,} buildings on the map, {int(fd['feeder'].size):,} feeders "
               f"(squares: their substations).")
    out: str = _figure("Buildings by peak load", svg, legend, caption,
                       {"map": "energy-peak", "buildings": len(order), "substations": int(fd["feeder"].size)})
    return out


def energy_section(ctx: ReportContext) -> str | None:
    """HTML of the energy section.

    Parameters
    ----------
    ctx
        The run folder's report context.

    Returns
    -------
    str or None
        KPIs, the *Feeder load*, *City load and PV* and *Batteries* charts and the feeders' table;
        ``None`` when the run has no energy tables.
    """
    from twin.report import svg as S

    ser = ctx.table("energy_series.parquet")
    fs = ctx.table("energy_feeder_series.parquet")
    fd = ctx.table("energy_feeders.parquet")
    if ser is None or fs is None or fd is None:
        return None
    k = ctx.kpis
    facts = [(label, fmt.format(k[key])) for key, label, fmt in _KPIS if isinstance(k.get(key), (int, float))]
    parts = ['<dl class="facts">' + "".join(f"<div><dt>{escape(a)}</dt><dd>{escape(b)}</dd></div>"
                                            for a, b in facts) + "</dl>"]
    if ser["t_s"].size:
        top = busiest_feeders(fd)
        lines: list[Series] = []
        for f in top.tolist():
            rows = fs["feeder"] == f
            x = fs["t_s"][rows] / 3600.0
            lines.append((f"feeder {f}", x, fs["load_kw"][rows]))
        if top.size:
            rows = fs["feeder"] == top[0]
            lines.append((f"limit of feeder {int(top[0])}", fs["t_s"][rows] / 3600.0, fs["limit_kw"][rows], "#dc2626"))
        parts.append(S.line_chart(lines, x_hours=True, ylabel="kW", ymin=None,
                                  title="Feeder load (net import) of the busiest feeders"))
        x = ser["t_s"] / 3600.0
        parts.append(S.line_chart([("load", x, ser["load_kw"]), ("PV", x, ser["pv_kw"]),
                                   ("EV charging", x, ser["ev_kw"]), ("import", x, ser["import_kw"]),
                                   ("export", x, ser["export_kw"])], x_hours=True, ylabel="kW",
                                  title="City load, PV and grid exchange"))
        parts.append(S.line_chart([("charging", x, ser["charge_kw"]), ("discharging", x, ser["discharge_kw"]),
                                   ("stored (kWh)", x, ser["stored_kwh"])], x_hours=True, ylabel="kW, kWh",
                                  title="Batteries"))
    bt = ctx.table("energy_buildings.parquet")
    if bt is not None and "peak_import_kw" in bt:
        fig = _peak_map(ctx, bt, fd)
        if fig is not None:
            parts.append(fig)
    if fd["feeder"].size:
        order = np.lexsort((fd["feeder"], -np.asarray(fd["peak_kw"], float)))[:20]
        rows_html = "".join(
            f"<tr><td>{int(fd['feeder'][i])}</td><td>{int(fd['buildings'][i]):,}</td>"
            f"<td>{float(fd['limit_kw'][i]):,.0f}</td><td>{float(fd['peak_kw'][i]):,.0f}</td>"
            f"<td>{float(fd['overload_h'][i]):,.2f}</td></tr>" for i in order.tolist())
        parts.append('<table class="energy-feeders"><thead><tr><th>feeder</th><th>buildings</th><th>limit (kW)</th>'
                     f"<th>peak (kW)</th><th>overload (h)</th></tr></thead><tbody>{rows_html}</tbody></table>")
    return "".join(parts)
