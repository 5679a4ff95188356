"""The default report sections (registered on import of :mod:`twin.report`)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt

from twin import __version__
from twin.report import svg as S
from twin.report.core import ReportContext, format_kpi, kpi_better, kpi_label, kpi_verdict, register_section

__all__ = ["header", "policies_section", "kpi_table", "comparison", "network_maps", "day_charts", "iteration_charts",
           "run_details", "link_table_json", "run_policies", "VERDICT_COLORS"]


def _facts(items: list[tuple[str, str]]) -> str:
    # long unbroken values (a commit hash) wrap inside their cell instead of running into the next one
    return '<dl class="facts">' + "".join(f'<div><dt>{escape(k)}</dt><dd style="overflow-wrap:anywhere">'
                                          f"{escape(str(v))}</dd></div>" for k, v in items) + "</dl>"


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
    output = ctx.scenario.get("output")
    out: dict[str, Any] = output if isinstance(output, dict) else {}
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


# ----------------------------------------------------------------------------------------- policies

def _num(v: object) -> float | None:
    """A finite number (not a boolean), else ``None``."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _seconds(v: object) -> float | None:
    """Seconds from a number or a clock string (``"07:00"``), else ``None``."""
    if isinstance(v, str):
        from twin.scenario import parse_time_s

        try:
            v = parse_time_s(v)
        except ValueError:
            return None
    return _num(v)


def _clock_day(s: float) -> str:
    """``27000`` -> ``07:30``; times past midnight of the next day -> ``02:00 (+1 d)``."""
    d, r = divmod(int(round(s)), 86400)
    return f"{r // 3600:02d}:{r % 3600 // 60:02d}" + (f" (+{d} d)" if d else "")


def _bbox(v: object) -> list[float] | None:
    if isinstance(v, list | tuple) and len(v) == 4 and all(_num(x) is not None for x in v):
        return [float(x) for x in v]
    return None


def _bbox_text(b: list[float]) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in b) + "] (W, S, E, N)"


def run_policies(ctx: ReportContext) -> list[dict[str, Any]]:
    """The run's policies, one dict each, from network.json's ``policies`` summary (links selected,
    their ids) merged with the resolved scenario's entries (same order): ``type``, ``name``,
    ``kind``, ``bbox``, ``from_s``/``to_s`` (seconds), ``closed``, ``capacity_factor``,
    ``speed_factor``, ``price``, ``osm_way_ids``, ``node_pairs``, ``n_links`` and ``link_ids``
    (``None`` when unknown, e.g. a run folder written before network.json listed them)."""
    summ = ctx.network_summary.get("policies")
    scen = ctx.scenario.get("policies")
    summ = summ if isinstance(summ, list) else []
    scen = scen if isinstance(scen, list) else []
    out: list[dict[str, Any]] = []
    for i in range(max(len(summ), len(scen))):
        sm = summ[i] if i < len(summ) and isinstance(summ[i], dict) else {}
        sc = scen[i] if i < len(scen) and isinstance(scen[i], dict) else {}
        get: Callable[[str], Any] = lambda k: sm.get(k, sc.get(k))  # noqa: E731, B023  (called in this iteration only)
        ids = sm.get("link_ids")
        ids_ok = isinstance(ids, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in ids)
        ids = ids if ids_ok else None
        n = sm.get("links")
        n = n if isinstance(n, int) and not isinstance(n, bool) else (len(ids) if ids is not None else None)
        ways = sc.get("osm_way_ids")
        pairs = sc.get("links")
        out.append({
            "index": i, "type": str(get("type") or "policy"), "name": str(get("name") or get("type") or f"policy {i}"),
            "kind": get("kind"), "bbox": _bbox(get("bbox")),
            "from_s": _seconds(get("from_s")), "to_s": _seconds(get("to_s")),
            "closed": get("closed") is True, "capacity_factor": _num(get("capacity_factor")),
            "speed_factor": _num(get("speed_factor")), "price": _num(get("price")),
            "osm_way_ids": list(ways) if isinstance(ways, list) else [],
            "node_pairs": list(pairs) if isinstance(pairs, list) else [],
            "n_links": n, "link_ids": ids,
        })
    return out


