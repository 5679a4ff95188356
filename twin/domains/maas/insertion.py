"""Ride-pooling insertion: where to put a new request into a vehicle's schedule.

A vehicle's *schedule* is the ordered list of stops it will visit after its *start*: the node
``start_node`` at which it is free at ``start_t_s``, with ``onboard`` passengers in it then. A stop
is ``(node, request, is_pickup)``. :func:`best_insertion` puts a new request (a pick-up node and a
drop-off node) into the schedule: it tries **every** pair of positions ``i <= j`` (the pick-up
before the old stop ``i``, the drop-off before the old stop ``j``, ``0 <= i <= j <= k`` for ``k``
old stops, the drop-off after the pick-up) and keeps the feasible one that adds the least total
drive time. This is the exhaustive insertion heuristic of FleetPy (``insertion.py``) and of MATSim
DRT (``DefaultInsertionCostCalculator``, least added drive time).

Times along a schedule: the vehicle leaves its start at ``start_t_s``; it arrives at a stop at
(the time it left the previous stop or the start) + ``tt(previous node, node)``; it leaves a stop
``dwell_s`` after it arrives, except at a pick-up before the request's ``earliest_pick_s``, where it
waits: it leaves at ``max(arrival, earliest_pick_s) + dwell_s``. The *pick-up time* of a request is
``max(arrival, earliest_pick_s)`` at its pick-up stop (for a request already on board:
:attr:`RequestLimits.picked_up_s`), its *drop-off time* the arrival at its drop-off stop.

A schedule is *feasible* when

1. **seats**: the passengers on board (``onboard`` at the start, +1 at a pick-up, −1 at a drop-off)
   never exceed ``seats`` after any stop;
2. **wait**: every pick-up in the schedule (the new one and the old ones still to do) is no later
   than its request's ``latest_pick_s``;
3. **ride**: for every request with a drop-off in the schedule, drop-off time − pick-up time is at
   most its ``max_ride_s``;

and every leg is reachable (``tt`` finite). Times are compared with a tolerance of
:data:`TOL_S`. The old schedule is not required to be feasible, but an insertion is returned only
when the whole new schedule is.

The drive times of all candidate schedules come from **one** call of ``tt``: a new schedule is
made of old legs and legs to or from the new pick-up and drop-off nodes, so ``5 k + 3`` (from, to)
pairs at most (fewer after removing duplicates) cover all ``(k + 1) (k + 2) / 2`` candidates, whose
times are then computed together, stop by stop, with NumPy.

Why by hand: no maintained Python library inserts requests into vehicle schedules with these
constraints on a road network given as a travel-time function (FleetPy and MATSim are whole
simulators, in Python with their own network and request objects, and in Java; OR-Tools and VRP
solvers optimise whole routes from a matrix, not one cheap, deterministic insertion per request).

Notes
-----
Ties in added drive time (within :data:`TOL_S`) go to the lowest ``(pick_pos, drop_pos)`` in
lexicographic order, so results do not depend on floating-point noise in the sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["RequestLimits", "Insertion", "TravelTimeFn", "TOL_S", "best_insertion", "schedule_times", "feasible"]

#: Tolerance (s) of every time comparison (wait, ride, ties in added drive time).
TOL_S = 1e-9

#: ``tt(from_nodes, to_nodes) -> drive_s``: element-wise drive times (s) between int64 node arrays,
#: ``inf`` where unreachable, 0 where from == to.
TravelTimeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RequestLimits:
    """The time limits of one request.

    Attributes
    ----------
    earliest_pick_s
        Request time: no pick-up before it (the vehicle waits).
    latest_pick_s
        Request time + maximum wait: no pick-up after it (``inf``: no limit).
    max_ride_s
        Maximum in-vehicle time, drop-off time − pick-up time (``inf``: no limit).
    picked_up_s
        Pick-up time of a request already on board (its drop-off is in the schedule, its pick-up
        not); ``nan`` otherwise.
    """

    earliest_pick_s: float
    latest_pick_s: float
    max_ride_s: float
    picked_up_s: float = math.nan


@dataclass(frozen=True)
class Insertion:
    """The best insertion of a new request into a schedule (see :func:`best_insertion`).

    Attributes
    ----------
    pick_pos, drop_pos
        Indexes of the new pick-up and drop-off in the new stop list (``drop_pos > pick_pos``).
    added_drive_s
        New total drive time − old total drive time (sums of ``tt`` over consecutive legs from the start).
    stops_node, stops_request, stops_is_pickup
        The new schedule, ``k + 2`` stops (int64, int64, bool).
    arrive_s
        Planned arrival time at each new stop (before any wait for ``earliest_pick_s``).
    pick_s, drop_s
        Planned pick-up time (``max(arrival, earliest_pick_s)``) and drop-off time (arrival) of the new request.
    """

    pick_pos: int
    drop_pos: int
    added_drive_s: float
    stops_node: np.ndarray
    stops_request: np.ndarray
    stops_is_pickup: np.ndarray
    arrive_s: np.ndarray
    pick_s: float
    drop_s: float


@dataclass(frozen=True)
class _StopTable:
    """Per-stop attributes of a list of stops (the old ones, then possibly the new pick-up and drop-off)."""

    node: np.ndarray  # int64
    request: np.ndarray  # int64
    is_pickup: np.ndarray  # bool
    earliest_s: np.ndarray  # float64, -inf at drop-offs
    latest_s: np.ndarray  # float64, +inf at drop-offs
    max_ride_s: np.ndarray  # float64, at drop-offs
    picked_up_s: np.ndarray  # float64, at drop-offs of requests on board
    partner: np.ndarray  # int64: for a drop-off, the table index of its pick-up, -1 if on board (or none)


def _as_stops(stops_node: np.ndarray, stops_request: np.ndarray,
              stops_is_pickup: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    node = np.asarray(stops_node, dtype=np.int64).reshape(-1)
    request = np.asarray(stops_request, dtype=np.int64).reshape(-1)
    is_pickup = np.asarray(stops_is_pickup, dtype=bool).reshape(-1)
    if not (node.size == request.size == is_pickup.size):
        raise ValueError(f"stops_node, stops_request and stops_is_pickup differ in length "
                         f"({node.size}, {request.size}, {is_pickup.size})")
    return node, request, is_pickup


def _stop_table(node: np.ndarray, request: np.ndarray, is_pickup: np.ndarray,
                requests: Mapping[int, RequestLimits]) -> _StopTable:
    """The stop table of a schedule; ValueError when the schedule is malformed."""
    k = node.size
    earliest = np.full(k, -np.inf)
    latest = np.full(k, np.inf)
    max_ride = np.full(k, np.inf)
    picked = np.full(k, np.nan)
    partner = np.full(k, -1, dtype=np.int64)
    pick_at: dict[int, int] = {}
    dropped: set[int] = set()
    for s in range(k):
        r = int(request[s])
        lim = requests.get(r)
        if lim is None:
            raise ValueError(f"request {r} of stop {s} has no limits in `requests`")
        if is_pickup[s]:
            if r in pick_at or r in dropped:
                raise ValueError(f"request {r} has a second pick-up, or a pick-up after its drop-off, at stop {s}")
            pick_at[r] = s
            earliest[s] = lim.earliest_pick_s
            latest[s] = lim.latest_pick_s
        else:
            if r in dropped:
                raise ValueError(f"request {r} has a second drop-off at stop {s}")
            dropped.add(r)
            max_ride[s] = lim.max_ride_s
            if r in pick_at:
                partner[s] = pick_at[r]
            elif math.isnan(lim.picked_up_s):
                raise ValueError(f"request {r} is dropped off at stop {s} without a pick-up in the schedule "
                                 "and without picked_up_s")
            else:
                picked[s] = lim.picked_up_s
    return _StopTable(node, request, is_pickup, earliest, latest, max_ride, picked, partner)


def _append_new(table: _StopTable, new_request: int, pick_node: int, drop_node: int,
                lim: RequestLimits) -> _StopTable:
    """The table with the new pick-up (index k) and drop-off (index k + 1) appended."""
    k = table.node.size
    return _StopTable(
        node=np.append(table.node, np.array([pick_node, drop_node], dtype=np.int64)),
        request=np.append(table.request, np.array([new_request, new_request], dtype=np.int64)),
        is_pickup=np.append(table.is_pickup, np.array([True, False])),
        earliest_s=np.append(table.earliest_s, [lim.earliest_pick_s, -np.inf]),
        latest_s=np.append(table.latest_s, [lim.latest_pick_s, np.inf]),
        max_ride_s=np.append(table.max_ride_s, [np.inf, lim.max_ride_s]),
        picked_up_s=np.append(table.picked_up_s, [np.nan, np.nan]),
        partner=np.append(table.partner, np.array([-1, k], dtype=np.int64)),
    )


def _batch_times(legs_s: np.ndarray, earliest_s: np.ndarray, is_pickup: np.ndarray, start_t_s: float,
                 dwell_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and pick-up/drop-off times of C schedules of m stops at once.

    ``legs_s[c, p]``: drive time to stop p of schedule c (from the start for p = 0); ``earliest_s``:
    earliest pick-up at pick-ups. Returns ``(arrive_s, service_s)``, both (C, m): the arrival, and
    ``max(arrival, earliest)`` at pick-ups, the arrival at drop-offs.
    """
    n_cand, m = legs_s.shape
    arrive = np.empty((n_cand, m))
    service = np.empty((n_cand, m))
    leave = np.full(n_cand, float(start_t_s))
    for p in range(m):
        arrive[:, p] = leave + legs_s[:, p]
        service[:, p] = np.where(is_pickup[:, p], np.maximum(arrive[:, p], earliest_s[:, p]), arrive[:, p])
        leave = service[:, p] + dwell_s
    return arrive, service


