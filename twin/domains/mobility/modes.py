"""Plug-in modes: services that residents can choose besides car, walk and bike.

A plug-in mode (an on-demand MaaS fleet, a shuttle, transit...) is a :class:`ModeProvider` subclass,
registered under a name with :func:`register_mode` (or through the ``citytwin.modes`` entry-point
group of an installed package). A scenario uses it by listing the name in ``modes.available``; its
options go under ``modes.plugins.NAME`` and are validated by the provider's ``Options`` model
(pydantic, unknown keys rejected).

The model calls a provider at fixed points of a day, always with dense trip indices:

* ``skim(model, trips, depart_s)`` during mode choice (first day and every replanning): the expected
  door-to-door time (s) and money cost of each trip by this mode, from the previous day's travel
  times; ``inf`` time = not available for that trip. Together with ``Options.asc`` they enter the
  same multinomial logit as the built-in modes.
* ``start_day(model)`` before each simulated day; ``begin(model, trips, depart_s)`` in the demand
  phase when residents set out by this mode (departure times may lie up to one model step ahead);
* ``advance(model, t_s, t_end_s)`` in the dispatch phase of every model step: serve requests up to
  ``t_end_s`` and return the trips that arrive before ``t_end_s`` with their arrival times. The model
  marks them done (and starts the residents' next trips) in the next step's demand phase, exactly as
  it does for walk and bike.
* ``distance_m(model, trips)`` and ``freeflow_time_s(model, trips)`` for the outputs (route length,
  delay) of the trips served by this mode.

Providers keep their own state (vehicles, queues) on the instance; one instance belongs to one model.
Randomness: ``model.mode_rng(name)`` gives a generator of the run's RNG tree for the provider.

The built-in ``taxi`` mode (:class:`TeleportTaxi`) is the simplest complete provider: a door-to-door
service without a fleet (unlimited vehicles), a fixed wait and the car's free-flow route time, at a
fare per trip and per km. It is the no-fleet baseline against which fleet simulations compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from twin.registry import MODES

if TYPE_CHECKING:  # pragma: no cover
    from twin.domains.mobility.domain import ModeContext

__all__ = [
    "BUILTIN_MODES",
    "ModeOptions",
    "ModeProvider",
    "TeleportTaxi",
    "get_mode",
    "register_mode",
    "registered_modes",
]

BUILTIN_MODES = ("car", "walk", "bike")


class ModeOptions(BaseModel):
    """Options every plug-in mode has; subclass to add a mode's own (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    asc: float = Field(0.0, ge=-50, le=50, description="Alternative-specific constant of the mode in the logit.")