def _sim_window(ctx: ReportContext) -> tuple[float | None, float | None]:
    simulation = ctx.scenario.get("simulation")
    sim: dict[str, Any] = simulation if isinstance(simulation, dict) else {}
    return _seconds(sim.get("start_s")), _seconds(sim.get("end_s"))


def _policy_when(ctx: ReportContext, p: dict[str, Any]) -> str:
    a, b = p["from_s"], p["to_s"]
    if a is None or b is None:
        return "-"
    t0, t1 = _sim_window(ctx)
    if t0 is not None and t1 is not None and a <= t0 and b >= t1:
        return "all day"
    return f"{_clock_day(a)}–{_clock_day(b)}"


def _policy_type(p: dict[str, Any]) -> str:
    if p["type"] == "road_pricing":
        return f"road pricing ({p['kind'] or 'cordon'})"
    kind: str = p["type"]
    return kind.replace("_", " ")


_PER = {"cordon": "per entry", "distance": "per km driven inside", "link": "per passage"}


def _policy_what(p: dict[str, Any]) -> str:
    if p["type"] == "road_pricing":
        price = p["price"]
        return f"charge {price:,.2f} {_PER.get(p['kind'] or 'cordon', '')}".rstrip() if price is not None else "charge"
    parts = []
    if p["closed"]:
        parts.append("closed")
    for key, what in (("capacity_factor", "capacity"), ("speed_factor", "speed")):
        f = p[key]
        if f is not None and f != 1.0:
            parts.append(f"{what} ×{f:g}")
    return ", ".join(parts) or "no change"


def _policy_where(p: dict[str, Any]) -> str:
    n = p["n_links"]
    nl = f"{n:,} link{'' if n == 1 else 's'}" if n is not None else "links"
    ways = ", ".join(str(w) for w in p["osm_way_ids"][:5]) + (", ..." if len(p["osm_way_ids"]) > 5 else "")
    box = _bbox_text(p["bbox"]) if p["bbox"] else None
    if p["type"] == "road_pricing":
        if p["kind"] == "link":
            return f"{nl} of OSM way(s) {ways}"
        return f"{nl} {'entering' if p['kind'] in (None, 'cordon') else 'inside'} area {box or '-'}"
    sel = []
    if ways:
        sel.append(f"OSM way(s) {ways}")
    if p["node_pairs"]:
        k = len(p["node_pairs"])
        sel.append(f"{k} [from, to] node pair{'' if k == 1 else 's'}")
    if box:
        sel.append(f"area {box}")
    return nl + (": " + "; ".join(sel) if sel else "")


def _policy_table(ctx: ReportContext, pols: list[dict[str, Any]]) -> str:
    if not pols:
        return '<p class="note">no policies</p>'
    td = '<td style="text-align:left;white-space:normal">'
    rows = "".join(
        f'<tr data-policy="{p["index"]}" data-type="{escape(p["type"])}">{td}<b>{escape(p["name"])}</b></td>'
        f"{td}{escape(_policy_type(p))}</td>{td}{escape(_policy_where(p))}</td>"
        f"{td}{escape(_policy_when(ctx, p))}</td>{td}{escape(_policy_what(p))}</td></tr>" for p in pols)
    th = '<th style="text-align:left">'
    return (f'<table class="kpi pol"><thead><tr>{th}policy</th>{th}type</th>{th}where</th>{th}when</th>{th}what'
            f"</th></tr></thead><tbody>{rows}</tbody></table>")


