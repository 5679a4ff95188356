"""Residents: Mesa agents that are handles (a row index) over the model's numpy columns.

Bulk dynamics (moving cars, scheduling trips) run on the columns; a Resident is how Python code,
notebooks and per-agent decisions see one person. Nothing per-resident is stored on the agent but
its row, so two models in one process (pytest, Ray workers) never share state. Large populations
create these handles lazily (``CityModel.resident(row)``).

A resident's id is its row, ``Resident.resident_id`` (0..n-1): the ``resident_id`` column of
``trips.parquet`` and ``events.parquet``. Mesa's ``unique_id`` is Mesa's own bookkeeping (it numbers
all agents of a model from 1, in creation order) and names a resident in no output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from twin.model import CityModel

__all__ = ["Resident"]

_AGE = ("child", "adult", "senior")


class Resident(mesa.Agent):  # type: ignore[misc]  # mesa has no type information
    """One resident.

    Parameters
    ----------
    model
        The :class:`~twin.model.CityModel` that owns the columns.
    row
        Index of this resident in the model's population columns: its :attr:`resident_id`.
    """

    model: CityModel

    def __init__(self, model: CityModel, row: int) -> None:
        super().__init__(model)
        self.row = int(row)

    # ------------------------------------------------------------ attributes
    @property
    def resident_id(self) -> int:
        """The resident's id in every output table (``resident_id``): its row, 0..n-1."""
        return self.row

    @property
    def home_node(self) -> int:
        """Network node index of the home."""
        return int(self.model.pop.home_node[self.row])

    @property
    def work_node(self) -> int:
        """Network node index of the workplace (-1: no job)."""
        return int(self.model.pop.work_node[self.row])

    @property
    def school_node(self) -> int:
        """Network node index of the school (-1: not a pupil or student)."""
        return int(self.model.pop.school_node[self.row])

    @property
    def home_osmid(self) -> int:
        """OSM id of the home node."""
        return int(self.model.network.node_osmid[self.home_node])

    @property
    def age_group(self) -> str:
        """``child``, ``adult`` or ``senior``."""
        return _AGE[int(self.model.pop.age_group[self.row])]

    @property
    def employed(self) -> bool:
        return bool(self.model.pop.employed[self.row])

    @property
    def can_drive(self) -> bool:
        """An adult of a car-owning household."""
        return bool(self.model.pop.can_drive[self.row])

    @property
    def household(self) -> int:
        return int(self.model.pop.household[self.row])

    # ------------------------------------------------------------------ day
    @property
    def trip_ids(self) -> np.ndarray:
        """Indices of this resident's trips in the model's trip columns, in order."""
        p = self.model.trips.person_ptr
        return np.arange(p[self.row], p[self.row + 1])

    @property
    def plan(self) -> list[tuple[str, str]]:
        """The day as (activity at the destination, mode) per trip."""
        from twin.demand import ACTIVITIES

        m = self.model
        return [(ACTIVITIES[int(m.trips.purpose[i])], m.mode_names[int(m.trip_mode[i])]) for i in self.trip_ids]

    @property
    def state(self) -> str:
        """``at_home`` (before the first trip), ``travelling``, ``at_<activity>`` or ``aborted``."""
        from twin.demand import ACTIVITIES

        m = self.model
        ids = self.trip_ids
        if ids.size == 0:
            return "at_home"
        st = m.trip_state[ids]
        if (st == 3).any():
            return "aborted"
        if ((st == 1) & (m.trip_depart_s[ids] < m.sim.t_s)).any():
            return "travelling"
        done = ids[st == 2]
        if done.size == 0:
            return "at_home"
        return "at_" + ACTIVITIES[int(m.trips.purpose[done[-1]])]

    def __repr__(self) -> str:
        return f"Resident(resident_id={self.row}, state={self.state})"
