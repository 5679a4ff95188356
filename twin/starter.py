"""Starter scenario files: a commented YAML with the most useful keys and their defaults.

``twin new my_city.yaml --map tsukuba`` writes one. Every value comes from the pydantic models of
:mod:`twin.scenario` (never hard-coded here), so the file always equals the defaults when loaded
(apart from the name and the map) and stays in step with the schema; a test checks both.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from twin._errors import ScenarioError, TwinError
from twin._yaml import load_yaml_text
from twin.scenario import (
    ActivityConfig,
    LinkChangePolicy,
    RoadPricingPolicy,
    Scenario,
    TimeDistribution,
    scenario_from_dict,
)

__all__ = ["scenario_name_from_path", "starter_yaml", "write_starter"]

_COMMENT_COL = 40  # comments start in this column when the key and value are shorter
_LONG = 72  # a longer "key: value" gets its comment on the line above

# Fields spelled as clock strings ("HH:MM") rather than seconds.
_CLOCK_FIELDS = {"start_s", "end_s", "opens_s", "closes_s", "from_s", "to_s", "mean_s", "min_s", "max_s"}


def _clock(seconds: float) -> str:
    """28800.0 -> '"08:00"' (whole minutes), else the number of seconds."""
    s = float(seconds)
    if s >= 0 and s % 60 == 0:
        h, m = divmod(int(s) // 60, 60)
        return f'"{h:02d}:{m:02d}"'
    return _scalar(s)


def _scalar(value: Any) -> str:
    """One YAML scalar or flow collection on one line."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _dist(d: TimeDistribution) -> str:
    """A time distribution as a YAML flow mapping (times as clock strings, std in seconds)."""
    parts = [f"kind: {d.kind}"]
    for key in ("mean_s", "std_s", "min_s", "max_s"):
        value = getattr(d, key)
        parts.append(f"{key}: {_clock(value) if key in _CLOCK_FIELDS else _scalar(value)}")
    return "{" + ", ".join(parts) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def raw(self, text: str = "") -> None:
        self.lines.append(text)

    def key(self, indent: int, key: str, value: str, comment: str = "") -> None:
        head = f"{' ' * indent}{key}: {value}" if value != "" else f"{' ' * indent}{key}:"
        if comment and len(head) > _LONG:
            self.lines.append(f"{' ' * indent}# {comment}")
        elif comment:
            pad = head.ljust(_COMMENT_COL - 1) if len(head) < _COMMENT_COL - 1 else head + " "
            head = f"{pad} # {comment}"
        self.lines.append(head)

    def field(self, indent: int, obj: Any, key: str, comment: str) -> None:
        value = getattr(obj, key)
        if isinstance(value, TimeDistribution):
            text = _dist(value)
        elif key in _CLOCK_FIELDS:
            text = _clock(value)
        else:
            text = _scalar(value)
        self.key(indent, key, text, comment)

    def activity(self, indent: int, obj: ActivityConfig, key: str, comment: str) -> None:
        self.key(indent, key, "", comment)
        self.key(indent + 2, "duration", _dist(obj.duration), "how long it lasts (HH:MM)")
        self.key(indent + 2, "opens_s", _clock(obj.opens_s), "arrivals before opening wait")
        self.key(indent + 2, "closes_s", _clock(obj.closes_s), "the activity ends at closing at the latest")


def _domain_sections(w: _Writer) -> None:
    """Commented sections of the installed domains (a section switches its domain on) and their
    timeline event types."""
    from twin.registry import DOMAINS
    from twin.scenario import timeline_event_types

    for name, cls in DOMAINS.classes().items():
        cfg = getattr(cls, "Config", None)
        if cfg is None:
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        w.raw(f"# {name}:  # domain {name}: {doc[0] if doc else ''} (uncomment to switch it on)")
        default = cfg()
        for key, f in cfg.model_fields.items():
            value = getattr(default, key)
            shown = _scalar(value) if isinstance(value, int | float | str | bool) else json.dumps(
                default.model_dump(mode="json")[key])
            w.raw(f"#   {key}: {shown}  # {f.description or ''}".rstrip())
        w.raw()
    events = timeline_event_types()
    w.key(0, "timeline", "[]", "timed events of the domains, in time order" + (
        f" (types: {', '.join(events)})" if events else " (no installed domain has any)"))
    if events:
        for ev, model in events.items():
            req = {k: "..." for k, f in model.model_fields.items() if f.is_required() and k not in ("type", "at_s")}
            extra = "".join(f", {k}: {v}" for k, v in req.items())
            w.raw(f'#  - {{type: {ev}, at_s: "12:00"{extra}}}')
        w.raw()


