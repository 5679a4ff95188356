"""Registries of plug-ins (domains, modes) filled by calls and by installed packages' entry points.

Kept free of heavy imports (no model, no network, no kernels): the scenario schema imports it to
know which domain sections, timeline event types and modes exist, without importing what
implements them.

A plug-in in another package registers itself through an entry point of the registry's group
(``citytwin.domains``, ``citytwin.modes``) in its ``pyproject.toml``::

    [project.entry-points."citytwin.domains"]
    occupancy = "mypackage.occupancy:OccupancyDomain"

Entry points are loaded on the first lookup, so that a registration by a call in this process
wins over an installed entry point of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from twin.domains.mobility.modes import ModeProvider

__all__ = ["Registry"]

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Named classes of one kind, from :meth:`register` calls and the entry points of ``group``.

    Parameters
    ----------
    group
        Entry-point group, e.g. ``"citytwin.domains"``.
    kind
        What is registered, for messages (``"domain"``, ``"mode"``).
    check
        Called with each class before it is registered; raises ``TypeError``/``ValueError`` when
        the class is not acceptable.
    reserved
        Names that cannot be registered (built-ins handled elsewhere).
    """

    def __init__(self, group: str, kind: str, check: Callable[[T], None], reserved: tuple[str, ...] = (),
                 builtins: tuple[str, ...] = ()) -> None:
        self.group = group
        #: modules imported on the first lookup: they register the built-in classes
        self._builtins = builtins
        self.kind = kind
        self._check = check
        self._reserved = reserved
        self._classes: dict[str, T] = {}
        self._loaded = False
        #: incremented at every registration (caches of derived objects, e.g. the scenario schema)
        self.version = 0

    def register(self, cls: T) -> T:
        """Register ``cls`` under ``cls.name`` (usable as a class decorator); a later registration of
        the same name replaces the earlier one."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name or not name.isidentifier() or name != name.lower():
            raise ValueError(f"a {self.kind} name must be a lower-case identifier, got {name!r}")
        if name in self._reserved:
            raise ValueError(f"{name!r} is a built-in {self.kind}")
        self._check(cls)
        self._classes[name] = cls
        self.version += 1
        return cls

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests use it to clean up)."""
        if self._classes.pop(name, None) is not None:
            self.version += 1

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        import importlib

        for mod in self._builtins:
            importlib.import_module(mod)
        for ep in entry_points(group=self.group):
            cls = ep.load()
            if getattr(cls, "name", None) not in self._classes:
                self.register(cls)

    def refresh(self) -> None:
        """Read the entry points again at the next lookup (after installing a plug-in package in a
        running process)."""
        self._loaded = False
        self.version += 1

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_entry_points()
        return sorted(self._classes)

    def classes(self) -> dict[str, T]:
        """Name → class, in name order."""
        self._load_entry_points()
        return {n: self._classes[n] for n in sorted(self._classes)}

    def get(self, name: str) -> T:
        """The class registered as ``name``.

        Raises
        ------
        KeyError
            Nothing of that name in this process (a class registered by a call in another process,
            e.g. the driver of a Ray sweep, is not: install it with the entry point).
        """
        self._load_entry_points()
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise KeyError(f"no {self.kind} {name!r} in this process (registered: {known}); register it here, "
                           f"or install it with the {self.group!r} entry point") from None


def _check_domain(cls: type) -> None:
    # duck-typed (the Domain base class lives in twin.domains.base, which imports the schema)
    from pydantic import BaseModel

    cfg = getattr(cls, "Config", None)
    if cfg is not None and not (isinstance(cfg, type) and issubclass(cfg, BaseModel)):
        raise TypeError(f"{cls.__name__}.Config must be a pydantic model (a twin.scenario.Section), got {cfg!r}")
    events = getattr(cls, "timeline_events", {})
    if not isinstance(events, dict):
        raise TypeError(f"{cls.__name__}.timeline_events must be a dict of name -> TimelineEvent model")
    for name, model in events.items():
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"{cls.__name__}: timeline event type {name!r} is not an identifier")
        if not (isinstance(model, type) and issubclass(model, BaseModel) and "type" in model.model_fields
                and "at_s" in model.model_fields):
            raise TypeError(f"{cls.__name__}: timeline event {name!r} must subclass twin.scenario.TimelineEvent")


#: Domains (``twin.domains.base.Domain`` subclasses) by name; see docs/domains.md.
DOMAINS: Registry[type] = Registry("citytwin.domains", "domain", _check_domain,
    builtins=("twin.domains.maas.domain", "twin.domains.evacuation.domain", "twin.domains.energy.domain"))


def _check_mode(cls: object) -> None:
    # ``cls`` may be anything an entry point loads; ``Options`` may be anything a subclass sets
    from twin.domains.mobility.modes import ModeOptions, ModeProvider

    if not (isinstance(cls, type) and issubclass(cls, ModeProvider)):
        raise TypeError(f"register_mode expects a ModeProvider subclass, got {cls!r}")
    options: object = cls.Options
    if not (isinstance(options, type) and issubclass(options, ModeOptions)):
        raise TypeError(f"{cls.__name__}.Options must subclass ModeOptions")


#: Plug-in modes (``twin.domains.mobility.modes.ModeProvider`` subclasses) by name; the built-in
#: ``taxi`` is registered when its module is imported on the first lookup.
MODES: Registry[type[ModeProvider]] = Registry("citytwin.modes", "mode", _check_mode,
                                               reserved=("car", "walk", "bike"),
                                               builtins=("twin.domains.mobility.modes", "twin.domains.maas.domain"))
