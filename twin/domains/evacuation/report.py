"""The evacuation section of ``report.html``: the KPIs, the evacuation curve (evacuees ordered and
in shelters, people at risk, over the day) and the shelters' filling. It reads the run folder only
(``evacuation_series.parquet``, ``evacuation_shelters.parquet``, ``kpis.json``)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext

__all__ = ["evacuation_section"]

_KPIS = (
    ("evacuation_ordered", "told to leave", "{:,}"), ("evacuation_evacuees", "evacuees", "{:,}"),
    ("evacuation_sheltered", "in shelters", "{:,}"), ("evacuation_not_sheltered", "never sheltered", "{:,}"),
    ("evacuation_left_car", "left a stuck car", "{:,}"), ("evacuation_turned_away", "turned away (times)", "{:,}"),
    ("evacuation_at_risk_peak", "at risk, peak", "{:,}"), ("evacuation_exposure_person_h", "exposure (person-h)",
                                                          "{:,.0f}"),
    ("evacuation_links_closed", "links closed", "{:,}"),
)


def _minutes(v: object) -> str:
    return f"{float(v) / 60:.0f} min" if isinstance(v, (int, float)) else "not reached"


def evacuation_section(ctx: ReportContext) -> str | None:
    """HTML of the section (``None`` when the run has no evacuation tables)."""
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
    if sh["capacity"].size:
        order = np.argsort(-sh["peak_occupancy"], kind="stable")[:20]
        rows = "".join(
            f"<tr><td>{int(sh['shelter_osmid'][i])}</td><td>{int(sh['capacity'][i]):,}</td>"
            f"<td>{int(sh['peak_occupancy'][i]):,}</td><td>{int(sh['turned_away'][i]):,}</td></tr>" for i in order)
        parts.append('<table class="evac-shelters"><thead><tr><th>shelter (OSM node)</th><th>capacity</th>'
                     f"<th>peak occupancy</th><th>turned away</th></tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)
