"""The default report sections (registered on import of :mod:`twin.report`)."""

from __future__ import annotations

from html import escape

import numpy as np

from twin import __version__
from twin.report import svg as S
from twin.report.core import ReportContext, format_kpi, kpi_label, register_section

__all__ = ["header", "kpi_table", "comparison", "network_maps", "day_charts", "iteration_charts", "run_details",
           "link_table_json"]


def _facts(items: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(str(v))}</dd></div>"
                                          for k, v in items) + "</dl>"


def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


# optional outputs of a run folder: file -> (scenario switch under ``output``, what it holds)
_OPTIONAL_OUTPUTS = {
    "links.parquet": ("links", "hourly link volumes and speeds"),
    "links.gpkg": ("geopackage", "link geometry and daily link results"),
    "events.parquet": ("events", "the event stream"),
    "timeseries.parquet": ("timeseries", "trips en route over the day"),
}


def _absent(ctx: ReportContext, name: str) -> str:
    """``"links.parquet is not in the run folder (output.links: false)"``: why a file is missing."""
    switch = _OPTIONAL_OUTPUTS.get(name, ("", ""))[0]
    out = ctx.scenario.get("output") if isinstance(ctx.scenario.get("output"), dict) else {}
    why = f" (output.{switch}: false)" if switch and out.get(switch) is False else ""
    return f"{name} is not in the run folder{why}"


def _no_cars(ctx: ReportContext) -> bool:
    """The run has no car trips (kpis.json says so): nothing drove on the road network."""
    n = ctx.kpis.get("car_trips")
    return isinstance(n, int) and not isinstance(n, bool) and n == 0


def _no_cars_note(ctx: ReportContext) -> str:
    avail = (ctx.scenario.get("modes") or {}).get("available") if isinstance(ctx.scenario.get("modes"), dict) else None
    modes = f" (modes: {', '.join(map(str, avail))})" if isinstance(avail, list) and avail else ""
    return f"no car trips in this run{modes}: no traffic on the road network"


@register_section("header", order=0)
def header(ctx: ReportContext) -> str:
    sc, man, k, net = ctx.scenario, ctx.manifest, ctx.kpis, ctx.network_summary
    name = sc.get("name") or man.get("scenario") or ctx.run_dir.name
    mp = sc.get("map") or {}
    sim = sc.get("simulation") or {}
    pop = sc.get("population") or {}
    commit = man.get("git_commit")
    facts = [
        ("map", f"{mp.get('source', net.get('source', '-'))} ({mp.get('network_type', net.get('network_type', 'drive'))})"),
        ("network", f"{net.get('nodes', k.get('network_nodes', '-')):,} nodes, {net.get('links', k.get('network_links', '-')):,} links"
         if isinstance(net.get("nodes", k.get("network_nodes")), int) else "-"),
        ("seed", sc.get("seed", man.get("seed", "-"))),
        ("residents", f"{k.get('residents', pop.get('residents', 0)):,}"),
        ("simulated", f"{_clock(sim['start_s'])}–{_clock(sim['end_s'])}, {k.get('iterations', '-')} day(s)"
         if all(isinstance(sim.get(k), int | float) and not isinstance(sim.get(k), bool) for k in ("start_s", "end_s"))
         else "-"),
        ("citytwin", man.get("citytwin_version", __version__) + (f" ({commit[:10]})" if commit else "")),
        ("python", man.get("python", "-")),
    ]
    if net.get("length_km"):
        facts.insert(2, ("road length", f"{net['length_km']:,.1f} km"))
    pols = net.get("policies") or sc.get("policies") or []
    if pols:
        facts.append(("policies", f"{len(pols)}"))
    desc = sc.get("description") or ""
    return (f"<h1>{escape(str(name))}</h1>" + (f'<p class="desc">{escape(desc)}</p>' if desc else "")
            + _facts(facts))


