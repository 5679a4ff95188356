"""Scenario files: typed, validated, documented.

A scenario is a YAML file validated by the pydantic models below: one strict validator for
scenarios and experiments (:mod:`twin.sweep` uses the same models and messages).

* Unknown keys are rejected (``extra="forbid"``), with the allowed keys in the message.
* Types are strict: a boolean is not a number, a string is not a number, a float is not an integer;
  NaN and infinity are refused in every float field; shares lie in [0, 1]; integers fit their dtype.
* Times (``*_s``) accept seconds (``28800``) or clock strings ``H:MM``, ``HH:MM``, ``HH:MM:SS`` (minutes
  and seconds below 60; ``"1:00:00"`` for durations), quoted or not (:mod:`twin._yaml` keeps unquoted
  ``7:00`` a clock time instead of YAML 1.1's base-60 integer 420). Every time is at most
  :data:`MAX_TIME_S` (a simulation spans at most :data:`MAX_DAYS` days). Resolved scenarios write times
  back as clock strings.
* A partial nested section keeps the real defaults of the fields it does not set
  (``demand: {shop: {duration: {std_s: 600}}}`` keeps the shop's opening hours and mean visit).
* A scenario whose estimated memory exceeds this machine's is refused before anything is allocated
  (:func:`estimate_memory_bytes`).

:func:`load_scenario` turns every problem into one :class:`~twin._errors.ScenarioError` line naming
the file, the field and what is allowed.
"""

from __future__ import annotations

import os
import re
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin._errors import MapError, ScenarioError
from twin._yaml import load_yaml

if TYPE_CHECKING:  # pragma: no cover
    from pydantic_core import ErrorDetails

__all__ = [
    "Scenario",
    "Section",
    "TimelineEvent",
    "Seconds",
    "Share",
    "scenario_class",
    "timeline_event_types",
    "MapConfig",
    "PopulationConfig",
    "DemandConfig",
    "SimulationConfig",
    "OutputConfig",
    "TimeDistribution",
    "load_scenario",
    "parse_time_s",
    "format_clock",
    "scenario_schema",
    "dump_scenario",
    "estimate_memory_bytes",
    "validation_problems",
    "MAX_DAYS",
    "MAX_TIME_S",
]

#: Longest simulated span, days: every time field is at most MAX_TIME_S.
MAX_DAYS = 7
MAX_TIME_S = MAX_DAYS * 24 * 3600.0
#: Largest OSM id (they are stored as int64).
INT64_MAX = 2**63 - 1

#: Run and experiment names: letters, digits, '_', '-', '.', not only dots (a name is a folder name).
NAME_PATTERN = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$"
CLOCK_PATTERN = r"^\s*\d{1,3}:[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?\s*$"
_CLOCK = re.compile(r"^\s*(\d{1,3}):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*$")


def parse_time_s(value: Any) -> Any:
    """``"08:30"`` → 30600.0 (also ``"7:00"``, ``"07:30:15"``, ``"1:00:00.5"``); numbers pass through.

    Raises ``ValueError`` for a string that is not a clock time or has minutes or seconds of 60 or
    more; anything else (booleans, lists) is left for pydantic to reject.
    """
    if isinstance(value, str):
        m = _CLOCK.match(value)
        if not m:
            raise ValueError(f"not a time: {_echo(value)} (allowed: seconds, or 'HH:MM' / 'HH:MM:SS')")
        h, mnt, sec = m.groups()
        if int(mnt) >= 60 or (sec is not None and Decimal(sec) >= 60):
            raise ValueError(f"not a clock time: {_echo(value)} (minutes and seconds must be below 60)")
        # exact decimal arithmetic: format_clock(x) parses back to exactly x
        return float(Decimal(h) * 3600 + Decimal(mnt) * 60 + (Decimal(sec) if sec else 0))
    return value


_T = TypeVar("_T")


def format_clock(value: _T) -> str | _T:
    """30600.0 → ``"08:30"``, 30615.0 → ``"08:30:15"``, 0.5 → ``"00:00:00.5"`` (parses back exactly)."""
    if not isinstance(value, float | int) or value != value or value in (float("inf"), float("-inf")) or value < 0:
        return value
    d = Decimal(repr(float(value)))
    h, rest = divmod(d, 3600)
    m, sec = divmod(rest, 60)
    out = f"{int(h):02d}:{int(m):02d}"
    if sec:
        whole = int(sec)
        frac = sec - whole
        out += f":{whole:02d}" + (str(frac.normalize())[1:] if frac else "")
    return out


