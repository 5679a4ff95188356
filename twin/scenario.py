"""Scenario files: typed, validated, documented.

A scenario is a YAML file validated by the pydantic models below (unknown keys are rejected,
``extra="forbid"``; every field has a default documented in the schema, see ``twin schema``).
Times accept seconds (``28800``) or clock strings (``"08:00"``, ``"07:30:15"``, ``"1:00:00"`` for
durations). :func:`load_scenario` turns every problem into one :class:`~twin._errors.ScenarioError`
line naming the file, the field and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin._errors import MapError, ScenarioError

__all__ = [
    "Scenario",
    "MapConfig",
    "PopulationConfig",
    "DemandConfig",
    "SimulationConfig",
    "OutputConfig",
    "TimeDistribution",
    "load_scenario",
    "parse_time_s",
    "scenario_schema",
    "dump_scenario",
]

_CLOCK = re.compile(r"^\s*(\d{1,3}):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*$")


def parse_time_s(value: Any) -> Any:
    """``"08:30"`` → 30600.0; numbers pass through; anything else is left for pydantic to reject."""
    if isinstance(value, str):
        m = _CLOCK.match(value)
        if m:
            h, mnt, sec = m.groups()
            return int(h) * 3600.0 + int(mnt) * 60.0 + (float(sec) if sec else 0.0)
    return value


Seconds = Annotated[float, BeforeValidator(parse_time_s)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class TimeDistribution(_Strict):
    """A distribution of times of day or durations, in seconds.

    ``normal``: ``mean_s`` and ``std_s``, truncated to ``[min_s, max_s]`` (inverse-CDF draws, no
    pile-up at the bounds); ``uniform``: between ``min_s`` and ``max_s``; ``fixed``: always ``mean_s``.
    """

    kind: Literal["normal", "uniform", "fixed"] = Field("normal", description="Distribution family.")
    mean_s: Seconds = Field(8 * 3600.0, ge=0, description="Mean (normal) or value (fixed), seconds or 'HH:MM'.")
    std_s: Seconds = Field(3600.0, ge=0, description="Standard deviation (normal), seconds.")
    min_s: Seconds = Field(0.0, ge=0, description="Lower bound, seconds or 'HH:MM'.")
    max_s: Seconds = Field(24 * 3600.0, ge=0, description="Upper bound, seconds or 'HH:MM'.")

    @model_validator(mode="after")
    def _bounds(self) -> TimeDistribution:
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s:g}) must be >= min_s ({self.min_s:g})")
        if self.kind != "uniform" and not (self.min_s <= self.mean_s <= self.max_s):
            raise ValueError(f"mean_s ({self.mean_s:g}) must lie in [min_s, max_s] = [{self.min_s:g}, {self.max_s:g}]")
        return self


class MapConfig(_Strict):
    """Which road network the city lives on."""

    source: str = Field(
        "helsinki",
        description="Catalogue name (see `twin maps list`), a map file (.osm, .osm.bz2, .osm.gz, .osm.pbf, "
        ".graphml; relative paths are looked up next to the scenario, in maps/ and TWIN_MAPS_PATH), "
        "'place:NAME' or 'bbox:W,S,E,N' (downloaded when online).",
    )
    network_type: Literal["drive", "walk", "bike", "all"] = Field(
        "drive", description="osmnx network filter; cars need 'drive'."
    )
    min_link_length_m: float = Field(
        5.0, gt=0, le=100, description="Shorter links (junction stubs left by simplification) get this length."
    )


class PopulationConfig(_Strict):
    """The synthetic population: households, residents and their attributes."""

    residents: int = Field(3000, ge=1, le=10_000_000, description="Number of residents.")
    placement: Literal["buildings", "uniform"] = Field(
        "buildings",
        description="Homes, workplaces, schools and shops on network nodes weighted by the OSM buildings "
        "snapped to them ('buildings', falling back to uniform when the map has none of a kind) or "
        "uniformly ('uniform').",
    )
    grid: str | None = Field(
        None,
        description="Optional population grid (GeoPackage/GeoJSON of polygons with a population column): "
        "homes are distributed over cells in proportion to their population, within a cell by buildings.",
    )
    grid_population_column: str = Field("population", description="Column of `grid` holding people per cell.")
    household_size_mean: float = Field(2.1, ge=1, le=10, description="Mean household size (1 + Poisson).")
    child_share: float = Field(0.15, ge=0, le=1, description="Share of residents under 18 (never the first of a household).")
    senior_share: float = Field(0.2, ge=0, le=1, description="Share of residents 65 or older.")
    employment_rate: float = Field(0.75, ge=0, le=1, description="Share of adults (18-64) with a job.")
    senior_employment_rate: float = Field(0.1, ge=0, le=1, description="Share of seniors with a job.")
    adult_student_rate: float = Field(0.08, ge=0, le=1, description="Share of adults without a job who study.")
    car_ownership: float = Field(0.6, ge=0, le=1, description="Share of households owning a car (adults of those may drive).")
    mesa_agents: Literal["auto", "all", "lazy"] = Field(
        "auto", description="Create a Mesa agent per resident ('all'), on first access ('lazy'), "
        "or 'all' up to 200,000 residents ('auto')."
    )

    @model_validator(mode="after")
    def _shares(self) -> PopulationConfig:
        if self.child_share + self.senior_share > 1:
            raise ValueError("child_share + senior_share must be <= 1")
        return self


class ActivityConfig(_Strict):
    """One activity type: how long it lasts and when it is open."""

    duration: TimeDistribution
    opens_s: Seconds = Field(0.0, ge=0, description="Opening time ('HH:MM'); arrivals before wait for it.")
    closes_s: Seconds = Field(48 * 3600.0, ge=0, description="Closing time; the activity ends at closing at the latest.")


def _dist(mean: float, std: float, lo: float, hi: float, kind: str = "normal") -> TimeDistribution:
    return TimeDistribution(kind=kind, mean_s=mean, std_s=std, min_s=lo, max_s=hi)


class DemandConfig(_Strict):
    """Daily activity chains: home-work-home, home-school-home, with shopping and leisure stops."""

    work_departure: TimeDistribution = Field(
        default_factory=lambda: _dist(8 * 3600, 3600, 5 * 3600, 11 * 3600),
        description="When workers leave home.",
    )
    school_departure: TimeDistribution = Field(
        default_factory=lambda: _dist(7.75 * 3600, 900, 7 * 3600, 9 * 3600),
        description="When pupils and students leave home.",
    )
    errand_departure: TimeDistribution = Field(
        default_factory=lambda: _dist(0, 0, 9 * 3600, 16 * 3600, kind="uniform"),
        description="When residents without work or school leave home for an errand.",
    )
    work: ActivityConfig = Field(default_factory=lambda: ActivityConfig(duration=_dist(8.5 * 3600, 3600, 4 * 3600, 11 * 3600)))
    school: ActivityConfig = Field(default_factory=lambda: ActivityConfig(
        duration=_dist(6 * 3600, 1800, 4 * 3600, 8 * 3600), opens_s=7 * 3600, closes_s=17 * 3600))
    shop: ActivityConfig = Field(default_factory=lambda: ActivityConfig(
        duration=_dist(1800, 900, 600, 5400), opens_s=8 * 3600, closes_s=21 * 3600))
    leisure: ActivityConfig = Field(default_factory=lambda: ActivityConfig(
        duration=_dist(5400, 1800, 1800, 4 * 3600), opens_s=10 * 3600, closes_s=23 * 3600))
    home_before_leisure: TimeDistribution = Field(
        default_factory=lambda: _dist(5400, 1800, 1800, 4 * 3600),
        description="Time at home before an evening leisure tour.",
    )
    shop_after_work: float = Field(0.25, ge=0, le=1, description="Probability that a worker shops on the way home.")
    errand_share: float = Field(0.6, ge=0, le=1, description="Probability that a resident without work or school goes out (shop 60%, leisure 40%).")
    evening_leisure: float = Field(0.2, ge=0, le=1, description="Probability of an evening leisure tour after returning home.")


class ModeConfig(_Strict):
    """Modes and the multinomial logit mode choice (per home-based tour)."""

    available: list[str] = Field(
        default_factory=lambda: ["car", "walk", "bike"], min_length=1,
        description="Modes residents may use (car only for adults of car-owning households): car, walk, bike "
        "and plug-in modes such as taxi (see docs/modes.md).",
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options of the plug-in modes in `available`, by mode name (e.g. taxi: {wait_s: 240}); "
        "each mode validates its own (docs/modes.md).",
    )
    walk_speed_mps: float = Field(1.33, gt=0, le=3, description="Walking speed on the walk network.")
    bike_speed_mps: float = Field(4.2, gt=0, le=12, description="Cycling speed on the bike network.")
    asc_car: float = Field(0.0, description="Alternative-specific constant of car.")
    asc_walk: float = Field(0.0, description="Alternative-specific constant of walk.")
    asc_bike: float = Field(-1.0, description="Alternative-specific constant of bike.")
    beta_time_per_h: float = Field(-6.0, lt=0, description="Utility per hour of travel time.")
    beta_cost_per_money: float = Field(-0.5, lt=0, description="Utility per unit of money (value of time = beta_time/beta_cost per hour).")
    car_cost_per_km: float = Field(0.2, ge=0, description="Money cost of driving per km (fuel, wear).")
    car_parking_cost: float = Field(0.0, ge=0, description="Money cost of parking per car tour.")

    @field_validator("available")
    @classmethod
    def _known_modes(cls, available: list[str]) -> list[str]:
        from twin.domains.mobility.modes import BUILTIN_MODES, registered_modes

        known = list(BUILTIN_MODES) + registered_modes()
        for i, name in enumerate(available):
            if name not in known:
                raise ValueError(f"unknown mode {name!r} at position {i} (allowed: {', '.join(known)})")
            if name in available[:i]:
                raise ValueError(f"mode {name!r} listed twice")
        return available

    @field_validator("plugins")
    @classmethod
    def _plugin_options(cls, plugins: dict[str, dict[str, Any]], info: ValidationInfo) -> dict[str, dict[str, Any]]:
        from twin.domains.mobility.modes import BUILTIN_MODES, get_mode

        available = info.data.get("available") or []
        for name, opts in plugins.items():
            if name not in available or name in BUILTIN_MODES:
                listed = ", ".join(n for n in available if n not in BUILTIN_MODES) or "none"
                raise ValueError(f"{name}: not a plug-in mode in modes.available (there: {listed})")
            options = get_mode(name).Options
            try:
                options.model_validate(opts)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(x) for x in err["loc"])
                raise ValueError(f"{name}.{loc}: {err['msg']} (allowed keys: {', '.join(options.model_fields)})") from None
        return plugins

    @property
    def value_of_time_per_h(self) -> float:
        """Money per hour that one hour of travel is worth (beta_time / beta_cost)."""
        return self.beta_time_per_h / self.beta_cost_per_money


class ReplanningConfig(_Strict):
    """Iterations of simulate → score → replan towards a dynamic user equilibrium."""

    iterations: int = Field(1, ge=1, le=1000, description="Simulated days; 1 = no replanning (free-flow routes).")
    route_share: float | Literal["msa"] = Field(
        "msa", description="Share of car trips re-routed on the last day's travel times each iteration; "
        "'msa' = 1/(k+1) in iteration k (method of successive averages)."
    )
    mode_share: float = Field(0.1, ge=0, le=1, description="Share of tours whose mode is re-chosen each iteration.")
    cost_bin_s: float = Field(900.0, ge=60, le=4 * 3600, description="Time bins of experienced link travel times.")
    gap_threshold: float = Field(0.0, ge=0, description="Stop early once the relative gap is below this (0: run all iterations).")

class LinkChangePolicy(_Strict):
    """Change links during a time window: close them, or scale capacity and speed (a bridge closed,
    a lane removed, a temporary speed limit)."""

    type: Literal["link_change"]
    name: str = Field("link_change", description="Label in reports.")
    osm_way_ids: list[int] = Field(default_factory=list, description="Select the links of these OSM ways.")
    links: list[tuple[int, int]] = Field(default_factory=list, description="Select links by [from, to] OSM node ids.")
    bbox: tuple[float, float, float, float] | None = Field(None, description="Select links with both ends in [W, S, E, N].")
    from_s: Seconds = Field(0.0, ge=0, description="Start of the window ('HH:MM').")
    to_s: Seconds = Field(48 * 3600.0, ge=0, description="End of the window ('HH:MM').")
    closed: bool = Field(False, description="Closed links are avoided by routing and let (almost) nobody through.")
    capacity_factor: float = Field(1.0, gt=0, le=10, description="Multiplies flow capacity.")
    speed_factor: float = Field(1.0, gt=0, le=10, description="Multiplies free-flow speed.")

    @model_validator(mode="after")
    def _select(self) -> LinkChangePolicy:
        if not (self.osm_way_ids or self.links or self.bbox):
            raise ValueError("select links with osm_way_ids, links or bbox")
        if self.to_s <= self.from_s:
            raise ValueError("to_s must be > from_s")
        return self


class RoadPricingPolicy(_Strict):
    """Road pricing during a time window: a cordon charge for entering an area, a per-km charge
    inside it, or a charge per passage of given links. Charges enter the generalized cost of route
    and mode choice through the value of time."""

    type: Literal["road_pricing"]
    name: str = Field("road_pricing", description="Label in reports.")
    kind: Literal["cordon", "distance", "link"] = Field("cordon", description="How the charge is levied.")
    bbox: tuple[float, float, float, float] | None = Field(None, description="The priced area [W, S, E, N] (cordon, distance).")
    osm_way_ids: list[int] = Field(default_factory=list, description="Priced ways (kind link).")
    price: float = Field(2.0, ge=0, description="Money per entry (cordon), per km (distance) or per passage (link).")
    from_s: Seconds = Field(7 * 3600.0, ge=0, description="Start of the charging window ('HH:MM').")
    to_s: Seconds = Field(19 * 3600.0, ge=0, description="End of the charging window ('HH:MM').")

    @model_validator(mode="after")
    def _select(self) -> RoadPricingPolicy:
        if self.kind in ("cordon", "distance") and self.bbox is None:
            raise ValueError(f"kind {self.kind} needs a bbox [W, S, E, N]")
        if self.kind == "link" and not self.osm_way_ids:
            raise ValueError("kind link needs osm_way_ids")
        if self.to_s <= self.from_s:
            raise ValueError("to_s must be > from_s")
        return self


Policy = Annotated[LinkChangePolicy | RoadPricingPolicy, Field(discriminator="type")]


class SimulationConfig(_Strict):
    """The queue simulation (see docs/concepts.md)."""

    start_s: Seconds = Field(0.0, ge=0, description="Simulation start (seconds after midnight or 'HH:MM').")
    end_s: Seconds = Field(30 * 3600.0, gt=0, description="Hard end; trips not arrived by then count as incomplete.")
    dt_s: float = Field(1.0, gt=0, le=60, description="Time step of the queue kernel, seconds.")
    record_interval_s: float = Field(
        300.0, gt=0, le=3600, description="Mesa model step: demand, move, record every this many seconds."
    )
    flow_capacity_factor: float = Field(
        1.0, gt=0, le=100, description="Scales link flow capacities (use the sample share for a sampled population)."
    )
    storage_capacity_factor: float = Field(
        1.0, gt=0, le=100, description="Scales link storage capacities (spillback)."
    )
    stuck_action: Literal["force", "remove"] = Field(
        "force", description="What happens to a vehicle stuck for stuck_time_s: moved on ('force') or "
        "removed from the network and its trip counted as incomplete ('remove')."
    )
    stuck_time_s: float = Field(
        300.0, gt=0,
        description="A vehicle blocked this long by a full downstream link is moved on anyway (gridlock "
        "breaker, as MATSim's stuckTime); counted in the KPIs. Use a large value to disable.",
    )
    backend: Literal["numba", "python"] = Field("numba", description="Kernel backend ('python' is for debugging).")

    @model_validator(mode="after")
    def _window(self) -> SimulationConfig:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s:g}) must be > start_s ({self.start_s:g})")
        return self


class OutputConfig(_Strict):
    """What a run writes besides kpis.json, trips.parquet and the resolved scenario."""

    links: bool = Field(True, description="Write links.parquet (hourly volume and mean speed per link).")
    timeseries: bool = Field(True, description="Write timeseries.parquet (Mesa DataCollector model variables).")
    events: bool = Field(True, description="Write events.parquet (depart, enter/leave link, arrive) of the last iteration.")
    geopackage: bool = Field(True, description="Write links.gpkg (daily link results with geometry) for GIS tools.")
    report: bool = Field(True, description="Write report.html: a self-contained page with KPIs, maps and charts.")


class Scenario(_Strict):
    """A citytwin scenario: one synthetic population on one road network, simulated for a day."""

    name: str = Field("scenario", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="Run name (letters, digits, '_', '-', '.'); the default output folder is runs/NAME.")
    description: str = Field("", description="Free text.")
    seed: int = Field(42, ge=0, description="Root seed: same scenario + seed gives identical outputs.")
    map: MapConfig = Field(default_factory=MapConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    modes: ModeConfig = Field(default_factory=ModeConfig)
    replanning: ReplanningConfig = Field(default_factory=ReplanningConfig)
    policies: list[Policy] = Field(default_factory=list, description="Mobility policies (see docs/policies.md).")
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _durations(self) -> Scenario:
        step = self.simulation.record_interval_s
        for name in ("work", "school", "shop", "leisure"):
            d = getattr(self.demand, name).duration
            if d.min_s < step:
                raise ValueError(
                    f"demand.{name}.duration.min_s ({d.min_s:g}) must be >= simulation.record_interval_s ({step:g})"
                )
        if self.demand.home_before_leisure.min_s < step:
            raise ValueError(f"demand.home_before_leisure.min_s must be >= simulation.record_interval_s ({step:g})")
        return self


# ----------------------------------------------------------------------------- loading

def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the model at ``loc`` (the parent of an unknown key)."""
    cur: Any = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        f = cur.model_fields.get(part)
        if f is None:
            return None
        cur = f.annotation
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return list(cur.model_fields)
    return None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(Scenario, loc[:-1])
            msg = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            msg = "required"
        else:
            msg = err["msg"]
            if err["type"].endswith("_type") or err["type"].endswith("_parsing"):
                msg += f" (got {err.get('input')!r})"
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
        out.append((field, msg))
    return out