@register_section("policies", order=5, title="Policies")
def policies_section(ctx: ReportContext) -> str | None:
    """What each policy of the run does, where and when (and the baseline's, in a comparison)."""
    mine = run_policies(ctx)
    base = run_policies(ctx.baseline) if ctx.baseline is not None else []
    if not mine and not base:
        return None
    if ctx.baseline is None:
        return _policy_table(ctx, mine) + '<p class="note">The maps draw them: see the legend under each map.</p>'
    return ("<h3>B (this run)</h3>" + _policy_table(ctx, mine)
            + "<h3>A (baseline)</h3>" + _policy_table(ctx.baseline, base))


def _policy_overlay(ctx: ReportContext) -> tuple[str, str]:
    """The run's policies drawn for its maps: ``(svg overlay, legend html)``."""
    g = ctx.geometry
    layers: list[dict[str, Any]] = []
    legend: list[tuple[str, str]] = []
    missing = []
    for p in run_policies(ctx):
        i, name, ids = p["index"], p["name"], p["link_ids"]
        when = _policy_when(ctx, p)
        if p["type"] == "road_pricing":
            kind = p["kind"] or "cordon"
            if kind in ("cordon", "distance") and p["bbox"]:
                layers.append({"kind": "area", "policy": i, "name": name, "bbox": p["bbox"]})
                legend.append(("area", (f"{name}: {'cordon' if kind == 'cordon' else 'charged area'}, "
                                        f"{_policy_what(p)}, {when}")))
            if kind in ("cordon", "link") and ids:
                layers.append({"kind": "priced", "policy": i, "name": name, "link_ids": ids})
                legend.append(("priced", (f"{name}: {len(ids):,} charged {'entry ' if kind == 'cordon' else ''}"
                                          f"link{'' if len(ids) == 1 else 's'}")))
            elif kind == "link":
                missing.append(name)
        elif ids:
            k = "closed" if p["closed"] else "changed"
            layers.append({"kind": k, "policy": i, "name": name, "link_ids": ids})
            legend.append((k, f"{name}: {_policy_what(p)}, {when} ({len(ids):,} link{'' if len(ids) == 1 else 's'})"))
        else:
            missing.append(name)
    if not layers and not missing:
        return "", ""
    note = (f'<p class="note">not drawn (network.json does not list their links): {escape(", ".join(missing))}</p>'
            if missing else "")
    title = "policies of B (this run)" if ctx.baseline is not None else "policies"
    return (S.policy_overlay(g, layers) if g is not None else ""), S.policy_legend_html(legend, title=title) + note


@register_section("header", order=0)
def header(ctx: ReportContext) -> str:
    sc, man, k, net = ctx.scenario, ctx.manifest, ctx.kpis, ctx.network_summary
    name = sc.get("name") or man.get("scenario") or ctx.run_dir.name
    mp = sc.get("map") or {}
    pop = sc.get("population") or {}
    commit = man.get("git_commit")
    t0, t1 = _sim_window(ctx)  # clock strings ("05:00") in the resolved scenario, or seconds
    facts = [
        ("map", (f"{mp.get('source', net.get('source', '-'))} "
                 f"({mp.get('network_type', net.get('network_type', 'drive'))})")),
        ("network", f"{net.get('nodes', k.get('network_nodes', '-')):,} nodes, "
                    f"{net.get('links', k.get('network_links', '-')):,} links"
         if isinstance(net.get("nodes", k.get("network_nodes")), int) else "-"),
        ("seed", sc.get("seed", man.get("seed", "-"))),
        ("residents", f"{k.get('residents', pop.get('residents', 0)):,}"),
        ("simulated", f"{_clock(t0)}–{_clock(t1)}, {k.get('iterations', '-')} day(s)"
         if t0 is not None and t1 is not None else "-"),
        ("citytwin", man.get("citytwin_version", __version__) + (f" ({commit[:10]})" if commit else "")),
        ("python", man.get("python", "-")),
    ]
    if net.get("length_km"):
        facts.insert(2, ("road length", f"{net['length_km']:,.1f} km"))
    pols = run_policies(ctx)
    if pols:
        facts.append(("policies", "; ".join(f"{p['name']} ({_policy_when(ctx, p)})" for p in pols)))
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


