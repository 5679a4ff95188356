"""The MaaS section of ``report.html``: the fleet's KPIs, its state over the day, and requests and
waits per hour. It reads the run folder only (``maas_*.parquet``, ``kpis.json``)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.report.core import ReportContext

__all__ = ["maas_section"]

_KPIS = (
    ("maas_requests", "requests", "{:,}"), ("maas_rejection_rate", "rejected", "{:.1%}"),
    ("maas_wait_mean_s", "wait, mean (s)", "{:.0f}"), ("maas_wait_p95_s", "wait, p95 (s)", "{:.0f}"),
    ("maas_shared_share", "shared rides", "{:.1%}"), ("maas_detour_ratio_mean", "ride / direct time", "{:.2f}"),
    ("maas_vkt_km", "fleet km", "{:,.0f}"), ("maas_empty_share", "empty km", "{:.1%}"),
    ("maas_occupancy", "passenger-km per vehicle-km", "{:.2f}"), ("maas_utilisation", "utilisation", "{:.1%}"),
    ("maas_revenue", "revenue", "{:,.0f}"), ("maas_energy_used_kwh", "energy used (kWh)", "{:,.0f}"),
)


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
    return "".join(parts)
