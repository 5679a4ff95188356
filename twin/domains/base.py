"""The domain protocol: how mobility, MaaS fleets, evacuation, energy (and yours) plug into a run.

A domain is a :class:`Domain` subclass registered under a name (:func:`register_domain`, or the
``citytwin.domains`` entry point of an installed package). It owns

* its **scenario section** (``Config``, a :class:`twin.scenario.Section`): a scenario with a section
  named like the domain switches the domain on (``always = True`` domains run in every scenario);
* its **timeline event types** (``timeline_events``: name -> :class:`twin.scenario.TimelineEvent`
  subclass): the scenario's ``timeline:`` lists them with their times, and each goes to
  :meth:`Domain.on_event` in the model step whose interval contains its time;
* its **phases** (:meth:`Domain.phases`): named, timed steps run by :class:`twin.model.CityModel`
  after the built-in ``demand``, ``dispatch`` and ``move`` phases (or before ``demand``), every model
  step or every ``period_s`` seconds;
* its **event types** on the within-day event bus (:class:`twin.events.EventBus`), published as
  arrays and subscribed to by type;
* its **results**: :meth:`Domain.kpis` (merged into ``kpis.json``), :meth:`Domain.tables` (one
  Parquet file each in the run folder) and :meth:`Domain.report_sections` (sections of
  ``report.html`` that read those files).

A domain sees the run through a :class:`twin.context.DomainContext` (the clock, the network, the
population and buildings, where everyone is, the event bus, its own random streams, the mobility
domain's services), never the whole model. See docs/domains.md for a complete example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel

from twin.registry import DOMAINS

if TYPE_CHECKING:  # pragma: no cover
    from twin._tables import Categorical
    from twin.context import DomainContext

__all__ = ["Domain", "Phase", "register_domain", "registered_domains", "get_domain", "PHASE_ANCHORS"]

#: Built-in phases of every model step, in order; a domain phase runs before or after one of them.
PHASE_ANCHORS = ("demand", "dispatch", "move", "publish", "record")


@dataclass(frozen=True)
class Phase:
    """A named, timed step of a domain.

    Attributes
    ----------
    name
        Unique among the run's phases; its wall time is ``CityModel.phase_time_s[name]``.
    run
        ``run(ctx)``, called with the domain's context.
    period_s
        ``None``: every model step. Else the phase runs in the model steps that reach a multiple of
        ``period_s`` (counted from midnight): a phase after ``move``, ``publish`` or ``record`` sees
        the state at the step's end ``t_end``, so it runs when ``t_s < k * period_s <= t_end``; a
        phase before ``move`` sees the state at its start and runs when ``t_s <= k * period_s < t_end``. With
        steps that divide the period, a 15-minute phase after ``move`` sees 06:00, 06:15, ...
    after
        The built-in phase (:data:`PHASE_ANCHORS`) it follows; ``"start"`` runs it first in a step.
        Phases with the same anchor run in the order the domains are attached, then listed.
    """

    name: str
    run: Callable[[DomainContext], None]
    period_s: float | None = None
    after: str = "publish"

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"phase name {self.name!r} must be an identifier")
        if self.after not in ("start", *PHASE_ANCHORS):
            raise ValueError(f"phase {self.name!r}: after must be one of start, {', '.join(PHASE_ANCHORS)}; "
                             f"got {self.after!r}")
        if self.period_s is not None and not (np.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"phase {self.name!r}: period_s must be > 0, got {self.period_s!r}")

    def due(self, t_s: float, t_end_s: float) -> bool:
        """Whether the phase runs in the step from ``t_s`` to ``t_end_s``."""
        if self.period_s is None:
            return True
        p = self.period_s
        if self.after in ("move", "publish", "record"):
            return bool(np.floor(t_end_s / p) * p > t_s)
        return bool(np.ceil(t_s / p) * p < t_end_s)


class Domain:
    """Base class of a domain (see the module docstring for the protocol).

    Parameters
    ----------
    config
        The scenario's validated section (an instance of ``cls.Config``), or ``None`` for a domain
        without one.
    """

    #: Name of the domain and of its scenario section; a lower-case identifier.
    name: ClassVar[str] = ""
    #: Pydantic model of the scenario section (a ``twin.scenario.Section`` subclass), or ``None``.
    Config: ClassVar[type[BaseModel] | None] = None
    #: Timeline event types: name -> ``twin.scenario.TimelineEvent`` subclass with ``type: Literal[name]``.
    timeline_events: ClassVar[dict[str, type[BaseModel]]] = {}
    #: Attached in every scenario, with or without its section.
    always: ClassVar[bool] = False

    def __init__(self, config: BaseModel | None = None) -> None:
        self.config = config

    # -- called by CityModel, in this order --------------------------------------------------------
    def attach(self, ctx: DomainContext) -> None:
        """Once, after the network, the population and the mobility domain exist."""

    def phases(self) -> list[Phase]:
        """The domain's phases (asked once, after :meth:`attach`)."""
        return []

    def start_day(self, ctx: DomainContext) -> None:
        """Before each simulated day (iteration), after the mobility domain started it."""

    def on_event(self, ctx: DomainContext, event: BaseModel) -> None:
        """A timeline event of one of this domain's types is due (before the step's phases)."""

    def end_day(self, ctx: DomainContext) -> None:
        """After each simulated day, before the next one is planned."""

    @classmethod
    def preflight(cls, config: BaseModel | None, scenario: Any, network: Any) -> list[tuple[str, str]]:
        """Problems of the scenario that need the network (``twin validate`` and ``twin run`` report
        them before anything is simulated, as ``FILE: FIELD: PROBLEM``): ``(field, problem)`` pairs.
        Called for every installed domain, ``config`` being its section (``None`` if absent)."""
        return []

    # -- results (read after the run) --------------------------------------------------------------
    def kpis(self, ctx: DomainContext) -> dict[str, Any]:
        """KPIs of the last day (JSON-serialisable), merged into ``kpis.json``; names should start with
        the domain's name."""
        return {}

    def tables(self, ctx: DomainContext) -> Mapping[str, Mapping[str, np.ndarray | Categorical]]:
        """Output tables of the last day: file stem -> columns (``{"occupancy": {...}}`` is written as
        ``occupancy.parquet``)."""
        return {}

    @classmethod
    def report_sections(cls) -> list[tuple[str, Callable[[Any], str | None]]]:
        """``(title, fn)`` sections of ``report.html`` for runs with this domain: ``fn(ctx)`` gets the
        report's :class:`twin.report.ReportContext` (it reads the run folder, e.g.
        ``ctx.table("occupancy.parquet")``, never the model, so ``twin report`` can redo the page later) and
        returns an HTML fragment (``None``: nothing to show). Placed after the mobility sections."""
        return []


def _check(cls: object) -> None:  # anything a caller passes: checked here
    if not (isinstance(cls, type) and issubclass(cls, Domain)):
        raise TypeError(f"register_domain expects a Domain subclass, got {cls!r}")


def register_domain(cls: type[Domain]) -> type[Domain]:
    """Register a :class:`Domain` subclass under ``cls.name`` (usable as a decorator)."""
    _check(cls)
    DOMAINS.register(cls)
    return cls


def registered_domains() -> list[str]:
    """Names of the domains installed in this process (entry points included), sorted."""
    return DOMAINS.names()


def get_domain(name: str) -> type[Domain]:
    """The domain class registered as ``name`` (``KeyError`` with the installed ones if none)."""
    cls = DOMAINS.get(name)
    assert issubclass(cls, Domain)
    return cls
