"""Self-contained HTML reports of run folders: one file, inline CSS/JS/SVG, opens offline.

* :func:`write_report` — ``run_dir/report.html``: header, KPIs, network maps (daily volume,
  peak-hour speed ratio, delay), charts over the day and per iteration, run details; with
  ``baseline_dir`` a comparison section (KPIs A/B/diff and a link volume difference map).
* :func:`write_compare_report` — the report of run B against baseline A.
* :func:`write_animation` — vehicles moving over the network during one hour (events.parquet).
* :func:`register_section` / :func:`unregister_section` — pluggable sections ``fn(ctx) -> html``.

Nothing here imports matplotlib, pandas or geopandas: the GeoPackage is read with sqlite3 and the
SVG is formatted with numpy and string joins, so a report costs a few percent of a run.
"""

from twin.report import sections as _sections  # noqa: F401  (registers the default sections)
from twin.report.animation import write_animation
from twin.report.core import (
    ReportContext,
    ReportError,
    Section,
    check_run_folder,
    format_kpi,
    kpi_label,
    read_gpkg_lines,
    register_kpi,
    register_section,
    registered_sections,
    unregister_section,
    write_compare_report,
    write_report,
)

__all__ = [
    "ReportContext", "ReportError", "Section", "format_kpi", "kpi_label", "read_gpkg_lines", "register_kpi",
    "register_section", "registered_sections", "unregister_section", "write_compare_report", "write_report",
    "write_animation", "check_run_folder",
]
