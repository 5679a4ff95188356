"""The energy section of ``report.html``: the day's KPIs and three line charts over the day, the load
of the busiest feeders against their limit, the city's load, PV and grid exchange, and the batteries
(charging, discharging, stored energy); then the feeders' table. It reads the run folder only
(``energy_series.parquet``, ``energy_feeder_series.parquet``, ``energy_feeders.parquet``,
``kpis.json``), so ``twin report`` can redo it later.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext
    from twin.report.svg import Series

__all__ = ["energy_section", "busiest_feeders"]

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
    if fd["feeder"].size:
        order = np.lexsort((fd["feeder"], -np.asarray(fd["peak_kw"], float)))[:20]
        rows_html = "".join(
            f"<tr><td>{int(fd['feeder'][i])}</td><td>{int(fd['buildings'][i]):,}</td>"
            f"<td>{float(fd['limit_kw'][i]):,.0f}</td><td>{float(fd['peak_kw'][i]):,.0f}</td>"
            f"<td>{float(fd['overload_h'][i]):,.2f}</td></tr>" for i in order.tolist())
        parts.append('<table class="energy-feeders"><thead><tr><th>feeder</th><th>buildings</th><th>limit (kW)</th>'
                     f"<th>peak (kW)</th><th>overload (h)</th></tr></thead><tbody>{rows_html}</tbody></table>")
    return "".join(parts)
