"""Daily activity chains → a table of trips (struct of arrays).

Each resident follows at most one main tour and one evening tour, both home-based:

* workers: home → work [→ shop, with probability ``shop_after_work``] → home
* pupils and students: home → school → home
* others, with probability ``errand_share``: home → shop (60%) or leisure (40%) → home
* anyone back from a main tour, with probability ``evening_leisure``: home → leisure → home

Shops and leisure places are drawn by building weight, choosing the nearest of five candidates to
where the resident is (a cheap distance decay). Durations and departure times come from the
scenario's distributions; opening hours are applied during the simulation, when arrival times are
known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.network.road_network import RoadNetwork
from twin.population import Population, sample_times
from twin.scenario import DemandConfig

__all__ = ["Trips", "ACTIVITIES", "HOME", "WORK", "SCHOOL", "SHOP", "LEISURE", "build_trips"]

ACTIVITIES = ("home", "work", "school", "shop", "leisure")
HOME, WORK, SCHOOL, SHOP, LEISURE = range(5)
N_CANDIDATES = 5


@dataclass
class Trips:
    """Trips of all residents, sorted by resident then sequence (columns of equal length).

    Attributes
    ----------
    person : int64 (m,), resident row
    seq : int16 (m,), position in the resident's day
    origin, dest : int32 (m,), drive-network node indices
    purpose : int8 (m,), activity at the destination (index into ACTIVITIES)
    tour : int64 (m,), global tour id (trips of a tour share a mode)
    first_depart_s : float64 (m,), departure time of each resident's first trip (nan for others)
    act_duration_s : float64 (m,), planned duration of the activity after the trip (inf: day over)
    person_ptr : int64 (n+1,), CSR pointer: trips of resident r are person_ptr[r]:person_ptr[r+1]
    tour_person : int64 (k,), resident of each tour
    """

    person: np.ndarray
    seq: np.ndarray
    origin: np.ndarray
    dest: np.ndarray
    purpose: np.ndarray
    tour: np.ndarray
    first_depart_s: np.ndarray
    act_duration_s: np.ndarray
    person_ptr: np.ndarray
    tour_person: np.ndarray

    @property
    def n(self) -> int:
        return int(self.person.shape[0])

    @property
    def n_tours(self) -> int:
        return int(self.tour_person.shape[0])


def _weights(w: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    for x in (w, fallback):
        if x.sum() > 0:
            p: np.ndarray = x / x.sum()
            return p
    return np.full(w.shape[0], 1.0 / w.shape[0])


def _nearest_of_candidates(net: RoadNetwork, near: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each node in ``near``, the closest of N_CANDIDATES nodes drawn with probabilities ``p``."""
    cand = rng.choice(net.n_nodes, size=(near.size, N_CANDIDATES), p=p)
    dx = net.node_x_m[cand] - net.node_x_m[near][:, None]
    dy = net.node_y_m[cand] - net.node_y_m[near][:, None]
    d2 = dx * dx + dy * dy
    d2[cand == near[:, None]] = np.inf  # never the same node as the origin
    pick = cand[np.arange(near.size), np.argmin(d2, axis=1)]
    same = pick == near
    pick[same] = (near[same] + 1) % net.n_nodes
    out: np.ndarray = pick.astype(np.int32)
    return out