class ModeProvider:
    """Base class of a plug-in mode (see the module docstring for the protocol).

    Parameters
    ----------
    options : ModeOptions
        The validated ``modes.plugins.NAME`` of the scenario (an instance of ``cls.Options``).
    """

    #: Name used in ``modes.available`` and in the outputs (``mode`` column, ``mode_share_NAME``).
    name: ClassVar[str] = ""
    #: Pydantic model of the mode's options.
    Options: ClassVar[type[ModeOptions]] = ModeOptions

    def __init__(self, options: ModeOptions) -> None:
        self.options = options

    # -- called by CityModel -------------------------------------------------------------------
    def attach(self, model: ModeContext) -> None:
        """Once, after the population and the trips exist and before the first mode choice."""

    def skim(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected time (s) and money of ``trips`` by this mode; ``inf`` time = unavailable."""
        raise NotImplementedError

    def start_day(self, model: ModeContext) -> None:
        """Before each simulated day (iteration): reset the day's state."""

    def begin(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> None:
        """Residents set out on ``trips`` by this mode at ``depart_s``."""
        raise NotImplementedError

    def extend(self, model: ModeContext, trips: np.ndarray) -> None:
        """Trips added within the day (``model.trips`` has grown by ``trips``, any mode): a mode
        that keeps per-trip arrays extends them (a domain may send these trips by this mode)."""

    def advance(self, model: ModeContext, t_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Serve requests during ``[t_s, t_end_s)``; return ``(trips, arrive_s)`` of the arrivals."""
        raise NotImplementedError

    def distance_m(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        """Distance travelled on each of ``trips`` (outputs); NaN if unknown."""
        return np.full(trips.size, np.nan)

    def freeflow_time_s(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        """Uncongested door-to-door time of ``trips`` (outputs: delay = travel time - this)."""
        return np.full(trips.size, np.nan)


def register_mode(cls: type[ModeProvider]) -> type[ModeProvider]:
    """Register a :class:`ModeProvider` subclass under ``cls.name`` (usable as a decorator)."""
    MODES.register(cls)
    return cls


def registered_modes() -> list[str]:
    """Names of the plug-in modes known now (built-ins excluded), sorted."""
    return MODES.names()


def get_mode(name: str) -> type[ModeProvider]:
    """The provider class registered as ``name``.

    Raises
    ------
    KeyError
        No mode of that name is registered in this process (a mode registered by a call in another
        process, e.g. the driver of a Ray sweep, is not: install it with the entry point).
    """
    try:
        return MODES.get(name)
    except KeyError:
        raise KeyError(f"no plug-in mode {name!r} in this process (registered: {', '.join(MODES.names())}); "
                       "register_mode() it here, or install it with the 'citytwin.modes' entry point") from None


def validate_mode_options(name: str, options: dict[str, Any]) -> ModeOptions:
    """``options`` validated by the ``Options`` model of mode ``name``."""
    return get_mode(name).Options.model_validate(options)


# ------------------------------------------------------------------------------- built-in taxi
class TaxiOptions(ModeOptions):
    asc: float = Field(-0.5, ge=-50, le=50, description="Alternative-specific constant of taxi.")
    wait_s: float = Field(300.0, ge=0, le=7200, description="Time from the request to the pick-up, seconds.")
    fare_base: float = Field(3.0, ge=0, description="Money per trip.")
    fare_per_km: float = Field(1.5, ge=0, description="Money per km of the car route.")
    speed_factor: float = Field(1.0, gt=0, le=2, description="In-vehicle time = car free-flow route time / this.")


@register_mode
class TeleportTaxi(ModeProvider):
    """Door-to-door rides without a fleet: wait, then the car's free-flow route time.

    Time of a trip = ``wait_s`` + free-flow car time / ``speed_factor`` (the shortest free-flow car
    route between the trip's nodes); money = ``fare_base + fare_per_km * route km``. Unlimited
    vehicles, no congestion, no empty driving: the baseline a fleet simulation is compared with.
    """

    name = "taxi"
    Options = TaxiOptions
    options: TaxiOptions
    _time_s: np.ndarray
    _dist_m: np.ndarray
    _arrive_s: np.ndarray
    _pending: np.ndarray

    def attach(self, model: ModeContext) -> None:
        t = model.trips
        net = model.network
        # Router is untyped while twin.network has its temporary override (unused-ignore: once it is typed)
        self._time_s = model.router.costs(t.origin, t.dest, weight=net.link_fftt_s) if t.n else np.zeros(0)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self._dist_m = model.router.costs(t.origin, t.dest, weight=net.link_length_m) if t.n else np.zeros(0)  # type: ignore[no-untyped-call, unused-ignore]  # untyped Router
        self._arrive_s = np.full(t.n, np.nan)

    def skim(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        time_s = o.wait_s + self._time_s[trips] / o.speed_factor
        money = o.fare_base + o.fare_per_km * self._dist_m[trips] / 1000.0
        return time_s, np.where(np.isfinite(time_s), money, 0.0)

    def start_day(self, model: ModeContext) -> None:
        self._arrive_s[:] = np.nan
        self._pending = np.zeros(0, np.int64)

    def begin(self, model: ModeContext, trips: np.ndarray, depart_s: np.ndarray) -> None:
        o = self.options
        self._arrive_s[trips] = depart_s + o.wait_s + self._time_s[trips] / o.speed_factor
        self._pending = np.union1d(self._pending, trips)

    def advance(self, model: ModeContext, t_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        p = self._pending
        done = self._arrive_s[p] < t_end_s
        self._pending = p[~done]
        return p[done], self._arrive_s[p[done]]

    def distance_m(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        dist_m: np.ndarray = self._dist_m[trips]
        return dist_m

    def freeflow_time_s(self, model: ModeContext, trips: np.ndarray) -> np.ndarray:
        time_s: np.ndarray = self.options.wait_s + self._time_s[trips] / self.options.speed_factor
        return time_s