#: Colour of a KPI change in a comparison, by :func:`twin.report.core.kpi_verdict`.
VERDICT_COLORS = {"better": "#15803d", "worse": "#b91c1c", "neutral": "#6b7280"}
_DIRECTION = {"lower": "lower is better", "higher": "higher is better", None: "no better or worse direction"}


@register_section("comparison", order=15, title="Comparison with the baseline")
def comparison(ctx: ReportContext) -> str | None:
    base = ctx.baseline
    if base is None:
        return None
    ka, kb = base.kpis, ctx.kpis
    rows = []
    for key in [*ka, *(k for k in kb if k not in ka)]:
        a, b = ka.get(key), kb.get(key)
        if key.startswith("mode_share_"):  # a mode of only one run (a plug-in mode) has share 0 in the other
            a = 0.0 if a is None else a
            b = 0.0 if b is None else b
        if not (isinstance(a, int | float) and not isinstance(a, bool)
                and isinstance(b, int | float) and not isinstance(b, bool)):
            continue
        d = b - a
        rel = f"{100 * d / a:+.1f} %" if a else "-"
        verdict = kpi_verdict(key, d)
        better = kpi_better(key)
        cell = (f'<td class="{verdict}" data-verdict="{verdict}" style="color:{VERDICT_COLORS[verdict]}" '
                f'title="{escape(_DIRECTION[better])}">')
        rows.append(f'<tr data-kpi="{escape(key)}" data-a="{a!r}" data-b="{b!r}" data-diff="{d!r}" '
                    f'data-better="{better or ""}">'
                    f"<td>{escape(kpi_label(key))}<code>{escape(key)}</code></td><td>{format_kpi(key, a)}</td>"
                    f"<td>{format_kpi(key, b)}</td>{cell}{format_kpi(key, d, diff=True)}</td>"
                    f"{cell}{rel}</td></tr>")
    na = escape(str(base.scenario.get("name") or base.run_dir.name))
    nb = escape(str(ctx.scenario.get("name") or ctx.run_dir.name))
    key_html = "".join(f'<span style="color:{VERDICT_COLORS[v]}">{t}</span> ' for v, t in
                       (("better", "green: better"), ("worse", "red: worse"),
                        ("neutral", "grey: no direction (e.g. mode shares) or unchanged")))
    out = [(f"<p>A (baseline): <b>{na}</b> <code>{escape(str(base.run_dir))}</code><br>"
            f"B (this run): <b>{nb}</b> <code>{escape(str(ctx.run_dir))}</code></p>"),
           ('<table class="kpi"><thead><tr><th>KPI</th><th>A (baseline)</th><th>B (this run)</th><th>B − A</th>'
            f'<th>change</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'),
           f'<p class="note">Changes by each KPI\'s desirable direction: {key_html}</p>']
    out.append(_diff_map(ctx, base))
    return "".join(out)


def _same_network(ctx: ReportContext, base: ReportContext) -> bool:
    sa, sb = base.network_summary, ctx.network_summary
    return not (base.n_links != ctx.n_links
                or (sa.get("source") and sb.get("source") and sa.get("source") != sb.get("source")))