def starter_yaml(name: str, map_source: str) -> str:
    """A commented scenario YAML for ``name`` on ``map_source``, every other value at its default.

    Parameters
    ----------
    name
        The scenario name (letters, digits, ``_``, ``-``, ``.``); the default run folder is ``runs/NAME``.
    map_source
        Catalogue name, map file, ``place:NAME`` or ``bbox:W,S,E,N`` (written as given, not checked here).

    Raises
    ------
    ScenarioError
        ``name`` or ``map_source`` is not a valid value (the message names the field).
    """
    sc = scenario_from_dict({"name": name, "map": {"source": map_source}})  # validates name and source
    d = Scenario()
    w = _Writer()
    w.raw(f"# citytwin scenario {sc.name}: a synthetic population living one day on {sc.map.source}.")
    w.raw("# Generated by `twin new`. Every value below is the default unless you change it; keys left out")
    w.raw("# keep their defaults too. All keys: docs/scenario-reference.md or `twin schema`.")
    w.raw("#   twin validate THIS_FILE      # check it without running")
    w.raw("#   twin run THIS_FILE           # simulate and write runs/NAME")
    w.raw("# Times (*_s) are seconds or \"HH:MM\" clock strings (after midnight of the simulated day).")
    w.raw()
    w.key(0, "name", _scalar(sc.name), "run name; the default output folder is runs/NAME")
    w.key(0, "description", _scalar(d.description), "free text")
    w.field(0, d, "seed", "same scenario + seed = identical results")
    w.raw()

    w.key(0, "map", "", "the road network the city lives on")
    w.key(2, "source", _scalar(sc.map.source),
          "catalogue name (twin maps list), map file, place:NAME or bbox:W,S,E,N")
    w.field(2, d.map, "network_type", "drive, walk, bike or all; cars need drive")
    w.field(2, d.map, "min_link_length_m", "shorter links (junction stubs) get this length")
    w.raw()

    p = d.population
    w.key(0, "population", "", "the synthetic population")
    w.field(2, p, "residents", "number of residents")
    w.field(2, p, "sample_share", "the residents are this share of the real population (capacities scale)")
    w.field(2, p, "placement", "homes, jobs, shops weighted by OSM buildings, or uniform")
    w.key(2, "# grid", "population.gpkg", "optional population grid (polygons with people per cell)")
    w.field(2, p, "grid_population_column", "column of the grid holding people per cell")
    w.field(2, p, "household_size_mean", "mean household size")
    w.field(2, p, "child_share", "share of residents under 18")
    w.field(2, p, "senior_share", "share of residents 65 or older")
    w.field(2, p, "employment_rate", "share of adults (18-64) with a job")
    w.field(2, p, "senior_employment_rate", "share of seniors with a job")
    w.field(2, p, "adult_student_rate", "share of adults without a job who study")
    w.field(2, p, "car_ownership", "share of households with a car")
    w.field(2, p, "mesa_agents", "Mesa agent per resident: auto, all or lazy")
    w.raw()

    dm = d.demand
    w.key(0, "demand", "", "daily activity chains: home-work-home, school, shops, leisure")
    w.field(2, dm, "work_departure", "when workers leave home")
    w.field(2, dm, "school_departure", "when pupils and students leave home")
    w.field(2, dm, "errand_departure", "when others leave for an errand")
    w.activity(2, dm.work, "work", "time at work and opening hours")
    w.activity(2, dm.school, "school", "time at school and opening hours")
    w.activity(2, dm.shop, "shop", "time shopping and opening hours")
    w.activity(2, dm.leisure, "leisure", "time at leisure and opening hours")
    w.field(2, dm, "home_before_leisure", "time at home before an evening leisure tour")
    w.field(2, dm, "shop_after_work", "probability that a worker shops on the way home")
    w.field(2, dm, "errand_share", "probability that someone without work or school goes out")
    w.field(2, dm, "evening_leisure", "probability of an evening leisure tour")
    w.raw()

    m = d.modes
    w.key(0, "modes", "", "mode choice: multinomial logit per home-based tour")
    w.field(2, m, "available", "car only for adults of car-owning households")
    w.field(2, m, "walk_speed_mps", "walking speed, m/s")
    w.field(2, m, "bike_speed_mps", "cycling speed, m/s")
    w.field(2, m, "asc_car", "alternative-specific constant of car")
    w.field(2, m, "asc_walk", "alternative-specific constant of walk")
    w.field(2, m, "asc_bike", "alternative-specific constant of bike")
    w.field(2, m, "beta_time_per_h", "utility per hour of travel time (< 0)")
    w.field(2, m, "beta_cost_per_money",
            f"utility per unit of money (< 0); value of time {m.value_of_time_per_h:g}/h")
    w.field(2, m, "car_cost_per_km", "money per km driven")
    w.field(2, m, "car_parking_cost", "money per car tour")
    w.field(2, m, "target_shares",
            "observed trip shares by mode for `twin calibrate`, e.g. {car: 0.3, walk: 0.5, bike: 0.2}")
    w.field(2, m, "plugins", "options of plug-in modes in available, e.g. taxi: {wait_s: 240} (docs/modes.md)")
    w.raw()

    r = d.replanning
    w.key(0, "replanning", "", "iterated days towards equilibrium")
    w.field(2, r, "iterations", "simulated days; 1 = no replanning")
    w.field(2, r, "route_share", "share of car trips re-routed each day; msa = 1/(k+1)")
    w.field(2, r, "mode_share", "share of tours re-choosing their mode each day")
    w.field(2, r, "cost_bin_s", "time bins of experienced link times, seconds")
    w.field(2, r, "gap_threshold", "stop early below this relative gap (0 = run all days)")
    w.raw()

    lc = LinkChangePolicy(type="link_change", osm_way_ids=[12345])
    rp = RoadPricingPolicy(type="road_pricing", bbox=(0.0, 0.0, 1.0, 1.0))
    w.key(0, "policies", _scalar(d.policies), "policies (docs/policies.md): delete [] and uncomment, e.g.")
    w.raw('#  - {type: link_change, osm_way_ids: [12345], closed: true, from_s: "07:00", to_s: "10:00"}'
          f"  # capacity_factor: {lc.capacity_factor:g}, speed_factor: {lc.speed_factor:g}")
    w.raw(f"#  - {{type: road_pricing, kind: {rp.kind}, bbox: [WEST, SOUTH, EAST, NORTH], "
          f"price: {rp.price:g}, "
          f"from_s: {_clock(rp.from_s)}, to_s: {_clock(rp.to_s)}}}  # kind: cordon, distance or link")
    w.raw()

    s = d.simulation
    w.key(0, "simulation", "", "the spatial-queue traffic simulation")
    w.field(2, s, "start_s", "simulation start")
    w.field(2, s, "end_s", "hard end; trips not arrived count as incomplete")
    w.field(2, s, "dt_s", "time step of the queue, seconds")
    w.field(2, s, "record_interval_s", "Mesa model step (demand, record), seconds")
    w.field(2, s, "flow_capacity_factor", "scales flow capacities (the sample share)")
    w.field(2, s, "storage_capacity_factor", "scales storage capacities (spillback)")
    w.field(2, s, "stuck_action", "stuck vehicles: force (moved on) or remove")
    w.field(2, s, "stuck_time_s", "blocked this long counts as stuck, seconds")
    w.field(2, s, "backend", "numba, or python for debugging")
    w.raw()

    o = d.output
    w.key(0, "output", "", "what a run writes besides kpis.json and trips.parquet")
    w.field(2, o, "links", "links.parquet: hourly volume and speed per link")
    w.field(2, o, "timeseries", "timeseries.parquet: Mesa DataCollector series")
    w.field(2, o, "events", "events.parquet: depart/enter/leave/arrive events")
    w.field(2, o, "geopackage", "links.gpkg: daily link results for GIS tools")
    w.field(2, o, "report", "report.html: KPIs, maps and charts in one offline page")

    _domain_sections(w)
    text = "\n".join(w.lines) + "\n"
    scenario_from_dict(load_yaml_text(text))  # the starter itself must always be valid
    return text


