"""The ``energy:`` section of a scenario: buildings' loads, rooftop PV, batteries, EV charging, feeders,
tariffs and emissions.

Only pydantic here: validating a scenario imports neither the model nor pvlib, pandapower or
demandlib (a weather file named here is checked to exist when the scenario is read, and read when
the run starts). docs/energy.md describes the model each option belongs to.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from twin.scenario import Seconds, Section, Share, TimelineEvent, _as_tuple

__all__ = ["EnergyConfig", "OccupancyConfig", "PVConfig", "BatteryConfig", "EVConfig", "FeederConfig",
           "TariffConfig", "OutageEvent", "DEFAULT_HOME_PRESENCE", "DEFAULT_WORK_PRESENCE", "STEP_S"]

#: a (lon, lat) point; YAML lists are read as tuples
LonLat = Annotated[tuple[float, float], BeforeValidator(_as_tuple)]

#: Length of the domain's step (seconds): the 15-minute interval of the BDEW profiles.
STEP_S = 900.0

#: Share of a household's members at home by hour of a weekday (00-01 h first): the shape of
#: European time-use surveys (HETUS: nearly everyone home at night, under half at midday), the
#: occupancy the H0 profile stands for.
DEFAULT_HOME_PRESENCE = (0.97, 0.97, 0.97, 0.97, 0.97, 0.96, 0.92, 0.8, 0.6, 0.5, 0.47, 0.47,
                         0.48, 0.48, 0.5, 0.55, 0.62, 0.72, 0.8, 0.85, 0.88, 0.91, 0.94, 0.96)
#: Share of a workplace's workers present by hour of a weekday: the occupancy G1 stands for.
DEFAULT_WORK_PRESENCE = (0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.08, 0.3, 0.65, 0.8, 0.82, 0.78,
                         0.72, 0.78, 0.8, 0.72, 0.55, 0.32, 0.15, 0.08, 0.05, 0.03, 0.02, 0.02)


def _iso_date(value: Any) -> Any:
    """YAML reads ``2023-06-21`` as a date; keep it as its ISO string."""
    return value.isoformat() if isinstance(value, _dt.date) else value


def _profile(value: Any) -> Any:
    """A list of numbers (a time series) as a tuple; a scalar as it is."""
    return tuple(value) if isinstance(value, list) else value


#: A flat value or a day's series: 24 hourly or 96 quarter-hourly values (from 00:00).
DaySeries = Annotated[float | tuple[float, ...], BeforeValidator(_profile)]


def _check_series(value: float | tuple[float, ...], name: str, *, lo: float | None = None) -> None:
    vals = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and len(value) not in (24, 96):
        raise ValueError(f"{name}: a series has 24 (hourly) or 96 (quarter-hourly) values, not {len(value)}")
    if lo is not None and any(v < lo for v in vals):
        raise ValueError(f"{name}: values must be >= {lo}")


class OccupancyConfig(Section):
    """How the people present modulate a building's standard load: ``load = base · (1 + effect ·
    (present − expected) / max(expected, 0.05))``, present and expected as shares of the building's
    residents (homes) or workers (workplaces)."""

    effect: float = Field(0.5, ge=0, le=5, description="Elasticity of the load with respect to occupancy (0: none; "
                                                      "1: proportional to the people present).")
    expected_home: tuple[float, ...] = Field(DEFAULT_HOME_PRESENCE,
                                             description="Share of residents at home that the H0 profile stands for, "
                                                         "24 hourly values from 00:00.")
    expected_work: tuple[float, ...] = Field(DEFAULT_WORK_PRESENCE,
                                             description="Share of workers present that the G profiles stand for, "
                                                         "24 hourly values from 00:00.")

    @field_validator("expected_home", "expected_work", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        return _profile(v)

    @field_validator("expected_home", "expected_work")
    @classmethod
    def _hours(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24 or any(not 0.0 <= x <= 1.0 for x in v):
            raise ValueError("24 hourly shares, each in [0, 1]")
        return v


class PVConfig(Section):
    """Rooftop PV (pvlib's PVWatts chain): a share of the roofs, sized by roof area."""

    adoption: Share = Field(0.3, description="Share of the buildings with a footprint that have PV (drawn per "
                                             "building).")
    kwp_per_m2: float = Field(0.15, ge=0, le=0.4, description="Module power per m² of modules (kWp/m²).")
    usable_share: Share = Field(0.5, description="Share of the roof (footprint) area carrying modules.")
    tilt_deg: float = Field(30.0, ge=0, le=90, description="Tilt of the modules from horizontal, degrees.")
    azimuth_deg: float = Field(180.0, ge=0, lt=360, description="Direction the modules face, degrees clockwise from "
                                                               "north (180: south).")
    losses_pct: float = Field(14.0, ge=0, lt=100, description="PVWatts' lumped DC system losses, %.")
    weather: str | None = Field(None, description="A TMY3 weather file (relative to the scenario); none: clear sky "
                                                  "(Ineichen).")

    def resolve_paths(self, base: Path) -> PVConfig:
        """The weather file relative to the scenario's folder ``base``, checked to be a regular file."""
        if self.weather is None:
            return self
        f = Path(self.weather) if Path(self.weather).is_absolute() else base / self.weather
        if not f.is_file():
            raise ValueError(f"pv.weather: {self.weather} not found (relative paths are read next to the scenario; "
                             "a TMY3 CSV file)")
        return self.model_copy(update={"weather": str(f.resolve())})


class BatteryConfig(Section):
    """Batteries of a share of the PV buildings, sized by the PV's kWp."""

    adoption: Share = Field(0.5, description="Share of the PV buildings with a battery (drawn per building).")
    kwh_per_kwp: float = Field(1.0, ge=0, le=20, description="Usable capacity per kWp of PV, kWh.")
    c_rate_per_h: float = Field(0.5, gt=0, le=10, description="Power rating per kWh of capacity, kW/kWh.")
    efficiency_rt: float = Field(0.9, gt=0, le=1, description="Round-trip efficiency.")
    soc_min: Share = Field(0.1, description="Lowest state of charge.")
    soc_max: Share = Field(0.9, description="Highest state of charge.")
    soc_initial: Share = Field(0.5, description="State of charge at the start of the day.")
    policy: Literal["self_consumption", "peak_shaving", "tou_arbitrage"] = Field(
        "self_consumption", description="self_consumption | peak_shaving (keep the import under a threshold) | "
                                        "tou_arbitrage (charge at low prices, discharge at high).")
    threshold_share: float = Field(0.7, gt=0, le=10, description="peak_shaving: the threshold as a share of the "
                                                                 "building's peak standard load of the day.")
    tou_low: float | None = Field(None, description="tou_arbitrage: import price at or below which to charge "
                                                    "from the grid (default: the day's lowest price).")
    tou_high: float | None = Field(None, description="tou_arbitrage: import price at or above which to discharge "
                                                     "(default: the day's highest price).")

    @model_validator(mode="after")
    def _limits(self) -> BatteryConfig:
        if not self.soc_min <= self.soc_initial <= self.soc_max:
            raise ValueError("soc_initial must lie within [soc_min, soc_max]")
        if self.tou_low is not None and self.tou_high is not None and not self.tou_low < self.tou_high:
            raise ValueError("tou_low must be below tou_high")
        return self


class EVConfig(Section):
    """Electric cars: a share of the residents who can drive; they charge what they drove at home
    (and at work) chargers while parked there."""

    share: Share = Field(0.2, description="Share of the residents who can drive whose car is electric.")
    kwh_per_km: float = Field(0.18, gt=0, le=2, description="Consumption, kWh per km driven.")
    battery_kwh: float = Field(60.0, gt=0, le=500, description="Usable battery capacity, kWh.")
    soc_initial: Share = Field(0.8, description="State of charge at the start of the day.")
    soc_target: Share = Field(0.8, description="State of charge charging stops at.")
    charger_kw: float = Field(11.0, gt=0, le=350, description="Charger power, kW.")
    work_charging: bool = Field(False, description="Also charge at the workplace when the car was driven there.")
    policy: Literal["uncontrolled", "delayed", "smart"] = Field(
        "uncontrolled", description="uncontrolled (full power on arrival) | delayed (from delayed_start_s) | "
                                    "smart (valley filling under the feeder limit, done by ready_s).")
    delayed_start_s: Seconds = Field(22 * 3600.0, ge=0, description="delayed: when charging starts.")
    ready_s: Seconds = Field(24 * 3600.0, gt=0, le=24 * 3600.0,
                             description="smart: when the cars must have their energy (the end of the day by "
                                         "default).")


class FeederConfig(Section):
    """The distribution feeders: buildings assigned to the nearest of k substations (deterministic
    k-means over the building positions), each with a power limit."""

    count: int | None = Field(None, ge=1, le=10_000, description="Number of feeders; default: buildings / "
                                                                  "buildings_per_feeder.")
    buildings_per_feeder: int = Field(150, ge=1, le=100_000, description="Buildings per feeder when count is not "
                                                                        "given.")
    limit_kw: float | None = Field(None, gt=0, description="Limit of every feeder, kW; default: limit_factor × the "
                                                           "feeder's peak standard load of the day.")
    limit_factor: float = Field(1.2, gt=0, le=100, description="Limit as a multiple of the feeder's peak standard "
                                                               "load (no occupancy effect, PV, batteries or EVs).")


class TariffConfig(Section):
    """Prices and emissions of grid electricity: flat values or a day's series (24 or 96 values)."""

    import_per_kwh: DaySeries = Field(0.25, description="Price of imported energy, money per kWh.")
    export_per_kwh: DaySeries = Field(0.05, description="Price paid for exported energy, money per kWh.")
    co2_g_per_kwh: DaySeries = Field(120.0, description="Emissions of imported energy, g CO2 per kWh (exports "
                                                        "credit none).")

    @model_validator(mode="after")
    def _series(self) -> TariffConfig:
        _check_series(self.import_per_kwh, "import_per_kwh")
        _check_series(self.export_per_kwh, "export_per_kwh")
        _check_series(self.co2_g_per_kwh, "co2_g_per_kwh", lo=0.0)
        return self


class EnergyConfig(Section):
    """Energy: building loads from BDEW profiles modulated by occupancy, rooftop PV, batteries, EV
    charging and feeders (docs/energy.md)."""

    date: Annotated[str, BeforeValidator(_iso_date)] = Field(
        "2023-06-21", description="Calendar date of the simulated day (YYYY-MM-DD): season and weekday of the load "
                                  "profiles, the sun's path.")
    timezone: str | None = Field(None, description="IANA time zone of the clock (e.g. Europe/Helsinki); default: "
                                                   "UTC plus the map centre's longitude / 15 h, rounded.")
    default_levels: float = Field(2.0, ge=1, le=200, description="Storeys of buildings without building:levels.")
    floor_m2_per_person: float = Field(40.0, ge=0, le=10_000,
                                       description="Floor area of a building without a footprint (a synthetic one) "
                                                   "per person living or working in it (after sample scaling), m².")
    occupancy: OccupancyConfig = Field(default_factory=OccupancyConfig, description="Occupancy modulation.")
    pv: PVConfig = Field(default_factory=PVConfig, description="Rooftop PV.")
    battery: BatteryConfig = Field(default_factory=BatteryConfig, description="Batteries.")
    ev: EVConfig = Field(default_factory=EVConfig, description="Electric cars and their charging.")
    feeders: FeederConfig = Field(default_factory=FeederConfig, description="Distribution feeders.")
    tariff: TariffConfig = Field(default_factory=TariffConfig, description="Prices and emissions.")

    @field_validator("date")
    @classmethod
    def _date(cls, v: str) -> str:
        try:
            return _dt.date.fromisoformat(v).isoformat()
        except ValueError:
            raise ValueError(f"not a date YYYY-MM-DD: {v!r}") from None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Helsinki)") from None
        return v

    @model_validator(mode="after")
    def _tou(self) -> EnergyConfig:
        b = self.battery
        if b.policy == "tou_arbitrage" and not isinstance(self.tariff.import_per_kwh, tuple) and (
                b.tou_low is None or b.tou_high is None):
            raise ValueError("battery.policy tou_arbitrage needs a time-of-use tariff.import_per_kwh (24 or 96 "
                             "values) or both battery.tou_low and battery.tou_high")
        return self

    def resolve_paths(self, base: Path) -> EnergyConfig:
        """Files relative to the scenario's folder ``base`` (the PV weather file)."""
        return self.model_copy(update={"pv": self.pv.resolve_paths(base)})


