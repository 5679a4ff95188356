"""Walkers on links with a density-dependent speed (Weidmann's fundamental diagram).

A walker follows a path of links from a start time. In every sub-step of ``dt_s`` the speed on a
link comes from the density of the walkers on it at the sub-step's start,

    rho = n_on_link * people_per_walker / (length_m * width_m)                 [persons / m^2]
    v(rho) = v0 * (1 - exp(-gamma * (1 / rho - 1 / rho_max)))                 (Weidmann 1993)

with ``gamma = 1.913 persons/m^2`` and ``rho_max = 5.4 persons/m^2``, floored at ``v_min_mps``
(Weidmann's speed is 0 at ``rho_max``; the floor keeps a jammed link draining, as pedestrian
models' minimal speeds do). A walker moves ``v * dt`` in the sub-step, over link ends into the
next links of its path (at their speeds of the sub-step), and arrives at the exact time it reaches
the end of its last link. ``people_per_walker`` is 1 / the population's sample share.

Leaving a link takes **flow capacity**: at most ``cap_walkers_per_s[l] * dt`` walkers leave link
``l`` in a sub-step (an accumulator as in the queue kernel: fractional capacities carry over, at
most one sub-step's worth or one walker is banked); the others wait at its end, in walker order,
and count in its density. With the diagram's maximal specific flow (:func:`weidmann_capacity`,
about 1.2 persons per metre of width and second) a crowd that starts together spreads into a
stream instead of moving as one block, and a narrow link is a bottleneck.

Written here because no maintained Python library moves walkers on a road graph's links by a
fundamental diagram in a time-stepped loop that another simulation drives (JuPedSim and CrowdWalk
are standalone simulators with their own geometry); the diagram is the textbook one. The kernel
sees arrays only. ``advance_walkers.py_func`` is the pure-Python twin (the tests run both).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["WEIDMANN_GAMMA", "WEIDMANN_RHO_MAX", "advance_walkers", "weidmann_capacity", "weidmann_speed_mps"]

#: Weidmann (1993), "Transporttechnik der Fussgänger", the fit of his fundamental diagram
WEIDMANN_GAMMA = 1.913  # persons / m^2
WEIDMANN_RHO_MAX = 5.4  # persons / m^2


def weidmann_speed_mps(rho_per_m2: np.ndarray | float, v0_mps: float, v_min_mps: float = 0.0) -> np.ndarray:
    """Walking speed at density ``rho_per_m2`` (v0 at 0; ``v_min_mps`` at and above ``rho_max``)."""
    rho = np.asarray(rho_per_m2, dtype=np.float64)
    with np.errstate(divide="ignore"):
        v = v0_mps * (1.0 - np.exp(-WEIDMANN_GAMMA * (1.0 / rho - 1.0 / WEIDMANN_RHO_MAX)))
    out: np.ndarray = np.maximum(np.where(rho > 0, v, v0_mps), v_min_mps)
    return out


def weidmann_capacity(v0_mps: float) -> float:
    """The largest specific flow ``rho * v(rho)`` of the diagram, persons per metre of width and
    second (about 1.22 at ``v0 = 1.34 m/s``, at about 1.75 persons/m²), on a 0.0005 persons/m² grid."""
    rho = np.arange(1, 10_800) * 0.0005
    return float(np.max(rho * weidmann_speed_mps(rho, v0_mps)))


@njit(cache=True)
def advance_walkers(t0_s, t1_s, dt_s, path_ptr, path_links, link_length_m, link_area_m2, v0_mps, v_min_mps,
                    people_per_walker, start_s, pos, rem_m, done_s, crowd, cap_walkers_per_s,
                    acc):  # pragma: no cover - compiled
    """Move walkers from ``t0_s`` to ``t1_s`` in sub-steps of ``dt_s``.

    Parameters
    ----------
    path_ptr, path_links : int64 (W + 1,), int64 (P,)
        CSR paths of the walkers (links, in order; every path has at least one link).
    link_length_m, link_area_m2 : float64 (L,)
        Length and walkable area (length x width) of every link.
    v0_mps, v_min_mps : float
        Free and minimal walking speed.
    people_per_walker : float
        Persons a walker stands for (1 / sample share).
    start_s : float64 (W,)
        When each walker starts walking.
    pos : int64 (W,)
        Index into ``path_links`` of each walker's current link (updated).
    rem_m : float64 (W,)
        Metres left on the current link (updated; the full length before the start).
    done_s : float64 (W,)
        Arrival time (``nan`` while walking; set on arrival).
    crowd : bool
        Density-dependent speed (else ``v0_mps`` everywhere).
    cap_walkers_per_s : float64 (L,)
        Walkers that can leave each link per second (``inf``: no limit).
    acc : float64 (L,)
        Each link's leaving budget, walkers (updated; start with ``min(cap * dt_s, 1)`` or 0).

    Returns
    -------
    int
        Walkers that arrived in this call.
    """
    n = start_s.shape[0]
    n_links = link_length_m.shape[0]
    count = np.zeros(n_links, np.float64)
    speed = np.full(n_links, v0_mps)
    arrived = 0
    t = t0_s
    while t < t1_s - 1e-9:
        h = min(dt_s, t1_s - t)
        t_end = t + h
        for l in range(n_links):
            c = cap_walkers_per_s[l] * h
            acc[l] = min(acc[l] + c, max(c, 1.0))
        if crowd:
            count[:] = 0.0
            for i in range(n):
                if math.isnan(done_s[i]) and start_s[i] < t_end:
                    count[path_links[pos[i]]] += people_per_walker
            for l in range(n_links):
                if count[l] > 0.0:
                    rho = count[l] / link_area_m2[l]
                    v = v0_mps * (1.0 - math.exp(-WEIDMANN_GAMMA * (1.0 / rho - 1.0 / WEIDMANN_RHO_MAX)))
                    speed[l] = max(v, v_min_mps)
                else:
                    speed[l] = v0_mps
        for i in range(n):
            if not math.isnan(done_s[i]) or start_s[i] >= t_end:
                continue
            tau = max(t, start_s[i])  # time reached so far in this sub-step
            while True:
                l = path_links[pos[i]]
                v = speed[l]
                need = rem_m[i] / v
                if tau + need > t_end:
                    rem_m[i] -= (t_end - tau) * v
                    break
                tau += need
                if acc[l] < 1.0:  # no room to leave the link in this sub-step: wait at its end
                    rem_m[i] = 0.0
                    break
                acc[l] -= 1.0
                if pos[i] + 1 >= path_ptr[i + 1]:
                    rem_m[i] = 0.0
                    done_s[i] = tau
                    arrived += 1
                    break
                pos[i] += 1
                rem_m[i] = link_length_m[path_links[pos[i]]]
        t = t_end
    return arrived
