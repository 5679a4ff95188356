"""An offline HTML animation of cars moving over the network during one hour.

Each car's stay on a link (``enter_link`` → ``leave_link`` in ``events.parquet``) becomes one
*segment*: ``[link row, t_enter, t_leave, class]`` with times in tenths of a second after the
window start. The page draws the network as inline SVG and the cars as dots on a canvas over it,
moving each dot linearly along the straight link between its end nodes.

Fleet vehicles of the ``maas`` domain are not in ``events.parquet``; when the run folder has
``maas_links.parquet`` (one row per link a fleet vehicle entered) their stays are segments too,
of class :data:`FLEET_EMPTY` or :data:`FLEET_OCCUPIED` (no passenger / passengers on board on that
link), drawn as squares with a white edge. Cars' classes ``0..3`` are their speed over the free-flow
speed. A run with fleet links but no events (``output.events: false``) animates the fleet alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from twin.report import svg as S
from twin.report.core import ReportContext, ReportError, _check_run_dir

__all__ = ["write_animation", "link_segments", "fleet_segments", "animation_data"]

SPEED_COLORS = ["#dc2626", "#f97316", "#facc15", "#16a34a"]  # < .25, < .5, < .85, >= .85 of free-flow speed
FLEET_COLORS = ["#60a5fa", "#c026d3"]  # fleet vehicle: empty, passengers on board
FLEET_EMPTY = len(SPEED_COLORS)  # segment class of a fleet vehicle without passengers on the link
FLEET_OCCUPIED = FLEET_EMPTY + 1  # ... with passengers


def link_segments(events: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pair every ``enter_link`` with its ``leave_link`` (same trip, same link, k-th visit).

    Returns ``trip_id``, ``link_id``, ``t_enter``, ``t_leave`` (``inf`` when the car was still on
    the link at the end of the simulation), one row per enter_link event.
    """
    typ = events["type"]
    trip = events["trip_id"].astype(np.int64)
    link = events["link_id"].astype(np.int64)
    t = events["t_s"].astype(np.float64)
    en = typ == "enter_link"
    lv = typ == "leave_link"
    L = int(link.max()) + 2 if link.size else 1

    def ranked(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = trip[m] * L + link[m]
        tt = t[m]
        o = np.lexsort((np.arange(key.size), tt, key))
        key, tt = key[o], tt[o]
        start = np.r_[True, key[1:] != key[:-1]] if key.size else np.zeros(0, bool)
        gid = np.cumsum(start) - 1
        first = np.flatnonzero(start)
        rank = np.arange(key.size) - (first[gid] if key.size else 0)
        return key, rank, tt, o

    ke, re_, te, oe = ranked(en)
    kl, rl, tl, _ = ranked(lv)
    R = int(max(re_.max(initial=0), rl.max(initial=0))) + 1
    ce = ke * R + re_
    cl = kl * R + rl
    pos = np.searchsorted(cl, ce)
    pos_c = np.minimum(pos, max(cl.size - 1, 0))
    hit = (pos < cl.size) & (cl[pos_c] == ce) if cl.size else np.zeros(ce.size, bool)
    t_leave = np.full(ce.size, np.inf)
    t_leave[hit] = tl[pos_c[hit]]
    idx = np.flatnonzero(en)[oe]
    order = np.argsort(te, kind="stable")
    return {"trip_id": trip[idx][order], "link_id": link[idx][order], "t_enter": te[order], "t_leave": t_leave[order]}


def fleet_segments(links: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fleet vehicles' link stays of ``maas_links.parquet`` in the form of :func:`link_segments`
    (``trip_id`` is ``-1 - vehicle``, so never a resident's trip), plus ``occupied`` (passengers on
    board on the link), sorted by entry time."""
    veh = np.asarray(links["vehicle"], np.int64)
    te = np.asarray(links["enter_s"], np.float64)
    tl = np.asarray(links["leave_s"], np.float64)
    tl = np.where(np.isnan(tl), np.inf, tl)
    occ = np.asarray(links["passengers"]) > 0 if "passengers" in links else np.zeros(veh.size, bool)
    order = np.argsort(te, kind="stable")
    return {"trip_id": -1 - veh[order], "link_id": np.asarray(links["link_id"], np.int64)[order],
            "t_enter": te[order], "t_leave": tl[order], "occupied": occ[order]}


def _hhmm(t_s: float) -> str:
    h, m = divmod(int(t_s) // 60, 60)
    return f"{h:02d}:{m:02d}"


def animation_data(ctx: ReportContext, *, hour: float = 8, duration_s: float = 3600.0,
                   max_vehicles: int | None = 5000) -> dict[str, Any]:
    """The segments of the cars (and of the MaaS fleet's vehicles, from ``maas_links.parquet``) on
    the network during ``[hour, hour + duration)`` (overlapping it).

    ``max_vehicles`` caps the cars only: every fleet vehicle is kept. Returns ``segments`` (flat
    ``[row, t_enter, t_leave, class] * n_segments``, sorted by entry), ``n_segments``,
    ``n_vehicles`` / ``n_vehicles_all`` (cars), ``n_fleet_segments`` and ``n_fleet_vehicles``.
    """
    ev = ctx.table("events.parquet", ["t_s", "type", "trip_id", "link_id"])
    ml = ctx.table("maas_links.parquet", ["vehicle", "link_id", "enter_s", "leave_s", "passengers"])
    if ev is None and ml is None:
        raise ReportError(f"{ctx.run_dir / 'events.parquet'}: no events to animate (scenario output.events: false?)")
    g = ctx.geometry
    if g is None:
        raise ReportError(f"{ctx.run_dir}: no link geometry (links.gpkg, scenario output.geopackage: false?)")
    t0 = float(hour) * 3600.0
    t1 = t0 + float(duration_s)
    empty_seg = {"trip_id": np.zeros(0, np.int64), "link_id": np.zeros(0, np.int64), "t_enter": np.zeros(0),
                 "t_leave": np.zeros(0)}
    seg = link_segments(ev) if ev is not None else empty_seg
    fseg = fleet_segments(ml) if ml is not None else {**empty_seg, "occupied": np.zeros(0, bool)}
    keep = (seg["t_enter"] < t1) & (seg["t_leave"] > t0)
    fkeep = (fseg["t_enter"] < t1) & (fseg["t_leave"] > t0)
    if not keep.any() and not fkeep.any():
        busy = ""
        t_all = np.concatenate([seg["t_enter"], fseg["t_enter"]])
        if t_all.size:
            l_all = np.concatenate([seg["t_leave"], fseg["t_leave"]])
            hours = np.floor(t_all / 3600.0).astype(np.int64)
            peak = int(np.bincount(hours - hours.min()).argmax() + hours.min())
            who = "cars" if ev is not None and seg["t_enter"].size else "vehicles"
            busy = (f"; {who} drive from {_hhmm(float(t_all.min()))} to "
                    f"{_hhmm(float(np.nanmax(np.where(np.isfinite(l_all), l_all, t_all))))}"
                    f" in this run, most in hour {peak} (--hour {peak})")
        what = "car" if ml is None else "car or fleet vehicle"
        raise ReportError(f"{ctx.run_dir}: no {what} is on the network between {_hhmm(t0)} and {_hhmm(t1)}{busy}")
    seg = {k: v[keep] for k, v in seg.items()}
    fseg = {k: v[fkeep] for k, v in fseg.items()}
    n_all_vehicles = int(np.unique(seg["trip_id"]).size)
    if max_vehicles is not None and n_all_vehicles > max_vehicles:
        trips = np.unique(seg["trip_id"])
        pick = trips[np.unique(np.linspace(0, trips.size - 1, max_vehicles).round().astype(np.int64))]
        m = np.isin(seg["trip_id"], pick)
        seg = {k: v[m] for k, v in seg.items()}
    # link id -> geometry row
    top = max(int(g.link_id.max(initial=-1)), int(seg["link_id"].max(initial=-1)),
              int(fseg["link_id"].max(initial=-1))) + 1
    row_of = np.full(max(top, 1), -1, np.int64)
    row_of[g.link_id] = np.arange(g.n)
    rows = row_of[seg["link_id"]]
    ok = rows >= 0
    seg = {k: v[ok] for k, v in seg.items()}
    rows = rows[ok]
    frows = row_of[fseg["link_id"]]
    fok = frows >= 0
    fseg = {k: v[fok] for k, v in fseg.items()}
    frows = frows[fok]
    la = ctx.link_attrs
    cls = np.full(rows.size, 3, np.int64)
    if "length_m" in la and "freeflow_speed_mps" in la and rows.size:
        ln = la["length_m"][seg["link_id"]]
        ff = la["freeflow_speed_mps"][seg["link_id"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = ln / np.maximum(seg["t_leave"] - seg["t_enter"], 1e-3) / ff
        cls = np.searchsorted([0.25, 0.5, 0.85], np.nan_to_num(r, nan=1.0), side="right")
    fcls = np.where(fseg["occupied"], FLEET_OCCUPIED, FLEET_EMPTY).astype(np.int64)
    t_enter = np.concatenate([seg["t_enter"], fseg["t_enter"]])
    t_leave = np.concatenate([seg["t_leave"], fseg["t_leave"]])
    all_rows = np.concatenate([rows, frows])
    all_cls = np.concatenate([cls, fcls])
    order = np.argsort(t_enter, kind="stable")  # the page stops at the first segment not yet entered
    te = np.rint((t_enter[order] - t0) * 10).astype(np.int64)
    tl_f = np.where(np.isfinite(t_leave), t_leave, t1 + 3600.0)[order]
    tl = np.rint((tl_f - t0) * 10).astype(np.int64)
    flat = np.column_stack([all_rows[order], te, tl, all_cls[order]]).ravel()
    return {"t0": t0, "duration_s": float(duration_s), "segments": flat, "n_segments": int(all_rows.size),
            "n_vehicles": int(np.unique(seg["trip_id"]).size), "n_vehicles_all": n_all_vehicles,
            "n_fleet_segments": int(frows.size), "n_fleet_vehicles": int(np.unique(fseg["trip_id"]).size),
            "has_fleet": ml is not None, "has_cars": ev is not None}


def write_animation(run_dir: str | Path, out_html: str | Path | None = None, *, hour: float = 8, fps: int = 30,
                    speed: float = 60.0, duration_s: float = 3600.0, max_vehicles: int | None = 5000,
                    network: Any = None, geometry: Sequence[npt.ArrayLike] | None = None) -> Path:
    """Write an offline HTML animation of the cars on the network during one hour, and of the MaaS
    fleet's vehicles when the run has ``maas_links.parquet`` (squares: light blue empty, magenta
    with passengers; see :func:`animation_data`).

    Parameters
    ----------
    hour
        Window start, hours after midnight of the simulated day (may be fractional).
    fps
        Frames drawn per second of playback.
    speed
        Simulated seconds per second of playback (60: the hour plays in one minute).
    duration_s
        Window length (default one hour).
    max_vehicles
        At most this many cars (evenly spread over the trip ids of the window); ``None``: all.
        Fleet vehicles are not capped.
    network, geometry
        As for :func:`~twin.report.write_report`.
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    out = Path(out_html) if out_html is not None else run_dir / f"animation_{int(hour):02d}h.html"
    ctx = ReportContext(run_dir, network=network, geometry=geometry)
    data = animation_data(ctx, hour=hour, duration_s=duration_s, max_vehicles=max_vehicles)
    g = ctx.geometry
    assert g is not None  # animation_data refuses a run without link geometry
    net_svg = S.network_map(g, np.zeros(g.n, np.int64), ["#9ca3af"], map_id="net", max_links=10**9)
    links = np.column_stack([g.x1, g.y1, g.x2, g.y2]).ravel().tolist()
    name = ctx.scenario.get("name") or run_dir.name
    fleet = data["n_fleet_segments"] > 0
    payload = (f'{{"t0":{data["t0"]:.1f},"dur":{data["duration_s"]:.1f},"fps":{int(fps)},"speed":{float(speed)},'
               f'"w":{g.width},"h":{g.height},"colors":{json.dumps(SPEED_COLORS + FLEET_COLORS)},'
               f'"fleet":{FLEET_EMPTY},'
               f'"links":[{",".join(map(str, links))}],'
               f'"nveh":{data["n_vehicles"]},"nseg":{data["n_segments"]},"nfleet":{data["n_fleet_segments"]},'
               f'"seg":[{",".join(map(str, data["segments"].tolist()))}]}}')
    capped = (f" (of {data['n_vehicles_all']:,})" if data["n_vehicles_all"] > data["n_vehicles"] else "")
    h0 = data["t0"]
    who = "cars and fleet vehicles" if fleet and data["n_vehicles"] else "fleet vehicles" if fleet else "cars"
    title = f"{name}: {who} {int(h0 // 3600):02d}:{int(h0 % 3600 // 60):02d} + {duration_s / 60:.0f} min"
    info = f"{data['n_vehicles']:,} cars{capped}"
    if fleet:
        info += f", {data['n_fleet_vehicles']:,} fleet vehicles"
    info += f", {data['n_segments']:,} link traversals"
    fleet_key = (f'<span class="mut k">fleet:<b style="background:{FLEET_COLORS[0]}"></b>empty'
                 f'<b style="background:{FLEET_COLORS[1]}"></b>with passengers</span>') if fleet else ""
    html = _ANIM_PAGE.format(title=escape(title), svg=net_svg, data=payload, info=escape(info), fleet_key=fleet_key)
    from twin._fs import write_output

    write_output(out, html, what="animation")
    return out


_ANIM_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>
body{{margin:0;font:14px system-ui,sans-serif;background:#111827;color:#e5e7eb}}
header{{padding:8px 14px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}}
#stage{{position:relative;margin:0 14px;height:calc(100vh - 70px)}}
#stage svg{{position:absolute;inset:0;width:100%;height:100%}}
#stage svg path{{fill:none;stroke-width:1px;vector-effect:non-scaling-stroke;opacity:.55}}
#stage svg .bg{{stroke:#4b5563}}
canvas{{position:absolute;inset:0;width:100%;height:100%}}
button{{font:inherit;padding:3px 12px}}input[type=range]{{width:min(50vw,520px)}}
#clock{{font-variant-numeric:tabular-nums;font-weight:600;min-width:4.5em}}.mut{{color:#9ca3af;font-size:12px}}
.k i{{display:inline-block;width:9px;height:9px;border-radius:50%;margin:0 3px 0 8px}}
.k b{{display:inline-block;width:9px;height:9px;border:1px solid #fff;margin:0 3px 0 8px}}
</style></head><body>
<header><b>{title}</b><button id="play">Play</button><input id="slider" type="range" min="0" max="3600" step="1" value="0">
<span id="clock">--:--</span><label class="mut">speed <select id="speed"><option>10</option><option>30</option>
<option>60</option><option>120</option><option>300</option><option>600</option></select>×</label>
<span class="mut" id="count"></span><span class="mut">{info}</span>
<span class="mut k">speed / free-flow:<i style="background:#dc2626"></i>&lt;.25<i style="background:#f97316"></i>&lt;.5<i
 style="background:#facc15"></i>&lt;.85<i style="background:#16a34a"></i>≥.85</span>{fleet_key}</header>
<div id="stage">{svg}<canvas id="cv"></canvas></div>
<script type="application/json" id="anim">{data}</script>
<script>
(function(){{
var D=JSON.parse(document.getElementById('anim').textContent),S=D.seg,L=D.links,n=D.nseg;
var cv=document.getElementById('cv'),cx=cv.getContext('2d'),sl=document.getElementById('slider'),
 btn=document.getElementById('play'),clk=document.getElementById('clock'),cnt=document.getElementById('count'),
 sp=document.getElementById('speed');
sl.max=D.dur;sp.value=String(D.speed);if(sp.value==='')sp.value='60';
var t=0,playing=false,last=null,acc=0;
function fit(){{var r=cv.getBoundingClientRect(),dpr=window.devicePixelRatio||1;cv.width=r.width*dpr;cv.height=r.height*dpr;draw()}}
function draw(){{
 var W=cv.width,H=cv.height,s=Math.min(W/D.w,H/D.h),ox=(W-D.w*s)/2,oy=(H-D.h*s)/2,r=Math.max(1.5,2.2*(window.devicePixelRatio||1));
 cx.clearRect(0,0,W,H);var tt=t*10,c=0,f=0,byc=[],F=D.fleet;for(var q0=0;q0<D.colors.length;q0++)byc.push([]);
 for(var i=0;i<n;i++){{var b=i*4,a=S[b+1];if(a>tt)break;var e=S[b+2];if(e<=tt)continue;
  var k=S[b]*4,u=(tt-a)/(e-a),q1=S[b+3];byc[q1].push(ox+(L[k]+u*(L[k+2]-L[k]))*s,oy+(L[k+1]+u*(L[k+3]-L[k+1]))*s);
  if(q1>=F)f++;else c++}}
 for(var q=0;q<byc.length;q++){{var p=byc[q];if(!p.length)continue;cx.fillStyle=D.colors[q];cx.beginPath();
  if(q>=F){{var h2=r*1.6;for(var j=0;j<p.length;j+=2)cx.rect(p[j]-h2,p[j+1]-h2,2*h2,2*h2);cx.fill();
   cx.strokeStyle='#fff';cx.lineWidth=Math.max(1,r/2);cx.stroke();continue}}
  for(var j=0;j<p.length;j+=2){{cx.moveTo(p[j]+r,p[j+1]);cx.arc(p[j],p[j+1],r,0,6.2832)}}cx.fill()}}
 var ab=D.t0+t,hh=Math.floor(ab/3600)%24,mm=Math.floor(ab%3600/60),ss=Math.floor(ab%60);
 clk.textContent=(hh<10?'0':'')+hh+':'+(mm<10?'0':'')+mm+':'+(ss<10?'0':'')+ss;cnt.textContent=c+' cars'+(D.nfleet?', '+f+' fleet vehicles':'')+' on links';sl.value=t}}
function frame(ts){{if(!playing)return;if(last===null)last=ts;var dt=(ts-last)/1000;last=ts;acc+=dt;
 if(acc>=1/D.fps){{t+=acc*(+sp.value);acc=0;if(t>=D.dur){{t=D.dur;playing=false;btn.textContent='Play'}}draw()}}
 requestAnimationFrame(frame)}}
btn.onclick=function(){{playing=!playing;btn.textContent=playing?'Pause':'Play';if(playing){{if(t>=D.dur)t=0;last=null;requestAnimationFrame(frame)}}}};
sl.oninput=function(){{t=+sl.value;draw()}};
window.addEventListener('resize',fit);fit();
}})();
</script></body></html>
"""
