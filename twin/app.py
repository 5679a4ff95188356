"""Interactive app: step the city, change policies, watch residents move on the map.

Start it with (needs the ``viz`` extra: ``pip install -e ".[viz]"``)::

    solara run twin/app.py              # or: python -m solara run twin/app.py
    solara run twin.app                 # the same, as a module

and open http://localhost:8765 (``?residents=4000&flow_capacity_factor=0.3`` in the URL sets the
initial inputs). The viz extra pins ``solara[assets]`` so that the page's JavaScript and CSS come
from the installed package, not a CDN: the app works offline. The page is a Mesa ``SolaraViz``: the sidebar has Mesa's
controls (Reset, play/pause, Step, play and render intervals) and the model parameters below;
changing a parameter takes effect on **Reset**, which builds a new :class:`AppModel`. One step is
``simulation.record_interval_s`` (5 minutes) of the day.

The main area shows

* a map of the drive network, each link coloured by its current load (vehicles on the link / its
  storage capacity), the cars on links (interpolated along their current link by the time since
  they entered it over its free-flow time; queued cars wait at the link's end), walkers and
  cyclists (on the straight line between origin and destination: their trips are uncongested and
  not simulated link by link), the priced cordon and the closed link; with a MaaS fleet
  (``maas_fleet`` > 0: a ride-pooling operator of that many vehicles) its vehicles
  as squares, light blue when empty and magenta with passengers on board;
* the Mesa ``DataCollector`` series of the day (trips en route, arrived);
* a KPI panel (clock, trips, mode shares, mean car delay so far, tolls).

The helpers that compute the map data (:func:`link_segments`, :func:`link_load`,
:func:`link_colors`, :func:`car_positions`, :func:`fleet_positions`, :func:`traveller_positions`,
:func:`kpi_panel`) and
:class:`AppModel` need only numpy and matplotlib; the page itself (``Page``) is defined only when
solara and Mesa's visualization are importable. ``import twin`` never imports this module.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and importlib.util.find_spec("twin") is None:  # pragma: no cover
    # `solara run twin/app.py` executes this file as a script; find the package beside it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from twin._csr import take
from twin.domains.mobility.mode_choice import BIKE, CAR, MODES, WALK
from twin.kernels.queue import STATUS_ON_LINK
from twin.model import CityModel, load_network
from twin.network.road_network import RoadNetwork
from twin.scenario import Scenario, scenario_from_dict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MODEL_PARAMS",
    "AppModel",
    "app_scenario",
    "busiest_link",
    "car_positions",
    "clock",
    "cordon_bbox",
    "draw_city_map",
    "draw_timeseries",
    "fleet_positions",
    "kpi_panel",
    "link_colors",
    "link_load",
    "link_segments",
    "model_params_from_query",
    "recent_link_volume",
    "traveller_positions",
]

START_S = 5 * 3600.0
END_S = 30 * 3600.0
STEP_S = 300.0
CORDON_SHARE = 0.4  # the cordon spans this share of the network's extent in each direction
LANE_OFFSET_M = 4.0  # links and cars are drawn this far right of the centre line (two directions)
FLEET_COLORS = ("#60a5fa", "#c026d3")  # MaaS fleet vehicles: empty, passengers on board (as the animation)
M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON_EQ = 111_320.0

# Sidebar inputs of the page (Mesa SolaraViz model_params); the values are AppModel's defaults
# except run_until_h, which pre-runs the page's model to the morning peak.
MODEL_PARAMS: dict[str, Any] = {
    "residents": {"type": "SliderInt", "value": 1500, "min": 100, "max": 10_000, "step": 100,
                  "label": "residents"},
    "car_parking_cost": {"type": "SliderFloat", "value": 2.0, "min": 0.0, "max": 20.0, "step": 0.5,
                         "label": "parking cost per car tour"},
    "cordon_price": {"type": "SliderFloat", "value": 0.0, "min": 0.0, "max": 20.0, "step": 0.5,
                     "label": "cordon charge per entry, 07-19 (0 = off)"},
    "close_busiest_link": {"type": "Checkbox", "value": False, "label": "close the busiest link all day"},
    "flow_capacity_factor": {"type": "SliderFloat", "value": 1.0, "min": 0.05, "max": 2.0, "step": 0.05,
                             "label": "flow capacity factor"},
    "maas_fleet": {"type": "SliderInt", "value": 0, "min": 0, "max": 200, "step": 5,
                   "label": "MaaS ride-pooling vehicles (0 = off)"},
    "seed": {"type": "InputText", "value": "42", "label": "seed"},
    "run_until_h": {"type": "SliderFloat", "value": 8.0, "min": 5.0, "max": 20.0, "step": 0.25,
                    "label": "pre-run to (h), on Reset"},
}


# ----------------------------------------------------------------------------- the model

def clock(t_s: float) -> str:
    """``30600`` → ``"08:30"`` (hours past 24 keep counting: ``"25:10"``)."""
    m = int(t_s // 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def cordon_bbox(network: RoadNetwork, share: float = CORDON_SHARE) -> tuple[float, float, float, float]:
    """A box [W, S, E, N] around the centre of the network's extent, ``share`` of it wide and high."""
    w, e = float(network.node_lon.min()), float(network.node_lon.max())
    s, n = float(network.node_lat.min()), float(network.node_lat.max())
    cx, cy = (w + e) / 2, (s + n) / 2
    hx, hy = (e - w) * share / 2, (n - s) * share / 2
    return (cx - hx, cy - hy, cx + hx, cy + hy)