def build_trips(net: RoadNetwork, pop: Population, cfg: DemandConfig, rng: np.random.Generator) -> Trips:
    """Build every resident's trips for the day (see module docs)."""
    n = pop.n
    u = rng.random((n, 4))
    shop_p = _weights(net.node_shop_weight, net.node_work_weight)
    leisure_p = _weights(net.node_work_weight + net.node_shop_weight, net.node_home_weight)

    # slot layout: 0 main activity, 1 shop after work, 2 home, 3 evening leisure, 4 home
    dest = np.full((n, 5), -1, dtype=np.int32)
    purpose = np.full((n, 5), -1, dtype=np.int8)
    dur = np.full((n, 5), np.inf)
    first_dep = np.full(n, np.nan)

    worker = pop.employed
    pupil = pop.student & ~worker
    other = ~worker & ~pupil
    errand = other & (u[:, 0] < cfg.errand_share)
    errand_shop = errand & (u[:, 1] < 0.6)
    errand_leisure = errand & ~errand_shop

    dest[worker, 0] = pop.work_node[worker]
    purpose[worker, 0] = WORK
    dest[pupil, 0] = pop.school_node[pupil]
    purpose[pupil, 0] = SCHOOL
    home = pop.home_node
    if errand_shop.any():
        dest[errand_shop, 0] = _nearest_of_candidates(net, home[errand_shop], shop_p, rng)
        purpose[errand_shop, 0] = SHOP
    if errand_leisure.any():
        dest[errand_leisure, 0] = _nearest_of_candidates(net, home[errand_leisure], leisure_p, rng)
        purpose[errand_leisure, 0] = LEISURE

    # durations at the main activity, departures from home
    d_work = sample_times(cfg.work.duration, n, rng)
    d_school = sample_times(cfg.school.duration, n, rng)
    d_shop = sample_times(cfg.shop.duration, n, rng)
    d_leisure = sample_times(cfg.leisure.duration, n, rng)
    d_shop2 = sample_times(cfg.shop.duration, n, rng)
    d_home = sample_times(cfg.home_before_leisure, n, rng)
    d_leisure2 = sample_times(cfg.leisure.duration, n, rng)
    dep_work = sample_times(cfg.work_departure, n, rng)
    dep_school = sample_times(cfg.school_departure, n, rng)
    dep_errand = sample_times(cfg.errand_departure, n, rng)
    dur[:, 0] = np.select([purpose[:, 0] == WORK, purpose[:, 0] == SCHOOL, purpose[:, 0] == SHOP],
                          [d_work, d_school, d_shop], d_leisure)
    first_dep = np.select([worker, pupil], [dep_work, dep_school], dep_errand)

    main = dest[:, 0] >= 0
    shop_after = worker & (u[:, 2] < cfg.shop_after_work)
    if shop_after.any():
        dest[shop_after, 1] = _nearest_of_candidates(net, dest[shop_after, 0], shop_p, rng)
        purpose[shop_after, 1] = SHOP
        dur[shop_after, 1] = d_shop2[shop_after]
    dest[main, 2] = home[main]
    purpose[main, 2] = HOME
    evening = main & (u[:, 3] < cfg.evening_leisure)
    if evening.any():
        dur[evening, 2] = d_home[evening]
        dest[evening, 3] = _nearest_of_candidates(net, home[evening], leisure_p, rng)
        purpose[evening, 3] = LEISURE
        dur[evening, 3] = d_leisure2[evening]
        dest[evening, 4] = home[evening]
        purpose[evening, 4] = HOME

    valid = dest >= 0
    # origins: the previous valid destination, home for the first
    prev = np.empty_like(dest)
    last = home.copy()
    for j in range(5):
        prev[:, j] = last
        last = np.where(valid[:, j], dest[:, j], last)
    tour_slot = np.array([0, 0, 0, 1, 1])
    has_tour = np.stack([valid[:, :3].any(axis=1), valid[:, 3:].any(axis=1)], axis=1)
    tour_id = np.cumsum(has_tour.ravel()).reshape(n, 2) - 1

    person_idx = np.repeat(np.arange(n, dtype=np.int64), 5).reshape(n, 5)
    seq = np.cumsum(valid, axis=1) - 1
    fd = np.full((n, 5), np.nan)
    fd[:, 0] = np.where(valid[:, 0], first_dep, np.nan)
    counts = valid.sum(axis=1)
    person_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=person_ptr[1:])
    tours = tour_id[:, tour_slot][valid]
    tour_person = np.flatnonzero(has_tour.ravel()) // 2
    return Trips(
        person=person_idx[valid],
        seq=seq[valid].astype(np.int16),
        origin=prev[valid].astype(np.int32),
        dest=dest[valid],
        purpose=purpose[valid],
        tour=tours.astype(np.int64),
        first_depart_s=fd[valid],
        act_duration_s=dur[valid],
        person_ptr=person_ptr,
        tour_person=tour_person.astype(np.int64),
    )