@register_section("kpis", order=10, title="Key performance indicators")
def kpi_table(ctx: ReportContext) -> str | None:
    k = ctx.kpis
    if not k:
        return '<p class="empty">no kpis.json in the run folder</p>'
    rows = "".join(f'<tr data-kpi="{escape(key)}"><td>{escape(kpi_label(key))}<code>{escape(key)}</code></td>'
                   f"<td>{format_kpi(key, v)}</td></tr>" for key, v in k.items())
    shares = [(m[len("mode_share_"):], float(v)) for m, v in k.items()
              if m.startswith("mode_share_") and isinstance(v, int | float)]
    bar = ""
    if shares:
        bar = "<h3>Mode shares</h3>" + S.stacked_hbar(
            [(m, v, S.MODE_COLORS.get(m, S.SERIES[i % len(S.SERIES)])) for i, (m, v) in enumerate(shares)])
    return f'<table class="kpi"><thead><tr><th>KPI</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>{bar}'


@register_section("comparison", order=15, title="Comparison with the baseline")
def comparison(ctx: ReportContext) -> str | None:
    base = ctx.baseline
    if base is None:
        return None
    ka, kb = base.kpis, ctx.kpis
    rows = []
    for key in [*ka, *(k for k in kb if k not in ka)]:
        a, b = ka.get(key), kb.get(key)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            continue
        d = b - a
        rel = f"{100 * d / a:+.1f} %" if a else "-"
        cls = "up" if d > 0 else "down" if d < 0 else ""
        rows.append(f'<tr data-kpi="{escape(key)}" data-a="{a!r}" data-b="{b!r}" data-diff="{d!r}">'
                    f"<td>{escape(kpi_label(key))}<code>{escape(key)}</code></td><td>{format_kpi(key, a)}</td>"
                    f'<td>{format_kpi(key, b)}</td><td class="{cls}">{format_kpi(key, d, diff=True)}</td>'
                    f'<td class="{cls}">{rel}</td></tr>')
    na = escape(str(base.scenario.get("name") or base.run_dir.name))
    nb = escape(str(ctx.scenario.get("name") or ctx.run_dir.name))
    out = [f"<p>A (baseline): <b>{na}</b> <code>{escape(str(base.run_dir))}</code><br>"
           f"B (this run): <b>{nb}</b> <code>{escape(str(ctx.run_dir))}</code></p>",
           '<table class="kpi"><thead><tr><th>KPI</th><th>A</th><th>B</th><th>B − A</th><th>change</th></tr></thead>'
           f'<tbody>{"".join(rows)}</tbody></table>']
    out.append(_diff_map(ctx, base))
    return "".join(out)


def _diff_map(ctx: ReportContext, base: ReportContext) -> str:
    g = ctx.geometry
    if g is None:
        return '<p class="note">no link geometry: no difference map</p>'
    sa, sb = base.network_summary, ctx.network_summary
    if base.n_links != ctx.n_links or (sa.get("source") and sb.get("source") and sa.get("source") != sb.get("source")):
        return '<p class="note">the two runs use different networks: no link difference map</p>'
    va, vb = base.link_metrics["volume_day"], ctx.link_metrics["volume_day"]
    n = max(va.size, vb.size)
    diff_id = np.pad(vb, (0, n - vb.size)) - np.pad(va, (0, n - va.size))
    diff = ctx.by_row(diff_id)
    amax = np.abs(diff[np.isfinite(diff)])
    q = S.quantile_breaks(amax[amax > 0], qs=(0.5, 0.8, 0.95)) if amax.size else []
    q = q or [1.0]
    breaks = [-x for x in reversed(q)] + q  # symmetric, grey in the middle
    cls = S.classify(diff, breaks)  # 2 len(q) + 1 classes, the middle one is |diff| < q[0]
    pal = _diverging(len(breaks) + 1)
    cls[diff == 0] = -1  # unchanged links: thin grey background
    labels = S.range_labels(breaks)
    src = ctx.uid("diffdata")
    data = link_table_json(ctx, src, extra=[("volume A (veh/day)", ctx.by_row(np.pad(va, (0, n - va.size))), 1),
                                            ("volume B (veh/day)", ctx.by_row(np.pad(vb, (0, n - vb.size))), 1),
                                            ("B − A (veh/day)", diff, 1)], base_fields=False)
    svg = S.network_map(g, cls, pal, widths=_widths(ctx), priority=np.abs(np.nan_to_num(diff)),
                        max_links=int(ctx.options.get("max_links", 20000)), map_id=ctx.uid("map"), data_src=src,
                        title="Daily volume difference B − A")
    return ("<h3>Daily link volume difference (B − A)</h3><figure>" + svg
            + S.legend_html(pal, labels, title="veh/day", extra=[(S.GREY, "unchanged (thin)")])
            + '<figcaption>Red: more vehicles than the baseline; blue: fewer. Wheel to zoom, drag to pan, '
              "double-click to reset.</figcaption></figure>" + data)