def _echo(value: Any, limit: int = 60) -> str:
    """A user value for a message: repr, capped (alias bombs and long strings never flood the line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


Seconds = Annotated[
    float,
    BeforeValidator(parse_time_s,
                    json_schema_input_type=float | Annotated[str, StringConstraints(pattern=CLOCK_PATTERN)]),
    PlainSerializer(format_clock, when_used="json"),
    Field(le=MAX_TIME_S),
]
Share = Annotated[float, Field(ge=0, le=1)]
OsmId = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
Bbox = Annotated[tuple[float, float, float, float], BeforeValidator(_as_tuple)]


def _deep_merge(default: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = dict(default)
    for k, v in given.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class _Strict(BaseModel):
    """Base of every scenario section: unknown keys rejected, strict types, finite floats, and a
    partial nested section filled from the parent's real default (not the section class's own)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        for name, f in cls.model_fields.items():
            given = data.get(name)
            if not isinstance(given, dict) or f.default_factory is None:
                continue
            default = f.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                out = dict(data) if out is None else out
                out[name] = _deep_merge(default.model_dump(), given)
        return data if out is None else out


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

    residents: int = Field(3000, ge=1, le=10_000_000, description="Number of residents simulated.")
    sample_share: float = Field(
        1.0, gt=0, le=1,
        description="Share of the real population the residents are a sample of (MATSim's convention): 0.1 = "
        "each resident stands for 10 people. Link flow and storage capacities are scaled by it, and the "
        "extensive KPIs (vkt_km, vht_h, delay_total_veh_h, tolls_paid) are reported for the full population "
        "(residents / sample_share); shares, means and counts of trips stay those of the sample.")
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
    child_share: Share = Field(0.15, description="Share of residents under 18 (never the first of a household).")
    senior_share: Share = Field(0.2, description="Share of residents 65 or older.")
    employment_rate: Share = Field(0.75, description="Share of adults (18-64) with a job.")
    senior_employment_rate: Share = Field(0.1, description="Share of seniors with a job.")
    adult_student_rate: Share = Field(0.08, description="Share of adults without a job who study.")
    car_ownership: Share = Field(0.6, description="Share of households owning a car (adults of those may drive).")
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
    closes_s: Seconds = Field(48 * 3600.0, ge=0,
                              description="Closing time; the activity ends at closing at the latest.")

    @model_validator(mode="after")
    def _hours(self) -> ActivityConfig:
        if self.closes_s <= self.opens_s:
            raise ValueError(f"closes_s ({format_clock(self.closes_s)}) must be after opens_s "
                             f"({format_clock(self.opens_s)})")
        return self


def _dist(mean: float, std: float, lo: float, hi: float,
          kind: Literal["normal", "uniform", "fixed"] = "normal") -> TimeDistribution:
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
    work: ActivityConfig = Field(default_factory=lambda: ActivityConfig(
        duration=_dist(8.5 * 3600, 3600, 4 * 3600, 11 * 3600)))
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
    shop_after_work: Share = Field(0.25, description="Probability that a worker shops on the way home.")
    errand_share: Share = Field(
        0.6, description="Probability that a resident without work or school goes out (shop 60%, leisure 40%).")
    evening_leisure: Share = Field(0.2, description="Probability of an evening leisure tour after returning home.")


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
    asc_car: float = Field(0.0, ge=-50, le=50, description="Alternative-specific constant of car.")
    asc_walk: float = Field(0.0, ge=-50, le=50, description="Alternative-specific constant of walk.")
    asc_bike: float = Field(-1.0, ge=-50, le=50, description="Alternative-specific constant of bike.")
    beta_time_per_h: float = Field(-6.0, lt=0, description="Utility per hour of travel time.")
    beta_cost_per_money: float = Field(
        -0.5, lt=0, description="Utility per unit of money (value of time = beta_time/beta_cost per hour).")
    car_cost_per_km: float = Field(0.2, ge=0, le=1e6, description="Money cost of driving per km (fuel, wear).")
    car_parking_cost: float = Field(0.0, ge=0, le=1e6, description="Money cost of parking per car tour.")
    target_shares: dict[str, Share] = Field(
        default_factory=dict,
        description="Observed shares of trips by mode (e.g. from a travel survey) that `twin calibrate` fits the "
        "alternative-specific constants to; not used by `twin run`.")

    @field_validator("available")
    @classmethod
    def _known_modes(cls, available: list[str]) -> list[str]:
        from twin.registry import MODES

        known = ["car", "walk", "bike", *MODES.names()]
        for i, name in enumerate(available):
            if name not in known:
                raise ValueError(f"unknown mode {name!r} at position {i} (allowed: {', '.join(known)})")
            if name in available[:i]:
                raise ValueError(f"mode {name!r} listed twice")
        return available

    @field_validator("plugins")
    @classmethod
    def _plugin_options(cls, plugins: dict[str, dict[str, Any]], info: ValidationInfo) -> dict[str, dict[str, Any]]:
        from twin.registry import MODES

        builtin = ("car", "walk", "bike")
        available = info.data.get("available") or []
        for name, opts in plugins.items():
            if name not in available or name in builtin:
                listed = ", ".join(n for n in available if n not in builtin) or "none"
                raise ValueError(f"{name}: not a plug-in mode in modes.available (there: {listed})")
            options = MODES.get(name).Options
            try:
                options.model_validate(opts)
            except ValidationError as e:
                loc, msg = validation_problems(e, options)[0]
                if msg.startswith("unknown key"):
                    msg = f"unknown key; allowed keys: {', '.join(options.model_fields)}"
                raise ValueError(f"{name}.{loc}: {msg}") from None
        return plugins

    @property
    def value_of_time_per_h(self) -> float:
        """Money per hour that one hour of travel is worth (beta_time / beta_cost)."""
        return self.beta_time_per_h / self.beta_cost_per_money


