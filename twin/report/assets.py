"""Inline CSS and JavaScript of the report page (no external files, no CDN)."""

CSS = """
:root{--fg:#1f2937;--mut:#6b7280;--line:#e5e7eb;--bg:#fff;--acc:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#f3f4f6}
nav{position:sticky;top:0;z-index:5;background:#111827;padding:6px 16px;display:flex;gap:14px;flex-wrap:wrap}
nav a{color:#e5e7eb;text-decoration:none;font-size:13px}nav a:hover{color:#fff;text-decoration:underline}
main{max-width:1280px;margin:0 auto;padding:12px 16px 40px}
.sec{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:14px 0}
h1{margin:4px 0 2px;font-size:24px}h2{margin:0 0 10px;font-size:18px}h3{margin:10px 0 6px;font-size:15px}
.desc{color:var(--mut);margin:0 0 10px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:6px 18px;margin:0}
dl.facts div{border-left:3px solid var(--line);padding-left:8px}dl.facts dt{color:var(--mut);font-size:12px}
dl.facts dd{margin:0;font-weight:600}
table.kpi{border-collapse:collapse;min-width:50%}
table.kpi th,table.kpi td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table.kpi th:first-child,table.kpi td:first-child{text-align:left}
table.kpi td code{color:var(--mut);font-size:11px;margin-left:6px}
td.up{color:#b91c1c}td.down{color:#15803d}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:14px}
figure{margin:0}figcaption{color:var(--mut);font-size:12px;margin-top:4px}
svg.map{width:100%;height:auto;max-height:72vh;background:#f8fafc;border:1px solid var(--line);border-radius:6px;
 cursor:grab;touch-action:none;display:block}
svg.map path{fill:none;vector-effect:non-scaling-stroke;stroke-linecap:round}
svg.map .w1{stroke-width:1.1px}svg.map .w2{stroke-width:1.8px}svg.map .w3{stroke-width:2.6px}svg.map .w4{stroke-width:3.4px}
svg.map path.bg{stroke:#d4d4d8;stroke-width:.6px}
svg.map path.hl{stroke:#111827!important;stroke-width:4px}
.legend{display:flex;flex-wrap:wrap;gap:4px 10px;font-size:12px;margin-top:6px;align-items:center}
.legend .sw i{display:inline-block;width:18px;height:6px;margin-right:4px;vertical-align:middle;border-radius:2px}
svg.chart{max-width:100%;height:auto;font-size:11px}
svg.chart .grid{stroke:#eef0f3}svg.chart .axis{stroke:#9ca3af}svg.chart .tick{stroke:#9ca3af}
svg.chart .ln{fill:none;stroke-width:2}
svg.chart .yt{text-anchor:end;fill:#6b7280}svg.chart .xt{text-anchor:middle;fill:#6b7280}
svg.chart .xl,svg.chart .yl{text-anchor:middle;fill:#374151}svg.chart .ct{font-weight:600;fill:#111827;font-size:12px}
svg.chart .lg{fill:#374151}svg.chart .bl{text-anchor:middle;fill:#fff;font-weight:600}
#tip{position:fixed;z-index:10;pointer-events:none;background:rgba(17,24,39,.92);color:#fff;font-size:12px;
 padding:5px 8px;border-radius:4px;white-space:pre;max-width:360px}
.err{color:#b91c1c}.empty,.note{color:var(--mut)}
.hint{color:var(--mut);font-size:12px}
"""

# Pan (drag), zoom (wheel), reset (double click) on every svg.map; tooltips from the JSON table
# named by the svg's data-src: {"f": [field names], "k": [link ids], "v": [row-major values]}.
JS = r"""
(function(){
var tip=document.getElementById('tip'),cache={},hl=null;
function table(src){if(!src)return null;if(!(src in cache)){var el=document.getElementById(src);
 if(!el){cache[src]=null;return null}var o=JSON.parse(el.textContent);o.ix=new Map();
 for(var i=0;i<o.k.length;i++)o.ix.set(o.k[i],i);cache[src]=o}return cache[src]}
function fmt(v){if(v===null||v===undefined)return'-';if(typeof v!=='number')return String(v);
 return Math.abs(v)>=100?Math.round(v).toLocaleString():(+v.toPrecision(3)).toString()}
document.querySelectorAll('svg.map').forEach(function(svg){
 var vb0=svg.getAttribute('viewBox').split(/\s+/).map(Number),vb=vb0.slice(),drag=null,moved=0;
 function set(){svg.setAttribute('viewBox',vb.join(' '))}
 function loc(e){var p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;return p.matrixTransform(svg.getScreenCTM().inverse())}
 svg.addEventListener('wheel',function(e){e.preventDefault();var p=loc(e),f=e.deltaY<0?0.8:1.25;
  vb=[p.x-(p.x-vb[0])*f,p.y-(p.y-vb[1])*f,vb[2]*f,vb[3]*f];set()},{passive:false});
 svg.addEventListener('pointerdown',function(e){drag=loc(e);moved=0;svg.style.cursor='grabbing'});
 window.addEventListener('pointerup',function(){drag=null;svg.style.cursor=''});
 svg.addEventListener('dblclick',function(){vb=vb0.slice();set()});
 svg.addEventListener('pointermove',function(e){
  if(drag){var p=loc(e);vb[0]-=p.x-drag.x;vb[1]-=p.y-drag.y;set();tip.hidden=true;return}
  var t=e.target,k=t&&t.getAttribute&&t.getAttribute('data-k');
  if(hl&&hl!==t){hl.classList.remove('hl');hl=null}
  if(k===null||k===undefined){tip.hidden=true;return}
  var d=table(svg.getAttribute('data-src')),lines=['link '+k];
  if(d){var i=d.ix.get(+k),n=d.f.length;if(i!==undefined)for(var j=0;j<n;j++)lines.push(d.f[j]+': '+fmt(d.v[i*n+j]))}
  tip.textContent=lines.join('\n');tip.hidden=false;
  tip.style.left=Math.min(e.clientX+14,window.innerWidth-240)+'px';tip.style.top=(e.clientY+14)+'px';
  t.classList.add('hl');hl=t});
 svg.addEventListener('pointerleave',function(){tip.hidden=true;if(hl){hl.classList.remove('hl');hl=null}});
});
})();
"""