def app_scenario(*, residents: int = 1500, car_parking_cost: float = 2.0, cordon_price: float = 0.0,
                 flow_capacity_factor: float = 1.0, seed: int = 42, map_source: str = "helsinki",
                 cordon: tuple[float, float, float, float] | None = None,
                 closed_links: list[tuple[int, int]] | None = None, maas_fleet: int = 0) -> Scenario:
    """The app's one-day scenario (the settings of ``scenarios/helsinki_commute.yaml``, one day).

    ``cordon`` is the priced box (used when ``cordon_price > 0``); ``closed_links`` are
    ``(from, to)`` OSM node ids closed all day. ``maas_fleet`` > 0 adds the ``maas`` mode and one
    ride-pooling operator of that many four-seat vehicles (``docs/maas.md``; the mode constant of
    ``scenarios/helsinki_maas.yaml``).
    """
    policies: list[dict[str, Any]] = []
    if cordon_price > 0 and cordon is not None:
        policies.append({"type": "road_pricing", "name": "centre cordon", "kind": "cordon",
                         "bbox": list(cordon), "price": float(cordon_price), "from_s": "07:00", "to_s": "19:00"})
    if closed_links:
        policies.append({"type": "link_change", "name": "closed link", "links": [list(x) for x in closed_links],
                         "closed": True})
    extra: dict[str, Any] = {}
    modes: dict[str, Any] = {"car_parking_cost": float(car_parking_cost), "asc_walk": -0.653, "asc_bike": -3.04}
    if maas_fleet > 0:
        modes |= {"available": ["car", "walk", "bike", "maas"], "plugins": {"maas": {"asc": -0.5}}}
        extra["maas"] = {"operators": [{"name": "pool", "fleet_size": int(maas_fleet), "seats": 4,
                                        "dispatcher": "pooling", "batch_s": STEP_S}]}
    return scenario_from_dict({
        "name": "app",
        "description": "citytwin interactive app",
        "seed": int(seed),
        "map": {"source": map_source, "network_type": "drive"},
        # as the default scenario: a 10 % sample (capacities scale), its calibrated mode constants
        "population": {"residents": int(residents), "placement": "buildings", "sample_share": 0.1},
        "demand": {"work_departure": {"kind": "normal", "mean_s": "08:00", "std_s": 2700,
                                      "min_s": "05:30", "max_s": "10:30"}},
        "modes": modes,
        "replanning": {"iterations": 1},
        "simulation": {"start_s": START_S, "end_s": END_S, "record_interval_s": STEP_S,
                       "flow_capacity_factor": float(flow_capacity_factor)},
        "policies": policies,
        **extra,
    })


@lru_cache(maxsize=16)
def busiest_link(residents: int = 1500, seed: int = 42, map_source: str = "helsinki",
                 car_parking_cost: float = 2.0) -> int:
    """The drive link with the most planned car routes on the day without policies (its index)."""
    base = CityModel(app_scenario(residents=residents, seed=seed, map_source=map_source,
                                  car_parking_cost=car_parking_cost),
                     network=_network(map_source))
    car = np.flatnonzero(base.trip_mode == CAR)
    _, links = take(base.route_indptr, base.route_links, car)
    if links.size == 0:  # nobody drives: the link with the most routes of all trips
        links = base.route_links
    return int(np.argmax(np.bincount(links, minlength=base.network.n_links)))