def _diverging(k: int) -> list[str]:
    pal = S.DIV_DIFF
    if k == len(pal):
        return pal
    idx = np.rint(np.linspace(0, len(pal) - 1, k)).astype(int)
    return [pal[i] for i in idx]


def _widths(ctx: ReportContext) -> np.ndarray:
    g = ctx.geometry
    la = ctx.link_attrs
    lanes = ctx.by_row(la["lanes"]) if "lanes" in la else None
    cap = ctx.by_row(la["capacity_vph"]) if "capacity_vph" in la else None
    return S.width_classes(lanes, cap, g.n)


def _tokens(values: np.ndarray, decimals: int) -> np.ndarray:
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    if decimals <= 0:
        s = np.rint(np.where(ok, v, 0)).astype(np.int64).astype(str).astype(object)
    else:
        s = np.char.mod(f"%.{decimals}f", np.where(ok, v, 0)).astype(object)
    s[~ok] = "null"
    return s


def link_table_json(ctx: ReportContext, element_id: str, *, extra: list[tuple[str, np.ndarray, int]] = (),
                    base_fields: bool = True) -> str:
    """A ``<script type="application/json">`` table of link attributes for the map tooltips:
    ``extra`` is ``[(label, values per geometry row, decimals), ...]``."""
    g = ctx.geometry
    la = ctx.link_attrs
    fields: list[tuple[str, np.ndarray, int]] = []
    if "osm_way_id" in la:
        fields.append(("OSM way", ctx.by_row(la["osm_way_id"]), 0))
    if base_fields:
        if "lanes" in la:
            fields.append(("lanes", ctx.by_row(la["lanes"]), 0))
        if "capacity_vph" in la:
            fields.append(("capacity (veh/h)", ctx.by_row(la["capacity_vph"]), 0))
        if "freeflow_speed_mps" in la:
            fields.append(("free-flow speed (km/h)", ctx.by_row(la["freeflow_speed_mps"]) * 3.6, 0))
    fields += list(extra)
    cols = [_tokens(v, d) for _, v, d in fields]
    flat = np.column_stack(cols).ravel().tolist() if cols and g.n else []
    import json

    head = json.dumps([f for f, _, _ in fields], ensure_ascii=False)
    return (f'<script type="application/json" id="{escape(element_id)}">{{"f":{head},'
            f'"k":[{",".join(map(str, g.link_id.tolist()))}],"v":[{",".join(flat)}]}}</script>')