def _diff_map(ctx: ReportContext, base: ReportContext) -> str:
    g = ctx.geometry
    if g is None:
        return '<p class="note">no link geometry: no difference map</p>'
    if not _same_network(ctx, base):
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
    overlay, pol_legend = _policy_overlay(ctx)
    svg = S.network_map(g, cls, pal, widths=_widths(ctx), priority=np.abs(np.nan_to_num(diff)),
                        max_links=int(ctx.options.get("max_links", 20000)), map_id=ctx.uid("map"), data_src=src,
                        title="Daily volume difference B − A", overlay=overlay)
    return ("<h3>Daily link volume difference (B − A)</h3><figure>" + svg
            + S.legend_html(pal, labels, title="veh/day", extra=[(S.GREY, "unchanged (thin)")]) + pol_legend
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
    assert g is not None, "maps need the link geometry"
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


def link_table_json(ctx: ReportContext, element_id: str, *, extra: Sequence[tuple[str, np.ndarray, int]] = (),
                    base_fields: bool = True) -> str:
    """A ``<script type="application/json">`` table of link attributes for the map tooltips:
    ``extra`` is ``[(label, values per geometry row, decimals), ...]``."""
    g = ctx.geometry
    assert g is not None, "link tables need the link geometry"
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


def _breaks(values: list[np.ndarray], floor: float = 0.0) -> list[float]:
    """Quantile class breaks over the values above ``floor`` of one or more runs (a comparison's
    maps share them, so that a colour means the same volume or delay in runs A and B)."""
    v = np.concatenate([np.asarray(x, float).ravel() for x in values]) if values else np.zeros(0)
    v = v[np.isfinite(v) & (v > floor)]
    return S.quantile_breaks(v) if v.size else []


#: Page style of the A/B switch of a comparison's maps (one run's layer shown at a time).
_AB_STYLE = ("<style>.ab-a:checked~svg.map .run-b,.ab-b:checked~svg.map .run-a{display:none}"
             ".abl{font-size:12px;margin:0 10px 4px 3px}</style>")


def _ab_switch(ctx: ReportContext) -> str:
    n = ctx.uid("ab")
    return (f'<input type="radio" class="ab-a" id="{n}a" name="{n}"><label class="abl" for="{n}a">A (baseline)</label>'
            f'<input type="radio" class="ab-b" id="{n}b" name="{n}" checked><label class="abl" for="{n}b">'
            "B (this run)</label>")


@register_section("maps", order=20, title="Network")
def network_maps(ctx: ReportContext) -> str | None:
    g = ctx.geometry
    no_cars = _no_cars(ctx)
    if g is None:
        extra = f"; {_no_cars_note(ctx)}" if no_cars else ""
        return (f'<p class="empty">no network maps: no link geometry, '
                f'{escape(_absent(ctx, "links.gpkg"))}{escape(extra)}</p>')
    if g.n == 0:
        return '<p class="empty">the network has no links</p>'
    lm = ctx.link_metrics
    vol = ctx.by_row(lm["volume_day"])
    delay = ctx.by_row(lm["delay_veh_h"])
    ratio = ctx.by_row(lm["peak_ratio"])
    # a comparison: the baseline's values on the same links (an A/B switch per map), and class
    # breaks computed from both runs' values
    base = ctx.baseline
    ab = base is not None and _same_network(ctx, base)
    lma = base.link_metrics if base is not None else {}  # read only when there is a baseline
    if ab:
        vol_a, delay_a, ratio_a = (ctx.by_row(lma[k]) for k in ("volume_day", "delay_veh_h", "peak_ratio"))
    elif base is not None:  # another network: its values count for the breaks, its map is not drawn
        vol_a, delay_a = (base.by_row(lma[k]) if base.geometry is not None else lma[k]
                          for k in ("volume_day", "delay_veh_h"))
    others_v = [vol_a] if base is not None else []
    others_d = [delay_a] if base is not None else []
    widths = _widths(ctx)
    max_links = int(ctx.options.get("max_links", 20000))
    src = ctx.uid("linkdata")
    peak = lm.get("peak_hour")
    fields = [("volume (veh/day)", vol, 0), ("delay (veh·h/day)", delay, 2),
              (f"speed ratio {peak:02d}h" if peak is not None else "speed ratio", ratio, 2)]
    if ab:
        # NOTE: unused: the A/B link table has no "speed ratio A" column although the map draws ratio_a
        peak_a = lma.get("peak_hour")  # noqa: F841
        fields = [("volume B (veh/day)", vol, 0), ("volume A (veh/day)", vol_a, 0), ("delay B (veh·h/day)", delay, 2),
                  ("delay A (veh·h/day)", delay_a, 2), (f"speed ratio B {peak:02d}h" if peak is not None
                                                        else "speed ratio B", ratio, 2)]
    data = link_table_json(ctx, src, extra=fields)
    overlay, pol_legend = _policy_overlay(ctx)

    def draw(cls_b: np.ndarray, cls_a: np.ndarray | None, pal: list[str], priority: np.ndarray, title: str) -> str:
        layers = [("run-a", cls_a, priority), ("run-b", cls_b, priority)] if ab else None
        svg = S.network_map(g, None if ab else cls_b, pal, widths=widths, priority=priority, max_links=max_links,
                            map_id=ctx.uid("map"), data_src=src, title=title, overlay=overlay, layers=layers)
        return (_ab_switch(ctx) + svg) if ab else svg

    figs: list[tuple[str, str, str, str, dict[str, Any]]] = []  # (title, svg, legend, caption, data-attributes)
    # 1. daily volume
    br = _breaks([vol, *others_v])
    pal_v = [S.GREY, *S.SEQ_VOLUME[-(len(br) + 1):]]

    def vol_cls(v: np.ndarray) -> np.ndarray:
        return np.where(np.nan_to_num(v) > 0, S.classify(v, br) + 1, 0)

    svg_v = draw(vol_cls(vol), vol_cls(vol_a) if ab else None, pal_v, np.nan_to_num(vol), "Daily volume")
    shared = " Colours: class breaks of both runs (A and B), so a colour is the same volume in each." if base else ""
    figs.append(("Daily volume", svg_v,
                 S.legend_html(pal_v, ["no traffic", *S.range_labels(br)], title="veh/day") + pol_legend,
                 "Vehicles leaving each link over the simulated day (last iteration). Width: lanes." + shared,
                 {"map": "volume", "breaks": br}))
    # 2. peak-hour speed ratio
    if peak is not None or (ab and lma.get("peak_hour") is not None):
        rb = [0.3, 0.5, 0.7, 0.85, 0.95]

        def ratio_cls(r: np.ndarray) -> np.ndarray:
            rc = S.classify(r, rb)
            return np.where(rc >= 0, rc + 1, 0)  # 0: no traffic in the peak hour

        pal_r = [S.GREY, *S.DIV_RATIO]
        svg_r = draw(ratio_cls(ratio), ratio_cls(ratio_a) if ab else None, pal_r, np.nan_to_num(vol),
                     "Peak-hour speed ratio")
        hours = f"peak hour {peak:02d}:00–{peak + 1:02d}:00" if peak is not None else "no traffic in B"
        if ab and lma.get("peak_hour") is not None and lma.get("peak_hour") != peak:
            hours += f" (A: {lma['peak_hour']:02d}:00–{lma['peak_hour'] + 1:02d}:00)"
        figs.append((f"Speed ratio, {hours}", svg_r,
                     S.legend_html(pal_r, ["no traffic", *S.range_labels(rb, fmt=lambda v: f"{v:.2f}")],
                                   title="mean / free-flow speed") + pol_legend,
                     ("Mean speed of the vehicles that left each link in the network's busiest hour, over the "
                      "free-flow speed: 1 is free flow, low values are queues."), {"map": "ratio", "breaks": rb}))
    # 3. delay
    d_ok = np.isfinite(delay) & (delay > 0.005)
    da_ok = np.isfinite(delay_a) & (delay_a > 0.005) if ab else np.zeros(0, bool)
    if d_ok.any() or da_ok.any():
        db = _breaks([delay, *others_d], floor=0.005)
        pal_d = [S.GREY, *S.SEQ_DELAY[-(len(db) + 1):]]

        def delay_cls(dv: np.ndarray, ok: np.ndarray) -> np.ndarray:
            return np.where(ok, S.classify(dv, db) + 1, 0)

        svg_d = draw(delay_cls(delay, d_ok), delay_cls(delay_a, da_ok) if ab else None, pal_d,
                     np.nan_to_num(delay), "Daily delay")
        figs.append(("Daily delay", svg_d,
                     S.legend_html(pal_d, ["none", *S.range_labels(db)], title="veh·h/day") + pol_legend,
                     "Vehicle hours lost on each link against free-flow travel: volume × (mean − free-flow time)."
                     + shared.replace("volume", "delay"), {"map": "delay", "breaks": db}))
    elif no_cars:
        figs.append(("Daily delay", f'<p class="note">{escape(_no_cars_note(ctx))}, so no delay on any link</p>',
                     "", "", {}))
    elif lm.get("hourly") is None:
        figs.append(("Daily delay", ('<p class="note">no link delays: they need the hourly link results '
                                     '(links.parquet)</p>'), "", "", {}))
    else:
        figs.append(("Daily delay", '<p class="note">no delay on any link: traffic flows freely all day</p>', "", "",
                     {}))

    def attrs(d: dict[str, Any]) -> str:
        return "".join(f' data-{k}="{escape(v if isinstance(v, str) else json.dumps(v))}"' for k, v in d.items())

    body = "".join(f"<figure{attrs(a)}><h3>{escape(t)}</h3>{s}{lg}<figcaption>{escape(c)}</figcaption></figure>"
                   for t, s, lg, c, a in figs)
    capped = ""
    if ab:
        capped += ('<p class="note">A comparison: each map shows run B (this run) or run A (the baseline), switched '
                   "above the map, in the same colour classes.</p>")
    elif base is not None:
        capped += ('<p class="note">the baseline uses another network: only this run\'s maps are drawn (its colour '
                   "classes count the baseline's values too)</p>")
    if no_cars:
        capped += f'<p class="note">{escape(_no_cars_note(ctx))}, so no link has a volume, speed ratio or delay.</p>'
    elif lm.get("hourly") is None:
        why = _absent(ctx, "links.parquet") if not ctx.has("links.parquet") else "links.parquet has no rows"
        capped += (f'<p class="note">no hourly link results ({escape(why)}): peak-hour speeds and delays '
                   "unavailable" + (", daily volumes from links.gpkg" if ctx.has("links.gpkg") else "") + "</p>")
    if g.n > max_links:
        capped += (f'<p class="note">{g.n:,} links: the {max_links:,} most relevant of each map are drawn on their '
                   "own, the rest as a thin grey background.</p>")
    return (f'<p class="hint">Wheel to zoom, drag to pan, double-click to reset; hover a link for its values.</p>'
            f'{_AB_STYLE if ab else ""}{capped}<div class="grid">{body}</div>{data}')


def _hour_labels(hours: Iterable[float]) -> list[str]:
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


def _finite(a: npt.ArrayLike) -> bool:
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
    # a 40-digit commit hash is one unbreakable word: shown short (as `git log --oneline` does), in full in
    # manifest.json, and the fact cells wrap long values (_facts) so that nothing runs into its neighbour
    facts = [(k, v[:12] if k == "git_commit" and isinstance(v, str) and len(v) > 12 else v) for k, v in facts]
    files = man.get("files") or []
    output = ctx.scenario.get("output")
    out: dict[str, Any] = output if isinstance(output, dict) else {}
    missing = [f"{name} ({what})" + (f" — output.{sw}: false" if out.get(sw) is False else "")
               for name, (sw, what) in _OPTIONAL_OUTPUTS.items() if not ctx.has(name)]
    return (_facts([(k, "-" if v is None else v) for k, v in facts]) + bar
            + (f'<p class="note">files: {escape(", ".join(files))}</p>' if files else "")
            + (f'<p class="note">not written in this run: {escape("; ".join(missing))}</p>' if missing else ""))
