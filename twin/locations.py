"""Where people are: every resident's location at the current model step, as columns.

:class:`Locations` is what :meth:`twin.context.DomainContext.locations` returns (computed by the
mobility domain in a few vectorised passes, no Python loop over residents): energy reads occupancy
per building from it, evacuation who is inside a hazard.

A resident is in one of these states (``state`` column):

==============  =====  ==================================================================
``AT_ACTIVITY``   0    at home, work, school, a shop or leisure place (``activity``); ``node`` is
                       its drive node, ``building`` its building when known (home, work)
``WAITING``       1    set out by car, waiting to enter the first link (at ``node``, the origin)
``DRIVING``       2    in a car on link ``link_id`` (kernel vehicle ``vehicle_id``)
``WALKING``       3    on foot (between ``node`` = origin and the destination)
``CYCLING``       4    by bike (likewise)
``OTHER_MODE``    5    travelling by a plug-in mode (taxi, MaaS, ...)
``STRANDED``      6    a car trip removed from the network when stuck (no location)
==============  =====  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Locations", "AT_ACTIVITY", "WAITING", "DRIVING", "WALKING", "CYCLING", "OTHER_MODE", "STRANDED",
           "STATES"]

AT_ACTIVITY, WAITING, DRIVING, WALKING, CYCLING, OTHER_MODE, STRANDED = range(7)
STATES = ("at_activity", "waiting", "driving", "walking", "cycling", "other_mode", "stranded")


@dataclass(frozen=True)
class Locations:
    """Every resident's location at time ``t_s`` (row = ``resident_id``).

    Attributes
    ----------
    t_s : float
        Time of the query (start of the current model step).
    state : int8 (n,)
        One of the states in the module docstring.
    activity : int8 (n,)
        Activity (index into ``twin.demand.ACTIVITIES``) when at one, else -1.
    node : int64 (n,)
        Drive-network node: of the activity, or the trip's origin when waiting / walking / cycling /
        on a plug-in mode; -1 when driving or stranded.
    building : int64 (n,)
        Building (row of the network's buildings table) when at home or at work and known, else -1.
    trip_id : int64 (n,)
        The current trip (the one under way, or the last one done), -1 before the first trip.
    vehicle_id : int64 (n,)
        Queue-kernel vehicle when waiting or driving, else -1.
    link_id : int64 (n,)
        Link when driving, else -1.
    """

    t_s: float
    state: np.ndarray
    activity: np.ndarray
    node: np.ndarray
    building: np.ndarray
    trip_id: np.ndarray
    vehicle_id: np.ndarray
    link_id: np.ndarray

    @property
    def n(self) -> int:
        return int(self.state.shape[0])

    def count_by(self, key: np.ndarray, size: int, where: np.ndarray | None = None) -> np.ndarray:
        """Residents per value of ``key`` (e.g. ``building``), ``0 <= key < size``, over rows ``where``
        (all with ``key >= 0`` when omitted): an ``int64 (size,)`` histogram."""
        sel = key >= 0 if where is None else where & (key >= 0)
        return np.bincount(key[sel], minlength=size).astype(np.int64)