@register_section("maps", order=20, title="Network")
def network_maps(ctx: ReportContext) -> str | None:
    g = ctx.geometry
    no_cars = _no_cars(ctx)
    if g is None:
        extra = f"; {_no_cars_note(ctx)}" if no_cars else ""
        return f'<p class="empty">no network maps: no link geometry, {escape(_absent(ctx, "links.gpkg"))}{escape(extra)}</p>'
    if g.n == 0:
        return '<p class="empty">the network has no links</p>'
    lm = ctx.link_metrics
    vol = ctx.by_row(lm["volume_day"])
    delay = ctx.by_row(lm["delay_veh_h"])
    ratio = ctx.by_row(lm["peak_ratio"])
    widths = _widths(ctx)
    max_links = int(ctx.options.get("max_links", 20000))
    src = ctx.uid("linkdata")
    peak = lm.get("peak_hour")
    data = link_table_json(ctx, src, extra=[("volume (veh/day)", vol, 0), ("delay (veh·h/day)", delay, 2),
                                            (f"speed ratio {peak:02d}h" if peak is not None else "speed ratio",
                                             ratio, 2)])
    figs = []
    # 1. daily volume
    pos = vol[np.isfinite(vol) & (vol > 0)]
    br = S.quantile_breaks(pos) if pos.size else []
    cls = np.where(np.nan_to_num(vol) > 0, S.classify(vol, br) + 1, 0)
    pal_v = [S.GREY, *S.SEQ_VOLUME[-(len(br) + 1):]]
    svg_v = S.network_map(g, cls, pal_v, widths=widths, priority=np.nan_to_num(vol), max_links=max_links,
                          map_id=ctx.uid("map"), data_src=src, title="Daily volume")
    figs.append(("Daily volume", svg_v,
                 S.legend_html(pal_v, ["no traffic", *S.range_labels(br)], title="veh/day"),
                 "Vehicles leaving each link over the simulated day (last iteration). Width: lanes."))
    # 2. peak-hour speed ratio
    if peak is not None:
        rb = [0.3, 0.5, 0.7, 0.85, 0.95]
        rc = S.classify(ratio, rb)
        rc = np.where(rc >= 0, rc + 1, 0)  # 0: no traffic in the peak hour
        pal_r = [S.GREY, *S.DIV_RATIO]
        svg_r = S.network_map(g, rc, pal_r, widths=widths, priority=np.nan_to_num(vol), max_links=max_links,
                              map_id=ctx.uid("map"), data_src=src, title="Peak-hour speed ratio")
        figs.append((f"Speed ratio, peak hour {peak:02d}:00–{peak + 1:02d}:00", svg_r,
                     S.legend_html(pal_r, ["no traffic", *S.range_labels(rb, fmt=lambda v: f"{v:.2f}")],
                                   title="mean / free-flow speed"),
                     "Mean speed of the vehicles that left each link in the network's busiest hour, over the free-flow "
                     "speed: 1 is free flow, low values are queues."))
    # 3. delay
    d_ok = np.isfinite(delay) & (delay > 0.005)
    if d_ok.any():
        db = S.quantile_breaks(delay[d_ok])
        dc = np.where(d_ok, S.classify(delay, db) + 1, 0)
        pal_d = [S.GREY, *S.SEQ_DELAY[-(len(db) + 1):]]
        svg_d = S.network_map(g, dc, pal_d, widths=widths, priority=np.nan_to_num(delay), max_links=max_links,
                              map_id=ctx.uid("map"), data_src=src, title="Daily delay")
        figs.append(("Daily delay", svg_d,
                     S.legend_html(pal_d, ["none", *S.range_labels(db)], title="veh·h/day"),
                     "Vehicle hours lost on each link against free-flow travel: volume × (mean − free-flow time)."))
    elif no_cars:
        figs.append(("Daily delay", f'<p class="note">{escape(_no_cars_note(ctx))}, so no delay on any link</p>', "", ""))
    elif lm.get("hourly") is None:
        figs.append(("Daily delay", '<p class="note">no link delays: they need the hourly link results '
                                    '(links.parquet)</p>', "", ""))
    else:
        figs.append(("Daily delay", '<p class="note">no delay on any link: traffic flows freely all day</p>', "", ""))
    body = "".join(f"<figure><h3>{escape(t)}</h3>{s}{lg}<figcaption>{escape(c)}</figcaption></figure>"
                   for t, s, lg, c in figs)
    capped = ""
    if no_cars:
        capped += f'<p class="note">{escape(_no_cars_note(ctx))}, so no link has a volume, speed ratio or delay.</p>'
    elif lm.get("hourly") is None:
        why = _absent(ctx, "links.parquet") if not ctx.has("links.parquet") else "links.parquet has no rows"
        capped += (f'<p class="note">no hourly link results ({escape(why)}): peak-hour speeds and delays '
                   "unavailable" + (", daily volumes from links.gpkg" if ctx.has("links.gpkg") else "") + "</p>")
    if g.n > max_links:
        capped += (f'<p class="note">{g.n:,} links: the {max_links:,} most relevant of each map are drawn on their own, '
                  "the rest as a thin grey background.</p>")
    return (f'<p class="hint">Wheel to zoom, drag to pan, double-click to reset; hover a link for its values.</p>'
            f'{capped}<div class="grid">{body}</div>{data}')