class ReplanningConfig(_Strict):
    """Iterations of simulate → score → replan towards a dynamic user equilibrium."""

    iterations: int = Field(1, ge=1, le=1000, description="Simulated days; 1 = no replanning (free-flow routes).")
    route_share: Share | Literal["msa"] = Field(
        "msa", description="Share (0 to 1) of car trips re-routed on the last day's travel times each iteration; "
        "'msa' = 1/(k+1) in iteration k (method of successive averages)."
    )
    mode_share: Share = Field(0.1, description="Share of tours whose mode is re-chosen each iteration.")
    cost_bin_s: float = Field(900.0, ge=60, le=4 * 3600, description="Time bins of experienced link travel times.")
    gap_threshold: float = Field(
        0.0, ge=0, le=1e6, description="Stop early once the relative gap is below this (0: run all iterations).")

class LinkChangePolicy(_Strict):
    """Change links during a time window: close them, or scale capacity and speed (a bridge closed,
    a lane removed, a temporary speed limit)."""

    type: Literal["link_change"]
    name: str = Field("link_change", description="Label in reports.")
    osm_way_ids: list[OsmId] = Field(default_factory=list, description="Select the links of these OSM ways.")
    links: list[Annotated[tuple[OsmId, OsmId], BeforeValidator(_as_tuple)]] = Field(
        default_factory=list, description="Select links by [from, to] OSM node ids.")
    bbox: Bbox | None = Field(None, description="Select links with both ends in [W, S, E, N] (degrees).")
    from_s: Seconds = Field(0.0, ge=0, description="Start of the window ('HH:MM').")
    to_s: Seconds = Field(48 * 3600.0, ge=0, description="End of the window ('HH:MM').")
    closed: bool = Field(False, description="Closed links are avoided by routing and let (almost) nobody through.")
    capacity_factor: float = Field(1.0, gt=0, le=10, description="Multiplies flow capacity.")
    speed_factor: float = Field(1.0, gt=0, le=10, description="Multiplies free-flow speed.")

    @model_validator(mode="after")
    def _select(self) -> LinkChangePolicy:
        if not (self.osm_way_ids or self.links or self.bbox):
            raise ValueError("select links with osm_way_ids, links or bbox")
        _check_window(self)
        return self

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, bbox: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if bbox is not None:
            _check_bbox(bbox)
        return bbox


class RoadPricingPolicy(_Strict):
    """Road pricing during a time window: a cordon charge for entering an area, a per-km charge
    inside it, or a charge per passage of given links. Charges enter the generalized cost of route
    and mode choice through the value of time."""

    type: Literal["road_pricing"]
    name: str = Field("road_pricing", description="Label in reports.")
    kind: Literal["cordon", "distance", "link"] = Field("cordon", description="How the charge is levied.")
    bbox: Bbox | None = Field(None, description="The priced area [W, S, E, N] in degrees (cordon, distance).")
    osm_way_ids: list[OsmId] = Field(default_factory=list, description="Priced ways (kind link).")
    price: float = Field(
        2.0, ge=0, le=1e6, description="Money per entry (cordon), per km (distance) or per passage (link).")
    from_s: Seconds = Field(7 * 3600.0, ge=0, description="Start of the charging window ('HH:MM').")
    to_s: Seconds = Field(19 * 3600.0, ge=0, description="End of the charging window ('HH:MM').")

    @model_validator(mode="after")
    def _select(self) -> RoadPricingPolicy:
        if self.kind in ("cordon", "distance") and self.bbox is None:
            raise ValueError(f"kind {self.kind} needs a bbox [W, S, E, N]")
        if self.kind == "link" and not self.osm_way_ids:
            raise ValueError("kind link needs osm_way_ids")
        _check_window(self)
        return self

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, bbox: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if bbox is not None:
            _check_bbox(bbox)
        return bbox


def _check_window(p: Any) -> None:
    if p.to_s <= p.from_s:
        raise ValueError(f"to_s ({format_clock(p.to_s)}) must be after from_s ({format_clock(p.from_s)})")


def _check_bbox(bbox: tuple[float, float, float, float]) -> None:
    w, so, e, n = bbox
    if not (-180 <= w < e <= 180 and -90 <= so < n <= 90):
        raise ValueError(f"{list(bbox)}: need -180 <= west < east <= 180 and -90 <= south < north <= 90 "
                         "([W, S, E, N] in degrees)")


Policy = Annotated[LinkChangePolicy | RoadPricingPolicy, Field(discriminator="type")]


