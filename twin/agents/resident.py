"""Residents: Mesa agents that are handles (a row index) over the model's numpy columns.

Bulk dynamics (moving cars) run in Numba kernels over the columns; a Resident is how Python code,
notebooks and later per-agent decisions see one person. Nothing per-resident is stored on the
agent but its row, so two models in one process (pytest, Ray workers) never share state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from twin.model import CityModel

__all__ = ["Resident"]


class Resident(mesa.Agent):
    """One resident: home → work → home by car.

    Parameters
    ----------
    model
        The :class:`~twin.model.CityModel` that owns the columns.
    row
        Index of this resident in the model's population columns.
    """

    model: CityModel

    def __init__(self, model: CityModel, row: int) -> None:
        super().__init__(model)
        self.row = int(row)

    @property
    def home_node(self) -> int:
        """Network node index of the home."""
        return int(self.model.pop_home_node[self.row])

    @property
    def work_node(self) -> int:
        """Network node index of the workplace."""
        return int(self.model.pop_work_node[self.row])

    @property
    def home_osmid(self) -> int:
        """OSM id of the home node."""
        return int(self.model.network.node_osmid[self.home_node])

    @property
    def work_osmid(self) -> int:
        """OSM id of the workplace node."""
        return int(self.model.network.node_osmid[self.work_node])

    @property
    def trip_ids(self) -> tuple[int, int]:
        """Indices of the outbound and return trips in the model's trip columns."""
        return 2 * self.row, 2 * self.row + 1

    @property
    def state(self) -> str:
        """``at_home``, ``to_work``, ``at_work``, ``to_home`` or ``home_again``."""
        status = self.model.sim.status
        out, back = self.trip_ids
        if status[back] == 3:
            return "home_again"
        if status[back] in (1, 2):
            return "to_home"
        if status[out] == 3:
            return "at_work"
        if status[out] in (1, 2):
            return "to_work"
        return "at_home"

    def __repr__(self) -> str:
        return f"Resident(id={self.unique_id}, row={self.row}, state={self.state})"
