"""What a domain sees of a run: :class:`DomainContext`, a narrow view of the model.

A domain gets the clock, the network and its buildings, the population, where everyone is
(:meth:`DomainContext.locations`), the event bus, its own random streams and the mobility domain's
services (adding kernel vehicles, replanning residents' days); it never holds the model itself, so
the model's internals can change without breaking domains.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from twin._rng import stream as rng_stream

if TYPE_CHECKING:  # pragma: no cover
    from twin.domains.base import Domain
    from twin.domains.mobility.domain import MobilityDomain
    from twin.events import EventBus
    from twin.locations import Locations
    from twin.model import CityModel
    from twin.network.road_network import RoadNetwork

__all__ = ["DomainContext"]


class DomainContext:
    """The run as one domain sees it (made by :class:`~twin.model.CityModel`, one per domain).

    Attributes
    ----------
    domain_name : str
        Name of the domain this context belongs to (it keys the domain's random streams).
    """

    def __init__(self, model: CityModel, domain_name: str) -> None:
        self._model = model
        self.domain_name = domain_name

    # -- the run ------------------------------------------------------------------------------------
    @property
    def scenario(self) -> Any:
        """The validated scenario (read-only)."""
        return self._model.scenario

    @property
    def config(self) -> Any:
        """This domain's scenario section (``None`` when the scenario has none)."""
        return self._model.scenario.section(self.domain_name)

    @property
    def network(self) -> RoadNetwork:
        """The drive network (arrays; dense link and node indices)."""
        return self._model.network

    @property
    def population(self) -> Any:
        """The residents as columns (:class:`twin.population.Population`); a resident's row is its
        ``resident_id`` in every table."""
        return self._model.pop

    @property
    def buildings(self) -> Any:
        """The buildings table of the network (``None`` for networks built without one)."""
        return getattr(self._model.network, "buildings", None)

    @property
    def events(self) -> EventBus:
        """The run's within-day event bus."""
        return self._model.events

    @property
    def mobility(self) -> MobilityDomain:
        """The mobility domain: trips, modes, the queue kernel (``mobility.sim``), replanning."""
        return self._model.mobility

    def domain(self, name: str) -> Domain | None:
        """Another attached domain (``None`` if the run has none of that name)."""
        return self._model.domain(name)

    # -- the clock ----------------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        """Start of the current model step (seconds after midnight of day 1); the kernel's clock
        (``mobility.sim.t_s``) is at its end after the ``move`` phase."""
        return self._model.step_t_s

    @property
    def step_s(self) -> float:
        """Length of a model step (``simulation.record_interval_s``)."""
        return float(self._model.scenario.simulation.record_interval_s)

    @property
    def t_end_s(self) -> float:
        """End of the current model step (the kernel runs every step with time below it)."""
        cfg = self._model.scenario.simulation
        return float(min(self.t_s + cfg.record_interval_s, cfg.end_s))

    @property
    def iteration(self) -> int:
        """Index of the simulated day (0 for the first)."""
        return self._model.iteration

    # -- services -----------------------------------------------------------------------------------
    def locations(self) -> Locations:
        """Where every resident is at the current step (:class:`twin.locations.Locations`)."""
        return self._model.locations()

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator of the run's RNG tree for this domain and ``purpose`` (a named stream: the
        same scenario, seed, domain and purpose give the same draws, whatever other domains do)."""
        return np.random.default_rng(rng_stream(self._model.scenario.seed, f"domain:{self.domain_name}:{purpose}"))

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time a block of work under phase ``name`` (adds to ``CityModel.phase_time_s``)."""
        return self._model._phase(name)
