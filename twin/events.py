"""The within-day event bus: typed events published per model step as arrays, subscribed to by type.

An event *type* has a name and columns (``t_s`` plus the type's own, e.g. ``trip_id``, ``link_id``).
A publisher hands over one :class:`EventBatch` per step and type: a dict of equal-length numpy
arrays, never a Python object per event, so that a million link entries cost a few array slices.
Subscribers are called synchronously, in subscription order, with the batch (they must not modify
its arrays). A type nobody subscribes to costs nothing: publishers ask :meth:`EventBus.wants` before
building a batch.

Built-in types (published by the mobility domain; ``resident_id`` is the resident's row, ``trip_id``
the dense trip index, -1 for a domain's vehicles; ``vehicle_id`` the queue kernel's vehicle,
``link_id`` the dense link index; ``mode`` an index into the mobility domain's ``mode_names``):

======================  ==========================================================================
``depart``              a trip departs (``t_s``, ``trip_id``, ``resident_id``, ``mode``)
``enter_link``          a car enters a link (``t_s``, ``trip_id``, ``vehicle_id``, ``link_id``, and
                        ``from_link``: the link it left there, -1 at the start of a leg)
``leave_link``          a car leaves a link (``t_s``, ``trip_id``, ``vehicle_id``, ``link_id``)
``arrive``              a trip arrives (``t_s``, ``trip_id``, ``resident_id``, ``mode``, ``link_id``:
                        a car's last link, -1 for the other modes)
``aborted``             a car trip was removed from the network when stuck (``trip_id``, ...)
``mode_change``         at the departure of a trip whose tour changed mode in the last replanning
``plan_change``         a domain replaced the rest of a resident's day (``t_s``, ``resident_id``,
                        ``first_new_trip``, ``n_cancelled``, ``n_added``, ``source``)
``vehicle_added``       a domain's vehicle entered the kernel (``t_s``, ``vehicle_id``, ``owner``)
``vehicle_removed``     ... left it (``t_s``, ``vehicle_id``, ``owner``)
``leg_end``             a domain vehicle finished a leg (``t_s``, ``vehicle_id``, ``owner``, ``link_id``)
======================  ==========================================================================

Domains register their own types with :meth:`EventBus.register_type`. ``events.parquet`` is written
from the mobility types by a recorder subscribed to them (:mod:`twin.domains.mobility.outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["EventBatch", "EventBus", "BUILTIN_EVENT_TYPES"]

BUILTIN_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "depart": ("t_s", "trip_id", "resident_id", "mode"),
    "enter_link": ("t_s", "trip_id", "vehicle_id", "link_id", "from_link"),
    "leave_link": ("t_s", "trip_id", "vehicle_id", "link_id"),
    "arrive": ("t_s", "trip_id", "resident_id", "mode", "link_id"),
    "aborted": ("t_s", "trip_id", "resident_id", "mode"),
    "mode_change": ("t_s", "trip_id", "resident_id", "mode"),
    "plan_change": ("t_s", "resident_id", "first_new_trip", "n_cancelled", "n_added", "source"),
    "vehicle_added": ("t_s", "vehicle_id", "owner"),
    "vehicle_removed": ("t_s", "vehicle_id", "owner"),
    "leg_end": ("t_s", "vehicle_id", "owner", "link_id"),
}


@dataclass(frozen=True)
class EventBatch:
    """Events of one type published in one model step.

    Attributes
    ----------
    type
        The event type's name.
    step_t_s
        Start of the model step that published it.
    columns
        Column name -> 1-D array, all of one length (``t_s`` first).
    """

    type: str
    step_t_s: float
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.columns["t_s"].shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


Subscriber = Callable[[EventBatch], None]


class EventBus:
    """Typed events of a run, published per step as arrays (see the module docstring)."""

    def __init__(self) -> None:
        self._types: dict[str, tuple[str, ...]] = dict(BUILTIN_EVENT_TYPES)
        self._subs: dict[str, list[Subscriber]] = {}
        self.step_t_s = float("nan")
        #: events published so far, per type (counts only)
        self.counts: dict[str, int] = {}

    # -- types -------------------------------------------------------------------------------------
    def register_type(self, name: str, columns: tuple[str, ...]) -> None:
        """Declare a domain's event type and its columns (``t_s`` is added first when missing)."""
        if not name.isidentifier():
            raise ValueError(f"event type {name!r} must be an identifier")
        cols = tuple(columns) if columns and columns[0] == "t_s" else ("t_s", *[c for c in columns if c != "t_s"])
        old = self._types.get(name)
        if old is not None and old != cols:
            raise ValueError(f"event type {name!r} is registered with columns {old}, not {cols}")
        self._types[name] = cols

    @property
    def types(self) -> dict[str, tuple[str, ...]]:
        """Event type -> its columns."""
        return dict(self._types)

    # -- subscribe / publish -----------------------------------------------------------------------
    def subscribe(self, type_name: str, fn: Subscriber) -> None:
        """Call ``fn(batch)`` for every batch of ``type_name`` (``"*"``: every type)."""
        if type_name != "*" and type_name not in self._types:
            raise KeyError(f"unknown event type {type_name!r} (known: {', '.join(sorted(self._types))})")
        self._subs.setdefault(type_name, []).append(fn)

    def wants(self, type_name: str) -> bool:
        """Whether anyone subscribes to ``type_name`` (publishers skip building unwanted batches)."""
        return bool(self._subs.get(type_name)) or bool(self._subs.get("*"))

    def publish(self, type_name: str, columns: dict[str, np.ndarray]) -> None:
        """Publish a batch of ``type_name`` (columns as registered, equal lengths); empty batches are
        dropped."""
        cols = self._types.get(type_name)
        if cols is None:
            raise KeyError(f"unknown event type {type_name!r}; register_type() it first")
        if set(columns) != set(cols):
            raise ValueError(f"{type_name}: columns {sorted(columns)} differ from the registered {sorted(cols)}")
        n = {np.shape(v)[0] for v in columns.values()}
        if len(n) != 1:
            raise ValueError(f"{type_name}: columns of different lengths {sorted(n)}")
        size = n.pop()
        if size == 0:
            return
        self.counts[type_name] = self.counts.get(type_name, 0) + size
        batch = EventBatch(type_name, self.step_t_s, {c: columns[c] for c in cols})
        for fn in self._subs.get(type_name, ()):
            fn(batch)
        for fn in self._subs.get("*", ()):
            fn(batch)