class SimulationConfig(_Strict):
    """The queue simulation (see docs/concepts.md)."""

    start_s: Seconds = Field(0.0, ge=0, description="Simulation start (seconds after midnight or 'HH:MM').")
    end_s: Seconds = Field(30 * 3600.0, gt=0, description="Hard end; trips not arrived by then count as incomplete.")
    dt_s: float = Field(1.0, ge=0.1, le=60, description="Time step of the queue kernel, seconds.")
    record_interval_s: float = Field(
        300.0, ge=1, le=3600, description="Mesa model step: demand, move, record every this many seconds "
        "(at least dt_s)."
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
        300.0, gt=0, le=MAX_TIME_S,
        description="A vehicle blocked this long by a full downstream link is moved on anyway (gridlock "
        "breaker, as MATSim's stuckTime); counted in the KPIs. Use a large value to disable.",
    )
    backend: Literal["numba", "python"] = Field("numba", description="Kernel backend ('python' is for debugging).")

    @model_validator(mode="after")
    def _window(self) -> SimulationConfig:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({format_clock(self.end_s)}) must be after start_s ({format_clock(self.start_s)})")
        if self.record_interval_s < self.dt_s:
            raise ValueError(f"record_interval_s ({self.record_interval_s:g}) must be >= dt_s ({self.dt_s:g})")
        return self


class OutputConfig(_Strict):
    """What a run writes besides kpis.json, trips.parquet and the resolved scenario."""

    links: bool = Field(True, description="Write links.parquet (hourly volume and mean speed per link).")
    timeseries: bool = Field(True, description="Write timeseries.parquet (Mesa DataCollector model variables).")
    events: bool = Field(
        True, description="Write events.parquet (depart, enter/leave link, arrive) of the last iteration.")
    geopackage: bool = Field(True, description="Write links.gpkg (daily link results with geometry) for GIS tools.")
    report: bool = Field(True, description="Write report.html: a self-contained page with KPIs, maps and charts.")


class Section(_Strict):
    """Base of a domain's scenario section (``maas:``, ``energy:``, ...): unknown keys rejected, strict
    types, finite floats, clock strings for :data:`Seconds` fields; see docs/domains.md."""


class TimelineEvent(_Strict):
    """Base of a timeline event type: a subclass sets ``type: Literal["its_name"]`` and adds its fields.

    A scenario's ``timeline:`` lists events of the types the installed domains register; each goes to
    its domain's :meth:`~twin.domains.base.Domain.on_event` in the first model step whose interval
    contains ``at_s``.
    """

    type: str = Field(description="Event type (registered by a domain).")
    at_s: Seconds = Field(ge=0, description="When it happens: seconds after midnight or 'HH:MM'.")


def _no_timeline_event(value: Any) -> Any:
    raise ValueError(f"unknown type {_echo(value.get('type') if isinstance(value, dict) else value)}; no installed "
                     f"domain has timeline events (installed domains: {', '.join(_domain_names())})")


def _domain_names() -> list[str]:
    from twin.registry import DOMAINS

    return ["mobility", *DOMAINS.names()]