def scenario_from_dict(data: Any, path: str | Path | None = None) -> Scenario:
    """Validate a mapping (parsed YAML) into a :class:`Scenario`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(path, [("", f"the top level must be a mapping of keys, got {type(data).__name__}")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(path, _problems(exc)) from None


def load_scenario(path: str | Path, *, check_map: bool = True, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario YAML file.

    Parameters
    ----------
    path
        The YAML file.
    check_map
        Also check that ``map.source`` names an existing file or catalogue entry (no reading).
        A relative map path is resolved next to the scenario file first.
    overrides
        Dotted-path values applied before validation (``{"seed": 7}``), as the CLI's ``--seed``.

    Raises
    ------
    ScenarioError
        One line naming the file, the field(s) and what is allowed.
    """
    p = Path(path)
    if not p.exists():
        raise ScenarioError(p, [("", "file not found")])
    try:
        with open(p, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(p, [("", f"not valid YAML ({where}{getattr(exc, 'problem', exc)})")]) from None
    except UnicodeDecodeError:
        raise ScenarioError(p, [("", "not a UTF-8 text file")]) from None
    if overrides:
        if data is None:
            data = {}
        if isinstance(data, dict):
            for dotted, value in overrides.items():
                cur = data
                *parents, last = dotted.split(".")
                for part in parents:
                    cur = cur.setdefault(part, {})
                cur[last] = value
    sc = scenario_from_dict(data, p)
    src = sc.map.source
    local = (p.parent / src)
    if not src.startswith(("place:", "bbox:")) and local.exists() and local.is_file():
        sc = sc.model_copy(update={"map": sc.map.model_copy(update={"source": str(local.resolve())})})
    grid = sc.population.grid
    if grid and not Path(grid).is_absolute() and (p.parent / grid).exists():
        sc = sc.model_copy(update={"population": sc.population.model_copy(update={"grid": str((p.parent / grid).resolve())})})
    if grid and not Path(sc.population.grid).exists():
        raise ScenarioError(p, [("population.grid", f"file {grid} not found (relative paths are read next to the scenario)")])
    if check_map:
        from twin.maps import resolve_source

        try:
            resolve_source(sc.map.source)
        except MapError as exc:
            raise ScenarioError(p, [("map.source", str(exc))]) from None
    return sc


def dump_scenario(sc: Scenario) -> str:
    """The fully resolved scenario as YAML (every default spelled out)."""
    return yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors: ``twin schema > scenario.schema.json``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "citytwin scenario"
    return schema


def scenario_reference_markdown() -> str:
    """A Markdown reference of every scenario field, generated from the models (docs/scenario-reference.md)."""
    lines = [
        "# Scenario reference",
        "",
        "Generated from `twin/scenario.py` by `python -m twin.scenario > docs/scenario-reference.md`",
        "(a test checks it is up to date). Unknown keys are rejected. Times (`*_s`) accept seconds or",
        "`\"HH:MM[:SS]\"` strings. `twin schema` prints the same as JSON Schema for editors.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        rows = []
        subs = []
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                subs.append((name, ann))
                continue
            default = f.get_default(call_default_factory=True)
            typ = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
            if str(ann).startswith("typing.Literal"):
                typ = " \\| ".join(f"`{a}`" for a in ann.__args__)
            bounds = []
            for m in f.metadata:
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    v = getattr(m, attr, None)
                    if v is not None:
                        bounds.append(f"{sym} {v:g}" if isinstance(v, float | int) else f"{sym} {v}")
            desc = (f.description or "").replace("|", "\\|")
            if bounds:
                desc += f" ({', '.join(bounds)})"
            rows.append(f"| `{prefix}{name}` | {typ} | `{default!r}` | {desc} |")
        if rows:
            title = prefix.rstrip(".") or "top level"
            if prefix == "policies[].":
                title = f"policies[] with type: {model.model_fields['type'].annotation.__args__[0]}"
            lines.extend([f"## `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
                          "| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for name, sub in subs:
            walk(sub, f"{prefix}{name}.")

    walk(Scenario, "")
    lines.extend(["## Policies", "", "Entries of `policies:` (a list), chosen by their `type`.", ""])
    for cls in (LinkChangePolicy, RoadPricingPolicy):
        walk(cls, "policies[].")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(scenario_reference_markdown())