def _hour_labels(hours) -> list[str]:
    return [f"{int(h) % 24:02d}" for h in hours]


@register_section("day", order=30, title="Over the day")
def day_charts(ctx: ReportContext) -> str | None:
    charts = []
    notes = []
    ts = ctx.table("timeseries.parquet")
    if ts is None:
        notes.append(f"no chart of trips en route: {_absent(ctx, 'timeseries.parquet')}")
    if ts is not None and "t_s" in ts and ts["t_s"].size:
        x = ts["t_s"] / 3600.0
        series = [(lab, x, ts[c]) for lab, c in (("en route", "en_route"), ("on links", "car_on_links"),
                                                 ("waiting to enter", "car_waiting")) if c in ts]
        charts.append(S.line_chart(series, x_hours=True, ylabel="trips / cars", title="Trips en route (last day)"))
    lm = ctx.link_metrics
    hr = lm.get("hourly")
    if hr is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            sp = np.where(hr["veh_h"] > 0, hr["veh_km"] / hr["veh_h"], np.nan)
            spf = np.where(hr["veh_h_ff"] > 0, hr["veh_km"] / hr["veh_h_ff"], np.nan)
        x = hr["hour"] + 0.5
        charts.append(S.line_chart([("mean speed", x, sp), ("free-flow speed", x, spf)], x_hours=True, markers=True,
                                   ylabel="km/h", title="Mean link speed by hour (weighted by volume)"))
    elif _no_cars(ctx):
        notes.append(f"no link speeds by hour: {_no_cars_note(ctx)}")
    elif not ctx.has("links.parquet"):
        notes.append(f"no link speeds by hour: {_absent(ctx, 'links.parquet')}")
    tr = ctx.table("trips.parquet", ["mode", "depart_s"])
    if tr is not None:  # trips that never departed (day ended early, gridlock) have no departure time
        ok = np.isfinite(tr["depart_s"])
        tr = {"mode": tr["mode"][ok], "depart_s": tr["depart_s"][ok]}
    if tr is not None and tr["depart_s"].size:
        h = np.floor(tr["depart_s"] / 3600.0).astype(np.int64)
        h0, h1 = int(h.min()), int(h.max())
        modes = [m for m in ("car", "walk", "bike") if (tr["mode"] == m).any()]
        modes += sorted(set(np.unique(tr["mode"]).tolist()) - set(modes))
        stacks = [(m, np.bincount(h[tr["mode"] == m] - h0, minlength=h1 - h0 + 1),
                   S.MODE_COLORS.get(m, S.SERIES[i % len(S.SERIES)])) for i, m in enumerate(modes)]
        charts.append(S.bar_chart(_hour_labels(range(h0, h1 + 1)), stacks, ylabel="trips",
                                  title="Departures per hour by mode"))
    elif (hr := lm.get("hourly")) is not None:
        charts.append(S.bar_chart(_hour_labels(hr["hour"]), [("link exits", hr["volume"], S.SERIES[0])],
                                  ylabel="veh", title="Link exits per hour"))
    if not charts and not notes:
        return None
    return ("".join(f'<p class="note">{escape(n)}</p>' for n in notes)
            + ('<div class="grid">' + "".join(f"<figure>{c}</figure>" for c in charts) + "</div>" if charts else ""))