def _batch_feasible(seq: np.ndarray, legs_s: np.ndarray, table: _StopTable, *, start_t_s: float, onboard: int,
                    seats: int, dwell_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feasibility of C schedules given as rows of stop-table indexes ``seq`` (C, m).

    Returns ``(ok (C,), arrive_s (C, m), service_s (C, m))``.
    """
    n_cand = seq.shape[0]
    is_pickup = table.is_pickup[seq]
    arrive, service = _batch_times(legs_s, table.earliest_s[seq], is_pickup, start_t_s, dwell_s)
    ok = np.isfinite(legs_s).all(axis=1)
    # 1. seats
    load = onboard + np.cumsum(np.where(is_pickup, 1, -1), axis=1)
    ok &= (load <= seats).all(axis=1)
    # 2. latest pick-up (latest_s is +inf at drop-offs)
    ok &= (service <= table.latest_s[seq] + TOL_S).all(axis=1)
    # 3. ride time: pick-up time of each stop's partner, by table index
    rows = np.arange(n_cand)[:, None]
    service_by_stop = np.full((n_cand, table.node.size), np.nan)
    service_by_stop[rows, seq] = service
    partner = table.partner[seq]
    has_partner = partner >= 0
    pick_t = np.where(has_partner, service_by_stop[rows, np.where(has_partner, partner, 0)], table.picked_up_s[seq])
    with np.errstate(invalid="ignore"):  # inf − inf on unreachable schedules, already rejected
        ride = np.where(is_pickup, 0.0, service - pick_t)
        ride_ok = ~(ride > table.max_ride_s[seq] + TOL_S)
    ok &= ride_ok.all(axis=1)
    return ok, arrive, service


def _call_tt(tt: TravelTimeFn, from_nodes: np.ndarray, to_nodes: np.ndarray) -> np.ndarray:
    """``tt`` on the distinct pairs only, spread back to all pairs."""
    if from_nodes.size == 0:
        return np.zeros(0)
    pairs = np.stack([from_nodes, to_nodes], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    out = np.asarray(tt(uniq[:, 0].copy(), uniq[:, 1].copy()), dtype=np.float64).reshape(-1)
    if out.size != uniq.shape[0]:
        raise ValueError(f"tt returned {out.size} values for {uniq.shape[0]} pairs")
    result: np.ndarray = out[inverse.reshape(-1)]
    return result


def _earliest_per_stop(earliest: Mapping[int, float] | np.ndarray, request: np.ndarray,
                       is_pickup: np.ndarray) -> np.ndarray:
    if isinstance(earliest, Mapping):
        values = np.array([float(earliest[int(r)]) if p else -np.inf for r, p in zip(request, is_pickup)])
    else:
        values = np.asarray(earliest, dtype=np.float64).reshape(-1)
        if values.size != request.size:
            raise ValueError(f"earliest has {values.size} values for {request.size} stops")
    result: np.ndarray = np.where(is_pickup, values, -np.inf)
    return result


def schedule_times(start_node: int, start_t_s: float, stops_node: np.ndarray, stops_request: np.ndarray,
                   stops_is_pickup: np.ndarray, earliest: Mapping[int, float] | np.ndarray, tt: TravelTimeFn,
                   dwell_s: float = 0.0) -> np.ndarray:
    """Planned arrival time (s) at each stop of a schedule.

    Parameters
    ----------
    start_node, start_t_s
        Where and when the vehicle starts (leaves, without dwell).
    stops_node, stops_request, stops_is_pickup
        The schedule, ``k`` stops.
    earliest
        Earliest pick-up time per stop (array of ``k``, read at pick-ups only) or per request
        (mapping request -> s): the vehicle waits at a pick-up until then.
    tt
        Drive times, see :data:`TravelTimeFn`; called once.
    dwell_s
        Time spent at each stop (after any wait).

    Returns
    -------
    np.ndarray
        ``(k,)`` arrival times (before any wait); ``inf`` after an unreachable leg.
    """
    node, request, is_pickup = _as_stops(stops_node, stops_request, stops_is_pickup)
    earliest_s = _earliest_per_stop(earliest, request, is_pickup)
    from_nodes = np.concatenate([np.array([start_node], dtype=np.int64), node])[: node.size]
    legs = _call_tt(tt, from_nodes, node)
    arrive, _ = _batch_times(legs[None, :], earliest_s[None, :], is_pickup[None, :], start_t_s, dwell_s)
    result: np.ndarray = arrive[0]
    return result


def feasible(*, start_node: int, start_t_s: float, onboard: int, seats: int, stops_node: np.ndarray,
             stops_request: np.ndarray, stops_is_pickup: np.ndarray, requests: Mapping[int, RequestLimits],
             tt: TravelTimeFn, dwell_s: float = 0.0) -> bool:
    """Whether a whole schedule meets the seat, wait and ride limits (see the module docstring).

    Parameters are those of :func:`best_insertion` (``requests``: the limits of every request in
    the schedule). Raises ValueError for a malformed schedule: a request without limits, two
    pick-ups or drop-offs of one request, a drop-off before its pick-up, or a drop-off without a
    pick-up of a request whose ``picked_up_s`` is nan.
    """
    node, request, is_pickup = _as_stops(stops_node, stops_request, stops_is_pickup)
    table = _stop_table(node, request, is_pickup, requests)
    k = node.size
    from_nodes = np.concatenate([np.array([start_node], dtype=np.int64), node])[:k]
    legs = _call_tt(tt, from_nodes, node)
    seq = np.arange(k, dtype=np.int64)[None, :]
    ok, _, _ = _batch_feasible(seq, legs[None, :], table, start_t_s=start_t_s, onboard=onboard, seats=seats,
                               dwell_s=dwell_s)
    return bool(ok[0]) and onboard <= seats


def best_insertion(*, start_node: int, start_t_s: float, onboard: int, seats: int, stops_node: np.ndarray,
                   stops_request: np.ndarray, stops_is_pickup: np.ndarray, requests: Mapping[int, RequestLimits],
                   new_request: int, new_pick_node: int, new_drop_node: int, new_limits: RequestLimits,
                   tt: TravelTimeFn, dwell_s: float = 0.0) -> Insertion | None:
    """The feasible insertion of a new request that adds the least drive time, or None.

    Parameters
    ----------
    start_node, start_t_s, onboard
        Where and when the vehicle is free, and how many passengers are in it then.
    seats
        Passenger capacity.
    stops_node, stops_request, stops_is_pickup
        The current schedule, ``k`` stops in order.
    requests
        Limits of every request in the schedule (more are allowed).
    new_request, new_pick_node, new_drop_node, new_limits
        The new request (not in the schedule yet).
    tt
        Drive times, see :data:`TravelTimeFn`; called once, with at most ``5 k + 3`` distinct pairs.
    dwell_s
        Time spent at each stop (after any wait).

    Returns
    -------
    Insertion or None
        The best of all ``(k + 1) (k + 2) / 2`` positions (ties: lowest ``(pick_pos, drop_pos)``),
        None when none is feasible.

    Raises
    ------
    ValueError
        For a malformed schedule (see :func:`feasible`), a new request already in it, or an old
        schedule with an unreachable leg (its added drive time would be undefined).
    """
    node, request, is_pickup = _as_stops(stops_node, stops_request, stops_is_pickup)
    if np.any(request == new_request):
        raise ValueError(f"new request {new_request} is already in the schedule")
    table = _append_new(_stop_table(node, request, is_pickup, requests), new_request, new_pick_node,
                        new_drop_node, new_limits)
    if onboard > seats:
        return None
    k = node.size
    pick_e, drop_e, start_e = k, k + 1, k + 2  # table indexes; the start is an extra "stop" for the legs only
    ext_node = np.append(table.node, np.int64(start_node))

    # The only legs any candidate uses: old legs, (start | old) -> pick, pick -> (old | drop),
    # (start | old) -> drop, drop -> old.
    prev_old = np.concatenate([np.array([start_e]), np.arange(k - 1)]).astype(np.int64)[:k]  # from of old leg a
    old_idx = np.arange(k, dtype=np.int64)
    starts_or_old = np.concatenate([np.array([start_e], dtype=np.int64), old_idx])
    leg_from = np.concatenate([prev_old, starts_or_old, np.full(k, pick_e), [pick_e], starts_or_old,
                               np.full(k, drop_e)]).astype(np.int64)
    leg_to = np.concatenate([old_idx, np.full(k + 1, pick_e), old_idx, [drop_e], np.full(k + 1, drop_e),
                             old_idx]).astype(np.int64)
    leg_s = _call_tt(tt, ext_node[leg_from], ext_node[leg_to])
    leg_table = np.full((k + 3, k + 3), np.nan)
    leg_table[leg_from, leg_to] = leg_s

    old_total_s = float(np.cumsum(leg_s[:k])[-1]) if k else 0.0
    if not math.isfinite(old_total_s):
        raise ValueError("the old schedule has an unreachable leg")

    # Candidates in lexicographic order of (i, j), i.e. of (pick_pos, drop_pos) = (i, j + 1).
    ii, jj = np.triu_indices(k + 1)
    i = ii.astype(np.int64)[:, None]
    j = jj.astype(np.int64)[:, None]
    p = np.arange(k + 2, dtype=np.int64)[None, :]
    seq = np.where(p < i, p, np.where(p == i, pick_e, np.where(p <= j, p - 1, np.where(p == j + 1, drop_e, p - 2))))
    prev = np.concatenate([np.full((seq.shape[0], 1), start_e, dtype=np.int64), seq[:, :-1]], axis=1)
    legs = leg_table[prev, seq]
    assert not np.isnan(legs).any(), "a candidate uses a leg that was not asked of tt"

    ok, arrive, service = _batch_feasible(seq, legs, table, start_t_s=start_t_s, onboard=onboard, seats=seats,
                                          dwell_s=dwell_s)
    if not ok.any():
        return None
    added = np.cumsum(legs, axis=1)[:, -1] - old_total_s
    best_s = float(added[ok].min())
    c = int(np.flatnonzero(ok & (added <= best_s + TOL_S))[0])
    best_seq = seq[c]
    pick_pos, drop_pos = int(ii[c]), int(jj[c]) + 1
    return Insertion(
        pick_pos=pick_pos,
        drop_pos=drop_pos,
        added_drive_s=float(added[c]),
        stops_node=table.node[best_seq].copy(),
        stops_request=table.request[best_seq].copy(),
        stops_is_pickup=table.is_pickup[best_seq].copy(),
        arrive_s=arrive[c].copy(),
        pick_s=float(service[c, pick_pos]),
        drop_s=float(service[c, drop_pos]),
    )


def schedule_row(stops_request: np.ndarray, stops_is_pickup: np.ndarray,
                 requests: Mapping[int, RequestLimits]) -> tuple[np.ndarray, ...]:
    """One schedule as the per-stop columns of :func:`twin.kernels.insertion.best_insertion_fleet`'s
    table: ``(earliest_s, latest_s, max_ride_s, partner, picked_up_s)`` (see :func:`best_insertion`
    for the limits; ``partner``: the stop index of a drop-off's pick-up, -1 when on board)."""
    _, request, is_pickup = _as_stops(np.zeros(len(stops_request), np.int64), stops_request, stops_is_pickup)
    t = _stop_table(np.zeros(request.size, np.int64), request, is_pickup, requests)
    return t.earliest_s, t.latest_s, t.max_ride_s, t.partner, t.picked_up_s