def scenario_name_from_path(path: str | Path) -> str:
    """A valid scenario name from a file name: ``my city.yaml`` -> ``my_city``."""
    stem = Path(path).name
    for suffix in (".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("_")[:100]
    return name or "scenario"


def write_starter(path: str | Path, name: str | None, map_source: str, overwrite: bool = False,
                  *, check_map: bool = True) -> Path:
    """Write :func:`starter_yaml` to ``path`` (``twin new``).

    Parameters
    ----------
    path
        The scenario file to create (parent folders are created).
    name
        Scenario name; ``None`` derives it from the file name.
    map_source
        Catalogue name, map file, ``place:NAME`` or ``bbox:W,S,E,N``. A map file given relative to
        the current folder is written relative to the scenario's folder, where ``load_scenario``
        looks first.
    overwrite
        Replace an existing file; otherwise an existing file is an error.
    check_map
        Check that the map source exists (a catalogue name, a file; no reading, no download).

    Raises
    ------
    TwinError
        The file exists (and not ``overwrite``), is a folder, the name is invalid or the map is unknown.
    """
    p = Path(path)
    if p.is_dir():
        raise TwinError(f"{p}: is a folder; give the scenario file to create, e.g. {p / 'scenario.yaml'}")
    if p.exists() and not overwrite:
        raise TwinError(f"{p}: exists; not overwriting it (use --force to replace it)")
    if check_map:
        from twin.maps import resolve_source

        resolve_source(map_source)  # MapError (a TwinError) naming the catalogue and search path
    src = map_source
    local = Path(map_source)
    if not map_source.startswith(("place:", "bbox:")) and local.is_file() and not local.is_absolute():
        parent = p.resolve().parent
        if not (parent / local).is_file():  # relative to the scenario's folder, where it is looked up first
            try:
                src = Path(os.path.relpath(local.resolve(), parent)).as_posix()
            except ValueError:  # another drive (Windows)
                src = str(local.resolve())
    try:
        text = starter_yaml(scenario_name_from_path(p) if name is None else name, src)
    except ScenarioError as exc:  # name the file being created
        raise ScenarioError(p, exc.problems) from None
    from twin._errors import OutputError
    from twin._fs import write_output

    try:  # atomic: a full disk never leaves a truncated scenario; never replaces a file without --force
        write_output(p, text, what="scenario", replace=overwrite)
    except OutputError as exc:
        if "exists; not overwriting" in str(exc):
            raise OutputError(f"{p}: exists; not overwriting it (use --force to replace it)") from None
        raise
    return p