def _finite(a) -> bool:
    return bool(np.isfinite(np.asarray(a, float)).any())


@register_section("iterations", order=40, title="Equilibrium iterations")
def iteration_charts(ctx: ReportContext) -> str | None:
    it = ctx.table("iterations.parquet")
    if it is None or "iteration" not in it or it["iteration"].size == 0:
        return None
    x = it["iteration"].astype(float)
    charts = []
    notes = []
    no_cars = _no_cars(ctx)
    if "relative_gap" in it and not _finite(it["relative_gap"]):
        why = (_no_cars_note(ctx) if no_cars else
               "one simulated day (the gap of car routes is computed when days are iterated, "
               "replanning.iterations > 1)" if x.size == 1 else "no car trip completed")
        notes.append(f"no relative gap: {why}")
    elif "relative_gap" in it:
        charts.append(S.line_chart([("relative gap", x, it["relative_gap"])], logy=True, markers=True, integer_x=True,
                                   xlabel="iteration", ylabel="relative gap", title="Relative gap per iteration"))
    if "delay_mean_s" in it and not _finite(it["delay_mean_s"]):
        notes.append("no car delay or car travel time per iteration: "
                     + (_no_cars_note(ctx) if no_cars else "no car trip completed"))
    elif "delay_mean_s" in it:
        series = [("mean car delay", x, it["delay_mean_s"] / 60.0)]
        if "car_travel_time_mean_s" in it:
            series.append(("mean car travel time", x, it["car_travel_time_mean_s"] / 60.0))
        charts.append(S.line_chart(series, markers=True, integer_x=True, xlabel="iteration", ylabel="min",
                                   title="Mean car delay and travel time per iteration"))
    shares = [c for c in it if c.startswith("mode_share_")]
    if shares and x.size > 1:
        charts.append(S.line_chart([(c[len("mode_share_"):], x, 100 * it[c],
                                     S.MODE_COLORS.get(c[len("mode_share_"):], S.SERIES[i % len(S.SERIES)]))
                                    for i, c in enumerate(shares)], markers=True,
                                   integer_x=True, xlabel="iteration", ylabel="%", title="Mode shares per iteration"))
    return ("".join(f'<p class="note">{escape(n)}</p>' for n in notes)
            + ('<div class="grid">' + "".join(f"<figure>{c}</figure>" for c in charts) + "</div>" if charts else ""))


@register_section("run", order=90, title="Run details")
def run_details(ctx: ReportContext) -> str | None:
    man = ctx.manifest
    if not man:
        return None
    # wall times differ between identical runs: they stay in manifest.json and run.log, so that the
    # report, like every other output, is byte-identical for the same scenario and seed
    bar = '<p class="note">wall time and time per phase: manifest.json and run.log of the run folder</p>'
    facts = [(k, man[k]) for k in ("scenario", "seed", "citytwin_version", "git_commit", "python") if k in man]
    files = man.get("files") or []
    out = ctx.scenario.get("output") if isinstance(ctx.scenario.get("output"), dict) else {}
    missing = [f"{name} ({what})" + (f" — output.{sw}: false" if out.get(sw) is False else "")
               for name, (sw, what) in _OPTIONAL_OUTPUTS.items() if not ctx.has(name)]
    return (_facts([(k, "-" if v is None else v) for k, v in facts]) + bar
            + (f'<p class="note">files: {escape(", ".join(files))}</p>' if files else "")
            + (f'<p class="note">not written in this run: {escape("; ".join(missing))}</p>' if missing else ""))
