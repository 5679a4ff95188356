"""The ``maas:`` section of a scenario: one or more operators of on-demand fleets.

Only pydantic here: validating a scenario imports neither the model nor the network.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from twin.scenario import Seconds, Section, _as_tuple

#: a (lon, lat) corner; YAML lists are read as tuples
LonLat = Annotated[tuple[float, float], BeforeValidator(_as_tuple)]

__all__ = ["Depot", "Electric", "MaasConfig", "Operator", "Surge"]


class Depot(Section):
    """Where vehicles start the day and go to charge: an OSM node id, or a coordinate (snapped to
    the nearest drive-network node)."""

    osmid: int | None = Field(None, description="OSM node id of the depot.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude (with lat, instead of osmid).")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude (with lon, instead of osmid).")

    @model_validator(mode="after")
    def _one_way(self) -> Depot:
        if (self.osmid is None) == (self.lon is None or self.lat is None):
            raise ValueError("a depot is either osmid or lon and lat")
        return self


class Electric(Section):
    """Battery-electric vehicles: energy per km driven, charging at the depots."""

    battery_kwh: float = Field(60.0, gt=0, le=1000, description="Usable battery capacity, kWh.")
    consumption_kwh_per_km: float = Field(0.18, gt=0, le=5, description="Energy per km driven, kWh.")
    initial_soc: float = Field(0.9, ge=0, le=1, description="State of charge at the start of the day.")
    reserve_soc: float = Field(0.15, ge=0, le=1, description="Below this a vehicle takes no new request.")
    charge_below_soc: float = Field(0.3, ge=0, le=1,
                                    description="An idle vehicle below this goes to its depot to charge.")
    charge_to_soc: float = Field(0.9, ge=0, le=1, description="Charging stops at this state of charge.")
    charger_kw: float = Field(50.0, gt=0, le=1000, description="Power of a depot charger, kW.")
    charger_efficiency: float = Field(0.92, gt=0, le=1, description="Share of grid energy stored in the battery.")
    plugs_per_depot: int = Field(10, ge=1, le=100_000, description="Chargers at each depot.")

    @model_validator(mode="after")
    def _order(self) -> Electric:
        if not self.reserve_soc <= self.charge_below_soc <= self.charge_to_soc:
            raise ValueError("need reserve_soc <= charge_below_soc <= charge_to_soc")
        return self


class Surge(Section):
    """Surge pricing by zone and hour: the fare of a ride from zone z in hour h is multiplied by
    ``clip(1 + sensitivity × (ratio − 1), 1, max_multiplier)``, where ratio = the previous day's
    requests from z in h / (1 + the mean number of idle vehicles in z during h). No surge on the
    first day."""

    zone_m: float = Field(1000.0, gt=0, le=100_000, description="Side of the square surge zones, metres.")
    sensitivity: float = Field(0.5, ge=0, le=10, description="Multiplier increase per unit of excess ratio.")
    max_multiplier: float = Field(2.0, ge=1, le=10, description="Highest fare multiplier.")


class Operator(Section):
    """One on-demand service: its fleet, where and when it runs, what it charges, its limits and how
    it assigns vehicles."""

    name: str = Field("ride", description="Identifier of the operator (outputs, KPIs).")
    fleet_size: int = Field(100, ge=0, le=1_000_000, description="Vehicles.")
    seats: int = Field(4, ge=1, le=50, description="Passenger seats per vehicle.")
    depots: list[Depot] = Field(default_factory=list,
                                description="Depots; vehicles start there, spread in turn. None: vehicles start spread "
                                            "over the nodes (each node 0 or 1 more than another), no charging.")
    shift_start_s: Seconds = Field(0.0, ge=0, description="Service starts (seconds after midnight or 'HH:MM').")
    shift_end_s: Seconds = Field(30 * 3600.0, ge=0, description="No new requests accepted from then on.")
    service_area: list[LonLat] | None = Field(
        None, description="Polygon of (lon, lat) corners; trips with both ends inside are served. None: everywhere.")
    fare_base: float = Field(2.5, ge=0, description="Money per ride.")
    fare_per_km: float = Field(1.0, ge=0, description="Money per km of the direct route.")
    fare_per_min: float = Field(0.2, ge=0, description="Money per minute of the direct free-flow time.")
    pooled_discount: float = Field(0.3, ge=0, le=1, description="Share of the fare off for a shared ride.")
    max_wait_s: float = Field(600.0, ge=0, le=7200, description="Longest wait from request to pick-up.")
    max_detour_rel: float = Field(0.5, ge=0, le=10,
                                  description="Ride time at most direct time × (1 + this) ...")
    max_detour_abs_s: float = Field(900.0, ge=0, le=7200, description="... and at most direct time + this.")
    dispatcher: Literal["immediate", "batch", "pooling"] = Field(
        "immediate", description="immediate: nearest idle vehicle by network time at the request; batch: optimal "
                                 "matching of the waiting requests and idle vehicles every batch_s; pooling: "
                                 "insertion into the schedules of vehicles in service too, every batch_s.")
    batch_s: float = Field(30.0, gt=0, le=3600, description="Period of batch and pooling dispatch, seconds.")
    rebalancing: Literal["none", "min_cost_flow"] = Field(
        "none", description="Idle vehicles sent towards the previous day's requests (zones, min-cost flow).")
    rebalance_period_s: float = Field(900.0, gt=0, le=86400, description="Rebalancing period, seconds.")
    zone_m: float = Field(1000.0, gt=0, le=100_000, description="Side of the square rebalancing zones, metres.")
    prior_wait_s: float = Field(300.0, ge=0, le=7200,
                                description="Expected wait in mode choice on the first day (later: the last day's "
                                            "mean).")
    electric: Electric | None = Field(None, description="Battery-electric fleet (None: no energy accounting).")
    surge: Surge | None = Field(None, description="Surge pricing by zone and hour (None: static fares).")

    @field_validator("name")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError(f"must be an identifier (letters, digits, _), got {v!r}")
        return v

    @field_validator("service_area")
    @classmethod
    def _polygon(cls, v: list[LonLat] | None) -> list[LonLat] | None:
        if v is not None and len(v) < 3:
            raise ValueError("a polygon needs at least 3 corners")
        return v

    @model_validator(mode="after")
    def _shift(self) -> Operator:
        if self.shift_end_s <= self.shift_start_s:
            raise ValueError("shift_end_s must be after shift_start_s")
        return self


class MaasConfig(Section):
    """On-demand fleets (ride-hailing, ride-pooling). Residents use them through the ``maas`` mode
    (list it in ``modes.available``)."""

    operators: list[Operator] = Field(default_factory=lambda: [Operator()], min_length=1,
                                      description="The operators (default: one, 'ride', with the defaults); a "
                                                  "request goes to the one with the least expected time and money.")

    @model_validator(mode="after")
    def _names(self) -> MaasConfig:
        names = [o.name for o in self.operators]
        if len(set(names)) != len(names):
            raise ValueError(f"operator names must be distinct, got {names}")
        return self