@lru_cache(maxsize=4)
def _network(map_source: str) -> RoadNetwork:
    return load_network(app_scenario(residents=1, map_source=map_source))


class AppModel(CityModel):
    """A :class:`~twin.model.CityModel` built from a few keyword arguments (for Mesa's SolaraViz).

    Parameters
    ----------
    residents
        Synthetic residents.
    car_parking_cost
        Money per car tour (enters mode choice).
    cordon_price
        Charge per entry into a box around the map centre (:func:`cordon_bbox`), 07:00-19:00;
        0 for none.
    close_busiest_link
        Close the link with the most planned car routes without policies (:func:`busiest_link`)
        for the whole day.
    flow_capacity_factor
        Scales every link's flow capacity (lower it to see queues and spillback).
    seed
        Root seed.
    run_until_h
        Step the model until this clock hour (e.g. 8.0 for 08:00) before handing it over;
        0 or less: start at 05:00.
    map_source
        The map (a catalogue name or a file; the packaged Helsinki extract by default).
    maas_fleet
        Vehicles of a MaaS ride-pooling operator (0: none; see :func:`app_scenario`).
    """

    def __init__(self, residents: int = 1500, car_parking_cost: float = 2.0, cordon_price: float = 0.0,
                 close_busiest_link: bool = False, flow_capacity_factor: float = 1.0, seed: int | str = 42,
                 run_until_h: float = 0.0, map_source: str = "helsinki", maas_fleet: int = 0) -> None:
        seed = int(seed)
        residents = int(residents)
        net = _network(map_source)
        self.cordon = cordon_bbox(net) if cordon_price > 0 else None
        self.closed_link: int | None = None
        closed = None
        if close_busiest_link:
            self.closed_link = busiest_link(residents, seed, map_source, float(car_parking_cost))
            closed = [(int(net.node_osmid[net.link_tail[self.closed_link]]),
                       int(net.node_osmid[net.link_head[self.closed_link]]))]
        sc = app_scenario(residents=residents, car_parking_cost=car_parking_cost, cordon_price=cordon_price,
                          flow_capacity_factor=flow_capacity_factor, seed=seed, map_source=map_source,
                          cordon=self.cordon, closed_links=closed, maas_fleet=int(maas_fleet))
        super().__init__(sc, network=net)
        if self.closed_link is not None:  # every link between the two nodes (parallel links too)
            self.closed_links = np.flatnonzero(self.policies.arrays(0.0, END_S).closed)
        else:
            self.closed_links = np.zeros(0, dtype=np.int64)
        self.run_until(run_until_h * 3600.0)

    def run_until(self, t_s: float) -> None:
        """Step while the day runs and the clock is before ``t_s``."""
        while self.running and self.sim.t_s < t_s:
            self.step()


# ----------------------------------------------------------------------------- map data