class Scenario(_Strict):
    """A citytwin scenario: one synthetic population on one road network, simulated for a day.

    Domains add their own sections (``maas:``, ``energy:``, ...) and timeline event types: a scenario
    is validated by :func:`scenario_class`, the subclass with the installed domains' sections.
    """

    name: str = Field("scenario", min_length=1, max_length=100, pattern=NAME_PATTERN,
                      description="Run name (letters, digits, '_', '-', '.'); the default output folder is runs/NAME.")
    description: str = Field("", description="Free text.")
    seed: int = Field(42, ge=0, le=2**128 - 1, description="Root seed (0 to 2^128-1): same scenario + seed gives "
                      "identical outputs.")
    map: MapConfig = Field(default_factory=MapConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    modes: ModeConfig = Field(default_factory=ModeConfig)
    replanning: ReplanningConfig = Field(default_factory=ReplanningConfig)
    policies: list[Policy] = Field(default_factory=list, description="Mobility policies (see docs/policies.md).")
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    timeline: list[Annotated[Any, BeforeValidator(_no_timeline_event)]] = Field(
        default_factory=list, description="Timed events of the day, validated by their domains (see docs/domains.md).")

    def section(self, name: str) -> BaseModel | None:
        """The validated section of domain ``name`` (``None`` when the scenario has none)."""
        value = getattr(self, name, None) if name not in Scenario.model_fields else None
        return value if isinstance(value, BaseModel) else None

    def __reduce__(self) -> Any:
        # the class may be a scenario_class() made in this process: rebuild it where it is unpickled
        return (_rebuild_scenario, (self.model_dump(mode="json"),))

    @model_validator(mode="after")
    def _timeline_order(self) -> Scenario:
        at = [e.at_s for e in self.timeline]
        if any(b < a for a, b in zip(at, at[1:])):
            raise ValueError("timeline: events must be listed in time order (at_s)")
        return self

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


def _rebuild_scenario(data: dict[str, Any]) -> Scenario:
    return scenario_class().model_validate(data)


_CLASS_CACHE: dict[int, type[Scenario]] = {}


def scenario_class() -> type[Scenario]:
    """:class:`Scenario` with a field per installed domain section and the domains' timeline event
    types (a discriminated union on ``type``); rebuilt when a domain is registered.

    Raises
    ------
    TypeError
        Two domains register the same timeline event type, or a section named like a core field.
    """
    from pydantic import create_model

    from twin.registry import DOMAINS

    classes = DOMAINS.classes()  # loads the entry points first
    key = DOMAINS.version
    cached = _CLASS_CACHE.get(key)
    if cached is not None:
        return cached
    fields: dict[str, Any] = {}
    events: dict[str, type[BaseModel]] = {}
    for name, cls in classes.items():
        cfg = getattr(cls, "Config", None)
        if cfg is not None:
            if name in Scenario.model_fields:
                raise TypeError(f"domain {name!r}: its section would replace the core field {name!r}")
            doc = (cls.__doc__ or "").strip().splitlines()
            fields[name] = (cfg | None, Field(None, description=f"Domain {name}: " + (doc[0] if doc else name)))
        for ev, model in getattr(cls, "timeline_events", {}).items():
            if ev in events:
                raise TypeError(f"timeline event type {ev!r} is registered by two domains")
            tag = typing.get_args(model.model_fields["type"].annotation)
            if tag != (ev,):
                raise TypeError(f"domain {name!r}: event {ev!r} must declare type: Literal[{ev!r}]")
            events[ev] = model
    if events:
        models = tuple(events.values())
        # a Union of as many models as there are event types: `X | Y` cannot be spelled for a tuple
        item: Any = models[0] if len(models) == 1 else Annotated[typing.Union[models],  # noqa: UP007
                                                                 Field(discriminator="type")]
        item = Annotated[item, BeforeValidator(_known_event_type(tuple(events)))]
        fields["timeline"] = (list[item], Field(
            default_factory=list, description="Timed events of the day, validated by their domains "
            f"(types: {', '.join(events)}; see docs/domains.md)."))
    # no domain sections or events installed: the core class itself (equal to Scenario(...) objects)
    new = Scenario if not fields else create_model("Scenario", __base__=Scenario, __module__=__name__,
                                                   __doc__=Scenario.__doc__, **fields)
    _CLASS_CACHE.clear()
    _CLASS_CACHE[key] = new
    return new


def _known_event_type(names: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        tag = value.get("type") if isinstance(value, dict) else None
        if tag not in names:
            what = "needs a `type`" if tag is None else f"unknown type {_echo(tag)}"
            raise ValueError(f"{what}; allowed: {', '.join(names)} (installed domains: {', '.join(_domain_names())})")
        return value
    return check


def timeline_event_types() -> dict[str, type[BaseModel]]:
    """Installed timeline event types: name -> model."""
    from twin.registry import DOMAINS

    out: dict[str, type[BaseModel]] = {}
    for cls in DOMAINS.classes().values():
        out.update(getattr(cls, "timeline_events", {}))
    return out


# ----------------------------------------------------------------------------- loading

def _unwrap(ann: Any) -> list[Any]:
    """The alternatives of an annotation (``X | None`` → [X], ``Annotated[X, ...]`` → [X])."""
    import typing

    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        out: list[Any] = []
        for a in typing.get_args(ann):
            out.extend(_unwrap(a))
        return out
    return [ann]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model reached by following ``loc`` (field names, list indices, union tags,
    dict keys) from ``model``; ``None`` where the path leaves the models."""
    import typing

    cur: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for c in cur:
            if isinstance(c, type) and issubclass(c, BaseModel):
                f = c.model_fields.get(str(part))
                if f is not None:
                    nxt.extend(_unwrap(f.annotation))
                elif "type" in c.model_fields and part == _tag(c):
                    nxt.append(c)  # a discriminated union's tag in the location
                continue
            origin = typing.get_origin(c)
            args = typing.get_args(c)
            if origin is list and isinstance(part, int):
                nxt.extend(_unwrap(args[0]))
            elif origin is dict and args:
                nxt.extend(_unwrap(args[1]))
        cur = [c for c in nxt if c is not type(None)]
        # a discriminated union: the next part (the tag) picks the class
        if not cur:
            return None
    models = [c for c in cur if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if len(models) == 1 else None


def _tag(cls: type[BaseModel]) -> Any:
    import typing

    args = typing.get_args(cls.model_fields["type"].annotation)
    return args[0] if args else None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the model at ``loc`` (the parent of an unknown key)."""
    m = _model_at(model, loc)
    return list(m.model_fields) if m is not None else None


def validation_problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """``(dotted field, message)`` for each error of ``exc``: unknown keys with the allowed keys,
    the expected type with the (capped) value given, units and bounds as pydantic words them."""
    out: list[tuple[str, str] | tuple[str, str, str]] = []
    union_alts: dict[str, list[ErrorDetails]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_member(p))
        if len(loc) != len(err["loc"]):  # one alternative of a union field: merged below
            key = ".".join(str(p) for p in loc)
            if key in union_alts:
                union_alts[key].append(err)
                continue
            union_alts[key] = [err]
        # drop the discriminated union's tag from the shown location: policies.0.link_change.x -> policies.0.x
        tags = ("link_change", "road_pricing", *timeline_event_types())
        shown = [p for i, p in enumerate(loc)
                 if not (i > 0 and isinstance(loc[i - 1], int) and isinstance(p, str) and p in tags)]
        field = ".".join(str(p) for p in shown)
        typ = err["type"]
        if typ == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            msg = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
            if len(loc) == 1 and issubclass(model, Scenario):
                msg += f" (installed domains: {', '.join(_domain_names())})"
        elif typ == "missing":
            msg = "required"
        elif typ == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            msg = f"unknown type {_echo(ctx.get('tag'))}; allowed: {ctx.get('expected_tags', '')}"
            if loc and loc[0] == "timeline":
                msg += f" (installed domains: {', '.join(_domain_names())})"
        elif typ == "union_tag_not_found":
            msg = "needs a `type` (allowed: link_change, road_pricing)"
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            if typ in ("finite_number",):
                msg = "must be a finite number (NaN and infinity are not allowed)"
            if typ.endswith(("_type", "_parsing")) or typ in ("literal_error", "finite_number",
                                                               "int_from_float", "bool_type"):
                msg += f" (got {_echo(err.get('input'))})"
            if typ.startswith(("greater_than", "less_than")):
                msg += f" (got {_echo(err.get('input'))})"
            if typ in ("int_type", "float_type") and isinstance(err.get("input"), bool):
                msg = f"must be a number, not a boolean (got {err['input']!r})"
        m = re.match(r"^(\w+)\.([\w.]*\w): (.*)$", msg) if field.endswith("modes.plugins") else None
        if m:  # a plug-in mode's option: its own dotted path
            field, msg = f"{field}.{m.group(1)}.{m.group(2)}", m.group(3)
        elif field.endswith("modes.plugins") and re.match(r"^\w+: ", msg):
            name, msg = msg.split(": ", 1)
            field = f"{field}.{name}"
        out.append((field, msg))
        if field in union_alts:
            out[-1] = (field, msg, field)
    # a union field: the first alternative's message, plus the literal values the others allow
    result: list[tuple[str, str]] = []
    for item in out:
        if len(item) == 3:
            f, text, key = item
            lits = [e for e in union_alts[key][1:] if e["type"] == "literal_error"]
            if lits:
                text += f", or one of {lits[0].get('ctx', {}).get('expected', '')}"
            result.append((f, text))
        else:
            result.append(item)
    return result


_UNION_LABEL = re.compile(r"^(constrained-\w+|literal\[.*\]|function-\w+\[.*\]|float|int|str|bool|none|"
                          r"(tuple|list|dict|set)\[.*\])$")


def _is_union_member(part: Any) -> bool:
    """pydantic's label of a union alternative in an error location (``constrained-float``,
    ``literal['msa']``, ``float``), as opposed to a field name or list index."""
    return isinstance(part, str) and _UNION_LABEL.match(part) is not None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return validation_problems(exc, scenario_class())


def scenario_from_dict(data: Any, path: str | Path | None = None, *, check_memory: bool = True) -> Scenario:
    """Validate a mapping (parsed YAML) into a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        One line naming ``path``, the field(s) and what is allowed; also when the scenario would need
        more memory than this machine has (``check_memory``).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(path, [("", f"the top level must be a mapping of keys, got {_type_name(data)}")])
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ScenarioError(path, [("", f"key {_echo(bad[0])} is not a name (keys are strings)")])
    try:
        cls = scenario_class()
        sc = cls.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(path, _problems(exc)[:10]) from None
    except RecursionError:
        raise ScenarioError(path, [("", "nested too deeply")]) from None
    if check_memory:
        need = estimate_memory_bytes(sc)
        have = machine_memory_bytes()
        if have and need > 0.8 * have:
            raise ScenarioError(path, [("population.residents",
                                        (f"{sc.population.residents:,} residents need about {need / 2**30:.1f} GiB, "
                                         f"more than this machine's {have / 2**30:.1f} GiB allow (at most 80% of it); "
                                         "simulate a smaller population"))])
    return sc


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__)


#: Bytes per resident of a run, measured on Baltimore (100,000 residents, a full day, every output:
#: 0.6 GB peak RSS including ~0.35 GB of imports; see benchmarks/README.md), rounded up.
_BYTES_PER_RESIDENT = 6_000
_BYTES_BASE = 400 * 2**20


def estimate_memory_bytes(sc: Scenario) -> int:
    """A rough upper estimate of the peak memory of a run of ``sc`` (bytes): a fixed part for the
    libraries and the network, plus a per-resident part (population, trips, routes, outputs)."""
    per = _BYTES_PER_RESIDENT * (1.5 if sc.output.events else 1.0)
    return int(_BYTES_BASE + sc.population.residents * per)


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine, or the cgroup limit when lower (``None`` if unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            lim = int(text)
            if total is None or lim < total:
                total = lim
    return total


def _set_override(data: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    cur: Any = data
    *parents, last = dotted.split(".")
    for i, part in enumerate(parents):
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        if not isinstance(nxt, dict):
            raise ScenarioError(path, [(".".join(parents[: i + 1]), (f"is {_type_name(nxt)}, not a section; "
                                                                    f"cannot set {dotted}"))])
        cur = nxt
    cur[last] = value


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
    data = load_yaml(p, what="scenario file")
    if overrides:
        if data is None:
            data = {}
        if isinstance(data, dict):
            for dotted, value in overrides.items():
                _set_override(data, dotted, value, p)
    sc = scenario_from_dict(data, p)
    return resolve_paths(sc, p, check_map=check_map)


def resolve_paths(sc: Scenario, path: Path, *, check_map: bool = True) -> Scenario:
    """Resolve ``map.source`` and ``population.grid`` relative to the scenario file ``path`` and check
    they exist (regular files), as ``twin run`` will read them."""
    p = path
    src = sc.map.source
    if not src.startswith(("place:", "bbox:")):
        try:
            local = p.parent / src
            if local.is_file():
                sc = sc.model_copy(update={"map": sc.map.model_copy(update={"source": str(local.resolve())})})
        except (OSError, ValueError):
            pass  # a name the OS cannot look up (too long, NUL): resolve_source reports it
    grid = sc.population.grid
    if grid:
        gp = Path(grid) if Path(grid).is_absolute() else p.parent / grid
        try:
            ok = gp.is_file()
            what = "is not a regular file" if gp.exists() else "not found"
        except (OSError, ValueError) as exc:
            ok = False
            what = "has a name the system cannot look up" + (f" ({exc.strerror})" if isinstance(exc, OSError) else "")
        if not ok:
            raise ScenarioError(p, [("population.grid", (f"file {grid} {what} (relative paths are read next to the "
                                                         "scenario; a GeoPackage or GeoJSON of polygons)"))])
        sc = sc.model_copy(update={"population": sc.population.model_copy(update={"grid": str(gp.resolve())})})
    # domain sections with files of their own (e.g. evacuation hazards) resolve them likewise
    for name in type(sc).model_fields:
        sec = sc.section(name)
        fix = getattr(sec, "resolve_paths", None)
        if sec is not None and callable(fix):
            try:
                sc = sc.model_copy(update={name: fix(p.parent)})
            except ValueError as exc:
                raise ScenarioError(p, [(name, str(exc))]) from None
    if check_map:
        from twin.maps import resolve_source

        try:
            resolve_source(sc.map.source)
        except MapError as exc:
            raise ScenarioError(p, [("map.source", str(exc))]) from None
        except OSError as exc:
            raise ScenarioError(p, [("map.source",
                                     f"cannot look up {_echo(sc.map.source)} ({exc.strerror})")]) from None
    return sc


class _Dumper(yaml.SafeDumper):
    """Clock strings always quoted, so that no YAML 1.1 reader takes them for base-60 numbers."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if _CLOCK.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return yaml.SafeDumper.represent_str(dumper, value)


_Dumper.add_representer(str, _represent_str)


def dump_scenario(sc: Scenario) -> str:
    """The fully resolved scenario as YAML (every default spelled out, times as clock strings)."""
    data = sc.model_dump(mode="json")
    for name in type(sc).model_fields:  # domain sections the scenario does not have
        if name not in Scenario.model_fields and data.get(name) is None:
            data.pop(name, None)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _time_fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    import typing

    out = []
    for name, f in model.model_fields.items():
        meta = list(f.metadata)
        if typing.get_origin(f.annotation) is typing.Annotated:
            meta += list(typing.get_args(f.annotation)[1:])
        if any(isinstance(m, BeforeValidator) and m.func is parse_time_s for m in meta):
            out.append((name, f))
    return out


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors: ``twin schema > scenario.schema.json``).

    Time fields are ``number`` (seconds, with their bounds) or a clock-time ``string`` with a pattern;
    every field as :func:`load_scenario` accepts it.
    """
    schema = scenario_class().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "citytwin scenario"
    # pydantic drops the bounds of time fields when it shows their input types: put them back on the number
    defs = schema.get("$defs", {})

    def visit(model: type[BaseModel]) -> None:
        node = schema if issubclass(model, Scenario) else defs.get(model.__name__)
        for _name, f in model.model_fields.items():
            for alt in _unwrap(f.annotation):
                if isinstance(alt, type) and issubclass(alt, BaseModel) and alt is not model:
                    visit(alt)
        if node is None:
            return
        for name, f in _time_fields(model):
            prop = node.get("properties", {}).get(name)
            if not prop:
                continue
            bounds = {}
            for m in f.metadata:
                for attr, key in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                                  ("lt", "exclusiveMaximum")):
                    v = getattr(m, attr, None)
                    if v is not None:
                        bounds[key] = v
            for alt in prop.get("anyOf", []):
                if alt.get("type") == "number":
                    alt.update(bounds)
                    alt.setdefault("maximum", MAX_TIME_S)
            if isinstance(prop.get("default"), float):
                prop["default"] = format_clock(prop["default"])

    visit(Scenario)
    return schema


def _annotation_name(ann: Any) -> str:
    """A type as the reference shows it: ``float | None``, ``list[tuple[float, float]]`` (validators left out)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _annotation_name(args[0])
    if origin is Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation_name(a) for a in args)
    if origin in (list, tuple, dict) and args:
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _annotation_name(a) for a in args)}]"
    if ann is type(None):
        return "None"
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")


