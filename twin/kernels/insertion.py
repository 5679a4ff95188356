"""Numba kernels of ride-pooling dispatch: the best insertion of one request into many vehicles'
schedules in one call, and paths read off least-time trees.

:func:`best_insertion_fleet` is :func:`twin.domains.maas.insertion.best_insertion` (the pure-Python
reference; read its module docstring for the rules: every pair of positions, seats, latest pick-up,
maximum ride, least added drive time, ties to the lowest ``(pick_pos, drop_pos)``) for a list of
candidate vehicles at once, with drive times given as arrays instead of a function: the four
least-time trees of the request (to and from its pick-up and drop-off nodes) and the old legs of
each schedule. Sums and comparisons are done in the reference's order, so the results are the
same bits (``tests/test_maas_insertion.py`` checks it on random schedules).

Arrays only (no model, no domain objects), like every module of :mod:`twin.kernels`.

Why by hand: see :mod:`twin.domains.maas.insertion` (no maintained library inserts requests into
schedules on a road network's travel times); this is its compiled form, because the reference's
NumPy overhead per vehicle (about 0.4 ms) dominated a day with 100,000 requests.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["best_insertion_fleet", "best_insertion_table", "nearest_candidates", "tree_path_from", "tree_path_to"]

#: Tolerance (s) of every comparison (as :data:`twin.domains.maas.insertion.TOL_S`).
TOL_S = 1e-9


@njit(cache=True, nogil=True)
def _candidate(i, j, k, start_t_s, onboard, seats, dwell_s, node, is_pick, earliest, latest, max_ride, partner,
               picked_s, legs_old, first_leg_s, to_pick, from_pick, to_drop, from_drop, direct_s,
               new_earliest_s, new_latest_s, new_max_ride_s, service_buf):
    """Feasibility and new total drive time of the schedule with the new pick-up before old stop
    ``i`` and the new drop-off before old stop ``j`` (``i <= j``). Returns ``(ok, total_s)``."""
    m = k + 2
    leave = start_t_s
    load = onboard
    total = 0.0
    ok = True
    prev_node = -1  # -1: the start
    new_pick_service = 0.0
    for p in range(m):
        # the stop at position p: old index a, or the new pick-up (-1) / drop-off (-2)
        if p < i:
            a = p
        elif p == i:
            a = -1
        elif p <= j:
            a = p - 1
        elif p == j + 1:
            a = -2
        else:
            a = p - 2
        # the leg into it (prev_node: -1 the start, -3 the new pick-up, -4 the new drop-off, else an old stop)
        if a == -1:
            leg = to_pick[0] if prev_node == -1 else to_pick[prev_node + 1]
        elif a == -2:
            leg = direct_s if prev_node == -3 else to_drop[prev_node]
        elif prev_node == -1:
            leg = first_leg_s
        elif prev_node == -3:
            leg = from_pick[a]
        elif prev_node == -4:
            leg = from_drop[a]
        else:
            leg = legs_old[a]  # old stop a - 1 -> old stop a
        total += leg
        if not np.isfinite(leg):
            ok = False
        arrive = leave + leg
        if a == -1:
            service = arrive if arrive >= new_earliest_s else new_earliest_s
            load += 1
            if not service <= new_latest_s + TOL_S:
                ok = False
            new_pick_service = service
            prev_node = -3
        elif a == -2:
            service = arrive
            load -= 1
            ride = service - new_pick_service
            if ride > new_max_ride_s + TOL_S:
                ok = False
            prev_node = -4
        else:
            if is_pick[a]:
                service = arrive if arrive >= earliest[a] else earliest[a]
                load += 1
                if not service <= latest[a] + TOL_S:
                    ok = False
            else:
                service = arrive
                load -= 1
                q = partner[a]
                pick_t = service_buf[q] if q >= 0 else picked_s[a]
                ride = service - pick_t
                if ride > max_ride[a] + TOL_S:
                    ok = False
            service_buf[a] = service
            prev_node = a
        if load > seats:
            ok = False
        leave = service + dwell_s
    return ok, total


@njit(cache=True, nogil=True)
def best_insertion_fleet(cand_row, start_t_s, onboard, first_leg_s, seats, dwell_s, sch_n, sch_node, sch_is_pick,
                         sch_earliest_s, sch_latest_s, sch_max_ride_s, sch_partner, sch_picked_s, sch_leg_s,
                         to_pick_dist, from_pick_dist, to_drop_dist, from_drop_dist, start_node, direct_s,
                         new_earliest_s, new_latest_s, new_max_ride_s):
    """The candidate vehicle and positions where a new request adds the least drive time.

    Parameters
    ----------
    cand_row : int64 (C,)
        Row of each candidate in the schedule table, in the order ties are broken (the first of
        equal added times within ``TOL_S`` wins, as the reference's loop over vehicles).
    start_t_s, onboard, first_leg_s, start_node : (C,)
        Per candidate: when it is free at its start node, passengers on board then, the drive time
        from the start node to its first old stop (unused without stops), the start node.
    seats : int
        Seats of every candidate.
    dwell_s : float
        Time at each stop.
    sch_n, sch_node, sch_is_pick, sch_earliest_s, sch_latest_s, sch_max_ride_s, sch_partner, sch_picked_s, sch_leg_s
        The schedule table, one row per vehicle: number of old stops, and per stop its node, pick-up
        or not, earliest pick-up (pick-ups), latest pick-up (pick-ups; ``inf`` else), maximum ride
        (drop-offs; ``inf`` else), the stop index of its pick-up (drop-offs; -1 when on board), the
        pick-up time of a passenger on board (drop-offs without a pick-up), and the drive time of
        the leg into it from the previous stop (unused for stop 0: ``first_leg_s``).
    to_pick_dist, from_pick_dist, to_drop_dist, from_drop_dist : float64 (n_nodes,)
        Least drive times from every node to the pick-up, from the pick-up to every node, etc.
    direct_s : float
        Pick-up to drop-off.
    new_earliest_s, new_latest_s, new_max_ride_s : float
        The new request's limits.

    Returns
    -------
    (c, pick_pos, drop_pos, added_s)
        Index into ``cand_row`` (-1: no feasible insertion), positions in the new stop list and
        the added drive time.
    """
    n_cand = cand_row.size
    kmax = sch_node.shape[1]
    service_buf = np.empty(kmax + 2)
    to_pick = np.empty(kmax + 1)
    from_pick = np.empty(kmax)
    to_drop = np.empty(kmax)
    from_drop = np.empty(kmax)
    best_c, best_i, best_j, best_added = -1, -1, -2, np.inf
    found_added = np.inf
    n_pairs_max = (kmax + 1) * (kmax + 2) // 2
    added_buf = np.empty(n_pairs_max)
    ok_buf = np.zeros(n_pairs_max, dtype=np.bool_)
    for c in range(n_cand):
        if onboard[c] > seats:
            continue
        r = cand_row[c]
        k = sch_n[r]
        node = sch_node[r]
        to_pick[0] = to_pick_dist[start_node[c]]
        for a in range(k):
            to_pick[a + 1] = to_pick_dist[node[a]]
            from_pick[a] = from_pick_dist[node[a]]
            to_drop[a] = to_drop_dist[node[a]]
            from_drop[a] = from_drop_dist[node[a]]
        legs_old = sch_leg_s[r]
        old_total = 0.0
        for a in range(k):
            old_total += first_leg_s[c] if a == 0 else legs_old[a]
        if not np.isfinite(old_total):
            continue
        # every (i, j), lexicographic; then the first within TOL_S of the least
        n = 0
        least = np.inf
        for i in range(k + 1):
            for j in range(i, k + 1):
                ok, total = _candidate(i, j, k, start_t_s[c], onboard[c], seats, dwell_s, node, sch_is_pick[r],
                                       sch_earliest_s[r], sch_latest_s[r], sch_max_ride_s[r], sch_partner[r],
                                       sch_picked_s[r], legs_old, first_leg_s[c], to_pick, from_pick, to_drop,
                                       from_drop, direct_s, new_earliest_s, new_latest_s, new_max_ride_s, service_buf)
                added = total - old_total
                ok_buf[n] = ok
                added_buf[n] = added
                if ok and added < least:
                    least = added
                n += 1
        if not np.isfinite(least):
            continue
        n = 0
        found_i, found_j = -1, -1
        for i in range(k + 1):
            for j in range(i, k + 1):
                if found_i < 0 and ok_buf[n] and added_buf[n] <= least + TOL_S:
                    found_i, found_j = i, j
                    found_added = added_buf[n]
                n += 1
        if best_c < 0 or found_added < best_added - TOL_S:
            best_c, best_i, best_j, best_added = c, found_i, found_j, found_added
    return best_c, best_i, best_j + 1, best_added


@njit(cache=True, nogil=True)
def nearest_candidates(st_node, st_t_s, st_idle, to_pick_dist, b_s, waited_s, max_wait_s, n_busy, n_idle):
    """Candidate vehicles of one request: of the vehicles that reach its pick-up within its
    maximum wait (``waited_s`` + reach <= ``max_wait_s``, reach = ``st_t_s`` - ``b_s`` + the time
    from ``st_node`` to the pick-up), the ``n_busy`` nearest not idle and the ``n_idle`` nearest
    idle ones (by reach, ties to the lower index: a stable sort), returned in index order."""
    n = st_node.size
    best_b = np.empty(n_busy, np.int64)
    reach_b = np.empty(n_busy)
    best_i = np.empty(n_idle, np.int64)
    reach_i = np.empty(n_idle)
    nb = 0
    ni = 0
    for k in range(n):
        x = (st_t_s[k] - b_s) + to_pick_dist[st_node[k]]
        if not (np.isfinite(x) and waited_s + x <= max_wait_s + 1e-9):
            continue
        if st_idle[k]:
            buf, rb, m, cap = best_i, reach_i, ni, n_idle
        else:
            buf, rb, m, cap = best_b, reach_b, nb, n_busy
        if m == cap and not x < rb[m - 1]:  # later index: after equal reaches
            continue
        q = m if m < cap else cap - 1
        while q > 0 and rb[q - 1] > x:
            if q < cap:
                buf[q] = buf[q - 1]
                rb[q] = rb[q - 1]
            q -= 1
        buf[q] = k
        rb[q] = x
        if m < cap:
            if st_idle[k]:
                ni += 1
            else:
                nb += 1
    out = np.empty(nb + ni, np.int64)
    out[:nb] = best_b[:nb]
    out[nb:] = best_i[:ni]
    out.sort()
    return out


@njit(cache=True, nogil=True)
def best_insertion_table(veh, start_node, start_t_s, onboard, seats, dwell_s, sch_n, sch_node, sch_is_pick,
                         sch_earliest_s, sch_latest_s, sch_max_ride_s, sch_partner, sch_picked_s, sch_leg_s,
                         row_stamp, stamp, row_ver, first_node, first_leg_s, first_ver, ver,
                         to_pick_dist, from_pick_dist, to_drop_dist, from_drop_dist, pick, drop, direct_s,
                         new_earliest_s, new_latest_s, new_max_ride_s, missing):
    """:func:`best_insertion_fleet` for candidate vehicles ``veh`` (rows of a fleet's schedule
    table), with the drive times of their old legs read as the dispatcher does: a leg into or out
    of the request's pick-up or drop-off node from the request's trees (``to_pick_dist`` ... in
    that order of precedence: into the pick-up, into the drop-off, out of the pick-up, out of the
    drop-off), any other from the table (``sch_leg_s[v, a]``: into stop ``a`` from stop ``a - 1``;
    ``first_leg_s[v]``: from ``first_node[v]`` to stop 0).

    A table row is current when ``row_stamp[v] == stamp[v]`` (its schedule unchanged) and
    ``row_ver[v] == ver`` (its legs on the current link times), a first leg when ``first_node[v]``
    is the candidate's start node and ``first_ver[v] == ver``. Where a needed value is not
    current nothing is computed: ``missing[:m]`` receives ``2 c`` (row of candidate ``c`` to
    refresh) or ``2 c + 1`` (its first leg) and the result is ``(-1, -1, -1, nan, m)``; else
    ``(c, pick_pos, drop_pos, added_s, 0)`` as :func:`best_insertion_fleet` (``c``: index into
    ``veh``, -1 when no insertion is feasible).
    """
    n = veh.size
    kmax = 1
    m = 0
    for c in range(n):
        v = veh[c]
        if row_stamp[v] != stamp[v] or (sch_n[v] and row_ver[v] != ver):
            missing[m] = 2 * c
            m += 1
            continue
        k = sch_n[v]
        if k > kmax:
            kmax = k
        if k == 0:
            continue
        x, y = start_node[c], sch_node[v, 0]
        if y != pick and y != drop and x != pick and x != drop and (first_node[v] != x or first_ver[v] != ver):
            missing[m] = 2 * c + 1
            m += 1
    if m:
        return -1, -1, -1, np.nan, m
    node = np.zeros((n, kmax), np.int64)
    is_pick = np.zeros((n, kmax), np.bool_)
    partner = np.full((n, kmax), -1, np.int64)
    earliest = np.full((n, kmax), np.nan)
    latest = np.full((n, kmax), np.nan)
    ride = np.full((n, kmax), np.nan)
    picked = np.full((n, kmax), np.nan)
    leg = np.full((n, kmax), np.nan)
    first = np.zeros(n)
    for c in range(n):
        v = veh[c]
        k = sch_n[v]
        for a in range(k):
            node[c, a] = sch_node[v, a]
            is_pick[c, a] = sch_is_pick[v, a]
            partner[c, a] = sch_partner[v, a]
            earliest[c, a] = sch_earliest_s[v, a]
            latest[c, a] = sch_latest_s[v, a]
            ride[c, a] = sch_max_ride_s[v, a]
            picked[c, a] = sch_picked_s[v, a]
            x = start_node[c] if a == 0 else sch_node[v, a - 1]
            y = sch_node[v, a]
            if y == pick:
                t = to_pick_dist[x]
            elif y == drop:
                t = to_drop_dist[x]
            elif x == pick:
                t = from_pick_dist[y]
            elif x == drop:
                t = from_drop_dist[y]
            elif a == 0:
                t = first_leg_s[v]
            else:
                t = sch_leg_s[v, a]
            if a == 0:
                first[c] = t
            else:
                leg[c, a] = t
    c, pp, dp, added = best_insertion_fleet(
        np.arange(n), start_t_s, onboard, first, seats, dwell_s, sch_n[veh], node, is_pick, earliest, latest, ride,
        partner, picked, leg, to_pick_dist, from_pick_dist, to_drop_dist, from_drop_dist, start_node, direct_s,
        new_earliest_s, new_latest_s, new_max_ride_s)
    return c, pp, dp, added, 0


@njit(cache=True, nogil=True)
def tree_path_from(pred_link, link_tail, source, target):
    """Links of the least-time path ``source -> target`` from a forward tree rooted at ``source``
    (``pred_link``: last link into each node, -1 at the root and unreachable nodes)."""
    n = 0
    x = target
    while x != source:
        lk = pred_link[x]
        if lk < 0:
            return np.full(1, -1, np.int64)  # unreachable
        n += 1
        x = link_tail[lk]
    out = np.empty(n, np.int64)
    x = target
    for p in range(n - 1, -1, -1):
        lk = pred_link[x]
        out[p] = lk
        x = link_tail[lk]
    return out


@njit(cache=True, nogil=True)
def tree_path_to(next_link, link_head, source, target):
    """Links of the least-time path ``source -> target`` from a reverse tree rooted at ``target``
    (``next_link``: first link out of each node towards the root, -1 at the root and unreachable
    nodes)."""
    n = 0
    x = source
    while x != target:
        lk = next_link[x]
        if lk < 0:
            return np.full(1, -1, np.int64)
        n += 1
        x = link_head[lk]
    out = np.empty(n, np.int64)
    x = source
    for p in range(n):
        lk = next_link[x]
        out[p] = lk
        x = link_head[lk]
    return out