def _lane_offset_deg(dlon: np.ndarray, dlat: np.ndarray, lat0: float, offset_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset (lon, lat degrees) ``offset_m`` to the right of direction (dlon, dlat)."""
    kx = M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    ex, ey = dlon * kx, dlat * M_PER_DEG_LAT
    norm = np.hypot(ex, ey)
    norm = np.where(norm > 0, norm, 1.0)
    return ey / norm * offset_m / kx, -ex / norm * offset_m / M_PER_DEG_LAT


def link_segments(network: RoadNetwork, offset_m: float = LANE_OFFSET_M) -> np.ndarray:
    """Straight segments of every link, (L, 2, 2) as [[lon, lat] tail, [lon, lat] head], shifted
    ``offset_m`` to the right so that the two directions of a street are both visible."""
    lon, lat = network.node_lon, network.node_lat
    t, h = network.link_tail, network.link_head
    seg = np.empty((network.n_links, 2, 2))
    seg[:, 0, 0], seg[:, 0, 1] = lon[t], lat[t]
    seg[:, 1, 0], seg[:, 1, 1] = lon[h], lat[h]
    if offset_m:
        ox, oy = _lane_offset_deg(lon[h] - lon[t], lat[h] - lat[t], float(np.mean(lat)), offset_m)
        seg[:, :, 0] += ox[:, None]
        seg[:, :, 1] += oy[:, None]
    return seg


def link_load(model: CityModel) -> np.ndarray:
    """Current load of every link: vehicles on it / its storage capacity, (L,) float in [0, ∞)."""
    load: np.ndarray = model.sim.occ.astype(np.float64) / model.sim.storage_veh
    return load


def link_colors(model: CityModel, cmap: str = "RdYlGn_r", empty: str = "#c8c8c8") -> np.ndarray:
    """RGBA (L, 4) per link: grey when empty, else ``cmap`` over the load clipped to [0, 1]."""
    from matplotlib import colormaps, colors

    load = link_load(model)
    rgba: np.ndarray = colormaps[cmap](np.clip(load, 0.0, 1.0))
    rgba[load <= 0] = colors.to_rgba(empty)
    return rgba


def car_positions(model: CityModel, offset_m: float = LANE_OFFSET_M) -> np.ndarray:
    """[lon, lat] (n, 2) of the cars on links now (kernel status 2), in car order.

    A car is placed along its current link by ``(t - enter_s) / fftt``; cars that reached the end
    of the link and wait to leave stand in a queue from the link's end backwards (one storage
    slot each, in order of entry), and moving cars stop at the tail of that queue.
    """
    n = model.car_trips.size
    if n == 0:
        return np.zeros((0, 2))
    sim = model.sim
    on = np.flatnonzero(sim.status[:n] == STATUS_ON_LINK)
    link = sim.current_link[on]  # the kernel's (legs and diversions included)
    enter = sim.enter_s[on]
    fftt = sim.fftt_s[link]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(fftt > 0, (sim.t_s - enter) / fftt, 1.0)
    frac = np.nan_to_num(frac, nan=1.0)
    storage = sim.storage_veh[link]
    queued = np.flatnonzero(frac >= 1.0)
    if queued.size:
        qs = queued[np.lexsort((enter[queued], link[queued]))]  # by link, then order of entry
        first = np.r_[True, link[qs][1:] != link[qs][:-1]]
        rank = np.arange(qs.size) - np.maximum.accumulate(np.where(first, np.arange(qs.size), 0))
        frac[qs] = 1.0 - rank / storage[qs]
        n_queued = np.bincount(link[queued], minlength=model.network.n_links)
        moving = np.flatnonzero(frac < 1.0)
        moving = moving[~np.isin(moving, qs)]
        frac[moving] = np.minimum(frac[moving], 1.0 - n_queued[link[moving]] / storage[moving])
    frac = np.clip(frac, 0.0, 1.0)
    seg = link_segments(model.network, offset_m)[link]
    pos: np.ndarray = seg[:, 0] + frac[:, None] * (seg[:, 1] - seg[:, 0])
    return pos


def fleet_positions(model: CityModel, offset_m: float = LANE_OFFSET_M) -> tuple[np.ndarray, np.ndarray]:
    """[lon, lat] (n, 2) of every MaaS fleet vehicle now, and whether it has passengers on board
    (n,) bool; ``(0, 2)`` / ``(0,)`` for a model without the ``maas`` domain or before its day.

    A vehicle on a link is placed along it by the time since it entered over the link's free-flow
    time (not queued behind the cars: the fleet is few); one standing (idle, charging, at the end
    of a leg) is at its node.
    """
    dom = model.domain("maas")
    vehicles = getattr(dom, "vehicles", None) if dom is not None else None
    if not vehicles:
        return np.zeros((0, 2)), np.zeros(0, bool)
    sim = model.sim
    net = model.network
    kid = np.array([v.kid for v in vehicles], np.int64)
    node = np.array([v.node for v in vehicles], np.int64)
    occupied = np.array([v.onboard > 0 for v in vehicles], bool)
    pos = np.column_stack([net.node_lon[node], net.node_lat[node]]).astype(np.float64)
    on = np.flatnonzero(sim.status[kid] == STATUS_ON_LINK)
    if on.size:
        link = sim.current_link[kid[on]]
        fftt = sim.fftt_s[link]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(fftt > 0, (sim.t_s - sim.enter_s[kid[on]]) / fftt, 1.0)
        frac = np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
        seg = link_segments(net, offset_m)[link]
        pos[on] = seg[:, 0] + frac[:, None] * (seg[:, 1] - seg[:, 0])
    return pos, occupied


def recent_link_volume(model: CityModel) -> tuple[np.ndarray, float]:
    """Vehicles that left each link since the start of the previous cost bin (15 to 30 minutes
    ago with the default 900 s bins): (L,) int and that start time in seconds."""
    b = int(model.sim.t_s // model.bin_s)
    b = min(max(b, 0), model.sim.link_volume.shape[1] - 1)
    b0 = max(b - 1, 0)
    return model.sim.link_volume[:, b0:b + 1].sum(axis=1), b0 * model.bin_s


def traveller_positions(model: CityModel, mode: int) -> np.ndarray:
    """[lon, lat] (n, 2) of the walkers (``mode=WALK``) or cyclists (``BIKE``) under way now, on the
    straight line from origin to destination (these trips take their uncongested times)."""
    t_now = model.sim.t_s
    dep, arr = model.trip_depart_s, model.trip_arrive_s
    with np.errstate(invalid="ignore"):
        sel = np.flatnonzero((model.trip_mode == mode) & (model.trip_state == 1) & (dep <= t_now) & (arr > t_now))
    if sel.size == 0:
        return np.zeros((0, 2))
    net = model.network
    o, d = model.trips.origin[sel], model.trips.dest[sel]
    dur = arr[sel] - dep[sel]
    frac = np.clip(np.where(dur > 0, (t_now - dep[sel]) / np.where(dur > 0, dur, 1.0), 1.0), 0.0, 1.0)
    lon = net.node_lon[o] + frac * (net.node_lon[d] - net.node_lon[o])
    lat = net.node_lat[o] + frac * (net.node_lat[d] - net.node_lat[o])
    return np.column_stack([lon, lat])


def kpi_panel(model: CityModel) -> dict[str, Any]:
    """What the KPI panel shows, as plain values (None where not defined yet)."""
    k = model.kpis_day()
    t_now = model.sim.t_s
    fleet_occ = fleet_positions(model)[1]
    out: dict[str, Any] = {
        "clock": clock(t_now),
        "day_over": not model.running,
        "residents": k["residents"],
        "trips_total": k["trips_total"],
        "trips_completed": k["trips_completed"],
        "cars_on_links": int(np.count_nonzero(model.sim.status[:model.car_trips.size] == STATUS_ON_LINK)),
        "cars_waiting": int(model.sim.n_waiting),
        "fleet_vehicles": int(fleet_occ.size),
        "fleet_with_passengers": int(np.count_nonzero(fleet_occ)),
        "walking": len(traveller_positions(model, WALK)),
        "cycling": len(traveller_positions(model, BIKE)),
        "car_delay_mean_s": k["delay_mean_s"],
        "car_travel_time_mean_s": k["car_travel_time_mean_s"],
        "tolls_paid": k["tolls_paid"],
        "links_over_half_full": int(np.count_nonzero(link_load(model) >= 0.5)),
    }
    for name in MODES:
        out[f"mode_share_{name}"] = k[f"mode_share_{name}"]
    if "mode_share_maas" in k:
        out["mode_share_maas"] = k["mode_share_maas"]
    return out


def _kpi_markdown(model: CityModel) -> str:
    p = kpi_panel(model)

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f} %"

    def sec(x: float | None) -> str:
        return "–" if x is None else f"{round(x) + 0:d} s"

    policies = []
    cordon = getattr(model, "cordon", None)
    if cordon is not None:
        price = next((c.price for c in model.scenario.policies if c.type == "road_pricing"), 0.0)
        policies.append(f"cordon {price:g} per entry 07-19")
    closed = getattr(model, "closed_links", np.zeros(0))
    if len(closed):
        policies.append(f"link {int(closed[0])} closed")
    rows = [
        ("clock", f"**{p['clock']}**" + (" (day over)" if p["day_over"] else "")),
        ("trips completed", f"{p['trips_completed']:,} / {p['trips_total']:,}"),
        ("cars on links / waiting", f"{p['cars_on_links']} / {p['cars_waiting']}"),
        ("walking / cycling now", f"{p['walking']} / {p['cycling']}"),
        ("mode share car / walk / bike",
         " / ".join(pct(p[f"mode_share_{m}"]) for m in MODES)),
        *([("MaaS fleet / with passengers now", f"{p['fleet_vehicles']} / {p['fleet_with_passengers']}"),
           ("mode share maas", pct(p.get("mode_share_maas")))] if p["fleet_vehicles"] else []),
        ("mean car delay (so far)", sec(p["car_delay_mean_s"])),
        ("mean car travel time", sec(p["car_travel_time_mean_s"])),
        ("links ≥ 50 % full", str(p["links_over_half_full"])),
        ("tolls paid", f"{p['tolls_paid']:g}"),
        ("policies", ", ".join(policies) or "none"),
        ("settings", (f"{model.pop.n:,} residents, parking {model.scenario.modes.car_parking_cost:g}, "
                     f"flow capacity ×{model.scenario.simulation.flow_capacity_factor:g}, seed {model.scenario.seed}")),
    ]
    return "| KPI | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


# ----------------------------------------------------------------------------- figures

def draw_city_map(model: CityModel, fig: Figure | None = None) -> Figure:
    """A matplotlib Figure of the network: colour = load now, width = vehicles passed recently;
    cars, walkers and cyclists as dots; the priced cordon and the closed link."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    net = model.network
    lat0 = float(np.mean(net.node_lat))
    aspect = 1.0 / math.cos(math.radians(lat0))
    w_deg = float(net.node_lon.max() - net.node_lon.min())
    h_deg = float(net.node_lat.max() - net.node_lat.min()) * aspect
    if fig is None:
        ratio = min(max(h_deg / max(w_deg, 1e-9), 0.5), 1.6)
        fig = Figure(figsize=(7.2, min(max(5.6 * ratio, 4.5), 8.0)), dpi=100, layout="constrained")
    ax = fig.subplots()
    seg = link_segments(net)
    load = link_load(model)
    vol, since_s = recent_link_volume(model)
    widths = 0.8 + 4.0 * np.sqrt(vol / max(1.0, float(vol.max())))
    order = np.lexsort((vol, load))  # busy links on top
    # (matplotlib's stubs want a sequence of segments; an (n, 2, 2) array is one)
    ax.add_collection(LineCollection(seg[order], colors=link_colors(model)[order],  # type: ignore[arg-type]
                                     linewidths=widths[order], capstyle="round", zorder=1))
    closed = getattr(model, "closed_links", np.zeros(0, dtype=np.int64))
    if len(closed):
        ax.add_collection(LineCollection(seg[closed], colors="black", linewidths=3.0, zorder=2))  # type: ignore[arg-type]
        mid = seg[closed].mean(axis=1)
        ax.scatter(mid[:, 0], mid[:, 1], marker="X", s=90, c="black", zorder=5, label="closed link")
    cordon = getattr(model, "cordon", None)
    if cordon is not None:
        w, s, e, n = cordon
        ax.add_patch(Rectangle((w, s), e - w, n - s, fill=False, ls="--", lw=1.5, ec="tab:purple", zorder=2,
                               label="priced cordon"))
    dots: tuple[tuple[np.ndarray, dict[str, Any]], ...] = (
        (traveller_positions(model, WALK), {"s": 9, "c": "tab:green", "alpha": 0.6, "label": "walking"}),
        (traveller_positions(model, BIKE), {"s": 9, "c": "tab:orange", "alpha": 0.6, "label": "cycling"}),
        (car_positions(model), {"s": 24, "c": "tab:blue", "edgecolors": "white", "linewidths": 0.5,
                                "label": "car"}),
    )
    fleet, occupied = fleet_positions(model)
    if len(fleet):
        dots += ((fleet[~occupied], {"s": 42, "marker": "s", "c": FLEET_COLORS[0], "edgecolors": "white",
                                     "linewidths": 0.8, "label": "fleet, empty"}),
                 (fleet[occupied], {"s": 42, "marker": "s", "c": FLEET_COLORS[1], "edgecolors": "white",
                                    "linewidths": 0.8, "label": "fleet, with passengers"}))
    for pos, kw in dots:
        ax.scatter(pos[:, 0], pos[:, 1], zorder=4, **{**kw, "label": f"{kw['label']} ({len(pos)})"})
    pad_x, pad_y = w_deg * 0.03, h_deg / aspect * 0.03
    ax.set_xlim(net.node_lon.min() - pad_x, net.node_lon.max() + pad_x)
    ax.set_ylim(net.node_lat.min() - pad_y, net.node_lat.max() + pad_y)
    ax.set_aspect(aspect)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.tick_params(labelsize=7)
    ax.set_title(f"{model.scenario.map.source} at {clock(model.sim.t_s)}: {net.n_links} links, "
                 f"{model.pop.n:,} residents\nline width: vehicles passed since {clock(since_s)}",
                 fontsize=9)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    cb = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=colormaps["RdYlGn_r"]), ax=ax,
                      shrink=0.6, pad=0.01)
    cb.set_label("link load now (vehicles / storage)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return fig


def draw_timeseries(model: CityModel, fig: Figure | None = None) -> Figure:
    """Trips en route and arrived (the Mesa DataCollector of the day) against the clock."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if fig is None:
        fig = Figure(figsize=(5.6, 3.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    df = model.datacollector.get_model_vars_dataframe()
    h = df["t_s"].to_numpy(dtype=float) / 3600.0
    ax.plot(h, df["en_route"], color="tab:blue", label="en route")
    ax.plot(h, df["car_on_links"], color="tab:red", lw=1, label="cars on links")
    ax2 = ax.twinx()
    ax2.plot(h, df["arrived"], color="tab:green", label="arrived (right)")
    ax.set_ylabel("trips under way", fontsize=8)
    ax2.set_ylabel("trips arrived", fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x * 3600.0)))
    ax.set_xlim(START_S / 3600.0, max(h.max(initial=START_S / 3600.0), START_S / 3600.0 + 3))
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax.tick_params(labelsize=8)
    ax2.tick_params(labelsize=8)
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="upper left", fontsize=8)
    ax.set_title("Mesa DataCollector: trips over the day", fontsize=10)
    return fig


def model_params_from_query(search: str | None) -> dict[str, Any]:
    """:data:`MODEL_PARAMS` with the values given in a URL query string (``residents=4000&...``);
    unknown keys and unparsable values are ignored."""
    from urllib.parse import parse_qsl

    params = {k: dict(v) for k, v in MODEL_PARAMS.items()}
    for key, raw in parse_qsl(search or ""):
        if key not in params:
            continue
        kind = params[key]["type"]
        try:
            if kind == "SliderInt":
                value: Any = int(float(raw))
            elif kind == "SliderFloat":
                value = float(raw)
            elif kind == "Checkbox":
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                value = str(int(raw)) if key == "seed" else raw
        except ValueError:
            continue
        if kind in ("SliderInt", "SliderFloat"):
            value = min(max(value, params[key]["min"]), params[key]["max"])
        params[key]["value"] = value
    return params


# ----------------------------------------------------------------------------- the page

try:  # the page needs the viz extra; the helpers above do not
    import warnings

    with warnings.catch_warnings():
        # mesa.visualization trips solara's hook validator with a UserWarning on import
        warnings.simplefilter("ignore")
        import solara
        from mesa.visualization import SolaraViz
        from mesa.visualization.utils import update_counter
except ImportError:  # pragma: no cover - exercised only without the extra
    solara = None

if solara is not None:

    @solara.component
    def CityMap(model: CityModel) -> None:
        """The map (re-drawn after every step)."""
        tick = update_counter.get()
        fig = draw_city_map(model)
        solara.FigureMatplotlib(fig, format="png", dependencies=[tick, id(model), model.steps])

    @solara.component
    def TimeSeries(model: CityModel) -> None:
        tick = update_counter.get()
        fig = draw_timeseries(model)
        solara.FigureMatplotlib(fig, format="png", dependencies=[tick, id(model), model.steps])

    @solara.component
    def KpiPanel(model: CityModel) -> None:
        update_counter.get()
        solara.Markdown(_kpi_markdown(model))

    @solara.component
    def Dashboard(model: CityModel) -> None:
        """Map on the left; time series and KPIs on the right (a plain layout: Mesa's draggable
        grid loads its JavaScript from a CDN, which offline machines cannot reach)."""
        with solara.Columns([3, 2]):
            with solara.Card(margin=0):
                CityMap(model)
            with solara.Column():
                with solara.Card(margin=0):
                    TimeSeries(model)
                with solara.Card("KPIs", margin=0):
                    KpiPanel(model)

    @solara.component
    def Page() -> None:
        """The app: Mesa's SolaraViz (controls, parameters) around the citytwin dashboard.

        Query parameters set the initial values of the inputs, e.g.
        ``/?residents=4000&flow_capacity_factor=0.3&run_until_h=8.5``.
        """
        router = solara.use_router()
        params = solara.use_memo(lambda: model_params_from_query(router.search), [])
        model = solara.use_reactive(solara.use_memo(lambda: AppModel(**{k: v["value"] for k, v in params.items()}), []))
        SolaraViz(model, components=[], model_params=params, name="citytwin: a city day, step by step",
                  play_interval=200)
        Dashboard(model.value)

    page = Page