def scenario_reference_markdown() -> str:
    """A Markdown reference of every scenario field, generated from the models (docs/scenario-reference.md)."""
    lines = [
        "# Scenario reference",
        "",
        "Generated from `twin/scenario.py` by `python -m twin.scenario > docs/scenario-reference.md`",
        "(a test checks it is up to date). Unknown keys are rejected; types are strict (a boolean is not",
        "a number); NaN and infinity are refused. Times (`*_s`) accept seconds or clock strings `H:MM`,",
        "`HH:MM`, `HH:MM:SS` (minutes and seconds below 60), quoted or not, and are at most",
        f"{MAX_DAYS} days ({MAX_TIME_S:.0f} s); defaults are shown as clock strings. A section you write",
        "partly keeps the defaults below for the keys you leave out. `twin schema` prints the same as",
        "JSON Schema for editors.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str, defaults: BaseModel | None = None) -> None:
        rows = []
        subs: list[tuple[str, type[BaseModel], BaseModel | None]] = []
        times = {n for n, _ in _time_fields(model)}
        for name, f in model.model_fields.items():
            ann = f.annotation
            default = getattr(defaults, name) if defaults is not None else f.get_default(call_default_factory=True)
            alts = [a for a in _unwrap(ann) if a is not type(None)]
            if len(alts) == 1 and isinstance(alts[0], type) and issubclass(alts[0], BaseModel) and ann is not alts[0]:
                subs.append((name, alts[0], alts[0]()))  # a domain's optional section: its defaults
                continue
            if name == "timeline":
                continue  # listed below, by event type
            item = typing.get_args(ann)[0] if typing.get_origin(ann) is list and typing.get_args(ann) else None
            list_of_models = name != "policies" and isinstance(item, type) and issubclass(item, BaseModel)
            if list_of_models and isinstance(item, type) and issubclass(item, BaseModel):
                subs.append((f"{name}[]", item, None))  # a list of sections: each entry's keys
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                subs.append((name, ann, default))
                continue
            if name in times and isinstance(default, float):
                default = format_clock(default)
            typ = "time" if name in times else _annotation_name(ann).replace(" | ", " \\| ")
            if str(ann).startswith("typing.Literal"):
                typ = " \\| ".join(f"`{a}`" for a in typing.get_args(ann))
            bounds = []
            for m in f.metadata:
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    v = getattr(m, attr, None)
                    if v is not None:
                        if isinstance(v, int) and v > 2**53:
                            v = f"2^{v.bit_length()} - 1" if (v + 1) & v == 0 else f"{v:.3g}"
                        bounds.append(f"{sym} {v:g}" if isinstance(v, float | int) else f"{sym} {v}")
            desc = (f.description or "").replace("|", "\\|")
            if bounds:
                desc += f" ({', '.join(bounds)})"
            shown = "required" if f.is_required() else f"`{default!r}`"
            if list_of_models and item is not None and isinstance(default, list) and default:
                shown = f"{len(default)} × `{item.__name__}` (keys below)"
            rows.append(f"| `{prefix}{name}` | {typ} | {shown} | {desc} |")
        if rows:
            title = prefix.rstrip(".") or "top level"
            if prefix in ("policies[].", "timeline[]."):
                title = f"{prefix[:-1]} with type: {typing.get_args(model.model_fields['type'].annotation)[0]}"
            lines.extend([f"## `{title}`", "", " ".join((model.__doc__ or "").strip().split("\n\n")[0].split()), "",
                          "| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for name, sub, default in subs:
            walk(sub, f"{prefix}{name}.", default)

    walk(scenario_class(), "")
    lines.extend(["## Policies", "", "Entries of `policies:` (a list), chosen by their `type`.", ""])
    for cls in (LinkChangePolicy, RoadPricingPolicy):
        walk(cls, "policies[].")
    events = timeline_event_types()
    lines.extend(["## Timeline", "", ("Entries of `timeline:` (a list in time order), chosen by their `type`; each "
                                      "is handled by the domain that registers the type (installed domains: "
                                      f"{', '.join(_domain_names())})."), ""])
    if not events:
        lines.extend(["No installed domain has timeline events.", ""])
    for ev in events.values():
        walk(ev, "timeline[].")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    # the module imported by name, not this ``__main__`` copy: domains' sections use its validators
    from twin.scenario import scenario_reference_markdown as reference

    sys.stdout.write(reference())