class OutageEvent(TimelineEvent):
    """A power outage (timeline ``type: outage``): from ``at_s`` for ``duration_s`` (or until
    ``until_s``) the buildings of the area are islanded: no import, no export; PV serves the load,
    then the battery; surplus PV charges the battery, the rest is curtailed; EV charging there stops
    and the load not served is unserved energy. It acts on whole 15-minute intervals: those whose
    midpoint lies within ``[at_s, at_s + duration_s)``. The area: the buildings on the listed
    ``feeders`` and those within ``radius_m`` of any of ``points`` (docs/energy.md, "Outages")."""

    type: Literal["outage"]
    duration_s: Seconds | None = Field(None, gt=0, description="How long it lasts, seconds or 'HH:MM' (or until_s).")
    until_s: Seconds | None = Field(None, gt=0, description="When power returns, seconds after midnight or 'HH:MM' "
                                                            "(instead of duration_s).")
    feeders: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="Feeders cut off (ids of energy_feeders.parquet, 0 to the feeder count − 1).")
    points: list[LonLat] = Field(default_factory=list, description="Centres of circular areas cut off, (lon, lat).")
    radius_m: float | None = Field(None, gt=0, le=100_000, description="Radius of the circles around points, metres.")

    @model_validator(mode="after")
    def _window_and_area(self) -> OutageEvent:
        if (self.duration_s is None) == (self.until_s is None):
            raise ValueError("an outage has either duration_s or until_s")
        if self.until_s is not None and not self.until_s > self.at_s:
            raise ValueError(f"until_s ({self.until_s:g}) must be after at_s ({self.at_s:g})")
        if not self.feeders and not self.points:
            raise ValueError("an outage needs an area: feeders, or points with radius_m")
        if self.points and self.radius_m is None:
            raise ValueError("points need radius_m")
        if self.radius_m is not None and not self.points:
            raise ValueError("radius_m needs points")
        for lon, lat in self.points:
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                raise ValueError(f"points: ({lon:g}, {lat:g}) is not a (lon, lat) position")
        return self

    @property
    def end_s(self) -> float:
        """When power returns (seconds after midnight)."""
        return float(self.until_s) if self.until_s is not None else float(self.at_s) + float(self.duration_s or 0.0)
