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
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

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
    """The synthetic residents."""

    residents: int = Field(3000, ge=1, le=10_000_000, description="Number of residents (one car commuter each).")
    placement: Literal["buildings", "uniform"] = Field(
        "buildings",
        description="Homes/workplaces on network nodes weighted by the OSM buildings snapped to them "
        "('buildings', falling back to uniform when the map has none) or uniformly ('uniform').",
    )


class DemandConfig(_Strict):
    """Daily activity chain home → work → home."""

    morning_departure: TimeDistribution = Field(
        default_factory=lambda: TimeDistribution(kind="normal", mean_s=8 * 3600, std_s=3600, min_s=5 * 3600, max_s=11 * 3600),
        description="When residents leave home.",
    )
    work_duration: TimeDistribution = Field(
        default_factory=lambda: TimeDistribution(kind="normal", mean_s=8.5 * 3600, std_s=3600, min_s=4 * 3600, max_s=12 * 3600),
        description="Time spent at work; the return trip departs at arrival + duration.",
    )


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


class Scenario(_Strict):
    """A citytwin scenario: one synthetic population on one road network, simulated for a day."""

    name: str = Field("scenario", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="Run name (letters, digits, '_', '-', '.'); the default output folder is runs/NAME.")
    description: str = Field("", description="Free text.")
    seed: int = Field(42, ge=0, description="Root seed: same scenario + seed gives identical outputs.")
    map: MapConfig = Field(default_factory=MapConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _durations(self) -> Scenario:
        if self.demand.work_duration.min_s < self.simulation.record_interval_s:
            raise ValueError(
                f"demand.work_duration.min_s ({self.demand.work_duration.min_s:g}) must be >= "
                f"simulation.record_interval_s ({self.simulation.record_interval_s:g})"
            )
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
            lines.extend([f"## `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
                          "| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for name, sub in subs:
            walk(sub, f"{prefix}{name}.")

    walk(Scenario, "")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(scenario_reference_markdown())
